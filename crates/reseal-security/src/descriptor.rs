//! Self-relative security descriptors.

use std::ops::Range;

use crate::acl::Acl;
use crate::error::{Error, Result};
use crate::layout::descriptor::{SecurityDescriptorRelative, HEADER_SIZE, REVISION};
use crate::layout::read;
use crate::sid::Sid;
use zerocopy::IntoBytes;

/// Security descriptor control flags (`SECURITY_DESCRIPTOR_CONTROL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Control(pub u16);

impl Control {
    /// SE_OWNER_DEFAULTED
    pub const OWNER_DEFAULTED: u16 = 0x0001;
    /// SE_GROUP_DEFAULTED
    pub const GROUP_DEFAULTED: u16 = 0x0002;
    /// SE_DACL_PRESENT
    pub const DACL_PRESENT: u16 = 0x0004;
    /// SE_DACL_DEFAULTED
    pub const DACL_DEFAULTED: u16 = 0x0008;
    /// SE_SACL_PRESENT
    pub const SACL_PRESENT: u16 = 0x0010;
    /// SE_SACL_DEFAULTED
    pub const SACL_DEFAULTED: u16 = 0x0020;
    /// SE_DACL_AUTO_INHERIT_REQ (SDDL `AR` on the DACL)
    pub const DACL_AUTO_INHERIT_REQ: u16 = 0x0100;
    /// SE_SACL_AUTO_INHERIT_REQ (SDDL `AR` on the SACL)
    pub const SACL_AUTO_INHERIT_REQ: u16 = 0x0200;
    /// SE_DACL_AUTO_INHERITED (SDDL `AI`)
    pub const DACL_AUTO_INHERITED: u16 = 0x0400;
    /// SE_SACL_AUTO_INHERITED (SDDL `AI`)
    pub const SACL_AUTO_INHERITED: u16 = 0x0800;
    /// SE_DACL_PROTECTED (SDDL `P`)
    pub const DACL_PROTECTED: u16 = 0x1000;
    /// SE_SACL_PROTECTED (SDDL `P`)
    pub const SACL_PROTECTED: u16 = 0x2000;
    /// SE_RM_CONTROL_VALID (Sbz1 holds resource-manager control bits)
    pub const RM_CONTROL_VALID: u16 = 0x4000;
    /// SE_SELF_RELATIVE
    pub const SELF_RELATIVE: u16 = 0x8000;

    /// `true` when all bits of `bits` are set.
    pub fn has(self, bits: u16) -> bool {
        self.0 & bits == bits
    }
}

/// Size of the self-relative header.
pub const HEADER_LEN: usize = HEADER_SIZE;

/// Where the components sat in the parsed buffer, for byte-exact re-serialization.
#[derive(Debug, Clone)]
struct Layout {
    original: Vec<u8>,
    /// Offsets of owner, group, SACL, DACL (0 = absent).
    offsets: [usize; 4],
    /// Encoded lengths of those components at parse time.
    lens: [usize; 4],
}

/// A self-relative security descriptor (`SECURITY_DESCRIPTOR_RELATIVE`).
///
/// Only the self-relative form exists on disk (NTFS `$SDS`, registry sk cells, SAM `V`
/// values), so only it is parsed; the `SE_SELF_RELATIVE` control bit is kept as found and the
/// four header words are always read as offsets. Components are parsed when their offset is
/// non-zero, whatever the `*_PRESENT` bits say; a NULL DACL is `dacl == None` with
/// `DACL_PRESENT` set.
///
/// Equality (`==`) compares the decoded fields only, not the original byte layout.
#[derive(Debug, Clone)]
pub struct SecurityDescriptor {
    /// Revision (1).
    pub revision: u8,
    /// `Sbz1`: resource-manager control bits when `RM_CONTROL_VALID` is set, else reserved.
    pub sbz1: u8,
    /// Control flags.
    pub control: Control,
    /// Owner SID.
    pub owner: Option<Sid>,
    /// Primary group SID.
    pub group: Option<Sid>,
    /// System ACL.
    pub sacl: Option<Acl>,
    /// Discretionary ACL.
    pub dacl: Option<Acl>,
    layout: Option<Layout>,
}

impl PartialEq for SecurityDescriptor {
    fn eq(&self, o: &Self) -> bool {
        self.revision == o.revision
            && self.sbz1 == o.sbz1
            && self.control == o.control
            && self.owner == o.owner
            && self.group == o.group
            && self.sacl == o.sacl
            && self.dacl == o.dacl
    }
}
impl Eq for SecurityDescriptor {}

impl Default for SecurityDescriptor {
    fn default() -> Self {
        SecurityDescriptor {
            revision: 1,
            sbz1: 0,
            control: Control(Control::SELF_RELATIVE),
            owner: None,
            group: None,
            sacl: None,
            dacl: None,
            layout: None,
        }
    }
}

impl SecurityDescriptor {
    /// Parse a self-relative descriptor that occupies all of `bytes` (bytes not covered by a
    /// component are kept and reproduced by [`SecurityDescriptor::to_bytes`]). Error offsets are
    /// relative to `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let header: SecurityDescriptorRelative = read(bytes, 0).ok_or_else(|| {
            Error::truncated("security descriptor header", 0, HEADER_LEN, bytes.len())
        })?;
        let revision = header.revision;
        if revision != REVISION {
            return Err(Error::invalid(
                "security descriptor revision",
                0,
                format!("revision {revision} (expected 1)"),
            ));
        }
        let sbz1 = header.sbz1;
        let control = Control(header.control.get());
        let mut offsets = [0usize; 4];
        for (i, (o, v)) in offsets.iter_mut().zip(header.offsets()).enumerate() {
            let v = v as usize;
            if v != 0 && v < HEADER_LEN {
                return Err(Error::invalid(
                    "security descriptor offset",
                    4 + 4 * i,
                    format!("offset {v} points into the header"),
                ));
            }
            if v >= bytes.len() && v != 0 {
                return Err(Error::truncated(
                    ["owner SID", "group SID", "SACL", "DACL"][i],
                    v,
                    8,
                    bytes.len(),
                ));
            }
            *o = v;
        }
        let sid = |o: usize| -> Result<Option<Sid>> {
            if o == 0 {
                Ok(None)
            } else {
                Sid::parse_at(bytes, o).map(Some)
            }
        };
        let acl = |o: usize| -> Result<Option<Acl>> {
            if o == 0 {
                Ok(None)
            } else {
                Acl::parse_at(bytes, o).map(Some)
            }
        };
        let owner = sid(offsets[0])?;
        let group = sid(offsets[1])?;
        let sacl = acl(offsets[2])?;
        let dacl = acl(offsets[3])?;
        let lens = [
            owner.as_ref().map_or(0, Sid::len),
            group.as_ref().map_or(0, Sid::len),
            sacl.as_ref().map_or(0, Acl::encoded_len),
            dacl.as_ref().map_or(0, Acl::encoded_len),
        ];
        Ok(SecurityDescriptor {
            revision,
            sbz1,
            control,
            owner,
            group,
            sacl,
            dacl,
            layout: Some(Layout {
                original: bytes.to_vec(),
                offsets,
                lens,
            }),
        })
    }

    /// Serialize. When the descriptor was parsed and every component still has its original
    /// encoded length (and presence), the original buffer is reproduced with the components
    /// written back at their original offsets: byte-identical for an unmodified descriptor,
    /// in-place for same-length edits (e.g. a SID rewrite). Otherwise falls back to
    /// [`SecurityDescriptor::to_canonical_bytes`].
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if let Some(l) = &self.layout {
            let now = self.component_lens();
            let same = (0..4).all(|i| {
                (l.offsets[i] != 0) == now[i].is_some() && now[i].is_none_or(|n| n == l.lens[i])
            });
            if same {
                let mut buf = l.original.clone();
                self.write_header(&mut buf, l.offsets);
                for (i, &off) in l.offsets.iter().enumerate() {
                    if off == 0 {
                        continue;
                    }
                    let bytes = self.component_bytes(i)?;
                    buf[off..off + bytes.len()].copy_from_slice(&bytes);
                }
                return Ok(buf);
            }
        }
        self.to_canonical_bytes()
    }

    /// Serialize in the layout Windows writes: header, SACL, DACL, owner, group, with no gaps
    /// (each component's own bytes, including ACL slack and ACE padding, are kept).
    ///
    /// Verified on the corpus (tests/integration/corpus.rs): every sk cell of the Windows SYSTEM hive and
    /// every `$SDS` entry of the dissect.ntfs extracts and of the velociraptor / go-ntfs volumes
    /// is laid out exactly like this. Descriptors with another layout are still reproduced
    /// exactly by [`SecurityDescriptor::to_bytes`].
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; HEADER_LEN];
        let mut offsets = [0usize; 4];
        for i in [2usize, 3, 0, 1] {
            let b = self.component_bytes(i)?;
            if b.is_empty() {
                continue;
            }
            offsets[i] = buf.len();
            buf.extend_from_slice(&b);
        }
        if u32::try_from(buf.len()).is_err() {
            return Err(Error::Unsupported("descriptor larger than 4 GiB".into()));
        }
        self.write_header(&mut buf, offsets);
        Ok(buf)
    }

    fn component_lens(&self) -> [Option<usize>; 4] {
        [
            self.owner.as_ref().map(Sid::len),
            self.group.as_ref().map(Sid::len),
            self.sacl.as_ref().map(Acl::encoded_len),
            self.dacl.as_ref().map(Acl::encoded_len),
        ]
    }

    fn component_bytes(&self, i: usize) -> Result<Vec<u8>> {
        Ok(match i {
            0 => self.owner.as_ref().map(Sid::to_bytes).unwrap_or_default(),
            1 => self.group.as_ref().map(Sid::to_bytes).unwrap_or_default(),
            2 => self
                .sacl
                .as_ref()
                .map(Acl::to_bytes)
                .transpose()?
                .unwrap_or_default(),
            _ => self
                .dacl
                .as_ref()
                .map(Acl::to_bytes)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    fn write_header(&self, buf: &mut [u8], offsets: [usize; 4]) {
        let mut header = SecurityDescriptorRelative {
            revision: self.revision,
            sbz1: self.sbz1,
            control: self.control.0.into(),
            ..Default::default()
        };
        header.set_offsets(offsets.map(|o| o as u32));
        buf[..HEADER_LEN].copy_from_slice(header.as_bytes());
    }

    /// Forget the parsed byte layout so that [`SecurityDescriptor::to_bytes`] produces the
    /// canonical layout.
    pub fn clear_layout(&mut self) {
        self.layout = None;
    }

    /// A copy without anything SDDL cannot express: original layout, ACL slack, padding after
    /// the SID of non-callback ACEs, and the reserved/non-SDDL control bits (`*_DEFAULTED`,
    /// `RM_CONTROL_VALID` with Sbz1). `from_sddl(sd.to_sddl())` equals `sd.normalized()`.
    pub fn normalized(&self) -> SecurityDescriptor {
        let mut sd = self.clone();
        sd.layout = None;
        let keep = Control::DACL_PRESENT
            | Control::SACL_PRESENT
            | Control::DACL_AUTO_INHERIT_REQ
            | Control::SACL_AUTO_INHERIT_REQ
            | Control::DACL_AUTO_INHERITED
            | Control::SACL_AUTO_INHERITED
            | Control::DACL_PROTECTED
            | Control::SACL_PROTECTED
            | Control::SELF_RELATIVE;
        sd.control = Control((sd.control.0 & keep) | Control::SELF_RELATIVE);
        if sd.dacl.is_some() {
            sd.control.0 |= Control::DACL_PRESENT;
        }
        if sd.sacl.is_some() {
            sd.control.0 |= Control::SACL_PRESENT;
        }
        // ACL flags of an absent ACL have no SDDL section to live in.
        if !sd.control.has(Control::DACL_PRESENT) {
            sd.control.0 &= !(Control::DACL_PROTECTED
                | Control::DACL_AUTO_INHERIT_REQ
                | Control::DACL_AUTO_INHERITED);
        }
        if !sd.control.has(Control::SACL_PRESENT) {
            sd.control.0 &= !(Control::SACL_PROTECTED
                | Control::SACL_AUTO_INHERIT_REQ
                | Control::SACL_AUTO_INHERITED);
        }
        // SDDL input picks the ACL revision itself.
        for acl in [&mut sd.sacl, &mut sd.dacl].into_iter().flatten() {
            acl.revision = Acl::new(acl.aces.clone()).revision;
        }
        // Re-encode claim attributes in the layout SDDL input produces.
        for acl in [&mut sd.sacl, &mut sd.dacl].into_iter().flatten() {
            for ace in &mut acl.aces {
                if let crate::ace::Ace::SystemResourceAttribute(r) = ace {
                    if let Ok(a) = r.attribute() {
                        r.data = a.encode();
                    }
                }
            }
        }
        sd.sbz1 = 0;
        for acl in [&mut sd.sacl, &mut sd.dacl].into_iter().flatten() {
            acl.slack.clear();
            acl.sbz1 = 0;
            acl.sbz2 = 0;
            for ace in &mut acl.aces {
                let app = ace.has_application_data();
                match ace.shape_mut() {
                    crate::ace::ShapeMut::Compound(a) => a.extra.clear(),
                    crate::ace::ShapeMut::Basic(a) if !app => a.extra.clear(),
                    crate::ace::ShapeMut::Object(a) if !app => a.extra.clear(),
                    _ => {}
                }
            }
        }
        sd
    }

    /// Byte ranges of every SID in the serialized form of this descriptor (as produced by
    /// [`SecurityDescriptor::to_bytes`]). Sorted, duplicates removed.
    pub fn sid_positions(&self) -> Result<Vec<Range<usize>>> {
        let offsets = match &self.layout {
            Some(l)
                if self.to_bytes()?.len() == l.original.len() && {
                    let now = self.component_lens();
                    (0..4).all(|i| {
                        (l.offsets[i] != 0) == now[i].is_some()
                            && now[i].is_none_or(|n| n == l.lens[i])
                    })
                } =>
            {
                l.offsets
            }
            _ => {
                let mut offsets = [0usize; 4];
                let mut pos = HEADER_LEN;
                for i in [2usize, 3, 0, 1] {
                    if let Some(n) = self.component_lens()[i] {
                        offsets[i] = pos;
                        pos += n;
                    }
                }
                offsets
            }
        };
        let mut out = Vec::new();
        if let Some(s) = &self.owner {
            out.push(offsets[0]..offsets[0] + s.len());
        }
        if let Some(s) = &self.group {
            out.push(offsets[1]..offsets[1] + s.len());
        }
        for (acl, off) in [(&self.sacl, offsets[2]), (&self.dacl, offsets[3])] {
            if let Some(acl) = acl {
                out.extend(
                    acl.sid_ranges()
                        .into_iter()
                        .map(|r| r.start + off..r.end + off),
                );
            }
        }
        out.sort_by_key(|r| (r.start, r.end));
        out.dedup();
        Ok(out)
    }

    /// Apply `f` to every SID (owner, group, every ACE trustee, conditional-expression SID
    /// literals, resource-attribute SID values); each SID for which `f` returns a different SID
    /// is replaced. Returns the number of replacements.
    pub fn map_sids(&mut self, mut f: impl FnMut(&Sid) -> Option<Sid>) -> usize {
        let f: &mut dyn FnMut(&Sid) -> Option<Sid> = &mut f;
        let mut n = 0;
        if let Some(s) = &mut self.owner {
            n += crate::ace::map_one(s, f);
        }
        if let Some(s) = &mut self.group {
            n += crate::ace::map_one(s, f);
        }
        for acl in [&mut self.sacl, &mut self.dacl].into_iter().flatten() {
            for ace in &mut acl.aces {
                n += ace.map_sids(f);
            }
        }
        n
    }
}

/// Byte ranges of every SID inside the self-relative descriptor `sd_bytes`: owner, group, each
/// ACE's trustee, SID literal tokens (0x51) of conditional expressions, and SID-typed values of
/// resource-attribute ACEs. A rewriter can overwrite a same-length SID in place.
/// Sorted by start, duplicates (e.g. owner and group sharing bytes) removed.
pub fn sid_positions(sd_bytes: &[u8]) -> Result<Vec<Range<usize>>> {
    SecurityDescriptor::parse(sd_bytes)?.sid_positions()
}
