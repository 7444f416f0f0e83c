use std::cell::Cell;
use std::collections::BTreeMap;

use domicile_campaign::{
    Aggregate, Aggregation, Aggregator, AggregatorKeys, AggregatorRole, AttestedReport, Attester, Batch, Campaign,
    CampaignResult, Neighbourhoods, Question, Report, ResultSigner,
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
            answers: Vec::new(),
            rounded: false,
        },
        aggregation: Aggregation::Histogram { bounds: vec![10.0, 20.0, 50.0, 100.0] },
        aggregators: [aggregator("city", &keys[0]), aggregator("observatory", &keys[1])],
        minimum_batch,
        epsilon: None,
        deadline_ms: DEADLINE,
        published_to: "every participant".into(),
        neighbourhoods: None,
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
    fn aggregate(&self, batch: &Batch) -> Result<Vec<u8>> {
        self.reachable()?;
        self.helper.aggregate(batch)
    }

    fn sign_result(
        &self,
        neighbourhood: Option<&str>,
        leader_share: &[u8],
        reports: u64,
        aggregate: &Aggregate,
    ) -> Result<String> {
        self.reachable()?;
        self.helper.sign_result(neighbourhood, leader_share, reports, aggregate)
    }
}

/// The one result of a campaign without neighbourhoods.
fn the_one(results: Vec<CampaignResult>) -> CampaignResult {
    assert_eq!(results.len(), 1, "{results:?}");
    let result = results.into_iter().next().unwrap();
    assert_eq!(result.neighbourhood, None);
    result
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
        pair.send(campaign.report(&json!(km), None, BEFORE).unwrap(), BEFORE).unwrap();
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
    let collected = the_one(pair.leader.collect(&pair.helper, AFTER).unwrap());
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
    let report = pair.attested(campaign.report(&json!(15.0), None, BEFORE).unwrap());
    pair.leader.receive(&report, BEFORE).unwrap();
    assert!(pair.leader.receive(&report, BEFORE).is_err(), "the same report twice");
    assert!(pair.send(campaign.report(&json!(15.0), None, BEFORE).unwrap(), AFTER).is_err(), "late");
    let (other, _) = self::campaign(2);
    let mut elsewhere = campaign.report(&json!(1.0), None, BEFORE).unwrap();
    elsewhere.campaign = "fr.nantes.other".into();
    assert!(pair.send(elsewhere, BEFORE).is_err(), "another campaign's");
    // A report encrypted to another pair of aggregators: its shares do not open here.
    pair.send(other.report(&json!(1.0), None, BEFORE).unwrap(), BEFORE).unwrap();
    pair.send(campaign.report(&json!(60.0), None, BEFORE).unwrap(), BEFORE).unwrap();
    pair.leader.verify_pending(&pair.helper).unwrap();
    let counts = pair.leader.counts().unwrap();
    let refused: Vec<(&str, u64)> = counts.refused.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    assert_eq!(refused, [("another campaign", 1), ("duplicate", 1), ("late", 1), ("unreadable", 1)]);
    assert_eq!(counts.verified, 2);
    let collected = the_one(pair.leader.collect(&pair.helper, AFTER).unwrap());
    assert_eq!(collected.aggregate, Aggregate::Counts(vec![0, 1, 0, 1, 0]), "only the two genuine reports");
}

#[test]
fn nothing_is_released_below_the_minimum_batch() {
    let (campaign, keys) = campaign(10);
    let pair = pair(&campaign, &keys);
    for _ in 0..9 {
        pair.send(campaign.report(&json!(5.0), None, BEFORE).unwrap(), BEFORE).unwrap();
    }
    let refused = pair.leader.collect(&pair.helper, AFTER).unwrap_err().to_string();
    assert!(refused.contains("9 reports, fewer than the campaign's minimum of 10"), "{refused}");
}

#[test]
fn one_attested_report_per_participant_and_a_withdrawal_leaves_it_out_and_lets_another_come() {
    let (campaign, keys) = campaign(2);
    let pair = pair(&campaign, &keys);
    let alice = pair.node.participant(&campaign.id, "alice");
    let first = pair.node.attest(campaign.report(&json!(15.0), None, BEFORE).unwrap(), &alice);
    pair.leader.receive(&first, BEFORE).unwrap();
    // The same participant again, with another report: refused.
    let second = pair.node.attest(campaign.report(&json!(99.0), None, BEFORE).unwrap(), &alice);
    assert!(pair.leader.receive(&second, BEFORE).unwrap_err().to_string().contains("sent a report"));
    // Attested by a node the leader does not trust, or altered after attestation: refused.
    let stranger = Attester::from_seed([7; 32]);
    let unknown = stranger.attest(campaign.report(&json!(15.0), None, BEFORE).unwrap(), "ab".repeat(32).as_str());
    assert!(pair.leader.receive(&unknown, BEFORE).is_err(), "an untrusted node's");
    let mut altered = pair.node.attest(campaign.report(&json!(15.0), None, BEFORE).unwrap(), &"cd".repeat(32));
    altered.report.public_share = campaign.report(&json!(60.0), None, BEFORE).unwrap().public_share;
    assert!(pair.leader.receive(&altered, BEFORE).is_err(), "altered after attestation");
    pair.send(campaign.report(&json!(60.0), None, BEFORE).unwrap(), BEFORE).unwrap();
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
    let again = pair.node.attest(campaign.report(&json!(30.0), None, BEFORE).unwrap(), &alice);
    pair.leader.receive(&again, BEFORE).unwrap();
    let counts = pair.leader.counts().unwrap();
    let refused: Vec<(&str, u64)> = counts.refused.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    assert_eq!(refused, [("second report", 1), ("unattested", 2)]);
    assert_eq!(counts.withdrawn, 1);
    let collected = the_one(pair.leader.collect(&pair.helper, AFTER).unwrap());
    assert_eq!((collected.aggregate, collected.reports), (Aggregate::Counts(vec![0, 0, 1, 1, 0]), 2));
}

#[test]
fn a_noisy_aggregate_is_released_once_so_that_its_noise_cannot_be_averaged_away() {
    let (mut campaign, keys) = campaign(5);
    campaign.epsilon = Some(1.0);
    let pair = pair(&campaign, &keys);
    let mut nonces = Vec::new();
    for km in [5.0, 15.0, 30.0, 60.0, 150.0, 15.0] {
        let report = campaign.report(&json!(km), None, BEFORE).unwrap();
        nonces.push(report.nonce.clone());
        pair.send(report, BEFORE).unwrap();
    }
    let first = the_one(pair.leader.collect(&pair.helper, AFTER).unwrap());
    assert!(matches!(first.aggregate, Aggregate::NoisyCounts(_)), "{first:?}");
    // Collected again, by the leader: the same figures, not fresh noise.
    for _ in 0..3 {
        assert_eq!(pair.leader.collect(&pair.helper, AFTER).unwrap(), std::slice::from_ref(&first));
    }
    // Asked again by a leader that forgot: the helper's share is the same
    // for the same reports, and refused for any other batch.
    let batch = |nonces: &[String]| Batch { neighbourhood: None, nonces: nonces.to_vec() };
    let share = pair.helper.aggregate(&batch(&nonces)).unwrap();
    assert_eq!(pair.helper.aggregate(&batch(&nonces)).unwrap(), share);
    let refused = pair.helper.aggregate(&batch(&nonces[1..])).unwrap_err().to_string();
    assert!(refused.contains("released this aggregate share once"), "{refused}");
    first.verify(&campaign).expect("signed by both aggregators");
}

#[test]
fn each_neighbourhood_of_the_minimum_has_its_result_and_the_smaller_ones_count_together_once() {
    let (mut campaign, keys) = campaign(5);
    campaign.neighbourhoods = Some(Neighbourhoods::Postcode);
    let pair = pair(&campaign, &keys);
    // 44000: 12 participants, 44100: 6, 44300: 2, and 3 who gave none.
    let mut expected: BTreeMap<Option<&str>, Vec<u128>> = BTreeMap::new();
    let mut nonces: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
    for (i, neighbourhood) in [("44000", 12), ("44100", 6), ("44300", 2)]
        .iter()
        .flat_map(|(n, c)| vec![Some(*n); *c])
        .chain([None; 3])
        .enumerate()
    {
        let km = (i * 17 % 120) as f64;
        let released_as = neighbourhood.filter(|n| *n != "44300");
        expected.entry(released_as).or_insert_with(|| vec![0; 5])[bucket(km)] += 1;
        let report = campaign.report(&json!(km), neighbourhood, BEFORE).unwrap();
        nonces.entry(neighbourhood).or_default().push(report.nonce.clone());
        pair.send(report, BEFORE).unwrap();
    }
    let results = pair.leader.collect(&pair.helper, AFTER).unwrap();
    let found: BTreeMap<Option<&str>, (u64, Aggregate)> =
        results.iter().map(|r| (r.neighbourhood.as_deref(), (r.reports, r.aggregate.clone()))).collect();
    let wanted: BTreeMap<Option<&str>, (u64, Aggregate)> = expected
        .into_iter()
        .map(|(n, counts)| (n, (counts.iter().sum::<u128>() as u64, Aggregate::Counts(counts))))
        .collect();
    assert_eq!(found, wanted, "44000 and 44100 each, 44300 counted with those of none");
    for result in &results {
        result.verify(&campaign).expect("signed by both aggregators");
        // Given as another neighbourhood's, it does not verify.
        let mut moved = result.clone();
        moved.neighbourhood = Some("17000".into());
        assert!(moved.verify(&campaign).is_err());
    }
    // A leader asking the helper for more: a batch holding a report of
    // another neighbourhood, a report released in another batch, or too
    // few reports, is refused; nothing is released twice.
    let helper = &pair.helper.helper;
    let ask = |neighbourhood: Option<&str>, nonces: Vec<String>| {
        helper.aggregate(&Batch { neighbourhood: neighbourhood.map(str::to_owned), nonces }).unwrap_err().to_string()
    };
    let mixed = [&nonces[&Some("44100")][..5], &nonces[&Some("44000")][..1]].concat();
    assert!(ask(Some("44100"), mixed).contains("released this aggregate share once"));
    let overlapping = [&nonces[&Some("44000")][..5], &nonces[&None][..]].concat();
    assert!(ask(Some("44999"), overlapping.clone()).contains("is not of neighbourhood 44999"));
    let small = nonces[&Some("44000")][..4].to_vec();
    assert!(ask(Some("44000"), small).contains("fewer than the campaign's minimum"));
    let others_again = ask(None, overlapping);
    assert!(others_again.contains("released this aggregate share once"), "{others_again}");
}

#[test]
fn the_helper_releases_no_report_in_two_batches() {
    let (mut campaign, keys) = campaign(2);
    campaign.neighbourhoods = Some(Neighbourhoods::Postcode);
    let pair = pair(&campaign, &keys);
    let mut nonces = Vec::new();
    for km in [5.0, 15.0, 30.0, 60.0] {
        let report = campaign.report(&json!(km), Some("69001"), BEFORE).unwrap();
        nonces.push(report.nonce.clone());
        pair.send(report, BEFORE).unwrap();
    }
    pair.leader.verify_pending(&pair.helper).unwrap();
    // A leader releasing two of them as "the others" first, then the four
    // as their neighbourhood's (their difference would be the other two's).
    let helper = &pair.helper.helper;
    helper.aggregate(&Batch { neighbourhood: None, nonces: nonces[..2].to_vec() }).unwrap();
    let refused = helper
        .aggregate(&Batch { neighbourhood: Some("69001".into()), nonces: nonces.clone() })
        .unwrap_err()
        .to_string();
    assert!(refused.contains("was released in another batch"), "{refused}");
}

#[test]
fn a_neighbourhood_changed_after_the_report_was_made_does_not_pass() {
    let (mut campaign, keys) = campaign(2);
    campaign.neighbourhoods = Some(Neighbourhoods::Iris);
    let pair = pair(&campaign, &keys);
    assert!(campaign.report(&json!(5.0), Some("44000"), BEFORE).is_err(), "a postcode is no IRIS code");
    let report = campaign.report(&json!(5.0), Some("443090101"), BEFORE).unwrap();
    // Moved to another IRIS after its node attested it: refused.
    let mut moved = pair.attested(report.clone());
    moved.report.neighbourhood = Some("443090102".into());
    assert!(pair.leader.receive(&moved, BEFORE).unwrap_err().to_string().contains("attest"));
    // Moved before attestation (as a leader could): the helper's share does not open.
    let mut relabelled = report;
    relabelled.neighbourhood = Some("443090102".into());
    assert!(pair.helper.prepare(&relabelled).unwrap_err().to_string().contains("does not open"));
}

#[test]
fn the_helper_signs_only_the_aggregate_the_two_shares_give_even_with_the_leader_s_genuine_share() {
    let (campaign, keys) = campaign(3);
    let pair = pair(&campaign, &keys);
    let mut nonces = Vec::new();
    for km in [5.0, 15.0, 30.0, 60.0] {
        let report = campaign.report(&json!(km), None, BEFORE).unwrap();
        nonces.push(report.nonce.clone());
        pair.send(report, BEFORE).unwrap();
    }
    let released = the_one(pair.leader.collect(&pair.helper, AFTER).unwrap());
    nonces.sort();
    let batch = Batch { neighbourhood: None, nonces };
    let genuine = pair.leader.aggregate_share(&batch).unwrap();
    // A leader asking the helper to sign more bikes than there were.
    let Aggregate::Counts(mut counts) = released.aggregate.clone() else { panic!("{released:?}") };
    counts[0] += 1;
    counts[3] -= 1;
    let refused = pair.helper.sign_result(None, &genuine, 4, &Aggregate::Counts(counts)).unwrap_err().to_string();
    assert!(refused.contains("not the one the two shares give"), "{refused}");
    // Nor the genuine aggregate under another neighbourhood, or over another count of reports.
    assert!(pair.helper.sign_result(Some("44000"), &genuine, 4, &released.aggregate).is_err());
    assert!(pair.helper.sign_result(None, &genuine, 5, &released.aggregate).is_err());
    // The genuine one, it signs as it did.
    let signature = pair.helper.sign_result(None, &genuine, 4, &released.aggregate).unwrap();
    assert_eq!(signature, released.signatures[1]);
}
