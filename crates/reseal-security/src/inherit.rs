//! The descriptor a new file or directory receives from its parent directory: the inheritance
//! part of MS-DTYP 2.5.3.4 (`CreateSecurityDescriptor` / `ComputeACL`), with no creator
//! descriptor and no creator token, for the NTFS file object type.
//!
//! What [`inherit`] computes, ACE by ACE of the parent's DACL and SACL (in order):
//!
//! | parent ACE flags | file child | directory child |
//! | --- | --- | --- |
//! | no OI, no CI | — | — |
//! | OI (no CI) | effective | inherit-only copy `OI IO ID`, unless NP |
//! | CI (no OI) | — | effective; inheritable again unless NP |
//! | OI CI | effective | effective; inheritable again unless NP |
//!
//! * *effective*: flags reduced to `ID` (audit flags `SA`/`FA` kept), generic rights mapped to
//!   file rights ([`map_generic`]), CREATOR OWNER (S-1-3-0) replaced by the new owner and
//!   CREATOR GROUP (S-1-3-1) by the new group.
//! * A directory child that inherits an ACE *and* passes it on gets one ACE when mapping changes
//!   nothing (the parent's `OI`/`CI` kept, `IO` cleared, `ID` added), and otherwise two, as
//!   Windows does: the mapped effective ACE, then the unmapped ACE with `IO ID` added so the
//!   next generation maps it for itself.
//! * The parent's `INHERIT_ONLY` flag does not matter: it only says the ACE does not apply to
//!   the parent itself.
//! * Object ACEs with an inherited-object-type GUID apply only to objects of that type; files
//!   have none, so they are passed on (inherit-only) by directories and never effective.
//!
//! Owner and group: with no creator token, the new entry takes the parent's owner and group
//! (the parent's owner also replaces CREATOR OWNER). A parent without owner gives
//! BUILTIN\Administrators (S-1-5-32-544), without group SYSTEM (S-1-5-18): what an elevated
//! administrator's token would give.
//!
//! DACL: the inherited ACEs, with `SE_DACL_AUTO_INHERITED` set. When the parent passes on no
//! ACE (no inheritable ACE, or a NULL or absent DACL), Windows takes the token's default DACL;
//! without a token this is the default DACL of an elevated administrator's token, mapped:
//! `(A;;FA;;;BA)(A;;FA;;;SY)`, not auto-inherited. SACL: the inherited ACEs with
//! `SE_SACL_AUTO_INHERITED`, or none. The result is never protected.
//!
//! ```
//! use reseal_security::{inherit, SecurityDescriptor};
//!
//! let users = SecurityDescriptor::from_sddl("O:SYG:SYD:PAI(A;OICIIO;GA;;;CO)(A;;FA;;;SY)(A;OICI;0x1200a9;;;BU)")?;
//! let file = inherit::inherit(&users, false);
//! assert_eq!(file.to_sddl()?, "O:SYG:SYD:AI(A;ID;FA;;;SY)(A;ID;0x1200a9;;;BU)");
//! let dir = inherit::inherit(&users, true);
//! assert_eq!(
//!     dir.to_sddl()?,
//!     "O:SYG:SYD:AI(A;ID;FA;;;SY)(A;OICIIOID;GA;;;CO)(A;OICIID;0x1200a9;;;BU)"
//! );
//! # Ok::<(), reseal_security::Error>(())
//! ```

use crate::ace::{AccessMask, Ace, AceFlags, ShapeMut};
use crate::acl::Acl;
use crate::descriptor::{Control, SecurityDescriptor};
use crate::sid::Sid;

/// GENERIC_READ.
pub const GENERIC_READ: u32 = 0x8000_0000;
/// GENERIC_WRITE.
pub const GENERIC_WRITE: u32 = 0x4000_0000;
/// GENERIC_EXECUTE.
pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
/// GENERIC_ALL.
pub const GENERIC_ALL: u32 = 0x1000_0000;
/// FILE_GENERIC_READ: READ_CONTROL, SYNCHRONIZE, FILE_READ_DATA, FILE_READ_EA,
/// FILE_READ_ATTRIBUTES.
pub const FILE_GENERIC_READ: u32 = 0x0012_0089;
/// FILE_GENERIC_WRITE: READ_CONTROL, SYNCHRONIZE, FILE_WRITE_DATA, FILE_APPEND_DATA,
/// FILE_WRITE_EA, FILE_WRITE_ATTRIBUTES.
pub const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
/// FILE_GENERIC_EXECUTE: READ_CONTROL, SYNCHRONIZE, FILE_EXECUTE, FILE_READ_ATTRIBUTES.
pub const FILE_GENERIC_EXECUTE: u32 = 0x0012_00A0;
/// FILE_ALL_ACCESS: STANDARD_RIGHTS_REQUIRED, SYNCHRONIZE and every file-specific right.
pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;

const GENERIC_BITS: u32 = GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL;

/// Map the generic bits of `mask` to file rights (the NTFS `GENERIC_MAPPING`); other bits are
/// kept.
pub fn map_generic(mask: u32) -> u32 {
    let mut out = mask & !GENERIC_BITS;
    for (g, f) in [
        (GENERIC_READ, FILE_GENERIC_READ),
        (GENERIC_WRITE, FILE_GENERIC_WRITE),
        (GENERIC_EXECUTE, FILE_GENERIC_EXECUTE),
        (GENERIC_ALL, FILE_ALL_ACCESS),
    ] {
        if mask & g != 0 {
            out |= f;
        }
    }
    out
}

fn creator_owner() -> Sid {
    Sid::new(3, &[0]).expect("well-known SID")
}
fn creator_group() -> Sid {
    Sid::new(3, &[1]).expect("well-known SID")
}
/// BUILTIN\Administrators (S-1-5-32-544).
fn administrators() -> Sid {
    Sid::new(5, &[32, 544]).expect("well-known SID")
}
/// NT AUTHORITY\SYSTEM (S-1-5-18).
fn system() -> Sid {
    Sid::new(5, &[18]).expect("well-known SID")
}

/// The descriptor Windows gives a new file (`is_directory == false`) or directory created in a
/// directory whose descriptor is `parent`, with no creator descriptor; owner and group are the
/// parent's (see the [module documentation](self)).
pub fn inherit(parent: &SecurityDescriptor, is_directory: bool) -> SecurityDescriptor {
    let owner = parent.owner.clone().unwrap_or_else(administrators);
    let group = parent.group.clone().unwrap_or_else(system);
    inherit_as(parent, is_directory, owner, group)
}

/// [`inherit`] for a creator whose token names `owner` and `group`: they become the new
/// entry's owner and group and replace CREATOR OWNER / CREATOR GROUP.
pub fn inherit_as(
    parent: &SecurityDescriptor,
    is_directory: bool,
    owner: Sid,
    group: Sid,
) -> SecurityDescriptor {
    let inherited = |acl: &Option<Acl>| -> Vec<Ace> {
        acl.as_ref()
            .map(|a| inherit_aces(&a.aces, is_directory, &owner, &group))
            .unwrap_or_default()
    };
    let dacl_aces = inherited(&parent.dacl);
    let sacl_aces = inherited(&parent.sacl);
    let mut control = Control::SELF_RELATIVE | Control::DACL_PRESENT;
    let dacl = if dacl_aces.is_empty() {
        let full = |sid: Sid| {
            Ace::AccessAllowed(crate::ace::BasicAce {
                flags: AceFlags(0),
                mask: AccessMask(FILE_ALL_ACCESS),
                sid,
                extra: Vec::new(),
            })
        };
        Acl::new(vec![full(administrators()), full(system())])
    } else {
        control |= Control::DACL_AUTO_INHERITED;
        Acl::new(dacl_aces)
    };
    let sacl = if sacl_aces.is_empty() {
        None
    } else {
        control |= Control::SACL_PRESENT | Control::SACL_AUTO_INHERITED;
        Some(Acl::new(sacl_aces))
    };
    let mut sd = SecurityDescriptor::default();
    sd.control = Control(control);
    sd.owner = Some(owner);
    sd.group = Some(group);
    sd.sacl = sacl;
    sd.dacl = Some(dacl);
    sd
}

/// Whether `ace`'s mask holds access rights (and so generic rights to map).
fn has_access_rights(ace: &Ace) -> bool {
    matches!(ace.ace_type(), 0x00..=0x10)
}

/// `true` for an object ACE that names an inherited object type (files have none).
fn for_object_type(ace: &Ace) -> bool {
    match ace {
        Ace::AccessAllowedObject(a)
        | Ace::AccessDeniedObject(a)
        | Ace::SystemAuditObject(a)
        | Ace::SystemAlarmObject(a)
        | Ace::AccessAllowedCallbackObject(a)
        | Ace::AccessDeniedCallbackObject(a)
        | Ace::SystemAuditCallbackObject(a)
        | Ace::SystemAlarmCallbackObject(a) => a.inherited_object_type.is_some(),
        _ => false,
    }
}

/// Whether making `ace` effective would change it (generic rights or a creator SID).
fn needs_mapping(ace: &Ace) -> bool {
    let generic = has_access_rights(ace) && ace.mask().is_some_and(|m| m.0 & GENERIC_BITS != 0);
    let creator = ace
        .sid()
        .is_some_and(|s| *s == creator_owner() || *s == creator_group());
    generic || creator
}

fn with_flags(ace: &Ace, flags: u8) -> Ace {
    let mut a = ace.clone();
    a.set_flags(AceFlags(flags));
    a
}

/// The ACE as it applies to the new object: flags `ID` plus the audit flags, generic rights
/// mapped, creator SIDs replaced.
fn effective(ace: &Ace, owner: &Sid, group: &Sid) -> Ace {
    let keep = ace.flags().0 & (AceFlags::SUCCESSFUL_ACCESS | AceFlags::FAILED_ACCESS);
    let mut a = with_flags(ace, keep | AceFlags::INHERITED);
    if has_access_rights(&a) {
        if let Some(m) = a.mask() {
            a.set_mask(AccessMask(map_generic(m.0)));
        }
    }
    let co = creator_owner();
    let cg = creator_group();
    let swap = |s: &mut Sid| {
        if *s == co {
            *s = owner.clone();
        } else if *s == cg {
            *s = group.clone();
        }
    };
    match a.shape_mut() {
        ShapeMut::Basic(b) => swap(&mut b.sid),
        ShapeMut::Object(b) => swap(&mut b.sid),
        ShapeMut::Resource(b) => swap(&mut b.sid),
        ShapeMut::Compound(b) => swap(&mut b.server),
        ShapeMut::Unknown => {}
    }
    a
}

/// The ACEs a child inherits from the parent ACL entries `aces`.
fn inherit_aces(aces: &[Ace], is_directory: bool, owner: &Sid, group: &Sid) -> Vec<Ace> {
    const OI: u8 = AceFlags::OBJECT_INHERIT;
    const CI: u8 = AceFlags::CONTAINER_INHERIT;
    const NP: u8 = AceFlags::NO_PROPAGATE_INHERIT;
    const IO: u8 = AceFlags::INHERIT_ONLY;
    const ID: u8 = AceFlags::INHERITED;
    let mut out = Vec::new();
    for ace in aces {
        let f = ace.flags().0;
        let (oi, ci, np) = (f & OI != 0, f & CI != 0, f & NP != 0);
        // Passed on unmapped, to be mapped by the next generation.
        let inherit_only = || with_flags(ace, f | IO | ID);
        if for_object_type(ace) {
            if is_directory && (oi || ci) && !np {
                out.push(inherit_only());
            }
            continue;
        }
        if !is_directory {
            if oi {
                out.push(effective(ace, owner, group));
            }
        } else if ci {
            if np {
                out.push(effective(ace, owner, group));
            } else if needs_mapping(ace) {
                out.push(effective(ace, owner, group));
                out.push(inherit_only());
            } else {
                out.push(with_flags(ace, (f & !IO) | ID));
            }
        } else if oi && !np {
            out.push(inherit_only());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd(s: &str) -> SecurityDescriptor {
        SecurityDescriptor::from_sddl(s).unwrap()
    }
    fn file(s: &str) -> String {
        inherit(&sd(s), false).to_sddl().unwrap()
    }
    fn dir(s: &str) -> String {
        inherit(&sd(s), true).to_sddl().unwrap()
    }

    /// C:\Users of Windows 10/11 (explicit, protected ACL).
    const USERS: &str = "O:SYG:SYD:PAI(D;;CC;;;WD)(A;OICIIO;GA;;;CO)(A;OICIIO;GA;;;SY)(A;;FA;;;SY)\
        (A;OICIIO;GA;;;BA)(A;;FA;;;BA)(A;OICIIO;GXGR;;;BU)(A;;0x1200a9;;;BU)\
        (A;OICIIO;GXGR;;;WD)(A;;0x1200a9;;;WD)";

    #[test]
    fn windows_users_directory() {
        // A file: each OI ACE once, effective; the explicit (non-inheritable) ones are dropped.
        assert_eq!(
            file(USERS),
            "O:SYG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1200a9;;;BU)\
             (A;ID;0x1200a9;;;WD)"
        );
        // A directory: generic / CREATOR OWNER ACEs split into effective + inherit-only.
        assert_eq!(
            dir(USERS),
            "O:SYG:SYD:AI(A;ID;FA;;;SY)(A;OICIIOID;GA;;;CO)(A;ID;FA;;;SY)(A;OICIIOID;GA;;;SY)\
             (A;ID;FA;;;BA)(A;OICIIOID;GA;;;BA)(A;ID;0x1200a9;;;BU)(A;OICIIOID;GXGR;;;BU)\
             (A;ID;0x1200a9;;;WD)(A;OICIIOID;GXGR;;;WD)"
        );
        // Second generation: a file in that directory sees the same effective ACEs.
        let d = inherit(&sd(USERS), true);
        assert_eq!(inherit(&d, false).to_sddl().unwrap(), file(USERS));
        assert_eq!(inherit(&d, true), d);
    }

    /// C:\ of Windows 10: CI-only and OI-only ACEs.
    #[test]
    fn windows_system_drive_root() {
        let root = "O:SYG:SYD:PAI(A;OICI;FA;;;BA)(A;OICIIO;GA;;;CO)(A;OICI;FA;;;SY)\
                    (A;OICI;0x1200a9;;;BU)(A;CI;LC;;;AU)(A;CIIO;DC;;;AU)(A;OIIO;FW;;;AU)";
        assert_eq!(
            file(root),
            "O:SYG:SYD:AI(A;ID;FA;;;BA)(A;ID;FA;;;SY)(A;ID;FA;;;SY)(A;ID;0x1200a9;;;BU)\
             (A;ID;FW;;;AU)"
        );
        assert_eq!(
            dir(root),
            "O:SYG:SYD:AI(A;OICIID;FA;;;BA)(A;ID;FA;;;SY)(A;OICIIOID;GA;;;CO)(A;OICIID;FA;;;SY)\
             (A;OICIID;0x1200a9;;;BU)(A;CIID;LC;;;AU)(A;CIID;DC;;;AU)(A;OIIOID;FW;;;AU)"
        );
    }

    #[test]
    fn no_propagate() {
        // CI NP: effective on a directory, not passed further; OI NP: a directory gets nothing.
        let p = "O:BAG:SYD:(A;CINP;GA;;;BU)(A;OINP;GR;;;WD)(A;OICINP;FA;;;SY)";
        assert_eq!(dir(p), "O:BAG:SYD:AI(A;ID;FA;;;BU)(A;ID;FA;;;SY)");
        assert_eq!(file(p), "O:BAG:SYD:AI(A;ID;FR;;;WD)(A;ID;FA;;;SY)");
    }

    #[test]
    fn creator_group_and_generic_mapping() {
        let p = "O:S-1-5-21-1-2-3-1001G:S-1-5-21-1-2-3-513D:(A;OI;GRGW;;;CG)(A;OI;GX;;;CO)";
        assert_eq!(
            file(p),
            "O:S-1-5-21-1-2-3-1001G:S-1-5-21-1-2-3-513D:AI(A;ID;0x12019f;;;S-1-5-21-1-2-3-513)\
             (A;ID;FX;;;S-1-5-21-1-2-3-1001)"
        );
        assert_eq!(map_generic(GENERIC_ALL | 0x100), FILE_ALL_ACCESS);
        assert_eq!(map_generic(GENERIC_READ | GENERIC_EXECUTE), 0x1200a9);
        assert_eq!(map_generic(0x1234), 0x1234);
    }

    #[test]
    fn explicit_token_owner() {
        let me: Sid = "S-1-5-21-9-9-9-1000".parse().unwrap();
        let d = inherit_as(&sd(USERS), false, me.clone(), system());
        assert_eq!(d.owner, Some(me.clone()));
        // CREATOR OWNER became the token's owner.
        let users = inherit_as(&sd("O:SYG:SYD:(A;OICIIO;GA;;;CO)"), false, me, system());
        assert_eq!(
            users.to_sddl().unwrap(),
            "O:S-1-5-21-9-9-9-1000G:SYD:AI(A;ID;FA;;;S-1-5-21-9-9-9-1000)"
        );
    }

    #[test]
    fn nothing_inheritable_gives_the_default_dacl() {
        for p in [
            "O:BAG:SYD:P(A;;FA;;;SY)",
            "O:BAG:SYD:NO_ACCESS_CONTROL",
            "O:BAG:SY",
        ] {
            assert_eq!(file(p), "O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)", "{p}");
        }
        // No owner or group either.
        assert_eq!(
            inherit(&SecurityDescriptor::default(), true)
                .to_sddl()
                .unwrap(),
            "O:BAG:SYD:(A;;FA;;;BA)(A;;FA;;;SY)"
        );
    }

    #[test]
    fn sacl_is_inherited_with_audit_flags() {
        let p = "O:BAG:SYD:(A;OICI;FA;;;SY)S:(AU;OICISA;GW;;;WD)(AU;FA;FA;;;WD)";
        assert_eq!(file(p), "O:BAG:SYD:AI(A;ID;FA;;;SY)S:AI(AU;IDSA;FW;;;WD)");
        assert_eq!(
            dir(p),
            "O:BAG:SYD:AI(A;OICIID;FA;;;SY)S:AI(AU;IDSA;FW;;;WD)(AU;OICIIOIDSA;GW;;;WD)"
        );
    }

    #[test]
    fn inherited_parent_aces_stay_inherited() {
        // A parent whose ACEs were themselves inherited: ID is kept, never doubled.
        let p = "O:BAG:SYD:AI(A;OICIID;FA;;;SY)(A;OICIIOID;GA;;;CO)";
        assert_eq!(
            dir(p),
            "O:BAG:SYD:AI(A;OICIID;FA;;;SY)(A;ID;FA;;;BA)(A;OICIIOID;GA;;;CO)"
        );
    }

    #[test]
    fn object_type_aces_are_only_passed_on() {
        let p = "O:BAG:SYD:(OA;CI;CC;;bf967aba-0de6-11d0-a285-00aa003049e2;WD)(A;OI;FR;;;WD)";
        assert_eq!(file(p), "O:BAG:SYD:AI(A;ID;FR;;;WD)");
        assert_eq!(
            dir(p),
            "O:BAG:SYD:AI(OA;CIIOID;CC;;bf967aba-0de6-11d0-a285-00aa003049e2;WD)(A;OIIOID;FR;;;WD)"
        );
    }

    #[test]
    fn result_serializes_and_reparses() {
        let d = inherit(&sd(USERS), true);
        let bytes = d.to_canonical_bytes().unwrap();
        assert_eq!(SecurityDescriptor::parse(&bytes).unwrap(), d);
    }
}
