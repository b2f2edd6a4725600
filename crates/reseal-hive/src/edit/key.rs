//! Key mutations: create (one key or a path), delete (a tree), rename, class name.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::IntoBytes;

use super::{filetime_now, Largest};
use crate::error::{HiveError, Result};
use crate::hive::{limits, Hive, KeyOffset};
use crate::key_node::{Key, KEY_COMP_NAME};
use crate::layout::nk::NkHeader;
use crate::name::{encode_name, validate_key_name};

impl Hive {
    /// Creates a subkey (or returns the existing one with that name, case-insensitively).
    /// The new key inherits the parent's security cell.
    ///
    /// # Errors
    /// Read-only hive, invalid name, corruption.
    pub fn create_key(&mut self, parent: KeyOffset, name: &str) -> Result<KeyOffset> {
        self.check_writable()?;
        validate_key_name(name)?;
        let p = Key::new(self, parent)?;
        if let Some(k) = p.subkey(name)? {
            return Ok(k.offset());
        }
        let sk = p.security_offset();
        let (nb, comp) = encode_name(name);
        let flags = if comp { KEY_COMP_NAME } else { 0 };
        let mut nk = NkHeader::new(flags, filetime_now(), parent.0, nb.len() as u16);
        nk.key_security_offset = U32::new(sk.0);
        let mut cell = nk.as_bytes().to_vec();
        cell.extend_from_slice(&nb);
        let off = self.alloc_with(&cell)?;
        if !sk.is_nil() {
            self.sk_addref(sk, 1)?;
        }
        let children = self.child_offsets(parent)?;
        let pos = self.sorted_position(&children, &Key::new(self, off)?.name_ref())?;
        self.insert_child(parent, pos, off)?;
        self.bump_max(
            parent,
            Largest::SubkeyName,
            2 * name.encode_utf16().count() as u32,
        )?;
        self.touch_key(parent)?;
        Ok(off)
    }

    /// Creates every missing key along a backslash-separated path from the root.
    ///
    /// # Errors
    /// As [`Hive::create_key`].
    pub fn create_path(&mut self, path: &str) -> Result<KeyOffset> {
        let mut k = self.root_offset();
        for comp in path.split('\\').filter(|c| !c.is_empty()) {
            k = self.create_key(k, comp)?;
        }
        Ok(k)
    }

    /// Frees everything a key owns (values, class, list cells, sk reference, nk),
    /// recursing into subkeys. Does not touch the parent.
    pub(super) fn free_key_tree(&mut self, key: KeyOffset, depth: usize) -> Result<()> {
        if depth > limits::MAX_DEPTH {
            return Err(HiveError::Limit {
                what: "key depth over 512 (cycle?)",
                cell: key,
            });
        }
        for c in self.child_offsets(key)? {
            self.free_key_tree(c, depth + 1)?;
        }
        let (cells, _) = self.list_cells(key)?;
        for c in cells {
            self.free_cell(c)?;
        }
        let k = Key::new(self, key)?;
        let mut vcells = Vec::new();
        let vl = k.value_list_offset();
        for v in k.values()? {
            let v = v?;
            vcells.extend(v.data_cells()?);
            vcells.push(v.offset());
        }
        if k.value_count() > 0 && !vl.is_nil() {
            vcells.push(vl);
        }
        let class = k.class_name_offset();
        if !class.is_nil() {
            vcells.push(class);
        }
        let sk = k.security_offset();
        for c in vcells {
            self.free_cell(c)?;
        }
        if !sk.is_nil() {
            self.sk_addref(sk, -1)?;
        }
        self.free_cell(key)
    }

    /// Deletes a key; with `recursive` also its whole subtree, otherwise a key with
    /// subkeys is refused. The root cannot be deleted.
    ///
    /// # Errors
    /// Read-only, root, has subkeys (non-recursive), corruption.
    pub fn delete_key(&mut self, key: KeyOffset, recursive: bool) -> Result<()> {
        self.check_writable()?;
        if key == self.root_offset() {
            return Err(HiveError::InvalidArgument {
                reason: "cannot delete the root key".into(),
            });
        }
        let k = Key::new(self, key)?;
        if k.subkey_count() > 0 && !recursive {
            return Err(HiveError::InvalidArgument {
                reason: format!("key {} has subkeys", k.name()),
            });
        }
        let parent = k.parent_offset();
        let children = self.child_offsets(parent)?;
        let Some(pos) = children.iter().position(|&c| c == key) else {
            return Err(HiveError::corrupt(
                "nk",
                key,
                "key is not in its parent's subkey list",
            ));
        };
        self.free_key_tree(key, 0)?;
        self.remove_child(parent, pos)?;
        self.touch_key(parent)?;
        Ok(())
    }

    /// Renames a key, keeping everything else; re-sorts the parent's list and recomputes
    /// hashes/hints. Changing only the case is allowed.
    ///
    /// # Errors
    /// Invalid name, a sibling already has that name, corruption.
    pub fn rename_key(&mut self, key: KeyOffset, new_name: &str) -> Result<KeyOffset> {
        self.check_writable()?;
        validate_key_name(new_name)?;
        let k = Key::new(self, key)?;
        let is_root = key == self.root_offset();
        let parent = k.parent_offset();
        if !is_root {
            if let Some(s) = Key::new(self, parent)?.subkey(new_name)? {
                if s.offset() != key {
                    return Err(HiveError::AlreadyExists {
                        name: new_name.to_string(),
                    });
                }
            }
        }
        let (nb, comp) = encode_name(new_name);
        let mut nk = k.header().clone();
        let flags = (k.flags() & !KEY_COMP_NAME) | if comp { KEY_COMP_NAME } else { 0 };
        nk.flags = U16::new(flags);
        nk.last_written_timestamp = U64::new(filetime_now());
        nk.key_name_length = U16::new(nb.len() as u16);
        let mut cell = nk.as_bytes().to_vec();
        cell.extend_from_slice(&nb);
        let new_off = if self.cell_capacity(key)? >= cell.len() {
            self.write_cell_data(key, "nk", 0, &cell)?;
            key
        } else {
            let children = self.child_offsets(key)?;
            for &c in &children {
                Key::new(self, c)?;
            }
            let n = self.alloc_with(&cell)?;
            self.free_cell(key)?;
            for c in children {
                self.update_key(c, |h| h.parent = U32::new(n.0))?;
            }
            if is_root {
                self.update_base_block(|b| b.root_cell_offset = U32::new(n.0));
            }
            n
        };
        if !is_root {
            let old_pos = self
                .child_offsets(parent)?
                .iter()
                .position(|&c| c == key)
                .ok_or_else(|| {
                    HiveError::corrupt("nk", key, "key is not in its parent's subkey list")
                })?;
            self.remove_child(parent, old_pos)?;
            let children = self.child_offsets(parent)?;
            let pos = self.sorted_position(&children, &Key::new(self, new_off)?.name_ref())?;
            self.insert_child(parent, pos, new_off)?;
            self.bump_max(
                parent,
                Largest::SubkeyName,
                2 * new_name.encode_utf16().count() as u32,
            )?;
            self.touch_key(parent)?;
        }
        Ok(new_off)
    }

    /// Sets or removes (None) a key's class name.
    ///
    /// # Errors
    /// Read-only, class over 65535 bytes, corruption.
    pub fn set_class_name(&mut self, key: KeyOffset, class: Option<&str>) -> Result<()> {
        self.check_writable()?;
        let k = Key::new(self, key)?;
        let old = k.class_name_offset();
        let parent = k.parent_offset();
        let is_root = key == self.root_offset();
        let (off, len) = match class {
            Some(c) => {
                let b: Vec<u8> = c.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
                if b.len() > 0xFFFF {
                    return Err(HiveError::InvalidArgument {
                        reason: "class name too long".into(),
                    });
                }
                (self.alloc_with(&b)?.0, b.len())
            }
            None => (u32::MAX, 0),
        };
        if !old.is_nil() && self.cell_span(old, "class").is_ok() {
            self.free_cell(old)?;
        }
        self.update_key(key, |h| {
            h.class_name_offset = U32::new(off);
            h.class_name_length = U16::new(len as u16);
        })?;
        if !is_root && Key::new(self, parent).is_ok() {
            self.bump_max(parent, Largest::SubkeyClassName, len as u32)?;
        }
        self.touch_key(key)?;
        Ok(())
    }
}
