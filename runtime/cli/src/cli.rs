//! The command line: the global flags ([`Cli`]) and the verbs
//! ([`Command`]), as clap parses them and as the control socket carries
//! them to a running server (serde). Each verb's arguments and what it does
//! are in the verb's file (`verbs/`, `develop/`); [`crate::dispatch`] runs
//! them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::verbs::campaigns::CampaignCommand;
use crate::verbs::residents::{ResidentCommand, TokenCommand};
use crate::verbs::trust::{CatalogueCommand, TrustCommand};

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
    Demo(crate::verbs::showcase::DemoArgs),
    /// Measure domicile against raw wasmtime and native Rust, in one run (use a release build).
    Bench(crate::verbs::showcase::BenchArgs),
    /// Serve the home over HTTP: the residents' web UI and API, the operator's admin API.
    Serve(crate::verbs::serve::ServeArgs),
    /// A cluster of nodes (`serve --cluster`): which are live, and how many residents each holds.
    #[command(subcommand)]
    Cluster(crate::verbs::serve::ClusterCommand),
    /// Make a new operator token for the admin API (the previous one stops working).
    OperatorToken,
    /// The resident's API tokens, for scripts using the HTTP API.
    #[command(subcommand)]
    Token(crate::verbs::residents::TokenCommand),
    /// Load-test `serve`: many residents running apps at once over loopback, against the same runs in-process.
    BenchServer(crate::verbs::showcase::BenchServerArgs),
    /// Measure a cluster of 3 nodes against one node, moves and failover,
    /// on a NATS server of its own (use a release build).
    BenchCluster(crate::verbs::showcase::BenchClusterArgs),
    /// Measure what one more resident costs: a scratch home grown to many residents (use a release build).
    BenchResidents(crate::verbs::showcase::BenchResidentsArgs),
    /// Measure a campaign end to end: reports, two aggregators over HTTP, deadline to result, against Prio3 alone
    /// (use a release build).
    BenchCampaign(crate::verbs::showcase::BenchCampaignArgs),
    /// Create a new home with its first resident.
    Init(crate::verbs::residents::InitArgs),
    /// Manage the residents of a home.
    #[command(subcommand)]
    Resident(crate::verbs::residents::ResidentCommand),
    /// Create an app project (outside any home): source, manifest, WIT, SDK, .gitignore and a README.
    New(crate::develop::new::NewArgs),
    /// Build the app project here (or --dir) with whichever toolchain is present, check it, and pack it with the project's development key.
    Build(crate::develop::build::BuildArgs),
    /// Build the app project here (or --dir), sign it with the project's key, and install it in this home (or update it): the home is asked to trust the key first.
    Publish(crate::verbs::publish::PublishArgs),
    /// Build, install and run the app project in its development home, on fixture data; again at every saved change.
    Dev(crate::develop::dev::DevArgs),
    /// Create a publisher key pair: PREFIX.key (secret) and PREFIX.pub.
    Keygen(crate::verbs::packaging::KeygenArgs),
    /// Sign a manifest and a component into a package.
    Pack(crate::verbs::packaging::PackArgs),
    /// Check a package's signature (against the home's trusted keys, or --key).
    Verify(crate::verbs::packaging::VerifyArgs),
    /// Manage the publisher keys this home trusts.
    #[command(subcommand)]
    Trust(crate::verbs::trust::TrustCommand),
    /// Install an app: from a signed package file, or by id from a trusted catalogue.
    Install(crate::verbs::apps::InstallArgs),
    /// Update installed apps from your catalogues (only newer versions, from the same publisher).
    Update(crate::verbs::apps::UpdateArgs),
    /// Keep using an app that was put on hold because its publisher key was revoked.
    Enable(crate::verbs::apps::EnableArgs),
    /// Signed catalogues of apps: build one, add one to this home, browse them.
    #[command(subcommand)]
    Catalogue(crate::verbs::trust::CatalogueCommand),
    /// List installed apps and what they were granted.
    Apps,
    /// Grant an installed app more of what its manifest asks for.
    Grant(crate::verbs::apps::GrantArgs),
    /// Take back grants from an app (all of them when none are named);
    /// DOCTYPE:read:FIELD takes back single fields.
    Revoke(crate::verbs::apps::RevokeArgs),
    /// Remove an app (its documents stay yours, unless --purge-data).
    Uninstall(crate::verbs::apps::UninstallArgs),
    /// Import a data holder's export file with an importer app.
    Import(crate::verbs::data::ImportArgs),
    /// Run a service app and print its output: its view drawn as text when it has one, else its JSON (`--json`: always the JSON).
    Run(crate::verbs::data::RunArgs),
    /// One of a campaign's two aggregators, as its organisation runs it (no home): make its key, serve.
    #[command(subcommand)]
    Aggregator(crate::verbs::aggregator::AggregatorCommand),
    /// The campaigns of this home: questions its residents may answer together, of which only an aggregate comes out.
    Campaigns,
    /// A campaign: add one an organiser signed, show what joining it means, or sign one (an organiser's).
    #[command(subcommand)]
    Campaign(crate::verbs::campaigns::CampaignCommand),
    /// The doctypes domicile knows, each with what it holds.
    Doctypes,
    /// Everything about one doctype: each field with its type and meaning, what is required, what is indexed.
    #[command(subcommand)]
    Doctype(crate::verbs::doctypes::DoctypeCommand),
    /// List your documents of a doctype.
    Docs(crate::verbs::data::DocsArgs),
    /// Add or replace one of your documents (body as JSON), or many with --jsonl.
    Put(crate::verbs::data::PutArgs),
    /// Delete one of your documents.
    Delete(crate::verbs::data::DeleteArgs),
    /// The change feed of a doctype: every put and delete, in order.
    Changes(crate::verbs::data::ChangesArgs),
    /// Write everything of a resident to one archive (tar of JSON lines).
    Export(crate::verbs::archive::ExportArgs),
    /// Rebuild a resident's space from an export (the home is created if needed).
    Restore(crate::verbs::archive::RestoreArgs),
    /// Check the store's consistency (documents, indexes, counters).
    Check,
    /// Show the resident's usage; set the quota with the options (operators).
    Quota(crate::verbs::residents::QuotaArgs),
    /// Show what apps did with your data (`audit verify` checks the log was not rewritten).
    Audit(crate::verbs::audit::AuditArgs),
    /// What apps asked to send out of your space, with the exact payloads.
    Outbox,
    /// Send an outbox item to its destination, exactly as shown by `domicile outbox`.
    Approve(crate::verbs::outbox::ApproveArgs),
    /// Discard an outbox item: it is never sent.
    Deny(crate::verbs::outbox::DenyArgs),
    /// Messages apps left for you.
    Notifications,
    /// Show what apps wrote to their log.
    Logs(crate::verbs::audit::LogsArgs),
    /// Apps' triggers (when they run on their own): list them with their
    /// state, last and next run; switch them on or off; run the due ones.
    Triggers(crate::verbs::triggers::TriggersArgs),
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
            Command::Import(args) => absolute(&mut args.file)?,
            Command::Export(args) => absolute(&mut args.out)?,
            Command::Restore(args) => absolute(&mut args.archive)?,
            Command::Verify(args) => {
                absolute(&mut args.package)?;
                if let Some(key) = &mut args.key {
                    maybe_file(key);
                }
            }
            Command::Update(args) => {
                if let Some(package) = &mut args.package {
                    absolute(package)?;
                }
            }
            Command::Install(args) => maybe_file(&mut args.app),
            Command::Trust(TrustCommand::Add { key, .. }) => maybe_file(key),
            Command::Trust(TrustCommand::Revoke { key }) => maybe_file(key),
            Command::Catalogue(CatalogueCommand::AddSource { dir }) => absolute(dir)?,
            Command::Campaign(CampaignCommand::Add { file, signature }) => {
                absolute(file)?;
                if let Some(signature) = signature {
                    absolute(signature)?;
                }
            }
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
                | Command::Campaign(CampaignCommand::Add { .. })
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
