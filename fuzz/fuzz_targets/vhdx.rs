//! Fuzz the VHDX parser (headers, region tables, metadata, BAT) and block mapping: mutations of a
//! valid dynamic image with data, and raw inputs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reseal_disk::vhdx::Vhdx;
use reseal_disk::Device;

#[path = "common.rs"]
mod common;

static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();

fn template() -> &'static [u8] {
    TEMPLATE.get_or_init(|| {
        common::template("dyn.vhdx", |p| {
            reseal_disk::vhdx::create_dynamic(p, 3 << 20, 1 << 20).unwrap();
            let mut v = Vhdx::open(reseal_disk::raw::HostFile::open(p, true).unwrap()).unwrap();
            v.write_at(1000, &[7; 5000]).unwrap();
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
    if let Ok(v) = Vhdx::open(common::device(bytes)) {
        common::exercise(v);
    }
});
