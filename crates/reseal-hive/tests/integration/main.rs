//! The integration tests of `reseal-hive`, one test binary (each file below is a module; the
//! shared helpers are the `common` module).

mod common;

mod corpus;
mod edit;
mod logs;
mod proptest_model;
mod reg;
mod scrub;
