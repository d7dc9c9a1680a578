//! Money exact from every input: values of 16 to 20 significant digits in every numeric
//! position of every format — CSV, JSON lines (numbers and strings), MT940, camt.053, the FX
//! table, Kafka amounts and fraud scores — are either kept exactly or refused with a precise
//! reason, never changed. (A read through `f64` turns `99999999999999.99` into
//! `100000000000000.0` and `90071992547409.93` into `90071992547409.94`.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use recon_shared::ids::BusinessDate;
use recon_shared::money::{Currency, FxTable};
use recon_shared::pii::PiiKey;
use recon_shared::records::StatementLine;
use recon_shared::source::{ParseContext, RejectReason, SourceMapping, parse_statements};
use recon_shared::stream::{Fact, KafkaRecordIn, TRANSACTIONS_TOPIC, decode};
use recon_shared::{Error, Result};
use rust_decimal::Decimal;

/// Amounts of 16 to 20 significant digits, and what a 2-place currency must make of them.
const AMOUNTS: &[(&str, Want)] = &[
    ("99999999999999.99", Want::Exact),
    ("90071992547409.93", Want::Exact),
    ("99999999999999.990000", Want::Exact),
    ("1.0000000000000000000", Want::Exact),
    (
        "12345678901234.567",
        Want::Refused(RejectReason::TooManyDecimals),
    ),
    (
        "0.1000000000000000001",
        Want::Refused(RejectReason::TooManyDecimals),
    ),
    (
        "1234567890123456.7",
        Want::Refused(RejectReason::AmountOverflow),
    ),
    (
        "12345678901234567890",
        Want::Refused(RejectReason::AmountOverflow),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Exact,
    Refused(RejectReason),
}

/// What became of one value: kept (as this decimal), refused as a record, or the file refused.
#[derive(Debug)]
enum Got {
    Kept(Decimal),
    Rejected(RejectReason, String),
    FileError(String),
}

fn exact(text: &str) -> Result<Decimal> {
    Decimal::from_str_exact(text).map_err(|e| Error::Invariant(format!("{text}: {e}")))
}

/// Kept means kept exactly; refused means refused with the expected reason (or, for the fixed
/// layouts, the file with a reason naming the amount).
fn check(place: &str, text: &str, want: Want, got: Got) -> Result<()> {
    let ok = match (&got, want) {
        (Got::Kept(d), Want::Exact) => *d == exact(text)?,
        (Got::Rejected(r, detail), Want::Refused(w)) => *r == w && !detail.is_empty(),
        (Got::FileError(reason), Want::Refused(_)) => reason.contains("amount"),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Invariant(format!(
            "{place}: `{text}` gave {got:?}, expected {want:?}"
        )))
    }
}

fn mapping(json: &str) -> Result<SourceMapping> {
    SourceMapping::from_json(json.as_bytes())
}

fn statements(m: &SourceMapping, fx: &FxTable, bytes: &[u8]) -> Result<Vec<Got>> {
    statements_with(m, fx, bytes, |l| {
        l.original_amount.unwrap_or(l.amount_posted)
    })
}

/// Per record in file order: the value `pick` takes from a kept line, or the reject.
fn statements_with(
    m: &SourceMapping,
    fx: &FxTable,
    bytes: &[u8],
    pick: fn(&StatementLine) -> Decimal,
) -> Result<Vec<Got>> {
    let ctx = ParseContext {
        mapping: m,
        fx,
        business_date: BusinessDate::parse("2026-11-20")?,
        file: "f",
    };
    let p = match parse_statements(&ctx, bytes) {
        Ok(p) => p,
        Err(Error::InvalidFile { reason, .. }) => return Ok(vec![Got::FileError(reason)]),
        Err(e) => return Err(e),
    };
    let mut out: Vec<(u64, Got)> = p
        .records
        .into_iter()
        .map(|(n, l)| (n, Got::Kept(pick(&l))))
        .collect();
    out.extend(
        p.rejects
            .into_iter()
            .map(|r| (r.record, Got::Rejected(r.reason, r.detail))),
    );
    out.sort_by_key(|(n, _)| *n);
    Ok(out.into_iter().map(|(_, g)| g).collect())
}

fn only(mut v: Vec<Got>) -> Result<Got> {
    match (v.pop(), v.is_empty()) {
        (Some(g), true) => Ok(g),
        _ => Err(Error::Invariant("expected one record".into())),
    }
}

const CSV: &str = r#"{"source_id": "b", "kind": "statement", "format": "csv", "bank_id": "b",
    "default_currency": "USD", "settlement_currency": "USD",
    "columns": {"statement_id": "id", "posting_date": "date", "amount_posted": "amount", "fee_charged": "fee"}}"#;

#[test]
fn csv_amounts_and_fees_are_exact_or_refused() -> Result<()> {
    let m = mapping(CSV)?;
    for (v, want) in AMOUNTS {
        let text =
            format!("id,date,amount,fee\nS1,2026-11-20,\"{v}\",0.10\nS2,2026-11-20,1.00,\"{v}\"\n");
        let fx = FxTable::default();
        let mut amounts = statements(&m, &fx, text.as_bytes())?.into_iter();
        check(
            "csv amount",
            v,
            *want,
            amounts.next().unwrap_or(Got::FileError("none".into())),
        )?;
        let mut fees = statements_with(&m, &fx, text.as_bytes(), |l| l.fee_charged)?.into_iter();
        check(
            "csv fee",
            v,
            *want,
            fees.nth(1).unwrap_or(Got::FileError("none".into())),
        )?;
    }
    Ok(())
}

#[test]
fn json_numbers_and_strings_are_exact_or_refused() -> Result<()> {
    let m = mapping(
        r#"{"source_id": "b", "kind": "statement", "format": "jsonl", "bank_id": "b",
        "default_currency": "USD", "settlement_currency": "USD",
        "columns": {"statement_id": "id", "posting_date": "date", "amount_posted": "amount.value",
                    "currency": "amount.currency"}}"#,
    )?;
    for (v, want) in AMOUNTS {
        for value in [v.to_string(), format!("\"{v}\"")] {
            let line = format!(
                r#"{{"id":"S1","date":"2026-11-20","amount":{{"value":{value},"currency":"USD"}}}}"#
            );
            let got = only(statements(&m, &FxTable::default(), line.as_bytes())?)?;
            check(&format!("jsonl amount {value}"), v, *want, got)?;
        }
    }
    // The case of the issue: kept, not rounded up to 100000000000000.00 and refused.
    let line =
        r#"{"id":"S1","date":"2026-11-20","amount":{"value":99999999999999.99,"currency":"USD"}}"#;
    let Got::Kept(d) = only(statements(&m, &FxTable::default(), line.as_bytes())?)? else {
        return Err(Error::Invariant("99999999999999.99 refused".into()));
    };
    assert_eq!(d.to_string(), "99999999999999.99");
    Ok(())
}

#[test]
fn ledger_amounts_are_exact_or_refused() -> Result<()> {
    let m = mapping(
        r#"{"source_id": "ledger", "kind": "transactions", "format": "csv", "columns": {
        "transaction_id": "t", "merchant_id": "m", "user_id": "u", "amount": "a", "currency": "c",
        "status": "s", "event_time": "e", "payment_method": "p"}}"#,
    )?;
    for (v, want) in AMOUNTS {
        let text =
            format!("t,m,u,a,c,s,e,p\nTX-1,M1,U1,{v},USD,APPROVED,2026-11-20T10:00:00Z,CARD\n");
        let ctx = ParseContext {
            mapping: &m,
            fx: &FxTable::default(),
            business_date: BusinessDate::parse("2026-11-20")?,
            file: "f",
        };
        let p = recon_shared::source::parse_transactions(&ctx, text.as_bytes())?;
        let got = match (p.records.first(), p.rejects.first()) {
            (Some((_, t)), _) => Got::Kept(t.amount),
            (_, Some(r)) => Got::Rejected(r.reason, r.detail.clone()),
            _ => Got::FileError("nothing".into()),
        };
        check("ledger amount", v, *want, got)?;
    }
    Ok(())
}

/// MT940 amounts have a comma and at most 15 characters (SWIFT `15d`): 16 significant digits
/// cannot be written, so every value of [`AMOUNTS`] is refused with the field's limit named;
/// the longest that fit are kept exactly. The balances around the one entry agree.
#[test]
fn mt940_amounts_are_exact_or_refused() -> Result<()> {
    let m = mapping(
        r#"{"source_id": "b", "kind": "statement", "format": "mt940", "bank_id": "b",
        "settlement_currency": "EUR", "timezone": "Europe/Berlin", "columns": {}}"#,
    )?;
    let fitting = [
        ("999999999999.99", Want::Exact),
        // 14 digits and the comma: the largest MT940 amount, below the storable bound.
        ("9999999999999.9", Want::Exact),
        ("1.000000000000", Want::Exact),
        (
            "1.0000000000001",
            Want::Refused(RejectReason::TooManyDecimals),
        ),
    ];
    for (v, want) in AMOUNTS.iter().copied().chain(fitting) {
        let amount = v.replace('.', ",");
        let want = if amount.len() > 15 {
            Want::Refused(RejectReason::AmountOverflow)
        } else {
            want
        };
        let text = format!(
            ":20:b-20261120\n:25:b/EUR\n:28C:00001/00001\n:60F:C261120EUR0,00\n\
             :61:2611201120C{amount}NTRFNONREF//00000001\n\
             :86:/EREF/TX-1/TYPE/SETTLEMENT/CHGS/0,00\n:62F:C261120EUR{amount}\n-\n"
        );
        let got = only(statements(&m, &FxTable::default(), text.as_bytes())?)?;
        if amount.len() > 15 {
            assert!(
                matches!(&got, Got::FileError(r) if r.contains(&format!("amount `{amount}`")) && r.contains("at most 15")),
                "{v}: {got:?}"
            );
            continue;
        }
        check("mt940 amount", v, want, got)?;
    }
    Ok(())
}

#[test]
fn camt053_amounts_and_charges_are_exact_or_refused() -> Result<()> {
    let m = mapping(
        r#"{"source_id": "b", "kind": "statement", "format": "camt053", "bank_id": "b",
        "settlement_currency": "EUR", "timezone": "Europe/Berlin", "columns": {}}"#,
    )?;
    for (v, want) in AMOUNTS {
        for (amount, fee, place) in [
            (*v, "0.10", "camt053 amount"),
            ("1.00", *v, "camt053 charges"),
        ] {
            let bal = |code: &str, amt: &str| {
                format!(
                    "<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{amt}</Amt>\
                     <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-20</Dt></Dt></Bal>"
                )
            };
            let text = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                 <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>\
                 <GrpHdr><MsgId>m</MsgId><CreDtTm>2026-11-21T01:10:00Z</CreDtTm></GrpHdr>\
                 <Stmt><Id>s</Id><Acct><Id><Othr><Id>b/EUR</Id></Othr></Id><Ccy>EUR</Ccy></Acct>\
                 {}{}<Ntry><NtryRef>1</NtryRef><Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>\
                 <Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-20</Dt></BookgDt>\
                 <AcctSvcrRef>S1</AcctSvcrRef><BkTxCd><Prtry><Cd>SETTLEMENT</Cd></Prtry></BkTxCd>\
                 <NtryDtls><TxDtls><Refs><EndToEndId>TX-1</EndToEndId></Refs>\
                 <Chrgs><Rcrd><Amt Ccy=\"EUR\">{fee}</Amt></Rcrd></Chrgs></TxDtls></NtryDtls></Ntry>\
                 </Stmt></BkToCstmrStmt></Document>",
                bal("OPBD", "0"),
                bal("CLBD", amount),
            );
            let ctx = ParseContext {
                mapping: &m,
                fx: &FxTable::default(),
                business_date: BusinessDate::parse("2026-11-20")?,
                file: "f",
            };
            let got = match parse_statements(&ctx, text.as_bytes()) {
                Ok(p) => match (p.records.first(), p.rejects.first()) {
                    (Some((_, l)), _) if amount == *v => Got::Kept(l.amount_posted),
                    (Some((_, l)), _) => Got::Kept(l.fee_charged),
                    (_, Some(r)) => Got::Rejected(r.reason, r.detail.clone()),
                    _ => Got::FileError("nothing".into()),
                },
                Err(Error::InvalidFile { reason, .. }) => Got::FileError(reason),
                Err(e) => return Err(e),
            };
            check(place, v, *want, got)?;
        }
    }
    Ok(())
}

/// FX rates of 16 to 20 significant digits: kept exactly when they fit the stored 10 places,
/// refused otherwise (a longer rate would be rounded, or fail the statement's Parquet write).
#[test]
fn fx_rates_are_exact_or_refused() -> Result<()> {
    let (eur, usd) = (Currency::new("EUR")?, Currency::new("USD")?);
    for (rate, kept) in [
        ("1.0812345678000000000", true),
        ("1080000.0000000001", true),
        ("1.080000000012345678", false),
        ("0.12345678901234567890", false),
    ] {
        let table = FxTable::from_csv(&format!("base,quote,rate\nEUR,USD,{rate}\n"));
        match (table, kept) {
            (Ok(t), true) => {
                assert_eq!(t.rate(eur, usd), Some(exact(rate)?), "{rate}");
                // A converted line carries the rate exactly.
                let m = mapping(&CSV.replace("\"fee_charged\": \"fee\"", "\"currency\": \"ccy\""))?;
                let text = "id,date,amount,ccy\nS1,2026-11-20,10.00,EUR\n";
                let ctx = ParseContext {
                    mapping: &m,
                    fx: &t,
                    business_date: BusinessDate::parse("2026-11-20")?,
                    file: "f",
                };
                let p = parse_statements(&ctx, text.as_bytes())?;
                let l = &p
                    .records
                    .first()
                    .ok_or_else(|| Error::Invariant(rate.into()))?
                    .1;
                assert_eq!(l.fx_rate, Some(exact(rate)?));
                assert_eq!(l.original_amount, Some(exact("10.00")?));
                recon_shared::columnar::write_parquet(std::slice::from_ref(l))?;
            }
            (Err(e), false) => assert!(e.to_string().contains("decimal places"), "{rate}: {e}"),
            (got, _) => return Err(Error::Invariant(format!("{rate}: {got:?}"))),
        }
    }
    Ok(())
}

fn kafka(value: &str) -> KafkaRecordIn {
    KafkaRecordIn {
        topic: TRANSACTIONS_TOPIC.into(),
        partition: 0,
        offset: 1,
        timestamp_ms: 1_795_132_814_140,
        key: None,
        value: Some(STANDARD.encode(value)),
    }
}

#[test]
fn kafka_amounts_are_exact_or_refused() -> Result<()> {
    let k = PiiKey::new(b"unit-test-key-0123456789")?.tokenizer();
    for (v, want) in AMOUNTS {
        for quoted in [true, false] {
            let value = if quoted {
                format!("\"{v}\"")
            } else {
                v.to_string()
            };
            let rec = kafka(&format!(
                r#"{{"transaction_id":"TX-1","merchant_id":"M1","user_id":"U1","amount":{value},"currency":"USD","status":"APPROVED","event_time":"2026-11-20T10:00:00Z","payment_method":"CARD"}}"#
            ));
            match (decode(&rec, &k), quoted, want) {
                (Ok(Fact::Txn { state, .. }), true, _) => {
                    // Exact; the bounds of the stream are those of the batch path.
                    assert_eq!(state.amount, exact(v)?, "{v}");
                }
                // Refused with the field's rule, never the value.
                (Err(r), true, Want::Refused(_)) => {
                    assert!(r.0.contains("amount") && !r.0.contains(v), "{v}: {r:?}")
                }
                (Err(r), false, _) => {
                    assert!(r.0.contains("where a string is expected"), "{v}: {r:?}")
                }
                (got, _, _) => return Err(Error::Invariant(format!("{value}: {got:?}"))),
            }
        }
    }
    Ok(())
}
