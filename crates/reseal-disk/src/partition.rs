//! partition (in progress).
