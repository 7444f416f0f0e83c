//! The operator's API, `/api/v1/admin`: create, disable and enable
//! residents, reset a password, set quotas, read usage figures. Nothing
//! here reads a resident's documents, apps' outputs or audit log.

use std::sync::Arc;

use axum::extract::{Path, State as Extract};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use domicile_store::{Quota, ResidentName};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Operator;
use crate::error::ApiError;
use crate::State;
use domicile_home::Password;

type Shared = Extract<Arc<State>>;

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/admin/residents", get(residents).post(add_resident))
        .route("/admin/residents/{name}", delete(remove_resident))
        .route("/admin/residents/{name}/disable", post(disable))
        .route("/admin/residents/{name}/enable", post(enable))
        .route("/admin/residents/{name}/password", post(reset_password))
        .route("/admin/residents/{name}/quota", put(set_quota))
        .route("/admin/restore", post(restore))
        .route("/admin/trust", get(trusted_keys).post(trust_key))
        .route("/admin/trust/{key}/revoke", post(revoke_key))
        .route("/admin/catalogues", post(add_catalogue))
        .route("/admin/campaigns", post(add_campaign))
        .route("/admin/campaign-attester", get(campaign_attester))
        .route("/admin/operator-token", post(new_operator_token))
}

/// A resident's name from the path. Whether they live here is each
/// operation's to check (an unknown resident is a 404 from all of them).
fn resident_name(name: &str) -> Result<ResidentName, ApiError> {
    name.parse().map_err(|e| ApiError::BadRequest(format!("{e}")))
}

/// A resident this node holds (always so on a single node), by the name in the path.
async fn held_resident(state: &State, name: &str) -> Result<ResidentName, ApiError> {
    let name = resident_name(name)?;
    crate::cluster::check_holds(state, &name).await?;
    Ok(name)
}

#[derive(Deserialize)]
struct Page {
    /// Residents whose name comes after this one.
    after: Option<String>,
    /// At most this many (default and cap 1,000): each listed resident's
    /// space is opened to read its usage.
    limit: Option<usize>,
}

/// Residents with their usage, in name order, a page at a time: counts
/// only. In a cluster, every live node's, each named with its node.
async fn residents(
    Extract(state): Shared,
    _: Operator,
    headers: axum::http::HeaderMap,
    axum::extract::Query(page): axum::extract::Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit.unwrap_or(1000).clamp(1, 1000);
    let after = page.after.unwrap_or_default();
    // In a cluster, the residents this node holds (not the copies it keeps
    // of others'), then, unless another node asked, every live node's.
    let held_here = match &state.cluster {
        Some(node) => Some(crate::cluster::held_here(node).await?),
        None => None,
    };
    let mut list = Vec::new();
    let names = state.home.store().residents()?.into_iter().filter(|n| n.as_str() > after.as_str());
    for name in names.filter(|n| held_here.as_ref().is_none_or(|held| held.contains(n))).take(limit) {
        let space = state.home.store().resident(&name)?;
        list.push(json!({
            "name": name.as_str(),
            "can_sign_in": state.home.accounts().is_enabled(&name),
            "has_password": state.home.accounts().has_account(&name),
            "usage": space.usage()?,
            "quota": space.quota()?,
            "apps": space.apps()?.len(),
            "node": state.cluster.as_ref().map(|node| node.me().as_str()),
        }));
    }
    if let Some(node) = &state.cluster {
        if !headers.contains_key(crate::cluster::FORWARDED_BY) {
            let query = format!("/api/v1/admin/residents?limit={limit}&after={after}");
            list.extend(crate::cluster::ask_every_other_node(node, &headers, &query).await?);
            list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            list.truncate(limit);
        }
    }
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewResident {
    name: String,
    /// Set by the operator, or generated and returned once.
    password: Option<String>,
    /// In a cluster, the node to place them on (default: the live node
    /// with the fewest residents); the request is forwarded to it.
    #[allow(dead_code)] // read by the cluster's routing, before the handler
    node: Option<String>,
}

async fn add_resident(
    Extract(state): Shared,
    _: Operator,
    Json(form): Json<NewResident>,
) -> Result<Json<Value>, ApiError> {
    let name: ResidentName = form.name.parse().map_err(|e| ApiError::BadRequest(format!("{e}")))?;
    let password = form.password.map_or(Password::Generate, Password::Given);
    let worker = state.clone();
    // argon2 takes tens of milliseconds of CPU on purpose: not on the async threads.
    let added = tokio::task::spawn_blocking(move || worker.home.add_resident(&name, password)).await??;
    place_here(&state, &added.name).await?;
    Ok(Json(
        json!({ "name": added.name.as_str(), "password": added.password, "node": state.cluster.as_ref().map(|n| n.me().as_str()) }),
    ))
}

/// In a cluster, places a resident just made on this node here. Another
/// node may have made one of that name meanwhile: the first to place them
/// keeps them, and this node removes its own.
async fn place_here(state: &State, resident: &ResidentName) -> Result<(), ApiError> {
    let Some(node) = &state.cluster else { return Ok(()) };
    if let Err(e) = node.cluster.place(resident, node.me()).await {
        state.home.remove_resident(resident)?;
        return Err(e.into());
    }
    // Their log starts with their space, and their account is copied.
    crate::cluster::attach(state, node, resident).await
}

/// Deletes a resident and everything of theirs; their sessions end.
async fn remove_resident(
    Extract(state): Shared,
    _: Operator,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = resident_name(&name)?;
    let placement = crate::cluster::check_holds(&state, &name).await?;
    let tokens = state.home.accounts().token_sha256s(&name);
    state.home.remove_resident(&name)?;
    state.sessions.close_all_of(&name).await?;
    if let (Some(node), Some(held)) = (&state.cluster, placement) {
        for token in tokens {
            node.cluster.unindex_token(&token).await?;
        }
        node.cluster.unplace(&held).await?;
        node.cluster.forget(&name).await?;
    }
    Ok(Json(json!({ "removed": name.as_str() })))
}

async fn disable(Extract(state): Shared, _: Operator, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let name = held_resident(&state, &name).await?;
    let change = crate::cluster::AccountChange::begin(&state, &name);
    state.home.set_sign_in(&name, false)?;
    change.copy_to_cluster(&state).await?;
    state.sessions.close_all_of(&name).await?;
    Ok(Json(json!({ "name": name.as_str(), "can_sign_in": false })))
}

async fn enable(Extract(state): Shared, _: Operator, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let name = held_resident(&state, &name).await?;
    let change = crate::cluster::AccountChange::begin(&state, &name);
    state.home.set_sign_in(&name, true)?;
    change.copy_to_cluster(&state).await?;
    Ok(Json(json!({ "name": name.as_str(), "can_sign_in": true })))
}

/// A new generated password; the resident's sessions end.
async fn reset_password(
    Extract(state): Shared,
    _: Operator,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = held_resident(&state, &name).await?;
    let change = crate::cluster::AccountChange::begin(&state, &name);
    let worker = state.clone();
    let account_name = name.clone();
    let password =
        tokio::task::spawn_blocking(move || worker.home.set_password(&account_name, Password::Generate)).await??;
    change.copy_to_cluster(&state).await?;
    state.sessions.close_all_of(&name).await?;
    Ok(Json(json!({ "name": name.as_str(), "password": password })))
}

async fn set_quota(
    Extract(state): Shared,
    _: Operator,
    Path(name): Path<String>,
    Json(quota): Json<Quota>,
) -> Result<Json<Value>, ApiError> {
    let name = held_resident(&state, &name).await?;
    let (usage, quota) = state.home.set_quota(&name, Some(quota))?;
    Ok(Json(json!({ "name": name.as_str(), "quota": quota, "usage": usage })))
}

#[derive(Deserialize)]
struct RestoreOptions {
    /// Restore under this name rather than the archive's.
    r#as: Option<String>,
}

/// Rebuilds a resident from an export archive (the request's body): all
/// of it checked, or nothing restored.
async fn restore(
    Extract(state): Shared,
    _: Operator,
    axum::extract::Query(options): axum::extract::Query<RestoreOptions>,
    request: axum::extract::Request,
) -> Result<Json<Value>, ApiError> {
    let name: Option<ResidentName> =
        options.r#as.map(|n| n.parse()).transpose().map_err(|e| ApiError::BadRequest(format!("{e}")))?;
    let body = crate::read_upload(request, state.config.max_upload_bytes).await?;
    let worker = state.clone();
    let (space, report) =
        tokio::task::spawn_blocking(move || worker.home.restore(body.as_ref(), name.as_ref())).await??;
    let restored = space.resident().clone();
    drop(space);
    // In a cluster the restored resident lives on the node that was asked.
    place_here(&state, &restored).await?;
    Ok(Json(json!({ "resident": restored.as_str(), "report": report })))
}

async fn trusted_keys(Extract(state): Shared, _: Operator) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.home.trust()?.keys())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    roles: Vec<domicile_package::Role>,
}

async fn trust_key(Extract(state): Shared, _: Operator, Json(form): Json<NewKey>) -> Result<Json<Value>, ApiError> {
    let key: domicile_package::PublicKey = form.key.parse()?;
    let trusted = state.home.trust_key(key, &form.name, &form.roles)?;
    crate::settings::trust_changed(&state).await?;
    // A catalogue or a campaign this key signs may verify now.
    if let Some(node) = &state.cluster {
        crate::settings::follow_catalogues(&state, node).await?;
        crate::settings::follow_campaigns(&state, node).await?;
    }
    Ok(Json(json!(trusted)))
}

/// Trusts the key for nothing from now on; every resident's apps it
/// signed are held (named in the answer by resident and app).
async fn revoke_key(Extract(state): Shared, _: Operator, Path(key): Path<String>) -> Result<Json<Value>, ApiError> {
    let key: domicile_package::PublicKey = key.parse()?;
    let held = state.home.revoke_key(&key)?;
    crate::settings::trust_changed(&state).await?;
    Ok(Json(json!({ "revoked": key.to_string(), "held": held })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueSource {
    /// A directory on the server holding a signed catalogue.
    dir: std::path::PathBuf,
}

async fn add_catalogue(
    Extract(state): Shared,
    _: Operator,
    Json(form): Json<CatalogueSource>,
) -> Result<Json<Value>, ApiError> {
    let catalogue = state.home.add_catalogue_source(&form.dir)?;
    if let Some(node) = &state.cluster {
        let files = catalogue.files();
        node.cluster.share_catalogue(&catalogue.index().name, catalogue.dir(), &files).await?;
    }
    Ok(Json(
        json!({ "name": catalogue.index().name, "apps": catalogue.index().apps.len(), "key": catalogue.key().to_string() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedCampaign {
    /// The campaign file, as its organiser signed it.
    campaign: String,
    /// Its signature (hexadecimal), as `domicile campaign sign` writes it.
    signature: String,
}

/// Adds a campaign an organiser signed, once a key the home trusts for
/// campaigns signed it.
async fn add_campaign(
    Extract(state): Shared,
    _: Operator,
    Json(form): Json<SignedCampaign>,
) -> Result<Json<Value>, ApiError> {
    let worker = state.clone();
    let (text, signature) = (form.campaign.clone(), form.signature.trim().to_owned());
    let campaign =
        tokio::task::spawn_blocking(move || worker.home.add_campaign(form.campaign.as_bytes(), &form.signature))
            .await??;
    let shared = domicile_cluster::SharedCampaign { id: campaign.id.clone(), campaign: text, signature };
    crate::settings::campaign_added(&state, shared).await?;
    Ok(Json(json!({ "added": campaign.id })))
}

/// This node's attester key, for the leaders of the campaigns its
/// residents join (`--attester KEY`).
async fn campaign_attester(Extract(state): Shared, _: Operator) -> Result<Json<Value>, ApiError> {
    let attester = tokio::task::spawn_blocking(move || state.home.campaign_attester()).await??;
    Ok(Json(json!({ "attester": attester.public_key() })))
}

/// A new operator token; the one this request used stops working.
async fn new_operator_token(Extract(state): Shared, _: Operator) -> Result<Json<Value>, ApiError> {
    let token = state.home.new_operator_token()?;
    if let Some(node) = &state.cluster {
        node.cluster.set_operator_token_sha256(&domicile_home::sha256_hex(&token)).await?;
    }
    Ok(Json(json!({ "token": token })))
}
