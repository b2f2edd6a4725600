//! Shared by the container fuzz targets: a valid template image mutated by the fuzz input.

use reseal_disk::{Device, Journal, MemDevice};

/// Build a template image with `make(path)` once per process and return its bytes.
pub fn template(name: &str, make: impl FnOnce(&std::path::Path)) -> Vec<u8> {
    let p = std::env::temp_dir().join(format!("reseal-fuzz-{}-{name}", std::process::id()));
    make(&p);
    let b = std::fs::read(&p).expect("template");
    let _ = std::fs::remove_file(&p);
    b
}

/// Interpret `data` as: u32 truncation length (0 = keep), then patches
/// `u32 offset, u8 len, len bytes` applied to `base`.
pub fn mutate(base: &[u8], data: &[u8]) -> Vec<u8> {
    let mut img = base.to_vec();
    if data.len() < 4 {
        return img;
    }
    let cut = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let mut rest = &data[4..];
    while rest.len() >= 5 {
        let off = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let n = rest[4] as usize;
        rest = &rest[5..];
        let n = n.min(rest.len());
        if !img.is_empty() {
            let off = off % img.len();
            let end = (off + n).min(img.len());
            img[off..end].copy_from_slice(&rest[..end - off]);
        }
        rest = &rest[n..];
    }
    if cut != 0 && cut < img.len() {
        img.truncate(cut);
    }
    img
}

/// Read a bounded sample of the device (start, end, a few blocks), then write a little.
pub fn exercise(mut dev: impl Device) {
    let len = dev.len();
    let mut buf = vec![0u8; 1 << 16];
    for off in [
        0,
        len / 3,
        len / 2,
        len.saturating_sub(1 << 16),
        len.saturating_sub(100),
    ] {
        let n = (len.saturating_sub(off)).min(buf.len() as u64) as usize;
        let _ = dev.read_at(off, &mut buf[..n]);
    }
    let _ = dev.read_at(u64::MAX - 3, &mut buf[..10]);
    let _ = dev.write_at(len / 2, &[0xAB; 700]);
    let _ = dev.write_at(len.saturating_sub(3), &[1; 3]);
    let _ = dev.read_at(len / 2, &mut buf[..800.min(len as usize)]);
    let _ = dev.known_zero(0, len);
}

/// Wrap bytes as a growable journaled device (as an image file is opened).
pub fn device(bytes: Vec<u8>) -> Journal<MemDevice> {
    Journal::new(MemDevice::new(bytes))
}
