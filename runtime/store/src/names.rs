//! Resident names: short, lower-case, safe inside tree names and paths.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A resident's name: 1 to 32 characters of `a-z`, `0-9` and `-`,
/// starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentName(String);

impl ResidentName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `s` is 1 to 32 characters of `a-z`, `0-9` and `-`, starting
/// with a letter: the names of residents and of cluster nodes, safe in
/// paths, sled tree names and NATS keys.
pub fn is_short_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl FromStr for ResidentName {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        if is_short_name(s) {
            Ok(ResidentName(s.to_owned()))
        } else {
            Err(StoreError::Invalid(format!(
                "invalid resident name `{}`: use 1 to 32 lower-case letters, digits or `-`, starting with a letter",
                s.chars().take(40).collect::<String>()
            )))
        }
    }
}

impl TryFrom<String> for ResidentName {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, StoreError> {
        s.parse()
    }
}

impl From<ResidentName> for String {
    fn from(n: ResidentName) -> String {
        n.0
    }
}

impl fmt::Display for ResidentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
