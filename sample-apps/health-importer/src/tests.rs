use serde_json::json;

use super::fhir::{read, Care, Payer, Read};

fn sample() -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/fhir-health-2026.json")).unwrap()
}

fn strict(bytes: &[u8]) -> Result<Read, String> {
    read(bytes, &mut domicile_sdk::import::refuse)
}

fn payer(name: &str, amount: f64) -> Payer {
    Payer { name: name.into(), amount }
}

#[test]
fn the_sample_export_gives_one_care_per_claim_with_every_payer() {
    let read = strict(&sample()).unwrap();
    assert_eq!(read.withdrawn, 1, "the decision entered in error is left out");
    let by_ref = |r: &str| read.cares.iter().find(|c| c.reference == r).unwrap_or_else(|| panic!("no care {r}"));
    let references: Vec<&str> = read.cares.iter().map(|c| c.reference.as_str()).collect();
    assert_eq!(
        references,
        [
            "Claim/c-dent",
            "Claim/c-gp",
            "Claim/c-optic",
            "Claim/c-pharma",
            "Claim/c-stay",
            "ExplanationOfBenefit/eob-geneva",
            "ExplanationOfBenefit/eob-lab",
            "ExplanationOfBenefit/eob-pharma-2",
            "Claim/c-physio",
        ]
    );
    // Two payers of one consultation, one named by reference, one by display;
    // the practitioner's HumanName and the diagnosis kept; the setting from the encounter.
    assert_eq!(
        by_ref("Claim/c-gp"),
        &Care {
            reference: "Claim/c-gp".into(),
            date: "2026-01-12".into(),
            kind: "consultation",
            status: "settled",
            currency: Some("EUR".into()),
            billed: Some(30.0),
            reimbursed: Some(29.0),
            remaining: Some(1.0),
            payers: vec![payer("CPAM de Loire-Atlantique", 20.0), payer("Mutuelle Atlantique Santé", 9.0)],
            setting: Some("ambulatory"),
            provider: Some("Dr Marie Durand".into()),
            diagnoses: vec!["J06.9 Acute upper respiratory infection, unspecified".into()],
        }
    );
    // A claim the file does not hold still joins its two decisions: billed once.
    let pharmacy = by_ref("Claim/c-pharma");
    assert_eq!(
        (pharmacy.kind, pharmacy.billed, pharmacy.reimbursed, pharmacy.remaining),
        ("pharmacy", Some(42.8), Some(42.8), Some(0.0))
    );
    let dental = by_ref("Claim/c-dent");
    assert_eq!((dental.kind, dental.remaining), ("dental", Some(43.13)));
    assert_eq!(dental.provider.as_deref(), Some("Dr Paul Lefèvre, chirurgien-dentiste"), "from the claim");
    assert_eq!((by_ref("Claim/c-optic").kind, by_ref("Claim/c-optic").remaining), ("optical", Some(179.91)));
    let stay = by_ref("Claim/c-stay");
    assert_eq!((stay.kind, stay.setting, stay.remaining), ("hospital", Some("inpatient"), Some(20.0)));
    assert_eq!(stay.diagnoses, ["K35.8 Acute appendicitis, other and unspecified"], "a Condition by reference");
    // No totals: the items' adjudications add up.
    let lab = by_ref("ExplanationOfBenefit/eob-lab");
    assert_eq!(
        (lab.kind, lab.billed, lab.reimbursed, lab.remaining),
        ("laboratory", Some(35.1), Some(21.06), Some(14.04))
    );
    let geneva = by_ref("ExplanationOfBenefit/eob-geneva");
    assert_eq!((geneva.currency.as_deref(), geneva.remaining), (Some("CHF"), Some(125.0)));
    let unstated = by_ref("ExplanationOfBenefit/eob-pharma-2");
    assert_eq!(
        (unstated.currency.as_deref(), unstated.remaining),
        (None, Some(4.37)),
        "no currency given, none made up"
    );
    // A claim alone is pending: billed (unit price × quantity), nothing known of payers.
    let physio = by_ref("Claim/c-physio");
    assert_eq!(
        (physio.kind, physio.status, physio.billed, physio.reimbursed),
        ("paramedical", "pending", Some(48.39), None)
    );
}

#[test]
fn a_single_resource_and_every_kind_of_reference_are_read() {
    let eob = json!({
        "resourceType": "ExplanationOfBenefit", "id": "x", "status": "active",
        "type": {"coding": [{"code": "professional"}]},
        "created": "2026-04-01T10:00:00Z",
        "contained": [{"resourceType": "Practitioner", "id": "p", "name": [{"given": ["Ana"], "family": "Silva"}]}],
        "provider": {"reference": "#p"},
        "insurance": [{"focal": true, "coverage": {"reference": "Coverage/cov/_history/3"}}],
        "total": [{"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 60, "currency": "EUR"}},
                  {"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": 40, "currency": "EUR"}}]
    });
    let read = strict(eob.to_string().as_bytes()).unwrap();
    let care = &read.cares[0];
    assert_eq!((care.reference.as_str(), care.date.as_str()), ("ExplanationOfBenefit/x", "2026-04-01"));
    assert_eq!(care.provider.as_deref(), Some("Ana Silva"));
    assert_eq!(care.payers, [payer("an insurer the export does not name", 40.0)], "the coverage is not in the file");
}

#[test]
fn broken_cares_are_named_and_can_be_left_out() {
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "ExplanationOfBenefit", "id": "two-currencies", "status": "active", "created": "2026-01-01",
            "total": [{"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 10, "currency": "EUR"}},
                      {"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": 5, "currency": "USD"}}]}},
        {"resource": {"resourceType": "ExplanationOfBenefit", "id": "no-benefit", "status": "active", "created": "2026-01-01",
            "total": [{"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 10}}]}},
        {"resource": {"resourceType": "ExplanationOfBenefit", "id": "no-date", "status": "active",
            "total": [{"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": 10}},
                      {"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 10}}]}},
        {"resource": {"resourceType": "ExplanationOfBenefit", "id": "bad-money", "status": "active", "created": "2026-01-01",
            "total": [{"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": "ten"}}]}},
        {"resource": {"resourceType": "ExplanationOfBenefit", "id": "fine", "status": "active", "created": "2026-02-30T00:00:00Z",
            "billablePeriod": {"start": "2026-02-03"},
            "total": [{"category": {"coding": [{"code": "benefit"}]}, "amount": {"value": 3}},
                      {"category": {"coding": [{"code": "submitted"}]}, "amount": {"value": 4}}]}},
        {"fullUrl": "urn:uuid:no-resource"}
    ]});
    let err = strict(bundle.to_string().as_bytes()).unwrap_err();
    assert!(
        err.contains("care ExplanationOfBenefit/bad-money") || err.contains("care ExplanationOfBenefit/no-benefit"),
        "{err}"
    );
    let mut left_out = Vec::new();
    let read = read(bundle.to_string().as_bytes(), &mut |location: &str, reason: &str| {
        left_out.push(format!("{location}: {reason}"));
        Ok(())
    })
    .unwrap();
    assert_eq!(read.cares.len(), 1);
    assert_eq!((read.cares[0].date.as_str(), read.cares[0].remaining), ("2026-02-03", Some(1.0)));
    left_out.sort();
    assert_eq!(left_out.len(), 4, "{left_out:?}");
    assert!(left_out[0].contains("bad-money: an amount has no number value"), "{left_out:?}");
    assert!(left_out[1].contains("no-benefit: an explanation of benefit states no benefit"), "{left_out:?}");
    assert!(left_out[2].contains("no-date: no date of care"), "{left_out:?}");
    assert!(left_out[3].contains("two-currencies: its amounts are in EUR and USD"), "{left_out:?}");
}

#[test]
fn what_is_not_fhir_is_refused_with_why() {
    assert!(strict(b"<Bundle/>").unwrap_err().starts_with("not JSON"));
    assert!(strict(b"{\"entry\": []}").unwrap_err().contains("no `resourceType`"));
    assert!(strict(br#"{"resourceType": "Bundle", "entry": {}}"#).unwrap_err().contains("not a list"));
    assert_eq!(strict(br#"{"resourceType": "Patient", "id": "p"}"#).unwrap(), Read::default());
    let whole = sample();
    let cut = strict(&whole[..whole.len() / 2]).unwrap_err();
    assert!(cut.starts_with("the file ends (line ") && cut.contains("it is cut off"), "{cut}");
}

/// How CMS's Blue Button writes claims: several codings of the type, a
/// drug's cost as `drugcost`, the insurer as an identifier alone, what the
/// person paid as `paidbypatient`.
#[test]
fn blue_button_claims_read_as_medicare_writes_them() {
    let eob = |types: &str, totals: &str| {
        format!(
            r#"{{"resourceType": "ExplanationOfBenefit", "id": "e", "status": "active", "type": {{"coding": [{types}]}},
            "billablePeriod": {{"start": "2015-05-12"}}, "insurer": {{"identifier": {{"value": "CMS"}}}},
            "total": [{totals}], "payment": {{"amount": {{"value": 40.0, "currency": "USD"}}}}}}"#
        )
    };
    let code = |c: &str| format!(r#"{{"system": "https://x.example/{c}", "code": "{c}"}}"#);
    let total = |c: &str, v: f64| {
        format!(r#"{{"category": {{"coding": [{}]}}, "amount": {{"value": {v}, "currency": "USD"}}}}"#, code(c))
    };
    let one = |types: &[&str], totals: &[String]| {
        let types: Vec<String> = types.iter().map(|t| code(t)).collect();
        strict(eob(&types.join(","), &totals.join(",")).as_bytes()).unwrap().cares.remove(0)
    };
    let pde = one(&["PDE", "pharmacy"], &[total("drugcost", 550.0), total("paidbypatient", 235.85)]);
    assert_eq!(
        (pde.kind, pde.billed, pde.reimbursed, pde.remaining),
        ("pharmacy", Some(550.0), Some(40.0), Some(235.85))
    );
    assert_eq!(pde.payers, [payer("CMS", 40.0)], "a payer named by its identifier alone");
    let submitted = [total("submitted", 100.0)];
    assert_eq!(one(&["60", "INPATIENT", "institutional"], &submitted).kind, "hospital", "not the first coding alone");
    assert_eq!(one(&["71", "CARRIER", "professional"], &submitted).kind, "consultation");
    assert_eq!(one(&["10", "HHA", "professional"], &submitted).kind, "paramedical");
    assert_eq!(one(&["institutional"], &submitted).kind, "other", "institutional alone is no hospital stay");
    assert_eq!(one(&["institutional"], &submitted).remaining, Some(60.0));
}
