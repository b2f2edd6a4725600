//! Fuzz the VHD parser and block mapping: raw inputs and mutations of valid dynamic/fixed images.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reseal_disk::vhd::Vhd;
use reseal_disk::Device;

#[path = "common.rs"]
mod common;

static TEMPLATES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

fn templates() -> &'static [Vec<u8>] {
    TEMPLATES.get_or_init(|| {
        let dynamic = common::template("dyn.vhd", |p| {
            reseal_disk::vhd::create_dynamic(p, 3 << 20, 1 << 20).unwrap();
            let mut v =
                Vhd::open(reseal_disk::raw::HostFile::open(p, true).unwrap(), false).unwrap();
            v.write_at(1000, &[7; 5000]).unwrap();
            v.write_at((2 << 20) + 17, &[9; 100]).unwrap();
        });
        let fixed = common::template("fixed.vhd", |p| {
            reseal_disk::vhd::create_fixed(p, 64 << 10).unwrap()
        });
        vec![dynamic, fixed]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let bytes = match sel % 3 {
        0 => rest.to_vec(),
        k => common::mutate(&templates()[usize::from(k - 1)], rest),
    };
    for lenient in [false, true] {
        if let Ok(v) = Vhd::open(common::device(bytes.clone()), lenient) {
            common::exercise(v);
        }
    }
});
