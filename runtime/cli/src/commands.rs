//! One function per verb. Each prints what it did for a person, or JSON
//! with `--json`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use domicile_host::{ImportMode, Imported};
use domicile_manifest::{AppId, Doctype, Grants, Manifest};
use domicile_package::{PublicKey, SecretKey};
use domicile_store::{AuditFilter, Author, Change, DocId, InstalledApp, Query, Quota, ResidentSpace, Selector, Sort};
use serde_json::json;

use crate::home::Home;
use crate::terminal::{self, safe};
use crate::{AuditAction, CatalogueCommand, Cli, Command, ResidentCommand, TrustCommand};

pub async fn execute(cli: Cli) -> Result<()> {
    let Cli { home, resident, json, command } = cli;
    let resident = resident.as_deref();
    // Commands that need no home.
    match &command {
        Command::Demo { dir, serve } => return crate::demo::run(dir.clone(), *serve).await,
        Command::Bench { invocations, documents, rows, spin } => {
            let options = crate::bench::BenchOptions {
                invocations: *invocations,
                documents: *documents,
                rows: *rows,
                spin: *spin,
                json,
            };
            return crate::bench::run(options).await;
        }
        Command::BenchServer { residents, runs } => {
            let options = crate::loadtest::LoadOptions { residents: *residents, runs: *runs, json };
            return crate::loadtest::run(options).await;
        }
        Command::Keygen { out } => return keygen(out, json),
        Command::Pack { manifest, component, key, out } => return pack(manifest, component, key, out, json),
        Command::Catalogue(CatalogueCommand::Build { dir, key, name }) => {
            return crate::consent::build(dir, key, name, json)
        }
        // Checking against an explicit key needs no home.
        Command::Verify { package, key: Some(key) } => return verify(None, package, Some(key), json),
        _ => {}
    }
    let dir = home.context("no home given: pass --home DIR or set DOMICILE_HOME")?;
    if let Command::Init { name } = &command {
        Home::create(&dir, &name.parse()?)?;
        println!("created a domicile home in {} for resident `{name}`", dir.display());
        return Ok(());
    }
    if let Command::Verify { package, key: None } = &command {
        return verify(Some(&dir), package, None, json);
    }
    if let Command::Restore { archive, r#as } = &command {
        let home = Home::open_or_create(&dir)?;
        return crate::consent::restore(&home, archive, r#as.as_deref(), json);
    }
    let home = Home::open(&dir)?;
    match command {
        Command::Demo { .. }
        | Command::Bench { .. }
        | Command::BenchServer { .. }
        | Command::Keygen { .. }
        | Command::Pack { .. }
        | Command::Init { .. }
        | Command::Verify { .. } => {
            unreachable!("handled above")
        }
        Command::Resident(ResidentCommand::Add { name, password_stdin }) => {
            crate::serve::add_resident(&home, &name, password_stdin, json)?
        }
        Command::Resident(ResidentCommand::Password { name, password_stdin }) => {
            crate::serve::set_password(&home, &name, password_stdin, json)?
        }
        Command::OperatorToken => crate::serve::operator_token(&home, json)?,
        Command::Serve { addr } => return crate::serve::serve(home, addr).await,
        Command::Resident(ResidentCommand::List) => {
            let residents = home.store.residents()?;
            if json {
                println!("{}", json!(residents.iter().map(|r| r.as_str()).collect::<Vec<_>>()));
            } else {
                residents.iter().for_each(|r| println!("{r}"));
            }
        }
        Command::Trust(TrustCommand::Add { key, name, roles }) => {
            let key = PublicKey::from_text_or_file(&key)?;
            let mut trust = home.trust()?;
            trust.add(key, &name, &roles)?;
            let roles =
                trust.find(&key).map(|k| k.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" and "));
            println!("trusted key {key} as {}", roles.unwrap_or_default());
        }
        Command::Trust(TrustCommand::List) => {
            let trust = home.trust()?;
            if json {
                println!("{}", serde_json::to_string(trust.keys())?);
            } else if trust.keys().is_empty() {
                println!("no trusted keys: add one with `domicile trust add KEY`");
            } else {
                for k in trust.keys() {
                    let roles = k.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ");
                    let state = match k.revoked_at_ms {
                        Some(at) => format!("REVOKED {}", format_ms(at)),
                        None => roles,
                    };
                    println!("{}  {}  ({state})", k.key, k.name);
                }
            }
        }
        Command::Trust(TrustCommand::Revoke { key }) => crate::consent::revoke_key(&home, &key)?,
        Command::Install { app, version, grant } => {
            crate::consent::install(&home, &home.resident(resident)?, &app, version.as_ref(), &grant, json)?
        }
        Command::Update { app, package, grant } => {
            crate::consent::update(&home, &home.resident(resident)?, app.as_deref(), package.as_deref(), &grant, json)?
        }
        Command::Enable { app } => {
            let space = home.resident(resident)?;
            let id: AppId = app.parse()?;
            space.release_app(&id)?;
            println!("{id} can run again: you chose to keep it although its publisher key was revoked");
        }
        Command::Catalogue(command) => crate::consent::catalogue(&home, command, json)?,
        Command::Outbox => crate::outbox::list(&home.resident(resident)?, json)?,
        Command::Approve { id } => crate::outbox::approve(&home.resident(resident)?, id, json)?,
        Command::Deny { id } => crate::outbox::deny(&home.resident(resident)?, id, json)?,
        Command::Notifications => crate::outbox::notifications(&home.resident(resident)?, json)?,
        Command::Apps => apps(&home, &home.resident(resident)?, json)?,
        Command::Grant { app, grants } => change_grants(&home.resident(resident)?, &app, &grants, true, json)?,
        Command::Revoke { app, grants } => change_grants(&home.resident(resident)?, &app, &grants, false, json)?,
        Command::Uninstall { app, purge_data } => {
            let space = home.resident(resident)?;
            let id: AppId = app.parse()?;
            home.runtime()?.uninstall(&space, &id)?;
            if purge_data {
                let n = space.purge_created_by(&id, crate::home::clock_from_env()?.now_ms())?;
                println!("uninstalled {app} and deleted the {n} documents it had created");
            } else {
                println!("uninstalled {app}; the documents it wrote are still yours");
            }
        }
        Command::Import { importer, file, partial } => {
            let space = home.resident(resident)?;
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mode = if partial { ImportMode::ValidRecords } else { ImportMode::AllOrNothing };
            let imported = home.runtime()?.run_import(&space, &importer.parse()?, &name, &bytes, mode).await?;
            print_import(&name, &importer, &imported, partial, json)?;
        }
        Command::Run { app, input } => {
            serde_json::from_str::<serde_json::Value>(&input).context("--input is not JSON")?;
            let space = home.resident(resident)?;
            let output = home.runtime()?.run_service(&space, &app.parse()?, &input).await?;
            println!("{}", terminal::json(&output));
        }
        Command::Docs { doctype, selector, sort, limit } => {
            docs(&home.resident(resident)?, &doctype, &selector, sort.as_deref(), limit, json)?
        }
        Command::Changes { doctype, since } => {
            for c in home.resident(resident)?.changes_since(&doctype.parse()?, since, usize::MAX)? {
                if json {
                    println!("{}", serde_json::to_string(&c)?);
                } else {
                    println!("{}  {}  {:?}  {}", c.seq, format_ms(c.at_ms), c.op, safe(c.id.as_str()));
                }
            }
        }
        Command::Export { out } => {
            let space = home.resident(resident)?;
            if out.exists() {
                bail!("{} already exists; choose another --out", out.display());
            }
            let file = std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let at = crate::home::clock_from_env()?.now_ms();
            let summary = space.export(std::io::BufWriter::new(file), at)?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!(
                    "exported {} documents, {} apps, {} audit entries of `{}` to {}",
                    summary.documents,
                    summary.apps,
                    summary.audit_entries,
                    space.resident(),
                    out.display()
                );
            }
        }
        Command::Restore { .. } => unreachable!("handled above"),
        Command::Put { doctype, id, body, jsonl } => {
            let space = home.resident(resident)?;
            let doctype: Doctype = doctype.parse()?;
            if jsonl {
                put_lines(&space, &doctype)?;
            } else {
                let body: serde_json::Value =
                    serde_json::from_str(body.as_deref().unwrap_or_default()).context("the body is not JSON")?;
                println!("{}", put_one(&space, &doctype, id.as_deref(), body)?);
            }
        }
        Command::Delete { doctype, id } => {
            let change = Change::Delete { doctype: doctype.parse()?, id: id.parse()? };
            home.resident(resident)?.commit(
                &[change],
                &Author::Resident,
                crate::home::clock_from_env()?.now_ms(),
                &[],
            )?;
            println!("deleted {id}");
        }
        Command::Check => {
            let report = home.resident(resident)?.verify()?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            if !report.is_consistent() {
                bail!("the store is inconsistent: {}", report.problems.join("; "));
            }
            if !json {
                println!("consistent: {} documents, {} index entries", report.documents, report.index_entries);
            }
        }
        Command::Quota { max_documents, max_bytes } => {
            let space = home.resident(resident)?;
            if max_documents.is_some() || max_bytes.is_some() {
                space.set_quota(&Quota { max_documents, max_bytes })?;
            }
            let (usage, quota) = (space.usage()?, space.quota()?);
            if json {
                println!("{}", json!({ "usage": usage, "quota": quota }));
            } else {
                let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
                println!(
                    "{} documents (limit {}), {} bytes (limit {})",
                    usage.documents,
                    show(quota.max_documents),
                    usage.bytes,
                    show(quota.max_bytes)
                );
            }
        }
        Command::Audit { action: Some(AuditAction::Verify), .. } => audit_verify(&home.resident(resident)?, json)?,
        Command::Audit { action: None, app, doctype, since, until, summary } => {
            let filter = AuditFilter {
                app: app.map(|a| a.parse()).transpose()?,
                doctype: doctype.map(|d| d.parse()).transpose()?,
                since_ms: since.as_deref().map(parse_time).transpose()?,
                until_ms: until.as_deref().map(parse_time).transpose()?,
            };
            audit(&home.resident(resident)?, &filter, summary, json)?
        }
        Command::Logs { app } => {
            let app: Option<AppId> = app.map(|a| a.parse()).transpose()?;
            for e in home.resident(resident)?.app_log(app.as_ref())? {
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!("{}  {:<5}  {}  {}", format_ms(e.at_ms), safe(&e.level), e.app, safe(&e.message));
                }
            }
        }
    }
    Ok(())
}

fn keygen(prefix: &Path, json: bool) -> Result<()> {
    let key = SecretKey::generate();
    let secret = with_extension(prefix, "key");
    let public = with_extension(prefix, "pub");
    if public.exists() {
        bail!("{} already exists; choose another --out", public.display());
    }
    key.save(&secret)?;
    std::fs::write(&public, format!("{}\n", key.public()))
        .with_context(|| format!("cannot write {}", public.display()))?;
    if json {
        println!(
            "{}",
            json!({ "public_key": key.public().to_string(), "secret_key_file": secret, "public_key_file": public })
        );
    } else {
        println!(
            "secret key: {} (keep it private)\npublic key: {}\n  {}",
            secret.display(),
            public.display(),
            key.public()
        );
    }
    Ok(())
}

fn with_extension(prefix: &Path, ext: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn pack(manifest: &Path, component: &Path, key: &Path, out: &Path, json: bool) -> Result<()> {
    let manifest_bytes = std::fs::read(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    // Catch a bad manifest now rather than at every resident's install.
    let parsed = Manifest::from_bytes(&manifest_bytes).with_context(|| manifest.display().to_string())?;
    let component_bytes = std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    if !component_bytes.starts_with(b"\0asm") {
        bail!("{} is not a WebAssembly file", component.display());
    }
    let key = SecretKey::load(key)?;
    let package = domicile_package::seal(&manifest_bytes, &component_bytes, &key)?;
    if out.exists() {
        bail!("{} already exists; remove it or choose another --out", out.display());
    }
    std::fs::write(out, &package).with_context(|| format!("cannot write {}", out.display()))?;
    if json {
        println!(
            "{}",
            json!({ "app": parsed.id.as_str(), "version": parsed.version.to_string(), "publisher": key.public().to_string(), "out": out })
        );
    } else {
        println!("packed {} {} signed by {} into {}", parsed.id, parsed.version, key.public(), out.display());
    }
    Ok(())
}

/// `domicile verify PACKAGE`: against `--key`, or else the home's trust store.
fn verify(home_dir: Option<&Path>, package: &Path, key: Option<&str>, json: bool) -> Result<()> {
    let bytes = std::fs::read(package).with_context(|| format!("cannot read {}", package.display()))?;
    let sealed = domicile_package::unseal(&bytes)?;
    let verified = match (key, home_dir) {
        (Some(key), _) => sealed.verify_with(&PublicKey::from_text_or_file(key)?)?,
        (None, Some(dir)) => sealed.verify(&Home::open(dir)?.trust()?)?,
        (None, None) => bail!("verify against what? pass --key KEY, or --home DIR to use its trust store"),
    };
    let manifest = Manifest::from_bytes(verified.manifest_bytes())?;
    if json {
        println!(
            "{}",
            json!({ "valid": true, "app": manifest.id.as_str(), "version": manifest.version.to_string(), "publisher": verified.publisher().to_string(), "component_sha256": verified.component_digest_hex() })
        );
    } else {
        println!(
            "{}: valid signature by {} on {} {}",
            package.display(),
            verified.publisher(),
            manifest.id,
            manifest.version
        );
    }
    Ok(())
}

/// Asks, for each permission, whether to grant it.
pub(crate) fn prompt_grants(manifest: &Manifest) -> Result<Grants> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("no grants given and no terminal to ask on: pass --grant all, or --grant DOCTYPE:ACCESS for each permission to grant");
    }
    let mut grants = Grants::default();
    let mut lines = stdin.lock().lines();
    for p in &manifest.permissions {
        for access in p.access.iter() {
            print!("Allow {} to {access} your {}? ({})  [y/N] ", safe(&manifest.name), p.doctype, p.purpose);
            std::io::stdout().flush()?;
            let answer = lines.next().transpose()?.unwrap_or_default();
            if matches!(answer.trim(), "y" | "Y" | "yes") {
                grants.extend(&Grants::from_specs(manifest, &[format!("{}:{access}", p.doctype)])?);
            }
        }
    }
    Ok(grants)
}

pub(crate) fn app_json(app: &InstalledApp) -> serde_json::Value {
    json!({
        "id": app.manifest.id.as_str(),
        "name": app.manifest.name,
        "version": app.manifest.version.to_string(),
        "world": app.manifest.world.to_string(),
        "publisher": app.publisher,
        "grants": app.grants,
        "held": app.held,
    })
}

fn apps(home: &Home, space: &ResidentSpace, json: bool) -> Result<()> {
    let apps = space.apps()?;
    let updates = crate::consent::available_updates(home, &apps);
    if json {
        let list: Vec<serde_json::Value> = apps
            .iter()
            .map(|app| {
                let mut v = app_json(app);
                v["update_available"] = json!(updates.get(app.id()).map(|v| v.to_string()));
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    if apps.is_empty() {
        println!("no apps installed");
    }
    for app in apps {
        println!(
            "{}  {}  {}  ({})\n  granted: {}",
            app.manifest.id,
            app.manifest.version,
            safe(&app.manifest.name),
            app.manifest.world,
            app.grants
        );
        if let Some(hold) = &app.held {
            println!(
                "  ON HOLD: {} (`domicile uninstall {}` or `domicile enable {}`)",
                safe(&hold.reason),
                app.id(),
                app.id()
            );
        }
        if let Some(version) = updates.get(app.id()) {
            println!("  update available: {version} (`domicile update {}`)", app.id());
        }
    }
    Ok(())
}

fn change_grants(space: &ResidentSpace, app: &str, specs: &[String], add: bool, json: bool) -> Result<()> {
    let id: AppId = app.parse()?;
    let installed = space.app(&id)?;
    let mut grants = installed.grants.clone();
    if add {
        grants.extend(&Grants::from_specs(&installed.manifest, specs)?);
    } else {
        grants.revoke(&installed.manifest, specs)?;
    }
    space.set_grants(&id, &grants)?;
    if json {
        println!("{}", json!({ "app": id.as_str(), "grants": grants }));
    } else {
        println!("{id} is now granted: {grants}");
    }
    Ok(())
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
                println!("{}  {}", safe(doc.id.as_str()), terminal::json(&doc.body.to_string()));
            }
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(all));
    } else if shown == 0 {
        println!("no {doctype} documents match");
    }
    Ok(())
}

/// Writes one document as the resident; returns its id once it is on disk.
fn put_one(space: &ResidentSpace, doctype: &Doctype, id: Option<&str>, body: serde_json::Value) -> Result<DocId> {
    let id = match id {
        Some(id) => id.parse()?,
        None => space.id_for(doctype, &body)?,
    };
    let change = Change::Put { doctype: doctype.clone(), id: id.clone(), body };
    space.commit(&[change], &Author::Resident, crate::home::clock_from_env()?.now_ms(), &[])?;
    Ok(id)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PutLine {
    id: Option<String>,
    body: serde_json::Value,
}

/// `put --jsonl`: one durable write per line, acknowledged on stdout.
fn put_lines(space: &ResidentSpace, doctype: &Doctype) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.with_context(|| format!("line {} is not text", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let put: PutLine = serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?;
        let id = put_one(space, doctype, put.id.as_deref(), put.body).with_context(|| format!("line {}", n + 1))?;
        writeln!(out, "ok {id}")?;
        out.flush()?;
    }
    Ok(())
}

fn audit(space: &ResidentSpace, filter: &AuditFilter, summary: bool, json: bool) -> Result<()> {
    if summary {
        let groups = space.audit_summary(filter)?;
        if json {
            println!("{}", serde_json::to_string(&groups)?);
        } else if groups.is_empty() {
            println!("no app has accessed your data in that period");
        }
        for g in groups.iter().filter(|_| !json) {
            println!("{}  ({} to {})", safe(&g.sentence()), format_ms(g.first_ms), format_ms(g.last_ms));
        }
        return Ok(());
    }
    let entries = space.audit(filter)?;
    if json {
        println!("{}", serde_json::to_string(&entries)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("no app has accessed your data");
    }
    for e in entries {
        let outcome = match e.outcome {
            domicile_store::Outcome::Allowed => "allowed",
            domicile_store::Outcome::Denied => "DENIED",
        };
        let what = match &e.destination {
            Some(d) => format!("to {}", safe(d)),
            None => format!("{}  {} doc(s)", safe(&e.doctype), e.documents),
        };
        println!(
            "{:>5}  {}  {:<7}  {}@{}  {:<6}  {what}",
            e.seq,
            format_ms(e.at_ms),
            outcome,
            e.app,
            safe(&e.app_version),
            e.operation.as_str()
        );
    }
    Ok(())
}

fn audit_verify(space: &ResidentSpace, json: bool) -> Result<()> {
    let check = space.verify_audit()?;
    if json {
        println!("{}", serde_json::to_string(&check)?);
    }
    if !check.is_intact() {
        bail!("the audit log was tampered with: {}", check.problems.join("; "));
    }
    if !json {
        println!(
            "the audit log is intact: {} entries, each chained to the one before\nlast entry's hash: {}\n(note it down: if it ever changes for entries you have seen, the log was rewritten)",
            check.entries,
            check.head
        );
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

/// Milliseconds since the epoch, as `2026-03-01 12:00:00` UTC.
pub fn format_ms(ms: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// An import's summary, and with `--partial` every record left out. In
/// JSON, `--partial` adds `left_out` (a list of `{location, reason}`) to the
/// importer's summary.
fn print_import(name: &str, importer: &str, imported: &Imported, partial: bool, json: bool) -> Result<()> {
    if json {
        if !partial {
            println!("{}", terminal::json(&imported.summary));
            return Ok(());
        }
        let mut summary: serde_json::Value = serde_json::from_str(&imported.summary)?;
        let left_out = serde_json::to_value(&imported.left_out)?;
        match summary.as_object_mut() {
            Some(object) => {
                object.insert("left_out".into(), left_out);
            }
            None => summary = serde_json::json!({ "summary": summary, "left_out": left_out }),
        }
        println!("{}", terminal::json(&summary.to_string()));
        return Ok(());
    }
    println!("imported {} with {importer}: {}", safe(name), terminal::json(&imported.summary));
    if !imported.left_out.is_empty() {
        println!("left out {} broken record(s), as you asked (--partial):", imported.left_out.len());
        for record in &imported.left_out {
            println!("  {}: {}", safe(&record.location), safe(&record.reason));
        }
    }
    Ok(())
}
