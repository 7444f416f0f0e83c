//! The `[egress]` section: where an app may ask to send data. Declaring a
//! destination sends nothing: each request waits in the resident's outbox
//! until the resident approves it.

use serde::{Deserialize, Serialize};

use crate::{NameError, Purpose};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    pub destinations: Vec<Destination>,
    pub purpose: Purpose,
}

crate::checked_string!(
    /// An absolute `https` URL, or `http` to this machine only (a local
    /// collector, tests): data never crosses a network in clear text.
    Destination, NameError, check_destination
);

fn check_destination(s: &str) -> Result<(), NameError> {
    let fail = |reason: &str| Err(NameError::new("egress destination", s, reason));
    if s.len() > 2000 {
        return fail("must be under 2000 characters");
    }
    let Ok(url) = url::Url::parse(s) else {
        return fail("must be an absolute URL such as `https://survey.example.org/submit`");
    };
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return fail("must use https (plain http is allowed only to this machine)"),
        _ => return fail("must be an https URL"),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return fail("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return fail("must not carry credentials");
    }
    if url.fragment().is_some() {
        return fail("must not have a `#fragment`");
    }
    // The declared text is what the resident reads and what is compared:
    // it must already be in the URL's normal form.
    if url.as_str() != s {
        return Err(NameError::new("egress destination", s, format!("write it in normal form: `{url}`")));
    }
    Ok(())
}
