//! The MT940 reader on hand-written files: canonical values, file failures, tolerance.

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
        // A mark that is neither credit nor debit.
        text.replace("1120C150,00", "1120X150,00"),
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
fn an_unstructured_86_is_the_reference_and_a_statement_without_entries_is_empty() -> Result<()> {
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
fn characters_outside_the_swift_set_survive() -> Result<()> {
    let m = mapping("mt940", "EUR")?;
    let text = String::from_utf8_lossy(&valid())
        .replace("CARD SETTLEMENT", "Café_Ä<é>")
        .replace("REFUND TX", "ÖÜß!*=;€REFUND TX");
    let p = parse(&m, text.as_bytes())?;
    assert_eq!(p.records[0].1.reference, "Café_Ä<é> 123456");
    assert_eq!(
        p.records[1].1.reference,
        "ÖÜß!*=;€REFUND TX-20261120-000000009"
    );
    Ok(())
}

#[test]
fn entry_dates_take_the_nearest_year() -> Result<()> {
    let d = |s: &str| BusinessDate::parse(s).map(BusinessDate::date);
    assert_eq!(booking_date(d("2026-12-31")?, 1, 2), Some(d("2027-01-02")?));
    assert_eq!(
        booking_date(d("2027-01-02")?, 12, 31),
        Some(d("2026-12-31")?)
    );
    assert_eq!(
        booking_date(d("2026-11-20")?, 11, 19),
        Some(d("2026-11-19")?)
    );
    assert_eq!(booking_date(d("2026-11-20")?, 2, 30), None);
    // 29 February exists only in the leap year next to the value date.
    assert_eq!(
        booking_date(d("2028-03-01")?, 2, 29),
        Some(d("2028-02-29")?)
    );
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

/// What real banks send, all in one file: a SWIFT header block before each message, `/`,
/// spaces and `Ü` in `:20:`, a `:28C:` without sequence, entries without a bank reference
/// (none, `NONREF//` with nothing after it), a customer reference of 18 characters, a blank
/// entry date, a 7-line `:86:`, a German-style `:86:`, an unknown `:NS:` tag, an entry with an
/// impossible date, a bank banner between messages and a `-}` + ETX trailer.
fn bank_file() -> Vec<u8> {
    crlf(&[
        "{1:F01BANKDEFFAXXX0000000000}{2:I940BANKDEFFXXXXN}{4:",
        ":20:STMT 2026/11 Ü",
        ":25:DE89370400440532013000",
        ":28C:324",
        ":60F:C261119EUR1000,00",
        ":61:2611201120C150,00NTRFNONREF//BANKREF 1",
        ":86:/EREF/NOTPROVIDED/REMI/line one",
        "line two",
        "line three",
        "line four",
        "line five",
        "line six",
        "line seven",
        ":61:261120CR20,00NMSCNONREF",
        ":86:Unstructured payment",
        ":61:261120    D5,25NCHGCUSTOMERREF1234567//",
        ":NS:22 some bank's own data",
        ":61:2611311131C1,00NTRFNONREF//BADDATE",
        ":86:166?00GUTSCHRIFT?20SVWZ+Rechnung?21 4711?30DEUTDEFF?32Max Mustermann",
        ":62F:C261120EUR1165,75",
        ":64:C261120EUR1165,75",
        "-}",
        "BANK XYZ STATEMENT SERVICE PAGE 2",
        "{1:F01BANKDEFFAXXX0000000000}{2:I940BANKDEFFXXXXN}{4:",
        ":20:STMT 2026/11 Ü",
        ":28C:325/1",
        ":60F:C261120EUR1165,75",
        ":61:261120D65,75NTRFNONREF//",
        ":86:last entry",
        ":62F:C261120EUR1100,00",
        "-}\u{3}",
    ])
}

#[test]
fn real_bank_quirks_are_read_and_an_impossible_date_rejects_only_its_entry() -> Result<()> {
    let p = parse(&mapping("mt940", "EUR")?, &bank_file())?;
    assert_eq!(p.records_in, 5);
    let ids: Vec<&str> = p
        .records
        .iter()
        .map(|(_, l)| l.statement_id.as_str())
        .collect();
    let id = |parts: &[&str]| super::statement_id(parts);
    assert_eq!(
        ids,
        vec![
            id(&["STMT 2026/11 Ü", "BANKREF 1"]),
            id(&["STMT 2026/11 Ü", "324", "2"]),
            id(&["STMT 2026/11 Ü", "324", "3"]),
            id(&["STMT 2026/11 Ü", "325/1", "1"]),
        ]
    );
    let amounts: Vec<Decimal> = p.records.iter().map(|(_, l)| l.amount_posted).collect();
    assert_eq!(
        amounts,
        vec![
            Decimal::new(15000, 2),
            Decimal::new(2000, 2),
            Decimal::new(-525, 2),
            Decimal::new(-6575, 2)
        ]
    );
    assert_eq!(
        p.records[0].1.reference,
        "line oneline twoline threeline fourline fiveline sixline seven"
    );
    assert_eq!(p.records[1].1.reference, "Unstructured payment");
    assert_eq!(p.records[3].1.reference, "last entry");
    assert_eq!(p.rejects.len(), 1);
    // The German-style entry: its date (31 November) does not exist.
    assert_eq!(p.rejects[0].record, 4);
    assert_eq!(p.rejects[0].reason, RejectReason::InvalidDate);
    assert!(p.rejects[0].raw.starts_with(":61:2611311131C1,00"));
    assert!(
        p.rejects[0].raw.ends_with("?32Max Mustermann"),
        "{}",
        p.rejects[0].raw
    );
    Ok(())
}

#[test]
fn german_purpose_and_latin_1_files() -> Result<()> {
    let text = String::from_utf8_lossy(&bank_file())
        .replace("2611311131", "2611201120")
        .replace("Ü", "\u{fc}");
    let p = parse(&mapping("mt940", "EUR")?, text.as_bytes())?;
    assert_eq!(p.records[3].1.reference, "SVWZ+Rechnung 4711");
    // The same file in Latin-1: refused as UTF-8, read when the mapping declares it.
    let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    let reason = file_failure(&mapping("mt940", "EUR")?, &latin1)?;
    assert!(reason.contains("encoding"), "{reason}");
    let q = parse(
        &crate::formats::tests::mapping_with("mt940", "EUR", r#", "encoding": "latin-1""#)?,
        &latin1,
    )?;
    assert_eq!(q.records, p.records);
    Ok(())
}

#[test]
fn lines_that_are_not_fields_are_classified() {
    assert_eq!(classify(":NS:22x"), Line::Field("NS", "22x"));
    assert_eq!(classify(":28C:1/2"), Line::Field("28C", "1/2"));
    assert_eq!(classify("\u{1}{1:F01}{4::20:REF"), Line::Field("20", "REF"));
    for end in ["-", "-}", "-}\u{3}", " - "] {
        assert_eq!(classify(end), Line::End, "{end:?}");
    }
    for frame in ["", "}", "\u{3}", "{1:F01XXX}{2:I940}{4:"] {
        assert_eq!(classify(frame), Line::Frame, "{frame:?}");
    }
    assert_eq!(classify("-more text"), Line::Text("-more text"));
    assert_eq!(classify("STATEMENT PAGE 2"), Line::Text("STATEMENT PAGE 2"));
}
