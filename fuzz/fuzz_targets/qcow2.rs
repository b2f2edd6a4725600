//! Fuzz the qcow2 parser (header, extensions, L1/L2 tables, refcount table and blocks,
//! compressed clusters) and its allocating writes: mutations of a valid image with data in
//! plain clusters, and raw inputs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reseal_disk::qcow2::Qcow2;
use reseal_disk::Device;

#[path = "common.rs"]
mod common;

static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();

fn template() -> &'static [u8] {
    TEMPLATE.get_or_init(|| {
        common::template("img.qcow2", |p| {
            reseal_disk::qcow2::create(p, 3 << 20, 4096).unwrap();
            let f = reseal_disk::raw::HostFile::open(p, true).unwrap();
            let mut q = Qcow2::open(f, p).unwrap();
            q.write_at(1000, &[7; 5000]).unwrap();
            q.write_at(2 << 20, &[9; 300]).unwrap();
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let bytes = if sel % 4 == 0 {
        rest.to_vec()
    } else {
        common::mutate(template(), rest)
    };
    if let Ok(q) = Qcow2::open(common::device(bytes), std::path::Path::new("fuzz.qcow2")) {
        common::exercise(q);
    }
});
