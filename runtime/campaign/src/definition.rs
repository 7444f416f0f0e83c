//! What a campaign is, as its organiser signs it, and the checks it must
//! pass before a resident is shown it.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use prio::vdaf::prio3::{Prio3Histogram, Prio3Sum, Prio3SumVec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CampaignError, Result};

/// The largest campaign file read (its signature is checked first).
pub const MAX_CAMPAIGN_BYTES: usize = 64 * 1024;
const MAX_TEXT: usize = 2000;
const MAX_INPUT: usize = 16 * 1024;
const MAX_BUCKETS: usize = 1000;
const MAX_VECTOR: usize = 1000;
const MAX_SUM: u64 = 1 << 40;

/// A campaign, as its organiser signs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    /// Lower-case letters, digits, `.` and `-`: `fr.nantes.energy-2026`.
    pub id: String,
    pub organiser: String,
    /// Why the organiser asks, shown to the resident before they join.
    pub purpose: String,
    pub question: Question,
    /// The Prio3 type and its bounds (part of what the resident consents to).
    pub aggregation: Aggregation,
    /// The two aggregators, who must not collude (for a city: the city and
    /// an independent body): each receives one share of each report.
    pub aggregators: [Aggregator; 2],
    /// Below this many reports, nothing is released.
    pub minimum_batch: u64,
    /// The differential privacy of the aggregate, when the organiser
    /// promises noise on it (epsilon: smaller is more private).
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Reports made after this time (ms since the Unix epoch) are refused.
    pub deadline_ms: u64,
    /// Who sees the result (every participant gets it back).
    pub published_to: String,
    /// The neighbourhood a participant may add to their answer, so that
    /// the result is also given per neighbourhood; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbourhoods: Option<Neighbourhoods>,
}

/// The kind of neighbourhood a campaign's result is given by: a code the
/// participant sets themselves, and nothing else about where they live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Neighbourhoods {
    /// A French postcode (5 digits: `44000`).
    Postcode,
    /// An IRIS, INSEE's unit of about 2,000 inhabitants (9 characters:
    /// the commune's code, then 4 digits: `443090101`, `2A0040000`).
    Iris,
}

impl Neighbourhoods {
    /// What a code of this kind is, for a resident who typed another.
    pub fn describe(self) -> &'static str {
        match self {
            Neighbourhoods::Postcode => "a postcode (5 digits, like 44000)",
            Neighbourhoods::Iris => {
                "an IRIS code (9 characters: the commune's INSEE code, then 4 digits, like 443090101)"
            }
        }
    }

    /// Whether `code` is one of this kind.
    pub fn admits(self, code: &str) -> bool {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        match self {
            Neighbourhoods::Postcode => code.len() == 5 && digits(code),
            Neighbourhoods::Iris => {
                code.len() == 9
                    && code.is_ascii()
                    && (digits(&code[..2]) || code[..2] == *"2A" || code[..2] == *"2B")
                    && digits(&code[2..])
            }
        }
    }
}

/// What each space computes, with which app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// The app that computes the answer inside the space.
    pub app: String,
    /// What it computes, in words: "kWh of each of the last 12 months".
    pub computes: String,
    pub unit: String,
    /// What the app is run with (its JSON input).
    #[serde(default)]
    pub input: Value,
    /// Where the answer is in the app's output: a JSON Pointer (RFC 6901,
    /// `/months/0/kwh`; empty for the whole output).
    #[serde(default)]
    pub answer: String,
    /// For a vector, instead of `answer`: where each of its numbers is in
    /// the app's output, one JSON Pointer each, in order; a number the
    /// output does not have counts 0 (no trip by bus: 0 km by bus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<String>,
    /// A sum's or a vector's numbers are measured quantities (km, kWh,
    /// euros), rounded to the nearest whole before their bounds are checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rounded: bool,
}

/// The Prio3 type of a campaign's answers, with the bounds every answer
/// must keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Aggregation {
    /// One whole number from 0 to `max`; the aggregate is their sum.
    Sum { max: u64 },
    /// `length` whole numbers, each from 0 to `max`; the aggregate is
    /// their sum, element by element.
    SumVec { length: usize, max: u64 },
    /// One number, counted in the bucket its value falls in: below
    /// `bounds[0]`, between two bounds (the lower one included), or from
    /// the last bound up; the aggregate is how many fell in each.
    Histogram { bounds: Vec<f64> },
}

/// One of the two aggregators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregator {
    pub name: String,
    /// Where reports go: `https://...` (or `http://` to this machine).
    pub url: String,
    /// Its HPKE public key (X25519, 64 hexadecimal characters): its share
    /// of each report is encrypted to it.
    pub hpke_public_key: String,
    /// The public key it signs the result with (ed25519, 64 hexadecimal
    /// characters).
    pub result_key: String,
}

/// A campaign's Prio3 instance, for two aggregators.
pub(crate) enum Vdaf {
    Sum(Prio3Sum),
    SumVec(Prio3SumVec),
    Histogram(Prio3Histogram),
}

/// An answer, encoded for its campaign's Prio3 type.
pub(crate) enum Measurement {
    Sum(u64),
    SumVec(Vec<u128>),
    Histogram(usize),
}

impl Campaign {
    /// The campaign in `bytes`, once `signature` (64 bytes, hexadecimal)
    /// verifies with one of the keys `trusted` for campaigns; verified
    /// before anything of it is parsed, then checked.
    pub fn open(bytes: &[u8], signature: &str, trusted: &[VerifyingKey]) -> Result<Campaign> {
        if bytes.len() > MAX_CAMPAIGN_BYTES {
            return Err(CampaignError::Invalid(format!("the file is over {MAX_CAMPAIGN_BYTES} bytes")));
        }
        let signature = hex::decode(signature.trim())
            .ok()
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .map(|s| Signature::from_bytes(&s))
            .ok_or(CampaignError::Unsigned)?;
        let message = signed_message(bytes);
        if !trusted.iter().any(|key| key.verify(&message, &signature).is_ok()) {
            return Err(CampaignError::Unsigned);
        }
        let campaign: Campaign = serde_json::from_slice(bytes).map_err(|e| CampaignError::Invalid(e.to_string()))?;
        campaign.check()?;
        Ok(campaign)
    }

    /// The campaign's file and its signature (hexadecimal) by `sign`, for
    /// an organiser to publish.
    pub fn sign_with(&self, sign: impl FnOnce(&[u8]) -> [u8; 64]) -> Result<(Vec<u8>, String)> {
        self.check()?;
        let bytes = serde_json::to_vec_pretty(self).expect("a campaign serialises");
        Ok((bytes.clone(), hex::encode(sign(&signed_message(&bytes)))))
    }

    /// [`Self::sign_with`] an ed25519 key.
    pub fn sign(&self, key: &SigningKey) -> Result<(Vec<u8>, String)> {
        self.sign_with(|message| key.sign(message).to_bytes())
    }

    /// Checks what a campaign states, so that what a resident is shown is
    /// what runs.
    pub fn check(&self) -> Result<()> {
        let invalid = |why: String| Err(CampaignError::Invalid(why));
        if !is_campaign_id(&self.id) {
            return invalid("its id is 3 to 100 lower-case letters, digits, `.` or `-`".into());
        }
        for (what, text) in [
            ("organiser", &self.organiser),
            ("purpose", &self.purpose),
            ("question's app", &self.question.app),
            ("question's description", &self.question.computes),
            ("question's unit", &self.question.unit),
            ("published-to", &self.published_to),
        ] {
            if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
                return invalid(format!("its {what} is 1 to {MAX_TEXT} characters"));
            }
        }
        let pointer = |p: &String| (p.is_empty() || p.starts_with('/')) && p.len() <= MAX_TEXT;
        if !pointer(&self.question.answer) || !self.question.answers.iter().all(pointer) {
            return invalid("its answer is a JSON Pointer into the app's output: empty, or starting with `/`".into());
        }
        if !self.question.answers.is_empty() {
            let fits =
                matches!(self.aggregation, Aggregation::SumVec { length, .. } if length == self.question.answers.len());
            if !fits || !self.question.answer.is_empty() {
                return invalid(
                    "its `answers` (one pointer per number) are a vector's, as many as its length, in place of `answer`"
                        .into(),
                );
            }
        }
        if self.question.rounded && matches!(self.aggregation, Aggregation::Histogram { .. }) {
            return invalid("a histogram's answer is counted in its bucket as it is: it is not rounded".into());
        }
        if serde_json::to_vec(&self.question.input).map_or(true, |b| b.len() > MAX_INPUT) {
            return invalid(format!("the app's input is at most {MAX_INPUT} bytes of JSON"));
        }
        match &self.aggregation {
            Aggregation::Sum { max } if !(1..=MAX_SUM).contains(max) => {
                return invalid(format!("a sum's max is 1 to {MAX_SUM}"));
            }
            Aggregation::SumVec { length, max }
                if !(1..=MAX_VECTOR).contains(length) || !(1..=MAX_SUM).contains(max) =>
            {
                return invalid(format!("a vector has 1 to {MAX_VECTOR} numbers, each at most 1 to {MAX_SUM}"));
            }
            Aggregation::Histogram { bounds } => {
                let increasing = bounds.windows(2).all(|w| w[0] < w[1]);
                if bounds.is_empty()
                    || bounds.len() > MAX_BUCKETS
                    || !increasing
                    || bounds.iter().any(|b| !b.is_finite())
                {
                    return invalid(format!(
                        "a histogram has 1 to {MAX_BUCKETS} finite bounds, each above the one before"
                    ));
                }
            }
            _ => {}
        }
        let [first, second] = &self.aggregators;
        for aggregator in &self.aggregators {
            if aggregator.name.trim().is_empty() || aggregator.name.chars().count() > 200 {
                return invalid("an aggregator's name is 1 to 200 characters".into());
            }
            let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
            if !aggregator.url.starts_with("https://") && !local.iter().any(|l| aggregator.url.starts_with(l)) {
                return invalid(format!("aggregator `{}` is not reached over https://", aggregator.name));
            }
            if public_key(&aggregator.hpke_public_key).is_none() {
                return invalid(format!("aggregator `{}`'s key is not 64 hexadecimal characters", aggregator.name));
            }
            let result_key = hex::decode(&aggregator.result_key)
                .ok()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .and_then(|k| VerifyingKey::from_bytes(&k).ok());
            if result_key.is_none() {
                return invalid(format!("aggregator `{}`'s result key is not an ed25519 key", aggregator.name));
            }
        }
        if first.name == second.name
            || first.hpke_public_key == second.hpke_public_key
            || first.result_key == second.result_key
        {
            return invalid(
                "its two aggregators are one: each must be another organisation, with a key of its own".into(),
            );
        }
        if self.minimum_batch < 2 {
            return invalid("its minimum batch is at least 2 reports".into());
        }
        if self.epsilon.is_some_and(|e| !(e.is_finite() && e > 0.0 && e <= 100.0)) {
            return invalid("its epsilon is a number above 0, at most 100".into());
        }
        if self.epsilon.is_some() && matches!(self.aggregation, Aggregation::Sum { .. }) {
            return invalid("noise (an epsilon) is added to histograms and vectors; a sum takes none".into());
        }
        Ok(())
    }

    /// Checks the neighbourhood a participant adds to their answer: none,
    /// or a code of the kind the campaign gives its result by.
    pub fn check_neighbourhood(&self, neighbourhood: Option<&str>) -> Result<()> {
        match (neighbourhood, self.neighbourhoods) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(CampaignError::OutOfBounds(format!(
                "campaign `{}` gives no result per neighbourhood: join it without one",
                self.id
            ))),
            (Some(code), Some(kind)) if kind.admits(code) => Ok(()),
            (Some(_), Some(kind)) => Err(CampaignError::OutOfBounds(format!(
                "the neighbourhood of campaign `{}` is {}",
                self.id,
                kind.describe()
            ))),
        }
    }

    /// Every term a resident consents to by joining, in words, in the
    /// order they are read: who asks and why, which app computes what,
    /// the exact bounds, what leaves, who aggregates, what is released,
    /// until when, to whom. One wording for every front-end.
    pub fn terms(&self) -> Vec<String> {
        let rounded = if self.question.rounded { " (rounded to the nearest whole)" } else { "" };
        let answer = match &self.aggregation {
            Aggregation::Sum { max } => format!("a whole number from 0 to {max}{rounded}"),
            Aggregation::SumVec { length, max } => {
                format!("{length} whole numbers, each from 0 to {max}{rounded}")
            }
            Aggregation::Histogram { bounds } => {
                let mut buckets = vec![format!("below {}", bounds[0])];
                buckets.extend(bounds.windows(2).map(|w| format!("{} to {}", w[0], w[1])));
                buckets.push(format!("{} and above", bounds[bounds.len() - 1]));
                format!("counted in one of {} buckets: {}", buckets.len(), buckets.join(", "))
            }
        };
        let [leader, helper] = &self.aggregators;
        let noise = match self.epsilon {
            Some(epsilon) => format!("noise is added to the result (differential privacy, epsilon {epsilon})"),
            None => "no noise is added to the result".into(),
        };
        vec![
            format!("{}: asked by {}", self.id, self.organiser),
            format!("Why: {}", self.purpose),
            format!(
                "Inside your space, the app {} computes: {} ({})",
                self.question.app, self.question.computes, self.question.unit
            ),
            format!("Its answer must be {answer}; an answer outside that is refused, never sent."),
            "What leaves your space: two shares of the answer, each encrypted to one aggregator; either share alone is random and says nothing of your answer.".into(),
            format!(
                "The aggregators, who must not collude: {} ({}) and {} ({}).",
                leader.name, leader.url, helper.name, helper.url
            ),
            format!("Nothing is released below {} participants; {noise}.", self.minimum_batch),
            match self.neighbourhoods {
                Some(kind) => format!(
                    "You may add your neighbourhood, {}, which you set yourself: it goes with the shares, readable by both aggregators, and the result is given for each neighbourhood of at least {} participants (smaller ones are counted together); without it, your answer counts with those of no neighbourhood.",
                    kind.describe(),
                    self.minimum_batch
                ),
                None => "No neighbourhood or any other detail about you goes with the shares.".into(),
            },
            format!("Answers are taken until {} (UTC).", utc(self.deadline_ms)),
            format!("The result goes to {}.", self.published_to),
        ]
    }

    /// The Prio3 instance of the campaign (two aggregators).
    pub(crate) fn vdaf(&self) -> Result<Vdaf> {
        let unfit = |e: prio::vdaf::VdafError| CampaignError::Invalid(format!("Prio3 refuses its parameters: {e}"));
        Ok(match &self.aggregation {
            Aggregation::Sum { max } => Vdaf::Sum(Prio3Sum::new_sum(2, *max).map_err(unfit)?),
            Aggregation::SumVec { length, max } => Vdaf::SumVec(
                Prio3SumVec::new_sum_vec(2, u128::from(*max), *length, chunk_length(*length)).map_err(unfit)?,
            ),
            Aggregation::Histogram { bounds } => {
                let buckets = bounds.len() + 1;
                Vdaf::Histogram(Prio3Histogram::new_histogram(2, buckets, chunk_length(buckets)).map_err(unfit)?)
            }
        })
    }

    /// The JSON input the question's app is run with (`{}` when the
    /// campaign gives none).
    pub fn app_input(&self) -> String {
        match &self.question.input {
            Value::Null => "{}".to_owned(),
            input => input.to_string(),
        }
    }

    /// The answer in an app's `output`, where the campaign's question says
    /// it is (a vector's numbers, each where `answers` says, 0 where the
    /// output has none); refused when it is not there.
    pub fn answer_in(&self, output: &Value) -> Result<Value> {
        if !self.question.answers.is_empty() {
            let numbers = self.question.answers.iter().map(|p| output.pointer(p).cloned().unwrap_or(Value::from(0)));
            return Ok(Value::Array(numbers.collect()));
        }
        output.pointer(&self.question.answer).cloned().ok_or_else(|| {
            CampaignError::OutOfBounds(format!(
                "the app's output has no answer at `{}`: it is not the app the campaign was written for, or not its version",
                self.question.answer
            ))
        })
    }

    /// An app's answer (JSON), as the campaign's Prio3 type encodes it;
    /// refused when it is not of the declared shape or out of bounds.
    pub(crate) fn measurement(&self, answer: &Value) -> Result<Measurement> {
        let out = |why: String| CampaignError::OutOfBounds(why);
        let rounded = self.question.rounded;
        let whole = |value: &Value, max: u64| -> Result<u64> {
            let number = match value.as_u64() {
                Some(n) => Some(n),
                // Rounded, as the campaign says; below -0.5 is below zero.
                None if rounded => value
                    .as_f64()
                    .filter(|v| v.is_finite() && *v >= -0.5 && *v <= max as f64 + 0.5)
                    .map(|v| v.round() as u64),
                None => None,
            };
            number.filter(|n| *n <= max).ok_or_else(|| out(format!("{value} is not a whole number from 0 to {max}")))
        };
        match &self.aggregation {
            Aggregation::Sum { max } => Ok(Measurement::Sum(whole(answer, *max)?)),
            Aggregation::SumVec { length, max } => {
                let values =
                    answer.as_array().ok_or_else(|| out(format!("the answer is not a list of {length} numbers")))?;
                if values.len() != *length {
                    return Err(out(format!("the answer has {} numbers, not {length}", values.len())));
                }
                let values = values.iter().map(|v| whole(v, *max).map(u128::from)).collect::<Result<Vec<_>>>()?;
                Ok(Measurement::SumVec(values))
            }
            Aggregation::Histogram { bounds } => {
                let value = answer
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| out(format!("{answer} is not a number")))?;
                Ok(Measurement::Histogram(bounds.partition_point(|bound| *bound <= value)))
            }
        }
    }

    /// The application context of the campaign's VDAF (each campaign's
    /// reports verify under its own).
    pub(crate) fn context(&self) -> Vec<u8> {
        [b"domicile campaign ".as_slice(), self.id.as_bytes()].concat()
    }
}

/// Whether `id` can name a campaign: 3 to 100 lower-case letters, digits,
/// `.` or `-` (it names the campaign's files too).
pub fn is_campaign_id(id: &str) -> bool {
    (3..=100).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// What a campaign's signature covers: its file, after a context of its
/// own, so that no signature of a package or an index by the same key
/// passes for a campaign's, nor the reverse.
pub fn signed_message(bytes: &[u8]) -> Vec<u8> {
    [b"domicile campaign v1\n".as_slice(), bytes].concat()
}

/// Milliseconds since the epoch as `2027-01-15 08:00` (UTC).
fn utc(ms: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{ms} ms after 1970"))
}

/// The chunk length Prio3 recommends for a vector of `length` (about its
/// square root), which keeps the proof small.
fn chunk_length(length: usize) -> usize {
    (length as f64).sqrt().ceil().max(1.0) as usize
}

/// An X25519 public key from its 64 hexadecimal characters.
pub(crate) fn public_key(hex_key: &str) -> Option<<crate::report::Kem as hpke::Kem>::PublicKey> {
    use hpke::Deserializable;
    let bytes = hex::decode(hex_key).ok()?;
    <crate::report::Kem as hpke::Kem>::PublicKey::from_bytes(&bytes).ok()
}
