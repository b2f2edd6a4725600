//! Volume state (in progress).
