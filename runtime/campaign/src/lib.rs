//! Campaigns: a question many residents answer together, of which nobody
//! sees anybody's answer, only the aggregate (compare one's month with
//! one's neighbourhood's; give a city the figures of its mobility plan).
//!
//! A campaign ([`Campaign`]) is a file signed by a key the resident trusts
//! for campaigns: who asks and why, which app computes the answer inside
//! each space, the Prio3 type and its bounds, the two aggregators (who must
//! not collude), the minimum batch, the deadline. It is verified before it
//! is parsed ([`Campaign::open`]).
//!
//! A resident who joins gives the app's answer to [`Campaign::report`]: it
//! is checked against the declared bounds (out of bounds is refused, never
//! clamped), split by Prio3 into two shares with a proof of validity (the
//! `prio` crate, libprio-rs: no scheme of ours), and each share encrypted
//! to its aggregator with HPKE, as DAP does. What leaves the space is the
//! [`Report`]: each share alone is uniformly random.
//!
//! The resident's node attests each report as the one of its participant
//! ([`Attester`]): aggregators take one attested report per participant.
//!
//! Each aggregator ([`AggregatorRole`]) opens its own share only, and the
//! two verify each report's proof together from what they exchange (the
//! verifier shares), without either learning the answer; an invalid proof
//! refuses the report. Each sums the output shares of the reports it
//! accepted into an aggregate share; the two aggregate shares together
//! give the aggregate ([`unshard`]), and only once the batch reaches the
//! campaign's minimum. Both sign the result ([`CampaignResult`]), each
//! the aggregate it computed itself.

mod aggregate;
mod attestation;
mod definition;
mod report;
mod result;

pub use aggregate::{batches, check_batch, unshard, Aggregate, AggregatorKeys, AggregatorRole, Batch, Started};
pub use attestation::{Attestation, AttestedReport, Attester, Withdrawal};
pub use definition::{
    is_campaign_id, signed_message, Aggregation, Aggregator, Campaign, Neighbourhoods, Question, MAX_CAMPAIGN_BYTES,
};
/// The organisers' keys campaigns are checked against.
pub use ed25519_dalek::VerifyingKey;
pub use report::{EncryptedShare, Report};
pub use result::{CampaignResult, ResultSigner};

/// What can go wrong with a campaign, a report or an aggregation.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("the campaign's signature does not verify with any key trusted for campaigns: it was not signed by a key you trust for campaigns, or it was altered since; ask its organiser where to get it and which key signs it")]
    Unsigned,
    #[error("the campaign is not valid: {0}")]
    Invalid(String),
    #[error("the answer does not fit the campaign's bounds: {0}")]
    OutOfBounds(String),
    #[error("the report is refused: {0}")]
    Refused(String),
    #[error("campaign `{id}` took answers until its deadline ({deadline_ms} ms since the epoch): it is closed")]
    Closed { id: String, deadline_ms: u64 },
}

pub type Result<T, E = CampaignError> = std::result::Result<T, E>;

/// Each part after its length, so that no two lists of parts frame alike
/// (what is encrypted or signed over several texts).
pub(crate) fn framed(parts: &[&[u8]]) -> Vec<u8> {
    parts.iter().flat_map(|p| [&(p.len() as u64).to_be_bytes()[..], p].concat()).collect()
}

#[cfg(test)]
mod tests;
