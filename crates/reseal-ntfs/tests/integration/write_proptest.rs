//! Randomised operation sequences (create/write/grow/shrink/delete/rename/set-descriptor) on
//! fresh mkntfs volumes, compared against a model through an ntfs-3g mount and ntfsfix.

use crate::ntfsw_common;

use std::collections::BTreeMap;

use ntfsw_common::*;
use proptest::prelude::*;
use reseal_ntfs::Volume;

const NAMES: &[&str] = &[
    "a.txt",
    "A.TXT",
    "b",
    "ünï",
    "日本語.dat",
    "x y z",
    "long-name-0123456789",
    "C",
    "c",
    "ß",
];
const DIRS: &[&str] = &["", "d1", "d1/d2"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize, usize),
    Write(usize, u32, u16, u8),
    SetLen(usize, u32),
    Delete(usize),
    Rename(usize, usize, usize),
    SetSd(usize, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..DIRS.len(), 0..NAMES.len()).prop_map(|(d, n)| Op::Create(d, n)),
        3 => (any::<usize>(), 0u32..400_000, 1u16..20_000, any::<u8>()).prop_map(|(f, o, l, b)| Op::Write(f, o, l, b)),
        2 => (any::<usize>(), 0u32..600_000).prop_map(|(f, n)| Op::SetLen(f, n)),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => (any::<usize>(), 0..DIRS.len(), 0..NAMES.len()).prop_map(|(f, d, n)| Op::Rename(f, d, n)),
        1 => (any::<usize>(), 0u8..4).prop_map(|(f, s)| Op::SetSd(f, s)),
    ]
}

fn sd(variant: u8) -> Vec<u8> {
    // Owner S-1-5-21-1-2-<variant>-500, no group, no DACL.
    let mut s = vec![
        1u8, 0, 0x00, 0x80, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    s.extend_from_slice(&[1, 5, 0, 0, 0, 0, 0, 5]);
    for x in [21u32, 1, 2, u32::from(variant), 500] {
        s.extend_from_slice(&x.to_le_bytes());
    }
    s
}

fn path(d: usize, n: usize) -> String {
    if DIRS[d].is_empty() {
        NAMES[n].to_string()
    } else {
        format!("{}/{}", DIRS[d], NAMES[n])
    }
}

fn run_case(ops: &[Op], cluster: u32) -> Result<(), TestCaseError> {
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 32, cluster);
    let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut sds: BTreeMap<String, u8> = BTreeMap::new();
    {
        let mut v = Volume::open(file_dev(&img)).unwrap();
        v.create_dir("d1").unwrap();
        v.create_dir("d1/d2").unwrap();
        for o in ops {
            let files: Vec<String> = model.keys().cloned().collect();
            let pick = |i: usize| files.get(i % files.len().max(1)).cloned();
            match o {
                Op::Create(d, n) => {
                    let p = path(*d, *n);
                    if let std::collections::btree_map::Entry::Vacant(e) = model.entry(p.clone()) {
                        v.create_file(&p).unwrap();
                        e.insert(Vec::new());
                    } else {
                        prop_assert!(v.create_file(&p).is_err());
                    }
                }
                Op::Write(f, off, len, b) => {
                    if let Some(p) = pick(*f) {
                        let data: Vec<u8> = (0..*len).map(|i| b.wrapping_add(i as u8)).collect();
                        v.write_at(&p, u64::from(*off), &data).unwrap();
                        let m = model.get_mut(&p).unwrap();
                        let end = *off as usize + data.len();
                        if m.len() < end {
                            m.resize(end, 0);
                        }
                        m[*off as usize..end].copy_from_slice(&data);
                    }
                }
                Op::SetLen(f, n) => {
                    if let Some(p) = pick(*f) {
                        v.set_len(&p, u64::from(*n)).unwrap();
                        model.get_mut(&p).unwrap().resize(*n as usize, 0);
                    }
                }
                Op::Delete(f) => {
                    if let Some(p) = pick(*f) {
                        v.remove(&p).unwrap();
                        model.remove(&p);
                        sds.remove(&p);
                    }
                }
                Op::Rename(f, d, n) => {
                    if let Some(p) = pick(*f) {
                        let q = path(*d, *n);
                        if model.contains_key(&q) {
                            if q != p {
                                prop_assert!(v.rename(&p, &q).is_err());
                            }
                        } else {
                            v.rename(&p, &q).unwrap();
                            let c = model.remove(&p).unwrap();
                            model.insert(q.clone(), c);
                            if let Some(s) = sds.remove(&p) {
                                sds.insert(q, s);
                            }
                        }
                    }
                }
                Op::SetSd(f, s) => {
                    if let Some(p) = pick(*f) {
                        v.set_security(&p, &sd(*s)).unwrap();
                        sds.insert(p, *s);
                    }
                }
            }
        }
        for (p, c) in &model {
            let got = v.read_file(p).unwrap();
            prop_assert!(got == *c, "our read of {} differs", p);
        }
        for (p, s) in &sds {
            prop_assert_eq!(v.security_descriptor(p).unwrap(), sd(*s));
        }
        v.flush().unwrap();
    }
    ntfsfix_clean(&img);
    let m = Mount::new(&img, &td.path().join("m"));
    let mut seen = BTreeMap::new();
    for d in DIRS {
        for e in std::fs::read_dir(m.dir.join(d)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                let name = e.file_name().into_string().unwrap();
                let p = if d.is_empty() {
                    name
                } else {
                    format!("{d}/{name}")
                };
                seen.insert(p, std::fs::read(e.path()).unwrap());
            }
        }
    }
    prop_assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        model.keys().collect::<Vec<_>>()
    );
    for (p, c) in &model {
        prop_assert!(seen[p] == *c, "ntfs-3g read of {} differs", p);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn random_ops_4k(ops in proptest::collection::vec(op(), 1..40)) {
        if have("mkntfs") && have("ntfs-3g") {
            run_case(&ops, 4096)?;
        }
    }

    #[test]
    fn random_ops_512(ops in proptest::collection::vec(op(), 1..40)) {
        if have("mkntfs") && have("ntfs-3g") {
            run_case(&ops, 512)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    #[ignore = "soak: long randomised run"]
    fn soak_random_ops(ops in proptest::collection::vec(op(), 1..200), small in any::<bool>()) {
        if have("mkntfs") && have("ntfs-3g") {
            run_case(&ops, if small { 512 } else { 4096 })?;
        }
    }
}
