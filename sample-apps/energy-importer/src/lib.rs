//! Energy importer: turns the CSV exports of a Linky meter, as Enedis
//! gives them to its customers ("Mes données de consommation"), into
//! `io.domicile.energy.reading` documents.
//!
//! An export is `;`-separated, in one or more sections:
//!
//! ```text
//! Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur physique;Grandeur metier;Etape metier;Unite;Pas en minutes
//! 25946599093143;Courbe de charge;01/03/2026;15/03/2026;Energie active;Consommation;Comptage Brut;W;
//! Horodate;Valeur
//! 2026-03-01T00:30:00+01:00;412
//! ```
//!
//! - `Courbe de charge` rows are the average power (W) over the interval
//!   ending at the time. Linky meters record at 10, 15, 30 or 60 minutes,
//!   and the step may change within a file; each reading keeps its
//!   interval (`interval_min`), because energy is power times *that*
//!   interval. The interval is the header's `Pas en minutes` when it gives
//!   one; otherwise it is read from the timestamps (see [`step_of`]).
//! - `Index` rows are the meter's cumulative index (Wh) at the time, either
//!   `Horodate;Valeur` or the customer portal's multi-register layout
//!   `Horodate;Type de releve;EAS F1;...;EAS F10;EAS D1;...;EAS D4;EAS T`.
//!   The total `EAS T` is the index; without it, the distributor's
//!   registers `EAS D1..D4` add up to it (the supplier's `EAS F*` registers
//!   are reassigned when the tariff calendar changes and may go down, so
//!   they are the last resort).
//! - `Puissance maximale` rows are the day's maximum apparent power (VA;
//!   some exports label it `W`), kept as their own kind (`max-power`):
//!   they are not energy.
//! - After an index, real exports add the supplier's tariff calendar:
//!   `Periode;Identifiant calendrier fournisseur;...` then one
//!   `Du <time> au <time>;...` row per period, saying which register counted
//!   which hours. It holds no reading: its periods are counted, not stored.
//!
//! The newer per-measure layout puts everything on every row:
//! `Date de la mesure;Heure de la mesure;Valeur;Statut de la mesure;PRM;Type de données;...;Unité;Pas en minutes`,
//! with local French times and no offset; see [`paris_time`] for the hours
//! that clock changes skip or repeat.
//!
//! Real files carry a BOM or not, CRLF line ends, comma decimals, empty
//! values (skipped and counted), repeated rows (one reading: the id is
//! meter, kind and time, so importing a file again changes nothing) and
//! sections with no rows (an export of a period without data). Anything
//! else malformed is an error naming the line, and nothing is written.
//!
//! A CSV has no end marker, so a file cut off between two rows cannot be
//! told from a shorter export: the summary says what the file covers (its
//! first and last reading, its rows, and the rows a load curve's grid
//! expects but the file lacks), so that a cut is visible.

use std::collections::BTreeSet;

use domicile_sdk::import::OnBroken;
use domicile_sdk::time::{local_date_minute, parse_decimal, parse_rfc3339};
use serde::Serialize;

domicile_sdk::generate!("importer", "../../wit");

/// The recording intervals a meter can have, in minutes.
pub const STEPS: [i64; 6] = [5, 10, 15, 20, 30, 60];

#[derive(Debug, Serialize, PartialEq)]
pub struct Reading {
    pub meter: String,
    pub at: String,
    pub date: String,
    pub kind: &'static str,
    pub value: f64,
    pub unit: String,
    /// Load curve only: the minutes the average power covers, ending at `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_min: Option<i64>,
}

/// What a file held, besides its readings (which go to the sink as they are read).
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Parsed {
    pub readings: u64,
    pub meters: BTreeSet<String>,
    /// Rows whose value the export left empty.
    pub missing_values: u64,
    /// Rows a load curve's grid expects (one per step) that the file lacks.
    pub missing_rows: u64,
    pub repeated_rows: u64,
    /// Rows of readings the file holds, with or without a value.
    pub rows: u64,
    /// The earliest and latest reading, as the file writes their times.
    pub first: Option<String>,
    pub last: Option<String>,
    #[serde(skip)]
    span: Option<(i64, i64)>,
    /// Periods of the supplier's tariff calendar (not readings).
    pub calendar_periods: u64,
}

impl Parsed {
    /// Widens the span the readings cover to a row's time.
    fn covers(&mut self, at: &str, time: i64) {
        let (first, last) = self.span.get_or_insert((time, time));
        if time <= *first || self.first.is_none() {
            *first = time;
            self.first = Some(at.to_owned());
        }
        if time >= *last || self.last.is_none() {
            *last = time;
            self.last = Some(at.to_owned());
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    LoadCurve,
    DailyIndex,
    MaxPower,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::LoadCurve => "load-curve",
            Kind::DailyIndex => "daily-index",
            Kind::MaxPower => "max-power",
        }
    }
}

/// Which columns of a section's rows hold its value.
enum Columns {
    /// `Horodate;Valeur`.
    Value,
    /// `Horodate;Type de releve;EAS F1;...;EAS T`: the total's column, the
    /// distributor's and the supplier's registers.
    Registers { total: Option<usize>, distributor: Vec<usize>, supplier: Vec<usize> },
    /// The per-measure layout: every row says its date, time, value, meter,
    /// kind and unit.
    Measures(Measures),
}

/// Where the per-measure layout keeps what each row says.
#[derive(Clone)]
struct Measures {
    date: usize,
    time: usize,
    value: usize,
    meter: usize,
    kind: usize,
    unit: usize,
    step: Option<usize>,
}

#[derive(PartialEq)]
struct Section {
    meter: String,
    kind: Kind,
    unit: String,
    /// The header's `Pas en minutes`, when it gives one.
    declared_step: Option<i64>,
}

enum Expect {
    MetaHeader,
    MetaValues,
    RowsHeader(Section),
    Rows(Section, Columns),
    /// The rows of a supplier's tariff calendar, until the next section.
    Calendar,
}

/// A load-curve row whose interval waits for the next row's time.
struct Pending {
    line: u64,
    at: String,
    date: String,
    time: i64,
    value: Option<f64>,
    /// Minutes since the row before, when there was one and it was earlier.
    gap: Option<i64>,
}

/// The state of the load curve being read: one row of lookahead.
#[derive(Default)]
struct Curve {
    pending: Option<Pending>,
    last_step: Option<i64>,
}

/// The interval of a load-curve reading whose timestamps say `gap` minutes
/// since the previous row and `next` minutes until the following one, after
/// readings whose interval was `last`. A gap equal to the last step goes on
/// with it; a gap the next row repeats (or the first row's next gap) is a
/// new step; any other gap is a hole in the curve (missing rows), after
/// which the step goes on. `None` when nothing tells (a lone reading).
pub fn step_of(gap: Option<i64>, last: Option<i64>, next: Option<i64>) -> Option<i64> {
    let step = |g: Option<i64>| g.filter(|g| STEPS.contains(g));
    let (gap_step, next_step) = (step(gap), step(next));
    if gap_step.is_some() && (last.is_none() || gap_step == last) {
        return gap_step;
    }
    if next_step.is_some() && (gap_step.is_none() || gap_step == next_step) {
        return next_step;
    }
    last.or(gap_step).or(next_step)
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase().replace(['é', 'è', 'ê'], "e")
}

/// Parses a whole export, handing each reading to `sink` as it is read (an
/// export may hold a million rows: they are never all in memory at once).
/// A broken row goes to `on_broken` with its line and what is wrong with
/// it: it fails the file (`domicile_sdk::import::refuse`) or is left out.
/// Any other error names the line and fails the file.
pub fn parse(
    bytes: &[u8],
    mut sink: impl FnMut(Reading) -> Result<(), String>,
    on_broken: &mut OnBroken<'_>,
) -> Result<Parsed, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').has_headers(false).flexible(true).from_reader(bytes);
    let mut parsed = Parsed::default();
    let mut sections = 0u64;
    // Hashes of (meter, kind, time): enough to count repeated rows in little memory.
    let mut seen = std::collections::HashSet::new();
    let mut emit = |parsed: &mut Parsed, reading: Reading, line: u64| -> Result<(), RowError> {
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&reading.meter, reading.kind, &reading.at).hash(&mut h);
            h.finish()
        };
        if seen.insert(key) {
            parsed.readings += 1;
        } else {
            parsed.repeated_rows += 1;
        }
        if !parsed.meters.contains(&reading.meter) {
            parsed.meters.insert(reading.meter.clone());
        }
        sink(reading).map_err(|e| RowError::Fatal(format!("line {line}: {e}")))
    };
    let mut handle = |result: Result<(), RowError>| match result {
        Ok(()) => Ok(()),
        Err(RowError::Broken { line, reason }) => on_broken(&format!("line {line}"), &reason),
        Err(RowError::Fatal(e)) => Err(e),
    };
    let mut curve = Curve::default();
    // The per-measure layout's last time (UTC), to place the hour that October's clock change repeats.
    let mut last_utc: Option<i64> = None;
    let mut expect = Expect::MetaHeader;
    for record in reader.byte_records() {
        let record = record.map_err(|e| format!("unreadable CSV: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).map(|f| String::from_utf8_lossy(f).trim().to_owned()).unwrap_or_default();
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        // The per-measure layout names its meter and kind on every row: a change starts a new section.
        if let Expect::Rows(section, Columns::Measures(m)) = &expect {
            match measure_section(&field, m) {
                Ok(next) if next != *section => {
                    handle(finish_curve(&mut curve, section, &mut parsed, &mut emit))?;
                    curve = Curve::default();
                    last_utc = None;
                    expect = Expect::Rows(next, Columns::Measures(m.clone()));
                }
                Ok(_) => {}
                Err(reason) => {
                    handle(Err(RowError::Broken { line, reason }))?;
                    continue;
                }
            }
        }
        // A new section may start anywhere.
        if fold(&field(0)).starts_with("identifiant prm") {
            if let Expect::Rows(section, _) = &expect {
                handle(finish_curve(&mut curve, section, &mut parsed, &mut emit))?;
            }
            sections += 1;
            expect = Expect::MetaValues;
            continue;
        }
        // The supplier's calendar may follow an index's rows.
        if fold(&field(0)) == "periode" && fold(&field(1)).starts_with("identifiant calendrier") {
            if let Expect::Rows(section, _) = &expect {
                handle(finish_curve(&mut curve, section, &mut parsed, &mut emit))?;
            }
            expect = Expect::Calendar;
            continue;
        }
        expect = match expect {
            Expect::Calendar => {
                if !fold(&field(0)).starts_with("du ") {
                    return Err(format!(
                        "line {line}: expected a period of the supplier's calendar (`Du 2021-04-12T00:00:00+01:00 au ...`) or a new section (`Identifiant PRM;...`)"
                    ));
                }
                parsed.calendar_periods += 1;
                Expect::Calendar
            }
            Expect::MetaHeader if fold(&field(0)) == "date de la mesure" => {
                sections += 1;
                // No section until the first row says which.
                let none =
                    Section { meter: String::new(), kind: Kind::LoadCurve, unit: String::new(), declared_step: None };
                Expect::Rows(none, Columns::Measures(measures_of(line, &record)?))
            }
            Expect::MetaHeader => {
                return Err(format!("line {line}: expected the Enedis header `Identifiant PRM;Type de donnees;...`"))
            }
            Expect::MetaValues => Expect::RowsHeader(section_of(&field).map_err(|e| format!("line {line}: {e}"))?),
            Expect::RowsHeader(section) => {
                let columns = columns_of(line, &record, &section)?;
                curve = Curve::default();
                Expect::Rows(section, columns)
            }
            Expect::Rows(section, columns) => {
                let at = match &columns {
                    Columns::Measures(m) => paris_time(&field(m.date), &field(m.time), last_utc).ok_or(()),
                    _ => Ok(field(0)),
                };
                let Some((at, (date, _))) = at.ok().and_then(|at| Some((at.clone(), local_date_minute(&at)?))) else {
                    let reason = match &columns {
                        Columns::Measures(m) => format!(
                            "`{} {}` is not a date and time of day such as 01/03/2026 00:30:00",
                            field(m.date),
                            field(m.time)
                        ),
                        _ => format!("`{}` is not a time such as 2026-03-01T00:30:00+01:00", field(0)),
                    };
                    handle(Err(RowError::Broken { line, reason }))?;
                    expect = Expect::Rows(section, columns);
                    continue;
                };
                last_utc = parse_rfc3339(&at);
                parsed.rows += 1;
                parsed.covers(&at, last_utc.unwrap_or_default());
                // A row left out for its value still tells the curve's timing, as an empty value does.
                let value = match value_of(&field, &columns) {
                    Ok(None) => {
                        parsed.missing_values += 1;
                        None
                    }
                    Ok(value) => value,
                    Err(reason) => {
                        handle(Err(RowError::Broken { line, reason }))?;
                        None
                    }
                };
                let reading = |at: String, date: String, value: f64, interval_min: Option<i64>| Reading {
                    meter: section.meter.clone(),
                    at,
                    date,
                    kind: section.kind.name(),
                    value,
                    unit: section.unit.clone(),
                    interval_min,
                };
                if section.kind == Kind::LoadCurve {
                    let time = parse_rfc3339(&at).unwrap_or_default();
                    let row = Pending { line, at, date: date.to_string(), time, value, gap: None };
                    handle(push_curve_row(&mut curve, &section, row, &mut parsed, &mut emit))?;
                } else if let Some(value) = value {
                    handle(emit(&mut parsed, reading(at, date.to_string(), value, None), line))?;
                }
                Expect::Rows(section, columns)
            }
        };
    }
    if let Expect::Rows(section, _) = &expect {
        handle(finish_curve(&mut curve, section, &mut parsed, &mut emit))?;
    }
    if sections == 0 {
        return Err("no Enedis section found: is this a Linky consumption export (CSV)?".into());
    }
    Ok(parsed)
}

type Emit<'a> = dyn FnMut(&mut Parsed, Reading, u64) -> Result<(), RowError> + 'a;

/// Why a row was not read: the row is broken (it may be left out), or the
/// import cannot go on (the store refused a reading).
enum RowError {
    Broken { line: u64, reason: String },
    Fatal(String),
}

/// Takes the next load-curve row: the row before it now knows its interval.
fn push_curve_row(
    curve: &mut Curve,
    section: &Section,
    mut row: Pending,
    parsed: &mut Parsed,
    emit: &mut Emit<'_>,
) -> Result<(), RowError> {
    if let Some(previous) = &mut curve.pending {
        if row.time == previous.time {
            // The same time again: one reading (the later value, when it has one).
            if row.value.is_some() {
                if previous.value.is_some() {
                    parsed.repeated_rows += 1;
                }
                previous.value = row.value;
            }
            return Ok(());
        }
        let gap = (row.time > previous.time).then(|| (row.time - previous.time) / 60);
        if let (Some(declared), Some(gap)) = (section.declared_step, gap) {
            if gap % declared != 0 {
                return Err(RowError::Broken {
                    line: row.line,
                    reason: format!(
                        "this reading comes {gap} minutes after the one before, but the header says the step is {declared} minutes (`Pas en minutes`)"
                    ),
                });
            }
        }
        row.gap = gap;
        let previous = curve.pending.take().expect("checked above");
        emit_curve_row(curve, section, previous, gap, parsed, emit)?;
    }
    curve.pending = Some(row);
    Ok(())
}

/// The section ends: its last row gets its interval.
fn finish_curve(
    curve: &mut Curve,
    section: &Section,
    parsed: &mut Parsed,
    emit: &mut Emit<'_>,
) -> Result<(), RowError> {
    match curve.pending.take() {
        Some(last) => emit_curve_row(curve, section, last, None, parsed, emit),
        None => Ok(()),
    }
}

fn emit_curve_row(
    curve: &mut Curve,
    section: &Section,
    row: Pending,
    next: Option<i64>,
    parsed: &mut Parsed,
    emit: &mut Emit<'_>,
) -> Result<(), RowError> {
    let step = section.declared_step.or_else(|| step_of(row.gap, curve.last_step, next)).ok_or_else(|| {
        RowError::Broken {
            line: row.line,
            reason: "the interval of this load-curve reading cannot be told from the times around it; add the step to the header's `Pas en minutes` column".into(),
        }
    })?;
    curve.last_step = Some(step);
    // A gap of whole steps is that many rows missing from the grid.
    if let Some(gap) = row.gap.filter(|gap| *gap > step && gap % step == 0) {
        parsed.missing_rows += (gap / step - 1) as u64;
    }
    let Some(value) = row.value else { return Ok(()) };
    let reading = Reading {
        meter: section.meter.clone(),
        at: row.at,
        date: row.date,
        kind: section.kind.name(),
        value,
        unit: section.unit.clone(),
        interval_min: Some(step),
    };
    emit(parsed, reading, row.line)
}

/// The section's description: `PRM;Type de donnees;...;Unite;Pas en minutes`.
/// The error says what is wrong; the caller says where.
fn section_of(field: &dyn Fn(usize) -> String) -> Result<Section, String> {
    let meter = field(0);
    if meter.len() != 14 || !meter.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{meter}` is not a meter id (PRM: 14 digits)"));
    }
    let data_type = fold(&field(1));
    let unit = field(7);
    let kind = if data_type.contains("courbe") {
        Kind::LoadCurve
    } else if data_type.contains("index") {
        Kind::DailyIndex
    } else if data_type.contains("puissance") {
        Kind::MaxPower
    } else {
        return Err(format!(
            "data type `{}` is not supported: expected `Courbe de charge`, `Index` or `Puissance maximale quotidienne`",
            field(1)
        ));
    };
    let unit_ok = match kind {
        Kind::LoadCurve => unit == "W",
        Kind::DailyIndex => unit == "Wh" || unit == "kWh",
        // Apparent power, which some exports label `W`.
        Kind::MaxPower => ["VA", "kVA", "W", "kW"].contains(&unit.as_str()),
    };
    if !unit_ok {
        return Err(format!("unit `{unit}` does not fit `{}`", field(1)));
    }
    let step = field(8);
    let declared_step = match step.as_str() {
        "" => None,
        _ if kind != Kind::LoadCurve => None,
        _ => Some(step.parse::<i64>().ok().filter(|s| STEPS.contains(s)).ok_or_else(|| {
            format!("`Pas en minutes` is `{step}`: a load curve's step is one of 5, 10, 15, 20, 30 or 60 minutes")
        })?),
    };
    Ok(Section { meter, kind, unit, declared_step })
}

/// The section's column header: `Horodate;Valeur`, or the registers of a multi-register index.
fn columns_of(line: u64, record: &csv::ByteRecord, section: &Section) -> Result<Columns, String> {
    let names: Vec<String> = record.iter().map(|f| fold(&String::from_utf8_lossy(f))).collect();
    if names.first().map(String::as_str) != Some("horodate") {
        return Err(format!("line {line}: expected the column header `Horodate;Valeur`"));
    }
    if names.get(1).map(String::as_str) == Some("valeur") {
        return Ok(Columns::Value);
    }
    let registers = |prefix: &str| -> Vec<usize> {
        names
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                n.strip_prefix(prefix).is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|(i, _)| i)
            .collect()
    };
    let total = names.iter().position(|n| n == "eas t");
    let (distributor, supplier) = (registers("eas d"), registers("eas f"));
    if section.kind != Kind::DailyIndex || (total.is_none() && distributor.is_empty() && supplier.is_empty()) {
        return Err(format!(
            "line {line}: expected the column header `Horodate;Valeur` (or, for an index, `Horodate;Type de releve;EAS F1;...;EAS T`)"
        ));
    }
    Ok(Columns::Registers { total, distributor, supplier })
}

/// The per-measure layout's header: `Date de la mesure;Heure de la mesure;Valeur;Statut de la mesure;PRM;Type de données;...;Unité;Pas en minutes`
/// (accents as the export's encoding left them).
fn measures_of(line: u64, record: &csv::ByteRecord) -> Result<Measures, String> {
    let names: Vec<String> = record.iter().map(|f| fold(&String::from_utf8_lossy(f))).collect();
    let find = |prefix: &str| names.iter().position(|n| n.starts_with(prefix));
    let need = |prefix: &str, shown: &str| {
        find(prefix).ok_or_else(|| format!("line {line}: the per-measure layout has no `{shown}` column"))
    };
    Ok(Measures {
        date: need("date de la mesure", "Date de la mesure")?,
        time: need("heure de la mesure", "Heure de la mesure")?,
        value: need("valeur", "Valeur")?,
        meter: need("prm", "PRM")?,
        kind: need("type de donn", "Type de données")?,
        unit: need("unit", "Unité")?,
        step: find("pas en minutes"),
    })
}

/// What a per-measure row says of its meter, kind, unit and step, checked as a section header is.
fn measure_section(field: &dyn Fn(usize) -> String, m: &Measures) -> Result<Section, String> {
    let get = |i: usize| field(i);
    let meta = |i: usize| match i {
        0 => get(m.meter),
        1 => get(m.kind),
        7 => get(m.unit),
        8 => m.step.map(get).unwrap_or_default(),
        _ => String::new(),
    };
    section_of(&meta)
}

/// A per-measure row's local date and time in France (`01/03/2026` or
/// `2026-03-01`, `00:30:00` or `00:30`) as RFC 3339 with its offset. Clocks
/// go forward on the last Sunday of March (02:00-02:59 does not exist) and
/// back on the last Sunday of October (02:00-02:59 happens twice: the
/// second time when the row before was already at or past the first).
fn paris_time(date: &str, time: &str, after: Option<i64>) -> Option<String> {
    let date = domicile_sdk::time::Date::parse(date).or_else(|| domicile_sdk::time::Date::parse_dmy(date))?;
    let mut parts = time.trim().split(':');
    let (h, mi) = (parts.next()?, parts.next()?);
    let s = parts.next().unwrap_or("0");
    let (h, mi, s): (i64, i64, i64) = (h.parse().ok()?, mi.parse().ok()?, s.parse().ok()?);
    if parts.next().is_some() || h > 23 || mi > 59 || s > 59 || h < 0 || mi < 0 || s < 0 {
        return None;
    }
    let last_sunday = |month: i64| {
        let end = domicile_sdk::time::Date { year: date.year, month, day: 31 };
        // 1970-01-01 was a Thursday: Sunday is 3 days later.
        end.add_days(-(end.days() - 3).rem_euclid(7))
    };
    let minute = h * 60 + mi;
    let offset = if date < last_sunday(3) || date > last_sunday(10) {
        1
    } else if date > last_sunday(3) && date < last_sunday(10) {
        2
    } else if date == last_sunday(3) {
        match minute {
            m if m < 120 => 1,
            m if m >= 180 => 2,
            _ => return None,
        }
    } else {
        match minute {
            m if m < 120 => 2,
            m if m >= 180 => 1,
            // The repeated hour: summer time first, then winter time.
            _ => {
                let summer = date.days() * 86400 + minute * 60 + s - 2 * 3600;
                if after.is_some_and(|t| t >= summer) {
                    1
                } else {
                    2
                }
            }
        }
    };
    Some(format!("{date}T{h:02}:{mi:02}:{s:02}+{offset:02}:00"))
}

/// A row's value: `None` when the export left it empty.
fn value_of(field: &dyn Fn(usize) -> String, columns: &Columns) -> Result<Option<f64>, String> {
    let number = |i: usize| -> Result<Option<f64>, String> {
        let raw = field(i);
        if raw.is_empty() {
            return Ok(None);
        }
        parse_decimal(&raw)
            .filter(|v| *v >= 0.0)
            .map(Some)
            .ok_or_else(|| format!("value `{raw}` is not a non-negative number"))
    };
    let sum = |registers: &[usize]| -> Result<Option<f64>, String> {
        let mut total = None;
        for &i in registers {
            if let Some(v) = number(i)? {
                total = Some(total.unwrap_or(0.0) + v);
            }
        }
        Ok(total)
    };
    match columns {
        Columns::Value => number(1),
        Columns::Measures(m) => number(m.value),
        Columns::Registers { total, distributor, supplier } => {
            if let Some(t) = total.map(number).transpose()?.flatten() {
                return Ok(Some(t));
            }
            match sum(distributor)? {
                Some(d) => Ok(Some(d)),
                None => sum(supplier),
            }
        }
    }
}

/// The component: the WIT glue that hands a file to the parser above and
/// stores what it gives. Natively (unit tests, fuzzing) the crate is the
/// parser alone.
#[cfg(target_arch = "wasm32")]
mod component {
    use super::*;
    use domicile_sdk::{data, log};

    const READING: &str = "io.domicile.energy.reading";

    struct EnergyImporter;

    impl Guest for EnergyImporter {
        fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
            let put = |reading: Reading| data::put(READING, None, &reading).map(drop).map_err(|e| e.to_string());
            let mut leave_out = |location: &str, reason: &str| {
                domicile_sdk::import::leave_out(crate::domicile::app::import_report::skip, location, reason)
            };
            let parsed = parse(&bytes, put, &mut leave_out).map_err(|e| format!("{file_name}: {e}"))?;
            if parsed.missing_values > 0 {
                log::info(&format!("{file_name}: {} rows without a value were skipped", parsed.missing_values));
            }
            if parsed.missing_rows > 0 {
                log::info(&format!("{file_name}: {} rows of the load curve's grid are missing", parsed.missing_rows));
            }
            let summary = serde_json::json!({
                "readings": parsed.readings,
                "meters": parsed.meters,
                "rows": parsed.rows,
                "first": parsed.first,
                "last": parsed.last,
                "missing_values": parsed.missing_values,
                "missing_rows": parsed.missing_rows,
                "repeated_rows": parsed.repeated_rows,
                "calendar_periods": parsed.calendar_periods,
            });
            Ok(summary.to_string())
        }
    }

    export!(EnergyImporter);
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur physique;Grandeur metier;Etape metier;Unite";

    fn parse_all(bytes: &[u8]) -> Result<(Vec<Reading>, Parsed), String> {
        let mut readings = Vec::new();
        let parsed = parse(
            bytes,
            |r| {
                readings.push(r);
                Ok(())
            },
            &mut domicile_sdk::import::refuse,
        )?;
        Ok((readings, parsed))
    }

    #[test]
    fn reads_a_load_curve_with_bom_crlf_commas_gaps_and_repeats() {
        let text = format!(
            "\u{feff}{HEADER}\r\n25946599093143;Courbe de charge;01/03/2026;02/03/2026;Energie active;Consommation;Comptage Brut;W\r\nHorodate;Valeur\r\n2026-03-01T00:30:00+01:00;412,5\r\n2026-03-01T01:00:00+01:00;\r\n2026-03-01T01:00:00+01:00;300\r\n2026-03-01T01:00:00+01:00;300\r\n"
        );
        let (readings, parsed) = parse_all(text.as_bytes()).unwrap();
        assert_eq!(readings.len(), 2, "one reading per time");
        assert_eq!(readings[0].value, 412.5);
        assert_eq!((readings[1].value, readings[1].interval_min), (300.0, Some(30)));
        assert_eq!(readings[0].kind, "load-curve");
        assert_eq!(readings[0].date, "2026-03-01");
        assert_eq!((parsed.readings, parsed.missing_values, parsed.repeated_rows), (2, 1, 1));
    }

    #[test]
    fn errors_name_the_line() {
        let meta = "25946599093143;Courbe de charge;01/03/2026;02/03/2026;Energie active;Consommation;Comptage Brut;W";
        let bad_value = format!(
            "{HEADER}\n{meta}\nHorodate;Valeur\n2026-03-01T00:30:00+01:00;12\n2026-03-01T01:00:00+01:00;douze\n"
        );
        assert!(parse_all(bad_value.as_bytes()).unwrap_err().starts_with("line 5: value `douze`"));
        let bad_time = format!("{HEADER}\n{meta}\nHorodate;Valeur\n01/03/2026 00:30;12\n");
        assert!(parse_all(bad_time.as_bytes()).unwrap_err().starts_with("line 4:"));
        let bad_unit = format!("{HEADER}\n{}\nHorodate;Valeur\n", meta.replace(";W", ";kWh"));
        assert!(parse_all(bad_unit.as_bytes()).unwrap_err().starts_with("line 2: unit"));
        assert!(parse_all(b"date,value\n2026-03-01,3\n").unwrap_err().starts_with("line 1:"));
        assert!(parse_all(b"").unwrap_err().contains("no Enedis section"));
        let bad_step = format!("{HEADER};Pas en minutes\n{meta};45\nHorodate;Valeur\n");
        assert!(parse_all(bad_step.as_bytes()).unwrap_err().starts_with("line 2: `Pas en minutes` is `45`"));
        let off_step = format!(
            "{HEADER};Pas en minutes\n{meta};30\nHorodate;Valeur\n2026-03-01T00:30:00+01:00;1\n2026-03-01T00:45:00+01:00;1\n"
        );
        assert!(parse_all(off_step.as_bytes()).unwrap_err().starts_with("line 5: this reading comes 15 minutes"));
        let lone = format!("{HEADER}\n{meta}\nHorodate;Valeur\n2026-03-01T00:30:00+01:00;1\n");
        assert!(parse_all(lone.as_bytes()).unwrap_err().starts_with("line 4: the interval"));
        let measures = "Date de la mesure;Heure de la mesure;Valeur;Statut de la mesure;PRM\n";
        assert!(parse_all(measures.as_bytes()).unwrap_err().contains("per-measure layout"));
    }

    #[test]
    fn broken_rows_can_be_left_out_and_are_listed() {
        let text = format!(
            "{HEADER}\n25946599093143;Courbe de charge;01/03/2026;02/03/2026;Energie active;Consommation;Comptage Brut;W\nHorodate;Valeur\n\
             2026-03-01T00:30:00+01:00;12\n2026-03-01T01:00:00+01:00;douze\n01/03/2026 01:30;12\n2026-03-01T01:30:00+01:00;14\n"
        );
        let (mut readings, mut left_out) = (Vec::new(), Vec::new());
        let parsed = parse(
            text.as_bytes(),
            |r| {
                readings.push(r);
                Ok(())
            },
            &mut |location, reason| {
                left_out.push(format!("{location}: {reason}"));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(parsed.readings, 2);
        assert_eq!(
            left_out,
            [
                "line 5: value `douze` is not a non-negative number",
                "line 6: `01/03/2026 01:30` is not a time such as 2026-03-01T00:30:00+01:00"
            ]
        );
        // The reading after the gap takes the step the times say (30 minutes, over the missing row).
        assert_eq!(readings[1].interval_min, Some(30));
    }

    #[test]
    fn per_measure_times_are_placed_in_french_time_across_clock_changes() {
        assert_eq!(paris_time("01/03/2026", "00:30:00", None).unwrap(), "2026-03-01T00:30:00+01:00");
        assert_eq!(paris_time("2026-07-14", "12:00", None).unwrap(), "2026-07-14T12:00:00+02:00");
        assert_eq!(paris_time("29/03/2026", "01:30:00", None).unwrap(), "2026-03-29T01:30:00+01:00");
        assert!(paris_time("29/03/2026", "02:30:00", None).is_none(), "that hour does not exist");
        assert_eq!(paris_time("29/03/2026", "03:00:00", None).unwrap(), "2026-03-29T03:00:00+02:00");
        let first = paris_time("25/10/2026", "02:30:00", None).unwrap();
        assert_eq!(first, "2026-10-25T02:30:00+02:00");
        let again = paris_time("25/10/2026", "02:30:00", parse_rfc3339(&first)).unwrap();
        assert_eq!(again, "2026-10-25T02:30:00+01:00", "the repeated hour, the second time");
        assert!(paris_time("25/10/2026", "24:00", None).is_none());
    }

    /// A curve of `rows` readings of 600 W every `step` minutes from midnight.
    fn curve(step: i64, rows: i64, pas: &str) -> String {
        let mut text = format!(
            "{HEADER};Pas en minutes\n25946599093143;Courbe de charge;01/03/2026;02/03/2026;Energie active;Consommation;Comptage Brut;W;{pas}\nHorodate;Valeur\n"
        );
        for i in 1..=rows {
            let m = i * step;
            text += &format!("2026-03-01T{:02}:{:02}:00+01:00;600\n", m / 60, m % 60);
        }
        text
    }

    #[test]
    fn each_reading_keeps_its_interval_declared_or_read_from_the_times() {
        for step in [10, 15, 30, 60] {
            for pas in [String::new(), step.to_string()] {
                let (readings, parsed) = parse_all(curve(step, 1440 / step - 1, &pas).as_bytes()).unwrap();
                assert_eq!(parsed.readings as i64, 1440 / step - 1);
                assert!(readings.iter().all(|r| r.interval_min == Some(step)), "step {step}, pas `{pas}`");
            }
        }
    }

    #[test]
    fn a_step_that_changes_mid_file_and_holes_in_the_curve() {
        // 60-minute readings until 02:00, then 10-minute ones; a missing half-hour later.
        let times = [
            ("01:00", 60),
            ("02:00", 60),
            ("02:10", 10),
            ("02:20", 10),
            ("02:30", 10),
            ("03:00", 10), // a hole: 02:40 and 02:50 are missing
            ("03:10", 10),
            ("03:40", 30), // the step changes at a hole
            ("04:10", 30),
        ];
        let mut text = format!(
            "{HEADER}\n25946599093143;Courbe de charge;01/03/2026;02/03/2026;Energie active;Consommation;Comptage Brut;W\nHorodate;Valeur\n"
        );
        for (t, _) in times {
            text += &format!("2026-03-01T{t}:00+01:00;100\n");
        }
        let (readings, _) = parse_all(text.as_bytes()).unwrap();
        let steps: Vec<i64> = readings.iter().map(|r| r.interval_min.unwrap()).collect();
        assert_eq!(steps, times.map(|(_, s)| s).to_vec());
    }

    #[test]
    fn step_of_tells_a_new_step_from_a_hole() {
        assert_eq!(step_of(None, None, Some(15)), Some(15), "first row");
        assert_eq!(step_of(Some(30), Some(30), Some(30)), Some(30));
        assert_eq!(step_of(Some(60), Some(30), Some(30)), Some(30), "one missing row");
        assert_eq!(step_of(Some(10), Some(60), Some(10)), Some(10), "a new step");
        assert_eq!(step_of(Some(90), Some(30), None), Some(30), "a hole at the end");
        assert_eq!(step_of(None, None, None), None, "a lone reading");
        assert_eq!(step_of(None, None, Some(7)), None, "7 minutes is no meter's step");
    }

    #[test]
    fn reads_a_multi_register_index_max_power_and_empty_sections() {
        let text = format!(
            "{HEADER}\n25946599093143;Index;01/09/2019;03/09/2019;Energie active;Consommation;Comptage Brut;Wh\n\n\
             Horodate;Type de releve;EAS F1;EAS F2;EAS F3;EAS F4;EAS F5;EAS F6;EAS F7;EAS F8;EAS F9;EAS F10;EAS D1;EAS D2;EAS D3;EAS D4;EAS T\n\
             2019-09-01T00:00:00+02:00;Arrêté quotidien;1000;500;;;;;;;;;900;600;;;1500\n\
             2019-09-02T00:00:00+02:00;Arrêté quotidien;10;5;;;;;;;;;910;610;;;\n\
             2019-09-03T00:00:00+02:00;Arrêté quotidien;20;;;;;;;;;;;;;;\n\
             2019-09-04T00:00:00+02:00;Arrêté quotidien;;;;;;;;;;;;;;;\n\
             {HEADER}\n25946599093143;Puissance maximale quotidienne;01/09/2019;03/09/2019;Puissance maximale;Consommation;Comptage Brut;VA\n\
             Horodate;Valeur\n2019-09-01T00:00:00+02:00;5400\n\
             {HEADER}\n25946599093143;Courbe de charge;01/09/2019;03/09/2019;Energie active;Consommation;Comptage Brut;W\nHorodate;Valeur\n"
        );
        let (readings, parsed) = parse_all(text.as_bytes()).unwrap();
        let values: Vec<(&str, f64)> = readings.iter().map(|r| (r.kind, r.value)).collect();
        // The total, else the distributor's registers, else the supplier's.
        assert_eq!(
            values,
            [("daily-index", 1500.0), ("daily-index", 1520.0), ("daily-index", 20.0), ("max-power", 5400.0)]
        );
        assert_eq!((parsed.readings, parsed.missing_values), (4, 1));
        assert!(readings.iter().all(|r| r.interval_min.is_none()));
        // Only a header: a valid export of a period without data.
        let (readings, _) = parse_all(format!("{HEADER}\n").as_bytes()).unwrap();
        assert!(readings.is_empty());
    }

    /// The layout of real daily-index exports: the index, the supplier's
    /// tariff calendar after it, then the daily maximum power labelled `W`.
    #[test]
    fn reads_the_supplier_calendar_after_an_index_and_max_power_in_w() {
        let registers = "Horodate;Type de releve;EAS F1;EAS F2;EAS F3;EAS F4;EAS F5;EAS F6;EAS F7;EAS F8;EAS F9;EAS F10;EAS D1;EAS D2;EAS D3;EAS D4;EAS T";
        let text = format!(
            "{HEADER}\n25946599093143;Index;12/04/2021;14/04/2021;Energie active;Consommation;Comptage Brut;Wh\n{registers}\n\
             2021-04-12T00:00:00+02:00;Arrêté quotidien;100;200;;;;;;;;;150;150;;;300\n\
             2021-04-13T00:00:00+02:00;Arrêté quotidien;110;210;;;;;;;;;160;160;;;320\n\n\
             Periode;Identifiant calendrier fournisseur;Libelle calendrier fournisseur;Identifiant classe temporelle 1;Libelle classe temporelle 1;Cadran classe temporelle 1;\n\
             Du 2021-04-12T00:00:00+02:00 au 2021-04-13T00:00:00+02:00;FC011827;HC Semaine et HC Week-End;HCWE;Heures Creuses Week-end;EAS F1;\n\
             Du 2021-04-13T00:00:00+02:00 au;INCONNU;INCONNU;;;EAS F1;\n\
             {HEADER}\n25946599093143;Puissance maximale quotidienne;12/04/2021;14/04/2021;Puissance maximale atteinte;Consommation;Comptage Brut;W\n\
             Horodate;Valeur\n2021-04-12T19:17:24+02:00;3695\n2021-04-13T08:15:08+02:00;3608\n"
        );
        let (readings, parsed) = parse_all(text.as_bytes()).unwrap();
        let kinds: Vec<(&str, f64)> = readings.iter().map(|r| (r.kind, r.value)).collect();
        assert_eq!(
            kinds,
            [("daily-index", 300.0), ("daily-index", 320.0), ("max-power", 3695.0), ("max-power", 3608.0)]
        );
        assert_eq!((parsed.calendar_periods, parsed.rows), (2, 4));
        assert_eq!(parsed.first.as_deref(), Some("2021-04-12T00:00:00+02:00"));
        assert_eq!(parsed.last.as_deref(), Some("2021-04-13T08:15:08+02:00"));
        let stray = text.replace("Du 2021-04-13T00:00:00+02:00 au;", "2021-04-13;");
        assert!(parse_all(stray.as_bytes())
            .unwrap_err()
            .starts_with("line 9: expected a period of the supplier's calendar"));
    }

    /// Rows absent from a load curve's grid are counted, as empty values are.
    #[test]
    fn rows_missing_from_the_grid_are_counted() {
        let full = curve(30, 10, "30");
        let holed: String = full
            .lines()
            .filter(|l| !l.contains("T02:00:") && !l.contains("T02:30:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let (_, parsed) = parse_all(holed.as_bytes()).unwrap();
        assert_eq!((parsed.readings, parsed.rows, parsed.missing_rows, parsed.missing_values), (8, 8, 2, 0));
        assert_eq!(
            (parsed.first.as_deref(), parsed.last.as_deref()),
            (Some("2026-03-01T00:30:00+01:00"), Some("2026-03-01T05:00:00+01:00"))
        );
        let (_, undeclared) = parse_all(
            curve(30, 10, "")
                .lines()
                .filter(|l| !l.contains("T02:00:"))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(undeclared.missing_rows, 1, "the step read from the times");
        assert_eq!(parse_all(full.as_bytes()).unwrap().1.missing_rows, 0);
    }
}
