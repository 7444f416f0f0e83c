//! OFX statements, SGML (1.x) or XML (2.x): a tokenizer that reads each tag
//! and the text after it, which is all both flavours need.

use domicile_sdk::time::{parse_decimal, Date};

use crate::Operation;

/// One `<STMTTRN>` being read: its leaf elements.
#[derive(Default)]
struct Transaction {
    fields: Vec<(String, String)>,
}

impl Transaction {
    fn get(&self, tag: &str) -> Option<&str> {
        self.fields.iter().find(|(t, _)| t == tag).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

pub fn parse(text: &str) -> Result<Vec<Operation>, String> {
    let Some(start) = text.find('<') else { return Err("no OFX element found".into()) };
    let mut rest = &text[start..];
    let (mut account, mut currency) = (String::new(), "EUR".to_owned());
    let mut current: Option<Transaction> = None;
    let mut done: Vec<Transaction> = Vec::new();
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>').ok_or("an OFX tag is not closed with `>`")?;
        let tag = after[..close].trim().to_ascii_uppercase();
        let body_start = &after[close + 1..];
        let body_end = body_start.find('<').unwrap_or(body_start.len());
        let value = unescape(body_start[..body_end].trim());
        rest = &body_start[body_end..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        match tag.as_str() {
            "STMTTRN" => {
                if current.is_some() {
                    return Err(format!("STMTTRN #{} starts before the previous one ends", done.len() + 2));
                }
                current = Some(Transaction::default());
            }
            "/STMTTRN" => done.push(current.take().ok_or("a </STMTTRN> closes nothing")?),
            "ACCTID" => account = value,
            "CURDEF" => currency = value,
            t if t.starts_with('/') => {}
            t => {
                if let Some(txn) = current.as_mut() {
                    txn.fields.push((t.to_owned(), value));
                }
            }
        }
    }
    if current.is_some() {
        return Err(format!("STMTTRN #{} is not closed", done.len() + 1));
    }
    if done.is_empty() {
        return Err("no <STMTTRN> operation found".into());
    }
    if account.is_empty() {
        return Err("no <ACCTID>: the statement does not say which account it is".into());
    }
    done.iter()
        .enumerate()
        .map(|(i, txn)| {
            let at = |what: &str| format!("STMTTRN #{}: {what}", i + 1);
            let fitid = txn.get("FITID").ok_or_else(|| at("no FITID"))?.to_owned();
            let posted = txn.get("DTPOSTED").ok_or_else(|| at("no DTPOSTED"))?;
            let date = Date::parse_compact(posted).ok_or_else(|| at(&format!("DTPOSTED `{posted}` is not a date")))?;
            let raw = txn.get("TRNAMT").ok_or_else(|| at("no TRNAMT"))?;
            let amount = parse_decimal(raw).ok_or_else(|| at(&format!("TRNAMT `{raw}` is not a number")))?;
            let label = [txn.get("NAME"), txn.get("MEMO")].into_iter().flatten().collect::<Vec<_>>().join(" ");
            Ok(Operation {
                account: account.clone(),
                fitid,
                date: date.to_string(),
                amount,
                currency: txn.get("CURRENCY").unwrap_or(&currency).to_owned(),
                label,
                kind: txn.get("TRNTYPE").map(str::to_owned),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sgml_and_xml() {
        let sgml = "OFXHEADER:100\nDATA:OFXSGML\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR<BANKACCTFROM><ACCTID>0123456789<ACCTTYPE>CHECKING</BANKACCTFROM>\n<BANKTRANLIST><STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20260302<TRNAMT>-42,50<FITID>A1<NAME>CARREFOUR &amp; CIE</STMTTRN>\n<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20260303120000[+1:CET]<TRNAMT>2100.00<FITID>A2<NAME>SALAIRE<MEMO>MARS</STMTTRN></BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>";
        let ops = parse(sgml).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(
            (ops[0].amount, ops[0].label.as_str(), ops[0].date.as_str()),
            (-42.5, "CARREFOUR & CIE", "2026-03-02")
        );
        assert_eq!(ops[1].label, "SALAIRE MARS");
        let xml = "<?xml version=\"1.0\"?><OFX><CURDEF>EUR</CURDEF><ACCTID>9</ACCTID><STMTTRN><TRNTYPE>POS</TRNTYPE><DTPOSTED>20260305</DTPOSTED><TRNAMT>-3.20</TRNAMT><FITID>X</FITID><NAME>BOULANGERIE</NAME></STMTTRN></OFX>";
        assert_eq!(parse(xml).unwrap()[0].amount, -3.2);
    }

    #[test]
    fn errors_name_the_element() {
        let bad = "<OFX><ACCTID>1<STMTTRN><DTPOSTED>20260302<TRNAMT>-1<FITID>A</STMTTRN><STMTTRN><DTPOSTED>20260302<TRNAMT>douze<FITID>B</STMTTRN></OFX>";
        assert_eq!(parse(bad).unwrap_err(), "STMTTRN #2: TRNAMT `douze` is not a number");
        assert!(parse("<OFX><ACCTID>1<STMTTRN><TRNAMT>1</OFX>").unwrap_err().contains("not closed"));
        assert!(parse("<OFX></OFX>").unwrap_err().contains("no <STMTTRN>"));
    }
}
