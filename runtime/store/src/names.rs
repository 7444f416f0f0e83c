//! Resident names: short, lower-case, safe inside tree names and paths.

use crate::StoreError;

domicile_manifest::checked_string!(
    /// A resident's name: 1 to 32 characters of `a-z`, `0-9` and `-`,
    /// starting with a letter.
    ResidentName, StoreError, |s| {
        if is_short_name(s) {
            return Ok(());
        }
        Err(StoreError::Invalid(format!(
            "invalid resident name `{}`: use 1 to 32 lower-case letters, digits or `-`, starting with a letter",
            s.chars().take(40).collect::<String>()
        )))
    }
);

/// Whether `s` is 1 to 32 characters of `a-z`, `0-9` and `-`, starting
/// with a letter: the names of residents and of cluster nodes, safe in
/// paths, sled tree names and NATS keys.
pub fn is_short_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
