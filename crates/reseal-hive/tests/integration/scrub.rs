//! `Hive::scrub`: an old SID left in a free cell, in the slack after value data, after the
//! last hbin, is gone from every byte of the file afterwards (binary, ASCII, UTF-16LE), and
//! what hivex, regipy and libregf read is unchanged. Also on the corpus SAM hives.

use crate::common;

use std::process::Command;

use reseal_hive::scrub::UnusedKind;
use reseal_hive::{Hive, REG_BINARY, REG_SZ};

const OLD_BIN: [u8; 28] = [
    1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 111, 0, 0, 0, 222, 0, 0, 0, 0x4D, 1, 0, 0, 0xE9, 3, 0, 0,
]; // S-1-5-21-111-222-333-1001
const OLD_TEXT: &str = "111-222-333";

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Offsets of the old SID in any form (binary X,Y,Z, ASCII, UTF-16LE) in `b`.
fn find_old(b: &[u8], xyz: &[u8], text: &str) -> Vec<usize> {
    let pats = [xyz.to_vec(), text.as_bytes().to_vec(), utf16(text)];
    let mut out = Vec::new();
    for p in &pats {
        out.extend(
            b.windows(p.len())
                .enumerate()
                .filter(|(_, w)| w == p)
                .map(|(i, _)| i),
        );
    }
    out.sort_unstable();
    out
}

fn sd() -> Vec<u8> {
    // Self-relative SD: owner BA, group SY, empty DACL.
    let mut sd = vec![1, 0, 0x04, 0x80];
    let owner = [1u8, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
    let group = [1u8, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
    let dacl = [2u8, 0, 8, 0, 0, 0, 0, 0];
    let o = 20u32;
    let g = o + owner.len() as u32;
    let d = g + group.len() as u32;
    sd.extend(o.to_le_bytes());
    sd.extend(g.to_le_bytes());
    sd.extend(0u32.to_le_bytes());
    sd.extend(d.to_le_bytes());
    sd.extend(owner);
    sd.extend(group);
    sd.extend(dacl);
    sd
}

fn regfexport(bytes: &[u8]) -> String {
    let f = common::write_temp(bytes);
    let o = Command::new("regfexport")
        .arg(f.path())
        .output()
        .expect("run regfexport");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        // regfexport names the file it read.
        .filter(|l| !l.contains(&*f.path().to_string_lossy()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every oracle reads `after` as it read `before`, and `after` checks clean. (Oracle against
/// oracle, not against our reader: regipy misses some values of the corpus SYSTEM_B either way.)
fn same_content(label: &str, before: &[u8], after: &[u8]) {
    let errors: Vec<_> = reseal_hive::check(&Hive::from_bytes(after.to_vec()).unwrap())
        .into_iter()
        .filter(|p| p.severity == reseal_hive::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{label}: check: {errors:?}");
    if common::need_tool("python3") {
        let a = common::regipy_model(before).unwrap();
        let b = common::regipy_model(after).unwrap();
        assert!(a == b, "{label}: regipy reads differently");
    }
    let a = common::our_model(&Hive::from_bytes(before.to_vec()).unwrap()).unwrap();
    let b = common::our_model(&Hive::from_bytes(after.to_vec()).unwrap()).unwrap();
    assert!(a == b, "{label}: our reading changed");
    if common::need_tool("hivexregedit") {
        let a = common::hivex_model(before).unwrap();
        let b = common::hivex_model(after).unwrap();
        let d = common::diff_models(&a, &b, 10);
        assert!(d.is_empty(), "{label}: hivexregedit export changed: {d:#?}");
    }
    if common::need_tool("regfexport") {
        // libregf shows a string value without a terminating NUL up to the first NUL it finds
        // in the cell, slack included (SYSTEM_B `…\vmbus\Parameters\Winsock\0` szProtocol: 22
        // bytes recorded, shown as 28 with the slack's bytes): after the scrub it shows the
        // recorded string. Anything else must be equal.
        let (a, b) = (regfexport(before), regfexport(after));
        let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        assert_eq!(a.len(), b.len(), "{label}: regfexport output changed");
        for (x, y) in a.iter().zip(&b) {
            let slack_shown = (x.starts_with("Data size: ") && y.starts_with("Data size: "))
                || (x.starts_with("Data: ") && x.starts_with(*y));
            assert!(
                x == y || slack_shown,
                "{label}: regfexport output changed: {x:?} -> {y:?}"
            );
        }
    }
}

#[test]
fn old_sid_in_free_cell_slack_and_after_bins_is_gone() {
    let mut h = Hive::new_empty("ROOT", &sd()).unwrap();
    let k = h
        .create_path("SAM\\Domains\\Builtin\\Aliases\\00000221")
        .unwrap();
    // Live data: a SID of another domain; then the old SID in binary, ASCII and UTF-16LE,
    // which will be the slack once the recorded length is cut (an earlier, longer list).
    let live: [u8; 28] = {
        let mut b = OLD_BIN;
        b[12] = 9;
        b[16] = 9;
        b[20] = 9;
        b
    };
    let mut data = live.to_vec();
    data.extend(OLD_BIN);
    data.extend(format!("S-1-5-21-{OLD_TEXT}-500").as_bytes());
    data.extend(utf16(&format!("S-1-5-21-{OLD_TEXT}-501")));
    h.set_value(k, "C", REG_BINARY, &data).unwrap();
    h.set_value(k, "Name", REG_SZ, &utf16("Users\0")).unwrap();
    // A value to free later (its cells get a SID written into them below).
    h.set_value(k, "Gone", REG_BINARY, &[0x55; 200]).unwrap();
    h.commit().unwrap();
    let mut b = h.into_bytes();

    // Cut C's recorded length to the live SID (vk data size at vk+4).
    let h = Hive::from_bytes(b.clone()).unwrap();
    let kk = h
        .open_path("SAM\\Domains\\Builtin\\Aliases\\00000221")
        .unwrap();
    let vk = kk.value("C").unwrap().unwrap().offset();
    let gone_data = kk.value("Gone").unwrap().unwrap().raw_data_offset();
    let vk_file = vk.file_offset() as usize + 4;
    b[vk_file + 4..vk_file + 8].copy_from_slice(&(live.len() as u32).to_le_bytes());
    drop(h);
    // Delete "Gone" (our editor zeroes what it frees), then put the old SID in a free cell the
    // way Windows leaves it: the cell's old payload.
    let mut h = Hive::from_bytes(b).unwrap();
    h.make_writable().unwrap();
    let koff = h
        .open_path("SAM\\Domains\\Builtin\\Aliases\\00000221")
        .unwrap()
        .offset();
    h.delete_value(koff, "Gone").unwrap();
    h.commit().unwrap();
    let mut b = h.into_bytes();
    let free_file = gone_data as usize + 4096;
    assert!(
        (i32::from_le_bytes(b[free_file..free_file + 4].try_into().unwrap())) > 0,
        "the data cell of Gone is free"
    );
    b[free_file + 8..free_file + 36].copy_from_slice(&OLD_BIN);
    let t = utf16(&format!("S-1-5-21-{OLD_TEXT}-1001_Classes"));
    b[free_file + 40..free_file + 40 + t.len()].copy_from_slice(&t);
    // Slack after the last hbin.
    b.extend(vec![0u8; 4096]);
    let end = b.len() - 4096;
    b[end + 100..end + 128].copy_from_slice(&OLD_BIN);

    let xyz = &OLD_BIN[12..24];
    let before_hits = find_old(&b, xyz, OLD_TEXT);
    assert!(before_hits.len() >= 6, "{before_hits:?}");
    let before = b.clone();

    let mut h = Hive::from_bytes(b).unwrap();
    let kinds: Vec<UnusedKind> = h
        .unused_ranges()
        .unwrap()
        .into_iter()
        .filter(|u| !find_old(&before[u.range.clone()], xyz, OLD_TEXT).is_empty())
        .map(|u| u.kind)
        .collect();
    assert!(kinds.contains(&UnusedKind::FreeCell), "{kinds:?}");
    assert!(kinds.contains(&UnusedKind::Slack), "{kinds:?}");
    assert!(kinds.contains(&UnusedKind::AfterBins), "{kinds:?}");
    assert!(h.scrub().is_err(), "scrub needs writable mode");
    h.make_writable().unwrap();
    let rep = h.scrub().unwrap();
    assert!(
        rep.free_cells >= 1 && rep.slack_cells >= 1 && rep.after_bins,
        "{rep:?}"
    );
    h.commit().unwrap();
    let after = h.into_bytes();
    assert_eq!(after.len(), before.len());
    let left = find_old(&after, xyz, OLD_TEXT);
    assert!(left.is_empty(), "old SID left at {left:x?}");
    // The live SID and everything read is unchanged.
    let h2 = Hive::from_bytes(after.clone()).unwrap();
    let c = h2
        .open_path("SAM\\Domains\\Builtin\\Aliases\\00000221")
        .unwrap()
        .value("C")
        .unwrap()
        .unwrap();
    assert_eq!(&*c.data().unwrap(), &live[..]);
    // Oracles read the file without the trailing slack as hivex counts it as data.
    same_content("built", &before[..end], &after[..end]);

    // A second scrub has nothing to do and leaves the hive unmodified.
    let mut h3 = Hive::from_bytes(after).unwrap();
    h3.make_writable().unwrap();
    let again = h3.scrub().unwrap();
    assert_eq!(again.bytes, 0, "{again:?}");
    assert!(!h3.is_modified());
}

/// The corpus SAM hives (Windows NT 4.0 .. Server 2016, Windows 7): after a scrub every unused
/// byte is zero, every oracle reads the same, and the machine SID's binary form is only where
/// the hive's structures use it.
#[test]
fn corpus_sam_hives() {
    let mut done = 0;
    for (rel, logs) in [
        ("regipy/SAM.xz", None),
        ("plaso/regf/SAM", None),
        ("aiowinreg/nt/sam.reg", None),
        ("aiowinreg/win2008_32/sam.reg", None),
        ("aiowinreg/win2008r2_64/sam.reg", None),
        ("aiowinreg/win2012_64/sam.reg", None),
        ("aiowinreg/win2016_64/sam.reg", None),
        ("aiowinreg/win2016_64/security.reg", None),
        ("plaso/regf/UsrClass.dat.xz", None),
    ] {
        corpus_hive(rel, logs);
        done += 1;
    }
    assert!(done >= 8, "too few corpus hives");
}

/// A Windows 10 SYSTEM with big-data (db) values, recovered from its logs (12 MiB: minutes with
/// every oracle).
#[test]
#[ignore = "slow: 10-25 minutes on a shared 2-core machine (regipy and hivexregedit on 12 MiB)"]
fn corpus_system_with_big_data() {
    corpus_hive(
        "regipy/SYSTEM_B.xz",
        Some(("regipy/SYSTEM_B.LOG1.xz", "regipy/SYSTEM_B.LOG2.xz")),
    );
}

fn corpus_hive(rel: &str, logs: Option<(&str, &str)>) {
    {
        let Some(primary) = common::load(rel) else {
            return;
        };
        let mut h = match logs {
            Some((l1, l2)) => {
                Hive::recover(primary, common::load(l1), common::load(l2))
                    .unwrap()
                    .0
            }
            None => Hive::from_bytes(primary).unwrap(),
        };
        assert!(!h.is_dirty(), "{rel}: dirty");
        let before = h.to_bytes();
        h.make_writable().unwrap();
        let rep = h.scrub().unwrap();
        eprintln!("{rel}: {rep:?}");
        h.commit().unwrap();
        let after = h.into_bytes();
        let h = Hive::from_bytes(after.clone()).unwrap();
        for u in h.unused_ranges().unwrap() {
            assert!(
                after[u.range.clone()].iter().all(|&x| x == 0),
                "{rel}: {u:?} not zero"
            );
        }
        // Bytes that are not unused are unchanged, except the base block.
        let unused: Vec<_> = h.unused_ranges().unwrap();
        let mut mask = vec![false; after.len()];
        for u in &unused {
            mask[u.range.clone()].iter_mut().for_each(|m| *m = true);
        }
        for i in 4096..before.len().min(after.len()) {
            assert!(
                mask[i] || before[i] == after[i],
                "{rel}: used byte {i:#x} changed"
            );
        }
        let end = 4096 + h.base_block().hbins_size as usize;
        same_content(rel, &before[..end.min(before.len())], &after[..end]);
    }
}
