//! Fuzz the regf reader, checker, exporter, log replay and a few edits: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_hive::{Hive, Key, Value, Visitor};

struct Decode;
impl Visitor for Decode {
    fn enter_key(&mut self, key: &Key<'_>, _path: &str) -> reseal_hive::Result<()> {
        let _ = key.name();
        let _ = key.class_name();
        let _ = key.security();
        Ok(())
    }
    fn value(&mut self, _key: &Key<'_>, v: &Value<'_>) -> reseal_hive::Result<()> {
        let _ = v.name();
        let _ = v.data()?;
        let _ = v.as_string();
        let _ = v.as_multi_string();
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    // Fix the base-block checksum so the fuzzer gets past it most of the time.
    if sel & 1 == 0 && bytes.len() >= 512 {
        let c = reseal_hive::base_block::checksum(&bytes[..512]);
        bytes[508..512].copy_from_slice(&c.to_le_bytes());
    }
    if sel & 2 != 0 && bytes.len() > 8192 {
        // second half as a log file
        let log = bytes.split_off(bytes.len() / 2);
        let _ = Hive::recover(bytes.clone(), Some(log), None);
    }
    let Ok(mut h) = Hive::from_bytes(bytes) else {
        return;
    };
    let _ = h.walk(&mut Decode);
    let _ = reseal_hive::check(&h);
    let _ = reseal_hive::reg::export(&h, "", "\\");
    if sel & 4 != 0 && h.make_writable().is_ok() {
        let root = h.root_offset();
        if let Ok(k) = h.create_key(root, "fuzz") {
            let _ = h.set_value(k, "v", 3, &[1u8; 20000]);
            let _ = h.rename_key(k, "Fuzz2");
        }
        let _ = h.commit();
        let _ = Hive::from_bytes(h.into_bytes()).map(|h| h.walk(&mut Decode));
    }
});
