//! A campaign's result as both aggregators sign it: the aggregate and over
//! how many reports. Each signs only the aggregate it computed itself from
//! its own share and the other's, so a participant who checks both
//! signatures knows neither aggregator changed it alone.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{framed, Aggregate, Campaign, CampaignError, Result};

/// The released result of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignResult {
    pub campaign: String,
    /// Whose answers it aggregates: the participants of this neighbourhood;
    /// when absent, every participant not counted in a neighbourhood's
    /// result of its own (all of them, in a campaign without
    /// neighbourhoods). Each report is counted in one result only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbourhood: Option<String>,
    /// How many reports it aggregates.
    pub reports: u64,
    pub aggregate: Aggregate,
    /// The leader's signature, then the helper's (hexadecimal), each by
    /// the result key the campaign names for it.
    pub signatures: [String; 2],
}

/// An aggregator's key for signing results (ed25519; its public key is
/// the aggregator's `result_key` in the campaign).
pub struct ResultSigner {
    key: SigningKey,
}

impl ResultSigner {
    /// The signer of a 32-byte seed, in hexadecimal.
    pub fn from_hex(seed: &str) -> Result<ResultSigner> {
        let seed = hex::decode(seed.trim())
            .ok()
            .and_then(|s| <[u8; 32]>::try_from(s).ok())
            .ok_or_else(|| CampaignError::Invalid("a result key's secret is 64 hexadecimal characters".into()))?;
        Ok(ResultSigner { key: SigningKey::from_bytes(&seed) })
    }

    /// Its public key, for the campaign (hexadecimal).
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// The signature (hexadecimal) of `aggregate` over `reports` reports of
    /// `campaign`, those of `neighbourhood` (or of no neighbourhood of
    /// their own).
    pub fn sign(&self, campaign: &str, neighbourhood: Option<&str>, reports: u64, aggregate: &Aggregate) -> String {
        hex::encode(self.key.sign(&result_message(campaign, neighbourhood, reports, aggregate)).to_bytes())
    }
}

impl CampaignResult {
    /// Checks that it is a result of `campaign`, signed by both of its
    /// aggregators' result keys.
    pub fn verify(&self, campaign: &Campaign) -> Result<()> {
        if self.campaign != campaign.id {
            return Err(CampaignError::Refused(format!("it is the result of campaign `{}`", self.campaign)));
        }
        let message = result_message(&self.campaign, self.neighbourhood.as_deref(), self.reports, &self.aggregate);
        for (aggregator, signature) in campaign.aggregators.iter().zip(&self.signatures) {
            let key = hex::decode(&aggregator.result_key)
                .ok()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .and_then(|k| VerifyingKey::from_bytes(&k).ok());
            let signature = hex::decode(signature)
                .ok()
                .and_then(|s| <[u8; 64]>::try_from(s).ok())
                .map(|s| Signature::from_bytes(&s));
            let signed = match (key, signature) {
                (Some(key), Some(signature)) => key.verify(&message, &signature).is_ok(),
                _ => false,
            };
            if !signed {
                return Err(CampaignError::Refused(format!(
                    "the result is not signed by {}'s result key: it was altered, or made by someone else",
                    aggregator.name
                )));
            }
        }
        Ok(())
    }
}

/// What a result's signatures cover.
fn result_message(campaign: &str, neighbourhood: Option<&str>, reports: u64, aggregate: &Aggregate) -> Vec<u8> {
    let aggregate = serde_json::to_vec(aggregate).expect("an aggregate serialises");
    let reports = reports.to_be_bytes();
    let mut parts = vec![campaign.as_bytes(), &reports, &aggregate];
    // A neighbourhood's result does not verify as the others', nor the reverse.
    let neighbourhood = neighbourhood.map(|n| [b"neighbourhood ".as_slice(), n.as_bytes()].concat());
    parts.extend(neighbourhood.as_deref());
    [b"domicile campaign result v1\n".as_slice(), &framed(&parts)].concat()
}
