//! The app manifest and the permission model of domicile.
//!
//! A manifest (`manifests/<app>.toml`) says who an app is, which world it
//! implements, and which doctypes it wants to read, write or delete, each
//! with a purpose the resident can judge. Parsing is strict: unknown fields,
//! a missing purpose, a malformed id or version are errors that name the line.
//! Every value is validated while it is deserialised (self-validating
//! newtypes), so a `Manifest` value is always a valid manifest.
//!
//! [`Grants`] is what the resident actually allowed: always a subset of what
//! the manifest declared. This crate knows nothing of storage or execution.

mod egress;
mod grants;
mod names;
mod triggers;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use egress::{Destination, Egress};
pub use grants::{Grant, GrantError, Grants};
pub use names::{is_hazard, AppId, Doctype, FieldName, NameError, Purpose};
pub use triggers::{Schedule, Trigger, MAX_TRIGGERS, MIN_EVERY_MINUTES};

/// The manifest format this runtime reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Which WIT world an app implements (see `wit/domicile.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Exports `run(input) -> result<output>`.
    Service,
    /// Exports `import(file-name, bytes) -> result<summary>`.
    Importer,
}

impl World {
    /// The world's name in `wit/domicile.wit`.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Service => "service",
            World::Importer => "importer",
        }
    }

    /// The function a component of this world exports.
    pub fn export(self) -> &'static str {
        match self {
            World::Service => "run",
            World::Importer => "import",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind of access to a doctype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Read,
    Write,
    Delete,
}

impl Access {
    pub const ALL: [Access; 3] = [Access::Read, Access::Write, Access::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Delete => "delete",
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Access {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Access::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| NameError::new("access", s, "expected read, write or delete"))
    }
}

/// A non-empty set of access verbs, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Access>", into = "Vec<Access>")]
pub struct AccessSet(BTreeSet<Access>);

impl AccessSet {
    pub fn contains(&self, access: Access) -> bool {
        self.0.contains(&access)
    }
    pub fn iter(&self) -> impl Iterator<Item = Access> + '_ {
        self.0.iter().copied()
    }
}

impl TryFrom<Vec<Access>> for AccessSet {
    type Error = String;
    fn try_from(list: Vec<Access>) -> Result<Self, Self::Error> {
        if list.is_empty() {
            return Err("`access` must list at least one of read, write, delete".into());
        }
        let set: BTreeSet<Access> = list.iter().copied().collect();
        if set.len() != list.len() {
            return Err("`access` lists the same verb twice".into());
        }
        Ok(AccessSet(set))
    }
}

impl From<AccessSet> for Vec<Access> {
    fn from(set: AccessSet) -> Self {
        set.0.into_iter().collect()
    }
}

/// What an app asks for one doctype, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub doctype: Doctype,
    pub access: AccessSet,
    /// When present, reads return only these top-level fields of each
    /// document (enforced by the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldName>>,
    pub purpose: Purpose,
}

/// A private scratch directory for the app (WASI filesystem), per resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scratch {
    pub purpose: Purpose,
}

/// Resources the app asks for one invocation; the operator's caps win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<MemoryMib>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<CpuMs>,
    /// Elapsed time, waits included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<WallMs>,
    /// Calls to domicile's interfaces (data, log, clock, egress, notify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_calls: Option<HostCalls>,
    /// Documents returned by `get` and query cursors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents: Option<Documents>,
    /// Size of the result (`run`'s output, `import`'s summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_kib: Option<OutputKib>,
}

/// Elapsed time of one invocation, in milliseconds (1 to 600000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct WallMs(u64);

/// Host calls of one invocation (1 to 100000000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct HostCalls(u64);

/// Documents read by one invocation (1 to 100000000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Documents(u64);

/// Result size of one invocation, in KiB (1 to 65536).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct OutputKib(u64);

/// Linear memory, in MiB (1 to 4096).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct MemoryMib(u64);

/// CPU time of one invocation, in milliseconds (1 to 600000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct CpuMs(u64);

macro_rules! bounded_u64 {
    ($ty:ident, $what:literal, $max:literal) => {
        impl $ty {
            pub const MAX: u64 = $max;
            pub fn get(self) -> u64 {
                self.0
            }
        }
        impl TryFrom<u64> for $ty {
            type Error = String;
            fn try_from(v: u64) -> Result<Self, String> {
                if (1..=$max).contains(&v) {
                    Ok($ty(v))
                } else {
                    Err(format!("`{}` must be between 1 and {}, not {v}", $what, $max))
                }
            }
        }
        impl From<$ty> for u64 {
            fn from(v: $ty) -> u64 {
                v.0
            }
        }
    };
}
bounded_u64!(MemoryMib, "memory-mib", 4096);
bounded_u64!(CpuMs, "cpu-ms", 600000);
bounded_u64!(WallMs, "wall-ms", 600000);
bounded_u64!(HostCalls, "host-calls", 100000000);
bounded_u64!(Documents, "documents", 100000000);
bounded_u64!(OutputKib, "output-kib", 65536);

/// A parsed, validated app manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    pub manifest_version: ManifestVersion,
    pub id: AppId,
    pub name: String,
    pub version: semver::Version,
    pub world: World,
    pub description: String,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch: Option<Scratch>,
    /// Where the app may ask to send data, each time with the resident's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Egress>,
    #[serde(default)]
    pub limits: Limits,
    /// When the app runs on its own (schedules, new data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
}

/// The `manifest-version` field; only [`MANIFEST_VERSION`] is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct ManifestVersion(u32);

impl TryFrom<u32> for ManifestVersion {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        if v == MANIFEST_VERSION {
            Ok(ManifestVersion(v))
        } else {
            Err(format!("`manifest-version` {v} is not supported: this runtime reads version {MANIFEST_VERSION}"))
        }
    }
}

impl From<ManifestVersion> for u32 {
    fn from(v: ManifestVersion) -> u32 {
        v.0
    }
}

/// Why a manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not UTF-8 text: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    /// Carries the TOML parser's message, which names the line and column.
    #[error("invalid manifest: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Parses and validates manifest bytes (as signed in a package).
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        Manifest::parse(std::str::from_utf8(bytes)?)
    }

    /// Parses and validates a manifest text.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Invalid(e.to_string().trim_end().to_owned()))?;
        manifest.check_whole()?;
        Ok(manifest)
    }

    /// Rules that span several fields (the field-level ones ran while parsing).
    fn check_whole(&self) -> Result<(), ManifestError> {
        let invalid = |msg: String| Err(ManifestError::Invalid(msg));
        if self.name.trim().is_empty() {
            return invalid("`name` must not be empty".into());
        }
        if self.description.trim().is_empty() {
            return invalid("`description` must say what the app does".into());
        }
        // Shown to the resident at consent: plain text only (a description may have line breaks).
        if self.name.chars().any(names::is_hazard) {
            return invalid("`name` must be plain text, without control or text-direction characters".into());
        }
        if self.description.chars().any(|c| c != '\n' && names::is_hazard(c)) {
            return invalid("`description` must be plain text, without control or text-direction characters".into());
        }
        let mut seen = BTreeSet::new();
        for p in &self.permissions {
            if !seen.insert(&p.doctype) {
                return invalid(format!(
                    "doctype `{}` appears in two [[permissions]] entries: merge them into one",
                    p.doctype
                ));
            }
            if p.fields.is_some() && !p.access.contains(Access::Read) {
                return invalid(format!("permission on `{}` lists `fields` but does not ask to read", p.doctype));
            }
        }
        if self.triggers.len() > MAX_TRIGGERS {
            return invalid(format!("{} [[triggers]]; an app has at most {MAX_TRIGGERS}", self.triggers.len()));
        }
        let mut keys = BTreeSet::new();
        for t in &self.triggers {
            match (&t.schedule, &t.on_change) {
                (Some(_), Some(_)) | (None, None) => {
                    return invalid("each [[triggers]] entry has either `schedule` or `on-change`".into())
                }
                (None, Some(doctype)) if !self.permission(doctype).is_some_and(|p| p.access.contains(Access::Read)) => {
                    return invalid(format!(
                        "a trigger runs the app on changes of `{doctype}`, which it does not ask to read: \
                         add a [[permissions]] entry reading it"
                    ))
                }
                _ => {}
            }
            if self.world != World::Service {
                return invalid(
                    "only a service has [[triggers]]: an importer runs on a file the resident gives".into(),
                );
            }
            if !keys.insert(t.key()) {
                return invalid(format!("two [[triggers]] entries are the same: `{}`", t.key()));
            }
        }
        if let Some(egress) = &self.egress {
            if egress.destinations.is_empty() {
                return invalid("[egress] must list at least one destination, or be left out".into());
            }
            let unique: BTreeSet<_> = egress.destinations.iter().collect();
            if unique.len() != egress.destinations.len() {
                return invalid("[egress] lists the same destination twice".into());
            }
        }
        Ok(())
    }

    /// The permission this manifest declares for a doctype, if any.
    pub fn permission(&self, doctype: &Doctype) -> Option<&Permission> {
        self.permissions.iter().find(|p| &p.doctype == doctype)
    }

    /// Whether the app may ask to send data to `destination`.
    pub fn declares_destination(&self, destination: &str) -> bool {
        self.egress.as_ref().is_some_and(|e| e.destinations.iter().any(|d| d.as_str() == destination))
    }

    /// What this manifest asks for that `old` (an earlier version of the
    /// same app) did not, in words: an update asking for any of it waits for
    /// the resident's new grant.
    pub fn new_asks_over(&self, old: &Manifest) -> Vec<String> {
        let mut asks = Vec::new();
        for p in &self.permissions {
            let before = old.permission(&p.doctype);
            let verbs: Vec<&str> =
                p.access.iter().filter(|a| before.is_none_or(|b| !b.access.contains(*a))).map(Access::as_str).collect();
            if !verbs.is_empty() {
                asks.push(format!("{} {} ({})", verbs.join(", "), p.doctype, p.purpose));
            }
            let read_before = before.filter(|b| b.access.contains(Access::Read));
            if let (Some(b), true) = (read_before, p.access.contains(Access::Read)) {
                if let Some(old_fields) = &b.fields {
                    match &p.fields {
                        None => {
                            asks.push(format!("read every field of {} (before: only {})", p.doctype, join(old_fields)))
                        }
                        Some(new_fields) => {
                            let extra: Vec<FieldName> =
                                new_fields.iter().filter(|f| !old_fields.contains(f)).cloned().collect();
                            if !extra.is_empty() {
                                asks.push(format!("read more fields of {}: {}", p.doctype, join(&extra)));
                            }
                        }
                    }
                }
            }
        }
        if self.scratch.is_some() && old.scratch.is_none() {
            asks.push("a private scratch directory".into());
        }
        if let Some(egress) = &self.egress {
            for d in &egress.destinations {
                if !old.declares_destination(d.as_str()) {
                    asks.push(format!("ask to send data to {d} ({})", egress.purpose));
                }
            }
        }
        for t in &self.triggers {
            if !old.triggers.iter().any(|o| o.key() == t.key()) {
                asks.push(format!(
                    "run on its own {} ({}); off until you switch it on with `domicile triggers on`",
                    t.when(),
                    t.purpose
                ));
            }
        }
        asks
    }

    /// What this app asks for, in words a resident reads before granting:
    /// one entry per permission with its purpose and fields, the scratch
    /// directory, every destination it may ask to send data to, and when
    /// it runs on its own. The CLI, the catalogue and the web UI all show
    /// this same text.
    pub fn describe_asks(&self) -> String {
        describe_asks(&self.permissions, self.scratch.as_ref(), self.egress.as_ref(), &self.triggers)
    }
}

fn join(fields: &[FieldName]) -> String {
    fields.iter().map(FieldName::as_str).collect::<Vec<_>>().join(", ")
}

fn describe_asks(
    permissions: &[Permission],
    scratch: Option<&Scratch>,
    egress: Option<&Egress>,
    triggers: &[Trigger],
) -> String {
    let mut out = String::new();
    for p in permissions {
        let verbs: Vec<&str> = p.access.iter().map(Access::as_str).collect();
        out.push_str(&format!("  - {} {}\n      why: {}\n", verbs.join(", "), p.doctype, p.purpose));
        if let Some(fields) = &p.fields {
            out.push_str(&format!("      only the fields: {}\n", join(fields)));
        }
    }
    if let Some(scratch) = scratch {
        out.push_str(&format!("  - a private scratch directory\n      why: {}\n", scratch.purpose));
    }
    if let Some(egress) = egress {
        for d in &egress.destinations {
            out.push_str(&format!(
                "  - ask to send data to {d} (each sending waits for your approval)\n      why: {}\n",
                egress.purpose
            ));
        }
    }
    if out.is_empty() {
        out.push_str("  (no access to your data)\n");
    }
    for t in triggers {
        out.push_str(&format!(
            "  - to run on its own {} (you can switch this off)\n      why: {}\n",
            t.when(),
            t.purpose
        ));
    }
    out
}

#[cfg(test)]
mod tests;
