//! Bank importer: turns bank statements into `io.domicile.bank.operation`
//! documents. Two formats:
//!
//! - OFX, the format of "download to my accounting software", both the old
//!   SGML flavour (OFX 1.x: tags without closing tags, a `key:value`
//!   header, often Windows-1252) and the XML one (OFX 2.x). Each
//!   `<STMTTRN>` is an operation; its `FITID` is the bank's id for it.
//! - The CSV exports banks offer: `;` (or `,`) separated, possibly after a
//!   few lines about the account, with a header naming the columns: a date
//!   (`Date`, `Date opération`), a label (`Libellé`, `Label`), and either an
//!   amount (`Montant`, `Amount`) or a `Débit` and a `Crédit` column. Dates
//!   are `02/03/2026` or `2026-03-02`, decimals use a comma or a point.
//!   CSV has no operation id: one is derived from the date, amount, label
//!   and rank among identical rows, so importing the file again changes
//!   nothing.
//!
//! The account is OFX's `ACCTID`, or for CSV an account number found above
//! the header, else the file's name. Errors name the line (and the element),
//! and nothing is written. An OFX file cut off is refused; a CSV has no end
//! marker, so the summary gives the first and last date it covers.

mod csv_statement;
mod ofx;

use std::collections::HashMap;

use domicile_sdk::import::OnBroken;
use domicile_sdk::time::Date;
use serde::Serialize;

domicile_sdk::generate!("importer", "../../wit");

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Operation {
    pub account: String,
    pub fitid: String,
    pub date: String,
    pub amount: f64,
    pub currency: String,
    pub label: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// An account's balance as the bank states it on a day (OFX `LEDGERBAL`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Balance {
    pub account: String,
    pub date: String,
    pub amount: f64,
    pub currency: String,
}

/// Ids for operations the bank gives none for (CSV rows, OFX operations
/// with an empty `FITID`): the date, the amount in cents, a digest of the
/// label, and the rank among identical operations of the account, so that
/// two identical purchases on one day are two operations and importing the
/// file again gives the same ids.
#[derive(Default)]
pub struct DerivedIds {
    seen: HashMap<(String, Date, i64, String), u32>,
}

impl DerivedIds {
    pub fn next(&mut self, prefix: &str, account: &str, date: Date, amount: f64, label: &str) -> String {
        let cents = (amount * 100.0).round() as i64;
        let rank = self.seen.entry((account.to_owned(), date, cents, label.to_owned())).or_default();
        *rank += 1;
        format!("{prefix}-{date}-{cents}-{:08x}-{rank}", fnv1a(label) as u32)
    }
}

/// FNV-1a: a stable short digest of a label for a derived operation id.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

/// An operation's label from OFX's `NAME` and `MEMO`: banks often repeat
/// the one in the other (or cut `NAME` at 32 characters and give the whole
/// text in `MEMO`), so the label keeps one when one starts with the other,
/// and both only when they differ. Runs of spaces become one.
pub fn label_of(name: Option<&str>, memo: Option<&str>) -> String {
    let (name, memo) = (one_spaced(name.unwrap_or_default()), one_spaced(memo.unwrap_or_default()));
    let (n, m) = (name.to_uppercase(), memo.to_uppercase());
    if n.starts_with(&m) {
        name
    } else if m.starts_with(&n) {
        memo
    } else {
        format!("{name} {memo}")
    }
}

/// A label with its runs of spaces and line breaks made one space.
pub fn one_spaced(label: &str) -> String {
    label.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a statement gives.
#[derive(Debug, Default, PartialEq)]
pub struct Statement {
    pub format: &'static str,
    pub operations: Vec<Operation>,
    pub balances: Vec<Balance>,
}

/// Text of a statement: UTF-8 when it is, else Windows-1252/Latin-1 (what
/// French banks' OFX files declare), byte by byte.
pub fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| if b == 0x80 { '€' } else { char::from(b) }).collect(),
    }
}

/// Reads a statement. A broken operation (a CSV row, an OFX `STMTTRN`) or
/// balance goes to `on_broken` with where it is and what is wrong: it fails
/// the file (`domicile_sdk::import::refuse`) or is left out. Anything else
/// wrong fails the file.
pub fn parse(file_name: &str, bytes: &[u8], on_broken: &mut OnBroken<'_>) -> Result<Statement, String> {
    let text = decode_text(bytes);
    let head = text.trim_start();
    if head.starts_with("OFXHEADER") || head.starts_with("<?xml") || head.to_ascii_uppercase().contains("<OFX>") {
        let parsed = ofx::parse(&text, on_broken)?;
        Ok(Statement { format: "ofx", operations: parsed.operations, balances: parsed.balances })
    } else {
        let operations = csv_statement::parse(file_name, &text, on_broken)?;
        Ok(Statement { format: "csv", operations, balances: Vec::new() })
    }
}

/// The component: the WIT glue that hands a file to the parser above and
/// stores what it gives. Natively (unit tests, fuzzing) the crate is the
/// parser alone.
#[cfg(target_arch = "wasm32")]
mod component {
    use super::*;
    use domicile_sdk::data;

    const OPERATION: &str = "io.domicile.bank.operation";
    const BALANCE: &str = "io.domicile.bank.balance";

    struct BankImporter;

    impl Guest for BankImporter {
        fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
            let mut leave_out = |location: &str, reason: &str| {
                domicile_sdk::import::leave_out(crate::domicile::app::import_report::skip, location, reason)
            };
            let statement = parse(&file_name, &bytes, &mut leave_out).map_err(|e| format!("{file_name}: {e}"))?;
            let mut ids = std::collections::BTreeSet::new();
            let mut accounts = std::collections::BTreeSet::new();
            for op in &statement.operations {
                data::put(OPERATION, None, op).map_err(|e| e.to_string())?;
                ids.insert((op.account.clone(), op.fitid.clone()));
                accounts.insert(op.account.clone());
            }
            for balance in &statement.balances {
                data::put(BALANCE, None, balance).map_err(|e| e.to_string())?;
                accounts.insert(balance.account.clone());
            }
            // A CSV has no end marker: the dates it covers make a cut visible.
            let dates = statement.operations.iter().map(|op| op.date.as_str());
            let summary = serde_json::json!({
                "format": statement.format,
                "first": dates.clone().min(),
                "last": dates.max(),
                "operations": ids.len(),
                "repeated": statement.operations.len() - ids.len(),
                "balances": statement.balances.len(),
                "accounts": accounts,
            });
            Ok(summary.to_string())
        }
    }

    export!(BankImporter);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_says_a_thing_once() {
        let label = |n, m| label_of(n, m);
        assert_eq!(label(Some("CB TOTALENERGIES 12/09"), Some("CB TOTALENERGIES 12/09")), "CB TOTALENERGIES 12/09");
        assert_eq!(label(Some("CB  TOTALENERGIES 12/09"), Some("cb totalenergies 12/09 ")), "CB TOTALENERGIES 12/09");
        assert_eq!(
            label(Some("DIVIDEND EARNED FOR PERIOD OF 03"), Some("DIVIDEND EARNED FOR PERIOD OF 03/01/2011")),
            "DIVIDEND EARNED FOR PERIOD OF 03/01/2011",
            "a NAME cut at 32 characters"
        );
        assert_eq!(label(Some("SALAIRE"), Some("MARS")), "SALAIRE MARS");
        assert_eq!(label(None, Some("CBA:Transfer")), "CBA:Transfer");
        assert_eq!(label(Some("BOULANGERIE"), None), "BOULANGERIE");
        assert_eq!(label(None, None), "");
    }
}
