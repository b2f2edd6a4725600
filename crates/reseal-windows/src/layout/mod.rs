//! Definitions layer: the SAM and LSA value structures reseal reads and writes, as typed,
//! bounds-checked zerocopy views (one file per structure, fields named after what they hold;
//! FORMATS.md A.1, A.2 and docs/SAM.md). `crate::sam` and `crate::users` read and write the
//! fields through these views: bytes too short for a structure give `None`, which the callers
//! turn into an [`crate::Error::Invalid`] naming the value.
//!
//! - [`sam_f`]: a user's fixed-size `F` value (times, RID, account-control bits, counters).
//! - [`sam_v`]: the descriptor table that starts every `V` value (domain and user).
//! - [`hash_entry`]: the header of a user `V`'s LM/NT hash and history fields.
//! - [`sam_key`]: the SAM key structure (RC4 or AES) at 0x68 of the domain `F`.
//! - [`lsa_name`]: the `UNICODE_STRING`-style header of SECURITY's `PolAcDmN`/`PolPrDmN`.

pub mod hash_entry;
pub mod lsa_name;
pub mod sam_f;
pub mod sam_key;
pub mod sam_v;
