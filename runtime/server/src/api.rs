//! The resident's API, `/api/v1`: what the CLI does for a resident, as
//! JSON over HTTP. Every handler but sign-in takes a [`Resident`] and works
//! in that resident's space only.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, Query, State as Extract};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use domicile_home::{Home, HomeError, PackageSource, Password, UpdateOutcome};
use domicile_host::{HostError, ImportMode};
use domicile_manifest::{AppId, Doctype, Grants};
use domicile_store::{AuditFilter, InstalledApp, Query as DocQuery, ResidentSpace, Selector, Sort};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{cookie, Resident, SESSION_COOKIE};
use crate::error::ApiError;
use crate::State;

type Shared = Extract<Arc<State>>;
type ApiResult<T = Json<Value>> = Result<T, ApiError>;

/// Documents one page of `GET /docs/{doctype}` returns at most.
const MAX_PAGE: u64 = 1000;

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/session", get(session).post(sign_in).delete(sign_out))
        .route("/password", post(change_password))
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route("/catalogue", get(catalogue))
        .route("/catalogue/{app}", get(catalogue_app))
        .route("/campaigns", get(campaigns))
        .route("/campaigns/{id}", get(campaign))
        .route("/campaigns/{id}/join", post(join_campaign))
        .route("/campaigns/{id}/leave", post(leave_campaign))
        .route("/campaigns/{id}/result", post(fetch_campaign_result))
        .route("/apps", get(apps).post(install))
        .route("/apps/{app}", get(app).delete(uninstall))
        .route("/apps/{app}/grants", post(grant))
        .route("/apps/{app}/revoke", post(revoke))
        .route("/apps/{app}/update", post(update))
        .route("/apps/{app}/enable", post(enable))
        .route("/apps/{app}/triggers", post(switch_triggers))
        .route("/apps/{app}/run", post(run))
        .route("/apps/{app}/import", post(import))
        .route("/imports", get(imports))
        .route("/doctypes", get(doctypes))
        .route("/docs/{doctype}", get(docs).post(put_document))
        .route("/docs/{doctype}/{id}", delete(delete_document))
        .route("/audit", get(audit))
        .route("/audit/summary", get(audit_summary))
        .route("/audit/verify", get(audit_verify))
        .route("/outbox", get(outbox))
        .route("/outbox/{id}/approve", post(approve))
        .route("/outbox/{id}/deny", post(deny))
        .route("/notifications", get(notifications))
        .route("/usage", get(usage))
        .route("/export", get(export))
}

fn parse_app(app: &str) -> Result<AppId, ApiError> {
    app.parse().map_err(|e| ApiError::BadRequest(format!("`{app}` is not an app id: {e}")))
}

// ---- signing in ----------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    name: String,
    password: String,
}

/// Longer names or passwords are refused before any work (or memory) is spent on them.
const MAX_NAME_BYTES: usize = 128;

async fn sign_in(
    Extract(state): Shared,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    Json(form): Json<SignIn>,
) -> ApiResult<Response> {
    if form.name.len() > MAX_NAME_BYTES || form.password.len() > domicile_home::MAX_PASSWORD_BYTES {
        return Err(ApiError::WrongCredentials);
    }
    state.clients.attempt(client.ip())?;
    state.sessions.check_throttle(&form.name)?;
    // In a cluster, only the node holding the resident checks their
    // password: another node's copy of the home may be stale.
    if state.cluster.is_some() {
        let name = form.name.parse().map_err(|_| ApiError::WrongCredentials)?;
        crate::cluster::check_holds(&state, &name).await.map_err(|_| ApiError::WrongCredentials)?;
    }
    // Bounded: argon2's memory is per hash in progress.
    let _permit = state.password_check_permit().await?;
    let checker = state.clone();
    let name = form.name.clone();
    // argon2 takes tens of milliseconds of CPU on purpose: not on the async threads.
    let resident = tokio::task::spawn_blocking(move || checker.home.accounts().sign_in(&name, &form.password)).await?;
    state.sessions.record_sign_in(&form.name, resident.is_some());
    let resident = resident.ok_or(ApiError::WrongCredentials)?;
    let (cookie, csrf) = state.sessions.open(resident.clone()).await?;
    let set_cookie = format!(
        "{SESSION_COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        state.config.session_ttl.as_secs(),
        if state.config.secure_cookies { "; Secure" } else { "" }
    );
    let mut response = Json(json!({ "resident": resident.as_str(), "csrf": csrf })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&set_cookie).expect("cookie is ASCII"));
    Ok(response)
}

/// Who is signed in, and the CSRF token the page must send back.
async fn session(resident: Resident) -> ApiResult {
    Ok(Json(json!({ "resident": resident.name.as_str(), "csrf": resident.csrf })))
}

async fn sign_out(Extract(state): Shared, headers: HeaderMap, _resident: Resident) -> ApiResult<Response> {
    if let Some(cookie) = cookie(&headers, SESSION_COOKIE) {
        state.sessions.close(cookie).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("domicile_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    current: String,
    new: String,
}

/// Changing the password ends every session of the resident (this one too).
async fn change_password(Extract(state): Shared, resident: Resident, Json(form): Json<NewPassword>) -> ApiResult {
    let change = crate::cluster::AccountChange::begin(&state, &resident.name);
    let worker = state.clone();
    let name = resident.name.clone();
    tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        if worker.home.accounts().sign_in(name.as_str(), &form.current).is_none() {
            return Err(ApiError::BadRequest("the current password is wrong".into()));
        }
        worker.home.set_password(&name, Password::Given(form.new))?;
        Ok(())
    })
    .await??;
    change.copy_to_cluster(&state).await?;
    state.sessions.close_all_of(&resident.name).await?;
    Ok(Json(json!({ "changed": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    label: String,
}

async fn create_token(Extract(state): Shared, resident: Resident, Json(form): Json<NewToken>) -> ApiResult {
    let change = crate::cluster::AccountChange::begin(&state, &resident.name);
    let (info, secret) = state.home.create_token(&resident.name, &form.label)?;
    change.copy_to_cluster(&state).await?;
    if let Some(node) = &state.cluster {
        node.cluster.index_token(&domicile_home::sha256_hex(&secret), &resident.name).await?;
    }
    Ok(Json(json!({ "token": secret, "id": info.id, "label": info.label, "created_ms": info.created_ms })))
}

async fn tokens(Extract(state): Shared, resident: Resident) -> ApiResult {
    Ok(Json(json!(state.home.accounts().tokens(&resident.name))))
}

async fn revoke_token(Extract(state): Shared, resident: Resident, Path(id): Path<String>) -> ApiResult {
    let digest = state.home.accounts().token_sha256(&resident.name, &id);
    let change = crate::cluster::AccountChange::begin(&state, &resident.name);
    if !state.home.revoke_token(&resident.name, &id)? {
        return Err(ApiError::NotFound(format!("you have no API token `{id}`")));
    }
    change.copy_to_cluster(&state).await?;
    if let (Some(node), Some(digest)) = (&state.cluster, digest) {
        node.cluster.unindex_token(&digest).await?;
    }
    Ok(Json(json!({ "revoked": id })))
}

// ---- catalogue and apps --------------------------------------------------

/// The apps of the home's catalogues, each with what its latest version
/// asks for (and why, in the words the resident consents to), and whether
/// the resident has it installed.
/// An app whose package does not verify, or is not the app its listing
/// says, is not offered: it is named under `unusable_apps` with the reason.
/// The home's campaigns, each checked again against the keys trusted for
/// campaigns now (one that no longer verifies says why).
async fn campaigns(Extract(state): Shared, _: Resident) -> ApiResult {
    let listed = tokio::task::spawn_blocking(move || state.home.campaigns()).await??;
    Ok(Json(json!({ "campaigns": listed })))
}

/// One campaign, with every term a resident consents to by joining it,
/// and where the resident stands with it.
async fn campaign(Extract(state): Shared, resident: Resident, Path(id): Path<String>) -> ApiResult {
    let space = resident.space.clone();
    let (campaign, participation) = tokio::task::spawn_blocking(move || -> ApiResult<_> {
        Ok((state.home.campaign(&id)?, state.home.participation(&space, &id)?))
    })
    .await??;
    Ok(Json(json!({ "terms": campaign.terms(), "campaign": campaign, "participation": participation })))
}

/// What a resident may add when joining a campaign (the body is optional).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Joining {
    /// Their neighbourhood, of the kind the campaign names.
    #[serde(default)]
    neighbourhood: Option<String>,
}

/// Joins a campaign: its app runs in the resident's space, and the
/// attested report goes to the campaign's leader through the outbox.
async fn join_campaign(
    Extract(state): Shared,
    resident: Resident,
    Path(id): Path<String>,
    joining: Option<Json<Joining>>,
) -> ApiResult {
    let neighbourhood = joining.and_then(|Json(j)| j.neighbourhood).filter(|n| !n.trim().is_empty());
    let neighbourhood = neighbourhood.as_deref().map(str::trim);
    Ok(Json(json!(state.home.join_campaign(&resident.space, &id, neighbourhood).await?)))
}

/// Brings a campaign's signed result into the participant's space.
async fn fetch_campaign_result(Extract(state): Shared, resident: Resident, Path(id): Path<String>) -> ApiResult {
    let doc = state.home.fetch_campaign_result(&resident.space, &id).await?;
    Ok(Json(json!({ "doctype": domicile_home::RESULT_DOCTYPE, "id": doc.as_str() })))
}

/// Leaves a campaign before its deadline: the report is withdrawn.
async fn leave_campaign(Extract(state): Shared, resident: Resident, Path(id): Path<String>) -> ApiResult {
    Ok(Json(json!(state.home.leave_campaign(&resident.space, &id).await?)))
}

async fn catalogue(Extract(state): Shared, resident: Resident) -> ApiResult {
    let space = resident.space.clone();
    let listing = tokio::task::spawn_blocking(move || -> ApiResult<Value> {
        let trust = state.home.trust()?;
        let installed = space.apps()?;
        let (mut apps, mut unusable, mut unusable_apps) = (Vec::new(), Vec::new(), Vec::new());
        for (source, opened) in state.home.catalogue_sources()?.open_all(&trust) {
            match opened {
                Ok(catalogue) => {
                    for listed in &catalogue.index().apps {
                        match catalogue.fetch(&listed.id, None, &trust) {
                            Ok(fetched) => {
                                let here = installed.iter().find(|a| a.id() == &listed.id);
                                apps.push(listed_json(&space, &catalogue.index().name, &fetched, here));
                            }
                            Err(e) => unusable_apps.push(json!({ "id": listed.id.as_str(), "error": e.to_string() })),
                        }
                    }
                }
                Err(e) => unusable.push(json!({ "name": source.name, "error": e.to_string() })),
            }
        }
        Ok(json!({ "apps": apps, "unusable_catalogues": unusable, "unusable_apps": unusable_apps }))
    })
    .await??;
    Ok(Json(listing))
}

/// Each permission with what the consent screen needs: the doctype in
/// words, and the fields a read can be narrowed to (the declared ones, or
/// the doctype's).
fn permissions_json(space: &ResidentSpace, permissions: &[domicile_manifest::Permission]) -> Value {
    let vocabulary = space.vocabulary();
    Value::Array(
        permissions
            .iter()
            .map(|p| {
                let fields = match &p.fields {
                    Some(declared) => declared.iter().map(|f| f.as_str().to_owned()).collect(),
                    None => vocabulary.fields(&p.doctype),
                };
                json!({
                    "doctype": p.doctype.as_str(),
                    "title": vocabulary.title(&p.doctype),
                    "access": p.access.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                    "fields": p.fields,
                    "choosable_fields": fields,
                    "purpose": p.purpose,
                })
            })
            .collect(),
    )
}

/// The consent screen's content: what the latest version's signed
/// manifest asks (never the index's summary of it, which only the
/// catalogue's key vouches for).
fn listed_json(
    space: &ResidentSpace,
    catalogue: &str,
    fetched: &domicile_package::Fetched<'_>,
    installed: Option<&InstalledApp>,
) -> Value {
    let (listed, m) = (fetched.app, &fetched.manifest);
    json!({
        "id": m.id.as_str(),
        "name": m.name,
        "description": m.description,
        "world": m.world.to_string(),
        "publisher": listed.publisher.to_string(),
        "catalogue": catalogue,
        "versions": listed.versions.iter().map(|v| v.version.to_string()).collect::<Vec<_>>(),
        "latest": m.version.to_string(),
        "permissions": permissions_json(space, &m.permissions),
        "scratch": m.scratch,
        "egress": m.egress,
        "triggers": m.triggers.iter().map(|t| json!({ "when": t.when(), "purpose": t.purpose.to_string() })).collect::<Vec<_>>(),
        "asks": m.describe_asks(),
        "installed": installed.map(|a| a.manifest.version.to_string()),
    })
}

async fn catalogue_app(Extract(state): Shared, resident: Resident, Path(app): Path<String>) -> ApiResult {
    let id = parse_app(&app)?;
    let worker = state.clone();
    let space = resident.space.clone();
    // Reading and verifying a package is blocking work.
    let shown = tokio::task::spawn_blocking(move || -> ApiResult<Value> {
        let trust = worker.home.trust()?;
        let catalogue = worker.home.catalogue_sources()?.find(&trust, &id)?;
        let fetched = catalogue.fetch(&id, None, &trust)?;
        let installed = space.apps()?.into_iter().find(|a| a.id() == &id);
        Ok(listed_json(&space, &catalogue.index().name, &fetched, installed.as_ref()))
    })
    .await??;
    Ok(Json(shown))
}

fn installed_json(home: &Home, space: &ResidentSpace, app: &InstalledApp, update: Option<&semver::Version>) -> Value {
    let m = &app.manifest;
    // A trigger's state that cannot be read shows as none, not as an error of the whole list.
    let triggers = home.triggers(space, Some(app.id())).unwrap_or_default();
    json!({
        "id": m.id.as_str(),
        "name": m.name,
        "description": m.description,
        "version": m.version.to_string(),
        "world": m.world.to_string(),
        "publisher": app.publisher,
        "installed_at_ms": app.installed_at_ms,
        "permissions": permissions_json(space, &m.permissions),
        "scratch": m.scratch,
        "egress": m.egress,
        "asks": m.describe_asks(),
        "grants": app.grants,
        "granted": app.grants.to_string(),
        "held": app.held,
        "update_available": update.map(|v| v.to_string()),
        "triggers": triggers,
    })
}

async fn apps(Extract(state): Shared, resident: Resident) -> ApiResult {
    let apps = resident.space.apps()?;
    let updates = state.home.available_updates(&apps);
    Ok(Json(Value::Array(
        apps.iter().map(|a| installed_json(&state.home, &resident.space, a, updates.get(a.id()))).collect(),
    )))
}

async fn app(Extract(state): Shared, resident: Resident, Path(app): Path<String>) -> ApiResult {
    let app = resident.space.app(&parse_app(&app)?)?;
    let updates = state.home.available_updates(std::slice::from_ref(&app));
    Ok(Json(installed_json(&state.home, &resident.space, &app, updates.get(app.id()))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Install {
    app: String,
    version: Option<semver::Version>,
    /// `DOCTYPE:ACCESS[,ACCESS][:FIELD,...]` specs; empty grants nothing.
    #[serde(default)]
    grants: Vec<String>,
    /// The triggers (numbered from 1) the resident lets run; the others start off.
    #[serde(default)]
    triggers: Vec<usize>,
}

/// Installs an app from the home's catalogues with the grants the resident
/// chose on the consent screen.
async fn install(Extract(state): Shared, resident: Resident, Json(form): Json<Install>) -> ApiResult {
    let _permit = state.heavy_work_permit(&resident.name)?;
    let id = parse_app(&form.app)?;
    let worker = state.clone();
    let space = resident.space.clone();
    let app = tokio::task::spawn_blocking(move || -> Result<InstalledApp, ApiError> {
        let source = PackageSource::Catalogue { app: id, version: form.version };
        let installing = worker.home.prepare_install(&space, source)?;
        let grants = Grants::from_specs(installing.manifest(), &form.grants)?;
        let count = installing.manifest().triggers.len();
        if let Some(n) = form.triggers.iter().find(|n| **n == 0 || **n > count) {
            return Err(ApiError::BadRequest(format!("the app has {count} trigger(s); there is no trigger {n}")));
        }
        let app = worker.home.install(&space, installing, grants)?;
        for n in (1..=count).filter(|n| !form.triggers.contains(n)) {
            worker.home.set_triggers_enabled(&space, app.id(), Some(n), false)?;
        }
        Ok(space.app(app.id())?)
    })
    .await??;
    Ok(Json(installed_json(&state.home, &resident.space, &app, None)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantSpecs {
    #[serde(default)]
    grants: Vec<String>,
}

async fn grant(
    Extract(state): Shared,
    resident: Resident,
    Path(app): Path<String>,
    Json(form): Json<GrantSpecs>,
) -> ApiResult {
    change_grants(&state, &resident, &app, &form.grants, true)
}

/// Takes back the named grants, or all of them when none are named.
async fn revoke(
    Extract(state): Shared,
    resident: Resident,
    Path(app): Path<String>,
    Json(form): Json<GrantSpecs>,
) -> ApiResult {
    change_grants(&state, &resident, &app, &form.grants, false)
}

fn change_grants(state: &State, resident: &Resident, app: &str, specs: &[String], add: bool) -> ApiResult {
    let id = parse_app(app)?;
    let grants = state.home.change_grants(&resident.space, &id, specs, add)?;
    Ok(Json(json!({ "app": id.as_str(), "grants": grants, "granted": grants.to_string() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerSwitch {
    /// As numbered in the app's `triggers` (from 1); all of them when absent.
    number: Option<usize>,
    enabled: bool,
}

/// Switches an app's trigger (or all of them) on or off.
async fn switch_triggers(
    Extract(state): Shared,
    resident: Resident,
    Path(app): Path<String>,
    Json(form): Json<TriggerSwitch>,
) -> ApiResult {
    let id = parse_app(&app)?;
    state.home.set_triggers_enabled(&resident.space, &id, form.number, form.enabled)?;
    Ok(Json(json!({ "app": id.as_str(), "triggers": state.home.triggers(&resident.space, Some(&id))? })))
}

#[derive(Deserialize)]
struct UninstallOptions {
    #[serde(default)]
    purge_data: bool,
}

async fn uninstall(
    Extract(state): Shared,
    resident: Resident,
    Path(app): Path<String>,
    Query(options): Query<UninstallOptions>,
) -> ApiResult {
    let id = parse_app(&app)?;
    let purged = state.home.uninstall(&resident.space, &id, options.purge_data)?;
    Ok(Json(json!({ "uninstalled": id.as_str(), "purged_documents": purged })))
}

async fn enable(Extract(state): Shared, resident: Resident, Path(app): Path<String>) -> ApiResult {
    let id = parse_app(&app)?;
    state.home.keep_held_app(&resident.space, &id)?;
    Ok(Json(json!({ "enabled": id.as_str() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateForm {
    /// What to grant of what the new version newly asks; absent, an update
    /// that asks for more waits for the resident.
    grants: Option<Vec<String>>,
}

async fn update(
    Extract(state): Shared,
    resident: Resident,
    Path(app): Path<String>,
    Json(form): Json<UpdateForm>,
) -> ApiResult {
    let _permit = state.heavy_work_permit(&resident.name)?;
    let id = parse_app(&app)?;
    let worker = state.clone();
    let space = resident.space.clone();
    let report = tokio::task::spawn_blocking(move || -> ApiResult<Value> {
        let outcome = worker.home.update(&space, &id, None, form.grants.as_deref())?;
        let mut report = serde_json::to_value(&outcome).map_err(|e| ApiError::Internal(e.to_string()))?;
        if let UpdateOutcome::Updated { grants, .. } = &outcome {
            report["granted"] = json!(grants.to_string());
        }
        Ok(report)
    })
    .await??;
    Ok(Json(report))
}

// ---- running apps --------------------------------------------------------

/// Counts the invocation's outcome and turns its error into an answer.
fn finish(state: &State, import: bool, started: Instant, result: Result<String, HomeError>) -> ApiResult {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(HomeError::Host(HostError::AppFailed { .. } | HostError::Trap { .. } | HostError::Limit { .. })) => {
            "app-failed"
        }
        Err(_) => "refused",
    };
    state.metrics.run(import, outcome, started.elapsed());
    let output = result?;
    // The host already checked the output is JSON.
    let value: Value = serde_json::from_str(&output).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({ "output": value })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunForm {
    #[serde(default = "empty_object")]
    input: Value,
}

fn empty_object() -> Value {
    json!({})
}

async fn run(
    Extract(state): Shared,
    resident: Resident,
    Path(app): Path<String>,
    Json(form): Json<RunForm>,
) -> ApiResult {
    let _permit = state.heavy_work_permit(&resident.name)?;
    let id = parse_app(&app)?;
    let started = Instant::now();
    let result = state.home.run(&resident.space, &id, &form.input.to_string()).await;
    finish(&state, false, started, result)
}

#[derive(Deserialize)]
struct ImportOptions {
    /// The export file's name: importers use its extension to tell formats apart.
    file: String,
    /// Import the valid records of a file with broken ones (the answer lists
    /// every record left out); by default one broken record refuses the file.
    #[serde(default)]
    partial: bool,
}

/// The body is the export file itself, as uploaded.
async fn import(
    Extract(state): Shared,
    resident: Resident,
    Path(app): Path<String>,
    Query(options): Query<ImportOptions>,
    request: axum::extract::Request,
) -> ApiResult {
    // Admitted before a byte of the file is read: a resident past their
    // allowance gets 429 without the server holding their upload.
    let _permit = state.heavy_work_permit(&resident.name)?;
    let id = parse_app(&app)?;
    let body = crate::read_upload(request, state.config.max_upload_bytes).await?;
    // Only the last path component: a browser may send a full path.
    let file_name = options.file.rsplit(['/', '\\']).next().unwrap_or_default().to_owned();
    let started = Instant::now();
    let mode = if options.partial { ImportMode::ValidRecords } else { ImportMode::AllOrNothing };
    let listed = state.imports.begin(&resident.name, &id, &file_name);
    let result = state.home.import(&resident.space, &id, &file_name, &body, mode, listed.progress.clone()).await;
    drop(listed);
    let left_out = result.as_ref().map(|done| done.left_out.clone()).unwrap_or_default();
    let Json(mut answer) = finish(&state, true, started, result.map(|done| done.summary))?;
    if options.partial {
        answer["left_out"] = serde_json::to_value(left_out).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(Json(answer))
}

/// The resident's imports under way, with how far each has got (see
/// [`crate::imports`]).
async fn imports(Extract(state): Shared, resident: Resident) -> ApiResult {
    Ok(Json(Value::Array(state.imports.of(&resident.name))))
}

// ---- the resident's data ---------------------------------------------------

/// The doctypes the resident has documents of: for each, how many, the
/// span of time they cover (from its indexed time field: `date`, `at` or
/// `timestamp`), and the installed importers that bring them (to import
/// the next file with).
async fn doctypes(resident: Resident) -> ApiResult {
    let space = resident.space.clone();
    let listed = tokio::task::spawn_blocking(move || -> ApiResult<Vec<Value>> {
        let counts = space.doctype_counts()?;
        let vocabulary = space.vocabulary();
        let apps = space.apps()?;
        let mut listed = Vec::new();
        for (name, count) in counts {
            let Ok(doctype) = name.parse::<Doctype>() else { continue };
            let importers: Vec<&str> = apps
                .iter()
                .filter(|a| a.manifest.world == domicile_manifest::World::Importer)
                .filter(|a| {
                    a.manifest
                        .permissions
                        .iter()
                        .any(|p| p.doctype == doctype && p.access.contains(domicile_manifest::Access::Write))
                })
                .map(|a| a.id().as_str())
                .collect();
            listed.push(json!({
                "doctype": name,
                "count": count,
                "title": vocabulary.title(&doctype),
                "span": span(&space, &doctype)?,
                "importers": importers,
            }));
        }
        Ok(listed)
    })
    .await??;
    Ok(Json(Value::Array(listed)))
}

/// The first and last values of `doctype`'s time field, read at both ends
/// of its index (two reads, however many documents): `null` for a doctype
/// without one.
fn span(space: &ResidentSpace, doctype: &Doctype) -> Result<Value, ApiError> {
    let indexes = space.vocabulary().indexes(doctype);
    let Some(field) = ["date", "at", "timestamp"].iter().find_map(|f| indexes.iter().find(|i| i.to_string() == *f))
    else {
        return Ok(Value::Null);
    };
    let end = |descending: bool| -> Result<Option<Value>, ApiError> {
        let sort = Some(Sort { field: field.clone(), descending });
        let query = DocQuery { doctype: doctype.clone(), selector: Selector::all(), sort, limit: Some(1) };
        Ok(space.query_all(query)?.pop().and_then(|d| field.lookup(&d.body).cloned()))
    };
    Ok(json!({ "field": field.to_string(), "first": end(false)?, "last": end(true)? }))
}

#[derive(Deserialize)]
struct DocsOptions {
    /// A selector as JSON, e.g. `{"mode": "bike"}`.
    #[serde(rename = "where")]
    selector: Option<String>,
    /// A field to order by; `-field` for descending.
    sort: Option<String>,
    limit: Option<u64>,
}

async fn docs(resident: Resident, Path(doctype): Path<String>, Query(options): Query<DocsOptions>) -> ApiResult {
    let doctype: Doctype = doctype.parse()?;
    let selector = Selector::parse(options.selector.as_deref().filter(|s| !s.trim().is_empty()).unwrap_or("{}"))?;
    let sort = options.sort.as_deref().filter(|s| !s.is_empty()).map(Sort::parse).transpose()?;
    let limit = options.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    // One more than shown tells whether there are more.
    let query = DocQuery { doctype, selector, sort, limit: Some(limit + 1) };
    let mut documents = resident.space.query_all(query)?;
    let more = documents.len() as u64 > limit;
    documents.truncate(limit as usize);
    let documents: Vec<Value> =
        documents.into_iter().map(|d| json!({ "id": d.id.as_str(), "body": d.body, "meta": d.meta })).collect();
    Ok(Json(json!({ "documents": documents, "more": more })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDocument {
    /// Without one, the doctype's natural key (or a new id) names it.
    id: Option<String>,
    body: Value,
}

/// Adds or replaces one of the resident's documents, as theirs.
async fn put_document(
    Extract(state): Shared,
    resident: Resident,
    Path(doctype): Path<String>,
    Json(form): Json<NewDocument>,
) -> ApiResult {
    let doctype: Doctype = doctype.parse()?;
    let id = form.id.map(|id| id.parse()).transpose().map_err(|e| ApiError::BadRequest(format!("{e}")))?;
    let id = state.home.put_document(&resident.space, &doctype, id, form.body)?;
    Ok(Json(json!({ "doctype": doctype.as_str(), "id": id.as_str() })))
}

async fn delete_document(
    Extract(state): Shared,
    resident: Resident,
    Path((doctype, id)): Path<(String, String)>,
) -> ApiResult {
    let doctype: Doctype = doctype.parse()?;
    let id = id.parse().map_err(|e| ApiError::BadRequest(format!("{e}")))?;
    state.home.delete_document(&resident.space, &doctype, id)?;
    Ok(Json(json!({ "deleted": true })))
}

#[derive(Deserialize)]
struct AuditOptions {
    app: Option<String>,
    doctype: Option<String>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
}

impl AuditOptions {
    fn filter(self) -> Result<AuditFilter, ApiError> {
        Ok(AuditFilter {
            app: self.app.filter(|a| !a.is_empty()).map(|a| parse_app(&a)).transpose()?,
            doctype: self.doctype.filter(|d| !d.is_empty()).map(|d| d.parse()).transpose()?,
            since_ms: self.since_ms,
            until_ms: self.until_ms,
        })
    }
}

async fn audit(resident: Resident, Query(options): Query<AuditOptions>) -> ApiResult {
    Ok(Json(json!(resident.space.audit(&options.filter()?)?)))
}

async fn audit_summary(resident: Resident, Query(options): Query<AuditOptions>) -> ApiResult {
    let groups = resident.space.audit_summary(&options.filter()?)?;
    Ok(Json(Value::Array(
        groups
            .iter()
            .map(|g| {
                let mut v = json!(g);
                v["sentence"] = json!(g.sentence());
                v
            })
            .collect(),
    )))
}

async fn audit_verify(resident: Resident) -> ApiResult {
    let check = resident.space.verify_audit()?;
    Ok(Json(json!({ "intact": check.is_intact(), "check": check })))
}

async fn outbox(resident: Resident) -> ApiResult {
    Ok(Json(json!(resident.space.outbox()?)))
}

/// Sends the item exactly as listed.
async fn approve(Extract(state): Shared, resident: Resident, Path(id): Path<u64>) -> ApiResult {
    Ok(Json(json!(state.home.approve_outbox(&resident.space, id).await?)))
}

async fn deny(Extract(state): Shared, resident: Resident, Path(id): Path<u64>) -> ApiResult {
    Ok(Json(json!(state.home.deny_outbox(&resident.space, id)?)))
}

async fn notifications(resident: Resident) -> ApiResult {
    Ok(Json(json!(resident.space.notifications()?)))
}

async fn usage(resident: Resident) -> ApiResult {
    Ok(Json(json!({ "usage": resident.space.usage()?, "quota": resident.space.quota()? })))
}

/// Everything of the resident, as the archive `domicile restore` reads.
async fn export(Extract(state): Shared, resident: Resident) -> ApiResult<Response> {
    let _permit = state.heavy_work_permit(&resident.name)?;
    let space: ResidentSpace = resident.space.clone();
    let worker = state.clone();
    let archive = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let mut archive = Vec::new();
        worker.home.export(&space, &mut archive)?;
        Ok(archive)
    })
    .await??;
    let disposition = format!("attachment; filename=\"domicile-{}.tar\"", resident.name);
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("resident names are ASCII")),
        ],
        archive,
    )
        .into_response())
}
