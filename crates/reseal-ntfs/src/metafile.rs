//! The NTFS metafiles of the root directory (MFT records 0 to 11, record 5 being the root
//! itself): the one list of their names for every crate that must leave them alone (renames,
//! name searches).

/// The root directory's metafiles, by MFT record number (`$MFT` is record 0, `$Extend` 11;
/// the root, record 5, is not one of them).
pub const NAMES: [&str; 11] = [
    "$MFT", "$MFTMirr", "$LogFile", "$Volume", "$AttrDef", "$Bitmap", "$Boot", "$BadClus",
    "$Secure", "$UpCase", "$Extend",
];

/// Whether `name` is one of [`NAMES`], compared as NTFS compares names (case-insensitively;
/// the names are ASCII).
pub fn is_metafile_name(name: &str) -> bool {
    NAMES.iter().any(|m| m.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_without_case() {
        assert!(is_metafile_name("$secure"));
        assert!(is_metafile_name("$MFTMirr"));
        assert!(!is_metafile_name("$Recycle.Bin"));
        assert!(!is_metafile_name("."));
    }
}
