//! Volume state for `inspect`: clean, dirty or hibernated.

use reseal_disk::Device;
use reseal_ntfs::browse::Volume;
use serde_json::{json, Value};

/// The volume's state as JSON: `{ "dirty": bool, "hibernated": bool }`.
pub fn volume_state<D: Device>(vol: &mut Volume<D>) -> Value {
    let dirty = vol.volume_flags().map(|f| f & 0x0001 != 0).ok();
    let hibernated = match vol.stat("/hiberfil.sys") {
        Ok(e) if e.size >= 4 => {
            let mut head = Vec::new();
            vol.read_range("/hiberfil.sys", 0, 4, &mut head).ok();
            Some(matches!(&head[..], b"hibr" | b"HIBR" | b"wake" | b"WAKE"))
        }
        Ok(_) => Some(false),
        Err(_) => Some(false),
    };
    json!({ "dirty": dirty, "hibernated": hibernated })
}

/// One word for the text form.
pub fn describe(v: &Value) -> String {
    let mut words = Vec::new();
    if v["dirty"] == true {
        words.push("dirty");
    }
    if v["hibernated"] == true {
        words.push("hibernated");
    }
    if words.is_empty() {
        "clean".into()
    } else {
        words.join(", ")
    }
}
