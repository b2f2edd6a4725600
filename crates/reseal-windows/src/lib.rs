//! reseal-windows (in progress).
