//! Access control entries (MS-DTYP 2.4.4).
//!
//! Every ACE type is parsed; the bytes an ACE carries beyond its structured fields are kept
//! verbatim (`extra`/`data`), so serialization reproduces the input exactly.

use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::layout::ace::{
    AceHeader, BasicAceBody, CompoundAceBody, ObjectAceBody, BASIC_SID_OFFSET, COMPOUND_SID_OFFSET,
    HEADER_SIZE, INHERITED_OBJECT_TYPE_PRESENT, OBJECT_GUIDS_OFFSET, OBJECT_TYPE_PRESENT,
};
use crate::layout::{guid, read};
use crate::sid::Sid;
use zerocopy::IntoBytes;

/// ACE header flags (`AceFlags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AceFlags(pub u8);

impl AceFlags {
    /// OBJECT_INHERIT_ACE (SDDL `OI`).
    pub const OBJECT_INHERIT: u8 = 0x01;
    /// CONTAINER_INHERIT_ACE (`CI`).
    pub const CONTAINER_INHERIT: u8 = 0x02;
    /// NO_PROPAGATE_INHERIT_ACE (`NP`).
    pub const NO_PROPAGATE_INHERIT: u8 = 0x04;
    /// INHERIT_ONLY_ACE (`IO`).
    pub const INHERIT_ONLY: u8 = 0x08;
    /// INHERITED_ACE (`ID`).
    pub const INHERITED: u8 = 0x10;
    /// CRITICAL_ACE_FLAG (access filter ACEs; no standard SDDL letter).
    pub const CRITICAL: u8 = 0x20;
    /// SUCCESSFUL_ACCESS_ACE_FLAG (`SA`).
    pub const SUCCESSFUL_ACCESS: u8 = 0x40;
    /// FAILED_ACCESS_ACE_FLAG (`FA`).
    pub const FAILED_ACCESS: u8 = 0x80;
}

/// A 32-bit access mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccessMask(pub u32);

/// Fields of the ACE types laid out as `{header, mask, SID, [application data]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BasicAce {
    /// Header flags.
    pub flags: AceFlags,
    /// Access mask.
    pub mask: AccessMask,
    /// Trustee.
    pub sid: Sid,
    /// Bytes after the SID up to the ACE size. For callback types and access-filter ACEs this
    /// is the application data (a conditional expression when it starts with `artx`); for the
    /// other types it is padding/slack kept for byte-exact round trips.
    pub extra: Vec<u8>,
}

/// Fields of the object ACE types (`{header, mask, object flags, [GUID], [GUID], SID, [data]}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectAce {
    /// Header flags.
    pub flags: AceFlags,
    /// Access mask.
    pub mask: AccessMask,
    /// Object-flags bits other than ACE_OBJECT_TYPE_PRESENT (1) and
    /// ACE_INHERITED_OBJECT_TYPE_PRESENT (2), which are derived from the options below.
    pub other_object_flags: u32,
    /// ObjectType GUID.
    pub object_type: Option<Guid>,
    /// InheritedObjectType GUID.
    pub inherited_object_type: Option<Guid>,
    /// Trustee.
    pub sid: Sid,
    /// Bytes after the SID: application data of callback object ACEs, slack otherwise.
    pub extra: Vec<u8>,
}

impl ObjectAce {
    /// The on-disk object flags.
    pub fn object_flags(&self) -> u32 {
        let known = OBJECT_TYPE_PRESENT | INHERITED_OBJECT_TYPE_PRESENT;
        let mut flags = self.other_object_flags & !known;
        if self.object_type.is_some() {
            flags |= OBJECT_TYPE_PRESENT;
        }
        if self.inherited_object_type.is_some() {
            flags |= INHERITED_OBJECT_TYPE_PRESENT;
        }
        flags
    }
    /// Offset of the SID from the ACE start.
    pub fn sid_offset(&self) -> usize {
        OBJECT_GUIDS_OFFSET
            + guid::SIZE * usize::from(self.object_type.is_some())
            + guid::SIZE * usize::from(self.inherited_object_type.is_some())
    }
}

/// ACCESS_ALLOWED_COMPOUND_ACE (type 0x04, reserved by MS-DTYP but found on disk):
/// `{header, mask, u16 compound type (1 = impersonation), u16 reserved, server SID, client SID}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompoundAce {
    /// Header flags.
    pub flags: AceFlags,
    /// Access mask.
    pub mask: AccessMask,
    /// Compound ACE type (1 = COMPOUND_ACE_IMPERSONATION).
    pub compound_type: u16,
    /// Reserved word.
    pub reserved: u16,
    /// Server SID.
    pub server: Sid,
    /// Client SID.
    pub client: Sid,
    /// Bytes after the client SID up to the ACE size (slack).
    pub extra: Vec<u8>,
}

/// SYSTEM_RESOURCE_ATTRIBUTE_ACE: `{header, mask, SID (Everyone), claim attribute}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceAttributeAce {
    /// Header flags.
    pub flags: AceFlags,
    /// Access mask (0 in practice).
    pub mask: AccessMask,
    /// SID (S-1-1-0 in practice).
    pub sid: Sid,
    /// The `CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1` bytes and any padding up to the ACE size,
    /// verbatim. Decode with [`ResourceAttributeAce::attribute`].
    pub data: Vec<u8>,
}

impl ResourceAttributeAce {
    /// Decode the claim attribute.
    pub fn attribute(&self) -> Result<crate::claim::ClaimAttribute> {
        crate::claim::ClaimAttribute::parse(&self.data)
    }
}

/// One ACE. Variant names follow the `*_ACE_TYPE` constants; the type byte is in the comment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ace {
    /// 0x00
    AccessAllowed(BasicAce),
    /// 0x01
    AccessDenied(BasicAce),
    /// 0x02
    SystemAudit(BasicAce),
    /// 0x03
    SystemAlarm(BasicAce),
    /// 0x04 (server and client SID)
    AccessAllowedCompound(CompoundAce),
    /// 0x05
    AccessAllowedObject(ObjectAce),
    /// 0x06
    AccessDeniedObject(ObjectAce),
    /// 0x07
    SystemAuditObject(ObjectAce),
    /// 0x08
    SystemAlarmObject(ObjectAce),
    /// 0x09
    AccessAllowedCallback(BasicAce),
    /// 0x0A
    AccessDeniedCallback(BasicAce),
    /// 0x0B
    AccessAllowedCallbackObject(ObjectAce),
    /// 0x0C
    AccessDeniedCallbackObject(ObjectAce),
    /// 0x0D
    SystemAuditCallback(BasicAce),
    /// 0x0E
    SystemAlarmCallback(BasicAce),
    /// 0x0F
    SystemAuditCallbackObject(ObjectAce),
    /// 0x10
    SystemAlarmCallbackObject(ObjectAce),
    /// 0x11 (SID = integrity level S-1-16-x; mask bits NW/NR/NX)
    SystemMandatoryLabel(BasicAce),
    /// 0x12
    SystemResourceAttribute(ResourceAttributeAce),
    /// 0x13
    SystemScopedPolicyId(BasicAce),
    /// 0x14
    SystemProcessTrustLabel(BasicAce),
    /// 0x15 (mask, SID, then a conditional expression as application data)
    SystemAccessFilter(BasicAce),
    /// Any other type byte: body kept verbatim (bytes after the
    /// 4-byte header).
    Unknown {
        /// The type byte.
        ace_type: u8,
        /// Header flags.
        flags: AceFlags,
        /// Everything after the 4-byte header.
        body: Vec<u8>,
    },
}

pub(crate) enum Shape<'a> {
    Compound(&'a CompoundAce),
    Basic(&'a BasicAce),
    Object(&'a ObjectAce),
    Resource(&'a ResourceAttributeAce),
    Unknown(&'a [u8]),
}

pub(crate) enum ShapeMut<'a> {
    Compound(&'a mut CompoundAce),
    Basic(&'a mut BasicAce),
    Object(&'a mut ObjectAce),
    Resource(&'a mut ResourceAttributeAce),
    Unknown,
}

macro_rules! shape_match {
    ($self:expr, $Shape:ident) => {
        match $self {
            Ace::AccessAllowed(a)
            | Ace::AccessDenied(a)
            | Ace::SystemAudit(a)
            | Ace::SystemAlarm(a)
            | Ace::AccessAllowedCallback(a)
            | Ace::AccessDeniedCallback(a)
            | Ace::SystemAuditCallback(a)
            | Ace::SystemAlarmCallback(a)
            | Ace::SystemMandatoryLabel(a)
            | Ace::SystemScopedPolicyId(a)
            | Ace::SystemProcessTrustLabel(a)
            | Ace::SystemAccessFilter(a) => $Shape::Basic(a),
            Ace::AccessAllowedObject(a)
            | Ace::AccessDeniedObject(a)
            | Ace::SystemAuditObject(a)
            | Ace::SystemAlarmObject(a)
            | Ace::AccessAllowedCallbackObject(a)
            | Ace::AccessDeniedCallbackObject(a)
            | Ace::SystemAuditCallbackObject(a)
            | Ace::SystemAlarmCallbackObject(a) => $Shape::Object(a),
            Ace::SystemResourceAttribute(a) => $Shape::Resource(a),
            Ace::AccessAllowedCompound(a) => $Shape::Compound(a),
            Ace::Unknown { body, .. } => shape_unknown!($Shape, body),
        }
    };
}
macro_rules! shape_unknown {
    (Shape, $b:expr) => {
        Shape::Unknown($b)
    };
    (ShapeMut, $b:expr) => {{
        let _ = $b;
        ShapeMut::Unknown
    }};
}

impl Ace {
    pub(crate) fn shape(&self) -> Shape<'_> {
        shape_match!(self, Shape)
    }
    pub(crate) fn shape_mut(&mut self) -> ShapeMut<'_> {
        shape_match!(self, ShapeMut)
    }

    /// The ACE type byte.
    pub fn ace_type(&self) -> u8 {
        match self {
            Ace::AccessAllowed(_) => 0x00,
            Ace::AccessDenied(_) => 0x01,
            Ace::SystemAudit(_) => 0x02,
            Ace::SystemAlarm(_) => 0x03,
            Ace::AccessAllowedCompound(_) => 0x04,
            Ace::AccessAllowedObject(_) => 0x05,
            Ace::AccessDeniedObject(_) => 0x06,
            Ace::SystemAuditObject(_) => 0x07,
            Ace::SystemAlarmObject(_) => 0x08,
            Ace::AccessAllowedCallback(_) => 0x09,
            Ace::AccessDeniedCallback(_) => 0x0A,
            Ace::AccessAllowedCallbackObject(_) => 0x0B,
            Ace::AccessDeniedCallbackObject(_) => 0x0C,
            Ace::SystemAuditCallback(_) => 0x0D,
            Ace::SystemAlarmCallback(_) => 0x0E,
            Ace::SystemAuditCallbackObject(_) => 0x0F,
            Ace::SystemAlarmCallbackObject(_) => 0x10,
            Ace::SystemMandatoryLabel(_) => 0x11,
            Ace::SystemResourceAttribute(_) => 0x12,
            Ace::SystemScopedPolicyId(_) => 0x13,
            Ace::SystemProcessTrustLabel(_) => 0x14,
            Ace::SystemAccessFilter(_) => 0x15,
            Ace::Unknown { ace_type, .. } => *ace_type,
        }
    }

    /// `true` for the types whose trailing bytes are application data (callback types, callback
    /// object types and access-filter ACEs).
    pub fn has_application_data(&self) -> bool {
        matches!(self.ace_type(), 0x09..=0x10 | 0x15)
    }

    /// Header flags.
    pub fn flags(&self) -> AceFlags {
        match self.shape() {
            Shape::Basic(a) => a.flags,
            Shape::Object(a) => a.flags,
            Shape::Resource(a) => a.flags,
            Shape::Compound(a) => a.flags,
            Shape::Unknown(_) => match self {
                Ace::Unknown { flags, .. } => *flags,
                _ => AceFlags(0),
            },
        }
    }

    /// Replace the header flags.
    pub fn set_flags(&mut self, flags: AceFlags) {
        match self.shape_mut() {
            ShapeMut::Basic(a) => a.flags = flags,
            ShapeMut::Object(a) => a.flags = flags,
            ShapeMut::Resource(a) => a.flags = flags,
            ShapeMut::Compound(a) => a.flags = flags,
            ShapeMut::Unknown => {
                if let Ace::Unknown { flags: f, .. } = self {
                    *f = flags;
                }
            }
        }
    }

    /// Replace the access mask (no effect on unknown types, which have none).
    pub fn set_mask(&mut self, mask: AccessMask) {
        match self.shape_mut() {
            ShapeMut::Basic(a) => a.mask = mask,
            ShapeMut::Object(a) => a.mask = mask,
            ShapeMut::Resource(a) => a.mask = mask,
            ShapeMut::Compound(a) => a.mask = mask,
            ShapeMut::Unknown => {}
        }
    }

    /// Access mask (`None` for unknown types).
    pub fn mask(&self) -> Option<AccessMask> {
        match self.shape() {
            Shape::Basic(a) => Some(a.mask),
            Shape::Object(a) => Some(a.mask),
            Shape::Resource(a) => Some(a.mask),
            Shape::Compound(a) => Some(a.mask),
            Shape::Unknown(_) => None,
        }
    }

    /// The trustee SID (`None` for unknown types; the server SID of a compound ACE).
    pub fn sid(&self) -> Option<&Sid> {
        match self.shape() {
            Shape::Compound(a) => Some(&a.server),
            Shape::Basic(a) => Some(&a.sid),
            Shape::Object(a) => Some(&a.sid),
            Shape::Resource(a) => Some(&a.sid),
            Shape::Unknown(_) => None,
        }
    }

    /// Application data (callback types and access filter), `None` otherwise.
    pub fn application_data(&self) -> Option<&[u8]> {
        if !self.has_application_data() {
            return None;
        }
        match self.shape() {
            Shape::Basic(a) => Some(&a.extra),
            Shape::Object(a) => Some(&a.extra),
            _ => None,
        }
    }

    /// Offset of the trustee SID from the start of the ACE.
    pub fn sid_offset(&self) -> Option<usize> {
        match self.shape() {
            Shape::Basic(_) | Shape::Resource(_) => Some(BASIC_SID_OFFSET),
            Shape::Compound(_) => Some(COMPOUND_SID_OFFSET),
            Shape::Object(a) => Some(a.sid_offset()),
            Shape::Unknown(_) => None,
        }
    }

    /// Encoded size in bytes (the header's `AceSize`).
    pub fn encoded_len(&self) -> usize {
        match self.shape() {
            Shape::Basic(a) => BASIC_SID_OFFSET + a.sid.len() + a.extra.len(),
            Shape::Compound(a) => {
                COMPOUND_SID_OFFSET + a.server.len() + a.client.len() + a.extra.len()
            }
            Shape::Object(a) => a.sid_offset() + a.sid.len() + a.extra.len(),
            Shape::Resource(a) => BASIC_SID_OFFSET + a.sid.len() + a.data.len(),
            Shape::Unknown(b) => HEADER_SIZE + b.len(),
        }
    }

    /// Append the binary form to `out`. Fails when the ACE is larger than 65535 bytes.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let size = u16::try_from(self.encoded_len()).map_err(|_| {
            Error::Unsupported(format!("ACE of {} bytes exceeds 65535", self.encoded_len()))
        })?;
        let header = AceHeader {
            ace_type: self.ace_type(),
            ace_flags: self.flags().0,
            ace_size: size.into(),
        };
        out.extend_from_slice(header.as_bytes());
        let basic = |mask: AccessMask| BasicAceBody {
            mask: mask.0.into(),
        };
        match self.shape() {
            Shape::Compound(a) => {
                let body = CompoundAceBody {
                    mask: a.mask.0.into(),
                    compound_ace_type: a.compound_type.into(),
                    reserved: a.reserved.into(),
                };
                out.extend_from_slice(body.as_bytes());
                a.server.write_to(out);
                a.client.write_to(out);
                out.extend_from_slice(&a.extra);
            }
            Shape::Basic(a) => {
                out.extend_from_slice(basic(a.mask).as_bytes());
                a.sid.write_to(out);
                out.extend_from_slice(&a.extra);
            }
            Shape::Object(a) => {
                let body = ObjectAceBody {
                    mask: a.mask.0.into(),
                    flags: a.object_flags().into(),
                };
                out.extend_from_slice(body.as_bytes());
                if let Some(g) = a.object_type {
                    out.extend_from_slice(&g.0);
                }
                if let Some(g) = a.inherited_object_type {
                    out.extend_from_slice(&g.0);
                }
                a.sid.write_to(out);
                out.extend_from_slice(&a.extra);
            }
            Shape::Resource(a) => {
                out.extend_from_slice(basic(a.mask).as_bytes());
                a.sid.write_to(out);
                out.extend_from_slice(&a.data);
            }
            Shape::Unknown(b) => out.extend_from_slice(b),
        }
        Ok(())
    }

    /// Binary form.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut v)?;
        Ok(v)
    }

    /// Parse one ACE occupying exactly `b` (its `AceSize` bytes). Error offsets are relative
    /// to `b`.
    pub fn parse(b: &[u8]) -> Result<Ace> {
        let header: AceHeader =
            read(b, 0).ok_or_else(|| Error::truncated("ACE header", 0, HEADER_SIZE, b.len()))?;
        let ace_type = header.ace_type;
        let flags = AceFlags(header.ace_flags);
        let basic = || -> Result<BasicAce> {
            let body: BasicAceBody = read(b, HEADER_SIZE)
                .ok_or_else(|| Error::truncated("ACE mask", HEADER_SIZE, 4, b.len()))?;
            let mask = body.mask.get();
            let sid = Sid::parse_at(b, BASIC_SID_OFFSET)?;
            let end = BASIC_SID_OFFSET + sid.len();
            Ok(BasicAce {
                flags,
                mask: AccessMask(mask),
                sid,
                extra: b[end..].to_vec(),
            })
        };
        let object = || -> Result<ObjectAce> {
            let mask = read::<BasicAceBody>(b, HEADER_SIZE)
                .ok_or_else(|| Error::truncated("ACE mask", HEADER_SIZE, 4, b.len()))?
                .mask
                .get();
            let body: ObjectAceBody = read(b, HEADER_SIZE)
                .ok_or_else(|| Error::truncated("object ACE flags", 8, 4, b.len()))?;
            let of = body.flags.get();
            let mut pos = OBJECT_GUIDS_OFFSET;
            let mut guid = |present: bool| -> Result<Option<Guid>> {
                if !present {
                    return Ok(None);
                }
                let g: [u8; guid::SIZE] = read(b, pos)
                    .ok_or_else(|| Error::truncated("object ACE GUID", pos, guid::SIZE, b.len()))?;
                pos += guid::SIZE;
                Ok(Some(Guid(g)))
            };
            let object_type = guid(of & OBJECT_TYPE_PRESENT != 0)?;
            let inherited_object_type = guid(of & INHERITED_OBJECT_TYPE_PRESENT != 0)?;
            let sid = Sid::parse_at(b, pos)?;
            let end = pos + sid.len();
            Ok(ObjectAce {
                flags,
                mask: AccessMask(mask),
                other_object_flags: of & !(OBJECT_TYPE_PRESENT | INHERITED_OBJECT_TYPE_PRESENT),
                object_type,
                inherited_object_type,
                sid,
                extra: b[end..].to_vec(),
            })
        };
        Ok(match ace_type {
            0x00 => Ace::AccessAllowed(basic()?),
            0x01 => Ace::AccessDenied(basic()?),
            0x02 => Ace::SystemAudit(basic()?),
            0x03 => Ace::SystemAlarm(basic()?),
            0x04 => {
                read::<BasicAceBody>(b, HEADER_SIZE)
                    .ok_or_else(|| Error::truncated("ACE mask", HEADER_SIZE, 4, b.len()))?;
                let body: CompoundAceBody = read(b, HEADER_SIZE)
                    .ok_or_else(|| Error::truncated("compound ACE type", 8, 4, b.len()))?;
                let mask = body.mask.get();
                let server = Sid::parse_at(b, COMPOUND_SID_OFFSET)?;
                let client = Sid::parse_at(b, COMPOUND_SID_OFFSET + server.len())?;
                let end = COMPOUND_SID_OFFSET + server.len() + client.len();
                Ace::AccessAllowedCompound(CompoundAce {
                    flags,
                    mask: AccessMask(mask),
                    compound_type: body.compound_ace_type.get(),
                    reserved: body.reserved.get(),
                    server,
                    client,
                    extra: b[end..].to_vec(),
                })
            }
            0x05 => Ace::AccessAllowedObject(object()?),
            0x06 => Ace::AccessDeniedObject(object()?),
            0x07 => Ace::SystemAuditObject(object()?),
            0x08 => Ace::SystemAlarmObject(object()?),
            0x09 => Ace::AccessAllowedCallback(basic()?),
            0x0A => Ace::AccessDeniedCallback(basic()?),
            0x0B => Ace::AccessAllowedCallbackObject(object()?),
            0x0C => Ace::AccessDeniedCallbackObject(object()?),
            0x0D => Ace::SystemAuditCallback(basic()?),
            0x0E => Ace::SystemAlarmCallback(basic()?),
            0x0F => Ace::SystemAuditCallbackObject(object()?),
            0x10 => Ace::SystemAlarmCallbackObject(object()?),
            0x11 => Ace::SystemMandatoryLabel(basic()?),
            0x12 => {
                let a = basic()?;
                Ace::SystemResourceAttribute(ResourceAttributeAce {
                    flags: a.flags,
                    mask: a.mask,
                    sid: a.sid,
                    data: a.extra,
                })
            }
            0x13 => Ace::SystemScopedPolicyId(basic()?),
            0x14 => Ace::SystemProcessTrustLabel(basic()?),
            0x15 => Ace::SystemAccessFilter(basic()?),
            _ => Ace::Unknown {
                ace_type,
                flags,
                body: b[HEADER_SIZE..].to_vec(),
            },
        })
    }

    /// Byte ranges (relative to the ACE start) of every SID in this ACE: the trustee, SID
    /// literals of a conditional expression, SID values of a resource attribute. Malformed
    /// conditional expressions / claim attributes contribute only the trustee.
    pub fn sid_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let Some(off) = self.sid_offset() else {
            return out;
        };
        let Some(sid) = self.sid() else { return out };
        out.push(off..off + sid.len());
        let mut after = off + sid.len();
        if let Ace::AccessAllowedCompound(c) = self {
            out.push(after..after + c.client.len());
            after += c.client.len();
        }
        if let Some(data) = self.application_data() {
            if let Ok(r) = crate::conditional::sid_ranges(data) {
                out.extend(r.into_iter().map(|r| r.start + after..r.end + after));
            }
        }
        if let Ace::SystemResourceAttribute(a) = self {
            if let Ok(r) = crate::claim::sid_ranges(&a.data) {
                out.extend(r.into_iter().map(|r| r.start + after..r.end + after));
            }
        }
        out
    }

    /// Apply `f` to every SID of this ACE (see [`Ace::sid_ranges`]); returns how many were
    /// replaced. Same-length replacements inside application data / claim data are patched in
    /// place; others re-encode that data.
    pub fn map_sids(&mut self, f: &mut dyn FnMut(&Sid) -> Option<Sid>) -> usize {
        let app = self.has_application_data();
        match self.shape_mut() {
            ShapeMut::Compound(a) => map_one(&mut a.server, f) + map_one(&mut a.client, f),
            ShapeMut::Basic(a) => {
                let mut n = map_one(&mut a.sid, f);
                if app {
                    n += crate::conditional::map_sids_in_data(&mut a.extra, f);
                }
                n
            }
            ShapeMut::Object(a) => {
                let mut n = map_one(&mut a.sid, f);
                if app {
                    n += crate::conditional::map_sids_in_data(&mut a.extra, f);
                }
                n
            }
            ShapeMut::Resource(a) => {
                map_one(&mut a.sid, f) + crate::claim::map_sids_in_data(&mut a.data, f)
            }
            ShapeMut::Unknown => 0,
        }
    }
}

/// Replace `sid` by `f(sid)` when that is `Some` and different; returns 1 if replaced.
pub(crate) fn map_one(sid: &mut Sid, f: &mut dyn FnMut(&Sid) -> Option<Sid>) -> usize {
    match f(sid) {
        Some(new) if new != *sid => {
            *sid = new;
            1
        }
        _ => 0,
    }
}
