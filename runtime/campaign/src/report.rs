//! What a resident's space sends for a campaign: the answer split by
//! Prio3 into two shares (with the proof that it is within bounds), each
//! encrypted to its aggregator.

use hpke::{Deserializable, Serializable};
use prio::codec::Encode;
use prio::flp::Type;
use prio::vdaf::prio3::Prio3;
use prio::vdaf::xof::XofTurboShake128;
use prio::vdaf::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::definition::{public_key, Measurement, Vdaf};
use crate::{Campaign, CampaignError, Result};

pub(crate) type Kem = hpke::kem::X25519HkdfSha256;
pub(crate) type Kdf = hpke::kdf::HkdfSha256;
pub(crate) type Aead = hpke::aead::ChaCha20Poly1305;

/// One resident's report for a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub campaign: String,
    /// 16 random bytes (hexadecimal): the report's identity, and its
    /// nonce for Prio3.
    pub nonce: String,
    /// Prio3's public share (hexadecimal).
    pub public_share: String,
    /// The input share of each aggregator, encrypted to it, in the order
    /// of the campaign's aggregators.
    pub shares: [EncryptedShare; 2],
    /// The neighbourhood the participant added, when the campaign gives
    /// its result per neighbourhood: readable by both aggregators, and
    /// bound to both shares (a share does not open under another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbourhood: Option<String>,
}

/// An input share encrypted to one aggregator (HPKE base mode, X25519,
/// HKDF-SHA256, ChaCha20-Poly1305).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptedShare {
    pub encapped_key: String,
    pub ciphertext: String,
}

impl Campaign {
    /// The report of `answer` (an app's output) made at `now_ms`, in the
    /// participant's `neighbourhood` if they add one: checked against the
    /// campaign's deadline, bounds and kind of neighbourhood, split into
    /// two shares with its proof of validity, each encrypted to its
    /// aggregator.
    pub fn report(&self, answer: &Value, neighbourhood: Option<&str>, now_ms: u64) -> Result<Report> {
        if now_ms > self.deadline_ms {
            return Err(CampaignError::Closed { id: self.id.clone(), deadline_ms: self.deadline_ms });
        }
        self.check_neighbourhood(neighbourhood)?;
        let measurement = self.measurement(answer)?;
        let mut nonce = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let context = self.context();
        let (public_share, input_shares) = match (self.vdaf()?, measurement) {
            (Vdaf::Sum(vdaf), Measurement::Sum(m)) => shard(&vdaf, &context, &m, &nonce)?,
            (Vdaf::SumVec(vdaf), Measurement::SumVec(m)) => shard(&vdaf, &context, &m, &nonce)?,
            (Vdaf::Histogram(vdaf), Measurement::Histogram(m)) => shard(&vdaf, &context, &m, &nonce)?,
            _ => unreachable!("a campaign's measurement is of its own aggregation"),
        };
        let public_share = hex::encode(public_share);
        let nonce = hex::encode(nonce);
        let mut shares = Vec::with_capacity(2);
        for (index, (aggregator, input_share)) in self.aggregators.iter().zip(input_shares).enumerate() {
            let key = public_key(&aggregator.hpke_public_key)
                .ok_or_else(|| CampaignError::Invalid(format!("aggregator `{}`'s key", aggregator.name)))?;
            let (encapped_key, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, Kem>(
                &hpke::OpModeS::Base,
                &key,
                &share_info(index),
                &input_share,
                &share_aad(&self.id, &nonce, &public_share, neighbourhood),
            )
            .map_err(|e| CampaignError::Refused(format!("cannot encrypt a share: {e}")))?;
            shares.push(EncryptedShare {
                encapped_key: hex::encode(encapped_key.to_bytes()),
                ciphertext: hex::encode(ciphertext),
            });
        }
        let shares: [EncryptedShare; 2] = shares.try_into().expect("two aggregators");
        Ok(Report {
            campaign: self.id.clone(),
            nonce,
            public_share,
            shares,
            neighbourhood: neighbourhood.map(str::to_owned),
        })
    }
}

/// The public share and the two input shares of `measurement`, encoded.
fn shard<T: Type>(
    vdaf: &Prio3<T, XofTurboShake128, 32>,
    context: &[u8],
    measurement: &T::Measurement,
    nonce: &[u8; 16],
) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let (public_share, input_shares) = vdaf
        .shard(context, measurement, nonce)
        .map_err(|e| CampaignError::OutOfBounds(format!("Prio3 refuses it: {e}")))?;
    let encoded = |e: prio::codec::CodecError| CampaignError::Refused(format!("cannot encode a share: {e}"));
    let input_shares = input_shares.iter().map(|s| s.get_encoded().map_err(encoded)).collect::<Result<Vec<_>>>()?;
    Ok((public_share.get_encoded().map_err(encoded)?, input_shares))
}

/// HPKE's `info` for the share of aggregator `index`: a share encrypted
/// for one aggregator does not open as the other's.
pub(crate) fn share_info(index: usize) -> Vec<u8> {
    [b"domicile campaign input share ".as_slice(), &[index as u8]].concat()
}

/// HPKE's associated data: the share is bound to its campaign, its report,
/// the report's public share and the participant's neighbourhood, if any.
pub(crate) fn share_aad(campaign: &str, nonce: &str, public_share: &str, neighbourhood: Option<&str>) -> Vec<u8> {
    let mut parts = vec![campaign.as_bytes(), nonce.as_bytes(), public_share.as_bytes()];
    parts.extend(neighbourhood.map(str::as_bytes));
    crate::framed(&parts)
}

/// The encapsulated key of an encrypted share, from its hexadecimal.
pub(crate) fn encapped_key(hex_key: &str) -> Option<<Kem as hpke::Kem>::EncappedKey> {
    <Kem as hpke::Kem>::EncappedKey::from_bytes(&hex::decode(hex_key).ok()?).ok()
}
