//! Node names: short and lower-case like residents' names, so that they
//! are valid NATS keys.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A node's name in the cluster (`n1`, `paris-3`): 1 to 32 characters of
/// `a-z`, `0-9` and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeName(String);

impl NodeName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid node name `{0}`: use 1 to 32 lower-case letters, digits or `-`, starting with a letter")]
pub struct InvalidNodeName(String);

impl FromStr for NodeName {
    type Err = InvalidNodeName;
    fn from_str(s: &str) -> Result<Self, InvalidNodeName> {
        if domicile_store::is_short_name(s) {
            Ok(NodeName(s.to_owned()))
        } else {
            Err(InvalidNodeName(s.chars().take(40).collect()))
        }
    }
}

impl TryFrom<String> for NodeName {
    type Error = InvalidNodeName;
    fn try_from(s: String) -> Result<Self, InvalidNodeName> {
        s.parse()
    }
}

impl From<NodeName> for String {
    fn from(n: NodeName) -> String {
        n.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
