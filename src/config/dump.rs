//! Dump (placeholder)
