//! Value mutations: set (inline, cell or big-data `db` storage) and delete.

use crate::base_block::BASE_BLOCK_SIZE;
use crate::error::{HiveError, Result};
use crate::hive::{limits, CellOffset, Hive, KeyOffset};
use crate::key_node::{nk, Key};
use crate::key_value::{Value, BIG_DATA_SEGMENT, VALUE_COMP_NAME, VK_FIXED};
use crate::name::encode_name;

impl Hive {
    /// Stores value data; returns (size field, offset field).
    pub(super) fn store_data(&mut self, data: &[u8]) -> Result<(u32, u32)> {
        if data.len() > limits::MAX_VALUE {
            return Err(HiveError::InvalidArgument {
                reason: "value data too large".into(),
            });
        }
        if data.len() <= 4 {
            let mut b = [0u8; 4];
            b[..data.len()].copy_from_slice(data);
            return Ok((data.len() as u32 | 0x8000_0000, u32::from_le_bytes(b)));
        }
        if data.len() <= BIG_DATA_SEGMENT || self.minor < 4 {
            let c = self.alloc_with(data)?;
            return Ok((data.len() as u32, c.0));
        }
        let mut segs = Vec::new();
        for chunk in data.chunks(BIG_DATA_SEGMENT) {
            let c = self.alloc_cell(BIG_DATA_SEGMENT)?;
            self.write_bytes(c.0 as usize + BASE_BLOCK_SIZE + 4, chunk);
            segs.push(c);
        }
        let list: Vec<u8> = segs.iter().flat_map(|c| c.0.to_le_bytes()).collect();
        let l = self.alloc_with(&list)?;
        let mut db = Vec::with_capacity(8);
        db.extend_from_slice(b"db");
        db.extend_from_slice(&(segs.len() as u16).to_le_bytes());
        db.extend_from_slice(&l.0.to_le_bytes());
        let d = self.alloc_with(&db)?;
        Ok((data.len() as u32, d.0))
    }

    pub(super) fn find_value(
        &self,
        key: KeyOffset,
        name: &str,
    ) -> Result<Option<(usize, CellOffset)>> {
        let k = Key::new(self, key)?;
        for (i, v) in k.values()?.enumerate() {
            let v = v?;
            if v.name_ref().eq_ignore_case(name) {
                return Ok(Some((i, v.offset())));
            }
        }
        Ok(None)
    }

    /// Sets (creates or replaces) a value. Data of up to 4 bytes is stored inline, up to
    /// 16344 bytes in one cell, larger as "db" big data (format 1.4+; one cell in 1.3).
    ///
    /// # Errors
    /// Read-only, name over 16383 characters, corruption.
    pub fn set_value(
        &mut self,
        key: KeyOffset,
        name: &str,
        data_type: u32,
        data: &[u8],
    ) -> Result<()> {
        self.check_writable()?;
        let nunits = name.encode_utf16().count();
        if nunits > 16383 {
            return Err(HiveError::InvalidArgument {
                reason: "value name over 16383 characters".into(),
            });
        }
        Key::new(self, key)?;
        let existing = self.find_value(key, name)?;
        let (size, doff) = self.store_data(data)?;
        if let Some((_, voff)) = existing {
            let old = Value::new(self, voff)?.data_cells()?;
            for c in old {
                self.free_cell(c)?;
            }
            self.set_cell_u32(voff, 4, size);
            self.set_cell_u32(voff, 8, doff);
            self.set_cell_u32(voff, 12, data_type);
        } else {
            let (nb, comp) = encode_name(name);
            let mut vk = vec![0u8; VK_FIXED + nb.len()];
            vk[0..2].copy_from_slice(b"vk");
            vk[2..4].copy_from_slice(&(nb.len() as u16).to_le_bytes());
            vk[4..8].copy_from_slice(&size.to_le_bytes());
            vk[8..12].copy_from_slice(&doff.to_le_bytes());
            vk[12..16].copy_from_slice(&data_type.to_le_bytes());
            vk[16..18].copy_from_slice(
                &(if comp && !nb.is_empty() {
                    VALUE_COMP_NAME
                } else {
                    0
                })
                .to_le_bytes(),
            );
            vk[20..].copy_from_slice(&nb);
            let voff = self.alloc_with(&vk)?;
            let k = Key::new(self, key)?;
            let n = k.value_count() as usize;
            let lo = k.value_list_offset();
            let nkf = self.nk_file(key);
            if n > 0 && self.cell_capacity(lo)? >= (n + 1) * 4 {
                self.write_u32(lo.0 as usize + BASE_BLOCK_SIZE + 4 + n * 4, voff.0);
            } else {
                let mut list: Vec<u8> = if n > 0 {
                    self.cell(lo, "value list")?[..n * 4].to_vec()
                } else {
                    Vec::new()
                };
                list.extend_from_slice(&voff.0.to_le_bytes());
                let nl = self.alloc_with(&list)?;
                if n > 0 {
                    self.free_cell(lo)?;
                }
                self.write_u32(nkf + nk::VALUE_LIST, nl.0);
            }
            self.write_u32(nkf + nk::VALUE_COUNT, (n + 1) as u32);
            self.bump_max(key, nk::MAX_VALUE_NAME, 2 * nunits as u32);
        }
        self.bump_max(key, nk::MAX_VALUE_DATA, data.len() as u32);
        self.touch_key(key);
        Ok(())
    }

    /// Deletes a value; returns whether it existed.
    ///
    /// # Errors
    /// Read-only, corruption.
    pub fn delete_value(&mut self, key: KeyOffset, name: &str) -> Result<bool> {
        self.check_writable()?;
        let Some((idx, voff)) = self.find_value(key, name)? else {
            return Ok(false);
        };
        let k = Key::new(self, key)?;
        let n = k.value_count() as usize;
        let lo = k.value_list_offset();
        let mut list: Vec<u8> = self.cell(lo, "value list")?[..n * 4].to_vec();
        list.drain(idx * 4..idx * 4 + 4);
        let cells = Value::new(self, voff)?.data_cells()?;
        for c in cells {
            self.free_cell(c)?;
        }
        self.free_cell(voff)?;
        let nkf = self.nk_file(key);
        if n == 1 {
            self.free_cell(lo)?;
            self.write_u32(nkf + nk::VALUE_LIST, u32::MAX);
        } else {
            let f = lo.0 as usize + BASE_BLOCK_SIZE + 4;
            list.extend_from_slice(&[0, 0, 0, 0]);
            self.write_bytes(f, &list);
        }
        self.write_u32(nkf + nk::VALUE_COUNT, (n - 1) as u32);
        self.touch_key(key);
        Ok(true)
    }
}
