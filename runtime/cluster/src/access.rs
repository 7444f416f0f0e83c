//! How a node, or an operator's command, reaches NATS: the servers, and
//! the credentials and TLS settings every NATS client takes.
//!
//! Whoever can reach an open NATS server can read and rewrite everything
//! the cluster keeps there (sessions, accounts, placements, residents'
//! logs), so a node refuses to join over a connection that is not both
//! authenticated and encrypted, unless the operator says
//! `--insecure-nats` (a test on one machine, NATS on loopback).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ClusterError, Result};

/// The servers and how to authenticate to them and encrypt the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatsAccess {
    /// `nats://host:port` or `tls://host:port`, or several servers of a
    /// NATS cluster separated by commas.
    pub url: String,
    /// A NATS `.creds` file (the user's JWT and nkey seed), as `nsc` makes.
    pub creds: Option<PathBuf>,
    /// A file holding a user's nkey seed (`SU...`), for a server that
    /// lists the user's public nkey.
    pub nkey: Option<PathBuf>,
    /// A user of the server's configuration; its password comes from
    /// `password_file`, never from the command line.
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The certificate authority (PEM) the server's certificate is checked
    /// against: TLS is then required.
    pub ca: Option<PathBuf>,
    /// This client's certificate and key (PEM), for a server that verifies
    /// its clients (mutual TLS).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Joins over a connection without authentication or TLS all the same.
    pub insecure: bool,
}

impl NatsAccess {
    /// Access to `url` with neither credentials nor TLS (tests, loopback).
    pub fn insecure(url: impl Into<String>) -> NatsAccess {
        NatsAccess { url: url.into(), insecure: true, ..NatsAccess::default() }
    }

    fn servers(&self) -> Vec<&str> {
        self.url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    }

    /// Whether the client proves who it is to the server.
    pub fn authenticated(&self) -> bool {
        self.creds.is_some() || self.nkey.is_some() || self.user.is_some()
    }

    /// Whether the connection is encrypted (TLS required of every server).
    pub fn encrypted(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.servers().iter().all(|s| s.starts_with("tls://"))
    }

    /// Checks the settings go together, and refuses a connection that is not
    /// both authenticated and encrypted unless `insecure` says so.
    pub fn check(&self) -> Result<()> {
        let bad = |detail: &str| Err(ClusterError::Access { detail: detail.to_owned() });
        if self.servers().is_empty() {
            return bad("no NATS server given: --cluster nats://HOST:PORT");
        }
        let in_url = |server: &&str| server.split_once("://").unwrap_or(("", server)).1.contains('@');
        if self.servers().iter().any(in_url) {
            return bad("credentials in the NATS URL are not used, and a password on the command line is visible to every user of the machine: give them with --nats-user NAME and --nats-password-file FILE (or --nats-creds)");
        }
        if self.cert.is_some() != self.key.is_some() {
            return bad(
                "a client certificate needs its key, and a key its certificate: give both --nats-cert and --nats-key",
            );
        }
        if self.user.is_some() != self.password_file.is_some() {
            return bad("--nats-user goes with --nats-password-file (the password is read from a file, never given on the command line)");
        }
        if [self.creds.is_some(), self.nkey.is_some(), self.user.is_some()].iter().filter(|x| **x).count() > 1 {
            return bad("give one way to authenticate to NATS: --nats-creds, --nats-nkey or --nats-user");
        }
        if self.insecure {
            return Ok(());
        }
        let missing = match (self.authenticated(), self.encrypted()) {
            (true, true) => return Ok(()),
            (false, false) => "neither authenticated nor encrypted",
            (false, true) => "not authenticated",
            (true, false) => "not encrypted",
        };
        Err(ClusterError::Insecure { url: self.url.clone(), missing })
    }

    /// The command-line flags that give these settings to another
    /// `domicile` process (bench-cluster starts its nodes with them).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--cluster".to_owned(), self.url.clone()];
        let mut path = |flag: &str, value: &Option<PathBuf>| {
            if let Some(value) = value {
                args.push(flag.to_owned());
                args.push(value.display().to_string());
            }
        };
        path("--nats-creds", &self.creds);
        path("--nats-nkey", &self.nkey);
        path("--nats-password-file", &self.password_file);
        path("--nats-ca", &self.ca);
        path("--nats-cert", &self.cert);
        path("--nats-key", &self.key);
        if let Some(user) = &self.user {
            args.push("--nats-user".to_owned());
            args.push(user.clone());
        }
        if self.insecure {
            args.push("--insecure-nats".to_owned());
        }
        args
    }

    /// Connects (checked first), reconnecting on its own whenever a server
    /// goes away.
    pub(crate) async fn connect(&self, name: &str) -> Result<async_nats::Client> {
        self.check()?;
        let unreadable = |what: &str, path: &PathBuf, e: std::io::Error| ClusterError::Access {
            detail: format!("cannot read the NATS {what} {}: {e}", path.display()),
        };
        let mut options = async_nats::ConnectOptions::new().name(name).connection_timeout(Duration::from_secs(5));
        if let Some(path) = &self.creds {
            options = options.credentials_file(path).await.map_err(|e| unreadable("credentials file", path, e))?;
        }
        if let Some(path) = &self.nkey {
            let seed = std::fs::read_to_string(path).map_err(|e| unreadable("nkey seed file", path, e))?;
            options = options.nkey(seed.trim().to_owned());
        }
        if let (Some(user), Some(path)) = (&self.user, &self.password_file) {
            let password = std::fs::read_to_string(path).map_err(|e| unreadable("password file", path, e))?;
            options = options.user_and_password(user.clone(), password.trim_end_matches(['\r', '\n']).to_owned());
        }
        for path in [&self.ca, &self.cert, &self.key].into_iter().flatten() {
            std::fs::metadata(path).map_err(|e| unreadable("TLS file", path, e))?;
        }
        if let Some(ca) = &self.ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.encrypted() {
            options = options.require_tls(true);
        }
        options
            .connect(self.servers().as_slice())
            .await
            .map_err(|e| ClusterError::Connect { url: self.url.clone(), detail: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_connection_is_refused_unless_said_insecure() {
        let open = NatsAccess { url: "nats://127.0.0.1:4222".into(), ..NatsAccess::default() };
        let refused = open.check().unwrap_err().to_string();
        assert!(refused.contains("neither authenticated nor encrypted"), "{refused}");
        assert!(refused.contains("--insecure-nats"), "{refused}");
        assert!(NatsAccess { insecure: true, ..open.clone() }.check().is_ok());

        let password = NatsAccess { user: Some("n1".into()), password_file: Some("p".into()), ..open.clone() };
        assert!(password.check().unwrap_err().to_string().contains("not encrypted"));
        let tls = NatsAccess { ca: Some("ca.pem".into()), ..open.clone() };
        assert!(tls.check().unwrap_err().to_string().contains("not authenticated"));
        assert!(NatsAccess { ca: Some("ca.pem".into()), ..password.clone() }.check().is_ok());
        let tls_url = NatsAccess { url: "tls://a:4222,tls://b:4222".into(), ..password.clone() };
        assert!(tls_url.check().is_ok());
        let one_plain = NatsAccess { url: "tls://a:4222,nats://b:4222".into(), ..password };
        assert!(one_plain.check().is_err(), "every server must be reached over TLS");
    }

    #[test]
    fn settings_that_do_not_go_together_are_refused() {
        let base = NatsAccess::insecure("nats://127.0.0.1:4222");
        let no_key = NatsAccess { cert: Some("c.pem".into()), ..base.clone() };
        assert!(no_key.check().unwrap_err().to_string().contains("--nats-key"));
        let no_password = NatsAccess { user: Some("n1".into()), ..base.clone() };
        assert!(no_password.check().unwrap_err().to_string().contains("--nats-password-file"));
        let two = NatsAccess { creds: Some("a.creds".into()), nkey: Some("seed".into()), ..base.clone() };
        assert!(two.check().unwrap_err().to_string().contains("one way"));
        let in_url = NatsAccess::insecure("tls://node:secret@10.0.0.9:4222");
        assert!(in_url.check().unwrap_err().to_string().contains("--nats-password-file"));
    }

    #[test]
    fn the_flags_give_the_same_settings_back() {
        let access = NatsAccess {
            url: "tls://127.0.0.1:4222".into(),
            user: Some("n1".into()),
            password_file: Some("/run/pw".into()),
            ca: Some("/etc/ca.pem".into()),
            ..NatsAccess::default()
        };
        assert_eq!(
            access.to_args(),
            [
                "--cluster",
                "tls://127.0.0.1:4222",
                "--nats-password-file",
                "/run/pw",
                "--nats-ca",
                "/etc/ca.pem",
                "--nats-user",
                "n1"
            ]
        );
    }
}
