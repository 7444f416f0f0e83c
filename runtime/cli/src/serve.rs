//! The operator's verbs for hosting: `serve`, residents' passwords and the
//! operator token. The server itself is the `domicile-server` crate.

use std::io::BufRead;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use domicile_server::{new_password, Accounts};
use domicile_store::ResidentName;
use serde_json::json;

use crate::home::Home;

/// A password from the first line of stdin, or a generated one.
fn password_from(stdin: bool) -> Result<String> {
    if !stdin {
        return Ok(new_password());
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn accounts(home: &Home) -> Result<Accounts> {
    Ok(Accounts::open(home.accounts_path())?)
}

/// `resident add NAME`: the resident's space and their sign-in password.
pub fn add_resident(home: &Home, name: &str, password_stdin: bool, json: bool) -> Result<()> {
    let name: ResidentName = name.parse()?;
    let password = password_from(password_stdin)?;
    let accounts = accounts(home)?;
    // Check the password before creating anything.
    domicile_server::check_password(&password)?;
    home.store.create_resident(&name)?;
    accounts.set_password(&name, &password)?;
    report_password(&name, (!password_stdin).then_some(&password), "added resident", json);
    Ok(())
}

/// `resident password NAME`: a new password (the old one stops working).
pub fn set_password(home: &Home, name: &str, password_stdin: bool, json: bool) -> Result<()> {
    let name: ResidentName = name.parse()?;
    home.store.resident(&name)?;
    let password = password_from(password_stdin)?;
    accounts(home)?.set_password(&name, &password)?;
    report_password(&name, (!password_stdin).then_some(&password), "new password for", json);
    Ok(())
}

fn report_password(name: &ResidentName, generated: Option<&String>, what: &str, json: bool) {
    if json {
        println!("{}", json!({ "name": name.as_str(), "password": generated }));
        return;
    }
    println!("{what} `{name}`");
    if let Some(password) = generated {
        println!("  password to sign in to the web UI: {password}\n  (shown once: hand it to {name}, who can change it after signing in)");
    }
}

/// `operator-token`: a new token for the admin API; the old one stops working.
pub fn operator_token(home: &Home, json: bool) -> Result<()> {
    let token = accounts(home)?.new_operator_token()?;
    if json {
        println!("{}", json!({ "token": token }));
    } else {
        println!(
            "{token}\n(shown once; send it as `Authorization: Bearer ...` to /api/v1/admin; a new one replaces it)"
        );
    }
    Ok(())
}

/// `serve`: the HTTP server, until Ctrl-C or SIGTERM.
pub async fn serve(home: Home, addr: SocketAddr) -> Result<()> {
    let config = home.server_config()?;
    let server_home = home.served()?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let accounts = accounts(&home)?;
    println!("domicile: serving http://{bound}/");
    if home.store.residents()?.iter().all(|r| !accounts.has_account(r)) {
        println!(
            "  no resident can sign in yet: `domicile resident add NAME` (or `resident password NAME`) sets a password"
        );
    }
    if !accounts.has_operator_token() {
        println!("  no operator token yet: `domicile operator-token` makes one for /api/v1/admin");
    }
    drop(accounts);
    domicile_server::serve(server_home, config, listener, domicile_server::shutdown_signal()).await?;
    println!("domicile: stopped");
    Ok(())
}
