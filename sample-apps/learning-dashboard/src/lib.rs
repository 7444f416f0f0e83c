//! Learning dashboard: a learner's activity over time, per subject and verb,
//! from xAPI statements gathered from every school and activity.
//!
//! Reads `io.domicile.learning.statement` documents (only `verb`,
//! `subject`, `result` and `date`) and gives, per month and subject: how
//! many statements, how many activities completed, passed and failed, the
//! average scaled score (0 to 1) when scores are given, and the time spent
//! (the sum of `result.duration`, ISO 8601 `PT1H20M`); and per month, the
//! statements per verb (the last part of the verb id: `completed`); and a
//! view: a table per subject and the time spent per month and subject.
//! Run by its trigger (new records arrived), it also leaves a notification.
//!
//! A statement its source has withdrawn does not count: the dashboard skips
//! the statements named by an `io.domicile.learning.voiding` (whichever
//! importer stored them) and voiding statements themselves (verb `voided`),
//! as the xAPI specification asks of a report. The voidings are an optional
//! grant: without it, the dashboard counts what the store holds (from which
//! the learning importer already removed the withdrawn records).

use std::collections::BTreeMap;

use domicile_sdk::view::{quote, Chart, Table, View};
use domicile_sdk::{data, round};
use serde::{Deserialize, Serialize};

domicile_sdk::generate!("service", "../../wit");

const STATEMENT: &str = "io.domicile.learning.statement";
const VOIDING: &str = "io.domicile.learning.voiding";
const VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";

#[derive(Deserialize)]
struct Voided {
    voids: String,
}

#[derive(Deserialize)]
struct Fields {
    verb: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    result: Option<serde_json::Value>,
    date: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Input {
    /// Set when new records started the run (the manifest's trigger).
    trigger: Option<domicile_sdk::Trigger>,
}

#[derive(Serialize, Default)]
struct Subject {
    statements: u64,
    completed: u64,
    passed: u64,
    failed: u64,
    avg_score: Option<f64>,
    minutes: f64,
    #[serde(skip)]
    scores: Vec<f64>,
}

#[derive(Serialize, Default)]
struct Month {
    statements: u64,
    subjects: BTreeMap<String, Subject>,
    verbs: BTreeMap<String, u64>,
}

/// Minutes of an ISO 8601 duration `PT1H20M30S` (days and weeks too); `None` if malformed.
pub fn duration_minutes(s: &str) -> Option<f64> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut minutes = 0.0;
    for (part, units) in
        [(date, &[('W', 7.0 * 1440.0), ('D', 1440.0)][..]), (time, &[('H', 60.0), ('M', 1.0), ('S', 1.0 / 60.0)][..])]
    {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let factor = units.iter().find(|(u, _)| *u == c)?.1;
            minutes += number.parse::<f64>().ok()? * factor;
            number.clear();
        }
        if !number.is_empty() {
            return None;
        }
    }
    Some(minutes)
}

struct Dashboard;

impl Guest for Dashboard {
    fn run(input: String) -> Result<String, String> {
        let input: Input = domicile_sdk::input(&input)?;
        let mut voided = std::collections::BTreeSet::new();
        // Without that grant, the records our importer was told are withdrawn are gone anyway.
        match data::query::<Voided>(VOIDING, &serde_json::json!({})) {
            Ok(voidings) => {
                for item in voidings {
                    voided.insert(item.map_err(|e| e.to_string())?.1.voids);
                }
            }
            Err(domicile_sdk::Error::Denied(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
        let mut months: BTreeMap<String, Month> = BTreeMap::new();
        for item in data::query::<Fields>(STATEMENT, &serde_json::json!({})).map_err(|e| e.to_string())? {
            let (id, s) = item.map_err(|e| e.to_string())?;
            if voided.contains(&id) || s.verb == VOIDED {
                continue;
            }
            let verb = s.verb.trim_end_matches('/').rsplit('/').next().unwrap_or(&s.verb).to_owned();
            let month =
                months.entry(s.date.get(0..7).ok_or("a statement has a malformed date")?.to_owned()).or_default();
            month.statements += 1;
            *month.verbs.entry(verb.clone()).or_default() += 1;
            let subject = month.subjects.entry(s.subject.unwrap_or_else(|| "other".into())).or_default();
            subject.statements += 1;
            match verb.as_str() {
                "completed" => subject.completed += 1,
                "passed" => subject.passed += 1,
                "failed" => subject.failed += 1,
                _ => {}
            }
            if let Some(result) = &s.result {
                if let Some(scaled) = result.pointer("/score/scaled").and_then(|v| v.as_f64()) {
                    subject.scores.push(scaled);
                }
                if let Some(minutes) = result.get("duration").and_then(|d| d.as_str()).and_then(duration_minutes) {
                    subject.minutes += minutes;
                }
            }
        }
        for subject in months.values_mut().flat_map(|m| m.subjects.values_mut()) {
            if !subject.scores.is_empty() {
                subject.avg_score = Some(round(subject.scores.iter().sum::<f64>() / subject.scores.len() as f64, 3));
            }
            subject.minutes = round(subject.minutes, 1);
        }
        if let Some(domicile_sdk::Trigger::OnChange { changes, .. }) = input.trigger {
            if let Some((month, m)) = months.iter().next_back() {
                let subjects: Vec<&str> = m.subjects.keys().map(String::as_str).collect();
                let body = format!(
                    "{changes} new or changed record(s); {month}: {} activities in {}",
                    m.statements,
                    subjects.join(", ")
                );
                domicile_sdk::notify("New learning records", &body).map_err(|e| e.to_string())?;
            }
        }
        let view = view_of(&months);
        domicile_sdk::view::output(&serde_json::json!({ "months": months }), view)
    }
}

/// The dashboard drawn: per subject over all months (statements, results,
/// average score, time), and the time spent per month and subject.
fn view_of(months: &BTreeMap<String, Month>) -> View {
    let mut view = View::new().heading("Learning");
    let mut subjects: BTreeMap<&str, (Subject, f64, u64)> = BTreeMap::new();
    for (name, s) in months.values().flat_map(|m| &m.subjects) {
        let (total, score_sum, scored) = subjects.entry(name).or_default();
        total.statements += s.statements;
        total.completed += s.completed;
        total.passed += s.passed;
        total.failed += s.failed;
        total.minutes += s.minutes;
        *score_sum += s.scores.iter().sum::<f64>();
        *scored += s.scores.len() as u64;
    }
    let mut table = Table::new(["subject", "statements", "completed", "passed", "failed", "average score %", "hours"])
        .titled("Per subject");
    for (name, (s, score_sum, scored)) in &subjects {
        let score = (*scored > 0).then(|| round(score_sum / *scored as f64 * 100.0, 1));
        table = table.row([
            quote(name).into(),
            (s.statements as f64).into(),
            (s.completed as f64).into(),
            (s.passed as f64).into(),
            (s.failed as f64).into(),
            score.into(),
            round(s.minutes / 60.0, 2).into(),
        ]);
    }
    if !subjects.is_empty() {
        view = view.table(table);
        let series = subjects
            .keys()
            .map(|name| {
                let hours =
                    months.values().map(|m| m.subjects.get(*name).map(|s| round(s.minutes / 60.0, 2))).collect();
                (quote(name), hours)
            })
            .collect();
        view = view.chart(
            Chart::stacked_bar("Time spent per month and subject", "hours", months.keys().cloned())
                .top_series(series, "subjects"),
        );
    }
    view
}

export!(Dashboard);

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::duration_minutes("PT1H20M30S"), Some(80.5));
        assert_eq!(super::duration_minutes("P1DT1M"), Some(1441.0));
        assert_eq!(super::duration_minutes("PT15M"), Some(15.0));
        assert_eq!(super::duration_minutes("15 minutes"), None);
        assert_eq!(super::duration_minutes("PT15"), None);
    }
}
