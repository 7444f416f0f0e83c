//! The residents of a home and their access, for operators and residents:
//! `init` (a home and its first resident), `resident add|password|list|
//! remove|disable|enable`, `operator-token`, `token create|list|revoke` (a
//! resident's API tokens) and `quota`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use domicile_home::{format_ms, Home, Password};
use domicile_store::{Quota, ResidentName, ResidentSpace};
use serde_json::json;

use crate::answer::{lines, say};
use crate::terminal::safe;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct InitArgs {
    /// The first resident's name.
    #[arg(long = "name", default_value = "me")]
    pub name: String,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct QuotaArgs {
    #[arg(long, value_name = "N")]
    pub max_documents: Option<u64>,
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,
}

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum ResidentCommand {
    /// Add a resident (operators hosting several people), with a generated password for the web UI.
    Add {
        name: String,
        /// Read the password from stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a resident's web UI password (generated, or --password-stdin).
    Password {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the residents.
    List,
    /// Delete a resident and everything of theirs (export it first to keep a copy).
    Remove {
        name: String,
        /// Say it: without it, nothing is deleted.
        #[arg(long)]
        yes: bool,
    },
    /// Stop a resident from signing in to the web UI and API (their data stays).
    Disable { name: String },
    /// Let a disabled resident sign in again.
    Enable { name: String },
}

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum TokenCommand {
    /// A new API token (send it as `Authorization: Bearer ...`); shown once.
    Create {
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Your API tokens (never their secrets).
    List,
    /// Stop a token from working.
    Revoke { id: String },
}

/// `domicile init`: a new home in `dir`, with its first resident.
pub fn init(dir: &Path, args: InitArgs, json: bool) -> Result<()> {
    let InitArgs { name } = args;
    crate::home::create(dir, &name.parse()?)?;
    say(json, &json!({ "home": dir, "resident": name }), |_| {
        format!("created a domicile home in {} for resident `{name}`", dir.display())
    })
}

/// `domicile resident ...`.
pub fn resident(home: &Home, command: ResidentCommand, json: bool) -> Result<()> {
    match command {
        ResidentCommand::Add { name, password_stdin } => add_resident(home, &name, password_stdin, json),
        ResidentCommand::Password { name, password_stdin } => set_password(home, &name, password_stdin, json),
        ResidentCommand::Remove { name, yes } => {
            if !yes {
                bail!("this deletes {name}'s documents, apps and audit log for good: add --yes (and `domicile --resident {name} export --out FILE` first to keep a copy)");
            }
            home.remove_resident(&name.parse()?)?;
            say(json, &json!({ "removed": name }), |_| format!("removed resident `{name}` and everything of theirs"))
        }
        ResidentCommand::Disable { name } => {
            home.set_sign_in(&name.parse()?, false)?;
            say(json, &json!({ "resident": name, "can_sign_in": false }), |_| {
                format!("{name} can no longer sign in; their data is untouched")
            })
        }
        ResidentCommand::Enable { name } => {
            home.set_sign_in(&name.parse()?, true)?;
            say(json, &json!({ "resident": name, "can_sign_in": true }), |_| format!("{name} can sign in again"))
        }
        ResidentCommand::List => {
            let residents = home.store().residents()?;
            say(json, &residents, |residents| lines(residents.iter().map(|r| r.to_string())))
        }
    }
}

/// `domicile quota [--max-documents N] [--max-bytes B]`: shown, or set.
pub fn quota(home: &Home, space: &ResidentSpace, args: QuotaArgs, json: bool) -> Result<()> {
    let QuotaArgs { max_documents, max_bytes } = args;
    let quota = (max_documents.is_some() || max_bytes.is_some()).then_some(Quota { max_documents, max_bytes });
    let (usage, quota) = home.set_quota(space.resident(), quota)?;
    say(json, &json!({ "usage": usage, "quota": quota }), |_| {
        let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
        format!(
            "{} documents (limit {}), {} bytes (limit {})",
            usage.documents,
            show(quota.max_documents),
            usage.bytes,
            show(quota.max_bytes)
        )
    })
}

/// A password from the first line of stdin, or a generated one.
fn password_from(stdin: bool) -> Result<Password> {
    if !stdin {
        return Ok(Password::Generate);
    }
    let line = crate::io::stdin_line().context("cannot read the password from stdin")?;
    Ok(Password::Given(line.unwrap_or_default()))
}

/// `resident add NAME`: the resident's space and their sign-in password.
fn add_resident(home: &Home, name: &str, password_stdin: bool, json: bool) -> Result<()> {
    let name: ResidentName = name.parse()?;
    let added = home.add_resident(&name, password_from(password_stdin)?)?;
    report_password(&name, added.password.as_ref(), "added resident", json)?;
    Ok(())
}

/// `resident password NAME`: a new password (the old one stops working).
fn set_password(home: &Home, name: &str, password_stdin: bool, json: bool) -> Result<()> {
    let name: ResidentName = name.parse()?;
    let generated = home.set_password(&name, password_from(password_stdin)?)?;
    report_password(&name, generated.as_ref(), "new password for", json)?;
    Ok(())
}

fn report_password(name: &ResidentName, generated: Option<&String>, what: &str, json: bool) -> Result<()> {
    say(json, &json!({ "name": name.as_str(), "password": generated }), |_| {
        match generated {
        Some(password) => format!("{what} `{name}`\n  password to sign in to the web UI: {password}\n  (shown once: hand it to {name}, who can change it after signing in)"),
        None => format!("{what} `{name}`"),
    }
    })
}

/// `operator-token`: a new token for the admin API; the old one stops working.
pub fn operator_token(home: &Home, json: bool) -> Result<()> {
    let token = home.new_operator_token()?;
    say(json, &json!({ "token": token }), |_| {
        format!("{token}\n(shown once; send it as `Authorization: Bearer ...` to /api/v1/admin; a new one replaces it)")
    })
}

/// `domicile token ...`: the resident's API tokens.
pub fn tokens(home: &Home, space: &ResidentSpace, command: TokenCommand, json: bool) -> Result<()> {
    let name = space.resident();
    match command {
        TokenCommand::Create { label } => {
            let (info, secret) = home.create_token(name, &label)?;
            let answer = json!({ "token": secret, "id": info.id, "label": info.label, "created_ms": info.created_ms });
            say(json, &answer, |_| {
                format!("{secret}\n(shown once: send it as `Authorization: Bearer ...`; `domicile token revoke {}` stops it)", info.id)
            })?;
        }
        TokenCommand::List => {
            let tokens = home.accounts().tokens(name);
            say(json, &tokens, |tokens| {
                if tokens.is_empty() {
                    return "no API tokens".into();
                }
                lines(tokens.iter().map(|t| format!("{}  {}  {}", t.id, format_ms(t.created_ms), safe(&t.label))))
            })?;
        }
        TokenCommand::Revoke { id } => {
            if !home.revoke_token(name, &id)? {
                bail!("`{name}` has no API token `{id}`");
            }
            say(json, &json!({ "revoked": id }), |_| format!("revoked API token {id}"))?;
        }
    }
    Ok(())
}
