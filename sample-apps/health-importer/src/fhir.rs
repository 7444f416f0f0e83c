//! HL7 FHIR R4 JSON to cares: what each care cost, what each payer paid
//! back, and what was left for the person.
//!
//! A file is a `Bundle` (any type: collection, searchset, transaction,
//! document) or a single resource. The resources read are
//! `ExplanationOfBenefit` (a payer's decision on a claim: one per payer,
//! so a care paid back by the basic insurance and a complementary one has
//! two), `Claim` (what was billed; alone, the care is pending), `Coverage`
//! and `Organization` (who the payer is), `Practitioner` (who gave the
//! care), `Encounter` (where and when), `Condition` (a diagnosis given by
//! reference). Everything else is ignored.
//!
//! Real exports are messy, and this reads them as they are: references are
//! relative (`Claim/c1`), absolute (`https://x/fhir/Claim/c1`), `urn:uuid:`
//! full URLs or `#contained`; optional fields are often missing (a care
//! without provider, diagnosis, claim or totals: the totals are then the
//! sum of the items' adjudications); amounts may come without a currency
//! (the care keeps none, and is never added to amounts of another
//! currency). A care whose amounts are in two currencies, or that has no
//! date or no amount at all, is a broken record: it fails the file, or is
//! left out when the resident imports the valid records.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One care, as stored (`io.domicile.health.care`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Care {
    pub reference: String,
    pub date: String,
    pub kind: &'static str,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reimbursed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub payers: Vec<Payer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setting: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnoses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payer {
    pub name: String,
    pub amount: f64,
}

/// What reading a file gave.
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    pub cares: Vec<Care>,
    /// Explanations of benefit left out because their source withdrew them
    /// (`cancelled`, `entered-in-error`).
    pub withdrawn: usize,
}

/// Reads a FHIR R4 JSON file. `on_broken(location, reason)` decides about
/// a broken care (see [`domicile_sdk::import`]).
pub fn read(bytes: &[u8], on_broken: &mut domicile_sdk::import::OnBroken<'_>) -> Result<Read, String> {
    let root: Value = domicile_sdk::import::json(bytes)?;
    let kind = root.get("resourceType").and_then(Value::as_str).ok_or("not a FHIR resource: no `resourceType`")?;
    let resources: Vec<&Value> = if kind == "Bundle" {
        let entries = match root.get("entry") {
            None => &[][..],
            Some(Value::Array(entries)) => entries.as_slice(),
            Some(_) => return Err("Bundle.entry is not a list".into()),
        };
        entries.iter().filter_map(|e| e.get("resource")).filter(|r| r.is_object()).collect()
    } else {
        vec![&root]
    };
    let index = Index::new(&resources, &root);
    let mut read = Read::default();

    // Explanations of benefit, grouped by the claim they decide on (one
    // care, several payers), else each on its own.
    let mut groups: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let mut settled_claims = std::collections::BTreeSet::new();
    for (n, eob) in resources.iter().enumerate().filter(|(_, r)| type_of(r) == "ExplanationOfBenefit") {
        if matches!(str_at(eob, "status"), Some("cancelled" | "entered-in-error")) {
            read.withdrawn += 1;
            continue;
        }
        // The claim decided on, even when the file does not hold it: a
        // complementary insurer's decision names the same claim.
        let key = match eob.get("claim").and_then(|c| index.key_of(c, eob)) {
            Some(claim) => {
                settled_claims.insert(claim.clone());
                claim
            }
            None => resource_id(eob).unwrap_or_else(|| format!("ExplanationOfBenefit/entry-{n}")),
        };
        groups.entry(key).or_default().push(eob);
    }
    for (reference, eobs) in &groups {
        let claim = eobs.iter().find_map(|e| e.get("claim").and_then(|c| index.resolve(c, e)));
        match settled(reference, eobs, claim, &index) {
            Ok(care) => read.cares.push(care),
            Err(reason) => on_broken(&format!("care {reference}"), &reason)?,
        }
    }
    for (n, claim) in resources.iter().enumerate().filter(|(_, r)| type_of(r) == "Claim") {
        let reference = resource_id(claim).unwrap_or_else(|| format!("Claim/entry-{n}"));
        if settled_claims.contains(&reference)
            || matches!(str_at(claim, "status"), Some("cancelled" | "entered-in-error"))
        {
            continue;
        }
        match pending(&reference, claim, &index) {
            Ok(care) => read.cares.push(care),
            Err(reason) => on_broken(&format!("claim {reference}"), &reason)?,
        }
    }
    Ok(read)
}

/// A care a payer (or several) decided on.
fn settled(reference: &str, eobs: &[&Value], claim: Option<&Value>, index: &Index) -> Result<Care, String> {
    let mut currencies = Currencies::default();
    let mut billed: Option<f64> = None;
    let mut payers = Vec::new();
    // What the person paid, when a payer states it (CARIN's `paidbypatient`).
    let mut paid_by_patient: Option<f64> = None;
    for eob in eobs {
        // A pharmacy claim may state its cost as the drug's (CARIN's `drugcost`) rather than as submitted.
        let submitted = match total(eob, "submitted", &mut currencies)? {
            Some(submitted) => Some(submitted),
            None => total(eob, "drugcost", &mut currencies)?,
        };
        if let Some(paid) = total(eob, "paidbypatient", &mut currencies)? {
            // Each later payer leaves the person less to pay: the least stated is what was left.
            paid_by_patient = Some(paid_by_patient.map_or(paid, |p: f64| p.min(paid)));
        }
        // Each payer states what was billed; the care was billed once.
        billed = match (billed, submitted) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let benefit = match total(eob, "benefit", &mut currencies)? {
            Some(b) => Some(b),
            None => eob.pointer("/payment/amount").map(|m| money(m, &mut currencies)).transpose()?,
        };
        let benefit = benefit.ok_or("an explanation of benefit states no benefit and no payment")?;
        payers.push(Payer { name: payer_name(eob, index), amount: cents(benefit) });
    }
    if billed.is_none() {
        if let Some(claim) = claim {
            billed = claim_total(claim, &mut currencies)?;
        }
    }
    let billed = billed.ok_or("neither the explanations of benefit nor the claim state what was billed")?;
    let reimbursed: f64 = payers.iter().map(|p| p.amount).sum();
    let remaining = paid_by_patient.unwrap_or(billed - reimbursed).max(0.0);
    let sources: Vec<&Value> = eobs.iter().copied().chain(claim).collect();
    Ok(Care {
        reference: reference.to_owned(),
        date: care_date(&sources, index).ok_or("no date of care (billablePeriod, servicedDate, created)")?,
        kind: kind_of(&sources, index),
        status: "settled",
        currency: currencies.one()?,
        billed: Some(cents(billed)),
        reimbursed: Some(cents(reimbursed)),
        remaining: Some(cents(remaining)),
        payers,
        setting: setting_of(&sources, index),
        provider: sources.iter().find_map(|r| r.get("provider").and_then(|p| index.name_of(p, r))),
        diagnoses: sources.iter().map(|r| diagnoses(r, index)).find(|d| !d.is_empty()).unwrap_or_default(),
    })
}

/// A care billed, with no payer's decision yet.
fn pending(reference: &str, claim: &Value, index: &Index) -> Result<Care, String> {
    let mut currencies = Currencies::default();
    let billed = claim_total(claim, &mut currencies)?.ok_or("the claim states no total and no item amounts")?;
    let sources = [claim];
    Ok(Care {
        reference: reference.to_owned(),
        date: care_date(&sources, index).ok_or("no date of care (billablePeriod, servicedDate, created)")?,
        kind: kind_of(&sources, index),
        status: "pending",
        currency: currencies.one()?,
        billed: Some(cents(billed)),
        reimbursed: None,
        remaining: None,
        payers: Vec::new(),
        setting: setting_of(&sources, index),
        provider: claim.get("provider").and_then(|p| index.name_of(p, claim)),
        diagnoses: diagnoses(claim, index),
    })
}

/// The amount of an EOB's `total` of `category` (FHIR and CARIN
/// adjudication codes: `submitted`, `benefit`, `drugcost`,
/// `paidbypatient`, ...), else the sum of its items' adjudications. An item
/// may state a category more than once (CMS's Blue Button gives a line's
/// purchase price and its submitted charge both as `submitted`): it counts
/// once, at its largest amount, which is the line's charge.
fn total(eob: &Value, category: &str, currencies: &mut Currencies) -> Result<Option<f64>, String> {
    for t in array(eob, "total") {
        if has_code(t.get("category"), category) {
            return t.get("amount").map(|m| money(m, currencies)).transpose();
        }
    }
    let mut sum = None;
    for item in array(eob, "item") {
        let mut line: Option<f64> = None;
        for a in array(item, "adjudication") {
            if has_code(a.get("category"), category) {
                if let Some(m) = a.get("amount") {
                    let amount = money(m, currencies)?;
                    line = Some(line.map_or(amount, |l| l.max(amount)));
                }
            }
        }
        if let Some(line) = line {
            *sum.get_or_insert(0.0) += line;
        }
    }
    Ok(sum)
}

/// `Claim.total`, else the sum of its items' `net` (or `unitPrice` × `quantity`).
fn claim_total(claim: &Value, currencies: &mut Currencies) -> Result<Option<f64>, String> {
    if let Some(m) = claim.get("total") {
        return money(m, currencies).map(Some);
    }
    let mut sum = None;
    for item in array(claim, "item") {
        let amount = match (item.get("net"), item.get("unitPrice")) {
            (Some(net), _) => money(net, currencies)?,
            (None, Some(price)) => {
                money(price, currencies)? * item.pointer("/quantity/value").and_then(Value::as_f64).unwrap_or(1.0)
            }
            (None, None) => continue,
        };
        *sum.get_or_insert(0.0) += amount;
    }
    Ok(sum)
}

/// A FHIR `Money`: its value, its currency noted.
fn money(m: &Value, currencies: &mut Currencies) -> Result<f64, String> {
    let value = m.get("value").and_then(Value::as_f64).ok_or_else(|| format!("an amount has no number value: {m}"))?;
    if !value.is_finite() || value.abs() > 1e9 {
        return Err(format!("an amount of {value} is not plausible"));
    }
    match m.get("currency") {
        None => currencies.unstated = true,
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
            currencies.stated.insert(c.clone());
        }
        Some(other) => return Err(format!("`{other}` is not an ISO 4217 currency code")),
    }
    Ok(value)
}

/// The currencies the amounts of one care are in.
#[derive(Default)]
struct Currencies {
    stated: std::collections::BTreeSet<String>,
    unstated: bool,
}

impl Currencies {
    /// The care's one currency; amounts without one share the others'.
    fn one(&self) -> Result<Option<String>, String> {
        match self.stated.len() {
            0 | 1 => Ok(self.stated.iter().next().cloned()),
            _ => Err(format!(
                "its amounts are in {}: one care's amounts must be in one currency",
                self.stated.iter().cloned().collect::<Vec<_>>().join(" and ")
            )),
        }
    }
}

/// The day of care: the billable period's start, else an item's service
/// date or period, else the encounter's start, else the day it was created.
fn care_date(sources: &[&Value], index: &Index) -> Option<String> {
    let candidates = sources.iter().flat_map(|r| {
        let items = array(r, "item");
        [r.pointer("/billablePeriod/start")]
            .into_iter()
            .chain(items.iter().map(|i| i.get("servicedDate")))
            .chain(items.iter().map(|i| i.pointer("/servicedPeriod/start")))
            .chain(encounters(r, index).into_iter().map(|e| e.pointer("/period/start")))
            .chain([r.get("created")])
            .collect::<Vec<_>>()
    });
    candidates.flatten().filter_map(Value::as_str).find_map(day)
}

/// `2026-03-02` of a FHIR date or dateTime, if it is a real day.
fn day(text: &str) -> Option<String> {
    let d = text.get(..10)?;
    let b = d.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)) {
        return None;
    }
    let (y, m, dd): (i64, i64, i64) = (d[..4].parse().ok()?, d[5..7].parse().ok()?, d[8..10].parse().ok()?);
    domicile_sdk::time::Date::new(y, m, dd).map(|_| d.to_owned())
}

/// The encounters a claim or EOB points to (its items' `encounter`).
fn encounters<'a>(r: &'a Value, index: &'a Index) -> Vec<&'a Value> {
    array(r, "item").iter().flat_map(|i| array(i, "encounter")).filter_map(|e| index.resolve(e, r)).collect()
}

/// The kind of care from every coding of the claim's type and subtype, the
/// items' benefit categories, the encounter, then the words used.
fn kind_of(sources: &[&Value], index: &Index) -> &'static str {
    let categories: Vec<&str> = sources
        .iter()
        .flat_map(|r| {
            let items = array(r, "item");
            items.iter().flat_map(|i| codes(i.get("category"))).collect::<Vec<_>>()
        })
        .collect();
    let by_category = categories.iter().find_map(|c| match *c {
        "3" => Some("consultation"),
        "4" | "62" => Some("imaging"),
        "5" => Some("laboratory"),
        "23" | "24" | "25" | "26" | "27" | "28" | "35" | "36" | "37" | "F3" => Some("dental"),
        "49" => Some("hospital"),
        "56" => Some("transport"),
        "F6" => Some("optical"),
        _ => None,
    });
    // Every coding of the type and subtype: exports give several (HL7's
    // claim type, CMS's claim type code, Blue Button's EOB type), in any order.
    let types: Vec<&str> =
        sources.iter().flat_map(|r| codes(r.get("type")).into_iter().chain(codes(r.get("subType")))).collect();
    let typed = |wanted: &[&str]| types.iter().any(|t| wanted.contains(t));
    if typed(&["pharmacy", "PDE"]) {
        return "pharmacy";
    }
    if typed(&["oral"]) {
        return "dental";
    }
    if typed(&["vision"]) {
        return "optical";
    }
    // Care at home (a home health agency), whatever its subtype says.
    if typed(&["HHA"]) {
        return "paramedical";
    }
    // A stay: an inpatient claim, a skilled nursing facility, a hospice, a
    // hospital's outpatient department. `institutional` alone is not one:
    // a health centre's routine visit is billed as institutional too.
    if typed(&["INPATIENT", "SNF", "HOSPICE", "OUTPATIENT", "inpatient", "outpatient"]) {
        return "hospital";
    }
    if let Some(kind) = by_category {
        return kind;
    }
    if sources.iter().any(|r| {
        encounters(r, index).iter().any(|e| matches!(encounter_class(e), Some("IMP" | "ACUTE" | "NONAC" | "EMER")))
    }) {
        return "hospital";
    }
    // A physician's services (Medicare's carrier claims).
    if typed(&["CARRIER"]) {
        return "consultation";
    }
    let words: String = sources
        .iter()
        .flat_map(|r| {
            let items = array(r, "item");
            [r.pointer("/type/text")]
                .into_iter()
                .chain(items.iter().map(|i| i.pointer("/productOrService/text")))
                .chain(
                    items.iter().flat_map(|i| array_at(i.get("productOrService"), "coding")).map(|c| c.get("display")),
                )
                .collect::<Vec<_>>()
        })
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let said = |stems: &[&str]| stems.iter().any(|s| words.contains(s));
    if said(&["kiné", "kine", "physio", "infirm", "nurs", "orthophon", "speech", "podo"]) {
        "paramedical"
    } else if said(&["ambulance", "taxi", "transport"]) {
        "transport"
    } else if said(&["radio", "x-ray", "irm", "mri", "scanner", "échograph", "echograph"]) {
        "imaging"
    } else if said(&["analyse", "laborato", "biolog", "blood test"]) {
        "laboratory"
    } else if said(&["pharmac", "médicament", "medicament", "medication"]) {
        "pharmacy"
    } else if typed(&["professional"])
        || said(&["consult", "visit", "check up", "checkup", "examination"])
        || (typed(&["institutional"]) && encountered_as(sources, index, &["AMB", "VR", "HH"]))
    {
        "consultation"
    } else {
        "other"
    }
}

/// Whether a care's encounter is of one of these classes.
fn encountered_as(sources: &[&Value], index: &Index, classes: &[&str]) -> bool {
    sources
        .iter()
        .any(|r| encounters(r, index).iter().any(|e| encounter_class(e).is_some_and(|c| classes.contains(&c))))
}

fn encounter_class(e: &Value) -> Option<&str> {
    e.pointer("/class/code").and_then(Value::as_str)
}

/// Where the care was given, from its encounter's class (v3 ActCode).
fn setting_of(sources: &[&Value], index: &Index) -> Option<&'static str> {
    sources.iter().flat_map(|r| encounters(r, index)).find_map(|e| match encounter_class(e)? {
        "AMB" | "FLD" => Some("ambulatory"),
        "IMP" | "ACUTE" | "NONAC" | "SS" | "OBSENC" | "PRENC" => Some("inpatient"),
        "EMER" => Some("emergency"),
        "HH" => Some("home"),
        "VR" => Some("virtual"),
        _ => None,
    })
}

/// The payer of an explanation of benefit: its insurer, else its focal
/// coverage's payor, as named (a display, else the organisation's name,
/// else the identifier the export gives it, as CMS's `CMS`).
fn payer_name(eob: &Value, index: &Index) -> String {
    let from_insurer = eob.get("insurer").and_then(|i| index.name_of(i, eob));
    let from_coverage = || {
        let insurance = array(eob, "insurance");
        let focal = insurance.iter().find(|i| i.get("focal") == Some(&Value::Bool(true))).or(insurance.first())?;
        let coverage = index.resolve(focal.get("coverage")?, eob)?;
        array(coverage, "payor").iter().find_map(|p| index.name_of(p, coverage))
    };
    let identified = || {
        let value = eob.pointer("/insurer/identifier/value").and_then(Value::as_str)?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    };
    from_insurer
        .or_else(from_coverage)
        .or_else(identified)
        .unwrap_or_else(|| "an insurer the export does not name".to_owned())
}

/// Diagnoses as "code wording", given inline or by reference to a Condition.
fn diagnoses(r: &Value, index: &Index) -> Vec<String> {
    array(r, "diagnosis")
        .iter()
        .filter_map(|d| {
            let concept = d.get("diagnosisCodeableConcept").or_else(|| {
                let condition = index.resolve(d.get("diagnosisReference")?, r)?;
                condition.get("code")
            })?;
            concept_text(concept)
        })
        .collect()
}

/// "J06.9 Acute upper respiratory infection" of a CodeableConcept.
fn concept_text(concept: &Value) -> Option<String> {
    let coding = array(concept, "coding").into_iter().next();
    let code = coding.and_then(|c| str_at(c, "code"));
    let words = str_at(concept, "text").or_else(|| coding.and_then(|c| str_at(c, "display")));
    match (code, words) {
        (Some(c), Some(w)) => Some(format!("{c} {w}")),
        (c, w) => c.or(w).map(str::to_owned),
    }
}

/// The resources of a file by every name a reference may use.
struct Index<'a> {
    by_reference: BTreeMap<String, &'a Value>,
}

impl<'a> Index<'a> {
    fn new(resources: &[&'a Value], root: &'a Value) -> Index<'a> {
        let mut by_reference = BTreeMap::new();
        for entry in array(root, "entry") {
            if let (Some(url), Some(resource)) = (str_at(entry, "fullUrl"), entry.get("resource")) {
                by_reference.insert(url.to_owned(), resource);
            }
        }
        for r in resources {
            if let Some(id) = str_at(r, "id") {
                by_reference.insert(format!("{}/{id}", type_of(r)), *r);
            }
        }
        Index { by_reference }
    }

    /// The resource a `Reference` points to: contained in `from` (`#id`),
    /// by full URL, by `Type/id`, or an absolute URL ending in `Type/id`.
    fn resolve(&self, reference: &Value, from: &'a Value) -> Option<&'a Value> {
        let target = str_at(reference, "reference")?;
        if let Some(id) = target.strip_prefix('#') {
            return array(from, "contained").into_iter().find(|c| str_at(c, "id") == Some(id));
        }
        if let Some(found) = self.by_reference.get(target) {
            return Some(*found);
        }
        let mut parts = target.trim_end_matches('/').rsplit('/');
        let (id, kind) = (parts.next()?, parts.next()?);
        // A versioned reference: Type/id/_history/2.
        let (kind, id) = if kind == "_history" {
            let id = parts.next()?;
            (parts.next()?, id)
        } else {
            (kind, id)
        };
        self.by_reference.get(&format!("{kind}/{id}")).copied()
    }

    /// What a reference names, as `Type/id`: the resource it resolves to,
    /// else the `Type/id` its text ends with, else its text (a `urn:uuid:`).
    fn key_of(&self, reference: &Value, from: &'a Value) -> Option<String> {
        if let Some(id) = self.resolve(reference, from).and_then(resource_id) {
            return Some(id);
        }
        let target = str_at(reference, "reference")?.trim_end_matches('/');
        let mut parts = target.rsplit('/');
        match (parts.next(), parts.next()) {
            (Some(id), Some(kind)) if !id.is_empty() && kind.starts_with(|c: char| c.is_ascii_uppercase()) => {
                Some(format!("{kind}/{id}"))
            }
            _ => Some(target.to_owned()).filter(|t| !t.is_empty()),
        }
    }

    /// A reference's display, else the name of what it points to.
    fn name_of(&self, reference: &Value, from: &'a Value) -> Option<String> {
        if let Some(display) = str_at(reference, "display").filter(|d| !d.trim().is_empty()) {
            return Some(display.trim().to_owned());
        }
        let target = self.resolve(reference, from)?;
        match target.get("name")? {
            Value::String(name) => Some(name.trim().to_owned()),
            // A HumanName list: its text, else given and family names.
            Value::Array(names) => names.iter().find_map(|n| {
                str_at(n, "text").map(str::to_owned).or_else(|| {
                    let given: Vec<&str> = array(n, "given").iter().filter_map(|g| g.as_str()).collect();
                    let parts: Vec<&str> = array(n, "prefix")
                        .iter()
                        .filter_map(|p| p.as_str())
                        .chain(given)
                        .chain(str_at(n, "family"))
                        .collect();
                    (!parts.is_empty()).then(|| parts.join(" "))
                })
            }),
            _ => None,
        }
    }
}

fn type_of(r: &Value) -> &str {
    str_at(r, "resourceType").unwrap_or_default()
}

fn resource_id(r: &Value) -> Option<String> {
    str_at(r, "id").filter(|id| !id.is_empty()).map(|id| format!("{}/{id}", type_of(r)))
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn array<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    array_at(Some(v), key)
}

fn array_at<'a>(v: Option<&'a Value>, key: &str) -> Vec<&'a Value> {
    v.and_then(|v| v.get(key)).and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
}

/// The codes of a CodeableConcept.
fn codes(concept: Option<&Value>) -> Vec<&str> {
    array_at(concept, "coding").into_iter().filter_map(|c| str_at(c, "code")).collect()
}

fn has_code(concept: Option<&Value>, code: &str) -> bool {
    codes(concept).contains(&code)
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
