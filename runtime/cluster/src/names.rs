//! Node names: short and lower-case like residents' names, so that they
//! are valid NATS keys.

#[derive(Debug, thiserror::Error)]
#[error("invalid node name `{0}`: use 1 to 32 lower-case letters, digits or `-`, starting with a letter")]
pub struct InvalidNodeName(String);

domicile_manifest::checked_string!(
    /// A node's name in the cluster (`n1`, `paris-3`): 1 to 32 characters
    /// of `a-z`, `0-9` and `-`, starting with a letter.
    NodeName, InvalidNodeName, |s| {
        if domicile_store::is_short_name(s) {
            return Ok(());
        }
        Err(InvalidNodeName(s.chars().take(40).collect()))
    }
);
