//! OFX statements, SGML (1.x) or XML (2.x): a tokenizer that reads each tag
//! and the text after it (or its `<![CDATA[...]]>`), which is all both
//! flavours need.
//!
//! A file must be whole: it ends with `</OFX>`, and every statement it
//! opens is closed. A file cut off between two operations (an interrupted
//! download) is refused, saying where it ends, rather than imported in part.
//!
//! A file holds one or more statements (`STMTRS` for a bank account,
//! `CCSTMTRS` for a card, `INVSTMTRS` for an investment account, whose cash
//! movements are `STMTTRN` too). Each statement names its account
//! (`ACCTID`), its currency (`CURDEF`), its operations (`STMTTRN`) and its
//! ledger balance (`LEDGERBAL`). A statement without operations is a quiet
//! month: it still gives its balance.

use domicile_sdk::import::OnBroken;
use domicile_sdk::time::{parse_decimal, Date};

use crate::{label_of, Balance, DerivedIds, Operation};

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

/// One statement being read.
#[derive(Default)]
struct Statement {
    account: String,
    currency: Option<String>,
    /// Each operation with its rank in the file and the line it starts on.
    transactions: Vec<(usize, usize, Transaction)>,
    balance_amount: Option<String>,
    balance_as_of: Option<String>,
    /// The line of its `<LEDGERBAL>`.
    balance_line: usize,
}

/// What an OFX file gives.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub operations: Vec<Operation>,
    pub balances: Vec<Balance>,
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

const STATEMENT_TAGS: [&str; 3] = ["STMTRS", "CCSTMTRS", "INVSTMTRS"];

/// Where an operation is: its line, and its rank (a statement on one line has many).
fn operation_at(line: usize, rank: usize) -> String {
    format!("line {line} (STMTTRN #{rank})")
}

/// Line numbers of byte positions, counted as the tokenizer moves forward.
struct Lines<'a> {
    text: &'a str,
    counted_to: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, position: usize) -> usize {
        let position = position.min(self.text.len());
        if position > self.counted_to {
            self.line += self.text.as_bytes()[self.counted_to..position].iter().filter(|&&b| b == b'\n').count();
            self.counted_to = position;
        }
        self.line
    }
}

/// Reads an OFX file; a broken operation or balance goes to `on_broken`
/// (see the crate documentation). Anything else wrong fails the file.
pub fn parse(text: &str, on_broken: &mut OnBroken<'_>) -> Result<Parsed, String> {
    let Some(start) = text.find('<') else { return Err("no OFX element found".into()) };
    let mut rest = &text[start..];
    let mut lines = Lines { text, counted_to: 0, line: 1 };
    let mut statements: Vec<Statement> = Vec::new();
    let mut open_statement: Option<Statement> = None;
    // The statement aggregate opened by a tag and not closed yet, and its line.
    let mut unclosed_statement: Option<(String, usize)> = None;
    // Whether `<OFX>` was opened, and whether `</OFX>` closed it.
    let (mut ofx_opened, mut ofx_closed) = (false, false);
    // The operation being read, and the line it starts on.
    let mut current: Option<(Transaction, usize)> = None;
    let mut transactions = 0;
    let mut in_ledger = false;
    let mut investment_trades = 0;
    // The last status code and message, and the one that said ERROR.
    let mut status: Option<(String, String)> = None;
    let mut server_error: Option<(String, String)> = None;
    while let Some(open) = rest.find('<') {
        let line = lines.at(text.len() - rest.len() + open);
        let after = &rest[open + 1..];
        if let Some(cdata) = after.strip_prefix("![CDATA[") {
            // Text outside a known element: skip it.
            let end = cdata
                .find("]]>")
                .ok_or_else(|| format!("line {line}: a <![CDATA[ section is not closed with `]]>`"))?;
            rest = &cdata[end + 3..];
            continue;
        }
        let close = after.find('>').ok_or_else(|| format!("line {line}: an OFX tag is not closed with `>`"))?;
        let tag = after[..close].trim().to_ascii_uppercase();
        let mut body = &after[close + 1..];
        let value = match body.trim_start().strip_prefix("<![CDATA[") {
            Some(cdata) => {
                let end = cdata
                    .find("]]>")
                    .ok_or_else(|| format!("line {line}: <{tag}>: its <![CDATA[ is not closed with `]]>`"))?;
                body = &cdata[end + 3..];
                cdata[..end].trim().to_owned()
            }
            None => {
                let end = body.find('<').unwrap_or(body.len());
                let value = unescape(body[..end].trim());
                body = &body[end..];
                value
            }
        };
        rest = body;
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if STATEMENT_TAGS.contains(&tag.as_str()) {
            statements.extend(open_statement.take());
            open_statement = Some(Statement::default());
            unclosed_statement = Some((tag, line));
            continue;
        }
        if tag.strip_prefix('/').is_some_and(|t| STATEMENT_TAGS.contains(&t)) {
            if let Some((_, started)) = current {
                return Err(format!(
                    "{}: the operation is not closed before its statement ends (line {line})",
                    operation_at(started, transactions)
                ));
            }
            statements.extend(open_statement.take());
            unclosed_statement = None;
            continue;
        }
        match tag.as_str() {
            "OFX" => ofx_opened = true,
            "/OFX" => ofx_closed = true,
            "STMTTRN" => {
                if current.is_some() {
                    return Err(format!(
                        "{}: an operation starts before the previous one ends",
                        operation_at(line, transactions + 1)
                    ));
                }
                transactions += 1;
                current = Some((Transaction::default(), line));
            }
            "/STMTTRN" => {
                let (txn, started) =
                    current.take().ok_or_else(|| format!("line {line}: a </STMTTRN> closes nothing"))?;
                open_statement.get_or_insert_with(Statement::default).transactions.push((transactions, started, txn));
            }
            "BUYMF" | "SELLMF" | "BUYSTOCK" | "SELLSTOCK" | "BUYDEBT" | "SELLDEBT" | "BUYOPT" | "SELLOPT"
            | "BUYOTHER" | "SELLOTHER" | "REINVEST" | "INCOME" | "TRANSFER" => investment_trades += 1,
            "LEDGERBAL" => {
                in_ledger = true;
                open_statement.get_or_insert_with(Statement::default).balance_line = line;
            }
            "/LEDGERBAL" => in_ledger = false,
            "CODE" if current.is_none() => status = Some((value, String::new())),
            "MESSAGE" if current.is_none() => {
                if let Some((_, message)) = status.as_mut() {
                    message.clone_from(&value);
                }
                if let Some((_, message)) = server_error.as_mut() {
                    *message = value;
                }
            }
            t if t.starts_with('/') => {}
            t => {
                let error_status = t == "SEVERITY" && value.eq_ignore_ascii_case("ERROR");
                if let Some((txn, _)) = current.as_mut() {
                    // Inside an operation, even `ACCTID` (of `BANKACCTTO`) is the operation's.
                    txn.fields.push((t.to_owned(), value));
                } else {
                    match t {
                        "ACCTID" => open_statement.get_or_insert_with(Statement::default).account = value,
                        "CURDEF" if !value.is_empty() => {
                            open_statement.get_or_insert_with(Statement::default).currency = Some(value)
                        }
                        "BALAMT" if in_ledger => {
                            open_statement.get_or_insert_with(Statement::default).balance_amount = Some(value)
                        }
                        "DTASOF" if in_ledger => {
                            open_statement.get_or_insert_with(Statement::default).balance_as_of = Some(value)
                        }
                        _ => {}
                    }
                }
                if error_status {
                    server_error = status.clone().or(Some((String::new(), String::new())));
                }
            }
        }
    }
    // A file cut off (an interrupted download) ends inside what it opened.
    let last_line = lines.at(text.len());
    if let Some((_, started)) = current {
        return Err(format!(
            "{}: the file ends (line {last_line}) inside this operation: it is cut off; download the statement again",
            operation_at(started, transactions)
        ));
    }
    if let Some((tag, started)) = unclosed_statement {
        return Err(format!(
            "line {started}: the statement <{tag}> is not closed: the file ends (line {last_line}) before its </{tag}>, so it is cut off; download the statement again"
        ));
    }
    if !ofx_opened {
        return Err("no <OFX> element: this is not an OFX statement".into());
    }
    if !ofx_closed {
        return Err(format!(
            "the file ends (line {last_line}) before </OFX>: it is cut off; download the statement again"
        ));
    }
    statements.extend(open_statement.take());
    statements.retain(|s| !s.transactions.is_empty() || !s.account.is_empty());
    let mut parsed = Parsed::default();
    let mut derived = DerivedIds::default();
    for statement in &statements {
        read_statement(statement, &mut derived, &mut parsed, on_broken)?;
    }
    if parsed.operations.is_empty() && parsed.balances.is_empty() && investment_trades > 0 {
        return Err(format!(
            "an investment statement with {investment_trades} trades and no cash operation or balance: the bank importer reads bank and card statements"
        ));
    }
    if let (true, Some((code, message))) = (statements.is_empty(), server_error) {
        let message = if message.is_empty() { String::new() } else { format!(": {message}") };
        return Err(format!(
            "the bank's server answered with an error (code {code}){message}; this file holds no statement"
        ));
    }
    if statements.is_empty() {
        return Err("no statement found (no <STMTTRN> operation and no account)".into());
    }
    if parsed.operations.is_empty() && parsed.balances.is_empty() {
        return Err(format!(
            "the statements of account {} hold no operation and no balance: nothing to import",
            statements.iter().map(|s| s.account.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(parsed)
}

/// One operation of a statement; the error says what is wrong with it.
fn operation_of(
    statement: &Statement,
    txn: &Transaction,
    currency: &str,
    derived: &mut DerivedIds,
) -> Result<Operation, String> {
    let posted = txn.get("DTPOSTED").ok_or("no DTPOSTED")?;
    let date = Date::parse_ofx(posted).ok_or_else(|| format!("DTPOSTED `{posted}` is not a date"))?;
    let raw = txn.get("TRNAMT").ok_or("no TRNAMT")?;
    let amount = parse_decimal(raw).ok_or_else(|| format!("TRNAMT `{raw}` is not a number"))?;
    let label = label_of(txn.get("NAME"), txn.get("MEMO"));
    let fitid = match txn.get("FITID") {
        Some(fitid) => fitid.to_owned(),
        // Banks do send empty FITIDs: an id from what the operation says, stable across imports.
        None => derived.next("ofx", &statement.account, date, amount, &label),
    };
    Ok(Operation {
        account: statement.account.clone(),
        fitid,
        date: date.to_string(),
        amount,
        currency: txn.get("CURSYM").or(txn.get("CURRENCY")).unwrap_or(currency).to_uppercase(),
        label,
        kind: txn.get("TRNTYPE").map(str::to_ascii_uppercase),
    })
}

fn read_statement(
    statement: &Statement,
    derived: &mut DerivedIds,
    parsed: &mut Parsed,
    on_broken: &mut OnBroken<'_>,
) -> Result<(), String> {
    let currency = statement.currency.clone().unwrap_or_else(|| "EUR".to_owned());
    if let Some((n, line, _)) = statement.transactions.first() {
        if statement.account.is_empty() {
            return Err(format!(
                "{}: no <ACCTID>: the statement does not say which account it is",
                operation_at(*line, *n)
            ));
        }
    }
    for (n, line, txn) in &statement.transactions {
        match operation_of(statement, txn, &currency, derived) {
            Ok(operation) => parsed.operations.push(operation),
            Err(reason) => on_broken(&operation_at(*line, *n), &reason)?,
        }
    }
    if let (Some(amount), Some(as_of)) = (&statement.balance_amount, &statement.balance_as_of) {
        // Banks send empty balance elements: no balance, not a broken one.
        if amount.is_empty() || as_of.is_empty() {
            return Ok(());
        }
        let location = format!("line {} (LEDGERBAL of account {})", statement.balance_line, statement.account);
        match (parse_decimal(amount), Date::parse_ofx(as_of)) {
            (Some(balance), Some(date)) => parsed.balances.push(Balance {
                account: statement.account.clone(),
                date: date.to_string(),
                amount: balance,
                currency,
            }),
            (None, _) => on_broken(&location, &format!("BALAMT `{amount}` is not a number"))?,
            (_, None) => on_broken(&location, &format!("DTASOF `{as_of}` is not a date"))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Parsed, String> {
        super::parse(text, &mut domicile_sdk::import::refuse)
    }

    #[test]
    fn reads_sgml_and_xml() {
        let sgml = "OFXHEADER:100\nDATA:OFXSGML\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR<BANKACCTFROM><ACCTID>0123456789<ACCTTYPE>CHECKING</BANKACCTFROM>\n<BANKTRANLIST><STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20260302<TRNAMT>-42,50<FITID>A1<NAME>CARREFOUR &amp; CIE</STMTTRN>\n<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20260303120000[+1:CET]<TRNAMT>2100.00<FITID>A2<NAME>SALAIRE<MEMO>MARS</STMTTRN></BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>";
        let ops = parse(sgml).unwrap().operations;
        assert_eq!(ops.len(), 2);
        assert_eq!(
            (ops[0].amount, ops[0].label.as_str(), ops[0].date.as_str()),
            (-42.5, "CARREFOUR & CIE", "2026-03-02")
        );
        assert_eq!(ops[1].label, "SALAIRE MARS");
        let xml = "<?xml version=\"1.0\"?><OFX><CURDEF>EUR</CURDEF><ACCTID>9</ACCTID><STMTTRN><TRNTYPE>POS</TRNTYPE><DTPOSTED>20260305</DTPOSTED><TRNAMT>-3.20</TRNAMT><FITID>X</FITID><NAME>BOULANGERIE</NAME></STMTTRN></OFX>";
        assert_eq!(parse(xml).unwrap().operations[0].amount, -3.2);
    }

    #[test]
    fn errors_name_the_element() {
        let bad = "<OFX><ACCTID>1<STMTTRN><DTPOSTED>20260302<TRNAMT>-1<FITID>A</STMTTRN><STMTTRN><DTPOSTED>20260302<TRNAMT>douze<FITID>B</STMTTRN></OFX>";
        assert_eq!(parse(bad).unwrap_err(), "line 1 (STMTTRN #2): TRNAMT `douze` is not a number");
        let on_lines = bad.replace("<STMTTRN>", "\n<STMTTRN>");
        assert_eq!(parse(&on_lines).unwrap_err(), "line 3 (STMTTRN #2): TRNAMT `douze` is not a number");
        assert!(parse("<OFX><ACCTID>1<STMTTRN><TRNAMT>1</OFX>").unwrap_err().contains("inside this operation"));
        assert!(parse("<OFX></OFX>").unwrap_err().contains("no statement found"));
        let no_account = "<OFX><STMTRS><STMTTRN><DTPOSTED>20260302<TRNAMT>-1<FITID>A</STMTTRN></STMTRS></OFX>";
        assert!(parse(no_account).unwrap_err().starts_with("line 1 (STMTTRN #1): no <ACCTID>"));
        let error = "<OFX><SONRS><STATUS><CODE>15500<SEVERITY>ERROR<MESSAGE>Signon invalid</STATUS></SONRS></OFX>";
        assert_eq!(
            parse(error).unwrap_err(),
            "the bank's server answered with an error (code 15500): Signon invalid; this file holds no statement"
        );
    }

    /// A download cut off between two operations, or anywhere after the
    /// first one, is refused whole, saying where the file ends.
    #[test]
    fn a_file_cut_off_is_refused_whole() {
        let whole = "OFXHEADER:100\n\n<OFX>\n<BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR\n<BANKACCTFROM><ACCTID>1</BANKACCTFROM>\n<BANKTRANLIST>\n<STMTTRN><DTPOSTED>20260302<TRNAMT>-1<FITID>A</STMTTRN>\n<STMTTRN><DTPOSTED>20260303<TRNAMT>-2<FITID>B</STMTTRN>\n</BANKTRANLIST>\n<LEDGERBAL><BALAMT>10<DTASOF>20260303</LEDGERBAL>\n</STMTRS></STMTTRNRS></BANKMSGSRSV1>\n</OFX>\n";
        assert_eq!(parse(whole).unwrap().operations.len(), 2);
        let after_first = &whole[..whole.find("</STMTTRN>").unwrap() + "</STMTTRN>".len()];
        assert_eq!(
            parse(after_first).unwrap_err(),
            "line 4: the statement <STMTRS> is not closed: the file ends (line 7) before its </STMTRS>, so it is cut off; download the statement again"
        );
        let inside = &whole[..whole.find("<FITID>B").unwrap()];
        assert!(parse(inside)
            .unwrap_err()
            .starts_with("line 8 (STMTTRN #2): the file ends (line 8) inside this operation"));
        let before_end = &whole[..whole.find("</OFX>").unwrap()];
        let error = parse(before_end).unwrap_err();
        assert!(error.starts_with("the file ends (line 12) before </OFX>"), "{error}");
        // Every cut of the file is refused or imports it whole: never a part.
        for cut in 1..whole.trim_end().len() {
            if let Ok(parsed) = parse(&whole[..cut]) {
                panic!("a cut at byte {cut} was imported ({} operations)", parsed.operations.len());
            }
        }
        assert!(parse("<STMTTRN><ACCTID>1</STMTTRN>").unwrap_err().contains("no <OFX> element"));
    }

    #[test]
    fn quiet_months_several_accounts_and_balances() {
        // Two accounts, one without operations; zones and fractional seconds in the dates.
        let xml = "<OFX><SONRS><DTSERVER>20120603203135.547[-7:PDT]</DTSERVER></SONRS>\
            <STMTRS><CURDEF>USD</CURDEF><BANKACCTFROM><ACCTID>9100</ACCTID></BANKACCTFROM>\
            <LEDGERBAL><BALAMT>111</BALAMT><DTASOF>20120603133220.000[-7:PDT]</DTASOF></LEDGERBAL></STMTRS>\
            <STMTRS><CURDEF>USD</CURDEF><BANKACCTFROM><ACCTID>9200</ACCTID></BANKACCTFROM><BANKTRANLIST>\
            <STMTTRN><DTPOSTED>20120601</DTPOSTED><TRNAMT>-5</TRNAMT><FITID>T1</FITID><NAME>X</NAME>\
            <BANKACCTTO><ACCTID>9100</ACCTID></BANKACCTTO></STMTTRN></BANKTRANLIST>\
            <LEDGERBAL><BALAMT>222</BALAMT><DTASOF>20120603</DTASOF></LEDGERBAL></STMTRS></OFX>";
        let parsed = parse(xml).unwrap();
        assert_eq!(parsed.operations.len(), 1);
        assert_eq!(parsed.operations[0].account, "9200", "the transfer's target is not the statement's account");
        let balances: Vec<(&str, &str, f64)> =
            parsed.balances.iter().map(|b| (b.account.as_str(), b.date.as_str(), b.amount)).collect();
        assert_eq!(balances, [("9100", "2012-06-03", 111.0), ("9200", "2012-06-03", 222.0)]);
        assert!(parse("<OFX><LEDGERBAL><BALAMT>1<DTASOF>2012</LEDGERBAL><ACCTID>1</OFX>")
            .unwrap_err()
            .contains("DTASOF"));
    }

    #[test]
    fn empty_fitids_cdata_and_currency_aggregates() {
        let sgml = "<OFX><STMTRS><CURDEF></CURDEF><BANKACCTFROM><ACCTID>12345678</ACCTID></BANKACCTFROM>\
            <STMTTRN><TRNTYPE>Credit</TRNTYPE><DTPOSTED>20180507</DTPOSTED><TRNAMT>12.34</TRNAMT><FITID></FITID><NAME></NAME>\
            <MEMO>CBA:Transfer</MEMO><CURRENCY><CURRATE>1.0000</CURRATE><CURSYM>AUD</CURSYM></CURRENCY></STMTTRN>\
            <STMTTRN><DTPOSTED>20180507</DTPOSTED><TRNAMT>12.34</TRNAMT><FITID></FITID><MEMO>CBA:Transfer</MEMO></STMTTRN>\
            <STMTTRN><DTPOSTED>20131215</DTPOSTED><TRNAMT>-16.85</TRNAMT><FITID>1</FITID>\
            <NAME><![CDATA[EFTPOS WDL HANDYWAY ALDI STORE  ]]></NAME>\
            <MEMO><![CDATA[EFTPOS WDL HANDYWAY ALDI STORE   GEELONG WEST VICAU]]></MEMO></STMTTRN>\
            <LEDGERBAL><BALAMT></BALAMT><DTASOF></DTASOF></LEDGERBAL></STMTRS></OFX>";
        let parsed = parse(sgml).unwrap();
        let ops = &parsed.operations;
        assert_eq!((ops[0].currency.as_str(), ops[0].kind.as_deref()), ("AUD", Some("CREDIT")));
        assert!(ops[0].fitid.starts_with("ofx-2018-05-07-1234-"), "{}", ops[0].fitid);
        assert_ne!(ops[0].fitid, ops[1].fitid, "two identical operations are two operations");
        assert_eq!(parse(sgml).unwrap(), parsed, "and the same ids on every import");
        assert_eq!(ops[2].label, "EFTPOS WDL HANDYWAY ALDI STORE GEELONG WEST VICAU");
        assert!(parsed.balances.is_empty(), "an empty balance is no balance");
    }

    #[test]
    fn an_investment_statement_without_cash_operations_is_named() {
        let ofx = "<OFX><INVSTMTRS><INVACCTFROM><ACCTID>0123</INVACCTFROM><INVTRANLIST><SELLMF><INVSELL><INVTRAN><FITID>1<MEMO>M</INVTRAN></INVSELL></SELLMF></INVTRANLIST></INVSTMTRS></OFX>";
        assert!(parse(ofx).unwrap_err().starts_with("an investment statement with 1 trades"));
        let trades_only =
            "<OFX><INVTRANLIST><SELLMF><INVSELL><INVTRAN><FITID>1</INVTRAN></INVSELL></SELLMF></INVTRANLIST></OFX>";
        assert!(parse(trades_only).unwrap_err().starts_with("an investment statement with 1 trades"));
    }
}
