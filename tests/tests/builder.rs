//! Sanity of the test-image builder itself: the disks it makes are what independent tools see.

use reseal_tests::*;
use std::process::Command;

#[test]
fn gpt_disk_with_esp_msr_ntfs_is_seen_by_sfdisk_and_ntfsls() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk.raw");
    let spec = DiskSpec {
        label: "gpt".into(),
        tail: 1 << 20,
        parts: vec![
            PartSpec {
                kind: gpt_type::ESP.into(),
                name: "EFI system partition".into(),
                size: 33 << 20,
                content: PartContent::Fat32 {
                    label: "SYSTEM".into(),
                },
            },
            PartSpec {
                kind: gpt_type::MSR.into(),
                name: "Microsoft reserved partition".into(),
                size: 16 << 20,
                content: PartContent::Empty,
            },
            PartSpec {
                kind: gpt_type::BASIC_DATA.into(),
                name: "Basic data partition".into(),
                size: 48 << 20,
                content: PartContent::Ntfs(NtfsSpec {
                    size: 0,
                    cluster: 4096,
                    label: "Windows".into(),
                    entries: vec![
                        Entry::Dir("Windows/System32/config".into()),
                        Entry::File(
                            "Windows/System32/config/SYSTEM".into(),
                            pseudo_random(1, 70000),
                        ),
                    ],
                }),
            },
        ],
    };
    let parts = spec.build(&disk).unwrap();
    assert_eq!(parts.len(), 3);
    let out = run(Command::new("sfdisk").arg("--json").arg(&disk)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pt = &v["partitiontable"]["partitions"];
    assert_eq!(pt.as_array().unwrap().len(), 3);
    assert_eq!(pt[2]["start"].as_u64().unwrap() * 512, parts[2].start);
    // ntfsls can read the NTFS partition through an offset.
    let ntfs = tmp.path().join("p3");
    let bytes = std::fs::read(&disk).unwrap();
    std::fs::write(
        &ntfs,
        &bytes[parts[2].start as usize..(parts[2].start + parts[2].size) as usize],
    )
    .unwrap();
    let out = run(Command::new("ntfsls")
        .arg("-p")
        .arg("/Windows/System32/config")
        .arg(&ntfs))
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("SYSTEM"));
}
