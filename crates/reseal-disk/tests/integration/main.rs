//! The integration tests of `reseal-disk`, one test binary (each file below is a module; the
//! shared helpers are the `containers_util` module).

mod containers_util;

mod children;
mod containers_corpus;
mod containers_qemu;
mod containers_vhdx_diff;
mod journal_crash;
mod journal_spill;
mod locking;
mod partitions;
mod qcow2;
