//! The integration tests of `reseal-cli`, one test binary (each file below is a module; the
//! shared helpers are the `common` module).

#[macro_use]
mod common;

mod clone;
mod generalize;
mod image_hive;
mod images;
mod json_schema;
mod oobe;
mod output;
mod put_stream;
mod quickstart;
mod reg;
mod sid;
mod trust;
mod users;
mod write;
