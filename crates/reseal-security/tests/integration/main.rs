//! The integration tests of `reseal-security`, one test binary (each file below is a module; the
//! shared helpers are the `common` module).

mod common;

mod corpus;
mod known_sddl;
mod ntfs3g_oracle;
mod proptests;
