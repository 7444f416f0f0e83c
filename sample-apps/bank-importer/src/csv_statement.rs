//! The CSV exports of banks: find the header, map its columns, read rows.

use domicile_sdk::import::OnBroken;
use domicile_sdk::time::{parse_decimal, Date};

use crate::{one_spaced, DerivedIds, Operation};

fn fold(s: &str) -> String {
    s.trim()
        .trim_matches('"')
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'é' | 'è' | 'ê' => 'e',
            'à' | 'â' => 'a',
            'ô' => 'o',
            'û' | 'ù' => 'u',
            'ç' => 'c',
            c => c,
        })
        .collect()
}

struct Columns {
    date: usize,
    label: usize,
    amount: Option<usize>,
    debit: Option<usize>,
    credit: Option<usize>,
    currency: Option<usize>,
    /// A fee charged apart from the amount (Revolut's `Fee`): it is money out too.
    fee: Option<usize>,
    /// The operation's state (Revolut's `State`): declined or reverted ones never happened.
    state: Option<usize>,
}

/// The first column whose folded name is one of `exact` (in that order of
/// preference), else the first that starts with one of `prefixes` and
/// contains none of `unless`.
fn find(names: &[String], exact: &[&str], prefixes: &[&str], unless: &[&str]) -> Option<usize> {
    exact.iter().find_map(|e| names.iter().position(|n| n == e)).or_else(|| {
        names.iter().position(|n| prefixes.iter().any(|p| n.starts_with(p)) && !unless.iter().any(|u| n.contains(u)))
    })
}

/// Maps a header's columns, as banks name them (`Date opération`, `Date de
/// l'opération`, `dateOp`, `Started Date`; `Libellé`, `Libellé opération`,
/// `Payee`; `Montant`, `Montant(EUROS)`, `Amount (EUR)`; `Débit euros` and
/// `Crédit euros`). A value date is never the operation's date.
fn columns(header: &[String]) -> Option<Columns> {
    let names: Vec<String> = header.iter().map(|h| fold(h)).collect();
    let value_date = ["valeur", "value", "dateval"];
    let columns = Columns {
        date: find(
            &names,
            &[
                "date",
                "date operation",
                "date de l'operation",
                "date d'operation",
                "date comptable",
                "dateop",
                "booking date",
                "transaction date",
                "completed date",
                "started date",
            ],
            &["date"],
            &value_date,
        )?,
        label: find(
            &names,
            &["libelle operation", "libelle", "label", "description", "payee", "beneficiaire", "libelle court"],
            &["libelle"],
            &[],
        )?,
        amount: find(&names, &["montant", "amount"], &["montant", "amount"], &["foreign", "devise"]),
        debit: find(&names, &["debit"], &["debit"], &[]),
        credit: find(&names, &["credit"], &["credit"], &[]),
        currency: find(&names, &["devise", "currency"], &[], &[]),
        fee: find(&names, &["fee", "frais"], &[], &[]),
        state: find(&names, &["state", "statut"], &[], &[]),
    };
    (columns.amount.is_some() || (columns.debit.is_some() && columns.credit.is_some())).then_some(columns)
}

/// A date as bank exports write it: `02/03/2026`, `02/03/26`, `02.03.2026`,
/// `2026-03-02`, possibly followed by a time (`2026-03-02 10:15:32`).
fn date_of(raw: &str) -> Option<Date> {
    let day = raw.split([' ', 'T']).next().unwrap_or(raw).replace('.', "/");
    if let Some(date) = Date::parse(&day).or_else(|| Date::parse_dmy(&day)) {
        return Some(date);
    }
    // Two-digit years are this century's.
    let mut parts = day.split('/');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && y.len() == 2)
        .then(|| Date::new(2000 + y.parse::<i64>().ok()?, m.parse().ok()?, d.parse().ok()?))?
}

/// A row's date and amount (debit, credit and fee taken into account); the error says what is wrong with the row.
fn date_and_amount<'a>(cols: &Columns, cell: &dyn Fn(Option<usize>) -> &'a str) -> Result<(Date, f64), String> {
    let raw_date = cell(Some(cols.date));
    let date = date_of(raw_date).ok_or_else(|| format!("`{raw_date}` is not a date (02/03/2026 or 2026-03-02)"))?;
    let amount = match cols.amount {
        Some(i) => parse_decimal(cell(Some(i))).ok_or_else(|| format!("amount `{}` is not a number", cell(Some(i))))?,
        None => {
            let (debit, credit) = (cell(cols.debit), cell(cols.credit));
            let value = |s: &str, what: &str| -> Result<f64, String> {
                if s.is_empty() {
                    return Ok(0.0);
                }
                parse_decimal(s).ok_or_else(|| format!("{what} `{s}` is not a number"))
            };
            let (d, c) = (value(debit, "debit")?, value(credit, "credit")?);
            if debit.is_empty() && credit.is_empty() {
                return Err("neither a debit nor a credit".into());
            }
            c - d.abs()
        }
    };
    match cols.fee.map(|i| cell(Some(i))).filter(|f| !f.is_empty()) {
        Some(fee) => {
            Ok((date, amount - parse_decimal(fee).ok_or_else(|| format!("fee `{fee}` is not a number"))?.abs()))
        }
        None => Ok((date, amount)),
    }
}

/// Reads a CSV statement; a broken row goes to `on_broken` (see the crate documentation).
pub fn parse(file_name: &str, text: &str, on_broken: &mut OnBroken<'_>) -> Result<Vec<Operation>, String> {
    let delimiter = if text.lines().take(12).any(|l| l.contains(';')) { b';' } else { b',' };
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut account = None;
    let mut layout: Option<Columns> = None;
    let mut derived = DerivedIds::default();
    let mut operations = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("unreadable CSV: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        let fields: Vec<String> = record.iter().map(|f| f.trim().to_owned()).collect();
        if fields.iter().all(String::is_empty) {
            continue;
        }
        let Some(cols) = &layout else {
            if let Some(found) = columns(&fields) {
                layout = Some(found);
            } else if line > 12 {
                return Err(
                    "no header with a date, a label and an amount (or debit and credit) column in the first 12 lines"
                        .into(),
                );
            } else if fields.iter().any(|f| fold(f).contains("compte") || fold(f).contains("account")) {
                // "Compte courant;n° 00012345678", `="0123456789";Compte courant`: the first line that
                // names the account, and in it the token of letters and at least 5 digits (not a date or an amount).
                account = account.or_else(|| {
                    fields
                        .iter()
                        .flat_map(|f| f.split_whitespace())
                        .rev()
                        .map(|t| t.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
                        .find(|t| {
                            t.chars().all(|c| c.is_ascii_alphanumeric())
                                && t.chars().filter(char::is_ascii_digit).count() >= 5
                        })
                        .map(str::to_owned)
                });
            }
            continue;
        };
        let cell = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(String::as_str).unwrap_or("");
        if cols.state.is_some_and(|i| {
            let state = fold(cell(Some(i)));
            ["declined", "reverted", "failed", "refusee", "annulee"].iter().any(|s| state.starts_with(s))
        }) {
            continue;
        }
        let (date, amount) = match date_and_amount(cols, &cell) {
            Ok(read) => read,
            Err(reason) => {
                on_broken(&format!("line {line}"), &reason)?;
                continue;
            }
        };
        let label = one_spaced(cell(Some(cols.label)));
        let currency = match cell(cols.currency) {
            "" => "EUR".to_owned(),
            c => c.to_uppercase(),
        };
        operations.push(Operation {
            account: String::new(),
            // The account is known at the end; the ids only need to be unique within the file's account.
            fitid: derived.next("csv", "", date, amount, &label),
            date: date.to_string(),
            amount: (amount * 100.0).round() / 100.0,
            currency,
            label,
            kind: None,
        });
    }
    if layout.is_none() {
        return Err("no header with a date, a label and an amount (or debit and credit) column".into());
    }
    if operations.is_empty() {
        return Err("the statement lists no operation".into());
    }
    let account = account.unwrap_or_else(|| file_name.rsplit_once('.').map_or(file_name, |(stem, _)| stem).to_owned());
    for op in &mut operations {
        op.account = account.clone();
    }
    Ok(operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strict(file_name: &str, text: &str) -> Result<Vec<Operation>, String> {
        parse(file_name, text, &mut domicile_sdk::import::refuse)
    }

    #[test]
    fn reads_debit_credit_columns_after_a_preamble() {
        let text = "Compte courant;n° 00012345678\r\n\r\nDate;Libellé;Débit;Crédit\r\n02/03/2026;CARREFOUR  NANTES;42,50;\r\n02/03/2026;CARREFOUR  NANTES;42,50;\r\n03/03/2026;SALAIRE;;2 100,00\r\n";
        let ops = parse_strict("releve.csv", text).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!((ops[0].amount, ops[0].label.as_str()), (-42.5, "CARREFOUR NANTES"));
        assert_eq!(ops[2].amount, 2100.0);
        assert_eq!(ops[0].account, "00012345678");
        assert_ne!(ops[0].fitid, ops[1].fitid, "two identical purchases are two operations");
        assert_eq!(parse_strict("releve.csv", text).unwrap(), ops, "and the same on every import");
    }

    #[test]
    fn an_amount_column_and_errors_naming_the_line() {
        let ops = parse_strict("checking.csv", "date,label,amount\n2026-03-02,Coffee,-3.2\n").unwrap();
        assert_eq!((ops[0].account.as_str(), ops[0].amount), ("checking", -3.2));
        let err = parse_strict("x.csv", "Date;Libellé;Montant\n02/03/2026;A;-1\n31/02/2026;B;-2\n").unwrap_err();
        assert_eq!(err, "line 3: `31/02/2026` is not a date (02/03/2026 or 2026-03-02)");
        assert!(parse_strict("x.csv", "a;b\n1;2\n").unwrap_err().contains("no header"));
    }

    #[test]
    fn layouts_of_other_banks() {
        let revolut = "Type,Product,Started Date,Completed Date,Description,Amount,Fee,Currency,State,Balance\n\
            CARD_PAYMENT,Current,2026-03-02 10:00:00,2026-03-02 10:00:05,SHOP,-10.00,0.50,EUR,COMPLETED,1\n\
            CARD_PAYMENT,Current,2026-03-03 10:00:00,,SHOP,-99.00,0.00,EUR,DECLINED,\n";
        let ops = parse_strict("revolut.csv", revolut).unwrap();
        assert_eq!((ops.len(), ops[0].amount, ops[0].date.as_str()), (1, -10.5, "2026-03-02"), "the fee is money out");
        let sg = "=\"00050123456\";Compte courant;16/03/2026\nDate de l'opération;Libellé;Montant de l'opération;Devise\n02.03.26;A;-1.234,50;EUR\n";
        let ops = parse_strict("x.csv", sg).unwrap();
        assert_eq!(
            (ops[0].account.as_str(), ops[0].amount, ops[0].date.as_str()),
            ("00050123456", -1234.5, "2026-03-02")
        );
        let value_date = "Date de valeur;Date d'opération;Libellé;Montant\n05/03/2026;02/03/2026;A;-1\n";
        assert_eq!(
            parse_strict("x.csv", value_date).unwrap()[0].date,
            "2026-03-02",
            "the value date is not the operation's"
        );
    }
}
