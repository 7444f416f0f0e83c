//! Self-validating names: a value of these types is always well-formed, so
//! code that receives one never re-checks it.

/// A name that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{value}`: {reason}")]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub reason: String,
}

impl NameError {
    pub(crate) fn new(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        // Cap the echoed value: it may come from an untrusted file.
        let value: String = value.chars().take(80).collect();
        NameError { what, value, reason: reason.into() }
    }
}

const MAX_NAME_LEN: usize = 128;

/// Reverse-DNS names: `org.example.app`, `io.domicile.mobility.trip`.
/// Lower-case ASCII labels of letters, digits and `-`, each starting with a
/// letter, at least two labels. Such names are safe inside store keys and
/// file names (no `/`, no `..`, no NUL).
fn check_reverse_dns(what: &'static str, s: &str) -> Result<(), NameError> {
    let fail = |reason: &str| Err(NameError::new(what, s, reason));
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return fail("must be 1 to 128 characters");
    }
    let labels: Vec<&str> = s.split('.').collect();
    if labels.len() < 2 {
        return fail("must be a reverse-DNS name such as `org.example.name`");
    }
    for label in labels {
        let mut chars = label.chars();
        match chars.next() {
            Some(c) if c.is_ascii_lowercase() => {}
            _ => return fail("each dot-separated part must start with a lower-case letter"),
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return fail("only lower-case letters, digits, `-` and `.` are allowed");
        }
    }
    Ok(())
}

/// A string type that holds only what `$check` accepts: parsed with
/// `str::parse` or `TryFrom<String>` (serde too), checked once, then a plain
/// `&str` (`as_str`, `AsRef<str>`, `Display`). Every checked name of the
/// runtime is one (`AppId`, `Doctype`, `Destination`, `ResidentName`,
/// `DocId`, `NodeName`, ...), each with its own error type: `$check` is a
/// `fn(&str) -> Result<(), $error>` saying what is wrong. The crate using it
/// depends on serde.
#[macro_export]
macro_rules! checked_string {
    ($(#[$doc:meta])* $ty:ident, $error:ty, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $ty(String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $error;
            fn try_from(s: String) -> Result<Self, $error> {
                let check: fn(&str) -> Result<(), $error> = $check;
                check(&s)?;
                Ok($ty(s))
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, $error> {
                $ty::try_from(s.to_owned())
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A [`checked_string!`] of this crate, whose error is a [`NameError`]
/// about `$what` ("app id", "doctype", ...).
macro_rules! string_newtype {
    ($(#[$doc:meta])* $ty:ident, $what:literal, $check:expr) => {
        $crate::checked_string!($(#[$doc])* $ty, NameError, |s| {
            let check: fn(&'static str, &str) -> Result<(), NameError> = $check;
            check($what, s)
        });
    };
}

/// Characters a terminal acts on (controls, line breaks included), or that
/// change the order or visibility of the text around them (bidirectional
/// overrides, zero-width characters). Text an app or a file controls must
/// not carry them to a person's screen.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

string_newtype!(
    /// An app's identity, reverse-DNS (`org.example.mobility-footprint`).
    AppId, "app id", check_reverse_dns
);
string_newtype!(
    /// A document type, reverse-DNS (`io.domicile.mobility.trip`).
    Doctype, "doctype", check_reverse_dns
);
string_newtype!(
    /// A top-level field of a document, as used in read projections.
    FieldName, "field name", |what, s| {
        if s.is_empty() || s.len() > MAX_NAME_LEN || s.contains('.') || s.chars().any(char::is_control) {
            return Err(NameError::new(what, s, "must be 1 to 128 characters, without `.` or control characters"));
        }
        Ok(())
    }
);
string_newtype!(
    /// Why an app wants something, in words the resident understands.
    Purpose, "purpose", |what, s| {
        let len = s.trim().chars().count();
        if len < 8 {
            return Err(NameError::new(what, s, "say in a sentence why the app needs this (at least 8 characters)"));
        }
        if len > 500 {
            return Err(NameError::new(what, s, "keep it under 500 characters"));
        }
        if s.chars().any(is_hazard) {
            return Err(NameError::new(what, s, "must be plain text, without control or text-direction characters"));
        }
        Ok(())
    }
);
