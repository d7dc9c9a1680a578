//! PII in rejects is masked by construction: a transactions record that is rejected keeps
//! only its parsed, mapped, non-PII fields in `raw` (re-serialized, so quoting or escaping in
//! the file cannot hide a value from the masking), and its `detail` never quotes a PII value.
//! JSON records naming a key twice are rejected, not resolved.

use recon_shared::ids::BusinessDate;
use recon_shared::money::FxTable;
use recon_shared::records::Transaction;
use recon_shared::source::{
    MASK, ParseContext, Parsed, Reject, RejectReason, SourceMapping, parse_statements,
    parse_transactions,
};
use recon_shared::{Error, Result};

const SECRETS: &[&str] = &["example.com", "4111111111111111", "U00000042"];

fn ledger(format: &str) -> Result<SourceMapping> {
    SourceMapping::from_json(
        format!(
            r#"{{"source_id": "ledger", "kind": "transactions", "format": "{format}", "columns": {{
            "transaction_id": "transaction_id", "merchant_id": "merchant_id", "user_id": "user_id",
            "amount": "amount", "currency": "currency", "status": "status",
            "event_time": "event_time", "payment_method": "payment_method",
            "original_transaction_id": "original_transaction_id"}}}}"#
        )
        .as_bytes(),
    )
}

fn parse(m: &SourceMapping, text: &str) -> Result<Parsed<Transaction>> {
    let ctx = ParseContext {
        mapping: m,
        fx: &FxTable::default(),
        business_date: BusinessDate::parse("2026-11-20")?,
        file: "ledger.csv",
    };
    parse_transactions(&ctx, text.as_bytes())
}

fn reject(p: &Parsed<Transaction>, record: u64) -> Result<&Reject> {
    p.rejects
        .iter()
        .find(|r| r.record == record)
        .ok_or_else(|| Error::Invariant(format!("record {record} not rejected: {p:?}")))
}

fn assert_clean(r: &Reject) {
    for s in SECRETS {
        assert!(
            !r.raw.contains(s),
            "raw of record {} holds {s}: {}",
            r.record,
            r.raw
        );
        assert!(
            !r.detail.contains(s),
            "detail of record {} holds {s}: {}",
            r.record,
            r.detail
        );
    }
}

const HEAD: &str = "transaction_id,merchant_id,user_id,amount,currency,status,event_time,payment_method,original_transaction_id,card_number,note\n";

#[test]
fn csv_rejects_never_hold_a_pii_value() -> Result<()> {
    let text = format!(
        "{HEAD}\
         TX-1,M1,bob.smith@example.com,10.00,USD,APPROVED,2026-11-20T10:00:00Z,CARD,,,\n\
         TX-2,M1,\"bob\"\"smith@example.com\",10.00,USD,APPROVED,2026-11-20T10:00:00Z,CARD,,,\n\
         TX-3,M1,U00000042,10.001,USD,APPROVED,2026-11-20T10:00:00Z,CARD,,4111111111111111,\"refund, asked by U00000042\"\n\
         TX-4,M1,U00000042,10.00,USD,SETTLED,2026-11-20T10:00:00Z,CARD,U00000042,,\n\
         TX-5,M1,U00000042,10.00,USD,APPROVED,2026-11-20T10:00:00Z,CARD,,4111111111111111,mail bob@example.com\n\
         TX-6,M1,\"U00000042\n"
    );
    let p = parse(&ledger("csv")?, &text)?;
    assert_eq!(
        (p.records.len(), p.rejects.len()),
        (1, 5),
        "{:?}",
        p.rejects
    );
    for r in &p.rejects {
        assert_clean(r);
    }
    // The e-mail is no id: the reason says why without quoting it; raw keeps the other fields.
    let r = reject(&p, 1)?;
    assert_eq!(r.reason, RejectReason::InvalidId);
    assert!(
        r.detail.contains("user_id") && r.detail.contains("only ASCII"),
        "{}",
        r.detail
    );
    assert_eq!(
        r.raw,
        format!("TX-1,M1,{MASK},10.00,USD,APPROVED,2026-11-20T10:00:00Z,CARD,,{MASK},{MASK}")
    );
    // Escaped quotes do not hide the value: masking works on the parsed field.
    let r = reject(&p, 2)?;
    assert!(r.raw.starts_with(&format!("TX-2,M1,{MASK},")), "{}", r.raw);
    assert!(!r.raw.contains("bob"), "{}", r.raw);
    // Unmapped columns (a card number, free text holding the user id) are masked too.
    let r = reject(&p, 3)?;
    assert_eq!(r.reason, RejectReason::TooManyDecimals);
    assert!(r.raw.ends_with(&format!(",{MASK},{MASK}")), "{}", r.raw);
    // A mapped field holding the user id is masked like it.
    let r = reject(&p, 4)?;
    assert_eq!(r.reason, RejectReason::InvalidEnum);
    assert!(r.raw.contains(&format!("CARD,{MASK},")), "{}", r.raw);
    // A record that cannot be split into fields is withheld whole.
    let r = reject(&p, 6)?;
    assert_eq!(r.reason, RejectReason::MalformedRow);
    assert!(r.raw.starts_with("[withheld:"), "{}", r.raw);
    Ok(())
}

#[test]
fn json_rejects_never_hold_a_pii_value() -> Result<()> {
    let base = r#""transaction_id":"TX-1","merchant_id":"M1","amount":"10.00","currency":"USD","event_time":"2026-11-20T10:00:00Z","payment_method":"CARD""#;
    let lines = [
        format!(r#"{{{base},"user_id":"bob.smith@example.com","status":"APPROVED"}}"#),
        format!(
            r#"{{{base},"user_id":"U00000042","status":"SETTLED","card_number":"4111111111111111","customer":{{"email":"bob@example.com","id":"U00000042"}}}}"#
        ),
        format!(r#"{{{base},"user_id":"U00000042","status":"APPROVED","user_id":"U00000043"}}"#),
        format!(r#"{{{base},"user_id":"U\u00300000042","status":"NOPE"}}"#),
    ];
    let p = parse(&ledger("jsonl")?, &lines.join("\n"))?;
    assert_eq!(p.rejects.len(), 4, "{:?}", p.records);
    for r in &p.rejects {
        assert_clean(r);
    }
    let r = reject(&p, 1)?;
    assert_eq!(r.reason, RejectReason::InvalidId);
    assert!(
        r.raw.contains(&format!(r#""user_id":"{MASK}""#)),
        "{}",
        r.raw
    );
    assert!(r.raw.contains(r#""amount":"10.00""#), "{}", r.raw);
    let r = reject(&p, 2)?;
    assert!(
        r.raw
            .contains(&format!(r#""card_number":"{MASK}","customer":"{MASK}""#)),
        "{}",
        r.raw
    );
    // A duplicated key: rejected, named (the mapping reads it), the record withheld.
    let r = reject(&p, 3)?;
    assert_eq!(r.reason, RejectReason::DuplicateKey);
    assert!(r.detail.contains("`user_id` appears twice"), "{}", r.detail);
    assert!(r.raw.starts_with("[withheld:"), "{}", r.raw);
    // An escaped user id is masked: the parsed value counts, not its spelling.
    let r = reject(&p, 4)?;
    assert!(
        r.raw.contains(&format!(r#""user_id":"{MASK}""#)),
        "{}",
        r.raw
    );
    Ok(())
}

#[test]
fn statement_json_lines_with_a_duplicated_key_are_rejected() -> Result<()> {
    let m = SourceMapping::from_json(
        br#"{"source_id": "b", "kind": "statement", "format": "jsonl", "bank_id": "b",
        "default_currency": "USD", "columns": {"statement_id": "id", "posting_date": "date",
        "amount_posted": "amount.value", "currency": "amount.currency"}}"#,
    )?;
    let ctx = ParseContext {
        mapping: &m,
        fx: &FxTable::default(),
        business_date: BusinessDate::parse("2026-11-20")?,
        file: "s.jsonl",
    };
    let text = [
        r#"{"id":"S1","date":"2026-11-20","amount":{"value":"10.00","value":"11.00","currency":"USD"}}"#,
        r#"{"id":"S2","date":"2026-11-20","amount":{"value":"10.00","currency":"USD"},"x":1,"x":2}"#,
        r#"{"id":"S3","date":"2026-11-20","amount":{"value":"10.00","currency":"USD"},"memo":{"a":[{"k":1,"k":1}]}}"#,
        r#"{"id":"S4","date":"2026-11-20","amount":{"value":10.00,"currency":"USD"}}"#,
    ]
    .join("\n");
    let p = parse_statements(&ctx, text.as_bytes())?;
    assert_eq!(p.records.len(), 1);
    let reasons: Vec<(RejectReason, &str)> = p
        .rejects
        .iter()
        .map(|r| (r.reason, r.detail.as_str()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|(r, _)| *r == RejectReason::DuplicateKey)
    );
    assert!(
        reasons[0].1.contains("`amount.value` appears twice"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].1.contains("a key the mapping does not read"),
        "{reasons:?}"
    );
    // Statements carry no user PII: their raw is kept as delivered.
    assert!(p.rejects[0].raw.contains("11.00"));
    Ok(())
}
