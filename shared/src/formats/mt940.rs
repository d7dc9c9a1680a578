//! SWIFT MT940 customer statements, parsed by the `mt940` crate.
//!
//! A file holds one or more messages (`:20:` … `:62F:`/`:62M:`, each ended by a `-` line). One
//! record is one `:61:` entry with the `:86:` that follows it; its statement id is
//! `{:20:}-{bank reference}`. `:86:` carries structured subfields
//! `/EREF/{transaction id or NOTPROVIDED}/MID/{merchant}/TYPE/{record type}/CHGS/{fee}/REMI/{text}`
//! (lines wrapped at 65 characters are joined without a separator); an unstructured `:86:` is
//! taken whole as the reference.
//!
//! File-level failures: a message the crate cannot parse, a balance in another currency than
//! the account's, opening balance + movements ≠ closing balance.
//!
//! The crate accepts only the SWIFT character set, while bank ids (and so `:20:`) contain `_`
//! and references may hold other characters. Before parsing, each character outside the set is
//! swapped for a SWIFT character the file does not use, and swapped back in every value read,
//! so nothing is lost or altered; `-` lines that end a message are dropped (the crate would
//! read them into the closing balance).

use std::fmt::Display;
use std::panic::UnwindSafe;

use chrono::{Datelike, NaiveDate};
use mt940::{DebitOrCredit, ExtDebitOrCredit, Field, InformationToAccountOwner, Message};
use rust_decimal::Decimal;

use super::{Entry, account_currency, file_error, reference_id};
use crate::error::Result;
use crate::money::Currency;
use crate::source::{OnRecord, ParseContext};

/// Symbols of the SWIFT character set the crate accepts besides ASCII letters and digits.
const SWIFT_SYMBOLS: &str = "/-?:().,‘+{} \r\n";

/// SWIFT characters without a role in MT940 syntax, used as stand-ins for the others.
const STAND_INS: [char; 6] = ['{', '}', '‘', '+', '(', ')'];

fn is_swift(c: char) -> bool {
    c.is_ascii_alphanumeric() || SWIFT_SYMBOLS.contains(c)
}

/// The input as the crate can read it, and how to undo the character swaps in values read.
struct Swift<'a> {
    text: std::borrow::Cow<'a, str>,
    /// (stand-in, original character)
    swaps: Vec<(char, char)>,
}

impl<'a> Swift<'a> {
    fn new(text: &'a str) -> std::result::Result<Self, String> {
        let mut foreign: Vec<char> = Vec::new();
        for c in text.chars() {
            if !is_swift(c) && !foreign.contains(&c) {
                foreign.push(c);
            }
        }
        let free: Vec<char> = STAND_INS
            .iter()
            .copied()
            .filter(|c| !text.contains(*c))
            .collect();
        if foreign.len() > free.len() {
            let shown: String = foreign.iter().flat_map(|c| c.escape_debug()).collect();
            return Err(format!(
                "uses {} distinct characters outside the SWIFT character set (`{shown}`); at most {} can be read losslessly",
                foreign.len(),
                free.len()
            ));
        }
        let terminators = text.lines().any(|l| l.trim() == "-");
        if foreign.is_empty() && !terminators {
            return Ok(Self {
                text: text.into(),
                swaps: Vec::new(),
            });
        }
        let to: Vec<(char, char)> = foreign.into_iter().zip(free).collect();
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            if line.trim() == "-" {
                continue;
            }
            if to.is_empty() {
                out.push_str(line);
            } else {
                out.extend(
                    line.chars()
                        .map(|c| to.iter().find(|(o, _)| *o == c).map_or(c, |(_, s)| *s)),
                );
            }
        }
        Ok(Self {
            text: out.into(),
            swaps: to.into_iter().map(|(o, s)| (s, o)).collect(),
        })
    }

    /// A value read from the swapped text, with its original characters back.
    fn restore(&self, value: &str) -> String {
        if self.swaps.is_empty() {
            return value.to_string();
        }
        value
            .chars()
            .map(|c| {
                self.swaps
                    .iter()
                    .find(|(s, _)| *s == c)
                    .map_or(c, |(_, o)| *o)
            })
            .collect()
    }
}

/// Runs a parser of the crate. It unwraps a few things malformed input can break (an entry
/// date of `0230` panics), so a panic becomes an error about the file instead of ending the
/// process.
fn guarded<T, E: Display>(
    parse: impl FnOnce() -> std::result::Result<T, E> + UnwindSafe,
) -> std::result::Result<T, String> {
    match std::panic::catch_unwind(parse) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")),
        Err(_) => Err("the MT940 parser gave up on malformed input".into()),
    }
}

/// The fields of one message and the raw text (`:61:` and its `:86:`) of each of its entries.
type MessageFields = (Vec<Field>, Vec<String>);

/// The input's fields, message by message.
fn split_messages(fields: Vec<Field>) -> std::result::Result<Vec<MessageFields>, String> {
    let mut out: Vec<MessageFields> = Vec::new();
    let mut in_entry = false;
    for f in fields {
        if f.tag == "20" {
            out.push((Vec::new(), Vec::new()));
        }
        let Some((message, raws)) = out.last_mut() else {
            return Err(format!("field :{}: comes before the first :20:", f.tag));
        };
        match f.tag.as_str() {
            "61" => {
                raws.push(format!(":61:{}", f.value));
                in_entry = true;
            }
            "86" if in_entry => {
                if let Some(raw) = raws.last_mut() {
                    raw.push_str("\n:86:");
                    raw.push_str(&f.value);
                }
            }
            _ => in_entry = false,
        }
        message.push(f);
    }
    Ok(out)
}

fn signed_balance(b: &mt940::Balance) -> Decimal {
    match b.debit_credit_indicator {
        DebitOrCredit::Credit => b.amount,
        DebitOrCredit::Debit => -b.amount,
    }
}

/// An entry's amount from the account's side. The crate calls `RD` (reversal of a debit, so a
/// credit) `ReverseCredit`, and `RC` (reversal of a credit, a debit) `ReverseDebit`.
fn signed_entry(l: &mt940::StatementLine) -> Decimal {
    match l.ext_debit_credit_indicator {
        ExtDebitOrCredit::Credit | ExtDebitOrCredit::ReverseCredit => l.amount,
        ExtDebitOrCredit::Debit | ExtDebitOrCredit::ReverseDebit => -l.amount,
    }
}

/// `:61:` gives the entry (booking) date without a year and the crate takes the value date's;
/// an entry date half a year away from the value date belongs to the neighbouring year.
fn booking_date(value: NaiveDate, entry: Option<NaiveDate>) -> NaiveDate {
    let Some(e) = entry else { return value };
    let days = (e - value).num_days();
    let year = match days {
        d if d > 183 => e.year() - 1,
        d if d < -183 => e.year() + 1,
        _ => return e,
    };
    e.with_year(year).unwrap_or(e)
}

/// SWIFT amounts (`15d`) hold at most 15 characters, the decimal comma included; the parser
/// fails somewhere after a longer one. This names the amount instead (`None`: none too long).
fn long_amount(fields: &[Field]) -> Option<String> {
    fields.iter().find_map(|f| {
        let v = f.value.as_str();
        let rest = match f.tag.as_str() {
            // Debit/credit mark, date, currency, amount.
            "60F" | "60M" | "62F" | "62M" | "64" | "65" => v.get(10..)?,
            // Value date, optional entry date (MMDD), mark (C, D, RC, RD), optional funds
            // code (a letter), amount.
            "61" => {
                let r = v.get(6..)?;
                let r = match r.get(..4) {
                    Some(d) if d.bytes().all(|b| b.is_ascii_digit()) => r.get(4..)?,
                    _ => r,
                };
                let r = r.strip_prefix('R').unwrap_or(r).get(1..)?;
                match r.as_bytes().first() {
                    Some(b) if b.is_ascii_alphabetic() => r.get(1..)?,
                    _ => r,
                }
            }
            _ => return None,
        };
        let amount: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .collect();
        (amount.len() > 15).then(|| {
            format!(
                ":{}: amount `{amount}` has {} characters; an MT940 amount holds at most 15 (SWIFT `15d`)",
                f.tag,
                amount.len()
            )
        })
    })
}

/// Checks a message's currency and that its balances add up.
fn check(
    k: usize,
    m: &Message,
    swift: &Swift<'_>,
    account: Currency,
) -> std::result::Result<(), String> {
    let what = format!(
        "message {k} (:20:{}, :28C:{}{})",
        swift.restore(&m.transaction_ref_no),
        m.statement_no,
        m.sequence_no
            .as_deref()
            .map(|s| format!("/{s}"))
            .unwrap_or_default()
    );
    for (which, b) in [
        ("opening", &m.opening_balance),
        ("closing", &m.closing_balance),
    ] {
        let cur = Currency::new(&b.iso_currency_code)
            .map_err(|e| format!("{what}: {which} balance: {e}"))?;
        if cur != account {
            return Err(format!(
                "{what}: the {which} balance is in {cur}, but the account's settlement currency is {account}"
            ));
        }
    }
    let opening = signed_balance(&m.opening_balance);
    let closing = signed_balance(&m.closing_balance);
    let mut movements = Decimal::ZERO;
    for l in &m.statement_lines {
        movements = movements
            .checked_add(signed_entry(l))
            .ok_or_else(|| format!("{what}: the movements overflow"))?;
    }
    match opening.checked_add(movements) {
        Some(sum) if sum == closing => Ok(()),
        sum => Err(format!(
            "{what}: opening balance {opening} + movements {movements} = {}, but the closing balance is {closing}",
            sum.map_or_else(|| "overflow".to_string(), |s| s.to_string())
        )),
    }
}

/// `/CODE/value` subfields of a structured `:86:` (codes of 3–4 capital letters); `/REMI/`
/// (free text that may hold `/`) runs to the end. `None`: the text is not structured.
fn subfields(info: &str) -> Option<Vec<(&str, &str)>> {
    /// `/CODE/` at byte `i`: the code and where its value starts.
    fn marker(s: &str, i: usize) -> Option<(&str, usize)> {
        let rest = s.get(i..)?.strip_prefix('/')?;
        let len = rest.bytes().take_while(u8::is_ascii_uppercase).count();
        ((3..=4).contains(&len) && rest.as_bytes().get(len) == Some(&b'/'))
            .then(|| (&rest[..len], i + len + 2))
    }
    let (mut code, mut start) = marker(info, 0)?;
    let mut out = Vec::new();
    loop {
        let next = (code != "REMI")
            .then(|| {
                info.bytes()
                    .enumerate()
                    .skip(start)
                    .filter(|(_, b)| *b == b'/')
                    .find_map(|(i, _)| marker(info, i).map(|m| (i, m)))
            })
            .flatten();
        match next {
            Some((end, (c, s))) => {
                out.push((code, &info[start..end]));
                (code, start) = (c, s);
            }
            None => {
                out.push((code, &info[start..]));
                return Some(out);
            }
        }
    }
}

/// The canonical values of one `:61:` entry.
fn entry(l: &mt940::StatementLine, statement: &str, swift: &Swift<'_>, account: Currency) -> Entry {
    let info = match &l.information_to_account_owner {
        Some(InformationToAccountOwner::Plain(text)) => {
            swift.restore(&text.replace(['\r', '\n'], ""))
        }
        Some(InformationToAccountOwner::Structured { purpose, .. }) => purpose
            .as_deref()
            .map(|p| swift.restore(p))
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut e = Entry {
        statement_id: l
            .bank_ref
            .as_deref()
            .map(|r| format!("{statement}-{}", swift.restore(r))),
        posting_date: Some(booking_date(l.value_date, l.entry_date).to_string()),
        amount_posted: Some(signed_entry(l).to_string()),
        currency: Some(account.code().to_string()),
        ..Entry::default()
    };
    let Some(subs) = subfields(&info) else {
        e.reference = Some(info);
        return e;
    };
    let get = |code: &str| {
        subs.iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.trim().to_string())
    };
    e.transaction_id = get("EREF").as_deref().and_then(reference_id);
    e.merchant_id = get("MID");
    e.record_type = get("TYPE");
    e.fee_charged = get("CHGS").map(|v| v.replace(',', "."));
    e.reference = get("REMI");
    e
}

/// Reads an MT940 file: checks every message, then hands each `:61:` entry to `sink`.
pub(crate) fn read(
    ctx: &ParseContext<'_>,
    bytes: &[u8],
    names: &'static [&'static str],
    sink: &mut impl OnRecord,
) -> Result<()> {
    let fail = |reason: String| file_error(ctx, reason);
    let text =
        std::str::from_utf8(bytes).map_err(|e| fail(format!("MT940 must be UTF-8 text: {e}")))?;
    if text.trim().is_empty() {
        return Ok(());
    }
    let account = account_currency(ctx)?;
    let swift = Swift::new(text).map_err(&fail)?;
    let fields = guarded(|| mt940::parse_fields(&swift.text))
        .map_err(|e| fail(format!("unparseable MT940: {e}")))?;
    if fields.is_empty() {
        return Err(fail("unparseable MT940: no `:20:` message found".into()));
    }
    let mut entries = Vec::new();
    for (k, (fields, raws)) in split_messages(fields)
        .map_err(&fail)?
        .into_iter()
        .enumerate()
    {
        if let Some(reason) = long_amount(&fields) {
            return Err(fail(format!("message {}: {reason}", k + 1)));
        }
        let message = guarded(|| Message::from_fields(fields))
            .map_err(|e| fail(format!("message {}: unparseable MT940 message: {e}", k + 1)))?;
        check(k + 1, &message, &swift, account).map_err(&fail)?;
        if raws.len() != message.statement_lines.len() {
            return Err(fail(format!(
                "message {}: {} :61: fields but {} entries read",
                k + 1,
                raws.len(),
                message.statement_lines.len()
            )));
        }
        let statement = swift.restore(&message.transaction_ref_no);
        for (l, raw) in message.statement_lines.iter().zip(raws) {
            entries.push((swift.restore(&raw), entry(l, &statement, &swift, account)));
        }
    }
    for (i, (raw, e)) in entries.into_iter().enumerate() {
        e.emit(i as u64 + 1, raw.as_bytes(), names, sink);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::error::Result;
    use crate::formats::tests::{file_failure, mapping, parse};
    use crate::ids::{BankId, BusinessDate, MerchantId, StatementId, TransactionId};
    use crate::records::{RecordType, StatementLine};
    use crate::source::RejectReason;

    fn crlf(lines: &[&str]) -> Vec<u8> {
        let mut s = lines.join("\r\n");
        s.push_str("\r\n");
        s.into_bytes()
    }

    /// Two messages of one statement (60F/62M, then 60M/62F), a wrapped `:86:`, a `D` and an
    /// `RC` entry, no merchant, NOTPROVIDED, `_` in `:20:` and `&` in a reference.
    fn valid() -> Vec<u8> {
        crlf(&[
            ":20:bank_x-20261120",
            ":25:bank_x/EUR",
            ":28C:00324/00001",
            ":60F:C261120EUR1000,00",
            ":61:2611201120C150,00NTRFNONREF//00000001",
            ":86:/EREF/TX-20261120-000000001/MID/M000001/TYPE/SETTLEMENT/CHGS/1,",
            "50/REMI/CARD SETTLEMENT 123456",
            ":61:2611201120D20,5NTRFNONREF//00000002",
            ":86:/EREF/NOTPROVIDED/TYPE/REFUND/CHGS/0,00/REMI/REFUND TX-20261120-0",
            "00000009",
            ":62M:C261120EUR1129,50",
            "-",
            ":20:bank_x-20261120",
            ":25:bank_x/EUR",
            ":28C:00324/00002",
            ":60M:C261120EUR1129,50",
            ":61:2611201120RC100,00NRTINONREF//00000003",
            ":86:/EREF/TX-20261120-000000003/MID/M000002/TYPE/CHARGEBACK/CHGS/0,00/",
            "REMI/PARTIAL 1/3 & more",
            ":62F:C261120EUR1029,50",
            "-",
        ])
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        seq: u32,
        txn: Option<&str>,
        amount: Decimal,
        fee: Decimal,
        merchant: Option<&str>,
        reference: &str,
        kind: RecordType,
    ) -> Result<StatementLine> {
        let eur = Currency::new("EUR")?;
        Ok(StatementLine {
            statement_id: StatementId::new(format!("bank_x-20261120-{seq:08}"))?,
            transaction_id: txn.map(TransactionId::new).transpose()?,
            bank_id: BankId::new("bank_x")?,
            posting_date: BusinessDate::parse("2026-11-20")?,
            amount_posted: amount,
            currency: eur,
            fee_charged: fee,
            merchant_id: merchant.map(MerchantId::new).transpose()?,
            reference: reference.into(),
            record_type: Some(kind),
            original_amount: None,
            original_currency: None,
            fx_rate: None,
        })
    }

    #[test]
    fn a_valid_file_becomes_canonical_lines() -> Result<()> {
        let p = parse(&mapping("mt940", "EUR")?, &valid())?;
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let got: Vec<StatementLine> = p.records.into_iter().map(|(_, l)| l).collect();
        assert_eq!(
            got,
            vec![
                line(
                    1,
                    Some("TX-20261120-000000001"),
                    Decimal::new(15000, 2),
                    Decimal::new(150, 2),
                    Some("M000001"),
                    "CARD SETTLEMENT 123456",
                    RecordType::Settlement
                )?,
                line(
                    2,
                    None,
                    Decimal::new(-2050, 2),
                    Decimal::new(0, 2),
                    None,
                    "REFUND TX-20261120-000000009",
                    RecordType::Refund
                )?,
                line(
                    3,
                    Some("TX-20261120-000000003"),
                    Decimal::new(-10000, 2),
                    Decimal::new(0, 2),
                    Some("M000002"),
                    "PARTIAL 1/3 & more",
                    RecordType::Chargeback
                )?,
            ]
        );
        Ok(())
    }

    #[test]
    fn balances_that_do_not_add_up_fail_the_file() -> Result<()> {
        let text = String::from_utf8_lossy(&valid())
            .replace(":62F:C261120EUR1029,50", ":62F:C261120EUR1029,49");
        let reason = file_failure(&mapping("mt940", "EUR")?, text.as_bytes())?;
        assert!(reason.contains("balance"), "{reason}");
        assert!(reason.contains("message 2"), "{reason}");
        Ok(())
    }

    #[test]
    fn balances_in_another_currency_fail_the_file() -> Result<()> {
        let reason = file_failure(&mapping("mt940", "USD")?, &valid())?;
        assert!(reason.contains("currency"), "{reason}");
        Ok(())
    }

    #[test]
    fn unparseable_messages_fail_the_file() -> Result<()> {
        let m = mapping("mt940", "EUR")?;
        let text = String::from_utf8_lossy(&valid()).into_owned();
        for broken in [
            // Decimal point instead of comma.
            text.replace("C150,00NTRF", "C150.00NTRF"),
            // No closing balance in the second message.
            text.replace(":62F:C261120EUR1029,50\r\n", ""),
            // An entry date that does not exist (the crate would panic on it).
            text.replace("2611201120C150", "2611200230C150"),
            // Not MT940 at all.
            "statement_id,amount\nS1,10.00\n".to_string(),
        ] {
            let reason = file_failure(&m, broken.as_bytes())?;
            assert!(reason.contains("MT940"), "{reason}");
        }
        Ok(())
    }

    #[test]
    fn a_bad_entry_is_rejected_and_the_others_read() -> Result<()> {
        let bytes = crlf(&[
            ":20:bank_x-20261120",
            ":25:bank_x/EUR",
            ":28C:00324/00001",
            ":60F:D261120EUR5,00",
            ":61:2611201120C10,00NTRFNONREF//00000001",
            ":86:/EREF/TX&1/MID/M000001/TYPE/SETTLEMENT/CHGS/0,10/REMI/A",
            ":61:2611201120C20,00NTRFNONREF//00000002",
            ":86:/EREF/TX-20261120-000000002/MID/M000001/TYPE/SETTLEMENT/CHGS/0,10/REMI/B",
            ":61:2611201120C30,00NTRFNONREF//00000003",
            ":86:/EREF/TX-20261120-000000003/TYPE/PAYOUT/CHGS/0,10/REMI/C",
            ":61:2611201120C1,00NTRFNONREF//00000004",
            ":86:/EREF/TX-20261120-000000004/TYPE/FEE/CHGS/0,105/REMI/D",
            ":62F:C261120EUR56,00",
            "-",
        ]);
        let p = parse(&mapping("mt940", "EUR")?, &bytes)?;
        assert_eq!(p.records_in, 4);
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.records[0].0, 2);
        let reasons: Vec<(u64, RejectReason)> =
            p.rejects.iter().map(|r| (r.record, r.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (1, RejectReason::InvalidId),
                (3, RejectReason::InvalidEnum),
                (4, RejectReason::TooManyDecimals)
            ]
        );
        assert_eq!(
            p.rejects[0].raw,
            ":61:2611201120C10,00NTRFNONREF//00000001\n:86:/EREF/TX&1/MID/M000001/TYPE/SETTLEMENT/CHGS/0,10/REMI/A"
        );
        Ok(())
    }

    #[test]
    fn an_unstructured_86_is_the_reference_and_a_statement_without_entries_is_empty() -> Result<()>
    {
        let m = mapping("mt940", "EUR")?;
        let bytes = crlf(&[
            ":20:bank_x-20261120",
            ":25:bank_x/EUR",
            ":28C:1",
            ":60F:C261120EUR0,",
            ":61:261120C7,NMSCNONREF//00000001",
            ":86:Payout for week 47",
            ":62F:C261120EUR7,",
            ":20:bank_x-20261120",
            ":25:bank_x/EUR",
            ":28C:2",
            ":60F:C261120EUR7,",
            ":62F:C261120EUR7,",
        ]);
        let p = parse(&m, &bytes)?;
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let (_, l) = &p.records[0];
        assert_eq!(l.reference, "Payout for week 47");
        assert_eq!(l.amount_posted, Decimal::new(700, 2));
        assert_eq!(l.transaction_id, None);
        assert_eq!(l.record_type, None);
        assert_eq!(p.records.len(), 1);
        Ok(())
    }

    #[test]
    fn empty_input_has_no_records() -> Result<()> {
        let m = mapping("mt940", "EUR")?;
        for empty in [&b""[..], b"\r\n  \n"] {
            let p = parse(&m, empty)?;
            assert_eq!((p.records_in, p.records.len()), (0, 0));
        }
        Ok(())
    }

    #[test]
    fn characters_outside_the_swift_set_survive_or_fail_the_file() -> Result<()> {
        let m = mapping("mt940", "EUR")?;
        let text = String::from_utf8_lossy(&valid()).replace("CARD SETTLEMENT", "Café_Ä<é>");
        let p = parse(&m, text.as_bytes())?;
        assert_eq!(p.records[0].1.reference, "Café_Ä<é> 123456");
        let too_many = text.replace("REFUND TX", "ÖÜß!*=;€REFUND TX");
        let reason = file_failure(&m, too_many.as_bytes())?;
        assert!(reason.contains("SWIFT character set"), "{reason}");
        Ok(())
    }

    #[test]
    fn entry_dates_take_the_nearest_year() -> Result<()> {
        let d = |s: &str| BusinessDate::parse(s).map(BusinessDate::date);
        assert_eq!(
            booking_date(d("2026-12-31")?, Some(d("2026-01-02")?)),
            d("2027-01-02")?
        );
        assert_eq!(
            booking_date(d("2027-01-02")?, Some(d("2027-12-31")?)),
            d("2026-12-31")?
        );
        assert_eq!(
            booking_date(d("2026-11-20")?, Some(d("2026-11-19")?)),
            d("2026-11-19")?
        );
        assert_eq!(booking_date(d("2026-11-20")?, None), d("2026-11-20")?);
        Ok(())
    }

    #[test]
    fn subfields_split_on_known_markers_and_remi_runs_to_the_end() {
        assert_eq!(
            subfields("/EREF/A-1/MID/M1/REMI/x/ABC/y"),
            Some(vec![("EREF", "A-1"), ("MID", "M1"), ("REMI", "x/ABC/y")])
        );
        assert_eq!(
            subfields("/EREF/TX/1/CHGS/0,1"),
            Some(vec![("EREF", "TX/1"), ("CHGS", "0,1")])
        );
        assert_eq!(subfields("free text /EREF/x"), None);
    }
}
