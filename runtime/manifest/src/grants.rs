//! What a resident allowed an app: per doctype, a subset of the access verbs
//! its manifest declared and, for reads, possibly a subset of the fields.
//! Anything not in here is denied.
//!
//! Grants are written `DOCTYPE:ACCESS[,ACCESS][:FIELD[,FIELD]]`, for example
//! `io.domicile.mobility.trip:read:start,mode` (read only those two fields),
//! or `all` for everything the manifest asks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Access, Doctype, FieldName, Manifest};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("grant `{0}` is not of the form <doctype>:<access>[,<access>][:<field>[,<field>]] (for example `io.domicile.mobility.trip:read` or `io.domicile.mobility.trip:read:start,mode`), `all` or `none`")]
    Syntax(String),
    #[error("{0}")]
    Name(#[from] crate::NameError),
    #[error("the app does not ask for `{doctype}`; it asks for: {declared}")]
    NotDeclared { doctype: Doctype, declared: String },
    #[error("the app asks for {declared} on `{doctype}`, not `{access}`")]
    AccessNotDeclared { doctype: Doctype, access: Access, declared: String },
    #[error("fields can only be chosen for `read`, as in `{doctype}:read:{fields}`")]
    FieldsWithoutRead { doctype: Doctype, fields: String },
    #[error("the app may only read these fields of `{doctype}`: {declared}; `{field}` is not one of them")]
    FieldNotDeclared { doctype: Doctype, field: FieldName, declared: String },
    #[error("the app reads every field of `{doctype}`, so single fields cannot be taken back; revoke `{doctype}:read` and grant `{doctype}:read:<the fields to keep>` instead")]
    FieldsUnknown { doctype: Doctype },
}

/// What is granted on one doctype.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub access: BTreeSet<Access>,
    /// For reads: only these top-level fields. `None`: every field the
    /// manifest lets the app read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeSet<FieldName>>,
}

/// Granted access, per doctype. Always within the app's manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants(BTreeMap<Doctype, Grant>);

impl Grants {
    /// Everything the manifest asks for.
    pub fn all(manifest: &Manifest) -> Grants {
        Grants(
            manifest
                .permissions
                .iter()
                .map(|p| (p.doctype.clone(), Grant { access: p.access.iter().collect(), fields: None }))
                .collect(),
        )
    }

    /// Parses grant specs (or `all`, or `none`), checking each against what
    /// the manifest declared.
    pub fn from_specs<S: AsRef<str>>(manifest: &Manifest, specs: &[S]) -> Result<Grants, GrantError> {
        let mut grants = Grants::default();
        for spec in specs {
            let spec = spec.as_ref().trim();
            match spec {
                "all" => grants.extend(&Grants::all(manifest)),
                "none" => {}
                _ => {
                    let (doctype, grant) = parse_spec(manifest, spec)?;
                    grants.extend(&Grants([(doctype, grant)].into()));
                }
            }
        }
        Ok(grants)
    }

    pub fn allows(&self, doctype: &Doctype, access: Access) -> bool {
        self.0.get(doctype).is_some_and(|g| g.access.contains(&access))
    }

    /// The fields of `doctype` the app may read: the manifest's declared
    /// fields narrowed by the resident's choice. `None` means every field.
    pub fn readable_fields(&self, manifest: &Manifest, doctype: &Doctype) -> Option<BTreeSet<FieldName>> {
        let declared: Option<BTreeSet<FieldName>> =
            manifest.permission(doctype).and_then(|p| p.fields.as_ref()).map(|f| f.iter().cloned().collect());
        let granted = self.0.get(doctype).and_then(|g| g.fields.clone());
        match (declared, granted) {
            (Some(d), Some(g)) => Some(d.intersection(&g).cloned().collect()),
            (d, g) => d.or(g),
        }
    }

    /// Adds every grant of `other`.
    pub fn extend(&mut self, other: &Grants) {
        for (doctype, theirs) in &other.0 {
            match self.0.get_mut(doctype) {
                None => {
                    self.0.insert(doctype.clone(), theirs.clone());
                }
                Some(mine) => {
                    let i_read = mine.access.contains(&Access::Read);
                    let they_read = theirs.access.contains(&Access::Read);
                    mine.fields = match (i_read, they_read) {
                        (true, true) => match (&mine.fields, &theirs.fields) {
                            (Some(a), Some(b)) => Some(a.union(b).cloned().collect()),
                            _ => None,
                        },
                        (false, true) => theirs.fields.clone(),
                        (_, false) => mine.fields.clone(),
                    };
                    mine.access.extend(theirs.access.iter().copied());
                }
            }
        }
    }

    /// Takes back what `specs` name: verbs (`doctype:read`), or single read
    /// fields (`doctype:read:field`); `all`, or no spec at all, takes back
    /// everything. Doctypes left with nothing disappear.
    pub fn revoke<S: AsRef<str>>(&mut self, manifest: &Manifest, specs: &[S]) -> Result<(), GrantError> {
        if specs.is_empty() {
            self.0.clear();
            return Ok(());
        }
        for spec in specs {
            let spec = spec.as_ref().trim();
            if spec == "all" {
                self.0.clear();
                continue;
            }
            let (doctype, taken) = parse_spec(manifest, spec)?;
            let Some(mine) = self.0.get_mut(&doctype) else { continue };
            match &taken.fields {
                Some(fields) => {
                    if !mine.access.contains(&Access::Read) {
                        continue;
                    }
                    let readable = match &mine.fields {
                        Some(f) => f.clone(),
                        None => match manifest.permission(&doctype).and_then(|p| p.fields.as_ref()) {
                            Some(declared) => declared.iter().cloned().collect(),
                            None => return Err(GrantError::FieldsUnknown { doctype }),
                        },
                    };
                    let left: BTreeSet<FieldName> = readable.difference(fields).cloned().collect();
                    if left.is_empty() {
                        mine.access.remove(&Access::Read);
                        mine.fields = None;
                    } else {
                        mine.fields = Some(left);
                    }
                }
                None => {
                    mine.access.retain(|a| !taken.access.contains(a));
                    if !mine.access.contains(&Access::Read) {
                        mine.fields = None;
                    }
                }
            }
            if mine.access.is_empty() {
                self.0.remove(&doctype);
            }
        }
        Ok(())
    }

    /// These grants (given for `old`), carried over to `new`, a new version
    /// of the app: cut down to what `new` still asks, and never wider than
    /// what was readable under `old`. An update never widens a grant.
    pub fn within(&self, old: &Manifest, new: &Manifest) -> Grants {
        let mut kept = Grants::default();
        for (doctype, grant) in &self.0 {
            let Some(permission) = new.permission(doctype) else { continue };
            let access: BTreeSet<Access> =
                grant.access.iter().copied().filter(|a| permission.access.contains(*a)).collect();
            if access.is_empty() {
                continue;
            }
            // What the resident could read before, narrowed to what the new version declares.
            let readable_before = self.readable_fields(old, doctype);
            let fields = match (readable_before, &permission.fields) {
                (Some(before), Some(declared)) => {
                    Some(before.into_iter().filter(|f| declared.contains(f)).collect::<BTreeSet<_>>())
                }
                (before, _) => before,
            };
            kept.keep(doctype, Grant { access, fields });
        }
        kept
    }

    /// These grants cut down to what `manifest` asks: verbs it declares,
    /// fields among those it declares. Grants read from outside (an export
    /// archive's app record) go through this before they are trusted.
    pub fn restricted_to(&self, manifest: &Manifest) -> Grants {
        let mut kept = Grants::default();
        for (doctype, grant) in &self.0 {
            let Some(permission) = manifest.permission(doctype) else { continue };
            let access = grant.access.iter().copied().filter(|a| permission.access.contains(*a)).collect();
            let fields = match (&grant.fields, &permission.fields) {
                (Some(granted), Some(declared)) => {
                    Some(granted.iter().filter(|f| declared.contains(f)).cloned().collect())
                }
                (granted, _) => granted.clone(),
            };
            kept.keep(doctype, Grant { access, fields });
        }
        kept
    }

    /// Adds a grant narrowed by [`within`](Self::within) or
    /// [`restricted_to`](Self::restricted_to): no read left without a field
    /// to read, no fields without a read, nothing for an empty grant.
    fn keep(&mut self, doctype: &Doctype, mut grant: Grant) {
        if grant.fields.as_ref().is_some_and(BTreeSet::is_empty) {
            grant.access.remove(&Access::Read);
            grant.fields = None;
        }
        if !grant.access.contains(&Access::Read) {
            grant.fields = None;
        }
        if !grant.access.is_empty() {
            self.0.insert(doctype.clone(), grant);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Doctype, &Grant)> {
        self.0.iter()
    }
}

/// One `doctype:access[,access][:field[,field]]` spec, checked against the manifest.
fn parse_spec(manifest: &Manifest, spec: &str) -> Result<(Doctype, Grant), GrantError> {
    let mut parts = spec.splitn(3, ':');
    let (Some(doctype), Some(verbs)) = (parts.next(), parts.next()) else {
        return Err(GrantError::Syntax(spec.chars().take(200).collect()));
    };
    let doctype: Doctype = doctype.parse()?;
    let permission = manifest
        .permission(&doctype)
        .ok_or_else(|| GrantError::NotDeclared { doctype: doctype.clone(), declared: declared_doctypes(manifest) })?;
    let mut access = BTreeSet::new();
    for verb in verbs.split(',') {
        let verb: Access = verb.trim().parse()?;
        if !permission.access.contains(verb) {
            return Err(GrantError::AccessNotDeclared {
                doctype,
                access: verb,
                declared: permission.access.iter().map(Access::as_str).collect::<Vec<_>>().join(", "),
            });
        }
        access.insert(verb);
    }
    let fields = match parts.next() {
        None => None,
        Some(list) => {
            if !access.contains(&Access::Read) {
                return Err(GrantError::FieldsWithoutRead { doctype, fields: list.to_owned() });
            }
            let mut fields = BTreeSet::new();
            for field in list.split(',') {
                let field: FieldName = field.trim().parse()?;
                if let Some(declared) = &permission.fields {
                    if !declared.contains(&field) {
                        return Err(GrantError::FieldNotDeclared {
                            doctype,
                            field,
                            declared: declared.iter().map(FieldName::as_str).collect::<Vec<_>>().join(", "),
                        });
                    }
                }
                fields.insert(field);
            }
            Some(fields)
        }
    };
    Ok((doctype, Grant { access, fields }))
}

impl fmt::Display for Grants {
    /// The spec syntax, space separated (`doctype:read:start,mode doctype2:write`), or `nothing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(d, g)| {
                let verbs = g.access.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",");
                match &g.fields {
                    Some(fields) => {
                        format!("{d}:{verbs}:{}", fields.iter().map(FieldName::as_str).collect::<Vec<_>>().join(","))
                    }
                    None => format!("{d}:{verbs}"),
                }
            })
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
