//! journal (in progress).
