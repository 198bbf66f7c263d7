//! HTTP status listener end to end (placeholder).
