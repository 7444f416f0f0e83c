//! The helper's side: its share of each report, verified with the
//! leader's message, kept under the report's nonce.

use domicile_campaign::{check_batch, unshard, Aggregate, AggregatorRole, Batch, Report, ResultSigner};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::{aggregate_outputs, batch_digest, AggregatorError, Helper, Result};

/// The helper's store: the state of each report under verification, the
/// output share and neighbourhood of each verified one, and its aggregate
/// shares once released.
pub struct HelperStore {
    role: AggregatorRole,
    signer: ResultSigner,
    states: sled::Tree,
    outputs: sled::Tree,
    /// The neighbourhood of each report prepared here, as it came bound to
    /// the helper's share (empty for none).
    neighbourhoods: sled::Tree,
    /// Each released aggregate share, under its batch's label, after the
    /// digest of the batch (32 bytes) and its count of reports (8); and,
    /// under `report NONCE`, the label of the batch each report was
    /// released in.
    released: sled::Tree,
}

impl HelperStore {
    /// The helper's store in `db`, for `role` (aggregator 1), signing
    /// results with `signer`.
    pub fn open(db: &sled::Db, role: AggregatorRole, signer: ResultSigner) -> Result<HelperStore> {
        Ok(HelperStore {
            role,
            signer,
            states: db.open_tree("helper-states")?,
            outputs: db.open_tree("helper-outputs")?,
            neighbourhoods: db.open_tree("helper-neighbourhoods")?,
            released: db.open_tree("helper-released")?,
        })
    }
}

impl Helper for HelperStore {
    fn prepare(&self, report: &Report) -> Result<Vec<u8>> {
        // The same share again for a report prepared before (Prio3's
        // preparation has no randomness): a leader that failed between
        // the helper's finish and its own tries again.
        let started = self.role.start(report)?;
        if !self.outputs.contains_key(&report.nonce)? {
            let neighbourhood = report.neighbourhood.as_deref().unwrap_or_default();
            self.neighbourhoods.insert(&report.nonce, neighbourhood.as_bytes())?;
            self.states.insert(&report.nonce, started.state)?;
        }
        Ok(started.verifier_share)
    }

    fn finish(&self, nonce: &str, message: &[u8]) -> Result<()> {
        if self.outputs.contains_key(nonce)? {
            return Ok(());
        }
        let state = self
            .states
            .get(nonce)?
            .ok_or_else(|| AggregatorError::Refused(format!("report {nonce} was not prepared here")))?;
        let output = self.role.finish(&state, message)?;
        self.outputs.insert(nonce, output)?;
        self.states.remove(nonce)?;
        self.outputs.flush()?;
        Ok(())
    }

    fn abandon(&self, nonce: &str) -> Result<()> {
        self.states.remove(nonce)?;
        Ok(())
    }

    /// Released once: the same share again for the same batch, and none
    /// for another batch under the same label, nor for a batch holding a
    /// report released in another (with noise, a second aggregate share
    /// over the same reports would have fresh noise, and the two together
    /// would say more than the privacy the campaign promised; without,
    /// two overlapping batches would give their difference away). Below
    /// the campaign's minimum, nothing is released.
    fn aggregate(&self, batch: &Batch) -> Result<Vec<u8>> {
        check_batch(self.role.campaign(), batch.nonces.len() as u64)?;
        let label = batch_label(batch.neighbourhood.as_deref());
        let digest = batch_digest(&batch.nonces);
        if let Some(released) = self.released.get(&label)? {
            return released_share(&released, &digest);
        }
        if let Some(code) = &batch.neighbourhood {
            for nonce in &batch.nonces {
                if self.neighbourhoods.get(nonce)?.as_deref() != Some(code.as_bytes()) {
                    return Err(AggregatorError::Refused(format!(
                        "report {nonce} is not of neighbourhood {code} here: not released"
                    )));
                }
            }
        }
        let share = aggregate_outputs(&self.role, &self.outputs, &batch.nonces)?;
        let count = (batch.nonces.len() as u64).to_be_bytes();
        let release = [digest.as_slice(), &count, share.as_slice()].concat();
        // The label and every report of the batch in one transaction: of
        // two releases at once, the first is the one.
        let outcome = self.released.transaction(|tx| {
            if let Some(current) = tx.get(&label)? {
                return Ok(Some(current));
            }
            for nonce in &batch.nonces {
                let key = released_report(nonce);
                match tx.get(&key)? {
                    Some(other) if other != label => {
                        return Err(ConflictableTransactionError::Abort(format!(
                            "report {nonce} was released in another batch: a second would give it away"
                        )))
                    }
                    _ => {
                        tx.insert(key, label.as_slice())?;
                    }
                }
            }
            tx.insert(label.as_slice(), release.as_slice())?;
            Ok(None)
        });
        match outcome {
            Ok(None) => {
                self.released.flush()?;
                Ok(share)
            }
            Ok(Some(current)) => released_share(&current, &digest),
            Err(TransactionError::Abort(why)) => Err(AggregatorError::Refused(why)),
            Err(TransactionError::Storage(e)) => Err(AggregatorError::Store(e)),
        }
    }

    fn sign_result(
        &self,
        neighbourhood: Option<&str>,
        leader_share: &[u8],
        reports: u64,
        aggregate: &Aggregate,
    ) -> Result<String> {
        let released = self.released.get(batch_label(neighbourhood))?.ok_or_else(|| {
            AggregatorError::Refused("the helper has released no aggregate share for it: nothing to sign".into())
        })?;
        let (count, mine) = released.get(32..).and_then(|r| r.split_at_checked(8)).unwrap_or((&[], &[]));
        // The count of reports is the batch's, not the leader's word.
        if count != reports.to_be_bytes() {
            return Err(AggregatorError::Refused(format!(
                "the helper released its share over another number of reports than {reports}: not signed"
            )));
        }
        let campaign = self.role.campaign();
        let found = unshard(campaign, [leader_share, mine], reports)?;
        if &found != aggregate {
            return Err(AggregatorError::Refused(
                "the aggregate the leader asks to sign is not the one the two shares give: not signed".into(),
            ));
        }
        Ok(self.signer.sign(&campaign.id, neighbourhood, reports, aggregate))
    }
}

/// The key of a batch's released share: its neighbourhood's, or the
/// others' (no code of a neighbourhood has a space).
fn batch_label(neighbourhood: Option<&str>) -> Vec<u8> {
    match neighbourhood {
        Some(code) => [b"batch of ".as_slice(), code.as_bytes()].concat(),
        None => b"batch of the others".to_vec(),
    }
}

/// The key of the label of the batch report `nonce` was released in.
fn released_report(nonce: &str) -> Vec<u8> {
    [b"report ".as_slice(), nonce.as_bytes()].concat()
}

/// The share released, when it is over `batch`; refused over another.
fn released_share(released: &[u8], batch: &[u8]) -> Result<Vec<u8>> {
    match released.split_at_checked(32) {
        Some((over, counted_share)) if over == batch => Ok(counted_share.get(8..).unwrap_or_default().to_vec()),
        _ => Err(AggregatorError::Refused(
            "the helper released this aggregate share once, over another batch of reports: a second would undo the noise"
                .into(),
        )),
    }
}
