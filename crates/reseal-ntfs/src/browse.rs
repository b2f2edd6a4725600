//! Read-only browsing (in progress).
