//! Energy insights: what your Linky readings say about your electricity use.
//!
//! Reads `io.domicile.energy.reading` documents (only `kind`, `at`, `value`
//! and `unit`) and computes:
//! - consumption per day and per month (kWh). A load-curve reading is the
//!   average power over its interval (`interval_min`: 10, 15, 30 or 60
//!   minutes, ending at `at`; 30 for readings that predate the field), so
//!   its energy is power × interval. A day's figure comes from the load
//!   curve when it covers the whole day (at least 23 hours: a DST day has
//!   23), else from the difference of two consecutive daily indexes, else
//!   from whatever part of the load curve there is;
//! - the base load: what the home draws when nothing is switched on (the
//!   10th percentile of the load curve's power, in W);
//! - the peak hours: the three hours of the day with the highest average
//!   power (weighted by each reading's interval);
//! - per month, a comparison with the same days one year earlier;
//! - per month, a cost estimate when the input gives a tariff:
//!   `{"tariff": {"eur_per_kwh": 0.2516, "subscription_eur_per_month": 15.65}}`;
//! - a view: the latest month against last year, the last 92 days and the
//!   months as charts, the base load and the peak hours.
//!
//! The daily maximum power (`max-power` readings, VA) is not energy: it
//! gives the highest power the home drew, to set against the subscribed
//! power. A home with only those readings gets that figure and a word on
//! what to import to see its consumption, not an error.
//!
//! Run by its trigger (new readings arrived), it also leaves a notification
//! saying how the latest month compares with last year.
//!
//! When the resident took part in an energy campaign answered by this app
//! and brought its result into their space (`io.domicile.campaign.result`,
//! if they granted it), it shows where their own figure falls in their
//! neighbourhood's distribution: the campaign's question points into this
//! app's report (`/months/2026-01/kwh`), so the figure compared is exactly
//! the one that was sent, as shares, for the campaign.

use std::collections::BTreeMap;

use domicile_sdk::time::{local_date_minute, Date};
use domicile_sdk::view::{Chart, Table, View};
use domicile_sdk::{data, round};
use serde::{Deserialize, Serialize};

domicile_sdk::generate!("service", "../../wit");

const READING: &str = "io.domicile.energy.reading";
/// A day of load curve counts as complete with this many minutes (a DST day has 23 hours).
const FULL_DAY_MINUTES: i64 = 23 * 60;
/// The interval of load-curve readings imported before they carried one (energy-importer 0.1).
const LEGACY_INTERVAL_MIN: i64 = 30;

#[derive(Deserialize)]
struct Fields {
    kind: String,
    at: String,
    value: f64,
    unit: String,
    interval_min: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Input {
    tariff: Option<Tariff>,
    /// Set when new readings started the run (the manifest's trigger).
    trigger: Option<domicile_sdk::Trigger>,
}

#[derive(Deserialize, Serialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct Tariff {
    eur_per_kwh: f64,
    #[serde(default)]
    subscription_eur_per_month: f64,
}

#[derive(Serialize)]
struct Comparison {
    days: u32,
    kwh: f64,
    kwh_last_year: f64,
    change_pct: Option<f64>,
}

#[derive(Serialize)]
struct Month {
    kwh: f64,
    days: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_eur: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    same_days_last_year: Option<Comparison>,
}

#[derive(Serialize)]
struct PeakHour {
    hour: u32,
    avg_w: f64,
}

#[derive(Serialize)]
struct Report {
    days: BTreeMap<String, f64>,
    months: BTreeMap<String, Month>,
    base_load_w: Option<f64>,
    peak_hours: Vec<PeakHour>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tariff: Option<Tariff>,
    /// The highest of the days' maximum power, and the day it was drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    highest_power: Option<HighestPower>,
    /// Where the resident stands in each campaign result they brought home.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    neighbourhoods: Vec<Standing>,
}

/// This app's id: the campaign results it compares with are those of its own question.
const APP_ID: &str = "io.domicile.sample.energy-insights";
const CAMPAIGN_RESULT: &str = "io.domicile.campaign.result";

/// A campaign's result, as the participant's home keeps it.
#[derive(Deserialize)]
struct CampaignResult {
    campaign: String,
    computes: String,
    app: Option<String>,
    answer: Option<String>,
    bounds: Option<Vec<f64>>,
    neighbourhood: Option<String>,
    reports: u64,
    aggregate: serde_json::Value,
}

/// Where the resident's figure falls among their neighbourhood's.
#[derive(Serialize, Debug, PartialEq)]
struct Standing {
    campaign: String,
    computes: String,
    /// Their neighbourhood; none: the participants of the neighbourhoods
    /// too small to be released alone, and of none.
    neighbourhood: Option<String>,
    participants: u64,
    your_kwh: f64,
    your_bucket: String,
    /// The share of the participants whose figure fell in a lower bucket.
    below_pct: f64,
    buckets: Vec<String>,
    /// How many fell in each bucket (noise may make a count a little off:
    /// below zero is shown as zero).
    households: Vec<f64>,
}

#[derive(Serialize)]
struct HighestPower {
    va: f64,
    date: String,
}

#[derive(Default)]
struct Readings {
    /// Per day: Wh from the load curve, and how many minutes it covers.
    load_days: BTreeMap<Date, (f64, i64)>,
    /// Every load-curve power, and per hour of the day (W·min, minutes).
    powers: Vec<f64>,
    hours: BTreeMap<u32, (f64, i64)>,
    /// Daily index in Wh, the first reading of each day.
    index: BTreeMap<Date, f64>,
    /// The day's maximum apparent power, in VA.
    max_power: BTreeMap<Date, f64>,
}

impl Readings {
    fn add(&mut self, r: Fields) -> Result<(), String> {
        let (date, minute) =
            local_date_minute(&r.at).ok_or_else(|| format!("a reading has a malformed time `{}`", r.at))?;
        match r.kind.as_str() {
            "load-curve" => {
                // The value is the average power of the interval ending at `at`.
                let interval = r.interval_min.unwrap_or(LEGACY_INTERVAL_MIN);
                if !(1..=60).contains(&interval) {
                    return Err(format!("a load-curve reading has an interval of {interval} minutes"));
                }
                let (date, start) = if minute >= interval {
                    (date, minute - interval)
                } else {
                    (date.add_days(-1), minute - interval + 1440)
                };
                let day = self.load_days.entry(date).or_default();
                day.0 += r.value * interval as f64 / 60.0;
                day.1 += interval;
                self.powers.push(r.value);
                let hour = self.hours.entry((start / 60) as u32).or_default();
                hour.0 += r.value * interval as f64;
                hour.1 += interval;
            }
            "daily-index" => {
                let wh = if r.unit == "kWh" { r.value * 1000.0 } else { r.value };
                self.index.entry(date).or_insert(wh);
            }
            "max-power" => {
                let va = if r.unit.starts_with('k') { r.value * 1000.0 } else { r.value };
                let day = self.max_power.entry(date).or_insert(va);
                *day = day.max(va);
            }
            _ => {}
        }
        Ok(())
    }

    /// kWh per day, by the rule in the crate documentation.
    fn daily_kwh(&self) -> BTreeMap<Date, f64> {
        let mut days = BTreeMap::new();
        for (date, wh) in &self.index {
            if let Some(next) = self.index.get(&date.add_days(1)) {
                if next >= wh {
                    days.insert(*date, (next - wh) / 1000.0);
                }
            }
        }
        for (date, (wh, minutes)) in &self.load_days {
            if *minutes >= FULL_DAY_MINUTES || !days.contains_key(date) {
                days.insert(*date, wh / 1000.0);
            }
        }
        days
    }
}

struct Insights;

impl Guest for Insights {
    fn run(input: String) -> Result<String, String> {
        let input: Input = domicile_sdk::input(&input)?;
        let mut readings = Readings::default();
        for item in data::query::<Fields>(READING, &serde_json::json!({})).map_err(|e| e.to_string())? {
            readings.add(item.map_err(|e| e.to_string())?.1)?;
        }
        if readings.load_days.is_empty() && readings.index.is_empty() && readings.max_power.is_empty() {
            return Err("no energy readings: import a Linky export first".into());
        }
        let daily = readings.daily_kwh();

        let mut months: BTreeMap<String, Month> = BTreeMap::new();
        for (date, kwh) in &daily {
            let month = months.entry(date.month_key()).or_insert(Month {
                kwh: 0.0,
                days: 0,
                cost_eur: None,
                same_days_last_year: None,
            });
            month.kwh += kwh;
            month.days += 1;
        }
        for (key, month) in months.iter_mut() {
            let (mut days, mut now, mut before) = (0, 0.0, 0.0);
            for (date, kwh) in daily.iter().filter(|(d, _)| &d.month_key() == key) {
                if let Some(then) = daily.get(&date.year_before()) {
                    days += 1;
                    now += kwh;
                    before += then;
                }
            }
            if days > 0 {
                month.same_days_last_year = Some(Comparison {
                    days,
                    kwh: round(now, 3),
                    kwh_last_year: round(before, 3),
                    change_pct: (before > 0.0).then(|| round((now - before) / before * 100.0, 1)),
                });
            }
            if let Some(t) = input.tariff {
                month.cost_eur = Some(round(month.kwh * t.eur_per_kwh + t.subscription_eur_per_month, 2));
            }
            month.kwh = round(month.kwh, 3);
        }

        let base_load_w = (!readings.powers.is_empty()).then(|| {
            let mut sorted = readings.powers.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = (sorted.len() as f64 * 0.1).ceil().max(1.0) as usize;
            sorted[rank - 1]
        });
        let mut peak_hours: Vec<PeakHour> = readings
            .hours
            .iter()
            .map(|(hour, (watt_minutes, minutes))| PeakHour {
                hour: *hour,
                avg_w: round(watt_minutes / *minutes as f64, 1),
            })
            .collect();
        peak_hours.sort_by(|a, b| b.avg_w.total_cmp(&a.avg_w).then(a.hour.cmp(&b.hour)));
        peak_hours.truncate(3);

        let report = Report {
            days: daily.iter().map(|(d, kwh)| (d.to_string(), round(*kwh, 3))).collect(),
            months,
            base_load_w,
            peak_hours,
            tariff: input.tariff,
            highest_power: readings
                .max_power
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(date, va)| HighestPower { va: *va, date: date.to_string() }),
            neighbourhoods: Vec::new(),
        };
        let mut report = report;
        report.neighbourhoods = standings(&serde_json::to_value(&report).map_err(|e| e.to_string())?)?;
        if input.trigger.is_some() {
            if let Some((title, body)) = latest_month_news(&report) {
                domicile_sdk::notify(&title, &body).map_err(|e| e.to_string())?;
            }
        }
        domicile_sdk::view::output(&report, view_of(&report, &daily))
    }
}

/// The resident's standing in each energy campaign result in their space
/// that this app's report answers; none when they did not grant reading
/// results.
fn standings(report: &serde_json::Value) -> Result<Vec<Standing>, String> {
    let results = match data::query::<CampaignResult>(CAMPAIGN_RESULT, &serde_json::json!({ "app": APP_ID })) {
        Ok(results) => results,
        Err(domicile_sdk::Error::Denied(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut standings = Vec::new();
    for item in results {
        let Ok((_, result)) = item else { continue };
        if let Some(standing) = standing(report, result) {
            standings.push(standing);
        }
    }
    Ok(standings)
}

/// Where the figure at the result's question falls in its histogram.
fn standing(report: &serde_json::Value, result: CampaignResult) -> Option<Standing> {
    if result.app.as_deref() != Some(APP_ID) {
        return None;
    }
    let bounds = result.bounds?;
    let yours = report.pointer(result.answer.as_deref()?)?.as_f64()?;
    let households: Vec<f64> =
        result.aggregate.as_array()?.iter().map(|c| c.as_f64().unwrap_or(0.0).max(0.0)).collect();
    if households.len() != bounds.len() + 1 {
        return None;
    }
    let mut buckets = vec![format!("< {}", bounds[0])];
    buckets.extend(bounds.windows(2).map(|w| format!("{}-{}", w[0], w[1])));
    buckets.push(format!(">= {}", bounds[bounds.len() - 1]));
    let bucket = bounds.partition_point(|b| *b <= yours);
    let total: f64 = households.iter().sum();
    let below: f64 = households[..bucket].iter().sum();
    Some(Standing {
        campaign: result.campaign,
        computes: result.computes,
        neighbourhood: result.neighbourhood,
        participants: result.reports,
        your_kwh: round(yours, 1),
        your_bucket: buckets[bucket].clone(),
        below_pct: if total > 0.0 { round(below / total * 100.0, 0) } else { 0.0 },
        buckets,
        households,
    })
}

/// What new readings say, for a notification: "2026-03 so far: 207.4 kWh,
/// +27.7 % on the same 14 days last year".
fn latest_month_news(report: &Report) -> Option<(String, String)> {
    let (key, month) = report.months.iter().next_back()?;
    let comparison = month.same_days_last_year.as_ref().and_then(|c| c.change_pct.map(|pct| (c.days, pct)));
    let body = match comparison {
        Some((days, pct)) => format!(
            "{} kWh over {} days, {}{pct} % on the same {days} days last year",
            round(month.kwh, 1),
            month.days,
            if pct > 0.0 { "+" } else { "" }
        ),
        None => format!("{} kWh over {} days", round(month.kwh, 1), month.days),
    };
    Some((format!("Electricity, {key} so far"), body))
}

/// How many calendar days the per-day chart shows, ending at the last one.
const CHART_DAYS: i64 = 92;

/// The report drawn: the latest month against last year, a chart of the
/// last [`CHART_DAYS`] days (gaps left empty), one of the months, and the
/// base load and peak hours.
fn view_of(report: &Report, daily: &BTreeMap<Date, f64>) -> View {
    let mut view = View::new().heading("Electricity");
    if daily.is_empty() {
        view = view.text(
            "Your readings hold the maximum power of each day, not the energy used: import a load curve or daily index export (Enedis, \"Mes données de consommation\") to see your consumption.",
        );
    }
    if let Some(highest) = &report.highest_power {
        view = view.number(format!("Highest power drawn ({})", highest.date), highest.va, "VA");
    }
    if let Some((key, month)) = report.months.iter().next_back() {
        let label = format!("{key} ({} days)", month.days);
        view = match month.same_days_last_year.as_ref().and_then(|c| c.change_pct.map(|pct| (c, pct))) {
            Some((c, pct)) => {
                view.number_with_delta(label, month.kwh, "kWh", pct, format!("the same {} days last year", c.days))
            }
            None => view.number(label, month.kwh, "kWh"),
        };
    }
    if let Some(last) = daily.keys().next_back() {
        let window: Vec<Date> = (0..CHART_DAYS).rev().map(|back| last.add_days(-back)).collect();
        let values: Vec<Option<f64>> = window.iter().map(|d| daily.get(d).map(|kwh| round(*kwh, 3))).collect();
        view = view.chart(
            Chart::bar(
                format!("Energy per day, the {CHART_DAYS} days to {last}"),
                "kWh",
                window.iter().map(Date::to_string),
            )
            .series("kWh", values),
        );
    }
    if report.months.is_empty() {
        return view;
    }
    let last_year: Vec<Option<f64>> =
        report.months.values().map(|m| m.same_days_last_year.as_ref().map(|c| c.kwh_last_year)).collect();
    let mut months = Chart::bar("Energy per month", "kWh", report.months.keys().cloned())
        .series("kWh", report.months.values().map(|m| m.kwh));
    if last_year.iter().any(Option::is_some) {
        months = months.series("same days a year earlier", last_year);
    }
    view = view.chart(months);
    if let Some((key, cost)) = report.months.iter().next_back().and_then(|(k, m)| m.cost_eur.map(|c| (k, c))) {
        view = view.number(format!("Estimated cost, {key}"), cost, "EUR");
    }
    if let Some(watts) = report.base_load_w {
        view = view.number("Base load (what the home draws when nothing is on)", watts, "W");
    }
    if !report.peak_hours.is_empty() {
        let mut peaks = Table::new(["hour", "average W"]).titled("Peak hours");
        for peak in &report.peak_hours {
            peaks =
                peaks.row([format!("{:02}:00-{:02}:00", peak.hour, (peak.hour + 1) % 24).into(), peak.avg_w.into()]);
        }
        view = view.table(peaks);
    }
    for standing in &report.neighbourhoods {
        let whose = match &standing.neighbourhood {
            Some(code) => format!("your neighbourhood ({code})"),
            None => "the other participants' neighbourhoods".to_owned(),
        };
        view = view
            .number(format!("Yours, {}", standing.computes), standing.your_kwh, "kWh")
            .text(format!(
                "Campaign {}: of the {} households of {whose}, {} % used less than you (your bucket: {} kWh).",
                standing.campaign, standing.participants, standing.below_pct, standing.your_bucket
            ))
            .chart(
                Chart::bar(format!("Households of {whose}, by kWh"), "households", standing.buckets.iter().cloned())
                    .series("households", standing.households.iter().copied()),
            );
    }
    view
}

export!(Insights);

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at: &str, value: f64, interval_min: Option<i64>) -> Fields {
        Fields { kind: "load-curve".into(), at: at.into(), value, unit: "W".into(), interval_min }
    }

    /// A whole day of `watts` every `step` minutes; readings end their interval.
    fn day(step: i64, watts: f64) -> Readings {
        let mut readings = Readings::default();
        for end in (step..=1440).step_by(step as usize) {
            let at = if end == 1440 {
                "2026-03-02T00:00:00+01:00".to_owned()
            } else {
                format!("2026-03-01T{:02}:{:02}:00+01:00", end / 60, end % 60)
            };
            readings.add(reading(&at, watts, Some(step))).unwrap();
        }
        readings
    }

    #[test]
    fn energy_is_power_times_each_readings_interval() {
        let date = Date::parse("2026-03-01").unwrap();
        for step in [10, 15, 30, 60] {
            // 500 W all day is 12 kWh, whatever the step.
            let daily = day(step, 500.0).daily_kwh();
            assert_eq!(daily.len(), 1, "step {step}");
            assert!((daily[&date] - 12.0).abs() < 1e-9, "step {step}: {}", daily[&date]);
        }
    }

    #[test]
    fn mixed_steps_and_legacy_readings() {
        let mut readings = Readings::default();
        // 00:00-01:00 at 60 min, 01:00-01:30 as a legacy (30 min) reading, 01:30-01:45 at 15.
        readings.add(reading("2026-03-01T01:00:00+01:00", 1000.0, Some(60))).unwrap();
        readings.add(reading("2026-03-01T01:30:00+01:00", 1000.0, None)).unwrap();
        readings.add(reading("2026-03-01T01:45:00+01:00", 1000.0, Some(15))).unwrap();
        let (wh, minutes) = readings.load_days[&Date::parse("2026-03-01").unwrap()];
        assert_eq!((wh, minutes), (1750.0, 105));
        // Hour 1 has 30 min at 1000 W and 15 min at 1000 W; hour 0 is the 60-minute reading.
        assert_eq!(readings.hours[&0], (60_000.0, 60));
        assert_eq!(readings.hours[&1], (45_000.0, 45));
        assert!(readings.add(reading("2026-03-01T01:00:00+01:00", 1.0, Some(90))).is_err());
    }

    #[test]
    fn the_figure_a_campaign_asked_for_is_placed_in_the_neighbourhood_s_histogram() {
        let report = serde_json::json!({ "months": { "2026-01": { "kwh": 312.4 } } });
        let result = |app: &str, answer: &str, aggregate: serde_json::Value| CampaignResult {
            campaign: "fr.nantes.energie-janvier-2026".into(),
            computes: "January 2026".into(),
            app: Some(app.into()),
            answer: Some(answer.into()),
            bounds: Some(vec![200.0, 300.0, 400.0]),
            neighbourhood: Some("443090101".into()),
            reports: 20,
            aggregate,
        };
        let standing = standing(&report, result(APP_ID, "/months/2026-01/kwh", serde_json::json!([3, 7, 8, -1])));
        let standing = standing.unwrap();
        assert_eq!(standing.your_bucket, "300-400");
        assert_eq!(standing.below_pct, 56.0, "10 of the 18 counted (noise below zero counts none)");
        assert_eq!(standing.buckets, ["< 200", "200-300", "300-400", ">= 400"]);
        assert_eq!(standing.households, [3.0, 7.0, 8.0, 0.0]);
        // Another app's question, a figure this report lacks, counts of another shape: no standing.
        assert!(super::standing(&report, result("org.other", "/months/2026-01/kwh", serde_json::json!([1, 1, 1, 1])))
            .is_none());
        assert!(
            super::standing(&report, result(APP_ID, "/months/2026-02/kwh", serde_json::json!([1, 1, 1, 1]))).is_none()
        );
        assert!(super::standing(&report, result(APP_ID, "/months/2026-01/kwh", serde_json::json!([1, 1]))).is_none());
    }

    #[test]
    fn a_reading_at_midnight_belongs_to_the_day_before() {
        let mut readings = Readings::default();
        readings.add(reading("2026-03-02T00:00:00+01:00", 600.0, Some(15))).unwrap();
        assert_eq!(readings.load_days[&Date::parse("2026-03-01").unwrap()], (150.0, 15));
        assert_eq!(readings.hours[&23], (9000.0, 15));
    }
}
