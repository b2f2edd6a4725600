//! Randomised edit sequences applied to a hive and to an in-memory model; after commit
//! our reader, hivexregedit and regipy must read exactly the model, `check` must be
//! clean (no leaked cells either) and sk refcounts must equal the keys using each sk.
use crate::common;

use proptest::prelude::*;
use reseal_hive::name::cmp_units;
use reseal_hive::{CellOffset, Hive};
use std::cmp::Ordering;

#[derive(Debug, Clone)]
struct Node {
    name: String,
    values: Vec<(String, u32, Vec<u8>)>,
    children: Vec<Node>,
    sd: Vec<u8>,
}

fn eq_ci(a: &str, b: &str) -> bool {
    cmp_units(a.encode_utf16(), b.encode_utf16()) == Ordering::Equal
}

impl Node {
    /// Paths (index chains) of every node, depth first.
    fn paths(&self, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(prefix.clone());
        for (i, c) in self.children.iter().enumerate() {
            prefix.push(i);
            c.paths(prefix, out);
            prefix.pop();
        }
    }
    fn get(&mut self, p: &[usize]) -> &mut Node {
        match p.split_first() {
            None => self,
            Some((&i, rest)) => self.children[i].get(rest),
        }
    }
    fn path_str(&self, p: &[usize]) -> String {
        let mut n = self;
        let mut parts = Vec::new();
        for &i in p {
            n = &n.children[i];
            parts.push(n.name.clone());
        }
        parts.join("\\")
    }
    fn sort(&mut self) {
        self.children
            .sort_by(|a, b| cmp_units(a.name.encode_utf16(), b.name.encode_utf16()));
        for c in &mut self.children {
            c.sort();
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, usize),
    Delete(usize),
    Rename(usize, usize),
    SetValue(usize, usize, u32, usize),
    DeleteValue(usize, usize),
    SetSecurity(usize, usize),
    /// Many keys at once under one parent (drives lists past one leaf into ri).
    Bulk(usize, u16, u16),
}

const NAMES: &[&str] = &[
    "a",
    "A",
    "ä",
    "Ä",
    "key",
    "KEY",
    "Ключ",
    "ключ",
    "x y",
    "ß",
    "ǅ",
    "ǆ",
    "名前",
    "long_name_with_many_characters_to_grow_cells",
    "z",
    "Z9",
];
const SIZES: &[usize] = &[0, 1, 4, 5, 100, 4000, 16344, 16345, 40000];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), 0..NAMES.len()).prop_map(|(k, n)| Op::Create(k, n)),
        1 => any::<usize>().prop_map(Op::Delete),
        2 => (any::<usize>(), 0..NAMES.len()).prop_map(|(k, n)| Op::Rename(k, n)),
        4 => (any::<usize>(), 0..NAMES.len(), prop_oneof![Just(1u32), Just(3), Just(4), Just(7), Just(0x1234)], 0..SIZES.len())
            .prop_map(|(k, n, t, s)| Op::SetValue(k, n, t, s)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(k, v)| Op::DeleteValue(k, v)),
        1 => (any::<usize>(), 0..3usize).prop_map(|(k, s)| Op::SetSecurity(k, s)),
        1 => (0..3usize, any::<u16>(), 1..400u16).prop_map(|(k, a, n)| Op::Bulk(k, a, n)),
    ]
}

fn base_hive(minor: u32) -> Vec<u8> {
    let mut b = common::load("hivex/minimal").expect("corpus");
    b[24..28].copy_from_slice(&minor.to_le_bytes());
    let c = reseal_hive::base_block::checksum(&b[..512]);
    b[508..512].copy_from_slice(&c.to_le_bytes());
    b
}

fn run(ops: &[Op], minor: u32, oracles: bool) -> Result<(), TestCaseError> {
    let mut h = Hive::from_bytes(base_hive(minor)).expect("open");
    h.make_writable().expect("writable");
    let root_sd = h.security_of(h.root_offset()).expect("sd");
    let sds: Vec<Vec<u8>> = (0..3u8)
        .map(|i| {
            let mut s = root_sd.clone();
            let n = s.len();
            s[n - 1] = s[n - 1].wrapping_add(i);
            s
        })
        .collect();
    let mut model = Node {
        name: String::new(),
        values: Vec::new(),
        children: Vec::new(),
        sd: root_sd.clone(),
    };
    for (i, op) in ops.iter().enumerate() {
        let mut all = Vec::new();
        model.paths(&mut Vec::new(), &mut all);
        let pick = |k: usize| all[k % all.len()].clone();
        match op {
            Op::Create(k, n) => {
                let p = pick(*k);
                if p.len() >= 6 {
                    continue;
                }
                let name = NAMES[*n];
                let path = model.path_str(&p);
                let parent = h.open_path(&path).expect("parent").offset();
                h.create_key(parent, name).expect("create");
                let node = model.get(&p);
                if !node.children.iter().any(|c| eq_ci(&c.name, name)) {
                    let sd = node.sd.clone();
                    node.children.push(Node {
                        name: name.to_string(),
                        values: Vec::new(),
                        children: Vec::new(),
                        sd,
                    });
                }
            }
            Op::Delete(k) => {
                let p = pick(*k);
                if p.is_empty() {
                    continue;
                }
                let off = h.open_path(&model.path_str(&p)).expect("key").offset();
                h.delete_key(off, true).expect("delete");
                let (last, parent) = p.split_last().expect("non-root");
                model.get(parent).children.remove(*last);
            }
            Op::Rename(k, n) => {
                let p = pick(*k);
                if p.is_empty() {
                    continue;
                }
                let name = NAMES[*n];
                let off = h.open_path(&model.path_str(&p)).expect("key").offset();
                let (last, parent) = p.split_last().expect("non-root");
                let collides = model
                    .get(parent)
                    .children
                    .iter()
                    .enumerate()
                    .any(|(j, c)| j != *last && eq_ci(&c.name, name));
                let r = h.rename_key(off, name);
                if collides {
                    prop_assert!(r.is_err(), "op {i}: rename onto a sibling must fail");
                } else {
                    r.expect("rename");
                    model.get(&p).name = name.to_string();
                }
            }
            Op::SetValue(k, n, t, s) => {
                let p = pick(*k);
                let name = if *n == 0 { "" } else { NAMES[*n] };
                let data: Vec<u8> = (0..SIZES[*s])
                    .map(|j| (j as u32).wrapping_mul(31).wrapping_add(i as u32) as u8)
                    .collect();
                let off = h.open_path(&model.path_str(&p)).expect("key").offset();
                h.set_value(off, name, *t, &data).expect("set value");
                let node = model.get(&p);
                match node.values.iter_mut().find(|v| eq_ci(&v.0, name)) {
                    Some(v) => {
                        v.1 = *t;
                        v.2 = data;
                    }
                    None => node.values.push((name.to_string(), *t, data)),
                }
            }
            Op::DeleteValue(k, v) => {
                let p = pick(*k);
                let off = h.open_path(&model.path_str(&p)).expect("key").offset();
                let node = model.get(&p);
                if node.values.is_empty() {
                    continue;
                }
                let idx = v % node.values.len();
                let name = node.values[idx].0.clone();
                prop_assert!(h.delete_value(off, &name).expect("delete value"));
                node.values.remove(idx);
            }
            Op::Bulk(k, start, count) => {
                let p = pick(*k);
                if p.len() >= 6 {
                    continue;
                }
                let parent = h.open_path(&model.path_str(&p)).expect("parent").offset();
                for j in 0..*count {
                    let name = format!("b{}", (*start as u32 + j as u32 * 7919) % 5000);
                    h.create_key(parent, &name).expect("bulk create");
                    let node = model.get(&p);
                    if !node.children.iter().any(|c| eq_ci(&c.name, &name)) {
                        let sd = node.sd.clone();
                        node.children.push(Node {
                            name,
                            values: Vec::new(),
                            children: Vec::new(),
                            sd,
                        });
                    }
                }
            }
            Op::SetSecurity(k, s) => {
                let p = pick(*k);
                let off = h.open_path(&model.path_str(&p)).expect("key").offset();
                h.set_security(off, &sds[*s]).expect("set security");
                model.get(&p).sd = sds[*s].clone();
            }
        }
    }
    h.commit().expect("commit");
    let bytes = h.into_bytes();
    let h = Hive::from_bytes(bytes.clone()).expect("reopen");
    model.sort();
    compare(&h, h.root_offset(), &model, "")?;
    let problems = reseal_hive::check(&h);
    prop_assert!(problems.is_empty(), "check: {:?}", problems);
    if oracles {
        common::verify_with_oracles("proptest", &bytes);
    }
    Ok(())
}

fn compare(h: &Hive, off: CellOffset, m: &Node, path: &str) -> Result<(), TestCaseError> {
    let k = h.key(off).expect("key");
    prop_assert_eq!(&h.security_of(off).expect("sd"), &m.sd, "sd of {}", path);
    let mut vals: Vec<(String, u32, Vec<u8>)> = k
        .values()
        .expect("values")
        .map(|v| v.expect("v"))
        .map(|v| (v.name(), v.data_type(), v.data().expect("d").into_owned()))
        .collect();
    let mut mv = m.values.clone();
    vals.sort();
    mv.sort();
    prop_assert_eq!(vals, mv, "values of {}", path);
    let kids: Vec<_> = k
        .subkeys()
        .expect("subkeys")
        .map(|c| c.expect("c"))
        .collect();
    prop_assert_eq!(kids.len(), m.children.len(), "children of {}", path);
    for (c, mc) in kids.iter().zip(&m.children) {
        prop_assert_eq!(c.name(), mc.name.clone(), "order under {}", path);
        compare(h, c.offset(), mc, &format!("{path}\\{}", mc.name))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]
    #[test]
    fn edits_match_model_v13(ops in proptest::collection::vec(op(), 1..300)) {
        run(&ops, 3, true)?;
    }

    #[test]
    fn edits_match_model_v15(ops in proptest::collection::vec(op(), 1..300)) {
        run(&ops, 5, true)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    #[ignore = "soak: thousands of operations per case"]
    fn soak_edits_match_model(ops in proptest::collection::vec(op(), 2000..5000)) {
        run(&ops, 5, true)?;
    }
}
