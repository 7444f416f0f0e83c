//! The home's campaigns: questions its residents may answer together (see
//! `domicile_campaign`). Each is kept as its organiser signed it,
//! `HOME/campaigns/ID.json` with `ID.sig`, and its signature is checked
//! again at every read against the keys the home trusts for campaigns
//! now: a campaign whose organiser's key was revoked is no longer shown
//! as one to join.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use domicile_campaign::{AttestedReport, Attester, Campaign, CampaignError, CampaignResult};
use domicile_manifest::{AppId, Doctype};
use domicile_package::Role;
use domicile_store::{DocId, Operation, OutboxItem, OutboxStatus, Outcome, ResidentName, ResidentSpace};
use serde::Serialize;
use serde_json::Value;

use crate::{Home, HomeError, Result};

/// The largest campaign file read (the campaign crate refuses larger).
const MAX_CAMPAIGN_FILE: u64 = domicile_campaign::MAX_CAMPAIGN_BYTES as u64;

/// A campaign of the home as it reads now.
#[derive(Debug, Clone, Serialize)]
pub struct ListedCampaign {
    pub id: String,
    /// The campaign, when its signature verifies with a key trusted for
    /// campaigns now.
    pub campaign: Option<Campaign>,
    /// Why it is not shown, when it is not.
    pub refused: Option<String>,
}

impl Home {
    fn campaigns_dir(&self) -> PathBuf {
        self.dir().join("campaigns")
    }

    /// The keys this home trusts for campaigns now.
    fn campaign_keys(&self) -> Result<Vec<domicile_campaign::VerifyingKey>> {
        Ok(self
            .trust()?
            .keys()
            .iter()
            .filter(|k| k.trusted_as(Role::Campaign))
            .filter_map(|k| domicile_campaign::VerifyingKey::from_bytes(&k.key.to_bytes()).ok())
            .collect())
    }

    /// Adds a campaign its organiser signed (`signature`: hexadecimal),
    /// once it verifies with a key the home trusts for campaigns and its
    /// terms are valid; a campaign of the same id is replaced.
    pub fn add_campaign(&self, bytes: &[u8], signature: &str) -> Result<Campaign> {
        let campaign = Campaign::open(bytes, signature, &self.campaign_keys()?)?;
        let dir = self.campaigns_dir();
        crate::private::create_dir(&dir).map_err(|source| HomeError::Io { path: dir.clone(), source })?;
        let write = |name: String, content: &[u8]| {
            let path = dir.join(name);
            domicile_package::write_atomically(&path, content).map_err(|source| HomeError::Io { path, source })
        };
        write(format!("{}.sig", campaign.id), signature.trim().as_bytes())?;
        write(format!("{}.json", campaign.id), bytes)?;
        Ok(campaign)
    }

    /// Every campaign of the home, in the order of their ids, each checked
    /// again against the keys trusted for campaigns now.
    pub fn campaigns(&self) -> Result<Vec<ListedCampaign>> {
        let dir = self.campaigns_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(HomeError::Io { path: dir, source }),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_owned))
            .collect();
        ids.sort();
        let keys = self.campaign_keys()?;
        Ok(ids
            .into_iter()
            .map(|id| match self.read_campaign(&id, &keys) {
                Ok(campaign) => ListedCampaign { id, campaign: Some(campaign), refused: None },
                Err(e) => ListedCampaign { id, campaign: None, refused: Some(e.to_string()) },
            })
            .collect())
    }

    /// The campaign `id`, if the home has it and its signature verifies
    /// with a key trusted for campaigns now.
    pub fn campaign(&self, id: &str) -> Result<Campaign> {
        let known = domicile_campaign::is_campaign_id(id) && self.campaigns_dir().join(format!("{id}.json")).is_file();
        if !known {
            return Err(HomeError::BadInput(format!(
                "this home has no campaign `{id}`: `domicile campaigns` lists them"
            )));
        }
        self.read_campaign(id, &self.campaign_keys()?)
    }

    fn read_campaign(&self, id: &str, keys: &[domicile_campaign::VerifyingKey]) -> Result<Campaign> {
        let read = |name: String| {
            let path = self.campaigns_dir().join(name);
            domicile_package::files::read_regular(&path, MAX_CAMPAIGN_FILE)
                .map_err(|source| HomeError::Io { path, source })
        };
        let bytes = read(format!("{id}.json"))?;
        let signature = String::from_utf8_lossy(&read(format!("{id}.sig"))?).into_owned();
        let campaign = Campaign::open(&bytes, &signature, keys)?;
        if campaign.id != id {
            return Err(HomeError::BadInput(format!("the file of campaign `{id}` holds campaign `{}`", campaign.id)));
        }
        Ok(campaign)
    }
}

/// Where a resident stands with a campaign, read from their outbox: the
/// report sent when they joined, and the withdrawal sent when they left.
#[derive(Debug, Clone, Serialize)]
pub struct Participation {
    pub campaign: String,
    /// Joined, and their report not withdrawn.
    pub joined: bool,
    /// The outbox item of their report (sent, or waiting to be sent again).
    pub report: Option<OutboxItem>,
    /// The outbox item of their withdrawal, once they left.
    pub withdrawal: Option<OutboxItem>,
    /// The campaign's result, once brought into their space (the body of
    /// its `io.domicile.campaign.result` document).
    pub result: Option<Value>,
}

/// The file of the node's attester key, in the home.
const ATTESTER_KEY: &str = "campaign-attester.key";

impl Home {
    /// Makes `seed` this node's attester key (a cluster's nodes share one,
    /// derived from the cluster's key), unless it is already; returns
    /// whether it changed. Leaders told the previous key must be told the
    /// new one.
    pub fn use_campaign_attester(&self, seed: [u8; 32]) -> Result<bool> {
        if self.dir().join(ATTESTER_KEY).exists()
            && self.campaign_attester()?.public_key() == Attester::from_seed(seed).public_key()
        {
            return Ok(false);
        }
        let path = self.dir().join(ATTESTER_KEY);
        domicile_package::write_atomically(&path, format!("{}\n", hex::encode(seed)).as_bytes())
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))
            .map_err(|source| HomeError::Io { path, source })?;
        Ok(true)
    }

    /// A campaign's file and its organiser's signature, as the home keeps
    /// them (for a cluster's other nodes).
    pub fn signed_campaign(&self, id: &str) -> Result<(Vec<u8>, String)> {
        let campaign = self.campaign(id)?;
        let read = |name: String| {
            let path = self.campaigns_dir().join(name);
            domicile_package::files::read_regular(&path, MAX_CAMPAIGN_FILE)
                .map_err(|source| HomeError::Io { path, source })
        };
        let signature = String::from_utf8_lossy(&read(format!("{}.sig", campaign.id))?).trim().to_owned();
        Ok((read(format!("{}.json", campaign.id))?, signature))
    }

    /// This node's attester: it vouches that each report it sends is the
    /// one of its resident (made at first use, kept in the home, readable
    /// by its owner alone). Its public key is what aggregators are told
    /// to trust (`domicile campaign attester`).
    pub fn campaign_attester(&self) -> Result<Attester> {
        let path = self.dir().join(ATTESTER_KEY);
        let io = |source| HomeError::Io { path: path.clone(), source };
        if !path.exists() {
            let mut seed = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true).mode(0o600);
            match options.open(&path) {
                Ok(mut file) => {
                    file.write_all(format!("{}\n", hex::encode(seed)).as_bytes()).map_err(io)?;
                    file.sync_all().map_err(io)?;
                }
                // Another process made it first: its key is the one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let text = domicile_package::files::read_regular(&path, 256).map_err(io)?;
        let seed = hex::decode(String::from_utf8_lossy(&text).trim())
            .ok()
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or_else(|| HomeError::Config {
            path: path.clone(),
            message: "not 64 hexadecimal characters".into(),
        })?;
        Ok(Attester::from_seed(seed))
    }

    /// Where `space`'s resident stands with campaign `id`.
    pub fn participation(&self, space: &ResidentSpace, id: &str) -> Result<Participation> {
        let (mut report, mut withdrawal) = (None, None);
        for item in space.outbox()? {
            if item.campaign.as_deref() != Some(id) {
                continue;
            }
            if item.destination.ends_with(WITHDRAWALS) {
                withdrawal = Some(item);
                continue;
            }
            // A report sent and not withdrawn stands: a later one that
            // was not delivered (two joins at once, the leader refusing
            // the second) does not replace it.
            let standing = withdrawal.is_none()
                && report.as_ref().is_some_and(|r: &OutboxItem| matches!(r.status, OutboxStatus::Sent { .. }))
                && !matches!(item.status, OutboxStatus::Sent { .. });
            if !standing {
                // A report after a withdrawal is a new participation.
                withdrawal = None;
                report = Some(item);
            }
        }
        let withdrawn = withdrawal.as_ref().is_some_and(|w| matches!(w.status, OutboxStatus::Sent { .. }));
        let reported = report.as_ref().is_some_and(|r| !matches!(r.status, OutboxStatus::Denied { .. }));
        let result = match id.parse::<DocId>() {
            Ok(doc) => space.get(&result_doctype(), &doc)?.map(|d| d.body),
            Err(_) => None,
        };
        Ok(Participation { campaign: id.to_owned(), joined: reported && !withdrawn, report, withdrawal, result })
    }

    /// Joins campaign `id` for `space`'s resident, in the `neighbourhood`
    /// they add if they wish (of the kind the campaign names): the
    /// campaign's app runs in their space with its grants, its answer is
    /// checked against the campaign's bounds, split into two shares each
    /// encrypted to one aggregator, attested by this node as the
    /// resident's one report, and sent to the leader through the outbox
    /// (audited). Returns the outbox item; one that could not be delivered
    /// stays there, to send again with `outbox approve`.
    pub async fn join_campaign(
        &self,
        space: &ResidentSpace,
        id: &str,
        neighbourhood: Option<&str>,
    ) -> Result<OutboxItem> {
        let campaign = self.campaign(id)?;
        // Checked before the app runs: a mistyped code costs nothing.
        campaign.check_neighbourhood(neighbourhood)?;
        let now = self.now_ms();
        if now > campaign.deadline_ms {
            return Err(CampaignError::Closed { id: campaign.id, deadline_ms: campaign.deadline_ms }.into());
        }
        if self.participation(space, id)?.joined {
            return Err(HomeError::BadInput(format!(
                "you have joined campaign `{id}` already: one report per resident (leave it first to answer again)"
            )));
        }
        let app: AppId = campaign
            .question
            .app
            .parse()
            .map_err(|e| HomeError::BadInput(format!("campaign `{id}` names an app id that is not valid: {e}")))?;
        let installed = match space.app(&app) {
            Ok(installed) => installed,
            Err(domicile_store::StoreError::UnknownApp(_)) => {
                return Err(HomeError::BadInput(format!(
                    "campaign `{id}` is answered by the app {app}, which you have not installed: install it first (`domicile install {app}`), then join"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let output = self.run(space, &app, &campaign.app_input()).await?;
        let output: Value = serde_json::from_str(&output)
            .map_err(|e| HomeError::BadInput(format!("{app} did not answer with JSON ({e}): nothing was sent")))?;
        let report = campaign.report(&campaign.answer_in(&output)?, neighbourhood, now)?;
        let attester = self.campaign_attester()?;
        let participant = attester.participant(&campaign.id, space.resident().as_str());
        let attested = attester.attest(report, &participant);
        let item = OutboxItem {
            id: 0,
            at_ms: now,
            app: app.clone(),
            app_version: installed.manifest.version.to_string(),
            destination: leader_endpoint(&campaign, REPORTS),
            purpose: format!(
                "Your answer to campaign {id} ({}), as two shares each encrypted to one aggregator: either share alone is random and says nothing of your answer{}",
                campaign.organiser,
                neighbourhood.map(|n| format!("; with your neighbourhood, {n}, readable by both")).unwrap_or_default()
            ),
            payload: serde_json::to_string(&attested).expect("a report serialises"),
            status: OutboxStatus::Pending,
            campaign: Some(campaign.id.clone()),
        };
        // Noted before it leaves: a report sent is one whose result comes back.
        self.note_participant(&campaign.id, space.resident())?;
        self.send_campaign_item(space, &campaign, item).await
    }

    /// Leaves campaign `id` before its deadline: the resident's report is
    /// withdrawn (the leader leaves it out, and a new one may come), or,
    /// never delivered, is not sent at all.
    pub async fn leave_campaign(&self, space: &ResidentSpace, id: &str) -> Result<OutboxItem> {
        let campaign = self.campaign(id)?;
        let participation = self.participation(space, id)?;
        let report = match participation.report {
            Some(report) if participation.joined => report,
            _ => return Err(HomeError::BadInput(format!("you have not joined campaign `{id}`: nothing to leave"))),
        };
        if !matches!(report.status, OutboxStatus::Sent { .. }) {
            // Never delivered: it is simply not sent.
            return Ok(domicile_egress::deny(space, report.id, self.now_ms())?);
        }
        let now = self.now_ms();
        if now > campaign.deadline_ms {
            return Err(CampaignError::Closed { id: campaign.id, deadline_ms: campaign.deadline_ms }.into());
        }
        let attested: AttestedReport = serde_json::from_str(&report.payload)
            .map_err(|e| HomeError::BadInput(format!("your report to campaign `{id}` cannot be read: {e}")))?;
        let withdrawal =
            self.campaign_attester()?.withdraw(&campaign.id, &attested.attestation.participant, &attested.report.nonce);
        let item = OutboxItem {
            id: 0,
            at_ms: now,
            destination: leader_endpoint(&campaign, WITHDRAWALS),
            purpose: format!("Withdraw your answer to campaign {id}: the aggregate will not count it"),
            payload: serde_json::to_string(&withdrawal).expect("a withdrawal serialises"),
            status: OutboxStatus::Pending,
            ..report
        };
        self.send_campaign_item(space, &campaign, item).await
    }

    /// Queues a campaign's item in the outbox (audited) and sends it to
    /// the campaign's leader.
    async fn send_campaign_item(
        &self,
        space: &ResidentSpace,
        campaign: &Campaign,
        item: OutboxItem,
    ) -> Result<OutboxItem> {
        let id = space.queue_egress(&item, &item.audit_entry(Operation::Egress, item.at_ms, Outcome::Allowed))?;
        self.send_campaign_outbox_item(space, campaign, id).await
    }

    /// Sends campaign item `id` of the outbox to the campaign's leader,
    /// the only place it may go.
    async fn send_campaign_outbox_item(
        &self,
        space: &ResidentSpace,
        campaign: &Campaign,
        id: u64,
    ) -> Result<OutboxItem> {
        let allowed = [leader_endpoint(campaign, REPORTS), leader_endpoint(campaign, WITHDRAWALS)];
        let (space, campaign_id, now) = (space.clone(), campaign.id.clone(), self.now_ms());
        let sent = tokio::task::spawn_blocking(move || {
            domicile_egress::send_for_campaign(&space, id, now, &campaign_id, &allowed)
        })
        .await
        .map_err(|e| HomeError::BadInput(format!("sending was interrupted: {e}")))??;
        Ok(sent)
    }

    /// Sends an outbox item to its destination, exactly as listed: an
    /// app's, where its manifest says it may send; a campaign's, to the
    /// leader of that campaign as this home has it signed now. The
    /// delivery (up to its timeout) runs off the async workers.
    pub async fn approve_outbox(&self, space: &ResidentSpace, id: u64) -> Result<OutboxItem> {
        match space.outbox_item(id)?.campaign {
            Some(campaign) => {
                let campaign = self.campaign(&campaign)?;
                self.send_campaign_outbox_item(space, &campaign, id).await
            }
            None => {
                let (space, now) = (space.clone(), self.now_ms());
                tokio::task::spawn_blocking(move || domicile_egress::approve(&space, id, now))
                    .await
                    .map_err(|e| HomeError::BadInput(format!("sending was interrupted: {e}")))?
                    .map_err(HomeError::from)
            }
        }
    }
}

impl Home {
    /// Brings the results of campaign `id` into `space`, once both its
    /// aggregators signed them: fetched from the campaign's leader, each
    /// checked against the result keys the campaign names, and kept as the
    /// document `io.domicile.campaign.result` (id: the campaign's), which
    /// the resident's apps read with a grant: the result the resident's
    /// answer counts in (their neighbourhood's, or the others'), and every
    /// result released beside it. For a participant whose report counts.
    pub async fn fetch_campaign_result(&self, space: &ResidentSpace, id: &str) -> Result<DocId> {
        let campaign = self.campaign(id)?;
        let participation = self.participation(space, id)?;
        if !participation.counted() {
            return Err(HomeError::BadInput(format!(
                "your answer is not in campaign `{id}`'s result (you did not take part, or left): its result comes to participants"
            )));
        }
        let fetched = released_results(&campaign).await?;
        self.keep_result(space, &campaign, &participation, &fetched)
    }

    /// Brings the results of campaign `id`, once its deadline passed, into
    /// the space of each participant this node saw join (fetched once from
    /// the leader, checked once): what the server does on its own, so that
    /// every participant gets the result back without asking. `holds`
    /// says which residents this process may write (a node of a cluster:
    /// those it holds). A participant whose result is kept, or whose
    /// answer is not counted (they left), is not looked at again; one
    /// that could not be written is, next time.
    pub async fn deliver_campaign_results(&self, id: &str, holds: impl Fn(&ResidentName) -> bool) -> Result<Delivered> {
        let campaign = self.campaign(id)?;
        let mut delivered = Delivered::default();
        let waiting = self.participants(id)?;
        // The aggregators' clock, not the one the home shows its apps: no
        // result is asked for before it can be out.
        let now = domicile_host::Clock::System.now_ms();
        if waiting.is_empty() || now <= campaign.deadline_ms {
            return Ok(delivered);
        }
        if now > campaign.deadline_ms.saturating_add(RESULTS_WAITED_FOR_MS) {
            // Never released (too few took part): no longer asked for.
            self.set_participants(id, &[])?;
            return Ok(delivered);
        }
        let fetched = released_results(&campaign).await?;
        let mut still = Vec::new();
        for name in waiting {
            if !holds(&name) {
                still.push(name);
                continue;
            }
            let kept = self.resident(Some(name.as_str())).and_then(|space| {
                let participation = self.participation(&space, id)?;
                if !participation.counted() {
                    return Ok(false);
                }
                if participation.result.is_none() {
                    self.keep_result(&space, &campaign, &participation, &fetched)?;
                    delivered.kept += 1;
                }
                Ok(true)
            });
            match kept {
                Ok(_) => {}
                // Removed since: nothing to deliver.
                Err(HomeError::Store(domicile_store::StoreError::UnknownResident(_))) => {}
                Err(e) => {
                    tracing::warn!(campaign = %id, error = %e, "cannot keep a campaign's result in a participant's space");
                    delivered.failed += 1;
                    still.push(name);
                }
            }
        }
        self.set_participants(id, &still)?;
        delivered.waiting = still.len();
        Ok(delivered)
    }

    /// Keeps the result `space`'s participant's answer counts in, from the
    /// `fetched` results (checked), as the document
    /// `io.domicile.campaign.result`.
    fn keep_result(
        &self,
        space: &ResidentSpace,
        campaign: &Campaign,
        participation: &Participation,
        fetched: &[CampaignResult],
    ) -> Result<DocId> {
        let report = participation.report.as_ref().map(|r| r.payload.as_str()).unwrap_or_default();
        let mine = serde_json::from_str::<AttestedReport>(report).ok().and_then(|a| a.report.neighbourhood);
        // The resident's answer counts in their neighbourhood's result when
        // it was released alone, and in the others' otherwise.
        let counted_in = fetched
            .iter()
            .find(|r| r.neighbourhood.is_some() && r.neighbourhood == mine)
            .or_else(|| fetched.iter().find(|r| r.neighbourhood.is_none()))
            .ok_or_else(|| {
                HomeError::BadInput(format!(
                    "campaign `{}` released no result your answer counts in: your neighbourhood and the others were each fewer than {} participants",
                    campaign.id, campaign.minimum_batch
                ))
            })?;
        let bounds = match &campaign.aggregation {
            domicile_campaign::Aggregation::Histogram { bounds } => Some(bounds.clone()),
            _ => None,
        };
        let mut body = serde_json::json!({
            "campaign": campaign.id,
            "organiser": campaign.organiser,
            "computes": campaign.question.computes,
            "app": campaign.question.app,
            "unit": campaign.question.unit,
            "neighbourhood": counted_in.neighbourhood,
            "reports": counted_in.reports,
            "aggregate": counted_in.aggregate.figures(),
            "neighbourhoods": fetched.iter().map(|r| serde_json::json!({
                "neighbourhood": r.neighbourhood, "reports": r.reports, "aggregate": r.aggregate.figures(),
            })).collect::<Vec<_>>(),
            "noise_epsilon": campaign.epsilon,
            "signatures": counted_in.signatures,
        });
        // The answer's place in the app's output, for the app to find the
        // participant's own figure (a vector's pointers are not kept).
        if campaign.question.answers.is_empty() {
            body["answer"] = serde_json::json!(campaign.question.answer);
        }
        // A histogram's only: the schema has no empty bounds.
        if let Some(bounds) = bounds {
            body["bounds"] = serde_json::json!(bounds);
        }
        let doctype = result_doctype();
        let doc: DocId = campaign.id.parse().map_err(|e| HomeError::BadInput(format!("campaign id: {e}")))?;
        self.put_document(space, &doctype, Some(doc.clone()), body)?;
        Ok(doc)
    }
}

/// The results campaign `campaign`'s leader released, each checked against
/// the result keys the campaign names, one per neighbourhood at most.
async fn released_results(campaign: &Campaign) -> Result<Vec<CampaignResult>> {
    let url = leader_endpoint(campaign, RESULT);
    let fetched = tokio::task::spawn_blocking(move || fetch_results(&url))
        .await
        .map_err(|e| HomeError::BadInput(format!("fetching was interrupted: {e}")))??;
    let mut seen = std::collections::HashSet::new();
    for result in &fetched {
        result.verify(campaign)?;
        if !seen.insert(result.neighbourhood.clone()) {
            return Err(HomeError::BadInput(format!(
                "the leader of campaign `{}` gave two results for one neighbourhood: neither is kept",
                campaign.id
            )));
        }
    }
    Ok(fetched)
}

/// How long after a campaign's deadline its result is looked for on its
/// participants' behalf: 30 days.
const RESULTS_WAITED_FOR_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// What [`Home::deliver_campaign_results`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delivered {
    /// Results kept in participants' spaces.
    pub kept: usize,
    /// Participants whose space could not be written (tried again).
    pub failed: usize,
    /// Participants still waiting for their result here.
    pub waiting: usize,
}

impl Participation {
    /// Their answer counts: joined, and the report delivered.
    pub fn counted(&self) -> bool {
        self.joined && self.report.as_ref().is_some_and(|r| matches!(r.status, OutboxStatus::Sent { .. }))
    }
}

impl Home {
    /// The file of the residents this node saw join campaign `id`, whose
    /// result it has not delivered yet: one name a line.
    fn participants_file(&self, id: &str) -> PathBuf {
        self.campaigns_dir().join(format!("{id}.participants"))
    }

    /// Notes that `resident` joined campaign `id` here, for the result to
    /// come to them ([`Home::deliver_campaign_results`]). Appended in one
    /// write: residents joining at once do not lose each other's line.
    fn note_participant(&self, id: &str, resident: &ResidentName) -> Result<()> {
        let path = self.participants_file(id);
        let io = |source| HomeError::Io { path: path.clone(), source };
        let mut file = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(&path).map_err(io)?;
        file.write_all(format!("{resident}\n").as_bytes()).map_err(io)
    }

    /// The residents waiting for campaign `id`'s result here, each once.
    fn participants(&self, id: &str) -> Result<Vec<ResidentName>> {
        let path = self.participants_file(id);
        let text = match domicile_package::files::read_regular(&path, 64 * 1024 * 1024) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(HomeError::Io { path, source }),
        };
        let mut names: Vec<ResidentName> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Replaces the residents waiting for campaign `id`'s result. Called
    /// after the deadline only, when no join can append any more.
    fn set_participants(&self, id: &str, names: &[ResidentName]) -> Result<()> {
        let path = self.participants_file(id);
        if names.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(HomeError::Io { path, source: e }),
                _ => Ok(()),
            };
        }
        let text: String = names.iter().map(|n| format!("{n}\n")).collect();
        domicile_package::write_atomically(&path, text.as_bytes()).map_err(|source| HomeError::Io { path, source })
    }
}

/// The doctype of a campaign's result in a participant's space.
pub const RESULT_DOCTYPE: &str = "io.domicile.campaign.result";

fn result_doctype() -> Doctype {
    RESULT_DOCTYPE.parse().expect("a doctype")
}

/// The campaign's results from its leader: one small JSON document.
fn fetch_results(url: &str) -> Result<Vec<CampaignResult>> {
    let unreachable = |why: String| HomeError::BadInput(format!("the campaign's leader ({url}) {why}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| unreachable(format!("cannot be reached: {e}")))?;
    match response.status().as_u16() {
        200 => {}
        404 => return Err(unreachable("has not released the result yet: try again after it collects".into())),
        status => return Err(unreachable(format!("answered HTTP {status}"))),
    }
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_RESULT_BYTES)
        .read_to_vec()
        .map_err(|e| unreachable(format!("sent an unreadable result: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| unreachable(format!("sent something that is not a result: {e}")))
}

/// The largest answer read: the results of 100 neighbourhoods, each a
/// vector of 1,000 counts and two signatures, fit.
const MAX_RESULT_BYTES: u64 = 8 * 1024 * 1024;

const RESULT: &str = "/result";
const REPORTS: &str = "/reports";
const WITHDRAWALS: &str = "/withdrawals";

/// One of the campaign's leader's endpoints.
fn leader_endpoint(campaign: &Campaign, path: &str) -> String {
    format!("{}{path}", campaign.aggregators[0].url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use domicile_host::Clock;

    use super::*;

    #[test]
    fn a_node_takes_the_cluster_s_attester_in_place_of_its_own_and_keeps_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::create(dir.path(), &"me".parse().unwrap(), Clock::Fixed(1)).unwrap();
        let own = home.campaign_attester().unwrap().public_key();
        let cluster = [7u8; 32];
        assert!(home.use_campaign_attester(cluster).unwrap(), "its own is replaced");
        assert!(!home.use_campaign_attester(cluster).unwrap(), "the cluster's already");
        let now = home.campaign_attester().unwrap().public_key();
        assert_eq!(now, Attester::from_seed(cluster).public_key());
        assert_ne!(now, own);
        let mode = std::fs::metadata(dir.path().join(ATTESTER_KEY)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn participation_is_the_standing_report_not_a_later_one_that_failed_nor_a_withdrawn_one() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::create(dir.path(), &"me".parse().unwrap(), Clock::Fixed(1)).unwrap();
        let space = home.resident(Some("me")).unwrap();
        let send = |path: &str, status: OutboxStatus| {
            let item = OutboxItem {
                id: 0,
                at_ms: 1,
                app: "org.example.app".parse().unwrap(),
                app_version: "1.0.0".into(),
                destination: format!("https://leader.example{path}"),
                purpose: "a campaign's".into(),
                payload: "{}".into(),
                status: OutboxStatus::Pending,
                campaign: Some("fr.c".into()),
            };
            let id = space.queue_egress(&item, &item.audit_entry(Operation::Egress, 1, Outcome::Allowed)).unwrap();
            space.set_outbox_status(id, status, None).unwrap();
            id
        };
        let sent = OutboxStatus::Sent { at_ms: 2, http_status: 202 };
        let first = send(REPORTS, sent.clone());
        // A second join the leader refused: the first report stands.
        send(REPORTS, OutboxStatus::Failed { at_ms: 3, error: "HTTP 409".into() });
        let standing = home.participation(&space, "fr.c").unwrap();
        assert!(standing.joined);
        assert_eq!(standing.report.unwrap().id, first);
        // Withdrawn, then joined again.
        send(WITHDRAWALS, sent.clone());
        assert!(!home.participation(&space, "fr.c").unwrap().joined);
        let again = send(REPORTS, sent);
        let rejoined = home.participation(&space, "fr.c").unwrap();
        assert!(rejoined.joined && rejoined.withdrawal.is_none());
        assert_eq!(rejoined.report.unwrap().id, again);
        assert!(!home.participation(&space, "fr.other").unwrap().joined, "another campaign's");
    }
}
