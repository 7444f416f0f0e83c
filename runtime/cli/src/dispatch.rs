//! Running a command: those that need no home at once; the others on the
//! home, opened here, or in the server that holds it (over the control
//! socket, the server then runs them here too). A resident's verbs get
//! the resident's space, resolved once. Each prints what it did for a
//! person, or JSON with `--json`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use domicile_bench::bench::BenchOptions;
use domicile_home::format_ms;
use domicile_host::{ImportMode, Imported};
use domicile_manifest::{AppId, Doctype};
use domicile_package::PublicKey;
use domicile_samples::demo::DemoOptions;
use domicile_store::{AuditFilter, DocId, Query, Quota, ResidentSpace, Selector, Sort};
use serde_json::json;

use crate::answer::{lines, say, say_json_text};
use crate::cli::{
    AuditAction, CatalogueCommand, Cli, ClusterCommand, Command, DoctypeCommand, ResidentCommand, TokenCommand,
    TrustCommand,
};
use crate::consent::app_json;
use crate::packaging::{keygen, pack, verify};
use crate::terminal::{self, safe};

use domicile_home::Home;

pub async fn execute(cli: Cli) -> Result<()> {
    let Cli { home, resident, json, command } = cli;
    let resident = resident.as_deref();
    // Commands that need no home.
    match &command {
        Command::Demo { dir, serve } => {
            let options =
                DemoOptions { dir: dir.clone(), then_serve: serve.is_some(), clock: crate::home::clock_from_env()? };
            let home = domicile_samples::demo::run(options).await?;
            return match serve {
                Some(addr) => crate::serve::serve(home, *addr, None, control_runner()).await,
                None => Ok(()),
            };
        }
        Command::Bench { invocations, documents, rows, spin } => {
            let options =
                BenchOptions { invocations: *invocations, documents: *documents, rows: *rows, spin: *spin, json };
            return domicile_bench::bench::run(options).await;
        }
        Command::BenchServer { residents, runs } => {
            let options = domicile_bench::server::LoadOptions { residents: *residents, runs: *runs, json };
            return domicile_bench::server::run(options).await;
        }
        Command::BenchCluster { cluster, nats, residents, runs, writes } => {
            let access = nats.access(cluster);
            access.check()?;
            let options = domicile_bench::cluster::ClusterBenchOptions {
                nats: access,
                key_file: nats.cluster_key_file().map(Path::to_owned),
                residents: *residents,
                runs: *runs,
                writes: *writes,
                json,
            };
            return domicile_bench::cluster::run(options).await;
        }
        Command::BenchResidents { residents, active } => {
            let options = domicile_bench::residents::Options { residents: *residents, active: *active, json };
            return domicile_bench::residents::run(options).await;
        }
        Command::Keygen { out } => return keygen(out, json),
        Command::New { name, lang, world, dir } => {
            return crate::develop::new(name, *lang, *world, dir.as_deref(), json)
        }
        Command::Build { dir } => return crate::develop::build(dir, json).map(drop),
        Command::Dev { dir, data, input, once, full_builds } => {
            let options = crate::develop::DevOptions {
                dir: dir.clone(),
                data: data.clone(),
                input: input.clone(),
                once: *once,
                full_builds: *full_builds,
            };
            return crate::develop::dev(options, json).await;
        }
        Command::Cluster(ClusterCommand::Key { out }) => {
            domicile_cluster::ClusterKey::generate().write_new(out)?;
            return say(json, &json!({ "cluster_key": out }), |_| {
                format!(
                    "wrote the cluster's key to {}: copy it to every node (--cluster-key), never into NATS",
                    out.display()
                )
            });
        }
        Command::Cluster(ClusterCommand::Status { cluster, nats }) => {
            let (access, key) = nats.cluster(cluster)?;
            return crate::serve::cluster_status(&access, &key, json).await;
        }
        Command::Cluster(ClusterCommand::Move { resident, to, cluster, nats }) => {
            let (access, key) = nats.cluster(cluster)?;
            return crate::serve::cluster_move(&access, &key, &resident.parse()?, &to.parse()?, json).await;
        }
        // The vocabulary is the runtime's: no home needed.
        Command::Doctypes => return crate::doctypes::list(json),
        Command::Doctype(DoctypeCommand::Show { doctype }) => return crate::doctypes::show(doctype.clone(), json),
        Command::Pack { manifest, component, key, out, force } => {
            return pack(manifest, component, key, out, *force, json)
        }
        Command::Catalogue(CatalogueCommand::Build { dir, key, name }) => {
            return crate::consent::build(dir, key, name, json)
        }
        // Checking against an explicit key needs no home.
        Command::Verify { package, key: Some(key) } => return verify(None, package, Some(key), json),
        _ => {}
    }
    let dir = home.context("no home given: pass --home DIR or set DOMICILE_HOME")?;
    if let Command::Init { name } = &command {
        crate::home::create(&dir, &name.parse()?)?;
        outln!("created a domicile home in {} for resident `{name}`", dir.display());
        return Ok(());
    }
    // The home, or else the server that holds it.
    let opened = if matches!(command, Command::Restore { .. }) {
        crate::home::open_or_create(&dir)
    } else {
        crate::home::open(&dir)
    };
    match opened {
        Ok(home) => match command {
            Command::Serve { addr, cluster, nats, node, advertise, peer_addr, lease_s, replicas, replay_window_s } => {
                let cluster = match (cluster, node) {
                    (Some(url), Some(node)) => {
                        let (nats, key) = nats.cluster(&url)?;
                        Some(crate::serve::JoinOptions {
                            nats,
                            key,
                            node,
                            advertise,
                            peer_addr,
                            lease_s,
                            replicas,
                            replay_window_s,
                        })
                    }
                    _ => None,
                };
                crate::serve::serve(home, addr, cluster, control_runner()).await
            }
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
                    "this home's server is a node of a cluster: change residents, passwords, tokens, trusted keys and catalogues through the admin API (/api/v1/admin) or the web UI, so that every node knows"
                );
            }
            on_home(home, received.resident.as_deref(), received.json, command).await
        })
    })
}

/// A command on an open home: in this process, or in a server for a
/// `domicile` beside it (then its output goes to that client).
pub async fn on_home(home: &Home, resident: Option<&str>, json: bool, command: Command) -> Result<()> {
    match command {
        Command::Demo { .. }
        | Command::Bench { .. }
        | Command::BenchServer { .. }
        | Command::BenchCluster { .. }
        | Command::BenchResidents { .. }
        | Command::Keygen { .. }
        | Command::New { .. }
        | Command::Build { .. }
        | Command::Dev { .. }
        | Command::Pack { .. }
        | Command::Catalogue(CatalogueCommand::Build { .. })
        | Command::Doctypes
        | Command::Doctype(_)
        | Command::Cluster(_)
        | Command::Init { .. } => bail!("this command does not act on a home"),
        Command::Serve { .. } => {
            bail!("this home is already served by a running domicile server: it has the home to itself; stop it first")
        }
        Command::Verify { package, key } => verify(Some(home), &package, key.as_deref(), json)?,
        Command::Restore { archive, r#as } => crate::consent::restore(home, &archive, r#as.as_deref(), json)?,
        Command::Resident(ResidentCommand::Add { name, password_stdin }) => {
            crate::serve::add_resident(home, &name, password_stdin, json)?
        }
        Command::Resident(ResidentCommand::Password { name, password_stdin }) => {
            crate::serve::set_password(home, &name, password_stdin, json)?
        }
        Command::OperatorToken => crate::serve::operator_token(home, json)?,
        Command::Resident(ResidentCommand::Remove { name, yes }) => {
            if !yes {
                bail!("this deletes {name}'s documents, apps and audit log for good: add --yes (and `domicile --resident {name} export --out FILE` first to keep a copy)");
            }
            home.remove_resident(&name.parse()?)?;
            say(json, &json!({ "removed": name }), |_| format!("removed resident `{name}` and everything of theirs"))?;
        }
        Command::Resident(ResidentCommand::Disable { name }) => {
            home.set_sign_in(&name.parse()?, false)?;
            say(json, &json!({ "resident": name, "can_sign_in": false }), |_| {
                format!("{name} can no longer sign in; their data is untouched")
            })?;
        }
        Command::Resident(ResidentCommand::Enable { name }) => {
            home.set_sign_in(&name.parse()?, true)?;
            say(json, &json!({ "resident": name, "can_sign_in": true }), |_| format!("{name} can sign in again"))?;
        }
        Command::Resident(ResidentCommand::List) => {
            let residents = home.store().residents()?;
            say(json, &residents, |residents| lines(residents.iter().map(|r| r.to_string())))?;
        }
        Command::Trust(TrustCommand::Add { key, name, roles }) => {
            let trusted = home.trust_key(PublicKey::from_text_or_file(&key)?, &name, &roles)?;
            say(json, &trusted, |trusted| {
                let roles = trusted.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" and ");
                format!("trusted key {} as {roles}", trusted.key)
            })?;
        }
        Command::Trust(TrustCommand::List) => {
            let trust = home.trust()?;
            say(json, trust.keys(), |keys| {
                if keys.is_empty() {
                    return "no trusted keys: add one with `domicile trust add KEY`".into();
                }
                lines(keys.iter().map(|k| {
                    let roles = k.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ");
                    let state = match k.revoked_at_ms {
                        Some(at) => format!("REVOKED {}", format_ms(at)),
                        None => roles,
                    };
                    format!("{}  {}  ({state})", k.key, k.name)
                }))
            })?;
        }
        Command::Trust(TrustCommand::Revoke { key }) => crate::consent::revoke_key(home, &key, json)?,
        Command::Catalogue(command) => crate::consent::catalogue(home, command, json)?,
        Command::Triggers { action } => crate::triggers::command(home, resident, action, json).await?,
        // Everything else is a resident's.
        command => on_space(home, &home.resident(resident)?, json, command).await?,
    }
    Ok(())
}

/// A resident's command, on their space.
async fn on_space(home: &Home, space: &ResidentSpace, json: bool, command: Command) -> Result<()> {
    match command {
        Command::Token(command) => tokens(home, space, command, json)?,
        Command::Install { app, version, grant } => {
            crate::consent::install(home, space, &app, version.as_ref(), &grant, json)?
        }
        Command::Publish { dir, trust_key, grant } => crate::publish::publish(
            home,
            space,
            &crate::publish::PublishOptions { dir: &dir, trust_key, grant: &grant, json },
        )?,
        Command::Update { app, package, grant } => {
            crate::consent::update(home, space, app.as_deref(), package.as_deref(), &grant, json)?
        }
        Command::Enable { app } => {
            let id: AppId = app.parse()?;
            home.keep_held_app(space, &id)?;
            outln!("{id} can run again: you chose to keep it although its publisher key was revoked");
        }
        Command::Outbox => crate::outbox::list(space, json)?,
        Command::Approve { id } => crate::outbox::approve(home, space, id, json)?,
        Command::Deny { id } => crate::outbox::deny(home, space, id, json)?,
        Command::Notifications => crate::outbox::notifications(space, json)?,
        Command::Apps => apps(home, space, json)?,
        Command::Grant { app, grants } => change_grants(home, space, &app, &grants, true, json)?,
        Command::Revoke { app, grants } => change_grants(home, space, &app, &grants, false, json)?,
        Command::Uninstall { app, purge_data } => {
            let id: AppId = app.parse()?;
            let n = home.uninstall(space, &id, purge_data)?;
            if purge_data {
                outln!("uninstalled {app} and deleted the {n} documents it had created");
            } else {
                outln!("uninstalled {app}; the documents it wrote are still yours");
            }
        }
        Command::Import { importer, file, partial, no_triggers } => {
            let bytes = crate::io::read_given(&file)?;
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mode = if partial { ImportMode::ValidRecords } else { ImportMode::AllOrNothing };
            let progress = std::sync::Arc::new(domicile_host::ImportProgress::default());
            let watch = crate::progress::ImportWatch::start(&name, bytes.len(), progress.clone(), json);
            let imported = home.import(space, &importer.parse()?, &name, &bytes, mode, progress).await;
            drop(watch);
            let imported = imported?;
            print_import(&name, &importer, &imported, partial, json)?;
            crate::triggers::after_write(home, space, json, no_triggers).await?;
        }
        Command::Run { app, input } => {
            serde_json::from_str::<serde_json::Value>(&input).context("--input is not JSON")?;
            let output = home.run(space, &app.parse()?, &input).await?;
            say_json_text(json, &output, || terminal::service_output(&output))?;
            // What the app wrote may be another app's new data.
            crate::triggers::after_write(home, space, json, false).await?;
        }
        Command::Docs { doctype, selector, sort, limit } => {
            docs(space, &doctype, &selector, sort.as_deref(), limit, json)?
        }
        Command::Changes { doctype, since } => {
            for c in space.changes_since(&doctype.parse()?, since, usize::MAX)? {
                say(json, &c, |c| format!("{}  {}  {:?}  {}", c.seq, format_ms(c.at_ms), c.op, safe(c.id.as_str())))?;
            }
        }
        Command::Export { out } => {
            if out.exists() {
                bail!("{} already exists; choose another --out", out.display());
            }
            let file = std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let summary = home.export(space, std::io::BufWriter::new(file))?;
            say(json, &summary, |summary| {
                format!(
                    "exported {} documents, {} apps, {} audit entries of `{}` to {}",
                    summary.documents,
                    summary.apps,
                    summary.audit_entries,
                    space.resident(),
                    out.display()
                )
            })?;
        }
        Command::Put { doctype, id, body, jsonl, no_triggers } => {
            let doctype: Doctype = doctype.parse()?;
            if jsonl {
                put_lines(home, space, &doctype)?;
            } else {
                let body: serde_json::Value =
                    serde_json::from_str(body.as_deref().unwrap_or_default()).context("the body is not JSON")?;
                outln!("{}", put_one(home, space, &doctype, id.as_deref(), body)?);
            }
            crate::triggers::after_write(home, space, json, no_triggers).await?;
        }
        Command::Delete { doctype, id } => {
            home.delete_document(space, &doctype.parse()?, id.parse()?)?;
            say(json, &json!({ "deleted": id }), |_| format!("deleted {id}"))?;
            crate::triggers::after_write(home, space, json, false).await?;
        }
        Command::Check => {
            let report = space.verify()?;
            // With --json the report is the answer, inconsistent or not; then the failure.
            if json || report.is_consistent() {
                say(json, &report, |r| {
                    format!("consistent: {} documents, {} index entries", r.documents, r.index_entries)
                })?;
            }
            if !report.is_consistent() {
                bail!("the store is inconsistent: {}", report.problems.join("; "));
            }
        }
        Command::Quota { max_documents, max_bytes } => {
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
            })?;
        }
        Command::Audit { action: Some(AuditAction::Verify), .. } => audit_verify(space, json)?,
        Command::Audit { action: None, app, doctype, since, until, summary } => {
            let filter = AuditFilter {
                app: app.map(|a| a.parse()).transpose()?,
                doctype: doctype.map(|d| d.parse()).transpose()?,
                since_ms: since.as_deref().map(parse_time).transpose()?,
                until_ms: until.as_deref().map(parse_time).transpose()?,
            };
            audit(space, &filter, summary, json)?
        }
        Command::Logs { app } => {
            let app: Option<AppId> = app.map(|a| a.parse()).transpose()?;
            for e in space.app_log(app.as_ref())? {
                say(json, &e, |e| {
                    format!("{}  {:<5}  {}  {}", format_ms(e.at_ms), safe(&e.level), e.app, safe(&e.message))
                })?;
            }
        }
        _ => bail!("this command acts on the home, not on a resident's space"),
    }
    Ok(())
}

fn tokens(home: &Home, space: &ResidentSpace, command: TokenCommand, json: bool) -> Result<()> {
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

fn apps(home: &Home, space: &ResidentSpace, json: bool) -> Result<()> {
    let apps = space.apps()?;
    let updates = home.available_updates(&apps);
    let list: Vec<serde_json::Value> = apps
        .iter()
        .map(|app| {
            let mut v = app_json(app);
            v["update_available"] = json!(updates.get(app.id()).map(|v| v.to_string()));
            v
        })
        .collect();
    say(json, &list, |_| {
        if apps.is_empty() {
            return "no apps installed".into();
        }
        lines(apps.iter().map(|app| {
            let mut text = format!(
                "{}  {}  {}  ({})\n  granted: {}",
                app.manifest.id,
                app.manifest.version,
                safe(&app.manifest.name),
                app.manifest.world,
                app.grants
            );
            if let Some(hold) = &app.held {
                text += &format!(
                    "\n  ON HOLD: {} (`domicile uninstall {}` or `domicile enable {}`)",
                    safe(&hold.reason),
                    app.id(),
                    app.id()
                );
            }
            if let Some(version) = updates.get(app.id()) {
                text += &format!("\n  update available: {version} (`domicile update {}`)", app.id());
            }
            text
        }))
    })
}

fn change_grants(home: &Home, space: &ResidentSpace, app: &str, specs: &[String], add: bool, json: bool) -> Result<()> {
    let id: AppId = app.parse()?;
    let grants = home.change_grants(space, &id, specs, add)?;
    say(json, &json!({ "app": id.as_str(), "grants": grants }), |_| format!("{id} is now granted: {grants}"))
}

fn docs(
    space: &ResidentSpace,
    doctype: &str,
    selector: &str,
    sort: Option<&str>,
    limit: Option<u64>,
    json: bool,
) -> Result<()> {
    let doctype: Doctype = doctype.parse()?;
    let sort = sort.map(Sort::parse).transpose()?;
    let query = Query { doctype: doctype.clone(), selector: Selector::parse(selector)?, sort, limit };
    let mut cursor = space.query(query)?;
    // A stream for a person (each page printed as it comes), one JSON array with --json.
    let mut all = Vec::new();
    let mut shown = 0;
    loop {
        let page = space.next_page(&mut cursor, 500)?;
        if page.is_empty() {
            break;
        }
        shown += page.len();
        for doc in page {
            if json {
                all.push(json!({ "id": doc.id.as_str(), "body": doc.body, "meta": doc.meta }));
            } else {
                outln!("{}  {}", safe(doc.id.as_str()), terminal::json(&doc.body.to_string()));
            }
        }
    }
    if json {
        outln!("{}", serde_json::Value::Array(all));
    } else if shown == 0 {
        outln!("no {doctype} documents match");
    }
    Ok(())
}

/// Writes one document as the resident; returns its id once it is on disk.
fn put_one(
    home: &Home,
    space: &ResidentSpace,
    doctype: &Doctype,
    id: Option<&str>,
    body: serde_json::Value,
) -> Result<DocId> {
    let id = id.map(str::parse).transpose()?;
    Ok(home.put_document(space, doctype, id, body)?)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PutLine {
    id: Option<String>,
    body: serde_json::Value,
}

/// `put --jsonl`: one durable write per line, acknowledged on stdout.
fn put_lines(home: &Home, space: &ResidentSpace, doctype: &Doctype) -> Result<()> {
    for (n, line) in crate::io::stdin_lines().enumerate() {
        let line = line.with_context(|| format!("line {} is not text", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let put: PutLine = serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?;
        let id =
            put_one(home, space, doctype, put.id.as_deref(), put.body).with_context(|| format!("line {}", n + 1))?;
        outln!("ok {id}");
    }
    Ok(())
}

fn audit(space: &ResidentSpace, filter: &AuditFilter, summary: bool, json: bool) -> Result<()> {
    if summary {
        return say(json, &space.audit_summary(filter)?, |groups| {
            if groups.is_empty() {
                return "no app has accessed your data in that period".into();
            }
            lines(
                groups.iter().map(|g| {
                    format!("{}  ({} to {})", safe(&g.sentence()), format_ms(g.first_ms), format_ms(g.last_ms))
                }),
            )
        });
    }
    say(json, &space.audit(filter)?, |entries| {
        if entries.is_empty() {
            return "no app has accessed your data".into();
        }
        lines(entries.iter().map(|e| {
            let outcome = match e.outcome {
                domicile_store::Outcome::Allowed => "allowed",
                domicile_store::Outcome::Denied => "DENIED",
            };
            let what = match &e.destination {
                Some(d) => format!("to {}", safe(d)),
                None => format!("{}  {} doc(s)", safe(&e.doctype), e.documents),
            };
            format!(
                "{:>5}  {}  {:<7}  {}@{}  {:<6}  {what}",
                e.seq,
                format_ms(e.at_ms),
                outcome,
                e.app,
                safe(&e.app_version),
                e.operation.as_str()
            )
        }))
    })
}

fn audit_verify(space: &ResidentSpace, json: bool) -> Result<()> {
    let check = space.verify_audit()?;
    // With --json the check is the answer, intact or not; then the failure.
    if json || check.is_intact() {
        say(json, &check, |check| {
            format!(
                "the audit log is intact: {} entries, each chained to the one before\nlast entry's hash: {}\n(note it down: if it ever changes for entries you have seen, the log was rewritten)",
                check.entries,
                check.head
            )
        })?;
    }
    if !check.is_intact() {
        bail!("the audit log was tampered with: {}", check.problems.join("; "));
    }
    Ok(())
}

/// `2026-03-01` (midnight UTC) or an RFC 3339 time, as ms since the epoch.
fn parse_time(text: &str) -> Result<u64> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let t = match time::OffsetDateTime::parse(text, rfc3339) {
        Ok(t) => t,
        Err(_) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format)
                .with_context(|| {
                    format!("`{text}` is not a date (2026-03-01) or an RFC 3339 time (2026-03-01T12:00:00Z)")
                })?
                .midnight()
                .assume_utc()
        }
    };
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).with_context(|| format!("`{text}` is before 1970"))
}

/// An import's summary, and with `--partial` every record left out. In
/// JSON, `--partial` adds `left_out` (a list of `{location, reason}`) to the
/// importer's summary.
fn print_import(name: &str, importer: &str, imported: &Imported, partial: bool, json: bool) -> Result<()> {
    let draw = || {
        let mut text = format!("imported {} with {importer}: {}", safe(name), terminal::json(&imported.summary));
        if !imported.left_out.is_empty() {
            text += &format!("\nleft out {} broken record(s), as you asked (--partial):", imported.left_out.len());
            for record in &imported.left_out {
                text += &format!("\n  {}: {}", safe(&record.location), safe(&record.reason));
            }
        }
        text
    };
    if !partial || !json {
        return say_json_text(json, &imported.summary, draw);
    }
    let mut summary: serde_json::Value = serde_json::from_str(&imported.summary)?;
    let left_out = serde_json::to_value(&imported.left_out)?;
    match summary.as_object_mut() {
        Some(object) => {
            object.insert("left_out".into(), left_out);
        }
        None => summary = serde_json::json!({ "summary": summary, "left_out": left_out }),
    }
    say_json_text(json, &summary.to_string(), draw)
}
