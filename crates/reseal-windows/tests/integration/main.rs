//! The integration tests of `reseal-windows`, one test binary (each file below is a module; the
//! shared helpers are the `` modules).

mod audit;
mod fixtures;
mod generalize;
mod identity;
mod restore_points;
mod sam_corpus;
