//! SWIFT MT940 and ISO 20022 camt.053 statement files: one entry per statement line, framed
//! per file with balances that add up (the readers in `recon_shared::formats` check them).
//!
//! Balances are deterministic: a bank's opening balance is a fixed function of the bank, and
//! each message (MT940) or page (camt.053) opens with the previous one's closing balance.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use recon_shared::formats::NOT_PROVIDED;
use recon_shared::ids::BusinessDate;
use recon_shared::money::Currency;
use recon_shared::records::RecordType;

use super::day::Line;
use super::text::{Rec, fmt_minor};

/// Entries per MT940 message: a day's statement runs over several messages, `:60F:`/`:62M:`
/// for the first, `:60M:`/`:62F:` for the last.
pub const MT940_ENTRIES_PER_MESSAGE: usize = 200;

/// The camt.053 version written.
pub const CAMT053_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";

/// Longest `:86:` line (SWIFT `6*65x`).
const MT940_LINE: usize = 65;

/// The account one bank's statement files report on.
pub struct Account<'a> {
    pub bank_id: &'a str,
    pub currency: Currency,
    pub date: BusinessDate,
    /// Balance before the day's first entry, minor units.
    pub opening_minor: i64,
    /// Creation time written into camt.053 headers (the delivery's `generated_at`).
    pub created: DateTime<Utc>,
}

impl Account<'_> {
    fn yyyymmdd(&self) -> String {
        let d = self.date.date();
        format!("{:04}{:02}{:02}", d.year(), d.month(), d.day())
    }

    fn id(&self) -> String {
        format!("{}/{}", self.bank_id, self.currency)
    }
}

/// Opening balance of a bank's account: 250 000 major units per bank number.
pub fn opening_balance_minor(bank: usize, currency: Currency) -> i64 {
    (bank as i64 + 1) * 250_000 * 10i64.pow(currency.exponent())
}

/// An MT940 amount: decimal comma, always present (`1512,` for zero-decimal currencies).
fn swift_amount(out: &mut String, minor: i64, exponent: u32) {
    fmt_minor(out, minor, exponent, ',');
    if exponent == 0 {
        out.push(',');
    }
}

/// SWIFT transaction type code of a record type (`N` + code in `:61:`).
fn type_code(t: RecordType) -> &'static str {
    match t {
        RecordType::Settlement | RecordType::Refund => "TRF",
        RecordType::Chargeback => "RTI",
        RecordType::Fee => "CHG",
        RecordType::Adjustment => "MSC",
    }
}

/// `:86:` wrapped at 65 characters (the reader joins the lines without a separator). No line
/// starts with `:` or `-`, which SWIFT reserves, and, where the text allows, no break falls
/// next to a space, which transfers may trim.
fn push_86(out: &mut String, info: &str) {
    out.push_str(":86:");
    let mut rest = info;
    while rest.len() > MT940_LINE {
        let last = |ok: &dyn Fn(usize) -> bool| {
            (1..=MT940_LINE)
                .rev()
                .find(|c| rest.is_char_boundary(*c) && ok(*c))
        };
        let cut = last(&|c| !rest[c..].starts_with([':', '-', ' ']) && !rest[..c].ends_with(' '))
            .or_else(|| last(&|c| !rest[c..].starts_with([':', '-'])))
            .or_else(|| last(&|_| true))
            .unwrap_or(rest.len());
        out.push_str(&rest[..cut]);
        out.push_str("\r\n");
        rest = &rest[cut..];
    }
    out.push_str(rest);
    out.push_str("\r\n");
}

/// One line as an MT940 `:61:` entry with its structured `:86:`.
pub fn mt940_entry(out: &mut String, l: &Line, merchant: Option<&str>, currency: Currency) {
    let d = l.posting_date.date();
    let mark = match (l.amount_minor < 0, l.record_type) {
        (true, RecordType::Chargeback) => "RC",
        (true, _) => "D",
        (false, _) => "C",
    };
    let _ = write!(
        out,
        ":61:{:02}{:02}{:02}{:02}{:02}{mark}",
        d.year() % 100,
        d.month(),
        d.day(),
        d.month(),
        d.day()
    );
    swift_amount(out, l.amount_minor.abs(), currency.exponent());
    let _ = write!(out, "N{}NONREF//{:08}\r\n", type_code(l.record_type), l.seq);
    let mut info = String::with_capacity(160);
    info.push_str("/EREF/");
    info.push_str(l.txn_ref.as_deref().unwrap_or(NOT_PROVIDED));
    if let Some(m) = merchant {
        info.push_str("/MID/");
        info.push_str(m);
    }
    info.push_str("/TYPE/");
    info.push_str(l.record_type.as_str());
    info.push_str("/CHGS/");
    swift_amount(&mut info, l.fee_minor, currency.exponent());
    info.push_str("/REMI/");
    info.push_str(&l.reference);
    push_86(out, &info);
}

fn mt940_balance(out: &mut String, tag: &str, minor: i64, acct: &Account<'_>) {
    let d = acct.date.date();
    let _ = write!(
        out,
        ":{tag}:{}{:02}{:02}{:02}{}",
        if minor < 0 { 'D' } else { 'C' },
        d.year() % 100,
        d.month(),
        d.day(),
        acct.currency
    );
    swift_amount(out, minor.abs(), acct.currency.exponent());
    out.push_str("\r\n");
}

/// The MT940 files of one delivery: each file's records in messages of
/// [`MT940_ENTRIES_PER_MESSAGE`], numbered on across files, balances carried forward.
pub fn mt940_files(acct: &Account<'_>, files: &[&[Rec]]) -> Vec<Vec<u8>> {
    let statement = format!("{}-{}", acct.bank_id, acct.yyyymmdd());
    let account = acct.id();
    let number = acct.date.date().ordinal();
    let messages: usize = files
        .iter()
        .map(|f| f.len().div_ceil(MT940_ENTRIES_PER_MESSAGE).max(1))
        .sum();
    let mut seq = 0usize;
    let mut balance = acct.opening_minor;
    files
        .iter()
        .map(|recs| {
            let size = recs.iter().map(|r| r.text.len()).sum::<usize>();
            let mut out = String::with_capacity(size + 160 * (messages + 1));
            let parts: Vec<&[Rec]> = if recs.is_empty() {
                vec![&[]]
            } else {
                recs.chunks(MT940_ENTRIES_PER_MESSAGE).collect()
            };
            for part in parts {
                seq += 1;
                let _ = write!(
                    out,
                    ":20:{statement}\r\n:25:{account}\r\n:28C:{number:05}/{seq:05}\r\n"
                );
                let open = if seq == 1 { "60F" } else { "60M" };
                mt940_balance(&mut out, open, balance, acct);
                for r in part {
                    out.push_str(&r.text);
                    balance += r.amount_minor;
                }
                let close = if seq == messages { "62F" } else { "62M" };
                mt940_balance(&mut out, close, balance, acct);
                out.push_str("-\r\n");
            }
            out.into_bytes()
        })
        .collect()
}

/// XML character data: `&`, `<` and `>` escaped.
fn xml_text(out: &mut String, s: &str) {
    if !s.contains(['&', '<', '>']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// One line as a camt.053 `<Ntry>`; `merchant` is (id, name).
pub fn camt_entry(out: &mut String, l: &Line, merchant: Option<(&str, &str)>, currency: Currency) {
    let date = l.posting_date;
    let _ = write!(
        out,
        "      <Ntry>\n        <NtryRef>{:08}</NtryRef>\n        <Amt Ccy=\"{currency}\">",
        l.seq
    );
    fmt_minor(out, l.amount_minor.abs(), currency.exponent(), '.');
    let _ = write!(
        out,
        "</Amt>\n        <CdtDbtInd>{}</CdtDbtInd>\n",
        if l.amount_minor < 0 { "DBIT" } else { "CRDT" }
    );
    if l.record_type == RecordType::Chargeback {
        out.push_str("        <RvslInd>true</RvslInd>\n");
    }
    let _ = write!(
        out,
        "        <Sts><Cd>BOOK</Cd></Sts>\n        <BookgDt><Dt>{date}</Dt></BookgDt>\n        <ValDt><Dt>{date}</Dt></ValDt>\n        <AcctSvcrRef>"
    );
    xml_text(out, &l.statement_id);
    out.push_str("</AcctSvcrRef>\n        <BkTxCd><Prtry><Cd>");
    out.push_str(l.record_type.as_str());
    out.push_str(
        "</Cd></Prtry></BkTxCd>\n        <NtryDtls>\n          <TxDtls>\n            <Refs><EndToEndId>",
    );
    xml_text(out, l.txn_ref.as_deref().unwrap_or(NOT_PROVIDED));
    let _ = write!(
        out,
        "</EndToEndId></Refs>\n            <Chrgs><Rcrd><Amt Ccy=\"{currency}\">"
    );
    fmt_minor(out, l.fee_minor, currency.exponent(), '.');
    out.push_str("</Amt></Rcrd></Chrgs>\n");
    if let Some((id, name)) = merchant {
        out.push_str("            <RltdPties><Cdtr><Pty><Nm>");
        xml_text(out, name);
        out.push_str("</Nm><Id><OrgId><Othr><Id>");
        xml_text(out, id);
        out.push_str("</Id></Othr></OrgId></Id></Pty></Cdtr></RltdPties>\n");
    }
    out.push_str("            <RmtInf><Ustrd>");
    xml_text(out, &l.reference);
    out.push_str("</Ustrd></RmtInf>\n          </TxDtls>\n        </NtryDtls>\n      </Ntry>\n");
}

fn camt_balance(out: &mut String, code: &str, minor: i64, acct: &Account<'_>) {
    let _ = write!(
        out,
        "      <Bal>\n        <Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>\n        <Amt Ccy=\"{}\">",
        acct.currency
    );
    fmt_minor(out, minor.abs(), acct.currency.exponent(), '.');
    let _ = write!(
        out,
        "</Amt>\n        <CdtDbtInd>{}</CdtDbtInd>\n        <Dt><Dt>{}</Dt></Dt>\n      </Bal>\n",
        if minor < 0 { "DBIT" } else { "CRDT" },
        acct.date
    );
}

/// The camt.053 files of one delivery: one document per file, its statement a page of the
/// day's statement, balances carried forward.
pub fn camt_files(acct: &Account<'_>, files: &[&[Rec]]) -> Vec<Vec<u8>> {
    let day = acct.yyyymmdd();
    let created = acct.created.to_rfc3339_opts(SecondsFormat::Secs, true);
    let account = acct.id();
    let mut balance = acct.opening_minor;
    files
        .iter()
        .enumerate()
        .map(|(i, recs)| {
            let page = i + 1;
            let closing = balance + recs.iter().map(|r| r.amount_minor).sum::<i64>();
            let size = recs.iter().map(|r| r.text.len()).sum::<usize>();
            let mut out = String::with_capacity(size + 2048);
            let _ = write!(
                out,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <Document xmlns=\"{CAMT053_NAMESPACE}\">\n  <BkToCstmrStmt>\n    <GrpHdr>\n      \
                 <MsgId>{bank}-{day}-{page:04}</MsgId>\n      <CreDtTm>{created}</CreDtTm>\n    \
                 </GrpHdr>\n    <Stmt>\n      <Id>{bank}-{day}</Id>\n      <StmtPgntn><PgNb>{page}</PgNb>\
                 <LastPgInd>{last}</LastPgInd></StmtPgntn>\n      <CreDtTm>{created}</CreDtTm>\n      \
                 <Acct>\n        <Id><Othr><Id>{account}</Id></Othr></Id>\n        <Ccy>{cur}</Ccy>\n      \
                 </Acct>\n",
                bank = acct.bank_id,
                last = page == files.len(),
                cur = acct.currency,
            );
            camt_balance(&mut out, "OPBD", balance, acct);
            camt_balance(&mut out, "CLBD", closing, acct);
            for r in *recs {
                out.push_str(&r.text);
            }
            out.push_str("    </Stmt>\n  </BkToCstmrStmt>\n</Document>\n");
            balance = closing;
            out.into_bytes()
        })
        .collect()
}

/// The bank's own transaction codes [`camt_bank_codes`] writes, and the record types a source
/// mapping's `transaction_codes` gives them.
pub const BANK_CODES: &[(&str, &str)] = &[
    ("SETTLEMENT", "NTRF+166"),
    ("REFUND", "NTRF+159"),
    ("CHARGEBACK", "NRTI+109"),
    ("FEE", "NCHG+805"),
    ("ADJUSTMENT", "NMSC+835"),
];

/// An MT940 file as real banks write it (opt-in; the default files stay as they are): a SWIFT
/// header block before each message, a banner line between messages, `-}` and ETX after the
/// last, an unknown `:NS:` field after each entry, no entry date where it equals the value
/// date, an 18-character customer reference, and `:86:` wrapped at 24 characters (more than
/// six lines). Every value read from it is the one read from `file`.
pub fn mt940_bank_quirks(file: &[u8]) -> Vec<u8> {
    const WIDTH: usize = 24;
    let text = String::from_utf8_lossy(file);
    let mut out = String::with_capacity(text.len() * 2);
    let mut info: Option<String> = None;
    let flush = |out: &mut String, info: &mut Option<String>| {
        let Some(t) = info.take() else { return };
        out.push_str(":86:");
        let mut rest = t.as_str();
        while rest.len() > WIDTH {
            let ok = |c: usize| {
                rest.is_char_boundary(c)
                    && !rest[c..].starts_with([':', '-', '{', ' '])
                    && !rest[..c].ends_with(' ')
            };
            let cut = (1..=WIDTH).rev().find(|c| ok(*c)).unwrap_or(rest.len());
            out.push_str(&rest[..cut]);
            out.push_str("\r\n");
            rest = &rest[cut..];
        }
        out.push_str(rest);
        out.push_str("\r\n:NS:22QUIRK\r\n");
    };
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    let messages = lines.iter().filter(|l| **l == "-").count();
    let mut ended = 0;
    for line in lines {
        if let Some(t) = info.as_mut()
            && !line.starts_with(':')
            && line != "-"
        {
            t.push_str(line);
            continue;
        }
        flush(&mut out, &mut info);
        if let Some(v) = line.strip_prefix(":86:") {
            info = Some(v.to_string());
            continue;
        }
        if line.starts_with(":20:") {
            out.push_str("{1:F01BANKDEFFAXXX0000000000}{2:I940BANKDEFFXXXXN}{4:\r\n");
        }
        if line == "-" {
            ended += 1;
            if ended == messages {
                out.push_str("-}\u{3}");
            } else {
                out.push_str("-}\r\nBANK STATEMENT SERVICE - CONTINUED\r\n");
            }
            continue;
        }
        match line.strip_prefix(":61:") {
            Some(v) if v.get(2..6) == v.get(6..10) => {
                let rest = v.get(10..).unwrap_or_default();
                out.push_str(":61:");
                out.push_str(&v[..6]);
                out.push_str(&rest.replacen("NONREF//", "KUNDENREFERENZ0001//", 1));
            }
            _ => out.push_str(line),
        }
        out.push_str("\r\n");
    }
    flush(&mut out, &mut info);
    out.into_bytes()
}

/// A camt.053 file with the bank's own transaction codes ([`BANK_CODES`]) in `BkTxCd/Prtry/Cd`.
pub fn camt_bank_codes(file: &[u8]) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(file).into_owned();
    for (kind, code) in BANK_CODES {
        text = text.replace(
            &format!("<Prtry><Cd>{kind}</Cd>"),
            &format!("<Prtry><Cd>{code}</Cd>"),
        );
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use recon_shared::money::FxTable;
    use recon_shared::source::{ParseContext, SourceMapping, parse_statements};
    use recon_shared::{Error, Result};

    use super::*;
    use crate::day::Case;

    fn line(seq: u32, amount_minor: i64, record_type: RecordType) -> Result<Line> {
        Ok(Line {
            bank: 0,
            business_date: BusinessDate::parse("2026-11-20")?,
            posting_date: BusinessDate::parse("2026-11-20")?,
            seq,
            statement_id: format!("bank_07-20261120-{seq:08}"),
            txn_ref: (!seq.is_multiple_of(3)).then(|| format!("TX-20261120-{seq:09}")),
            merchant: None,
            amount_minor,
            fee_minor: i64::from(seq % 7),
            record_type,
            reference: format!("INV {seq} & <{}>", seq * 7),
            original: None,
            dup_record: false,
            case: Case::Exact,
            owners: Vec::new(),
            truth: None,
            posted_secs: 0,
        })
    }

    /// Between the `>` after `<Cd>{code}</Cd>…<Amt …` and the next `<`.
    fn camt_balance_amount<'a>(doc: &'a str, code: &str) -> &'a str {
        let at = doc.find(&format!("<Cd>{code}</Cd>")).unwrap_or_default();
        let amt = at + doc[at..].find("<Amt").unwrap_or_default();
        let start = amt + doc[amt..].find('>').unwrap_or_default() + 1;
        let end = start + doc[start..].find('<').unwrap_or_default();
        &doc[start..end]
    }

    /// Files of one delivery each balance, carry the balance on, and read back entry by entry.
    #[test]
    fn multi_file_deliveries_carry_balances_and_parse_back() -> Result<()> {
        for (format, code) in [
            ("mt940", "EUR"),
            ("mt940", "JPY"),
            ("camt053", "JPY"),
            ("camt053", "CHF"),
        ] {
            let currency = Currency::new(code)?;
            let mut recs = Vec::new();
            for seq in 1..=460u32 {
                let (amount, kind) = match seq % 5 {
                    0 => (-(i64::from(seq) * 31), RecordType::Chargeback),
                    1 => (-(i64::from(seq) * 13), RecordType::Refund),
                    _ => (i64::from(seq) * 1013, RecordType::Settlement),
                };
                let l = line(seq, amount, kind)?;
                let mut text = String::new();
                if format == "mt940" {
                    mt940_entry(&mut text, &l, Some("M000001"), currency);
                } else {
                    camt_entry(&mut text, &l, Some(("M000001", "Shop & Co")), currency);
                }
                recs.push(Rec {
                    text,
                    amount_minor: amount,
                });
            }
            let chunks: Vec<&[Rec]> = vec![&recs[..450], &recs[450..], &[]];
            let acct = Account {
                bank_id: "bank_07",
                currency,
                date: BusinessDate::parse("2026-11-20")?,
                opening_minor: -5_000,
                created: DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default(),
            };
            let files = if format == "mt940" {
                mt940_files(&acct, &chunks)
            } else {
                camt_files(&acct, &chunks)
            };
            let mapping = SourceMapping::from_json(
                format!(
                    r#"{{"source_id": "bank_07", "kind": "statement", "format": "{format}",
                        "bank_id": "bank_07", "settlement_currency": "{code}", "columns": {{}}}}"#
                )
                .as_bytes(),
            )?;
            let codes: serde_json::Map<String, serde_json::Value> = BANK_CODES
                .iter()
                .map(|(kind, code)| (code.to_string(), serde_json::Value::from(*kind)))
                .collect();
            let quirk_mapping = SourceMapping::from_json(
                format!(
                    r#"{{"source_id": "bank_07", "kind": "statement", "format": "{format}",
                        "bank_id": "bank_07", "settlement_currency": "{code}", "columns": {{}},
                        "encoding": "windows-1252", "transaction_codes": {}}}"#,
                    serde_json::Value::Object(codes)
                )
                .as_bytes(),
            )?;
            let texts: Vec<String> = files
                .iter()
                .map(|f| String::from_utf8(f.clone()).map_err(|e| Error::Invariant(e.to_string())))
                .collect::<Result<_>>()?;
            for (text, chunk) in texts.iter().zip(&chunks) {
                let ctx = ParseContext {
                    mapping: &mapping,
                    fx: &FxTable::default(),
                    business_date: acct.date,
                    file: "f",
                };
                let p = parse_statements(&ctx, text.as_bytes())?;
                assert!(
                    p.rejects.is_empty(),
                    "{format} {code}: {:?}",
                    p.rejects.first()
                );
                assert_eq!(p.records.len(), chunk.len());
                for ((_, parsed), r) in p.records.iter().zip(chunk.iter()) {
                    assert_eq!(currency.to_minor(parsed.amount_posted)?, r.amount_minor);
                }
                // The same file as real banks write it reads to the same lines.
                let quirked = if format == "mt940" {
                    mt940_bank_quirks(text.as_bytes())
                } else {
                    camt_bank_codes(text.as_bytes())
                };
                if !chunk.is_empty() {
                    assert_ne!(quirked, text.as_bytes());
                }
                let q = parse_statements(
                    &ParseContext {
                        mapping: &quirk_mapping,
                        ..ctx
                    },
                    &quirked,
                )?;
                assert_eq!(q, p, "{format} {code}");
            }
            // The balance runs on from file to file; only the day's first and last are final.
            for (prev, next) in texts.iter().zip(&texts[1..]) {
                if format == "mt940" {
                    let closing = prev.lines().rev().find(|l| l.starts_with(":62"));
                    let opening = next.lines().find(|l| l.starts_with(":60"));
                    assert_eq!(closing.map(|l| &l[5..]), opening.map(|l| &l[5..]));
                } else {
                    assert_eq!(
                        camt_balance_amount(prev, "CLBD"),
                        camt_balance_amount(next, "OPBD")
                    );
                }
            }
            if format == "mt940" {
                let all = texts.concat();
                assert_eq!(all.matches(":60F:").count(), 1);
                assert_eq!(all.matches(":62F:").count(), 1);
                assert!(
                    texts[2].contains(":62F:") && texts[0].starts_with(":20:bank_07-20261120\r\n")
                );
                // 450 entries in three messages, 10 in one, and an empty file still holds one.
                assert_eq!(all.matches(":20:").count(), 5);
            } else {
                assert!(texts[2].contains("<LastPgInd>true</LastPgInd>"));
                assert!(texts[0].contains("<LastPgInd>false</LastPgInd>"));
            }
        }
        Ok(())
    }

    fn wrapped(info: &str) -> Vec<String> {
        let mut out = String::new();
        push_86(&mut out, info);
        let body = out.strip_suffix("\r\n").unwrap_or_default();
        let lines: Vec<String> = body.split("\r\n").map(str::to_string).collect();
        assert_eq!(lines.concat().strip_prefix(":86:"), Some(info));
        assert!(lines[0].len() <= MT940_LINE + 4);
        for l in &lines[1..] {
            assert!(l.len() <= MT940_LINE && !l.starts_with([':', '-']), "{l}");
        }
        lines
    }

    #[test]
    fn long_86_fields_wrap_without_a_line_starting_with_a_colon_or_dash() {
        let lines = wrapped(&format!(
            "/EREF/{}:X/REMI/{}END",
            "A".repeat(59),
            "CARD - SETTLEMENT ".repeat(12)
        ));
        assert!(lines.len() > 3);
        for l in &lines {
            assert!(!l.starts_with(' ') && !l.ends_with(' '), "{l:?}");
        }
        // Text without a break that avoids every space still keeps the SWIFT rule.
        assert!(wrapped(&format!("/REMI/{}", "B- ".repeat(60))).len() > 2);
        assert_eq!(wrapped("/REMI/short").len(), 1);
    }

    #[test]
    fn xml_text_is_escaped() {
        let mut out = String::new();
        xml_text(&mut out, "INV 1 & 2, <ORDER>");
        assert_eq!(out, "INV 1 &amp; 2, &lt;ORDER&gt;");
    }

    #[test]
    fn zero_decimal_amounts_keep_their_comma() {
        let mut out = String::new();
        swift_amount(&mut out, 1512, 0);
        swift_amount(&mut out, 1512, 2);
        assert_eq!(out, "1512,15,12");
    }
}
