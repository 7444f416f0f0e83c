//! One report per resident: the resident's node vouches for each report it
//! sends (an [`Attestation`], signed by its attester key), naming the
//! participant by a tag of its own (the same for a resident and a campaign
//! every time, unlinkable from one campaign to the next, and saying nothing
//! of who the resident is). The aggregators take only reports attested by
//! a node they trust, and one per participant; a participant who leaves
//! withdraws their report with a [`Withdrawal`] the node signs too.
//!
//! What it does not protect against: a dishonest operator, who can create
//! residents, or sign for participants who do not exist.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{framed, CampaignError, Report, Result};

/// A node's word that `report` is the one report of `participant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The participant's tag (64 hexadecimal characters).
    pub participant: String,
    /// The node's attester key (64 hexadecimal characters).
    pub attester: String,
    /// Its signature (128 hexadecimal characters) of the campaign, the
    /// participant and the report's digest.
    pub signature: String,
}

/// A report, as a node sends it to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestedReport {
    pub report: Report,
    pub attestation: Attestation,
}

/// A participant's report withdrawn, before the deadline, as their node
/// signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    pub campaign: String,
    pub participant: String,
    /// The report withdrawn.
    pub nonce: String,
    pub attester: String,
    pub signature: String,
}

/// A node's key for attesting its residents' reports.
pub struct Attester {
    key: SigningKey,
}

impl Attester {
    /// The attester of the 32-byte secret `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Attester {
        Attester { key: SigningKey::from_bytes(&seed) }
    }

    /// Its public key, as aggregators are told to trust it (hexadecimal).
    pub fn public_key(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// The tag of `resident` in `campaign`: the same every time, another
    /// in every campaign, and derived from the node's secret, so that
    /// nobody else can tell which resident it names.
    pub fn participant(&self, campaign: &str, resident: &str) -> String {
        let secret = Sha256::new()
            .chain_update(b"domicile campaign participant key\n")
            .chain_update(self.key.to_bytes())
            .finalize();
        hex::encode(
            Sha256::new()
                .chain_update(secret)
                .chain_update(framed(&[campaign.as_bytes(), resident.as_bytes()]))
                .finalize(),
        )
    }

    /// Attests `report` as the one of `participant`.
    pub fn attest(&self, report: Report, participant: &str) -> AttestedReport {
        let message = attested_message(&report, participant);
        let attestation = Attestation {
            participant: participant.to_owned(),
            attester: self.public_key(),
            signature: hex::encode(self.key.sign(&message).to_bytes()),
        };
        AttestedReport { report, attestation }
    }

    /// Withdraws report `nonce` of `participant` from `campaign`.
    pub fn withdraw(&self, campaign: &str, participant: &str, nonce: &str) -> Withdrawal {
        let message = withdrawal_message(campaign, participant, nonce);
        Withdrawal {
            campaign: campaign.to_owned(),
            participant: participant.to_owned(),
            nonce: nonce.to_owned(),
            attester: self.public_key(),
            signature: hex::encode(self.key.sign(&message).to_bytes()),
        }
    }
}

impl AttestedReport {
    /// Checks that one of the `trusted` attester keys (hexadecimal) signed
    /// this report for its participant; returns the participant's tag.
    pub fn verify(&self, trusted: &[String]) -> Result<&str> {
        let a = &self.attestation;
        check_signature(&a.attester, &a.signature, &attested_message(&self.report, &a.participant), trusted)?;
        Ok(&a.participant)
    }
}

impl Withdrawal {
    /// Checks that one of the `trusted` attester keys signed this withdrawal.
    pub fn verify(&self, trusted: &[String]) -> Result<()> {
        let message = withdrawal_message(&self.campaign, &self.participant, &self.nonce);
        check_signature(&self.attester, &self.signature, &message, trusted)
    }
}

fn check_signature(attester: &str, signature: &str, message: &[u8], trusted: &[String]) -> Result<()> {
    if !trusted.iter().any(|t| t.eq_ignore_ascii_case(attester)) {
        return Err(CampaignError::Refused("it is not attested by a node this aggregator trusts".into()));
    }
    let key = hex::decode(attester)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| CampaignError::Refused("its attester key is not an ed25519 key".into()))?;
    let signature = hex::decode(signature)
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .map(|s| Signature::from_bytes(&s))
        .ok_or_else(|| CampaignError::Refused("its attestation is not a signature".into()))?;
    key.verify(message, &signature)
        .map_err(|_| CampaignError::Refused("its attestation does not verify: it was altered, or forged".into()))
}

/// What an attestation signs: its context, the campaign, the participant
/// and the digest of everything the report carries.
fn attested_message(report: &Report, participant: &str) -> Vec<u8> {
    let mut digest = Sha256::new();
    for part in [&report.campaign, &report.nonce, &report.public_share] {
        digest.update(framed(&[part.as_bytes()]));
    }
    if let Some(neighbourhood) = &report.neighbourhood {
        digest.update(framed(&[b"neighbourhood", neighbourhood.as_bytes()]));
    }
    for share in &report.shares {
        digest.update(framed(&[share.encapped_key.as_bytes(), share.ciphertext.as_bytes()]));
    }
    [
        b"domicile campaign attestation v1\n".as_slice(),
        &framed(&[report.campaign.as_bytes(), participant.as_bytes()]),
        &digest.finalize(),
    ]
    .concat()
}

fn withdrawal_message(campaign: &str, participant: &str, nonce: &str) -> Vec<u8> {
    [
        b"domicile campaign withdrawal v1\n".as_slice(),
        &framed(&[campaign.as_bytes(), participant.as_bytes(), nonce.as_bytes()]),
    ]
    .concat()
}
