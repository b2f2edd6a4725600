//! Value mutations: set (inline, cell or big-data `db` storage) and delete.

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

use super::Largest;
use crate::error::{HiveError, Result};
use crate::hive::{limits, CellOffset, Hive, KeyOffset};
use crate::key_node::Key;
use crate::key_value::{Value, BIG_DATA_SEGMENT, VALUE_COMP_NAME};
use crate::layout::db::{self, DbHeader};
use crate::layout::lists::VALUE_LIST_ELEMENT_SIZE;
use crate::layout::vk::{VkHeader, DATA_INLINE, MAX_INLINE_DATA};
use crate::name::encode_name;

impl Hive {
    /// Stores value data; returns (size field, offset field).
    pub(super) fn store_data(&mut self, data: &[u8]) -> Result<(u32, u32)> {
        if data.len() > limits::MAX_VALUE {
            return Err(HiveError::InvalidArgument {
                reason: "value data too large".into(),
            });
        }
        if data.len() <= MAX_INLINE_DATA {
            // The data itself, in the bytes of the offset field.
            let mut b = [0u8; MAX_INLINE_DATA];
            b[..data.len()].copy_from_slice(data);
            let inline = U32::from_bytes(b).get();
            return Ok((data.len() as u32 | DATA_INLINE, inline));
        }
        if data.len() <= BIG_DATA_SEGMENT || self.minor < db::MIN_MINOR_VERSION {
            let c = self.alloc_with(data)?;
            return Ok((data.len() as u32, c.0));
        }
        let mut segs = Vec::new();
        for chunk in data.chunks(BIG_DATA_SEGMENT) {
            let c = self.alloc_cell(BIG_DATA_SEGMENT)?;
            self.write_cell_data(c, "db segment", 0, chunk)?;
            segs.push(U32::new(c.0));
        }
        let l = self.alloc_with(segs.as_bytes())?;
        let d = self.alloc_with(DbHeader::new(segs.len() as u16, l.0).as_bytes())?;
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
            self.update_cell::<VkHeader>(voff, "vk", |h| {
                h.data_size = U32::new(size);
                h.data_offset = U32::new(doff);
                h.data_type = U32::new(data_type);
            })?;
        } else {
            let (nb, comp) = encode_name(name);
            let flags = if comp && !nb.is_empty() {
                VALUE_COMP_NAME
            } else {
                0
            };
            let vk = VkHeader::new(nb.len() as u16, flags, size, doff, data_type);
            let mut cell = vk.as_bytes().to_vec();
            cell.extend_from_slice(&nb);
            let voff = self.alloc_with(&cell)?;
            let k = Key::new(self, key)?;
            let n = k.value_count() as usize;
            let lo = k.value_list_offset();
            let element = U32::new(voff.0);
            if n > 0 && self.cell_capacity(lo)? >= (n + 1) * VALUE_LIST_ELEMENT_SIZE {
                let at = n * VALUE_LIST_ELEMENT_SIZE;
                self.write_cell_data(lo, "value list", at, element.as_bytes())?;
            } else {
                let mut list: Vec<u8> = if n > 0 {
                    self.value_list_bytes(lo, n)?
                } else {
                    Vec::new()
                };
                list.extend_from_slice(element.as_bytes());
                let nl = self.alloc_with(&list)?;
                if n > 0 {
                    self.free_cell(lo)?;
                }
                self.update_key(key, |h| h.key_values_list_offset = U32::new(nl.0))?;
            }
            self.update_key(key, |h| h.number_of_key_values = U32::new((n + 1) as u32))?;
            self.bump_max(key, Largest::ValueName, 2 * nunits as u32)?;
        }
        self.bump_max(key, Largest::ValueData, data.len() as u32)?;
        self.touch_key(key)
    }

    /// The first `n` elements of the value list at `list`, as bytes.
    fn value_list_bytes(&self, list: CellOffset, n: usize) -> Result<Vec<u8>> {
        let cell = self.cell(list, "value list")?;
        match <[U32]>::ref_from_prefix_with_elems(cell, n) {
            Ok((elements, _)) => Ok(elements.as_bytes().to_vec()),
            Err(_) => Err(HiveError::corrupt(
                "value list",
                list,
                format!("{n} values do not fit in the cell"),
            )),
        }
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
        let mut list = self.value_list_bytes(lo, n)?;
        let at = idx * VALUE_LIST_ELEMENT_SIZE;
        list.drain(at..at + VALUE_LIST_ELEMENT_SIZE);
        let cells = Value::new(self, voff)?.data_cells()?;
        for c in cells {
            self.free_cell(c)?;
        }
        self.free_cell(voff)?;
        if n == 1 {
            self.free_cell(lo)?;
            self.update_key(key, |h| h.key_values_list_offset = U32::new(u32::MAX))?;
        } else {
            // the freed last slot is cleared
            list.extend_from_slice(&[0; VALUE_LIST_ELEMENT_SIZE]);
            self.write_cell_data(lo, "value list", 0, &list)?;
        }
        self.update_key(key, |h| h.number_of_key_values = U32::new((n - 1) as u32))?;
        self.touch_key(key)?;
        Ok(true)
    }
}
