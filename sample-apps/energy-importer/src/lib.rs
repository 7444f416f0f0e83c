//! Energy importer: turns the CSV exports of a Linky meter, as Enedis
//! gives them to its customers ("Mes données de consommation"), into
//! `io.domicile.energy.reading` documents.
//!
//! An export is `;`-separated, in one or more blocks:
//!
//! ```text
//! Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur physique;Grandeur metier;Etape metier;Unite
//! 25946599093143;Courbe de charge;01/03/2026;15/03/2026;Energie active;Consommation;Comptage Brut;W
//! Horodate;Valeur
//! 2026-03-01T00:30:00+01:00;412
//! ```
//!
//! `Courbe de charge` rows are the average power (W) of the 30 minutes
//! ending at the time; `Index` rows are the meter's cumulative index (Wh)
//! at the time. Real files carry a BOM or not, CRLF line ends, comma
//! decimals, empty values (skipped and counted) and repeated rows (one
//! reading: the id is meter, kind and time, so importing a file again
//! changes nothing). Anything else malformed is an error naming the line,
//! and nothing is written.

use std::collections::BTreeSet;

use domicile_sdk::time::{local_date_minute, parse_decimal};
use domicile_sdk::{data, log};
use serde::Serialize;

domicile_sdk::generate!("importer", "../../wit");

const READING: &str = "io.domicile.energy.reading";

#[derive(Debug, Serialize, PartialEq)]
pub struct Reading {
    pub meter: String,
    pub at: String,
    pub date: String,
    pub kind: &'static str,
    pub value: f64,
    pub unit: String,
}

/// What a file held, besides its readings (which go to the sink as they are read).
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Parsed {
    pub readings: u64,
    pub meters: BTreeSet<String>,
    pub missing_values: u64,
    pub repeated_rows: u64,
}

struct Block {
    meter: String,
    kind: &'static str,
    unit: String,
}

enum Expect {
    MetaHeader,
    MetaValues,
    RowsHeader(Block),
    Rows(Block),
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase().replace(['é', 'è'], "e")
}

/// Parses a whole export, handing each reading to `sink` as it is read (an
/// export may hold a million rows: they are never all in memory at once).
/// The error names the line.
pub fn parse(bytes: &[u8], mut sink: impl FnMut(Reading) -> Result<(), String>) -> Result<Parsed, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').has_headers(false).flexible(true).from_reader(bytes);
    let mut parsed = Parsed::default();
    // Hashes of (meter, kind, time): enough to count repeated rows in little memory.
    let mut seen = std::collections::HashSet::new();
    let mut expect = Expect::MetaHeader;
    for record in reader.byte_records() {
        let record = record.map_err(|e| format!("unreadable CSV: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).map(|f| String::from_utf8_lossy(f).trim().to_owned()).unwrap_or_default();
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        // A new block may start anywhere.
        if fold(&field(0)).starts_with("identifiant prm") {
            expect = Expect::MetaValues;
            continue;
        }
        expect = match expect {
            Expect::MetaHeader => {
                return Err(format!("line {line}: expected the Enedis header `Identifiant PRM;Type de donnees;...`"))
            }
            Expect::MetaValues => {
                let meter = field(0);
                if meter.len() != 14 || !meter.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("line {line}: `{meter}` is not a meter id (PRM: 14 digits)"));
                }
                let data_type = fold(&field(1));
                let unit = field(7);
                let kind = if data_type.contains("courbe") {
                    "load-curve"
                } else if data_type.contains("index") {
                    "daily-index"
                } else {
                    return Err(format!(
                        "line {line}: data type `{}` is not supported: expected `Courbe de charge` or `Index`",
                        field(1)
                    ));
                };
                let unit_ok = match kind {
                    "load-curve" => unit == "W",
                    _ => unit == "Wh" || unit == "kWh",
                };
                if !unit_ok {
                    return Err(format!("line {line}: unit `{unit}` does not fit `{}`", field(1)));
                }
                Expect::RowsHeader(Block { meter, kind, unit })
            }
            Expect::RowsHeader(block) => {
                if fold(&field(0)) != "horodate" {
                    return Err(format!("line {line}: expected the column header `Horodate;Valeur`"));
                }
                Expect::Rows(block)
            }
            Expect::Rows(block) => {
                let at = field(0);
                let Some((date, _)) = local_date_minute(&at) else {
                    return Err(format!("line {line}: `{at}` is not a time such as 2026-03-01T00:30:00+01:00"));
                };
                let raw = field(1);
                if raw.is_empty() {
                    parsed.missing_values += 1;
                    Expect::Rows(block)
                } else {
                    let value = parse_decimal(&raw)
                        .filter(|v| *v >= 0.0)
                        .ok_or_else(|| format!("line {line}: value `{raw}` is not a non-negative number"))?;
                    let key = {
                        use std::hash::{Hash, Hasher};
                        let mut h = std::collections::hash_map::DefaultHasher::new();
                        (&block.meter, block.kind, &at).hash(&mut h);
                        h.finish()
                    };
                    if seen.insert(key) {
                        parsed.readings += 1;
                    } else {
                        parsed.repeated_rows += 1;
                    }
                    if !parsed.meters.contains(&block.meter) {
                        parsed.meters.insert(block.meter.clone());
                    }
                    sink(Reading {
                        meter: block.meter.clone(),
                        at,
                        date: date.to_string(),
                        kind: block.kind,
                        value,
                        unit: block.unit.clone(),
                    })
                    .map_err(|e| format!("line {line}: {e}"))?;
                    Expect::Rows(block)
                }
            }
        };
    }
    if parsed.readings == 0 {
        return Err("no readings found: is this an Enedis consumption export (CSV)?".into());
    }
    Ok(parsed)
}

struct EnergyImporter;

impl Guest for EnergyImporter {
    fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
        let put = |reading: Reading| data::put(READING, None, &reading).map(drop).map_err(|e| e.to_string());
        let parsed = parse(&bytes, put).map_err(|e| format!("{file_name}: {e}"))?;
        if parsed.missing_values > 0 {
            log::info(&format!("{file_name}: {} rows without a value were skipped", parsed.missing_values));
        }
        let summary = serde_json::json!({
            "readings": parsed.readings,
            "meters": parsed.meters,
            "missing_values": parsed.missing_values,
            "repeated_rows": parsed.repeated_rows,
        });
        Ok(summary.to_string())
    }
}

export!(EnergyImporter);

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur physique;Grandeur metier;Etape metier;Unite";

    fn parse_all(bytes: &[u8]) -> Result<(Vec<Reading>, Parsed), String> {
        let mut readings = Vec::new();
        let parsed = parse(bytes, |r| {
            readings.push(r);
            Ok(())
        })?;
        Ok((readings, parsed))
    }

    #[test]
    fn reads_a_load_curve_with_bom_crlf_commas_gaps_and_repeats() {
        let text = format!(
            "\u{feff}{HEADER}\r\n25946599093143;Courbe de charge;01/03/2026;02/03/2026;Energie active;Consommation;Comptage Brut;W\r\nHorodate;Valeur\r\n2026-03-01T00:30:00+01:00;412,5\r\n2026-03-01T01:00:00+01:00;\r\n2026-03-01T01:00:00+01:00;300\r\n2026-03-01T01:00:00+01:00;300\r\n"
        );
        let (readings, parsed) = parse_all(text.as_bytes()).unwrap();
        assert_eq!(readings.len(), 3);
        assert_eq!(readings[0].value, 412.5);
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
        assert!(parse_all(b"").unwrap_err().contains("no readings"));
    }
}
