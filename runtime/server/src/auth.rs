//! Who is asking: a resident signed in with a session cookie (and, for
//! anything that changes state, the session's CSRF token in a header), a
//! resident's script with an API token, or the operator with theirs.
//!
//! Every resident handler takes a [`Resident`], and so only ever sees the
//! space of the resident who asked: there is no resident name in any URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, Method};
use domicile_store::{ResidentName, ResidentSpace};
use sha2::{Digest, Sha256};

use crate::cluster::{HolderRead, SessionRead};
use crate::error::ApiError;
use crate::State;
use domicile_cluster::Cluster;
use domicile_home::{new_secret, sha256_hex};

pub const SESSION_COOKIE: &str = "domicile_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed sign-ins allowed per name within [`THROTTLE_WINDOW`].
const MAX_FAILED_SIGN_INS: u32 = 5;
const THROTTLE_WINDOW: Duration = Duration::from_secs(10 * 60);

struct Session {
    resident: ResidentName,
    csrf: String,
    expires: Instant,
}

/// Signed-in browsers, by the SHA-256 of their cookie (a leaked memory
/// dump does not hand out live cookies). On a single node they are kept in
/// memory and end with the process; in a cluster, in JetStream
/// (`domicile-sessions`), so that every node knows them and they survive a
/// node's restart.
pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<[u8; 32], Session>>,
    cluster: Option<Cluster>,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Sessions {
    pub fn new(ttl: Duration, cluster: Option<Cluster>) -> Sessions {
        Sessions { ttl, live: Mutex::new(HashMap::new()), cluster, failures: Mutex::new(HashMap::new()) }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session; returns the cookie value and the CSRF token.
    pub async fn open(&self, resident: ResidentName) -> Result<(String, String), ApiError> {
        let (cookie, csrf) = (new_secret(""), new_secret(""));
        if let Some(cluster) = &self.cluster {
            cluster.open_session(&sha256_hex(&cookie), resident, csrf.clone()).await?;
            return Ok((cookie, csrf));
        }
        let now = Instant::now();
        let mut live = self.live();
        live.retain(|_, s| s.expires > now);
        live.insert(digest(&cookie), Session { resident, csrf: csrf.clone(), expires: now + self.ttl });
        Ok((cookie, csrf))
    }

    /// The resident and CSRF token of a live session.
    pub async fn get(&self, cookie: &str) -> Result<Option<(ResidentName, String)>, ApiError> {
        if let Some(cluster) = &self.cluster {
            let session = cluster.session(&sha256_hex(cookie)).await?;
            return Ok(session.map(|s| (s.resident, s.csrf)));
        }
        let live = self.live();
        Ok(live
            .get(&digest(cookie))
            .filter(|s| s.expires > Instant::now())
            .map(|s| (s.resident.clone(), s.csrf.clone())))
    }

    pub async fn close(&self, cookie: &str) -> Result<(), ApiError> {
        if let Some(cluster) = &self.cluster {
            return Ok(cluster.close_session(&sha256_hex(cookie)).await?);
        }
        self.live().remove(&digest(cookie));
        Ok(())
    }

    /// Ends every session of a resident (disabled, or password changed).
    pub async fn close_all_of(&self, resident: &ResidentName) -> Result<(), ApiError> {
        if let Some(cluster) = &self.cluster {
            return Ok(cluster.close_sessions_of(resident).await?);
        }
        self.live().retain(|_, s| &s.resident != resident);
        Ok(())
    }

    /// Refuses a sign-in for a name that failed too often lately. Applies
    /// to every name, existing or not, so it reveals nothing.
    pub fn check_throttle(&self, name: &str) -> Result<(), ApiError> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(name) {
            Some((count, since)) if *count >= MAX_FAILED_SIGN_INS && since.elapsed() < THROTTLE_WINDOW => {
                Err(ApiError::TooMany(format!(
                    "too many failed sign-ins for this name; wait {} minutes and try again",
                    THROTTLE_WINDOW.saturating_sub(since.elapsed()).as_secs().div_ceil(60)
                )))
            }
            _ => Ok(()),
        }
    }

    pub fn record_sign_in(&self, name: &str, succeeded: bool) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if succeeded {
            failures.remove(name);
            return;
        }
        let now = Instant::now();
        failures.retain(|_, (_, since)| now.duration_since(*since) < THROTTLE_WINDOW);
        failures.entry(name.to_owned()).or_insert((0, now)).0 += 1;
    }
}

/// Sign-in attempts per client address: each one may cost a password hash,
/// so one client cannot take the server's password checks (and memory)
/// for itself, whatever names it tries.
pub struct ClientThrottle {
    per_minute: u32,
    seen: Mutex<HashMap<std::net::IpAddr, (u32, Instant)>>,
}

/// Addresses remembered at most; past it, the oldest windows are forgotten.
const MAX_CLIENTS_REMEMBERED: usize = 100_000;
const CLIENT_WINDOW: Duration = Duration::from_secs(60);

impl ClientThrottle {
    /// `per_minute` attempts per address and minute; 0 lets every attempt through.
    pub fn new(per_minute: u32) -> ClientThrottle {
        ClientThrottle { per_minute, seen: Mutex::new(HashMap::new()) }
    }

    /// Counts an attempt from `client`; 429 past the cap, saying when to try again.
    pub fn attempt(&self, client: std::net::IpAddr) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if seen.len() >= MAX_CLIENTS_REMEMBERED {
            seen.retain(|_, (_, since)| now.duration_since(*since) < CLIENT_WINDOW);
            if seen.len() >= MAX_CLIENTS_REMEMBERED {
                seen.clear();
            }
        }
        let entry = seen.entry(client).or_insert((0, now));
        if now.duration_since(entry.1) >= CLIENT_WINDOW {
            *entry = (0, now);
        }
        if entry.0 >= self.per_minute {
            let wait = CLIENT_WINDOW.saturating_sub(now.duration_since(entry.1)).as_secs().max(1);
            return Err(ApiError::TooMany(format!(
                "too many sign-in attempts from your address ({} a minute); try again in {wait} seconds",
                self.per_minute
            )));
        }
        entry.0 += 1;
        Ok(())
    }
}

/// The value of a cookie in the request's headers, if present.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The token of an `Authorization: Bearer ...` header, if present.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The resident a request acts for, and their space.
pub struct Resident {
    pub name: ResidentName,
    pub space: ResidentSpace,
    /// The session's CSRF token; none for an API token.
    pub csrf: Option<String>,
}

impl FromRequestParts<Arc<State>> for Resident {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<State>) -> Result<Self, Self::Rejection> {
        let (name, csrf) = if let Some(token) = bearer(&parts.headers) {
            // A script's token is not sent by browsers on their own: no CSRF check.
            (state.home.accounts().resident_of_token(token).ok_or(ApiError::SignInFirst)?, None)
        } else {
            let cookie = cookie(&parts.headers, SESSION_COOKIE).ok_or(ApiError::SignInFirst)?;
            let session = match parts.extensions.get::<SessionRead>() {
                Some(SessionRead(session)) => session.clone(),
                None => state.sessions.get(cookie).await?,
            };
            let (name, csrf) = session.ok_or(ApiError::SignInFirst)?;
            if changes_state(&parts.method) {
                let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                if sent != Some(csrf.as_str()) {
                    return Err(ApiError::Csrf);
                }
            }
            (name, Some(csrf))
        };
        // Whether this node holds them first: a node taking a resident over
        // has their account only once it has rebuilt their space.
        crate::cluster::check_holds_read(state, &name, parts.extensions.get::<HolderRead>()).await?;
        if !state.home.accounts().is_enabled(&name) {
            return Err(ApiError::SignInFirst);
        }
        let space = state.home.store().resident(&name)?;
        Ok(Resident { name, space, csrf })
    }
}

/// The operator (their token). Operators manage residents; no operator
/// route reads a resident's documents or audit log.
pub struct Operator;

impl FromRequestParts<Arc<State>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<State>) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(&parts.headers) else { return Err(ApiError::NotOperator) };
        let is_operator = match &state.cluster {
            // One operator token for the whole cluster.
            // Not this node's own copy: it may be a token the operator
            // replaced through another node since.
            Some(node) => node.cluster.is_operator_token(&sha256_hex(token)).await?,
            None => state.home.accounts().is_operator_token(token),
        };
        if is_operator {
            Ok(Operator)
        } else {
            Err(ApiError::NotOperator)
        }
    }
}

#[cfg(test)]
mod client_throttle_tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_attempts_per_minute() {
        let throttle = ClientThrottle::new(3);
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            throttle.attempt(a).unwrap();
        }
        let refused = throttle.attempt(a).unwrap_err().to_string();
        assert!(refused.contains("too many sign-in attempts from your address"), "{refused}");
        throttle.attempt(b).unwrap();
        let unlimited = ClientThrottle::new(0);
        for _ in 0..1000 {
            unlimited.attempt(a).unwrap();
        }
    }
}
