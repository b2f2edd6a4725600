//! vhd (in progress).
