//! keepalived.conf language (placeholder).
