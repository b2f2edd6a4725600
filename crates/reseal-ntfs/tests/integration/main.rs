//! The integration tests of `reseal-ntfs`, one test binary (each file below is a module; the
//! shared helpers are the `ntfsw_common` module).

mod ntfsw_common;

mod browse;
mod browse_images;
mod catalog;
mod secure_inherit;
mod secure_quota;
mod secure_rewrite;
mod state;
mod write_atomic;
mod write_basic;
mod write_bench;
mod write_corpus;
mod write_corrupt;
mod write_names;
mod write_proptest;
mod write_stream;
