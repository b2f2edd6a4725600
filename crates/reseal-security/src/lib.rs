//! reseal-security (in progress).
