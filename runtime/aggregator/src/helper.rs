//! The helper's side: its share of each report, verified with the
//! leader's message, kept under the report's nonce.

use domicile_campaign::{unshard, Aggregate, AggregatorRole, Report, ResultSigner};

use crate::{AggregatorError, Helper, Result};

/// The helper's store: the state of each report under verification, the
/// output share of each verified one, and its aggregate share once
/// released.
pub struct HelperStore {
    role: AggregatorRole,
    signer: ResultSigner,
    states: sled::Tree,
    outputs: sled::Tree,
    released: sled::Tree,
}

/// The key of the released aggregate share, after the digest of the batch
/// it is over (32 bytes).
const RELEASED: &str = "released";

impl HelperStore {
    /// The helper's store in `db`, for `role` (aggregator 1), signing
    /// results with `signer`.
    pub fn open(db: &sled::Db, role: AggregatorRole, signer: ResultSigner) -> Result<HelperStore> {
        Ok(HelperStore {
            role,
            signer,
            states: db.open_tree("helper-states")?,
            outputs: db.open_tree("helper-outputs")?,
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
    /// for another. With noise, a second aggregate share over the same
    /// reports would have fresh noise, and the two together would say
    /// more than the privacy the campaign promised.
    fn aggregate(&self, nonces: &[String]) -> Result<Vec<u8>> {
        let batch = batch_digest(nonces);
        if let Some(released) = self.released.get(RELEASED)? {
            return released_share(&released, &batch);
        }
        let share = self.aggregate_once(nonces)?;
        // One key holds the batch and the share, swapped in only if none is
        // there: of two calls at once, the first released is the share.
        let release = [batch.as_slice(), share.as_slice()].concat();
        if let Err(e) = self.released.compare_and_swap(RELEASED, None as Option<&[u8]>, Some(release))? {
            let current = e.current.expect("a value was there");
            return released_share(&current, &batch);
        }
        self.released.flush()?;
        Ok(share)
    }

    fn sign_result(&self, leader_share: &[u8], reports: u64, aggregate: &Aggregate) -> Result<String> {
        let released = self.released.get(RELEASED)?.ok_or_else(|| {
            AggregatorError::Refused("the helper has released no aggregate share: nothing to sign".into())
        })?;
        let mine = &released[released.len().min(32)..];
        let campaign = self.role.campaign();
        let found = unshard(campaign, [leader_share, mine], reports)?;
        if &found != aggregate {
            return Err(AggregatorError::Refused(
                "the aggregate the leader asks to sign is not the one the two shares give: not signed".into(),
            ));
        }
        Ok(self.signer.sign(&campaign.id, reports, aggregate))
    }
}

impl HelperStore {
    fn aggregate_once(&self, nonces: &[String]) -> Result<Vec<u8>> {
        let mut outputs = Vec::with_capacity(nonces.len());
        for nonce in nonces {
            let output = self
                .outputs
                .get(nonce)?
                .ok_or_else(|| AggregatorError::Refused(format!("report {nonce} was not verified here")))?;
            outputs.push(output.to_vec());
        }
        Ok(self.role.aggregate(&outputs)?)
    }
}

/// The share released, when it is over `batch`; refused over another.
fn released_share(released: &[u8], batch: &[u8]) -> Result<Vec<u8>> {
    match released.split_at_checked(32) {
        Some((over, share)) if over == batch => Ok(share.to_vec()),
        _ => Err(AggregatorError::Refused(
            "the helper released its aggregate share once, over another batch of reports: a second would undo the noise"
                .into(),
        )),
    }
}

/// What names a batch: the digest of its reports' nonces, whatever their order.
fn batch_digest(nonces: &[String]) -> Vec<u8> {
    use sha2::Digest;
    let mut sorted: Vec<&String> = nonces.iter().collect();
    sorted.sort();
    let mut digest = sha2::Sha256::new();
    for nonce in sorted {
        digest.update((nonce.len() as u64).to_be_bytes());
        digest.update(nonce.as_bytes());
    }
    digest.finalize().to_vec()
}
