//! Property tests: random descriptors of every ACE kind round-trip through bytes and SDDL;
//! hostile bytes and strings never panic.

use proptest::prelude::*;
use reseal_security::claim::{ClaimAttribute, ClaimValue};
use reseal_security::conditional::{AttributeKind, ConditionalExpression, Token};
use reseal_security::{
    sid_positions, AccessMask, Ace, AceFlags, Acl, BasicAce, CompoundAce, Control, Guid, ObjectAce,
    ResourceAttributeAce, SecurityDescriptor, Sid,
};

fn sid() -> impl Strategy<Value = Sid> {
    (
        prop_oneof![0u64..=18, Just(0x1_0000_0000u64), Just(0xFFFF_FFFF_FFFFu64)],
        prop::collection::vec(any::<u32>(), 0..=6),
    )
        .prop_map(|(a, s)| Sid::new(a, &s).unwrap())
}

fn well_known_or_random_sid() -> impl Strategy<Value = Sid> {
    prop_oneof![
        sid(),
        prop::sample::select(vec![
            "S-1-5-32-544",
            "S-1-5-18",
            "S-1-1-0",
            "S-1-3-0",
            "S-1-16-8192",
            "S-1-5-21-1-2-3-500"
        ])
        .prop_map(|s| s.parse().unwrap()),
    ]
}

fn guid() -> impl Strategy<Value = Option<Guid>> {
    prop::option::of(any::<[u8; 16]>().prop_map(Guid))
}

fn operand() -> impl Strategy<Value = Token> {
    prop_oneof![
        (any::<i64>(), 1u8..=3, any::<bool>()).prop_map(|(v, base, plus)| Token::Int {
            code: 4,
            value: v,
            sign: if v < 0 {
                2
            } else if plus {
                1
            } else {
                3
            },
            base
        }),
        "[a-zA-Z0-9 ]{0,8}".prop_map(Token::String),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(Token::Octets),
    ]
}

fn attribute() -> impl Strategy<Value = Token> {
    (
        prop::sample::select(vec![
            AttributeKind::Local,
            AttributeKind::User,
            AttributeKind::Resource,
            AttributeKind::Device,
        ]),
        "x[a-zA-Z0-9_]{0,6}",
    )
        .prop_map(|(k, n)| Token::Attribute(k, n))
}

/// A random boolean expression as a postfix token list.
fn condition() -> impl Strategy<Value = Vec<Token>> {
    let leaf = prop_oneof![
        (
            attribute(),
            operand(),
            prop::sample::select(vec![
                0x80u8, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x88, 0x8E, 0x8F
            ])
        )
            .prop_map(|(a, o, op)| vec![a, o, Token::Operator(op)]),
        (
            prop::collection::vec(sid().prop_map(Token::Sid), 1..3),
            prop::sample::select(vec![0x89u8, 0x8A, 0x8B, 0x8C, 0x90, 0x91, 0x92, 0x93])
        )
            .prop_map(|(s, op)| vec![Token::Composite(s), Token::Operator(op)]),
        (attribute(), prop::sample::select(vec![0x87u8, 0x8D]))
            .prop_map(|(a, op)| vec![a, Token::Operator(op)]),
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                inner.clone(),
                prop::sample::select(vec![0xA0u8, 0xA1])
            )
                .prop_map(|(mut a, b, op)| {
                    a.extend(b);
                    a.push(Token::Operator(op));
                    a
                }),
            inner.prop_map(|mut a| {
                a.push(Token::Operator(0xA2));
                a
            }),
        ]
    })
}

fn claim() -> impl Strategy<Value = ClaimAttribute> {
    let values = prop_oneof![
        prop::collection::vec(any::<i64>().prop_map(ClaimValue::Int64), 1..3)
            .prop_map(|v| (1u16, v)),
        prop::collection::vec(any::<u64>().prop_map(ClaimValue::Uint64), 1..3)
            .prop_map(|v| (2u16, v)),
        prop::collection::vec("[a-z ]{0,6}".prop_map(ClaimValue::String), 1..3)
            .prop_map(|v| (3u16, v)),
        prop::collection::vec(sid().prop_map(|s| ClaimValue::Sid(s.to_bytes())), 1..3)
            .prop_map(|v| (5u16, v)),
        prop::collection::vec((0u64..2).prop_map(ClaimValue::Boolean), 1..3)
            .prop_map(|v| (6u16, v)),
        prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..5).prop_map(ClaimValue::Octets),
            1..3
        )
        .prop_map(|v| (0x10u16, v)),
    ];
    ("[a-zA-Z]{1,8}", any::<u32>(), values).prop_map(|(name, flags, (value_type, values))| {
        ClaimAttribute {
            name,
            value_type,
            reserved: 0,
            flags,
            values,
        }
    })
}

/// ACEs SDDL can express (no slack; flags without the 0x20 bit).
fn sddl_ace() -> impl Strategy<Value = Ace> {
    let flags = any::<u8>()
        .prop_map(|f| AceFlags(f & !AceFlags::CRITICAL))
        .boxed();
    let mask = any::<u32>().prop_map(AccessMask).boxed();
    let basic = (flags.clone(), mask.clone(), well_known_or_random_sid())
        .prop_map(|(flags, mask, sid)| BasicAce {
            flags,
            mask,
            sid,
            extra: Vec::new(),
        })
        .boxed();
    let cond = (
        flags.clone(),
        mask.clone(),
        well_known_or_random_sid(),
        condition(),
    )
        .prop_map(|(flags, mask, sid, t)| BasicAce {
            flags,
            mask,
            sid,
            extra: ConditionalExpression { tokens: t }.encode(),
        })
        .boxed();
    let object = (
        flags.clone(),
        mask.clone(),
        guid(),
        guid(),
        well_known_or_random_sid(),
    )
        .prop_map(|(flags, mask, o, i, sid)| ObjectAce {
            flags,
            mask,
            other_object_flags: 0,
            object_type: o,
            inherited_object_type: i,
            sid,
            extra: Vec::new(),
        })
        .boxed();
    let cond_object = (object.clone(), condition()).prop_map(|(mut o, t)| {
        o.extra = ConditionalExpression { tokens: t }.encode();
        o
    });
    prop_oneof![
        basic.clone().prop_map(Ace::AccessAllowed),
        basic.clone().prop_map(Ace::AccessDenied),
        basic.clone().prop_map(Ace::SystemAudit),
        basic.clone().prop_map(Ace::SystemAlarm),
        basic.clone().prop_map(Ace::SystemMandatoryLabel),
        basic.clone().prop_map(Ace::SystemScopedPolicyId),
        basic.clone().prop_map(Ace::SystemProcessTrustLabel),
        object.clone().prop_map(Ace::AccessAllowedObject),
        object.clone().prop_map(Ace::AccessDeniedObject),
        object.clone().prop_map(Ace::SystemAuditObject),
        object.prop_map(Ace::SystemAlarmObject),
        cond.clone().prop_map(Ace::AccessAllowedCallback),
        cond.clone().prop_map(Ace::AccessDeniedCallback),
        cond.clone().prop_map(Ace::SystemAuditCallback),
        cond.prop_map(Ace::SystemAccessFilter),
        cond_object.prop_map(Ace::AccessAllowedCallbackObject),
        (flags, claim()).prop_map(|(flags, c)| Ace::SystemResourceAttribute(
            ResourceAttributeAce {
                flags,
                mask: AccessMask(0),
                sid: "S-1-1-0".parse().unwrap(),
                data: c.encode(),
            }
        )),
    ]
}

/// Any ACE, including kinds and slack SDDL cannot express.
fn any_ace() -> impl Strategy<Value = Ace> {
    let slack = prop::collection::vec(any::<u8>(), 0..9).boxed();
    prop_oneof![
        4 => sddl_ace(),
        1 => (sddl_ace(), slack.clone()).prop_map(|(mut a, s)| {
            match &mut a {
                Ace::AccessAllowed(b) | Ace::AccessDenied(b) | Ace::SystemMandatoryLabel(b) => b.extra = s,
                Ace::AccessAllowedObject(o) => o.extra = s,
                _ => {}
            }
            a
        }),
        1 => (any::<u8>(), any::<u32>(), any::<u32>(), sid(), sid(), slack.clone()).prop_map(|(f, m, ct, server, client, extra)| {
            Ace::AccessAllowedCompound(CompoundAce {
                flags: AceFlags(f),
                mask: AccessMask(m),
                compound_type: ct as u16,
                reserved: (ct >> 16) as u16,
                server,
                client,
                extra,
            })
        }),
        1 => (any::<u8>(), any::<u32>(), sid(), slack.clone()).prop_map(|(f, m, sid, extra)| {
            Ace::SystemAlarmCallback(BasicAce { flags: AceFlags(f), mask: AccessMask(m), sid, extra })
        }),
        1 => (0x16u8..=0xFF, any::<u8>(), slack).prop_map(|(t, f, body)| Ace::Unknown { ace_type: t, flags: AceFlags(f), body }),
    ]
}

fn acl_flag_bits(dacl: bool) -> impl Strategy<Value = u16> {
    let (p, ar, ai) = if dacl {
        (
            Control::DACL_PROTECTED,
            Control::DACL_AUTO_INHERIT_REQ,
            Control::DACL_AUTO_INHERITED,
        )
    } else {
        (
            Control::SACL_PROTECTED,
            Control::SACL_AUTO_INHERIT_REQ,
            Control::SACL_AUTO_INHERITED,
        )
    };
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        move |(a, b, c)| if a { p } else { 0 } | if b { ar } else { 0 } | if c { ai } else { 0 },
    )
}

/// 0 = absent, 1 = NULL ACL (present bit, no ACL), 2 = ACL.
fn sddl_descriptor() -> impl Strategy<Value = SecurityDescriptor> {
    (
        prop::option::of(well_known_or_random_sid()),
        prop::option::of(well_known_or_random_sid()),
        (
            0u8..3,
            prop::collection::vec(sddl_ace(), 0..4),
            acl_flag_bits(true),
        ),
        (
            0u8..3,
            prop::collection::vec(sddl_ace(), 0..3),
            acl_flag_bits(false),
        ),
    )
        .prop_map(|(owner, group, (dk, daces, dflags), (sk, saces, sflags))| {
            let mut sd = SecurityDescriptor::default();
            sd.owner = owner;
            sd.group = group;
            if dk > 0 {
                sd.control.0 |= Control::DACL_PRESENT | dflags;
                sd.dacl = (dk == 2).then(|| Acl::new(daces));
            }
            if sk > 0 {
                sd.control.0 |= Control::SACL_PRESENT | sflags;
                sd.sacl = (sk == 2).then(|| Acl::new(saces));
            }
            sd
        })
}

fn any_descriptor() -> impl Strategy<Value = SecurityDescriptor> {
    (
        sddl_descriptor(),
        any::<u16>(),
        any::<u8>(),
        prop::option::of(prop::collection::vec(any_ace(), 0..5)),
        prop::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(mut sd, control, sbz1, aces, slack)| {
            sd.control = Control(control);
            sd.sbz1 = sbz1;
            if let Some(aces) = aces {
                let mut acl = Acl::new(aces);
                acl.slack = slack;
                sd.dacl = Some(acl);
            }
            sd
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bytes_round_trip(sd in any_descriptor()) {
        let bytes = sd.to_bytes().unwrap();
        let back = SecurityDescriptor::parse(&bytes).unwrap();
        prop_assert_eq!(&back, &sd);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes.clone());
        // every position holds a SID
        for r in sid_positions(&bytes).unwrap() {
            let s = Sid::from_bytes(&bytes[r.clone()]).unwrap();
            prop_assert_eq!(s.len(), r.len());
        }
    }

    #[test]
    fn sddl_round_trip(sd in sddl_descriptor()) {
        let text = sd.to_sddl().unwrap();
        let back = SecurityDescriptor::from_sddl(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back.normalized(), sd.normalized(), "{}", text);
        prop_assert_eq!(back.to_sddl().unwrap(), text);
    }

    #[test]
    fn sid_rewrite_with_length_change(sd in sddl_descriptor()) {
        // Map every SID to a longer one and back; the descriptor must come back equal.
        let mut m = sd.clone();
        let n = m.map_sids(|s| if s.sub_authorities().len() < 15 { s.with_rid(7).ok() } else { None });
        let bytes = m.to_bytes().unwrap();
        let mut back = SecurityDescriptor::parse(&bytes).unwrap();
        let k = back.map_sids(|s| {
            let subs = s.sub_authorities();
            (subs.last() == Some(&7) && !subs.is_empty()).then(|| Sid::new(s.authority(), &subs[..subs.len() - 1]).unwrap())
        });
        prop_assert!(k >= n);
        prop_assert_eq!(back.normalized(), sd.normalized());
    }

    #[test]
    fn hostile_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(sd) = SecurityDescriptor::parse(&bytes) {
            prop_assert_eq!(sd.to_bytes().unwrap(), bytes.clone());
            let _ = sd.to_sddl();
            let _ = sd.to_canonical_bytes();
        }
        let _ = sid_positions(&bytes);
        let _ = ConditionalExpression::parse(&bytes);
        let _ = ClaimAttribute::parse(&bytes);
        let _ = Ace::parse(&bytes);
    }

    #[test]
    fn mutated_descriptors_never_panic(sd in any_descriptor(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = sd.to_bytes().unwrap();
        for (i, v) in flips {
            let k = i.index(bytes.len());
            bytes[k] = v;
        }
        if let Ok(p) = SecurityDescriptor::parse(&bytes) {
            prop_assert_eq!(p.to_bytes().unwrap(), bytes.clone());
            let _ = p.to_sddl();
            let mut q = p.clone();
            q.map_sids(|s| s.with_rid(1).ok());
            let _ = q.to_bytes();
        }
        let _ = sid_positions(&bytes);
    }

    #[test]
    fn hostile_sddl_never_panics(s in "[OGDS:()A-Z;0-9a-z\\-\"{}@.,!=&|# ]{0,80}") {
        let _ = SecurityDescriptor::from_sddl(&s);
        let _ = ConditionalExpression::from_sddl(&s, 0, None);
        let _ = s.parse::<Sid>();
    }
}

/// Throughput of the SidMap scanners on a 64 MiB buffer (run with
/// `cargo test --release -p reseal-security --test proptests -- --ignored --nocapture`).
#[test]
#[ignore = "benchmark"]
fn sidmap_throughput() {
    use reseal_security::sidmap::SidMap;
    let map = SidMap::new(
        "S-1-5-21-111-222-333".parse().unwrap(),
        "S-1-5-21-4000000000-5-6".parse().unwrap(),
    )
    .unwrap();
    let mut buf: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let sid = map.old_domain().with_rid(1000).unwrap().to_bytes();
    let text = b"S-1-5-21-111-222-333-1000";
    for k in 0..1000 {
        let at = k * 60_000 + 7;
        buf[at..at + sid.len()].copy_from_slice(&sid);
        buf[at + 99] = b'\\';
        buf[at + 100..at + 100 + text.len()].copy_from_slice(text);
        buf[at + 100 + text.len()] = b'\\';
    }
    let t = std::time::Instant::now();
    let n = map.replace_binary(&mut buf);
    let b = t.elapsed();
    let t = std::time::Instant::now();
    let (_, m) = map.replace_text(&buf);
    let s = t.elapsed();
    assert_eq!((n, m), (1000, 1000));
    eprintln!(
        "64 MiB: binary {b:?} ({:.0} MB/s), text {s:?} ({:.0} MB/s)",
        64.0 / b.as_secs_f64(),
        64.0 / s.as_secs_f64()
    );
}
