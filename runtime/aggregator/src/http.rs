//! The two aggregators' HTTP servers (`domicile aggregator serve`).
//!
//! - The **leader** takes residents' reports, each attested by a node it
//!   trusts (`POST /reports`: kept pending at once, 202; refused with why,
//!   409), and their withdrawals (`POST /withdrawals`), verifies the pending
//!   ones with the helper in the background, says where they stand
//!   (`GET /status`) and, after the deadline, collects the results once
//!   (`POST /collect`: one per neighbourhood of at least the minimum
//!   batch, and the others'), signed by both, and gives them as signed
//!   (`GET /result`: a list).
//! - The **helper** answers the leader only (its bearer token, shared
//!   between the two organisations): `POST /helper/prepare`, `/finish`
//!   (one report), `/prepare-all`, `/finish-all` (many at once: the leader
//!   verifies its pending reports in batches), `/abandon`, `/aggregate`,
//!   `/sign`. It never sees anything but its
//!   own shares, and the aggregate once released.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domicile_campaign::{Aggregate, AggregatorRole, AttestedReport, Batch, Campaign, Report, ResultSigner, Withdrawal};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{AggregatorError, Helper, HelperStore, Leader, Result};

/// The largest request asking the helper for an aggregate share.
const AGGREGATE_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// How often the leader verifies the reports pending with the helper.
const VERIFY_EVERY: Duration = Duration::from_millis(500);

/// Which aggregator this server is.
pub enum Serving {
    /// The leader, which reaches the helper at this URL, and takes the
    /// reports these attester keys (hexadecimal) attest.
    Leader {
        helper: String,
        attesters: Vec<String>,
    },
    Helper,
}

/// What an aggregator's server needs.
pub struct ServeOptions {
    pub serving: Serving,
    /// Its own store (a directory).
    pub store: std::path::PathBuf,
    pub campaign: Campaign,
    /// Its HPKE secret key (hexadecimal).
    pub secret: String,
    /// The secret of the key it signs the result with (hexadecimal).
    pub result_secret: String,
    /// The verification key the two aggregators share.
    pub verify_key: [u8; 32],
    /// The bearer token the leader shows the helper.
    pub peer_token: String,
}

struct Shared {
    campaign: Campaign,
    leader: Option<Leader>,
    helper: Option<HelperStore>,
    to_helper: Option<HttpHelper>,
    peer_token: String,
    collected: Mutex<Option<Value>>,
}

/// Serves on `listener` until the process stops.
pub async fn serve(options: ServeOptions, listener: tokio::net::TcpListener) -> Result<()> {
    let db = sled::open(&options.store)?;
    let index = match options.serving {
        Serving::Leader { .. } => 0,
        Serving::Helper => 1,
    };
    let role = AggregatorRole::new(options.campaign.clone(), index, &options.secret, options.verify_key)?;
    let signer = ResultSigner::from_hex(&options.result_secret)?;
    if signer.public_key() != options.campaign.aggregators[index].result_key {
        return Err(AggregatorError::Refused(
            "this aggregator's result key is not the one the campaign names for it".into(),
        ));
    }
    let (leader, helper, to_helper) = match options.serving {
        Serving::Leader { helper, attesters } => {
            let to_helper = HttpHelper::new(helper, options.peer_token.clone());
            let leader = Leader::open(&db, options.campaign.clone(), role, signer, attesters)?;
            (Some(leader), None, Some(to_helper))
        }
        Serving::Helper => (None, Some(HelperStore::open(&db, role, signer)?), None),
    };
    let shared = Arc::new(Shared {
        campaign: options.campaign,
        leader,
        helper,
        to_helper,
        peer_token: options.peer_token,
        collected: Mutex::new(None),
    });
    if shared.leader.is_some() {
        let verifier = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(VERIFY_EVERY).await;
                let shared = verifier.clone();
                let verified = tokio::task::spawn_blocking(move || {
                    let (leader, helper) =
                        (shared.leader.as_ref().expect("a leader"), shared.to_helper.as_ref().expect("its helper"));
                    leader.verify_pending(helper)
                })
                .await;
                if let Ok(Err(e)) = verified {
                    tracing::warn!(error = %e, "verifying the pending reports");
                }
            }
        });
    }
    let app = Router::new()
        .route("/reports", post(receive))
        .route("/withdrawals", post(withdraw))
        .route("/status", get(status))
        .route("/collect", post(collect))
        .route("/result", get(result))
        .route("/helper/prepare", post(prepare))
        .route("/helper/finish", post(finish))
        .route("/helper/prepare-all", post(prepare_all))
        .route("/helper/finish-all", post(finish_all))
        .route("/helper/abandon", post(abandon))
        // The nonces of a whole batch (about 36 bytes each): up to about
        // 900,000 reports, past the 2 MB every other request is held to.
        .route("/helper/aggregate", post(aggregate).layer(DefaultBodyLimit::max(AGGREGATE_BODY_LIMIT)))
        .route("/helper/sign", post(sign))
        .with_state(shared);
    axum::serve(listener, app).await.map_err(|e| AggregatorError::Refused(format!("the server stopped: {e}")))
}

impl IntoResponse for AggregatorError {
    fn into_response(self) -> Response {
        let status = match &self {
            AggregatorError::Refused(_) | AggregatorError::NotYet(_) => StatusCode::CONFLICT,
            AggregatorError::Campaign(domicile_campaign::CampaignError::Refused(_)) => StatusCode::CONFLICT,
            AggregatorError::Campaign(_) => StatusCode::BAD_REQUEST,
            AggregatorError::HelperAway(_) => StatusCode::SERVICE_UNAVAILABLE,
            AggregatorError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

type Answer = std::result::Result<Response, AggregatorError>;

fn not_this_role(what: &str) -> Answer {
    Ok((StatusCode::NOT_FOUND, Json(json!({ "error": format!("this aggregator is not the {what}") }))).into_response())
}

async fn receive(State(shared): State<Arc<Shared>>, Json(attested): Json<AttestedReport>) -> Answer {
    let Some(leader) = &shared.leader else { return not_this_role("leader") };
    leader.receive(&attested, now_ms())?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "pending": attested.report.nonce }))).into_response())
}

async fn withdraw(State(shared): State<Arc<Shared>>, Json(withdrawal): Json<Withdrawal>) -> Answer {
    let Some(leader) = &shared.leader else { return not_this_role("leader") };
    leader.withdraw(&withdrawal, now_ms())?;
    Ok(Json(json!({ "withdrawn": withdrawal.nonce })).into_response())
}

async fn status(State(shared): State<Arc<Shared>>) -> Answer {
    let Some(leader) = &shared.leader else { return not_this_role("leader") };
    let counts = leader.counts()?;
    let collected = shared.collected.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let status = json!({
        "campaign": shared.campaign.id, "deadline_ms": shared.campaign.deadline_ms,
        "counts": counts, "result": collected,
    });
    Ok(Json(status).into_response())
}

/// Collects the aggregate after the deadline (and keeps it, for `status`).
async fn collect(State(shared): State<Arc<Shared>>) -> Answer {
    if shared.leader.is_none() {
        return not_this_role("leader");
    }
    let worker = shared.clone();
    let collected = tokio::task::spawn_blocking(move || {
        let (leader, helper) =
            (worker.leader.as_ref().expect("a leader"), worker.to_helper.as_ref().expect("its helper"));
        leader.collect(helper, now_ms())
    })
    .await
    .map_err(|e| AggregatorError::Refused(format!("the collection stopped: {e}")))??;
    let figures: Vec<Value> = collected
        .iter()
        .map(|r| json!({ "neighbourhood": r.neighbourhood, "reports": r.reports, "aggregate": r.aggregate.figures() }))
        .collect();
    let result = json!({
        "campaign": shared.campaign.id,
        "reports": collected.iter().map(|r| r.reports).sum::<u64>(),
        "results": figures,
        "signed": collected,
    });
    *shared.collected.lock().unwrap_or_else(|p| p.into_inner()) = Some(result.clone());
    Ok(Json(result).into_response())
}

/// The results as both aggregators signed them, for the participants'
/// homes to fetch and check (404 until they are released).
async fn result(State(shared): State<Arc<Shared>>) -> Answer {
    let Some(leader) = &shared.leader else { return not_this_role("leader") };
    match leader.results()? {
        Some(result) => Ok(Json(result).into_response()),
        None => Ok((StatusCode::NOT_FOUND, Json(json!({ "error": "the result is not released yet" }))).into_response()),
    }
}

/// Why a helper's route does not answer a request.
enum NotAnswered {
    NotTheHelper,
    NotTheLeader,
}

impl IntoResponse for NotAnswered {
    fn into_response(self) -> Response {
        match self {
            NotAnswered::NotTheHelper => {
                (StatusCode::NOT_FOUND, Json(json!({ "error": "this aggregator is not the helper" }))).into_response()
            }
            NotAnswered::NotTheLeader => {
                (StatusCode::UNAUTHORIZED, Json(json!({ "error": "only the campaign's leader is answered here" })))
                    .into_response()
            }
        }
    }
}

/// The helper's store, once the request shows the leader's token.
fn helper_for<'a>(shared: &'a Shared, headers: &HeaderMap) -> std::result::Result<&'a HelperStore, NotAnswered> {
    let helper = shared.helper.as_ref().ok_or(NotAnswered::NotTheHelper)?;
    let shown = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let expected = shared.peer_token.as_bytes();
    let same = shown
        .is_some_and(|s| s.len() == expected.len() && s.bytes().zip(expected).fold(0, |d, (a, b)| d | (a ^ b)) == 0);
    if !same {
        return Err(NotAnswered::NotTheLeader);
    }
    Ok(helper)
}

#[derive(Serialize, Deserialize)]
struct Finish {
    nonce: String,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct Reports {
    reports: Vec<Report>,
}

#[derive(Serialize, Deserialize)]
struct Messages {
    messages: Vec<Finish>,
}

/// One report's answer in an exchange of many: its field, or why not.
fn each<T>(answers: Vec<Result<T>>, field: &str, value: impl Fn(T) -> Value) -> Value {
    let answers: Vec<Value> = answers
        .into_iter()
        .map(|answer| match answer {
            Ok(ok) => json!({ field: value(ok) }),
            Err(e) => json!({ "error": e.to_string() }),
        })
        .collect();
    json!({ "answers": answers })
}

/// Runs `work` on the helper's store off the async workers (a batch is
/// hundreds of decryptions).
async fn on_helper<T: Send + 'static>(
    shared: Arc<Shared>,
    headers: &HeaderMap,
    work: impl FnOnce(&HelperStore) -> Result<T> + Send + 'static,
) -> std::result::Result<Result<T>, NotAnswered> {
    helper_for(&shared, headers)?;
    let done = tokio::task::spawn_blocking(move || work(shared.helper.as_ref().expect("checked: the helper")))
        .await
        .unwrap_or_else(|e| Err(AggregatorError::Refused(format!("the helper's work stopped: {e}"))));
    Ok(done)
}

#[derive(Serialize, Deserialize)]
struct Nonce {
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Sign {
    neighbourhood: Option<String>,
    leader_share: String,
    reports: u64,
    aggregate: Aggregate,
}

async fn prepare(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(report): Json<Report>) -> Answer {
    let helper = match helper_for(&shared, &headers) {
        Ok(helper) => helper,
        Err(refused) => return Ok(refused.into_response()),
    };
    let share = helper.prepare(&report)?;
    Ok(Json(json!({ "verifier_share": hex::encode(share) })).into_response())
}

async fn prepare_all(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(sent): Json<Reports>) -> Answer {
    match on_helper(shared, &headers, move |helper| helper.prepare_all(&sent.reports)).await {
        Ok(answers) => Ok(Json(each(answers?, "verifier_share", |share| json!(hex::encode(share)))).into_response()),
        Err(refused) => Ok(refused.into_response()),
    }
}

async fn finish_all(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(sent): Json<Messages>) -> Answer {
    let work = move |helper: &HelperStore| {
        let mut messages = Vec::with_capacity(sent.messages.len());
        for finish in sent.messages {
            let message = hex::decode(&finish.message)
                .map_err(|_| AggregatorError::Refused("a message is not hexadecimal".into()))?;
            messages.push((finish.nonce, message));
        }
        helper.finish_all(&messages)
    };
    match on_helper(shared, &headers, work).await {
        Ok(answers) => Ok(Json(each(answers?, "finished", |()| json!(true))).into_response()),
        Err(refused) => Ok(refused.into_response()),
    }
}

async fn finish(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(finish): Json<Finish>) -> Answer {
    let helper = match helper_for(&shared, &headers) {
        Ok(helper) => helper,
        Err(refused) => return Ok(refused.into_response()),
    };
    let message =
        hex::decode(&finish.message).map_err(|_| AggregatorError::Refused("the message is not hexadecimal".into()))?;
    helper.finish(&finish.nonce, &message)?;
    Ok(Json(json!({ "finished": finish.nonce })).into_response())
}

async fn abandon(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(nonce): Json<Nonce>) -> Answer {
    let helper = match helper_for(&shared, &headers) {
        Ok(helper) => helper,
        Err(refused) => return Ok(refused.into_response()),
    };
    helper.abandon(&nonce.nonce)?;
    Ok(Json(json!({ "abandoned": nonce.nonce })).into_response())
}

async fn aggregate(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(batch): Json<Batch>) -> Answer {
    let helper = match helper_for(&shared, &headers) {
        Ok(helper) => helper,
        Err(refused) => return Ok(refused.into_response()),
    };
    let share = helper.aggregate(&batch)?;
    Ok(Json(json!({ "share": hex::encode(share) })).into_response())
}

async fn sign(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(sign): Json<Sign>) -> Answer {
    let helper = match helper_for(&shared, &headers) {
        Ok(helper) => helper,
        Err(refused) => return Ok(refused.into_response()),
    };
    let share = hex::decode(&sign.leader_share)
        .map_err(|_| AggregatorError::Refused("the leader's share is not hexadecimal".into()))?;
    let signature = helper.sign_result(sign.neighbourhood.as_deref(), &share, sign.reports, &sign.aggregate)?;
    Ok(Json(json!({ "signature": signature })).into_response())
}

/// The helper, as the leader reaches it over HTTP. A helper that does not
/// answer, or answers 5xx, is away: the leader tries again later.
struct HttpHelper {
    agent: ureq::Agent,
    url: String,
    token: String,
}

impl HttpHelper {
    fn new(url: String, token: String) -> HttpHelper {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        HttpHelper { agent, url: url.trim_end_matches('/').to_owned(), token }
    }

    fn call(&self, path: &str, body: &impl Serialize) -> Result<Value> {
        let response = self
            .agent
            .post(&format!("{}/helper/{path}", self.url))
            .header("authorization", &format!("Bearer {}", self.token))
            .send_json(body)
            .map_err(|e| AggregatorError::HelperAway(e.to_string()))?;
        let status = response.status().as_u16();
        let answer: Value = response.into_body().read_json().unwrap_or(Value::Null);
        let said = || answer["error"].as_str().unwrap_or("no reason given").to_owned();
        match status {
            200..=299 => Ok(answer),
            500.. => Err(AggregatorError::HelperAway(format!("{status}: {}", said()))),
            _ => Err(AggregatorError::Refused(format!("the helper refuses it ({status}): {}", said()))),
        }
    }

    /// Each report's answer in an exchange of many: `read` of it, or the
    /// helper's refusal.
    fn answers<T>(answer: &Value, read: impl Fn(&Value) -> Result<T>) -> Result<Vec<Result<T>>> {
        let answers = answer["answers"]
            .as_array()
            .ok_or_else(|| AggregatorError::Refused("the helper's answer has no `answers`".into()))?;
        Ok(answers
            .iter()
            .map(|one| match one["error"].as_str() {
                Some(why) => Err(AggregatorError::Refused(format!("the helper refuses it: {why}"))),
                None => read(one),
            })
            .collect())
    }

    fn hex_field(answer: &Value, field: &str) -> Result<Vec<u8>> {
        answer[field]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| AggregatorError::Refused(format!("the helper's answer has no hexadecimal `{field}`")))
    }
}

impl Helper for HttpHelper {
    fn prepare(&self, report: &Report) -> Result<Vec<u8>> {
        HttpHelper::hex_field(&self.call("prepare", report)?, "verifier_share")
    }

    fn finish(&self, nonce: &str, message: &[u8]) -> Result<()> {
        self.call("finish", &Finish { nonce: nonce.to_owned(), message: hex::encode(message) }).map(drop)
    }

    fn prepare_all(&self, reports: &[Report]) -> Result<Vec<Result<Vec<u8>>>> {
        let answer = self.call("prepare-all", &Reports { reports: reports.to_vec() })?;
        HttpHelper::answers(&answer, |one| HttpHelper::hex_field(one, "verifier_share"))
    }

    fn finish_all(&self, messages: &[(String, Vec<u8>)]) -> Result<Vec<Result<()>>> {
        let messages = messages
            .iter()
            .map(|(nonce, message)| Finish { nonce: nonce.clone(), message: hex::encode(message) })
            .collect();
        let answer = self.call("finish-all", &Messages { messages })?;
        HttpHelper::answers(&answer, |_| Ok(()))
    }

    fn abandon(&self, nonce: &str) -> Result<()> {
        self.call("abandon", &Nonce { nonce: nonce.to_owned() }).map(drop)
    }

    fn aggregate(&self, batch: &Batch) -> Result<Vec<u8>> {
        HttpHelper::hex_field(&self.call("aggregate", batch)?, "share")
    }

    fn sign_result(
        &self,
        neighbourhood: Option<&str>,
        leader_share: &[u8],
        reports: u64,
        aggregate: &Aggregate,
    ) -> Result<String> {
        let sign = Sign {
            neighbourhood: neighbourhood.map(str::to_owned),
            leader_share: hex::encode(leader_share),
            reports,
            aggregate: aggregate.clone(),
        };
        let answer = self.call("sign", &sign)?;
        answer["signature"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AggregatorError::Refused("the helper's answer has no `signature`".into()))
    }
}

/// The wall clock in ms since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
