//! Running a command: those that need no home at once; the others on the
//! home, opened here, or in the server that holds it (over the control
//! socket, the server then runs them here too). A resident's verbs get
//! the resident's space, resolved once. Each prints what it did for a
//! person, or JSON with `--json`.

use anyhow::{bail, Context, Result};
use domicile_home::Home;
use domicile_store::ResidentSpace;

use crate::cli::{Cli, Command};
use crate::verbs::campaigns::CampaignCommand;
use crate::verbs::trust::CatalogueCommand;
use crate::verbs::{
    aggregator, apps, archive, audit, campaigns, data, doctypes, outbox, packaging, publish, residents, serve,
    showcase, triggers, trust,
};

pub async fn execute(cli: Cli) -> Result<()> {
    let Cli { home, resident, json, command } = cli;
    let resident = resident.as_deref();
    // Commands that need no home.
    match &command {
        Command::Demo(args) => return showcase::demo(args, control_runner()).await,
        Command::Bench(args) => return showcase::bench(args, json).await,
        Command::BenchServer(args) => return showcase::bench_server(args, json).await,
        Command::BenchCluster(args) => return showcase::bench_cluster(args, json).await,
        Command::BenchResidents(args) => return showcase::bench_residents(args, json).await,
        Command::BenchCampaign(args) => return showcase::bench_campaign(args, json).await,
        Command::Keygen(args) => return packaging::keygen(args, json),
        Command::Pack(args) => return packaging::pack(args, json),
        // Checking against an explicit key needs no home.
        Command::Verify(args) if args.key.is_some() => return packaging::verify(None, args, json),
        Command::New(args) => {
            return crate::develop::new(&args.name, args.lang, args.world, args.dir.as_deref(), json);
        }
        Command::Build(args) => return crate::develop::build(&args.dir, json).map(drop),
        Command::Dev(args) => {
            let options = crate::develop::DevOptions {
                dir: args.dir.clone(),
                data: args.data.clone(),
                input: args.input.clone(),
                once: args.once,
                full_builds: args.full_builds,
            };
            return crate::develop::dev(options, json).await;
        }
        Command::Cluster(command) => return serve::cluster(command, json).await,
        // The vocabulary is the runtime's: no home needed.
        Command::Doctypes => return doctypes::list(json),
        Command::Doctype(doctypes::DoctypeCommand::Show { doctype }) => return doctypes::show(doctype.clone(), json),
        Command::Catalogue(CatalogueCommand::Build { dir, key, name }) => {
            return trust::build_catalogue(dir, key, name, json)
        }
        Command::Campaign(CampaignCommand::Sign { file, key }) => return campaigns::sign(file, key, json),
        Command::Aggregator(command) => return aggregator::run(command, json).await,
        _ => {}
    }
    let dir = home.context("no home given: pass --home DIR or set DOMICILE_HOME")?;
    let command = match command {
        Command::Init(args) => return residents::init(&dir, args, json),
        command => command,
    };
    // The home, or else the server that holds it.
    let opened = if matches!(command, Command::Restore(_)) {
        crate::home::open_or_create(&dir)
    } else {
        crate::home::open(&dir)
    };
    match opened {
        Ok(home) => match command {
            Command::Serve(args) => serve::serve_home(home, args, control_runner()).await,
            command => on_home(&home, resident, json, command).await,
        },
        Err(e) if crate::control::held_by_a_server(&e) => {
            let mut command = command;
            command.make_paths_absolute()?;
            crate::control::forward(&dir, resident, json, &command)
        }
        Err(e) => Err(e),
    }
}

/// What a running server does with a command from the control socket:
/// reads it as this version's, refuses in a cluster what only the admin
/// API may do (so that every node knows), and runs it on the home.
pub fn control_runner() -> crate::control::Runner {
    std::sync::Arc::new(|home, received| {
        Box::pin(async move {
            let command: Command = serde_json::from_value(received.command).map_err(|e| {
                anyhow::anyhow!(
                    "the command could not be read ({e}); are the client and the server the same version of domicile?"
                )
            })?;
            if received.clustered && command.changes_shared_state() {
                bail!(
                    "this home's server is a node of a cluster: change residents, passwords, tokens, trusted keys, catalogues and campaigns through the admin API (/api/v1/admin) or the web UI, so that every node knows"
                );
            }
            on_home(home, received.resident.as_deref(), received.json, command).await
        })
    })
}

/// A command on an open home: in this process, or in a server for a
/// `domicile` beside it (then its output goes to that client). The home's
/// verbs run here; a resident's get their space, resolved once.
pub async fn on_home(home: &Home, resident: Option<&str>, json: bool, command: Command) -> Result<()> {
    match command {
        Command::Demo(_)
        | Command::Bench(_)
        | Command::BenchServer(_)
        | Command::BenchCluster(_)
        | Command::BenchResidents(_)
        | Command::BenchCampaign(_)
        | Command::Keygen(_)
        | Command::New(_)
        | Command::Build(_)
        | Command::Dev(_)
        | Command::Pack(_)
        | Command::Catalogue(CatalogueCommand::Build { .. })
        | Command::Campaign(CampaignCommand::Sign { .. })
        | Command::Aggregator(_)
        | Command::Doctypes
        | Command::Doctype(_)
        | Command::Cluster(_)
        | Command::Init(_) => bail!("this command does not act on a home"),
        Command::Serve(_) => {
            bail!("this home is already served by a running domicile server: it has the home to itself; stop it first")
        }
        Command::Verify(args) => packaging::verify(Some(home), &args, json),
        Command::Restore(args) => archive::restore(home, args, json),
        Command::Resident(command) => residents::resident(home, command, json),
        Command::OperatorToken => residents::operator_token(home, json),
        Command::Trust(command) => trust::trust(home, command, json),
        Command::Catalogue(command) => trust::catalogue(home, command, json),
        Command::Campaigns => campaigns::list(home, json),
        Command::Campaign(command) if !command.is_residents() => campaigns::campaign(home, command, json),
        Command::Triggers(args) => triggers::command(home, resident, args, json).await,
        // Everything else is a resident's.
        command => on_space(home, &home.resident(resident)?, json, command).await,
    }
}

/// A resident's command, on their space.
async fn on_space(home: &Home, space: &ResidentSpace, json: bool, command: Command) -> Result<()> {
    match command {
        Command::Token(command) => residents::tokens(home, space, command, json),
        Command::Quota(args) => residents::quota(home, space, args, json),
        Command::Install(args) => apps::install(home, space, args, json),
        Command::Update(args) => apps::update(home, space, args, json),
        Command::Enable(args) => apps::enable(home, space, args, json),
        Command::Apps => apps::apps(home, space, json),
        Command::Grant(args) => apps::grant(home, space, args, json),
        Command::Revoke(args) => apps::revoke(home, space, args, json),
        Command::Uninstall(args) => apps::uninstall(home, space, args, json),
        Command::Publish(args) => publish::publish(home, space, args, json),
        Command::Import(args) => data::import(home, space, args, json).await,
        Command::Run(args) => data::run(home, space, args, json).await,
        Command::Docs(args) => data::docs(space, args, json),
        Command::Put(args) => data::put(home, space, args, json).await,
        Command::Delete(args) => data::delete(home, space, args, json).await,
        Command::Changes(args) => data::changes(space, args, json),
        Command::Export(args) => archive::export(home, space, args, json),
        Command::Check => archive::check(space, json),
        Command::Audit(args) => audit::audit(space, args, json),
        Command::Logs(args) => audit::logs(space, args, json),
        Command::Outbox => outbox::list(space, json),
        Command::Approve(args) => outbox::approve(home, space, args, json).await,
        Command::Deny(args) => outbox::deny(home, space, args, json),
        Command::Notifications => outbox::notifications(space, json),
        Command::Campaign(command) => campaigns::participate(home, space, command, json).await,
        _ => bail!("this command acts on the home, not on a resident's space"),
    }
}
