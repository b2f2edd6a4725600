//! Fuzz attribute-header parsing and mapping-pairs decode/encode (decode → encode → decode
//! must be stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_ntfs::{attribute, data_run};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = attribute::parse(data, 0, 0) {
        if a.nonres {
            let _ = a.runs(data, 0);
        }
    }
    if let Ok(runs) = data_run::decode(data, 0, None, 0) {
        let enc = data_run::encode(&runs);
        let again = data_run::decode(&enc, 0, None, 0).expect("re-decode");
        assert_eq!(runs, again);
    }
});
