//! Field paths: `mode`, or `start.date` for a nested field.

use std::fmt;

use serde_json::Value;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    pub fn parse(text: &str) -> Result<FieldPath, StoreError> {
        if text.is_empty() || text.len() > 200 || text.split('.').any(str::is_empty) || text.contains('\0') {
            return Err(StoreError::Invalid(format!(
                "invalid field path `{}`: use field names separated by dots, such as `start.date`",
                text.chars().take(60).collect::<String>()
            )));
        }
        Ok(FieldPath(text.split('.').map(str::to_owned).collect()))
    }

    /// The value at this path, if the document has one.
    pub fn lookup<'v>(&self, body: &'v Value) -> Option<&'v Value> {
        self.0.iter().try_fold(body, |v, part| v.get(part))
    }

    /// The top-level field the path starts in.
    pub fn top(&self) -> &str {
        &self.0[0]
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}
