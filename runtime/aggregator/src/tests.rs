use std::cell::Cell;

use domicile_campaign::{
    Aggregate, Aggregation, Aggregator, AggregatorKeys, AggregatorRole, AttestedReport, Attester, Campaign, Question,
    Report, ResultSigner,
};
use serde_json::json;

use super::*;

const DEADLINE: u64 = 1_800_000_000_000;
const BEFORE: u64 = DEADLINE - 1;
const AFTER: u64 = DEADLINE + 1;

/// A campaign of 5 buckets, its two aggregators' keys.
fn campaign(minimum_batch: u64) -> (Campaign, [AggregatorKeys; 2]) {
    let keys = [AggregatorKeys::generate(), AggregatorKeys::generate()];
    let aggregator = |name: &str, keys: &AggregatorKeys| Aggregator {
        name: name.into(),
        url: format!("https://{name}.example"),
        hpke_public_key: keys.public.clone(),
        result_key: keys.result_public.clone(),
    };
    let campaign = Campaign {
        id: "fr.larochelle.mobility-2026".into(),
        organiser: "La Rochelle".into(),
        purpose: "The mobility plan".into(),
        question: Question {
            app: "io.domicile.sample.mobility".into(),
            computes: "km by bike a week".into(),
            unit: "km".into(),
            input: serde_json::Value::Null,
            answer: String::new(),
        },
        aggregation: Aggregation::Histogram { bounds: vec![10.0, 20.0, 50.0, 100.0] },
        aggregators: [aggregator("city", &keys[0]), aggregator("observatory", &keys[1])],
        minimum_batch,
        epsilon: None,
        deadline_ms: DEADLINE,
        published_to: "every participant".into(),
    };
    (campaign, keys)
}

/// The two aggregators of `campaign`, each on a store of its own.
struct Pair {
    leader: Leader,
    helper: Flaky,
    /// The node the leader trusts, and how many participants it attested.
    node: Attester,
    participants: Cell<u32>,
    _dirs: [tempfile::TempDir; 2],
}

impl Pair {
    /// `report`, attested by the trusted node as a new participant's.
    fn attested(&self, report: Report) -> AttestedReport {
        self.participants.set(self.participants.get() + 1);
        let participant = self.node.participant("any", &format!("resident{}", self.participants.get()));
        self.node.attest(report, &participant)
    }

    /// Sends `report` as a new participant's, at `now`.
    fn send(&self, report: Report, now: u64) -> Result<()> {
        self.leader.receive(&self.attested(report), now)
    }
}

fn pair(campaign: &Campaign, keys: &[AggregatorKeys; 2]) -> Pair {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let verify_key = [5u8; 32];
    let role = |i: usize| AggregatorRole::new(campaign.clone(), i, &keys[i].secret, verify_key).unwrap();
    let node = Attester::from_seed([9; 32]);
    let signer = |i: usize| ResultSigner::from_hex(&keys[i].result_secret).unwrap();
    let leader = Leader::open(
        &sled::open(dirs[0].path()).unwrap(),
        campaign.clone(),
        role(0),
        signer(0),
        vec![node.public_key()],
    )
    .unwrap();
    let helper = HelperStore::open(&sled::open(dirs[1].path()).unwrap(), role(1), signer(1)).unwrap();
    let helper = Flaky { helper, away: Cell::new(0), away_after_finish: Cell::new(false) };
    Pair { leader, helper, node, participants: Cell::new(0), _dirs: dirs }
}

/// The helper, which can be away for the next `away` calls, or go away
/// right after it kept an output share (before the leader hears of it).
struct Flaky {
    helper: HelperStore,
    away: Cell<u32>,
    away_after_finish: Cell<bool>,
}

impl Flaky {
    fn reachable(&self) -> Result<()> {
        if self.away.get() > 0 {
            self.away.set(self.away.get() - 1);
            return Err(AggregatorError::HelperAway("connection refused".into()));
        }
        Ok(())
    }
}

impl Helper for Flaky {
    fn prepare(&self, report: &Report) -> Result<Vec<u8>> {
        self.reachable()?;
        self.helper.prepare(report)
    }
    fn finish(&self, nonce: &str, message: &[u8]) -> Result<()> {
        self.reachable()?;
        self.helper.finish(nonce, message)?;
        if self.away_after_finish.replace(false) {
            return Err(AggregatorError::HelperAway("the answer was lost".into()));
        }
        Ok(())
    }
    fn abandon(&self, nonce: &str) -> Result<()> {
        self.reachable()?;
        self.helper.abandon(nonce)
    }
    fn aggregate(&self, nonces: &[String]) -> Result<Vec<u8>> {
        self.reachable()?;
        self.helper.aggregate(nonces)
    }

    fn sign_result(&self, leader_share: &[u8], reports: u64, aggregate: &Aggregate) -> Result<String> {
        self.reachable()?;
        self.helper.sign_result(leader_share, reports, aggregate)
    }
}

fn bucket(km: f64) -> usize {
    [10.0, 20.0, 50.0, 100.0].iter().filter(|b| **b <= km).count()
}

#[test]
fn two_hundred_reports_give_the_exact_histogram_and_a_helper_away_loses_none_and_counts_none_twice() {
    let (campaign, keys) = campaign(100);
    let pair = pair(&campaign, &keys);
    let answers: Vec<f64> = (0..200).map(|i| f64::from(i % 130)).collect();
    let mut expected = vec![0u128; 5];
    for (i, km) in answers.iter().enumerate() {
        expected[bucket(*km)] += 1;
        pair.send(campaign.report(&json!(km), BEFORE).unwrap(), BEFORE).unwrap();
        if i == 50 {
            // The helper is away: the reports stay pending, none is lost.
            pair.helper.away.set(1);
            assert!(matches!(pair.leader.verify_pending(&pair.helper), Err(AggregatorError::HelperAway(_))));
            // It keeps an output share and goes away before the leader
            // hears it: tried again, counted once.
            pair.helper.away_after_finish.set(true);
            assert!(pair.leader.verify_pending(&pair.helper).is_err());
            pair.leader.verify_pending(&pair.helper).unwrap();
        }
    }
    assert!(matches!(pair.leader.collect(&pair.helper, BEFORE), Err(AggregatorError::NotYet(_))));
    let collected = pair.leader.collect(&pair.helper, AFTER).unwrap();
    assert_eq!((collected.aggregate.clone(), collected.reports), (Aggregate::Counts(expected), 200));
    collected.verify(&campaign).expect("signed by both aggregators");
    // Altered, it no longer verifies.
    let mut altered = collected.clone();
    altered.reports += 1;
    assert!(altered.verify(&campaign).is_err());
    let counts = pair.leader.counts().unwrap();
    assert_eq!((counts.pending, counts.verified, counts.refused.len()), (0, 200, 0), "{counts:?}");
}

#[test]
fn duplicates_late_reports_other_campaigns_and_shares_for_other_aggregators_are_refused_and_counted() {
    let (campaign, keys) = campaign(2);
    let pair = pair(&campaign, &keys);
    let report = pair.attested(campaign.report(&json!(15.0), BEFORE).unwrap());
    pair.leader.receive(&report, BEFORE).unwrap();
    assert!(pair.leader.receive(&report, BEFORE).is_err(), "the same report twice");
    assert!(pair.send(campaign.report(&json!(15.0), BEFORE).unwrap(), AFTER).is_err(), "late");
    let (other, _) = self::campaign(2);
    let mut elsewhere = campaign.report(&json!(1.0), BEFORE).unwrap();
    elsewhere.campaign = "fr.nantes.other".into();
    assert!(pair.send(elsewhere, BEFORE).is_err(), "another campaign's");
    // A report encrypted to another pair of aggregators: its shares do not open here.
    pair.send(other.report(&json!(1.0), BEFORE).unwrap(), BEFORE).unwrap();
    pair.send(campaign.report(&json!(60.0), BEFORE).unwrap(), BEFORE).unwrap();
    pair.leader.verify_pending(&pair.helper).unwrap();
    let counts = pair.leader.counts().unwrap();
    let refused: Vec<(&str, u64)> = counts.refused.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    assert_eq!(refused, [("another campaign", 1), ("duplicate", 1), ("late", 1), ("unreadable", 1)]);
    assert_eq!(counts.verified, 2);
    let collected = pair.leader.collect(&pair.helper, AFTER).unwrap();
    assert_eq!(collected.aggregate, Aggregate::Counts(vec![0, 1, 0, 1, 0]), "only the two genuine reports");
}

#[test]
fn nothing_is_released_below_the_minimum_batch() {
    let (campaign, keys) = campaign(10);
    let pair = pair(&campaign, &keys);
    for _ in 0..9 {
        pair.send(campaign.report(&json!(5.0), BEFORE).unwrap(), BEFORE).unwrap();
    }
    let refused = pair.leader.collect(&pair.helper, AFTER).unwrap_err().to_string();
    assert!(refused.contains("9 reports, fewer than the campaign's minimum of 10"), "{refused}");
}

#[test]
fn one_attested_report_per_participant_and_a_withdrawal_leaves_it_out_and_lets_another_come() {
    let (campaign, keys) = campaign(2);
    let pair = pair(&campaign, &keys);
    let alice = pair.node.participant(&campaign.id, "alice");
    let first = pair.node.attest(campaign.report(&json!(15.0), BEFORE).unwrap(), &alice);
    pair.leader.receive(&first, BEFORE).unwrap();
    // The same participant again, with another report: refused.
    let second = pair.node.attest(campaign.report(&json!(99.0), BEFORE).unwrap(), &alice);
    assert!(pair.leader.receive(&second, BEFORE).unwrap_err().to_string().contains("sent a report"));
    // Attested by a node the leader does not trust, or altered after attestation: refused.
    let stranger = Attester::from_seed([7; 32]);
    let unknown = stranger.attest(campaign.report(&json!(15.0), BEFORE).unwrap(), "ab".repeat(32).as_str());
    assert!(pair.leader.receive(&unknown, BEFORE).is_err(), "an untrusted node's");
    let mut altered = pair.node.attest(campaign.report(&json!(15.0), BEFORE).unwrap(), &"cd".repeat(32));
    altered.report.public_share = campaign.report(&json!(60.0), BEFORE).unwrap().public_share;
    assert!(pair.leader.receive(&altered, BEFORE).is_err(), "altered after attestation");
    pair.send(campaign.report(&json!(60.0), BEFORE).unwrap(), BEFORE).unwrap();
    pair.leader.verify_pending(&pair.helper).unwrap();
    // Alice leaves: her report is left out; a withdrawal signed by another
    // node, or of a report that is not hers, is refused.
    let forged = stranger.withdraw(&campaign.id, &alice, &first.report.nonce);
    assert!(pair.leader.withdraw(&forged, BEFORE).is_err(), "a stranger's withdrawal");
    let not_hers = pair.node.withdraw(&campaign.id, &alice, &second.report.nonce);
    assert!(pair.leader.withdraw(&not_hers, BEFORE).is_err(), "a report that is not hers");
    let leaving = pair.node.withdraw(&campaign.id, &alice, &first.report.nonce);
    assert!(pair.leader.withdraw(&leaving, AFTER).is_err(), "after the deadline");
    pair.leader.withdraw(&leaving, BEFORE).unwrap();
    assert!(pair.leader.withdraw(&leaving, BEFORE).is_err(), "twice");
    // She joins again: her new report counts, once.
    let again = pair.node.attest(campaign.report(&json!(30.0), BEFORE).unwrap(), &alice);
    pair.leader.receive(&again, BEFORE).unwrap();
    let counts = pair.leader.counts().unwrap();
    let refused: Vec<(&str, u64)> = counts.refused.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    assert_eq!(refused, [("second report", 1), ("unattested", 2)]);
    assert_eq!(counts.withdrawn, 1);
    let collected = pair.leader.collect(&pair.helper, AFTER).unwrap();
    assert_eq!((collected.aggregate, collected.reports), (Aggregate::Counts(vec![0, 0, 1, 1, 0]), 2));
}

#[test]
fn a_noisy_aggregate_is_released_once_so_that_its_noise_cannot_be_averaged_away() {
    let (mut campaign, keys) = campaign(5);
    campaign.epsilon = Some(1.0);
    let pair = pair(&campaign, &keys);
    let mut nonces = Vec::new();
    for km in [5.0, 15.0, 30.0, 60.0, 150.0, 15.0] {
        let report = campaign.report(&json!(km), BEFORE).unwrap();
        nonces.push(report.nonce.clone());
        pair.send(report, BEFORE).unwrap();
    }
    let first = pair.leader.collect(&pair.helper, AFTER).unwrap();
    assert!(matches!(first.aggregate, Aggregate::NoisyCounts(_)), "{first:?}");
    // Collected again, by the leader: the same figures, not fresh noise.
    for _ in 0..3 {
        assert_eq!(pair.leader.collect(&pair.helper, AFTER).unwrap(), first);
    }
    // Asked again by a leader that forgot: the helper's share is the same
    // for the same reports, and refused for any other batch.
    let share = pair.helper.aggregate(&nonces).unwrap();
    assert_eq!(pair.helper.aggregate(&nonces).unwrap(), share);
    let refused = pair.helper.aggregate(&nonces[1..]).unwrap_err().to_string();
    assert!(refused.contains("released its aggregate share once"), "{refused}");
    first.verify(&campaign).expect("signed by both aggregators");
}
