//! The leader's side: the reports it receives, kept pending until they
//! are verified with the helper, the output share of each verified one,
//! the counts of what was refused and why, and the collection of the
//! aggregate after the deadline.

use std::collections::BTreeMap;

use domicile_campaign::{
    batches, unshard, AggregatorRole, AttestedReport, Batch, Campaign, CampaignResult, Report, ResultSigner, Withdrawal,
};
use serde::Serialize;

use crate::{aggregate_outputs, batch_digest, AggregatorError, Helper, Result};

/// The count of withdrawn reports, kept with the refusals' (no reason
/// of a refusal is named so).
const WITHDRAWN: &str = "(withdrawn)";

/// How many reports the leader verifies with the helper per exchange
/// (each about 2 KB of JSON: a request stays well under the helper's
/// 2 MB limit of a body).
const VERIFY_BATCH: usize = 200;

/// The key of the released results.
const RELEASED: &str = "results";

/// A count in a store, one more.
fn increment(count: Option<&[u8]>) -> Option<Vec<u8>> {
    let count = count.map_or(0, |c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])));
    Some((count + 1).to_be_bytes().to_vec())
}

/// The leader of a campaign, on its store.
pub struct Leader {
    campaign: Campaign,
    role: AggregatorRole,
    signer: ResultSigner,
    /// The attester keys of the nodes whose residents' reports it takes.
    attesters: Vec<String>,
    /// The report of each participant, by their tag: one each.
    participants: sled::Tree,
    /// Every nonce received, refused or not: a report comes once.
    seen: sled::Tree,
    /// Reports received and not yet verified, by nonce.
    pending: sled::Tree,
    /// The leader's output share of each verified report, by nonce.
    outputs: sled::Tree,
    /// The neighbourhood of each verified report (empty for none).
    neighbourhoods: sled::Tree,
    /// Reports refused, by reason.
    refused: sled::Tree,
    /// The results, once collected: released once; and the leader's
    /// aggregate share of each batch, once computed (with its noise,
    /// drawn once).
    released: sled::Tree,
}

/// Where the campaign's reports stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: u64,
    pub verified: u64,
    /// Reports withdrawn by their participants before the deadline.
    pub withdrawn: u64,
    /// Reports refused, by reason: `another campaign`, `late`,
    /// `unattested`, `duplicate`, `second report`, `unreadable`,
    /// `invalid proof`.
    pub refused: BTreeMap<String, u64>,
}

impl Leader {
    /// The leader of `campaign` on its store `db`, as `role` (aggregator
    /// 0), signing results with `signer`, taking the reports `attesters`
    /// (their public keys, hexadecimal) attest.
    pub fn open(
        db: &sled::Db,
        campaign: Campaign,
        role: AggregatorRole,
        signer: ResultSigner,
        attesters: Vec<String>,
    ) -> Result<Leader> {
        Ok(Leader {
            campaign,
            role,
            signer,
            attesters,
            participants: db.open_tree("leader-participants")?,
            seen: db.open_tree("leader-seen")?,
            pending: db.open_tree("leader-pending")?,
            outputs: db.open_tree("leader-outputs")?,
            neighbourhoods: db.open_tree("leader-neighbourhoods")?,
            refused: db.open_tree("leader-refused")?,
            released: db.open_tree("leader-released")?,
        })
    }

    fn refuse(&self, reason: &str, detail: String) -> Result<AggregatorError> {
        self.refused.update_and_fetch(reason, increment)?;
        Ok(AggregatorError::Refused(detail))
    }

    /// Takes a resident's attested report, received at `now_ms`: kept
    /// pending (on disk) for verification, or refused and counted.
    pub fn receive(&self, attested: &AttestedReport, now_ms: u64) -> Result<()> {
        let report = &attested.report;
        if report.campaign != self.campaign.id {
            return Err(self.refuse("another campaign", format!("it is for campaign `{}`", report.campaign))?);
        }
        if now_ms > self.campaign.deadline_ms {
            return Err(self.refuse("late", "it came after the campaign's deadline".into())?);
        }
        let participant = match attested.verify(&self.attesters) {
            Ok(participant) => participant,
            Err(e) => return Err(self.refuse("unattested", e.to_string())?),
        };
        let first = self.seen.compare_and_swap(&report.nonce, None as Option<&[u8]>, Some(b"".as_slice()))?.is_ok();
        if !first {
            return Err(self.refuse("duplicate", format!("report {} came before", report.nonce))?);
        }
        let only = self
            .participants
            .compare_and_swap(participant, None as Option<&[u8]>, Some(report.nonce.as_bytes()))?
            .is_ok();
        if !only {
            return Err(self.refuse(
                "second report",
                "this participant's node sent a report for this campaign before; leaving the campaign withdraws it"
                    .into(),
            )?);
        }
        let bytes = serde_json::to_vec(report).expect("a report serialises");
        self.pending.insert(&report.nonce, bytes)?;
        self.pending.flush()?;
        self.participants.flush()?;
        Ok(())
    }

    /// Withdraws a participant's report at their node's request, before
    /// the deadline: it is left out of the aggregate, and the participant
    /// may send another.
    pub fn withdraw(&self, withdrawal: &Withdrawal, now_ms: u64) -> Result<()> {
        if withdrawal.campaign != self.campaign.id {
            return Err(AggregatorError::Refused(format!("it is for campaign `{}`", withdrawal.campaign)));
        }
        if now_ms > self.campaign.deadline_ms {
            return Err(AggregatorError::Refused(
                "the campaign's deadline is past: its reports can no longer be withdrawn".into(),
            ));
        }
        withdrawal.verify(&self.attesters)?;
        let removed = self.participants.compare_and_swap(
            &withdrawal.participant,
            Some(withdrawal.nonce.as_bytes()),
            None as Option<&[u8]>,
        )?;
        if removed.is_err() {
            return Err(AggregatorError::Refused(format!(
                "report {} is not this participant's report here (withdrawn already, or never received)",
                withdrawal.nonce
            )));
        }
        self.pending.remove(&withdrawal.nonce)?;
        self.outputs.remove(&withdrawal.nonce)?;
        self.refused.update_and_fetch(WITHDRAWN, increment)?;
        self.participants.flush()?;
        Ok(())
    }

    /// Verifies every pending report with `helper`, [`VERIFY_BATCH`] at a
    /// time; returns how many were verified. When the helper cannot be
    /// reached, the rest stay pending (on disk) for the next call.
    pub fn verify_pending(&self, helper: &dyn Helper) -> Result<u64> {
        let mut verified = 0;
        let mut batch = Vec::with_capacity(VERIFY_BATCH);
        for item in self.pending.iter() {
            let (nonce, bytes) = item?;
            match serde_json::from_slice::<Report>(&bytes) {
                Ok(report) => batch.push(report),
                Err(e) => {
                    self.pending.remove(&nonce)?;
                    self.refuse("unreadable", e.to_string())?;
                }
            }
            if batch.len() == VERIFY_BATCH {
                verified += self.verify_batch(std::mem::take(&mut batch), helper)?;
            }
        }
        if !batch.is_empty() {
            verified += self.verify_batch(batch, helper)?;
        }
        self.outputs.flush()?;
        Ok(verified)
    }

    /// Verifies `reports` with the helper in two exchanges (its verifier
    /// shares, then the verifier messages); the output shares are kept by
    /// both, the helper's first, so that a failure between the two is
    /// tried again without counting any twice. A report leaves `pending`
    /// once verified or refused (and counted).
    fn verify_batch(&self, reports: Vec<Report>, helper: &dyn Helper) -> Result<u64> {
        let mut started = Vec::with_capacity(reports.len());
        for report in reports {
            if self.outputs.contains_key(&report.nonce)? {
                self.pending.remove(&report.nonce)?;
                continue;
            }
            match self.role.start(&report) {
                Ok(mine) => started.push((report, mine)),
                Err(e) => {
                    self.pending.remove(&report.nonce)?;
                    self.refuse("unreadable", e.to_string())?;
                }
            }
        }
        if started.is_empty() {
            return Ok(0);
        }
        let sent: Vec<Report> = started.iter().map(|(report, _)| report.clone()).collect();
        let theirs = helper.prepare_all(&sent)?;
        if theirs.len() != sent.len() {
            return Err(AggregatorError::HelperAway(format!("it answered {} of {} reports", theirs.len(), sent.len())));
        }
        let mut finishing = Vec::with_capacity(started.len());
        for ((report, mine), theirs) in started.into_iter().zip(theirs) {
            let theirs = match theirs {
                Ok(share) => share,
                Err(e) => {
                    self.pending.remove(&report.nonce)?;
                    self.refuse("unreadable", e.to_string())?;
                    continue;
                }
            };
            let verified = self
                .role
                .combine(&mine.state, [&mine.verifier_share, &theirs])
                .and_then(|message| self.role.finish(&mine.state, &message).map(|output| (message, output)));
            match verified {
                Ok((message, output)) => finishing.push((report, message, output)),
                Err(e) => {
                    helper.abandon(&report.nonce)?;
                    self.pending.remove(&report.nonce)?;
                    self.refuse("invalid proof", e.to_string())?;
                }
            }
        }
        let messages: Vec<(String, Vec<u8>)> =
            finishing.iter().map(|(report, message, _)| (report.nonce.clone(), message.clone())).collect();
        let finished = helper.finish_all(&messages)?;
        if finished.len() != messages.len() {
            let (done, asked) = (finished.len(), messages.len());
            return Err(AggregatorError::HelperAway(format!("it finished {done} of {asked} reports")));
        }
        let mut verified = 0;
        for ((report, _, output), finished) in finishing.into_iter().zip(finished) {
            match finished {
                Ok(()) => {
                    let neighbourhood = report.neighbourhood.as_deref().unwrap_or_default();
                    self.neighbourhoods.insert(&report.nonce, neighbourhood.as_bytes())?;
                    self.outputs.insert(&report.nonce, output)?;
                    verified += 1;
                }
                Err(e) => {
                    self.refuse("unreadable", e.to_string())?;
                }
            }
            self.pending.remove(&report.nonce)?;
        }
        Ok(verified)
    }

    /// Where the reports stand.
    pub fn counts(&self) -> Result<Counts> {
        let mut refused = BTreeMap::new();
        for item in self.refused.iter() {
            let (reason, count) = item?;
            let count = u64::from_be_bytes(count.as_ref().try_into().unwrap_or([0; 8]));
            refused.insert(String::from_utf8_lossy(&reason).into_owned(), count);
        }
        let withdrawn = refused.remove(WITHDRAWN).unwrap_or(0);
        Ok(Counts { pending: self.pending.len() as u64, verified: self.outputs.len() as u64, withdrawn, refused })
    }

    /// The campaign's results, collected at `now_ms` (after its deadline):
    /// one per neighbourhood of at least the minimum batch, and one of
    /// every other participant when they reach it too (see
    /// [`domicile_campaign::batches`]), each from both aggregators' shares
    /// over the same reports and signed by both; refused when no batch
    /// reaches the minimum. Released once: collected again, they are the
    /// same (fresh noise on a second aggregate would let the two be
    /// averaged, past the privacy the campaign promised).
    pub fn collect(&self, helper: &dyn Helper, now_ms: u64) -> Result<Vec<CampaignResult>> {
        if now_ms <= self.campaign.deadline_ms {
            return Err(AggregatorError::NotYet(self.campaign.id.clone()));
        }
        if let Some(released) = self.results()? {
            return Ok(released);
        }
        self.verify_pending(helper)?;
        // The participants' current reports only: one withdrawn while it
        // was being verified may have left an output share behind.
        let current = self.participants.iter().values().collect::<Result<std::collections::HashSet<_>, _>>()?;
        let mut verified = Vec::new();
        for item in self.outputs.iter() {
            let (nonce, _) = item?;
            if current.contains(&nonce) {
                let neighbourhood = self.neighbourhoods.get(&nonce)?.filter(|n| !n.is_empty());
                let neighbourhood = neighbourhood.map(|n| String::from_utf8_lossy(&n).into_owned());
                verified.push((String::from_utf8_lossy(&nonce).into_owned(), neighbourhood));
            }
        }
        let mut results = Vec::new();
        for batch in batches(&self.campaign, verified)? {
            results.push(self.release(helper, &batch)?);
        }
        // Kept only if no other collection released them meanwhile: the
        // first released are the results.
        let bytes = serde_json::to_vec(&results).expect("results serialise");
        if self.released.compare_and_swap(RELEASED, None as Option<&[u8]>, Some(bytes))?.is_err() {
            return self.results()?.ok_or_else(|| AggregatorError::Refused("the released results vanished".into()));
        }
        self.released.flush()?;
        Ok(results)
    }

    /// The result of one batch, signed by both aggregators.
    fn release(&self, helper: &dyn Helper, batch: &Batch) -> Result<CampaignResult> {
        let reports = batch.nonces.len() as u64;
        let mine = self.aggregate_share(batch)?;
        let theirs = helper.aggregate(batch)?;
        let aggregate = unshard(&self.campaign, [&mine, &theirs], reports)?;
        let neighbourhood = batch.neighbourhood.as_deref();
        let helper_signature = helper.sign_result(neighbourhood, &mine, reports, &aggregate)?;
        let signatures = [self.signer.sign(&self.campaign.id, neighbourhood, reports, &aggregate), helper_signature];
        let result = CampaignResult {
            campaign: self.campaign.id.clone(),
            neighbourhood: batch.neighbourhood.clone(),
            reports,
            aggregate,
            signatures,
        };
        result.verify(&self.campaign)?;
        Ok(result)
    }

    /// The leader's aggregate share of `batch`, computed (its noise drawn)
    /// once and kept: a collection tried again after a failure shows the
    /// helper the same share, not a second draw of the noise.
    pub(crate) fn aggregate_share(&self, batch: &Batch) -> Result<Vec<u8>> {
        let label = batch.neighbourhood.as_deref().unwrap_or("the others");
        let key = format!("share of {label}");
        let digest = batch_digest(&batch.nonces);
        let kept_share = |kept: &[u8]| match kept.split_at_checked(32) {
            Some((over, share)) if over == digest.as_slice() => Ok(share.to_vec()),
            _ => Err(AggregatorError::Refused(format!(
                "the batch of {label} is not the one the leader computed its share over: not released"
            ))),
        };
        if let Some(kept) = self.released.get(&key)? {
            return kept_share(&kept);
        }
        let share = aggregate_outputs(&self.role, &self.outputs, &batch.nonces)?;
        let kept = [digest.as_slice(), &share].concat();
        match self.released.compare_and_swap(&key, None as Option<&[u8]>, Some(kept))? {
            Ok(()) => Ok(share),
            // Another collection kept one first: that one is the share.
            Err(e) => kept_share(&e.current.unwrap_or_default()),
        }
    }

    /// The campaign's results, once released.
    pub fn results(&self) -> Result<Option<Vec<CampaignResult>>> {
        match self.released.get(RELEASED)? {
            Some(released) => serde_json::from_slice(&released).map(Some).map_err(|e| {
                AggregatorError::Refused(format!("the released results in the store are unreadable: {e}"))
            }),
            None => Ok(None),
        }
    }
}
