//! The command line: the global flags ([`Cli`]) and every verb with its
//! arguments ([`Command`]), as clap parses them and as the control socket
//! carries them to a running server (serde). What each verb does is in the
//! verb's file; [`crate::dispatch`] runs them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::develop;

#[derive(Parser)]
#[command(
    name = "domicile",
    version,
    about = "A home for your personal data: signed apps come to your data, your data stays home."
)]
pub struct Cli {
    /// The home directory (holds the store, trusted keys and app cache).
    #[arg(long, global = true, env = "DOMICILE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The resident to act for (default: the only resident of the home).
    #[arg(long, global = true, env = "DOMICILE_RESIDENT", value_name = "NAME")]
    pub resident: Option<String>,
    /// Machine-readable output (JSON).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// Build a demo home with sample apps and data, and walk through it.
    Demo {
        /// Where to create the demo home (default ./domicile-demo, replaced if it is a previous demo).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Then serve the demo home's web UI at ADDR (default 127.0.0.1:8080) until Ctrl-C.
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
        serve: Option<std::net::SocketAddr>,
    },
    /// Measure domicile against raw wasmtime and native Rust, in one run (use a release build).
    Bench {
        /// Empty invocations to time.
        #[arg(long, default_value_t = 2000)]
        invocations: usize,
        /// Trips the scan reads.
        #[arg(long, default_value_t = 100_000)]
        documents: usize,
        /// Rows of the imported load curve (the figure is 1,000,000).
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Rounds of the arithmetic loop timed with and without epoch interruption.
        #[arg(long, default_value_t = 200_000_000)]
        spin: u64,
    },
    /// Serve the home over HTTP: the residents' web UI and API, the operator's admin API.
    Serve {
        /// Address to listen on (port 0 picks a free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Be a node of the cluster coordinated by this NATS server, with
        /// JetStream on (`tls://nats.example:4222`, or the servers of a NATS
        /// cluster separated by commas); needs --node, and credentials and
        /// TLS (the --nats-* flags) unless --insecure-nats.
        #[arg(long, value_name = "NATS_URL", requires = "node")]
        cluster: Option<String>,
        #[command(flatten)]
        nats: NatsArgs,
        /// This node's name in the cluster (`n1`).
        #[arg(long, requires = "cluster")]
        node: Option<String>,
        /// The URL residents reach this node at, shown by `cluster status`
        /// (default: http:// and the address this server listens on); its
        /// host is also where the other nodes reach the peer port.
        #[arg(long, value_name = "URL", requires = "cluster")]
        advertise: Option<String>,
        /// Address of the port the other nodes forward requests to, over TLS
        /// (this node's certificate is made at each start and named in its
        /// heartbeat); default: the IP of --addr and a free port. Open it
        /// to the other nodes only.
        #[arg(long, value_name = "ADDR", requires = "cluster")]
        peer_addr: Option<std::net::SocketAddr>,
        /// Seconds without a heartbeat after which the others take this node for gone.
        #[arg(long, default_value_t = 6, requires = "cluster")]
        lease_s: u64,
        /// Copies of the cluster's state JetStream keeps, when the buckets
        /// are first made (3 on a NATS cluster of 3 servers survives one's loss).
        #[arg(long, default_value_t = 1, requires = "cluster")]
        replicas: usize,
        /// Seconds after it was sealed within which NATS must have stored a
        /// cluster entry; one stored later is an earlier entry put back (a
        /// replay) and is refused. Widen it only for clocks that drift apart.
        #[arg(long, default_value_t = 300, requires = "cluster")]
        replay_window_s: u64,
    },
    /// A cluster of nodes (`serve --cluster`): which are live, and how many residents each holds.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Make a new operator token for the admin API (the previous one stops working).
    OperatorToken,
    /// The resident's API tokens, for scripts using the HTTP API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Load-test `serve`: many residents running apps at once over loopback, against the same runs in-process.
    BenchServer {
        /// Residents running at once.
        #[arg(long, default_value_t = 20)]
        residents: usize,
        /// Runs of the mobility footprint per resident.
        #[arg(long, default_value_t = 25)]
        runs: usize,
    },
    /// Measure a cluster of 3 nodes against one node, moves and failover,
    /// on a NATS server of its own (use a release build).
    BenchCluster {
        /// A NATS server with JetStream (`nats-server -js`), used by nothing else.
        #[arg(long, value_name = "NATS_URL")]
        cluster: String,
        #[command(flatten)]
        nats: NatsArgs,
        /// Residents running at once, for the load.
        #[arg(long, default_value_t = 12)]
        residents: usize,
        /// Runs of the mobility footprint per resident.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Documents written one after another, for the write latency.
        #[arg(long, default_value_t = 300)]
        writes: usize,
    },
    /// Measure what one more resident costs: a scratch home grown to many residents (use a release build).
    BenchResidents {
        /// Residents to grow the home to.
        #[arg(long, default_value_t = 10_000)]
        residents: usize,
        /// Of them, residents with apps and data who sign in and run at the end.
        #[arg(long, default_value_t = 200)]
        active: usize,
    },
    /// Create a new home with its first resident.
    Init {
        /// The first resident's name.
        #[arg(long = "name", default_value = "me")]
        name: String,
    },
    /// Manage the residents of a home.
    #[command(subcommand)]
    Resident(ResidentCommand),
    /// Create an app project (outside any home): source, manifest, WIT, SDK, .gitignore and a README.
    New {
        /// The app's name (its id becomes org.example.NAME; change it in manifest.toml).
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: develop::Lang,
        #[arg(long, value_enum, default_value = "service")]
        world: develop::WorldArg,
        /// Where to create it (default ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build the app project here (or --dir) with whichever toolchain is present, check it, and pack it with the project's development key.
    Build {
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Build the app project here (or --dir), sign it with the project's key, and install it in this home (or update it): the home is asked to trust the key first.
    Publish {
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Trust the project's key as a publisher without being asked.
        #[arg(long)]
        trust_key: bool,
        /// What to grant: `all`, `none`, or DOCTYPE:ACCESS[,ACCESS][:FIELD[,FIELD]] (repeatable). Without it, you are asked.
        #[arg(long, value_name = "GRANT")]
        grant: Vec<String>,
    },
    /// Build, install and run the app project in its development home, on fixture data; again at every saved change.
    Dev {
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Export files to import as fixture data (default: the sample data; an importer imports the project's fixtures/).
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// The service's input (JSON).
        #[arg(long, default_value = "{}")]
        input: String,
        /// One round, then exit (its status says whether it succeeded).
        #[arg(long)]
        once: bool,
        /// Python and JavaScript: build the whole component at every change, as `domicile build` does, instead of running the sources in the project's runner.
        #[arg(long)]
        full_builds: bool,
    },
    /// Create a publisher key pair: PREFIX.key (secret) and PREFIX.pub.
    Keygen {
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
    },
    /// Sign a manifest and a component into a package.
    Pack {
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        #[arg(long, value_name = "FILE")]
        component: PathBuf,
        /// The publisher's secret key (from `domicile keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Pack a core WebAssembly module anyway (no domicile will install it: apps are components).
        #[arg(long)]
        force: bool,
    },
    /// Check a package's signature (against the home's trusted keys, or --key).
    Verify {
        package: PathBuf,
        /// Verify against this public key (hex or .pub file) instead of the home's trust store.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
    },
    /// Manage the publisher keys this home trusts.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Install an app: from a signed package file, or by id from a trusted catalogue.
    Install {
        /// A package file (.dpkg), or an app id listed in one of your catalogues.
        app: String,
        /// With an app id: this version rather than the latest.
        #[arg(long, value_name = "VERSION")]
        version: Option<semver::Version>,
        /// What to grant: `all`, `none`, or DOCTYPE:ACCESS[,ACCESS][:FIELD[,FIELD]] (repeatable). Without it, you are asked.
        #[arg(long, value_name = "GRANT")]
        grant: Vec<String>,
    },
    /// Update installed apps from your catalogues (only newer versions, from the same publisher).
    Update {
        /// Only this app (default: every installed app).
        app: Option<String>,
        /// Update from this package file instead of a catalogue.
        #[arg(long, value_name = "FILE", requires = "app")]
        package: Option<PathBuf>,
        /// Grant what the new version newly asks for (`all`, `none`, or DOCTYPE:ACCESS[:FIELDS]).
        #[arg(long, value_name = "GRANT", requires = "app")]
        grant: Vec<String>,
    },
    /// Keep using an app that was put on hold because its publisher key was revoked.
    Enable { app: String },
    /// Signed catalogues of apps: build one, add one to this home, browse them.
    #[command(subcommand)]
    Catalogue(CatalogueCommand),
    /// List installed apps and what they were granted.
    Apps,
    /// Grant an installed app more of what its manifest asks for.
    Grant {
        app: String,
        /// `all`, or DOCTYPE:ACCESS[,ACCESS][:FIELD[,FIELD]] (fields narrow a read).
        #[arg(required = true)]
        grants: Vec<String>,
    },
    /// Take back grants from an app (all of them when none are named);
    /// DOCTYPE:read:FIELD takes back single fields.
    Revoke { app: String, grants: Vec<String> },
    /// Remove an app (its documents stay yours, unless --purge-data).
    Uninstall {
        app: String,
        /// Also delete every document the app created.
        #[arg(long)]
        purge_data: bool,
    },
    /// Import a data holder's export file with an importer app.
    Import {
        importer: String,
        file: PathBuf,
        /// Import the valid records of a file with broken ones, and list every record left out (where and why).
        /// Without it, one broken record refuses the whole file and nothing is imported.
        #[arg(long)]
        partial: bool,
        /// Leave the on-change triggers this write makes due to the next
        /// `domicile triggers run-due` (or the server) instead of running
        /// them before the command ends (a script importing many files).
        #[arg(long)]
        #[serde(default)]
        no_triggers: bool,
    },
    /// Run a service app and print its output: its view drawn as text when it has one, else its JSON (`--json`: always the JSON).
    Run {
        app: String,
        /// The app's input, as JSON.
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// The doctypes domicile knows, each with what it holds.
    Doctypes,
    /// Everything about one doctype: each field with its type and meaning, what is required, what is indexed.
    #[command(subcommand)]
    Doctype(DoctypeCommand),
    /// List your documents of a doctype.
    Docs {
        doctype: String,
        /// A selector, e.g. '{"mode": "bike", "distance_m": {"$gt": 1000}}'.
        #[arg(long = "where", value_name = "JSON", default_value = "{}")]
        selector: String,
        /// Order by a field; prefix with `-` for descending (`--sort=-date`).
        #[arg(long, value_name = "FIELD", allow_hyphen_values = true)]
        sort: Option<String>,
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Add or replace one of your documents (body as JSON), or many with --jsonl.
    Put {
        doctype: String,
        /// The document's id (default: its natural key, or a new id).
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// The document body, a JSON object.
        #[arg(required_unless_present = "jsonl", conflicts_with = "jsonl")]
        body: Option<String>,
        /// Read `{"id": ..., "body": {...}}` lines from stdin; print `ok ID`
        /// once each is on disk.
        #[arg(long)]
        jsonl: bool,
        /// Leave the on-change triggers this write makes due to the next
        /// `domicile triggers run-due` (or the server) instead of running
        /// them before the command ends (a script importing many files).
        #[arg(long)]
        #[serde(default)]
        no_triggers: bool,
    },
    /// Delete one of your documents.
    Delete { doctype: String, id: String },
    /// The change feed of a doctype: every put and delete, in order.
    Changes {
        doctype: String,
        /// Only changes after this sequence number.
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Write everything of a resident to one archive (tar of JSON lines).
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Rebuild a resident's space from an export (the home is created if needed).
    Restore {
        archive: PathBuf,
        /// Restore under another resident name.
        #[arg(long, value_name = "NAME")]
        r#as: Option<String>,
    },
    /// Check the store's consistency (documents, indexes, counters).
    Check,
    /// Show the resident's usage; set the quota with the options (operators).
    Quota {
        #[arg(long, value_name = "N")]
        max_documents: Option<u64>,
        #[arg(long, value_name = "BYTES")]
        max_bytes: Option<u64>,
    },
    /// Show what apps did with your data (`audit verify` checks the log was not rewritten).
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        action: Option<AuditAction>,
        #[arg(long, value_name = "APP")]
        app: Option<String>,
        #[arg(long, value_name = "DOCTYPE")]
        doctype: Option<String>,
        /// From this time on (2026-03-01, or 2026-03-01T12:00:00Z).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Before this time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// One line per app, operation and doctype, with totals.
        #[arg(long)]
        summary: bool,
    },
    /// What apps asked to send out of your space, with the exact payloads.
    Outbox,
    /// Send an outbox item to its destination, exactly as shown by `domicile outbox`.
    Approve { id: u64 },
    /// Discard an outbox item: it is never sent.
    Deny { id: u64 },
    /// Messages apps left for you.
    Notifications,
    /// Show what apps wrote to their log.
    Logs {
        #[arg(long, value_name = "APP")]
        app: Option<String>,
    },
    /// Apps' triggers (when they run on their own): list them with their
    /// state, last and next run; switch them on or off; run the due ones.
    Triggers {
        #[command(subcommand)]
        action: Option<TriggersCommand>,
    },
}

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
pub enum ClusterCommand {
    /// Make the cluster's key, once, into a new file readable by you alone;
    /// copy it to every node (`--cluster-key FILE`), as you would a TLS key.
    Key {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// The live nodes, their addresses and residents, and residents whose node is not live.
    Status {
        /// The cluster's NATS server.
        #[arg(long, value_name = "NATS_URL")]
        cluster: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Move a resident to another node while they use the system: their
    /// writes get 503 with Retry-After for the moment it takes, none that
    /// was acknowledged is lost, and the old node drops its copy only once
    /// the new one holds them.
    Move {
        resident: String,
        /// The live node to move them to.
        #[arg(long, value_name = "NODE")]
        to: String,
        /// The cluster's NATS server.
        #[arg(long, value_name = "NATS_URL")]
        cluster: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
}

/// How to authenticate to the cluster's NATS servers and encrypt the
/// connection: the settings every NATS client takes. Without credentials
/// and TLS a node refuses to join, unless --insecure-nats.
#[derive(clap::Args, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct NatsArgs {
    /// A NATS credentials file (`.creds`: the user's JWT and nkey seed).
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_CREDS")]
    nats_creds: Option<PathBuf>,
    /// A file holding the user's nkey seed (`SU...`).
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_NKEY")]
    nats_nkey: Option<PathBuf>,
    /// A user of the NATS server's configuration (with --nats-password-file).
    #[arg(long, value_name = "NAME", env = "DOMICILE_NATS_USER", requires = "nats_password_file")]
    nats_user: Option<String>,
    /// The file holding that user's password (never on the command line).
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_PASSWORD_FILE", requires = "nats_user")]
    nats_password_file: Option<PathBuf>,
    /// The certificate authority (PEM) that signed the NATS servers'
    /// certificates; TLS is then required.
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_CA")]
    nats_ca: Option<PathBuf>,
    /// This node's client certificate (PEM), for servers that verify their clients.
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_CERT", requires = "nats_key")]
    nats_cert: Option<PathBuf>,
    /// The key (PEM) of --nats-cert.
    #[arg(long, value_name = "FILE", env = "DOMICILE_NATS_KEY", requires = "nats_cert")]
    nats_key: Option<PathBuf>,
    /// The cluster's key (made once by `domicile cluster key --out FILE`,
    /// the same file on every node): what the nodes share in NATS is
    /// sealed with it, and nothing NATS holds is believed without it.
    #[arg(long, value_name = "FILE", env = "DOMICILE_CLUSTER_KEY")]
    cluster_key: Option<PathBuf>,
    /// Use a NATS connection without authentication or TLS all the same:
    /// only for a test with NATS on this machine, since whoever reaches
    /// the NATS port can then read and change every resident's data.
    #[arg(long)]
    insecure_nats: bool,
}

impl NatsArgs {
    /// The access to the NATS servers at `url` (checked: authenticated and
    /// encrypted, unless --insecure-nats) and the cluster's key.
    pub fn cluster(&self, url: &str) -> anyhow::Result<(domicile_cluster::NatsAccess, domicile_cluster::ClusterKey)> {
        let access = self.access(url);
        access.check()?;
        let Some(path) = &self.cluster_key else {
            anyhow::bail!(
                "the cluster's key is needed (--cluster-key FILE): make it once with `domicile cluster key --out FILE` and give every node the same file, kept as a TLS key is (it never goes into NATS)"
            )
        };
        Ok((access, domicile_cluster::ClusterKey::load(path)?))
    }

    /// The cluster's key file, if one was given.
    pub fn cluster_key_file(&self) -> Option<&std::path::Path> {
        self.cluster_key.as_deref()
    }

    /// The access to the NATS servers at `url` these flags describe.
    pub fn access(&self, url: &str) -> domicile_cluster::NatsAccess {
        domicile_cluster::NatsAccess {
            url: url.to_owned(),
            creds: self.nats_creds.clone(),
            nkey: self.nats_nkey.clone(),
            user: self.nats_user.clone(),
            password_file: self.nats_password_file.clone(),
            ca: self.nats_ca.clone(),
            cert: self.nats_cert.clone(),
            key: self.nats_key.clone(),
            insecure: self.insecure_nats,
        }
    }
}

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
pub enum TriggersCommand {
    /// Run every trigger that is due now, for every resident (or the one
    /// --resident names): run it from cron or a systemd timer when no
    /// `domicile serve` runs the schedules.
    RunDue,
    /// Switch an app's trigger N (as `domicile triggers` numbers them), or all of them, back on.
    On { app: String, number: Option<usize> },
    /// Switch an app's trigger N, or all of them, off: it no longer runs on its own.
    Off { app: String, number: Option<usize> },
}

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
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

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
pub enum DoctypeCommand {
    /// Each field of DOCTYPE: type, unit or allowed values, meaning; `--json` prints its JSON Schema.
    Show { doctype: String },
}

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
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

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
pub enum TrustCommand {
    /// Trust a key (64 hex characters, or a .pub file); a revoked key is trusted again.
    Add {
        key: String,
        /// A label to remember whose key it is.
        #[arg(long, default_value = "")]
        name: String,
        /// What the key may sign: `publisher` (packages, the default) and/or `catalogue` (catalogue indexes).
        #[arg(long = "role", value_name = "ROLE", value_parser = parse_role)]
        roles: Vec<domicile_package::Role>,
    },
    /// List trusted and revoked keys.
    List,
    /// Stop trusting a key; the apps it signed are held until you decide.
    Revoke { key: String },
}

fn parse_role(s: &str) -> Result<domicile_package::Role, String> {
    match s {
        "publisher" => Ok(domicile_package::Role::Publisher),
        "catalogue" => Ok(domicile_package::Role::Catalogue),
        _ => Err("expected `publisher` or `catalogue`".into()),
    }
}

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
pub enum CatalogueCommand {
    /// Index and sign the packages in DIR/packages (writes DIR/index.json and DIR/index.sig).
    Build {
        dir: PathBuf,
        /// The catalogue's secret key (from `domicile keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[arg(long, default_value = "domicile catalogue")]
        name: String,
    },
    /// Install from this catalogue from now on (its key must be trusted with --role catalogue).
    AddSource { dir: PathBuf },
    /// The apps of your catalogues.
    List,
    /// Everything about one app: publisher, versions, each permission and its purpose.
    Show { app: String },
}

#[derive(Subcommand, serde::Serialize, serde::Deserialize)]
pub enum AuditAction {
    /// Check the audit log's hash chain: any edited, deleted or reordered entry is reported.
    Verify,
}

impl Command {
    /// Paths as a server running the command for this process must see
    /// them: absolute.
    pub fn make_paths_absolute(&mut self) -> Result<()> {
        let absolute = |path: &mut PathBuf| -> Result<()> {
            *path = std::path::absolute(&*path).with_context(|| format!("cannot resolve {}", path.display()))?;
            Ok(())
        };
        // An argument that may be a file or something else is made absolute
        // only when it names a file here.
        let maybe_file = |text: &mut String| {
            if Path::new(text.as_str()).exists() {
                if let Ok(path) = std::path::absolute(text.as_str()) {
                    *text = path.to_string_lossy().into_owned();
                }
            }
        };
        match self {
            Command::Import { file, .. } => absolute(file)?,
            Command::Export { out } => absolute(out)?,
            Command::Restore { archive, .. } => absolute(archive)?,
            Command::Verify { package, key } => {
                absolute(package)?;
                if let Some(key) = key {
                    maybe_file(key);
                }
            }
            Command::Update { package: Some(package), .. } => absolute(package)?,
            Command::Install { app, .. } => maybe_file(app),
            Command::Trust(TrustCommand::Add { key, .. }) => maybe_file(key),
            Command::Trust(TrustCommand::Revoke { key }) => maybe_file(key),
            Command::Catalogue(CatalogueCommand::AddSource { dir }) => absolute(dir)?,
            _ => {}
        }
        Ok(())
    }

    /// What a node of a cluster must do through the admin API instead: the
    /// cluster's shared state would not know of it.
    pub fn changes_shared_state(&self) -> bool {
        matches!(
            self,
            Command::OperatorToken
                | Command::Trust(TrustCommand::Add { .. } | TrustCommand::Revoke { .. })
                | Command::Catalogue(CatalogueCommand::AddSource { .. })
                | Command::Token(TokenCommand::Create { .. } | TokenCommand::Revoke { .. })
                | Command::Resident(
                    ResidentCommand::Add { .. }
                        | ResidentCommand::Remove { .. }
                        | ResidentCommand::Password { .. }
                        | ResidentCommand::Disable { .. }
                        | ResidentCommand::Enable { .. }
                )
        )
    }
}
