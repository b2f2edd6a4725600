//! raw (in progress).
