//! Fuzz the `.reg` parser: never panic; every parsed value formats and re-parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_hive::reg::{decode_reg_bytes, format_value, parse_reg, RegOp, HEADER_V5};

fuzz_target!(|data: &[u8]| {
    let text = decode_reg_bytes(data);
    let Ok(ops) = parse_reg(&text) else { return };
    for op in ops {
        if let RegOp::SetValue {
            key,
            name,
            data_type,
            data,
        } = op
        {
            if key.contains(['\r', '\n', ']']) || name.contains(['\r', '\n']) {
                continue;
            }
            let mut s = format!("{HEADER_V5}\r\n\r\n[{key}]\r\n");
            format_value(&name, data_type, &data, &mut s);
            let again = parse_reg(&s).expect("our own output parses");
            assert_eq!(
                again.last(),
                Some(&RegOp::SetValue {
                    key: key.clone(),
                    name,
                    data_type,
                    data
                }),
                "round trip"
            );
        }
    }
});
