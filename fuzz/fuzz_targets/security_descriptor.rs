//! Fuzz the security-descriptor parser, serializer, SID positions, SDDL in/out and SidMap.
//! Properties: nothing panics; a parsed descriptor re-serializes to the input bytes; every
//! SID position holds a SID; SDDL output parses back to the normalized descriptor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_security::sidmap::SidMap;
use reseal_security::{sid_positions, SecurityDescriptor, Sid};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            if let Ok(sd) = SecurityDescriptor::parse(rest) {
                assert_eq!(sd.to_bytes().unwrap(), rest);
                for r in sid_positions(rest).unwrap() {
                    let s = Sid::from_bytes(&rest[r.clone()]).unwrap();
                    assert_eq!(s.len(), r.len());
                }
                if let Ok(text) = sd.to_sddl() {
                    let back = SecurityDescriptor::from_sddl(&text).unwrap();
                    assert_eq!(back.normalized(), sd.normalized());
                }
                let _ = sd.to_canonical_bytes();
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(sd) = SecurityDescriptor::from_sddl(text) {
                    let bytes = sd.to_bytes().unwrap();
                    assert_eq!(SecurityDescriptor::parse(&bytes).unwrap(), sd);
                }
            }
        }
        _ => {
            let map = SidMap::new(
                "S-1-5-21-1-2-3".parse().unwrap(),
                "S-1-5-21-4000000000-5-6".parse().unwrap(),
            )
            .unwrap();
            let mut b = rest.to_vec();
            map.replace_binary(&mut b);
            let _ = map.replace_text(rest);
            let _ = map.rewrite_descriptor_bytes(&mut b);
        }
    }
});
