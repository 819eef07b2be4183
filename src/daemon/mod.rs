//! Event-loop daemon shell (placeholder).
