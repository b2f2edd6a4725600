//! Volume state for `inspect`: clean, dirty, unclean log, Fast Startup or hibernated.

use reseal_disk::Device;
use reseal_ntfs::browse::Volume;
use reseal_ntfs::state::{LogFileState, VolumeState};
use serde_json::{json, Value};

/// The volume's state as JSON.
pub fn volume_state<D: Device>(vol: &mut Volume<D>) -> Value {
    match VolumeState::from_volume(vol) {
        Ok(st) => json!({
            "dirty": st.dirty,
            "hibernated": st.hibernated,
            "logfile": st.logfile.code(),
            "logfile_detail": match &st.logfile {
                LogFileState::Unknown(why) => Some(why.clone()),
                _ => None,
            },
            "logfile_version": st.logfile_version.map(|(a, b)| format!("{a}.{b}")),
            "volume_flags": st.volume_flags,
            "writable": st.refusal().is_none(),
            "refusal": st.refusal(),
        }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// Words for the text form.
pub fn describe(v: &Value) -> String {
    if let Some(e) = v.get("error") {
        return format!("unknown ({e})");
    }
    let mut words = Vec::new();
    if v["dirty"] == true {
        words.push("dirty".to_string());
    }
    if v["hibernated"] == true {
        words.push("hibernated".to_string());
    }
    match v["logfile"].as_str() {
        Some("clean") | Some("empty") | None => {}
        Some("fast_startup") => words.push("log fast startup".to_string()),
        Some(other) => words.push(format!("log {other}")),
    }
    if words.is_empty() {
        "clean".into()
    } else {
        words.join(", ")
    }
}
