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
//! the header, else the file's name. Errors name the line or the element,
//! and nothing is written.

mod csv_statement;
mod ofx;

use domicile_sdk::data;
use serde::Serialize;

domicile_sdk::generate!("importer", "../../wit");

const OPERATION: &str = "io.domicile.bank.operation";

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

/// Text of a statement: UTF-8 when it is, else Windows-1252/Latin-1 (what
/// French banks' OFX files declare), byte by byte.
pub fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| if b == 0x80 { '€' } else { char::from(b) }).collect(),
    }
}

pub fn parse(file_name: &str, bytes: &[u8]) -> Result<(Vec<Operation>, &'static str), String> {
    let text = decode_text(bytes);
    let head = text.trim_start();
    if head.starts_with("OFXHEADER") || head.starts_with("<?xml") || head.to_ascii_uppercase().contains("<OFX>") {
        Ok((ofx::parse(&text)?, "ofx"))
    } else {
        Ok((csv_statement::parse(file_name, &text)?, "csv"))
    }
}

struct BankImporter;

impl Guest for BankImporter {
    fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
        let (operations, format) = parse(&file_name, &bytes).map_err(|e| format!("{file_name}: {e}"))?;
        let mut ids = std::collections::BTreeSet::new();
        let mut accounts = std::collections::BTreeSet::new();
        for op in &operations {
            data::put(OPERATION, None, op).map_err(|e| e.to_string())?;
            ids.insert((op.account.clone(), op.fitid.clone()));
            accounts.insert(op.account.clone());
        }
        let summary = serde_json::json!({
            "format": format,
            "operations": ids.len(),
            "repeated": operations.len() - ids.len(),
            "accounts": accounts,
        });
        Ok(summary.to_string())
    }
}

export!(BankImporter);
