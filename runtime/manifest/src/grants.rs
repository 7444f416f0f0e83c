//! What a resident allowed an app: per doctype, a subset of the access verbs
//! its manifest declared. Anything not in here is denied.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Access, Doctype, Manifest};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("grant `{0}` is not of the form <doctype>:<access>[,<access>...] (for example `io.domicile.mobility.trip:read`) or `all`")]
    Syntax(String),
    #[error("{0}")]
    Name(#[from] crate::NameError),
    #[error("the app does not ask for `{doctype}`; it asks for: {declared}")]
    NotDeclared { doctype: Doctype, declared: String },
    #[error("the app asks for {declared} on `{doctype}`, not `{access}`")]
    AccessNotDeclared { doctype: Doctype, access: Access, declared: String },
}

/// Granted access, per doctype. Always within the app's manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants(BTreeMap<Doctype, BTreeSet<Access>>);

impl Grants {
    /// Everything the manifest asks for.
    pub fn all(manifest: &Manifest) -> Grants {
        Grants(manifest.permissions.iter().map(|p| (p.doctype.clone(), p.access.iter().collect())).collect())
    }

    /// Parses `doctype:access[,access]` specs (or `all`), checking each
    /// against what the manifest declared.
    pub fn from_specs<S: AsRef<str>>(manifest: &Manifest, specs: &[S]) -> Result<Grants, GrantError> {
        let mut grants = Grants::default();
        for spec in specs {
            let spec = spec.as_ref().trim();
            if spec == "all" {
                grants.extend(&Grants::all(manifest));
                continue;
            }
            let (doctype, verbs) = spec.split_once(':').ok_or_else(|| GrantError::Syntax(spec.to_owned()))?;
            let doctype: Doctype = doctype.parse()?;
            let permission = manifest.permission(&doctype).ok_or_else(|| GrantError::NotDeclared {
                doctype: doctype.clone(),
                declared: declared_doctypes(manifest),
            })?;
            for verb in verbs.split(',') {
                let access: Access = verb.trim().parse()?;
                if !permission.access.contains(access) {
                    return Err(GrantError::AccessNotDeclared {
                        doctype,
                        access,
                        declared: permission.access.iter().map(Access::as_str).collect::<Vec<_>>().join(", "),
                    });
                }
                grants.0.entry(doctype.clone()).or_default().insert(access);
            }
        }
        Ok(grants)
    }

    pub fn allows(&self, doctype: &Doctype, access: Access) -> bool {
        self.0.get(doctype).is_some_and(|set| set.contains(&access))
    }

    /// Adds every grant of `other`.
    pub fn extend(&mut self, other: &Grants) {
        for (doctype, set) in &other.0 {
            self.0.entry(doctype.clone()).or_default().extend(set.iter().copied());
        }
    }

    /// Removes every grant of `other`; doctypes left with nothing disappear.
    pub fn remove(&mut self, other: &Grants) {
        for (doctype, set) in &other.0 {
            if let Some(mine) = self.0.get_mut(doctype) {
                mine.retain(|a| !set.contains(a));
                if mine.is_empty() {
                    self.0.remove(doctype);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Doctype, &BTreeSet<Access>)> {
        self.0.iter()
    }
}

impl fmt::Display for Grants {
    /// `doctype:read,write doctype2:read`, or `nothing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(d, set)| format!("{d}:{}", set.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",")))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

fn declared_doctypes(manifest: &Manifest) -> String {
    if manifest.permissions.is_empty() {
        return "no doctype at all".into();
    }
    manifest.permissions.iter().map(|p| p.doctype.as_str()).collect::<Vec<_>>().join(", ")
}
