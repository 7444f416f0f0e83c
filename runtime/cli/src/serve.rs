//! The operator's verbs for hosting: `serve`, residents' passwords and the
//! operator token. The server itself is the `domicile-server` crate.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use domicile_home::{Home, Password};
use domicile_store::ResidentName;
use serde_json::json;

/// A password from the first line of stdin, or a generated one.
fn password_from(stdin: bool) -> Result<Password> {
    if !stdin {
        return Ok(Password::Generate);
    }
    let line = crate::io::stdin_line().context("cannot read the password from stdin")?;
    Ok(Password::Given(line.unwrap_or_default()))
}

/// `resident add NAME`: the resident's space and their sign-in password.
pub fn add_resident(home: &Home, name: &str, password_stdin: bool, json: bool) -> Result<()> {
    let name: ResidentName = name.parse()?;
    let added = home.add_resident(&name, password_from(password_stdin)?)?;
    report_password(&name, added.password.as_ref(), "added resident", json);
    Ok(())
}

/// `resident password NAME`: a new password (the old one stops working).
pub fn set_password(home: &Home, name: &str, password_stdin: bool, json: bool) -> Result<()> {
    let name: ResidentName = name.parse()?;
    let generated = home.set_password(&name, password_from(password_stdin)?)?;
    report_password(&name, generated.as_ref(), "new password for", json);
    Ok(())
}

fn report_password(name: &ResidentName, generated: Option<&String>, what: &str, json: bool) {
    if json {
        outln!("{}", json!({ "name": name.as_str(), "password": generated }));
        return;
    }
    outln!("{what} `{name}`");
    if let Some(password) = generated {
        outln!("  password to sign in to the web UI: {password}\n  (shown once: hand it to {name}, who can change it after signing in)");
    }
}

/// `operator-token`: a new token for the admin API; the old one stops working.
pub fn operator_token(home: &Home, json: bool) -> Result<()> {
    let token = home.new_operator_token()?;
    if json {
        outln!("{}", json!({ "token": token }));
    } else {
        outln!("{token}\n(shown once; send it as `Authorization: Bearer ...` to /api/v1/admin; a new one replaces it)");
    }
    Ok(())
}

/// `serve`: the HTTP server, until Ctrl-C or SIGTERM.
pub async fn serve(home: Home, addr: SocketAddr) -> Result<()> {
    let config = crate::home::server_config(&home)?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let home = std::sync::Arc::new(home);
    // `domicile` commands on this home reach the server through it (ready
    // before the server says it serves).
    let control = match crate::control::listen(home.clone(), tokio::runtime::Handle::current()) {
        Ok(control) => Some(control),
        // A home whose path is too long for a Unix socket (about 100
        // bytes), say: the server still serves, the CLI cannot reach it.
        Err(e) => {
            errln!("domicile: {e:#}; `domicile` commands on this home cannot reach the server while it runs");
            None
        }
    };
    outln!("domicile: serving http://{bound}/");
    let accounts = home.accounts();
    if home.store().residents()?.iter().all(|r| !accounts.has_account(r)) {
        outln!(
            "  no resident can sign in yet: `domicile resident add NAME` (or `resident password NAME`) sets a password"
        );
    }
    if !accounts.has_operator_token() {
        outln!("  no operator token yet: `domicile operator-token` makes one for /api/v1/admin");
    }
    domicile_server::serve(home, config, listener, domicile_server::shutdown_signal()).await?;
    drop(control);
    outln!("domicile: stopped");
    Ok(())
}
