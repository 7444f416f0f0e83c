//! What each of a campaign's two aggregators does with the reports: open
//! its own share, verify each report's proof together with the other
//! aggregator (from the verifier shares they exchange, which reveal
//! nothing of the answer), sum the output shares of the reports that
//! verified, and, once the batch reaches the campaign's minimum, give its
//! aggregate share; the two aggregate shares make the aggregate.
//!
//! Every step takes and gives encoded bytes, as they cross between the
//! two aggregators' processes (the leader, which collects the reports,
//! and the helper).

use hpke::Serializable;
use prio::codec::{Encode, ParameterizedDecode};
use prio::dp::distributions::PureDpDiscreteLaplace;
use prio::dp::{DifferentialPrivacyStrategy, PureDpBudget, Rational};
use prio::field::{Field128, FieldElementWithInteger};
use prio::flp::{Type, TypeWithNoise};
use prio::vdaf::prio3::Prio3;
use prio::vdaf::xof::XofTurboShake128;
use prio::vdaf::{Aggregator, AggregatorWithNoise, Collector, VerifyTransition};

use crate::definition::Vdaf;
use crate::report::{encapped_key, share_aad, share_info, Aead, Kdf, Kem};
use crate::{Campaign, CampaignError, Report, Result};

type Prio3Of<T> = Prio3<T, XofTurboShake128, 32>;
type AggregateShareOf<T> = <Prio3Of<T> as prio::vdaf::Vdaf>::AggregateShare;

/// An aggregator's keys, hexadecimal: its HPKE key pair (the public key
/// goes in the campaign; the secret key stays with the aggregator), and
/// the ed25519 key it signs the result with.
#[derive(Clone)]
pub struct AggregatorKeys {
    pub secret: String,
    pub public: String,
    /// The result key's secret seed.
    pub result_secret: String,
    /// The result key, for the campaign.
    pub result_public: String,
}

impl std::fmt::Debug for AggregatorKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregatorKeys").field("public", &self.public).finish_non_exhaustive()
    }
}

impl AggregatorKeys {
    pub fn generate() -> AggregatorKeys {
        let (secret, public) = <Kem as hpke::Kem>::gen_keypair();
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        let result_secret = hex::encode(seed);
        let result_public = crate::ResultSigner::from_hex(&result_secret).expect("32 bytes").public_key();
        AggregatorKeys {
            secret: hex::encode(secret.to_bytes()),
            public: hex::encode(public.to_bytes()),
            result_secret,
            result_public,
        }
    }
}

/// One of a campaign's aggregators: which one, its secret key, and the
/// verification key the two share (32 random bytes, agreed between them,
/// never sent to residents).
pub struct AggregatorRole {
    campaign: Campaign,
    index: usize,
    secret: <Kem as hpke::Kem>::PrivateKey,
    verify_key: [u8; 32],
}

/// What an aggregator keeps of a report between the two steps of its
/// verification (`state`), and what it sends the other (`verifier_share`).
#[derive(Debug, Clone)]
pub struct Started {
    pub state: Vec<u8>,
    pub verifier_share: Vec<u8>,
}

/// A campaign's aggregate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Aggregate {
    /// The sum of the answers.
    Sum(u64),
    /// The sum of each number of the answers, or how many answers fell in
    /// each bucket of a histogram.
    Counts(Vec<u128>),
    /// The same, with the noise both aggregators added (a campaign with
    /// an epsilon): a count may come out a little off, or below zero.
    NoisyCounts(Vec<i128>),
}

impl Aggregate {
    /// The figures alone, as JSON: the sum, or the list of counts.
    pub fn figures(&self) -> serde_json::Value {
        match self {
            Aggregate::Sum(sum) => serde_json::json!(sum),
            Aggregate::Counts(counts) => serde_json::json!(counts),
            Aggregate::NoisyCounts(counts) => serde_json::json!(counts),
        }
    }
}

fn refused(why: impl std::fmt::Display) -> CampaignError {
    CampaignError::Refused(why.to_string())
}

/// Runs `$body` with `$vdaf` bound to the campaign's Prio3 instance,
/// whichever its type.
macro_rules! with_vdaf {
    ($campaign:expr, $vdaf:ident => $body:expr) => {
        match $campaign.vdaf()? {
            Vdaf::Sum($vdaf) => $body,
            Vdaf::SumVec($vdaf) => $body,
            Vdaf::Histogram($vdaf) => $body,
        }
    };
}

impl AggregatorRole {
    /// Aggregator `index` (0: the leader, 1: the helper) of `campaign`.
    pub fn new(campaign: Campaign, index: usize, secret: &str, verify_key: [u8; 32]) -> Result<AggregatorRole> {
        use hpke::Deserializable;
        if index > 1 {
            return Err(CampaignError::Invalid("a campaign has two aggregators, 0 and 1".into()));
        }
        let secret =
            hex::decode(secret).ok().and_then(|s| <Kem as hpke::Kem>::PrivateKey::from_bytes(&s).ok()).ok_or_else(
                || CampaignError::Invalid("the aggregator's secret key is not 64 hexadecimal characters".into()),
            )?;
        Ok(AggregatorRole { campaign, index, secret, verify_key })
    }

    /// The campaign it aggregates.
    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }

    /// Opens this aggregator's share of `report` and starts verifying its
    /// proof; refused when the report is not for this campaign, or its
    /// share does not open or decode.
    pub fn start(&self, report: &Report) -> Result<Started> {
        if report.campaign != self.campaign.id {
            return Err(refused(format!("it is for campaign `{}`", report.campaign)));
        }
        self.campaign.check_neighbourhood(report.neighbourhood.as_deref()).map_err(refused)?;
        let nonce: [u8; 16] = hex::decode(&report.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| refused("its nonce is not 32 hexadecimal characters"))?;
        let share = &report.shares[self.index];
        let key = encapped_key(&share.encapped_key).ok_or_else(|| refused("its share's key is not one"))?;
        let ciphertext = hex::decode(&share.ciphertext).map_err(|_| refused("its share is not hexadecimal"))?;
        let input_share = hpke::single_shot_open::<Aead, Kdf, Kem>(
            &hpke::OpModeR::Base,
            &self.secret,
            &key,
            &share_info(self.index),
            &ciphertext,
            &share_aad(&report.campaign, &report.nonce, &report.public_share, report.neighbourhood.as_deref()),
        )
        .map_err(|_| refused("its share does not open with this aggregator's key"))?;
        let public_share =
            hex::decode(&report.public_share).map_err(|_| refused("its public share is not hexadecimal"))?;
        let context = self.campaign.context();
        with_vdaf!(self.campaign, vdaf => self.start_with(&vdaf, &context, &nonce, &public_share, &input_share))
    }

    fn start_with<T: Type>(
        &self,
        vdaf: &Prio3Of<T>,
        context: &[u8],
        nonce: &[u8; 16],
        public_share: &[u8],
        input_share: &[u8],
    ) -> Result<Started> {
        let public_share = <Prio3Of<T> as prio::vdaf::Vdaf>::PublicShare::get_decoded_with_param(vdaf, public_share)
            .map_err(|e| refused(format!("its public share does not decode: {e}")))?;
        let input_share =
            <Prio3Of<T> as prio::vdaf::Vdaf>::InputShare::get_decoded_with_param(&(vdaf, self.index), input_share)
                .map_err(|e| refused(format!("its share does not decode: {e}")))?;
        let (state, share) = vdaf
            .verify_init(&self.verify_key, context, self.index, &(), nonce, &public_share, &input_share)
            .map_err(|e| refused(format!("its proof does not start: {e}")))?;
        Ok(Started { state: encode(&state)?, verifier_share: encode(&share)? })
    }

    /// The leader's: the verifier message of a report from both
    /// aggregators' verifier shares (this one's state decodes them);
    /// refused when the proof does not verify.
    pub fn combine(&self, state: &[u8], shares: [&[u8]; 2]) -> Result<Vec<u8>> {
        let context = self.campaign.context();
        with_vdaf!(self.campaign, vdaf => {
            let state = decode_state(&vdaf, self.index, state)?;
            let shares = shares
                .iter()
                .map(|s| ParameterizedDecode::get_decoded_with_param(&state, s).map_err(|e| refused(format!("a verifier share does not decode: {e}"))))
                .collect::<Result<Vec<_>>>()?;
            let message = vdaf
                .verifier_shares_to_message(&context, &(), shares)
                .map_err(|e| refused(format!("its proof does not verify: {e}")))?;
            encode(&message)
        })
    }

    /// This aggregator's output share of a report, from its state and the
    /// verifier message; refused when the proof does not verify.
    pub fn finish(&self, state: &[u8], message: &[u8]) -> Result<Vec<u8>> {
        let context = self.campaign.context();
        with_vdaf!(self.campaign, vdaf => {
            let state = decode_state(&vdaf, self.index, state)?;
            let message = ParameterizedDecode::get_decoded_with_param(&state, message)
                .map_err(|e| refused(format!("the verifier message does not decode: {e}")))?;
            match vdaf.verify_next(&context, state, message).map_err(|e| refused(format!("its proof does not verify: {e}")))? {
                VerifyTransition::Finish(output) => encode(&output),
                VerifyTransition::Continue(..) => Err(refused("Prio3 asked for another round")),
            }
        })
    }

    /// This aggregator's aggregate share of the output shares given, with
    /// its noise when the campaign promises differential privacy (each
    /// aggregator adds its own: the result stays private as long as one
    /// of them is honest).
    pub fn aggregate(&self, outputs: &[Vec<u8>]) -> Result<Vec<u8>> {
        fn aggregate_with<T: Type>(vdaf: &Prio3Of<T>, outputs: &[Vec<u8>]) -> Result<AggregateShareOf<T>> {
            let outputs = outputs
                .iter()
                .map(|o| {
                    <Prio3Of<T> as prio::vdaf::Vdaf>::OutputShare::get_decoded_with_param(&(vdaf, &()), o)
                        .map_err(|e| refused(format!("an output share does not decode: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            vdaf.aggregate(&(), outputs).map_err(refused)
        }
        fn with_noise<T: TypeWithNoise<PureDpDiscreteLaplace>>(
            vdaf: &Prio3Of<T>,
            outputs: &[Vec<u8>],
            epsilon: Option<f64>,
        ) -> Result<Vec<u8>> {
            let mut share = aggregate_with(vdaf, outputs)?;
            if let Some(epsilon) = epsilon {
                let epsilon = Rational::try_from(epsilon as f32).map_err(|e| refused(format!("its epsilon: {e}")))?;
                let budget = PureDpBudget::new(epsilon).map_err(|e| refused(format!("its epsilon: {e}")))?;
                let strategy = PureDpDiscreteLaplace::from_budget(budget);
                vdaf.add_noise_to_agg_share(&strategy, &(), &mut share, outputs.len())
                    .map_err(|e| refused(format!("cannot add noise: {e}")))?;
            }
            encode(&share)
        }
        let epsilon = self.campaign.epsilon;
        match self.campaign.vdaf()? {
            // A sum takes no noise (the campaign's check refuses an epsilon for one).
            Vdaf::Sum(vdaf) => encode(&aggregate_with(&vdaf, outputs)?),
            Vdaf::SumVec(vdaf) => with_noise(&vdaf, outputs, epsilon),
            Vdaf::Histogram(vdaf) => with_noise(&vdaf, outputs, epsilon),
        }
    }
}

/// Refuses a batch of `reports` reports below the campaign's minimum:
/// nothing of it is released.
pub fn check_batch(campaign: &Campaign, reports: u64) -> Result<()> {
    if reports < campaign.minimum_batch {
        return Err(refused(format!(
            "{reports} reports, fewer than the campaign's minimum of {}: nothing is released",
            campaign.minimum_batch
        )));
    }
    Ok(())
}

/// The reports of one released result: those of a neighbourhood, or
/// (`neighbourhood: None`) every other.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    pub neighbourhood: Option<String>,
    /// The reports' nonces, in order.
    pub nonces: Vec<String>,
}

/// How a campaign's verified `reports` (each a nonce and its neighbourhood)
/// are released, each in one result at most: one per neighbourhood of at
/// least the campaign's minimum, then every other report together (of no
/// neighbourhood, or of one too small to be released alone), when they
/// reach the minimum too. Refused when nothing reaches it.
pub fn batches(campaign: &Campaign, reports: impl IntoIterator<Item = (String, Option<String>)>) -> Result<Vec<Batch>> {
    let mut by_neighbourhood: std::collections::BTreeMap<Option<String>, Vec<String>> = Default::default();
    let mut total = 0u64;
    for (nonce, neighbourhood) in reports {
        by_neighbourhood.entry(neighbourhood).or_default().push(nonce);
        total += 1;
    }
    check_batch(campaign, total)?;
    let (mut released, mut others) = (Vec::new(), Vec::new());
    for (neighbourhood, mut nonces) in by_neighbourhood {
        nonces.sort();
        match neighbourhood {
            Some(code) if nonces.len() as u64 >= campaign.minimum_batch => {
                released.push(Batch { neighbourhood: Some(code), nonces })
            }
            _ => others.extend(nonces),
        }
    }
    if others.len() as u64 >= campaign.minimum_batch {
        others.sort();
        released.push(Batch { neighbourhood: None, nonces: others });
    }
    Ok(released)
}

/// The aggregate of `reports` reports from the two aggregators' aggregate
/// shares; refused below the campaign's minimum batch.
pub fn unshard(campaign: &Campaign, shares: [&[u8]; 2], reports: u64) -> Result<Aggregate> {
    check_batch(campaign, reports)?;
    let reports = usize::try_from(reports).map_err(refused)?;
    fn decoded<T: Type>(
        vdaf: &Prio3Of<T>,
        shares: [&[u8]; 2],
    ) -> Result<Vec<<Prio3Of<T> as prio::vdaf::Vdaf>::AggregateShare>> {
        shares
            .iter()
            .map(|s| {
                <Prio3Of<T> as prio::vdaf::Vdaf>::AggregateShare::get_decoded_with_param(&(vdaf, &()), s)
                    .map_err(|e| refused(format!("an aggregate share does not decode: {e}")))
            })
            .collect()
    }
    let counts = |counts: Vec<u128>| match campaign.epsilon {
        None => Aggregate::Counts(counts),
        // The noise is added in the field: below zero is the top of it.
        Some(_) => Aggregate::NoisyCounts(counts.into_iter().map(signed).collect()),
    };
    Ok(match campaign.vdaf()? {
        Vdaf::Sum(vdaf) => Aggregate::Sum(vdaf.unshard(&(), decoded(&vdaf, shares)?, reports).map_err(refused)?),
        Vdaf::SumVec(vdaf) => counts(vdaf.unshard(&(), decoded(&vdaf, shares)?, reports).map_err(refused)?),
        Vdaf::Histogram(vdaf) => counts(vdaf.unshard(&(), decoded(&vdaf, shares)?, reports).map_err(refused)?),
    })
}

/// A count of Field128 as a signed number: the upper half of the field
/// holds the counts below zero that noise may make.
fn signed(count: u128) -> i128 {
    let modulus = Field128::modulus();
    if count > modulus / 2 {
        -((modulus - count) as i128)
    } else {
        count as i128
    }
}

fn decode_state<T: Type>(
    vdaf: &Prio3Of<T>,
    index: usize,
    state: &[u8],
) -> Result<<Prio3Of<T> as Aggregator<32, 16>>::VerifyState> {
    ParameterizedDecode::get_decoded_with_param(&(vdaf, index), state)
        .map_err(|e| refused(format!("a verification state does not decode: {e}")))
}

fn encode(value: &impl Encode) -> Result<Vec<u8>> {
    value.get_encoded().map_err(|e| refused(format!("cannot encode: {e}")))
}
