//! vhdx (in progress).
