//! The operator's API, `/api/v1/admin`: create, disable and enable
//! residents, reset a password, set quotas, read usage figures. Nothing
//! here reads a resident's documents, apps' outputs or audit log.

use std::sync::Arc;

use axum::extract::{Path, State as Extract};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use domicile_store::{Quota, ResidentName, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::accounts::new_password;
use crate::auth::Operator;
use crate::error::ApiError;
use crate::State;

type Shared = Extract<Arc<State>>;

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/admin/residents", get(residents).post(add_resident))
        .route("/admin/residents/{name}/disable", post(disable))
        .route("/admin/residents/{name}/enable", post(enable))
        .route("/admin/residents/{name}/password", post(reset_password))
        .route("/admin/residents/{name}/quota", put(set_quota))
}

fn resident_name(state: &State, name: &str) -> Result<ResidentName, ApiError> {
    let name: ResidentName = name.parse().map_err(|e| ApiError::BadRequest(format!("{e}")))?;
    // Only residents of this home: the error does not depend on anything else.
    if !state.home.store.has_resident(&name) {
        return Err(StoreError::UnknownResident(name.to_string()).into());
    }
    Ok(name)
}

/// Every resident with their usage: counts only.
async fn residents(Extract(state): Shared, _: Operator) -> Result<Json<Value>, ApiError> {
    let mut list = Vec::new();
    for name in state.home.store.residents()? {
        let space = state.home.store.resident(&name)?;
        list.push(json!({
            "name": name.as_str(),
            "can_sign_in": state.accounts.is_enabled(&name),
            "has_password": state.accounts.has_account(&name),
            "usage": space.usage()?,
            "quota": space.quota()?,
            "apps": space.apps()?.len(),
        }));
    }
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewResident {
    name: String,
    /// Set by the operator, or generated and returned once.
    password: Option<String>,
}

async fn add_resident(
    Extract(state): Shared,
    _: Operator,
    Json(form): Json<NewResident>,
) -> Result<Json<Value>, ApiError> {
    let name: ResidentName = form.name.parse().map_err(|e| ApiError::BadRequest(format!("{e}")))?;
    let generated = form.password.is_none();
    let password = form.password.unwrap_or_else(new_password);
    crate::check_password(&password)?;
    state.home.store.create_resident(&name)?;
    let worker = state.clone();
    let account_name = name.clone();
    let hashed =
        tokio::task::spawn_blocking(move || worker.accounts.set_password(&account_name, &password).map(|()| password))
            .await?;
    let password = match hashed {
        Ok(p) => p,
        Err(e) => {
            // No half-made resident: without an account nobody could sign in.
            let _ = state.home.store.remove_resident(&name);
            return Err(e.into());
        }
    };
    Ok(Json(json!({ "name": name.as_str(), "password": generated.then_some(password) })))
}

async fn disable(Extract(state): Shared, _: Operator, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let name = resident_name(&state, &name)?;
    state.accounts.set_disabled(&name, true)?;
    state.sessions.close_all_of(&name);
    Ok(Json(json!({ "name": name.as_str(), "can_sign_in": false })))
}

async fn enable(Extract(state): Shared, _: Operator, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let name = resident_name(&state, &name)?;
    state.accounts.set_disabled(&name, false)?;
    Ok(Json(json!({ "name": name.as_str(), "can_sign_in": true })))
}

/// A new generated password; the resident's sessions end.
async fn reset_password(
    Extract(state): Shared,
    _: Operator,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = resident_name(&state, &name)?;
    let password = new_password();
    let worker = state.clone();
    let (account_name, secret) = (name.clone(), password.clone());
    tokio::task::spawn_blocking(move || worker.accounts.set_password(&account_name, &secret)).await??;
    state.sessions.close_all_of(&name);
    Ok(Json(json!({ "name": name.as_str(), "password": password })))
}

async fn set_quota(
    Extract(state): Shared,
    _: Operator,
    Path(name): Path<String>,
    Json(quota): Json<Quota>,
) -> Result<Json<Value>, ApiError> {
    let name = resident_name(&state, &name)?;
    let space = state.home.store.resident(&name)?;
    space.set_quota(&quota)?;
    Ok(Json(json!({ "name": name.as_str(), "quota": space.quota()?, "usage": space.usage()? })))
}
