//! SAM password-hash cryptography (docs/SAM.md), as pure functions over value bytes.
//!
//! * **Boot key** (syskey): the class names of `SYSTEM\ControlSet00N\Control\Lsa\{JD, Skew1,
//!   GBG, Data}`, 8 hex digits each, concatenated and decoded to 16 bytes, then permuted with
//!   [`BOOT_KEY_PERMUTATION`] (`boot[i] = scrambled[P[i]]`).
//! * **SAM key** (hashed boot key) from `SAM\Domains\Account\F`, whose key structure starts at
//!   0x68 with a u32 revision:
//!   - revision 1 (RC4, before Windows 10 1607): salt at 0x70, 16-byte key at 0x80, 16-byte
//!     checksum at 0x90; RC4 key = MD5(salt ‖ [`QWERTY`] ‖ boot key ‖ [`DIGITS`]); the
//!     checksum is MD5(key ‖ DIGITS ‖ key ‖ QWERTY).
//!   - revision 2 (AES): u32 checksum length at 0x70, u32 data length at 0x74, 16-byte salt
//!     (IV) at 0x78, data at 0x88; key = AES-128-CBC-decrypt(boot key, IV, data), PKCS#7-padded.
//! * **User hashes** in `Users\<RID>\V` (descriptors 13 LM, 14 NT, 15/16 histories): header
//!   `u16 pek_id, u16 revision`; revision 1: 16 bytes RC4(MD5(SAM key ‖ RID_le ‖ constant));
//!   revision 2: `u32` (16 when a hash follows, 0 when empty), 16-byte salt, then
//!   AES-128-CBC(SAM key, salt) of the PKCS#7-padded bytes. Inside both, the hash is DES-ECB
//!   encrypted in two halves with keys derived from the RID (MS-SAMR 2.2.11.1.3).
//!
//! Decryption *and* encryption of both schemes; tests check round trips and published vectors.

use aes::cipher::{
    BlockDecrypt, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit,
};
use md5::{Digest, Md5};
use rc4::StreamCipher;

use crate::layout::hash_entry::{
    AesHashEntryHeader, HashEntryHeader, AES_HEADER_SIZE, REVISION_AES, REVISION_RC4,
};
use crate::layout::sam_key::{self, SamKeyData, SamKeyDataAes};
use crate::{Error, Result};
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

/// The constant mixed into the RC4 key of the SAM key (revision 1).
pub const QWERTY: &[u8] = b"!@#$%^&*()qwertyUIOPAzxcvbnmQQQQQQQQQQQQ)(*@&%\0";
/// The second constant of the revision-1 SAM key.
pub const DIGITS: &[u8] = b"0123456789012345678901234567890123456789\0";
/// `SYSTEM\<ControlSet>\Control\Lsa` subkeys whose class names hold the scrambled boot key.
pub const LSA_KEYS: [&str; 4] = ["JD", "Skew1", "GBG", "Data"];
/// `boot_key[i] = scrambled[BOOT_KEY_PERMUTATION[i]]`.
pub const BOOT_KEY_PERMUTATION: [usize; 16] =
    [8, 5, 4, 2, 11, 9, 13, 3, 0, 6, 1, 12, 14, 10, 15, 7];
/// Offset of the SAM key structure in `Domains\Account\F`.
pub const F_KEY_OFFSET: usize = sam_key::OFFSET;

/// The salt constant of each kind of user hash (revision 1 RC4 key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// NT hash (`NTPASSWORD\0`).
    Nt,
    /// LM hash (`LMPASSWORD\0`).
    Lm,
    /// NT history (`NTPASSWORDHISTORY\0`).
    NtHistory,
    /// LM history (`LMPASSWORDHISTORY\0`).
    LmHistory,
}

impl HashKind {
    /// The constant of the revision-1 RC4 key.
    pub fn constant(self) -> &'static [u8] {
        match self {
            HashKind::Nt => b"NTPASSWORD\0",
            HashKind::Lm => b"LMPASSWORD\0",
            HashKind::NtHistory => b"NTPASSWORDHISTORY\0",
            HashKind::LmHistory => b"LMPASSWORDHISTORY\0",
        }
    }
}

/// How the SAM protects its keys and hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Revision 1: MD5 + RC4 (Windows NT 4 SP3 .. Windows 10 1511).
    Rc4,
    /// Revision 2: AES-128-CBC (Windows 10 1607 and later).
    Aes,
}

/// The decrypted SAM key (hashed boot key) and the scheme `F` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamKey {
    /// The 16-byte key.
    pub key: [u8; 16],
    /// Revision of the `F` key structure.
    pub scheme: Scheme,
}

fn invalid(what: &'static str, reason: String) -> Error {
    Error::Invalid { what, reason }
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn rc4(key: &[u8; 16], data: &mut [u8]) {
    let mut c = rc4::Rc4::<rc4::consts::U16>::new(key.into());
    c.apply_keystream(data);
}

fn aes_cbc_decrypt(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
    let mut d = cbc::Decryptor::<aes::Aes128>::new(key.into(), iv.into());
    for block in data.chunks_exact_mut(16) {
        d.decrypt_block_mut(block.into());
    }
}

fn aes_cbc_encrypt(key: &[u8; 16], iv: &[u8; 16], data: &mut [u8]) {
    let mut e = cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into());
    for block in data.chunks_exact_mut(16) {
        e.encrypt_block_mut(block.into());
    }
}

/// PKCS#7 padding to a multiple of 16 (a full block when already aligned).
fn pkcs7_pad(data: &[u8]) -> Vec<u8> {
    let pad = 16 - data.len() % 16;
    let mut v = data.to_vec();
    v.resize(data.len() + pad, pad as u8);
    v
}

/// Strips PKCS#7 padding; `None` when the padding is not valid (a wrong key, in practice).
fn pkcs7_unpad(data: &[u8]) -> Option<&[u8]> {
    let &last = data.last()?;
    let n = usize::from(last);
    if n == 0 || n > 16 || n > data.len() {
        return None;
    }
    let (body, pad) = data.split_at(data.len() - n);
    pad.iter().all(|&b| b == last).then_some(body)
}

/// The boot key from the four class names (8 hex digits each, in [`LSA_KEYS`] order).
///
/// # Errors
/// [`Error::Invalid`] when a class name is not 8 hex digits.
pub fn boot_key_from_class_names(names: &[String; 4]) -> Result<[u8; 16]> {
    let mut scrambled = [0u8; 16];
    for (i, n) in names.iter().enumerate() {
        let n = n.trim_end_matches('\0');
        let hex = n.as_bytes();
        if hex.len() != 8 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(invalid(
                "SYSTEM Control\\Lsa class name",
                format!("{} class name {n:?} is not 8 hex digits", LSA_KEYS[i]),
            ));
        }
        for j in 0..4 {
            let s = &n[2 * j..2 * j + 2];
            scrambled[4 * i + j] = u8::from_str_radix(s, 16).unwrap_or(0);
        }
    }
    let mut key = [0u8; 16];
    for (i, k) in key.iter_mut().enumerate() {
        *k = scrambled[BOOT_KEY_PERMUTATION[i]];
    }
    Ok(key)
}

/// The four class names that hold `boot_key` (the inverse of [`boot_key_from_class_names`];
/// lower-case hex as Windows writes them).
pub fn class_names_from_boot_key(boot_key: &[u8; 16]) -> [String; 4] {
    let mut scrambled = [0u8; 16];
    for (i, &p) in BOOT_KEY_PERMUTATION.iter().enumerate() {
        scrambled[p] = boot_key[i];
    }
    std::array::from_fn(|i| {
        scrambled[4 * i..4 * i + 4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The boot key of a SYSTEM hive (`Select\Current`, then the `Control\Lsa` class names).
///
/// # Errors
/// [`Error::Invalid`] when `Select\Current`, a key or its class name is missing or malformed.
pub fn boot_key(system: &reseal_hive::Hive) -> Result<[u8; 16]> {
    let what = "SYSTEM Control\\Lsa";
    let hive_err = |e: reseal_hive::HiveError| Error::Hive {
        hive: "SYSTEM".into(),
        source: e,
    };
    let current = system
        .open_path("Select")
        .ok()
        .and_then(|k| k.value("Current").ok().flatten())
        .and_then(|v| v.as_u32().ok().flatten())
        .ok_or_else(|| invalid(what, "Select\\Current is missing or not a DWORD".into()))?;
    let mut names: [String; 4] = Default::default();
    for (i, k) in LSA_KEYS.iter().enumerate() {
        let path = format!("ControlSet{current:03}\\Control\\Lsa\\{k}");
        let key = system
            .open_path(&path)
            .map_err(|e| invalid(what, format!("{path}: {e}")))?;
        names[i] = key
            .class_name()
            .map_err(hive_err)?
            .ok_or_else(|| invalid(what, format!("{path} has no class name")))?;
    }
    boot_key_from_class_names(&names)
}

/// Decrypt the SAM key from `Domains\Account\F` with the boot key.
///
/// # Errors
/// [`Error::Invalid`] when `F` is too short or its key revision is unknown;
/// [`Error::WrongBootKey`] when the revision-1 checksum or the revision-2 padding does not
/// verify (the SYSTEM hive is not this SAM's, or a syskey startup password is in use).
pub fn sam_key(domain_f: &[u8], boot_key: &[u8; 16]) -> Result<SamKey> {
    sam_key_inner(domain_f, boot_key, true)
}

/// [`sam_key`] without the revision-2 padding check (the revision-1 checksum is still
/// checked, as every reader does): what secretsdump derives, also from a wrong boot key. For
/// comparisons with such readers only.
///
/// # Errors
/// As [`sam_key`].
pub fn sam_key_unverified(domain_f: &[u8], boot_key: &[u8; 16]) -> Result<SamKey> {
    sam_key_inner(domain_f, boot_key, false)
}

fn sam_key_inner(domain_f: &[u8], boot_key: &[u8; 16], verify: bool) -> Result<SamKey> {
    let what = "SAM Domains\\Account\\F";
    let short = |need: usize| {
        invalid(
            what,
            format!(
                "{} bytes, the key structure needs {need:#x}",
                domain_f.len()
            ),
        )
    };
    let at = domain_f.get(F_KEY_OFFSET..).unwrap_or_default();
    let rev = U32::read_from_prefix(at)
        .map_err(|_| short(F_KEY_OFFSET + 4))?
        .0
        .get();
    match rev {
        sam_key::REVISION_RC4 => {
            let (b, _) = SamKeyData::ref_from_prefix(at)
                .map_err(|_| short(F_KEY_OFFSET + sam_key::RC4_SIZE))?;
            let k = md5(&[&b.salt, QWERTY, boot_key, DIGITS]);
            let mut dec = [0u8; 32];
            dec[..16].copy_from_slice(&b.key);
            dec[16..].copy_from_slice(&b.checksum);
            rc4(&k, &mut dec);
            let key: [u8; 16] = dec[..16].try_into().unwrap_or_default();
            let check = md5(&[&key, DIGITS, &key, QWERTY]);
            if check != dec[16..] {
                return Err(Error::WrongBootKey {
                    reason: "the RC4 SAM key's checksum (F 0x90) does not match".into(),
                });
            }
            Ok(SamKey {
                key,
                scheme: Scheme::Rc4,
            })
        }
        sam_key::REVISION_AES => {
            let (head, rest) = SamKeyDataAes::ref_from_prefix(at)
                .map_err(|_| short(F_KEY_OFFSET + sam_key::AES_HEADER_SIZE))?;
            let data_len = head.data_length.get() as usize;
            let iv = head.salt;
            if data_len == 0 || data_len % 16 != 0 {
                return Err(invalid(
                    what,
                    format!("AES key data length {data_len:#x} at 0x74 is not a multiple of 16"),
                ));
            }
            let data_at = F_KEY_OFFSET + sam_key::AES_HEADER_SIZE;
            let data = rest
                .get(..data_len)
                .ok_or_else(|| short(data_at + data_len))?;
            let mut dec = data.to_vec();
            aes_cbc_decrypt(boot_key, &iv, &mut dec);
            match pkcs7_unpad(&dec) {
                Some(k) if k.len() >= 16 => {
                    let key: [u8; 16] = k[..16].try_into().unwrap_or_default();
                    Ok(SamKey {
                        key,
                        scheme: Scheme::Aes,
                    })
                }
                _ if !verify => Ok(SamKey {
                    key: dec[..16].try_into().unwrap_or_default(),
                    scheme: Scheme::Aes,
                }),
                _ => Err(Error::WrongBootKey {
                    reason: "the AES SAM key (F 0x88) does not decrypt to a padded 16-byte key"
                        .into(),
                }),
            }
        }
        r => Err(invalid(
            what,
            format!("key structure revision {r} at 0x68 (known: 1 RC4, 2 AES)"),
        )),
    }
}

/// The `F` key structure (from 0x68) holding `sam_key` encrypted under `boot_key`, as Windows
/// lays it out: revision 1 is 0x40 bytes, revision 2 is 0x70 (16-byte header and salt, 0x20
/// bytes of key, 0x30 bytes of checksum — the checksum is SHA-256 of the key here; Windows'
/// exact checksum is not documented and no reader checks it).
pub fn encrypt_sam_key(
    scheme: Scheme,
    sam_key: &[u8; 16],
    boot_key: &[u8; 16],
    salt: &[u8; 16],
) -> Vec<u8> {
    let mut out = Vec::new();
    match scheme {
        Scheme::Rc4 => {
            let check = md5(&[sam_key, DIGITS, sam_key, QWERTY]);
            let mut enc = [0u8; 32];
            enc[..16].copy_from_slice(sam_key);
            enc[16..].copy_from_slice(&check);
            rc4(&md5(&[salt, QWERTY, boot_key, DIGITS]), &mut enc);
            let mut data = SamKeyData {
                revision: sam_key::REVISION_RC4.into(),
                length: (sam_key::RC4_SIZE as u32).into(),
                salt: *salt,
                key: [0; 16],
                checksum: [0; 16],
            };
            data.key.copy_from_slice(&enc[..16]);
            data.checksum.copy_from_slice(&enc[16..]);
            out.extend_from_slice(data.as_bytes());
            out.extend_from_slice(&[0u8; 8]);
        }
        Scheme::Aes => {
            use sha2::Sha256;
            let mut key = pkcs7_pad(sam_key);
            let mut check = pkcs7_pad(&Sha256::digest(sam_key));
            aes_cbc_encrypt(boot_key, salt, &mut key);
            aes_cbc_encrypt(boot_key, salt, &mut check);
            let head = SamKeyDataAes {
                revision: sam_key::REVISION_AES.into(),
                length: 0x70u32.into(),
                checksum_length: (check.len() as u32).into(),
                data_length: (key.len() as u32).into(),
                salt: *salt,
            };
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(&key);
            out.extend_from_slice(&check);
        }
    }
    out
}

/// The two DES keys derived from a RID (MS-SAMR 2.2.11.1.3), each expanded from 7 to 8 bytes
/// (MS-SAMR 2.2.11.1.2; the parity bits are left zero: DES ignores them).
pub fn rid_des_keys(rid: u32) -> ([u8; 8], [u8; 8]) {
    let i = rid.to_le_bytes();
    let k1 = [i[0], i[1], i[2], i[3], i[0], i[1], i[2]];
    let k2 = [i[3], i[0], i[1], i[2], i[3], i[0], i[1]];
    (expand_des_key(&k1), expand_des_key(&k2))
}

fn expand_des_key(k: &[u8; 7]) -> [u8; 8] {
    let mut o = [0u8; 8];
    o[0] = k[0] >> 1;
    o[1] = ((k[0] & 0x01) << 6) | (k[1] >> 2);
    o[2] = ((k[1] & 0x03) << 5) | (k[2] >> 3);
    o[3] = ((k[2] & 0x07) << 4) | (k[3] >> 4);
    o[4] = ((k[3] & 0x0F) << 3) | (k[4] >> 5);
    o[5] = ((k[4] & 0x1F) << 2) | (k[5] >> 6);
    o[6] = ((k[5] & 0x3F) << 1) | (k[6] >> 7);
    o[7] = k[6] & 0x7F;
    for b in &mut o {
        *b <<= 1;
    }
    o
}

/// DES layer over one 16-byte block: the two halves with the RID's two keys.
fn des_rid(rid: u32, block: &mut [u8], encrypt: bool) {
    let (k1, k2) = rid_des_keys(rid);
    for (half, k) in block.chunks_exact_mut(8).zip([k1, k2]) {
        let c = des::Des::new(&k.into());
        if encrypt {
            c.encrypt_block(half.into());
        } else {
            c.decrypt_block(half.into());
        }
    }
}

/// Length of an empty hash entry of each scheme.
pub fn empty_entry_len(scheme: Scheme) -> usize {
    match scheme {
        Scheme::Rc4 => 4,
        Scheme::Aes => 24,
    }
}

/// Decrypt a user hash entry (`V` descriptor 13 or 14): `None` for an empty entry, else the
/// hash. History entries hold several hashes: see [`decrypt_hashes`].
///
/// # Errors
/// [`Error::Invalid`] when the entry is malformed; [`Error::WrongBootKey`] when AES padding does
/// not verify.
pub fn decrypt_hash(
    key: &SamKey,
    rid: u32,
    kind: HashKind,
    entry: &[u8],
) -> Result<Option<[u8; 16]>> {
    let all = decrypt_hashes(key, rid, kind, entry)?;
    match all.as_slice() {
        [] => Ok(None),
        [h] => Ok(Some(*h)),
        many => Err(invalid(
            "SAM user V hash",
            format!("entry holds {} hashes, expected one", many.len()),
        )),
    }
}

/// Decrypt every 16-byte hash of an entry (one for LM/NT, N for a history).
///
/// # Errors
/// As [`decrypt_hash`].
pub fn decrypt_hashes(
    key: &SamKey,
    rid: u32,
    kind: HashKind,
    entry: &[u8],
) -> Result<Vec<[u8; 16]>> {
    decrypt_inner(key, rid, kind, entry, true)
}

/// [`decrypt_hash`] without the AES padding check: what a reader that does not verify
/// (secretsdump) prints, also under a wrong key. For comparisons with such readers only.
///
/// # Errors
/// A malformed entry.
pub fn decrypt_hash_unverified(
    key: &SamKey,
    rid: u32,
    kind: HashKind,
    entry: &[u8],
) -> Result<Option<[u8; 16]>> {
    Ok(decrypt_inner(key, rid, kind, entry, false)?
        .first()
        .copied())
}

fn decrypt_inner(
    key: &SamKey,
    rid: u32,
    kind: HashKind,
    entry: &[u8],
    verify: bool,
) -> Result<Vec<[u8; 16]>> {
    let what = "SAM user V hash";
    if entry.is_empty() {
        return Ok(Vec::new());
    }
    let Some(header) = HashEntryHeader::view(entry) else {
        return Err(invalid(
            what,
            format!("entry of {} bytes is shorter than its header", entry.len()),
        ));
    };
    let mut plain = match header.revision.get() {
        REVISION_RC4 => {
            let body = &entry[size_of::<HashEntryHeader>()..];
            if body.len() % 16 != 0 {
                return Err(invalid(
                    what,
                    format!(
                        "RC4 entry body of {} bytes is not a multiple of 16",
                        body.len()
                    ),
                ));
            }
            let mut b = body.to_vec();
            let mut rid_le = [0u8; 4];
            rid_le.copy_from_slice(&rid.to_le_bytes());
            rc4(&md5(&[&key.key, &rid_le, kind.constant()]), &mut b);
            b
        }
        REVISION_AES => {
            let Ok((head, body)) = AesHashEntryHeader::ref_from_prefix(entry) else {
                return Err(invalid(
                    what,
                    format!(
                        "AES entry of {} bytes is shorter than its {AES_HEADER_SIZE}-byte header",
                        entry.len()
                    ),
                ));
            };
            let iv = head.salt;
            if body.is_empty() {
                return Ok(Vec::new());
            }
            if body.len() % 16 != 0 {
                return Err(invalid(
                    what,
                    format!(
                        "AES entry body of {} bytes is not a multiple of 16",
                        body.len()
                    ),
                ));
            }
            let mut b = body.to_vec();
            aes_cbc_decrypt(&key.key, &iv, &mut b);
            match pkcs7_unpad(&b) {
                Some(u) if u.len() % 16 == 0 => u.to_vec(),
                _ if !verify => b[..b.len() - 16].to_vec(),
                _ => {
                    return Err(Error::WrongBootKey {
                        reason: format!(
                            "the AES hash of RID {rid} does not decrypt to padded data"
                        ),
                    })
                }
            }
        }
        r => {
            return Err(invalid(
                what,
                format!("hash entry revision {r} (known: 1 RC4, 2 AES)"),
            ))
        }
    };
    let mut out = Vec::new();
    for block in plain.chunks_exact_mut(16) {
        des_rid(rid, block, false);
        out.push(block.try_into().unwrap_or_default());
    }
    Ok(out)
}

/// Encrypt hashes (none: an empty entry) as a `V` entry in `key.scheme`, with `pek_id` (keep
/// the one of the entry replaced; 1 on every SAM seen) and, for AES, `salt` as the IV.
pub fn encrypt_hashes(
    key: &SamKey,
    rid: u32,
    kind: HashKind,
    hashes: &[[u8; 16]],
    pek_id: u16,
    salt: &[u8; 16],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(hashes.len() * 16);
    for h in hashes {
        let mut b = *h;
        des_rid(rid, &mut b, true);
        body.extend_from_slice(&b);
    }
    let header = |revision: u16| HashEntryHeader {
        pek_id: pek_id.into(),
        revision: revision.into(),
    };
    let mut out = Vec::new();
    match key.scheme {
        Scheme::Rc4 => {
            out.extend_from_slice(header(REVISION_RC4).as_bytes());
            if !body.is_empty() {
                rc4(
                    &md5(&[&key.key, &rid.to_le_bytes(), kind.constant()]),
                    &mut body,
                );
                out.extend_from_slice(&body);
            }
        }
        Scheme::Aes => {
            let n: u32 = if body.is_empty() { 0 } else { 16 };
            let head = AesHashEntryHeader {
                header: header(REVISION_AES),
                data_length: n.into(),
                salt: *salt,
            };
            out.extend_from_slice(head.as_bytes());
            if !body.is_empty() {
                let mut p = pkcs7_pad(&body);
                aes_cbc_encrypt(&key.key, salt, &mut p);
                out.extend_from_slice(&p);
            }
        }
    }
    out
}

/// The NT hash of a password: MD4 of its UTF-16LE encoding.
pub fn nt_hash(password: &str) -> [u8; 16] {
    let units: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    md4::Md4::digest(&units).into()
}

/// Hex of bytes (lower case).
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn nt_hash_vectors() {
        // The empty password's NT hash and "password" (published in MS-NLMP-based literature
        // and printed by secretsdump for empty accounts).
        assert_eq!(hex(&nt_hash("")), "31d6cfe0d16ae931b73c59d7e0c089c0");
        assert_eq!(
            hex(&nt_hash("password")),
            "8846f7eaee8fb117ad06bdd830b7586c"
        );
    }

    #[test]
    fn boot_key_round_trip() {
        let bk: [u8; 16] = std::array::from_fn(|i| (i * 17 + 3) as u8);
        let names = class_names_from_boot_key(&bk);
        assert_eq!(boot_key_from_class_names(&names).unwrap(), bk);
        let bad = [
            String::from("xyz"),
            names[1].clone(),
            names[2].clone(),
            names[3].clone(),
        ];
        assert!(boot_key_from_class_names(&bad).is_err());
    }

    #[test]
    fn sam_key_round_trip_both_schemes() {
        let bk = [7u8; 16];
        let sk: [u8; 16] = std::array::from_fn(|i| i as u8 * 9);
        let salt = [0x5au8; 16];
        for scheme in [Scheme::Rc4, Scheme::Aes] {
            let mut f = vec![0u8; F_KEY_OFFSET];
            f.extend_from_slice(&encrypt_sam_key(scheme, &sk, &bk, &salt));
            let k = sam_key(&f, &bk).unwrap();
            assert_eq!(k, SamKey { key: sk, scheme });
            assert!(matches!(
                sam_key(&f, &[8u8; 16]),
                Err(Error::WrongBootKey { .. })
            ));
        }
    }

    #[test]
    fn hash_round_trip_both_schemes() {
        let h = nt_hash("Passw0rd!");
        for scheme in [Scheme::Rc4, Scheme::Aes] {
            let k = SamKey {
                key: [3u8; 16],
                scheme,
            };
            for kind in [HashKind::Nt, HashKind::Lm] {
                let e = encrypt_hashes(&k, 1001, kind, &[h], 1, &[9u8; 16]);
                assert_eq!(e.len(), if scheme == Scheme::Rc4 { 20 } else { 56 });
                assert_eq!(decrypt_hash(&k, 1001, kind, &e).unwrap(), Some(h));
                let empty = encrypt_hashes(&k, 1001, kind, &[], 1, &[9u8; 16]);
                assert_eq!(empty.len(), empty_entry_len(scheme));
                assert_eq!(decrypt_hash(&k, 1001, kind, &empty).unwrap(), None);
            }
            let hist = encrypt_hashes(&k, 500, HashKind::NtHistory, &[h, [1; 16]], 1, &[2u8; 16]);
            assert_eq!(
                decrypt_hashes(&k, 500, HashKind::NtHistory, &hist).unwrap(),
                vec![h, [1; 16]]
            );
        }
    }

    /// Vectors computed independently with impacket's `CryptoCommon.deriveKey` and
    /// pycryptodome (DES, ARC4, AES) for SAM key 00..0f, RID 1001, NT hash of "password".
    #[test]
    fn independent_vectors() {
        let mask = |k: [u8; 8]| k.map(|b| b & 0xfe);
        let (k1, k2) = rid_des_keys(500);
        assert_eq!(hex(&mask(k1)), "f40040000ea00400");
        assert_eq!(hex(&mask(k2)), "007a00200006d002");
        let sk: [u8; 16] = std::array::from_fn(|i| i as u8);
        let h = nt_hash("password");
        let rc4k = SamKey {
            key: sk,
            scheme: Scheme::Rc4,
        };
        let mut e = vec![1, 0, 1, 0];
        e.extend(unhex("d8f9a1d766453bdc42fbdfc93e8a332d"));
        assert_eq!(
            decrypt_hash(&rc4k, 1001, HashKind::Nt, &e).unwrap(),
            Some(h)
        );
        assert_eq!(
            encrypt_hashes(&rc4k, 1001, HashKind::Nt, &[h], 1, &[0; 16]),
            e
        );
        let aesk = SamKey {
            key: sk,
            scheme: Scheme::Aes,
        };
        let mut e = vec![1, 0, 2, 0, 0x10, 0, 0, 0];
        e.extend([0x11; 16]);
        e.extend(unhex(
            "c642753859a4d1f87f190b9c4f45cee47740143b2ec6c9625a21b3ab95ff444e",
        ));
        assert_eq!(
            decrypt_hash(&aesk, 1001, HashKind::Nt, &e).unwrap(),
            Some(h)
        );
        assert_eq!(
            encrypt_hashes(&aesk, 1001, HashKind::Nt, &[h], 1, &[0x11; 16]),
            e
        );
        // F key structures under boot key a0..af, salt 22..22.
        let bk: [u8; 16] = std::array::from_fn(|i| 0xa0 + i as u8);
        let mut f1 = vec![0u8; 0x68];
        f1.extend([1, 0, 0, 0, 0x38, 0, 0, 0]);
        f1.extend([0x22; 16]);
        f1.extend(unhex(
            "d196354c89977d89a4e5926b5ccf9df16987b37ee0075e9d9962e369d5a4e143",
        ));
        assert_eq!(sam_key(&f1, &bk).unwrap(), rc4k);
        let mut f2 = vec![0u8; 0x68];
        f2.extend([2, 0, 0, 0, 0x70, 0, 0, 0, 0x30, 0, 0, 0, 0x20, 0, 0, 0]);
        f2.extend([0x22; 16]);
        f2.extend(unhex(
            "3c17b62415eaabf742d987217069203311f8b4f7339fb2b70dd094e6ed1702d6",
        ));
        assert_eq!(sam_key(&f2, &bk).unwrap(), aesk);
    }

    #[test]
    fn hostile_entries_do_not_panic() {
        let k = SamKey {
            key: [1; 16],
            scheme: Scheme::Aes,
        };
        for n in 0..80 {
            for fill in [0u8, 1, 2, 0xff] {
                let mut e = vec![fill; n];
                if n >= 4 {
                    e[2] = fill % 3;
                }
                let _ = decrypt_hashes(&k, 1000, HashKind::Nt, &e);
                let _ = sam_key(&e, &[0; 16]);
            }
        }
    }
}
