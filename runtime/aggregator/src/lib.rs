//! One of a campaign's two aggregators, as an organisation runs it: its
//! own store (sled), its own key, and the campaign it aggregates for.
//!
//! The **leader** ([`Leader`]) receives the residents' reports: a report
//! for another campaign, after the deadline, or a second time (same
//! nonce) is refused and counted; the others are kept as pending before
//! anything else, so that none is lost if the helper is away. Pending
//! reports are verified with the **helper** ([`HelperStore`], reached
//! through [`Helper`]): each aggregator opens its own share and starts the
//! proof's verification, the leader combines the two verifier shares (an
//! invalid proof refuses the report, counted), and each keeps its output
//! share under the report's nonce, so that a step tried again after a
//! failure counts nothing twice. After the deadline, the leader collects:
//! the two aggregate shares over the same reports make the aggregate, and
//! nothing is released below the campaign's minimum batch.
//!
//! The exchange between the two goes through [`Helper`]: over HTTP
//! between the two servers ([`serve`], `domicile aggregator serve`).

mod helper;
mod http;
mod leader;

pub use helper::HelperStore;
pub use http::{now_ms, serve, ServeOptions, Serving};
pub use leader::{Counts, Leader};

use domicile_campaign::{Aggregate, Batch, CampaignError, Report};

/// What can go wrong in an aggregator.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    #[error("the aggregator's store {0}")]
    Store(#[from] sled::Error),
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    #[error("the report is refused: {0}")]
    Refused(String),
    #[error("the helper cannot be reached ({0}); the pending reports are verified when it is back")]
    HelperAway(String),
    #[error("campaign `{0}` is still taking answers: its aggregate is collected after its deadline")]
    NotYet(String),
}

pub type Result<T, E = AggregatorError> = std::result::Result<T, E>;

/// The helper, as the leader reaches it (over HTTP between two
/// organisations; in one process in tests). Each call may be made again
/// after a failure: the helper answers it the same.
pub trait Helper {
    /// Opens the helper's share of `report` and starts its verification:
    /// the helper's verifier share.
    fn prepare(&self, report: &Report) -> Result<Vec<u8>>;
    /// Finishes the verification of report `nonce` with the leader's
    /// verifier message: the helper keeps its output share.
    fn finish(&self, nonce: &str, message: &[u8]) -> Result<()>;
    /// [`Helper::prepare`] of many reports in one exchange: per report, the
    /// helper's verifier share or why it refuses it. An error when the
    /// helper cannot be reached, or cannot keep what it prepares.
    fn prepare_all(&self, reports: &[Report]) -> Result<Vec<Result<Vec<u8>>>> {
        reports.iter().map(|report| answered(self.prepare(report))).collect()
    }
    /// [`Helper::finish`] of many reports in one exchange, each with its
    /// verifier message: per report, whether the helper kept its output share.
    fn finish_all(&self, messages: &[(String, Vec<u8>)]) -> Result<Vec<Result<()>>> {
        messages.iter().map(|(nonce, message)| answered(self.finish(nonce, message))).collect()
    }
    /// Forgets report `nonce`, whose proof did not verify.
    fn abandon(&self, nonce: &str) -> Result<()>;
    /// The helper's aggregate share of the reports of `batch`.
    fn aggregate(&self, batch: &Batch) -> Result<Vec<u8>>;
    /// The helper's signature of the result of `neighbourhood`'s batch
    /// (or the others'), once it finds the same `aggregate` over `reports`
    /// reports from the leader's aggregate share and its own released one.
    fn sign_result(
        &self,
        neighbourhood: Option<&str>,
        leader_share: &[u8],
        reports: u64,
        aggregate: &Aggregate,
    ) -> Result<String>;
}

/// An aggregator's aggregate share of the reports `nonces`, from the
/// output shares it kept of each in `outputs`; refused when one is missing.
fn aggregate_outputs(
    role: &domicile_campaign::AggregatorRole,
    outputs: &sled::Tree,
    nonces: &[String],
) -> Result<Vec<u8>> {
    let mut kept = Vec::with_capacity(nonces.len());
    for nonce in nonces {
        let output = outputs
            .get(nonce)?
            .ok_or_else(|| AggregatorError::Refused(format!("report {nonce} was not verified here")))?;
        kept.push(output.to_vec());
    }
    Ok(role.aggregate(&kept)?)
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

/// One report's answer in an exchange of many: the helper away, or its
/// store failing, fails the whole exchange (every report stays pending);
/// a refusal is that report's.
fn answered<T>(answer: Result<T>) -> Result<Result<T>> {
    match answer {
        Err(e @ (AggregatorError::HelperAway(_) | AggregatorError::Store(_))) => Err(e),
        answer => Ok(answer),
    }
}

#[cfg(test)]
mod tests;
