use super::*;
use serde_json::Value;

fn pii() -> crate::Result<PiiKey> {
    PiiKey::new(b"unit-test-key-0123456789")
}

fn rec(topic: &str, value: &str) -> KafkaRecordIn {
    KafkaRecordIn {
        topic: topic.into(),
        partition: 1,
        offset: 7,
        timestamp_ms: 1_795_132_814_140,
        key: Some(STANDARD.encode("TX-1")),
        value: Some(STANDARD.encode(value)),
    }
}

const TXN: &str = r#"{"transaction_id":"TX-1","merchant_id":"M000001","user_id":"U00000042","amount":"10.50","currency":"USD","status":"APPROVED","event_time":"2026-11-20T10:00:00.000Z","payment_method":"CARD"}"#;

#[test]
fn a_transaction_is_decoded_with_its_user_tokenized() -> crate::Result<()> {
    let k = pii()?;
    let r = rec(TRANSACTIONS_TOPIC, TXN);
    let d = decode(&r, &k.tokenizer());
    let Ok(Fact::Txn { id, state }) = &d else {
        return Err(Error::Invariant(format!("{d:?}")));
    };
    assert_eq!(id.as_str(), "TX-1");
    assert!(is_token(&state.user_token));
    assert_eq!(state.amount.to_string(), "10.50");
    assert_eq!(state.txn_day.to_string(), "2026-11-20");
    let line = archive_line(&r, &d, &k)?;
    assert!(!line.contains("U00000042"), "{line}");
    assert!(line.contains(&state.user_token));
    // The archived form decodes to the same fact (replay).
    let v: Value = serde_json::from_str(&line)?;
    let again = rec(TRANSACTIONS_TOPIC, &v["value"].to_string());
    assert_eq!(decode(&again, &k.tokenizer()), d);
    Ok(())
}

#[test]
fn bad_records_get_reasons_that_never_quote_values() -> crate::Result<()> {
    let k = pii()?;
    let cases = [
        (TXN.replace("\"10.50\"", "\"10.505\""), "decimal places"),
        (TXN.replace("\"10.50\"", "\"-1.00\""), "positive"),
        (TXN.replace("\"USD\"", "\"XYZ\""), "ISO 4217"),
        (TXN.replace("APPROVED", "SETTLED"), "status must be one of"),
        (TXN.replace("\"U00000042\"", "12345678"), "wrong type"),
        (TXN.replace("U00000042", "U 00000042"), "user_id is invalid"),
        (
            TXN.replace(",\"payment_method\":\"CARD\"", ""),
            "missing field",
        ),
        (TXN.replace(".000Z", ""), "RFC 3339"),
        ("{not json".to_string(), "not valid JSON"),
    ];
    for (value, expect) in cases {
        let r = rec(TRANSACTIONS_TOPIC, &value);
        let d = decode(&r, &k.tokenizer());
        let Err(reason) = &d else {
            return Err(Error::Invariant(format!("accepted {value}")));
        };
        assert!(reason.0.contains(expect), "{value}: {reason:?}");
        assert!(!reason.0.contains("U00000042") && !reason.0.contains("12345678"));
        let line = archive_line(&r, &d, &k)?;
        assert!(
            !line.contains("U00000042") && !line.contains("U 00000042"),
            "{line}"
        );
        assert!(line.contains("\"reason\""));
    }
    let mut r = rec("other_topic", TXN);
    assert!(decode(&r, &k.tokenizer()).is_err());
    r.value = Some("%%%".into());
    r.topic = TRANSACTIONS_TOPIC.into();
    assert_eq!(
        decode(&r, &k.tokenizer()),
        Err(Rejection("value is not base64".into()))
    );
    Ok(())
}

#[test]
fn amounts_have_the_batch_paths_bounds() -> crate::Result<()> {
    let k = pii()?;
    let with = |amount: &str| {
        let r = rec(
            TRANSACTIONS_TOPIC,
            &TXN.replace("\"10.50\"", &format!("\"{amount}\"")),
        );
        decode(&r, &k.tokenizer())
    };
    for too_large in ["79000000000000000000000000.00", "100000000000000.00"] {
        match with(too_large) {
            Err(reason) => assert!(reason.0.contains("largest storable"), "{reason:?}"),
            Ok(_) => return Err(Error::Invariant(format!("accepted {too_large}"))),
        }
    }
    let Ok(Fact::Txn { state, .. }) = with("99999999999999.99") else {
        return Err(Error::Invariant(
            "the largest storable amount refused".into(),
        ));
    };
    assert!(crate::money::within_amount_limit(state.amount));
    Ok(())
}

#[test]
fn a_rejected_record_is_archived_with_its_canonical_fields_only() -> crate::Result<()> {
    let k = pii()?;
    // Rejected (unknown status), with PII in fields the schema does not know and a user id
    // repeated in free text and in a canonical field.
    let value = r#"{"transaction_id":"TX-1","merchant_id":"M000001","user_id":"U00000042",
            "amount":"10.50","currency":"USD","status":"SETTLED","event_time":"2026-11-20T10:00:00.000Z",
            "payment_method":"CARD","original_transaction_id":"U00000042",
            "email":"bob.smith@example.com","card_number":"4111111111111111",
            "note":"refund asked by U00000042","customer":{"user_id":"U00000042","mail":"bob@example.com"}}"#;
    let r = rec(TRANSACTIONS_TOPIC, value);
    let d = decode(&r, &k.tokenizer());
    assert!(d.is_err());
    let line = archive_line(&r, &d, &k)?;
    for secret in ["U00000042", "example.com", "4111111111111111", "refund"] {
        assert!(!line.contains(secret), "{secret} in {line}");
    }
    let v: Value = serde_json::from_str(&line)?;
    let token = k.tokenize(&UserId::new("U00000042")?);
    assert_eq!(v["value"]["user_id"], token.as_str());
    assert_eq!(v["value"]["original_transaction_id"], "<masked>");
    assert_eq!(v["value"]["amount"], "10.50");
    assert_eq!(v["key"], "TX-1");
    let keys: Vec<&String> = v["value"]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), TXN_FIELDS.len(), "{keys:?}");
    assert!(v["reason"].as_str().is_some_and(|r| r.contains("status")));

    // A numeric amount is refused (amounts are strings) and archived with its digits.
    let numeric = TXN.replace("\"10.50\"", "99999999999999.99");
    let r = rec(TRANSACTIONS_TOPIC, &numeric);
    let d = decode(&r, &k.tokenizer());
    let Err(reason) = &d else {
        return Err(Error::Invariant(format!("accepted {numeric}")));
    };
    assert!(
        reason
            .0
            .contains("floating point where a string is expected"),
        "{reason:?}"
    );
    let line = archive_line(&r, &d, &k)?;
    assert!(line.contains(r#""amount":99999999999999.99"#), "{line}");

    // A user id that is no id (an e-mail) is masked, not tokenized; a value that is not
    // one JSON object keeps only its size and digest.
    let r = rec(
        TRANSACTIONS_TOPIC,
        &TXN.replace("U00000042", "bob@example.com"),
    );
    let d = decode(&r, &k.tokenizer());
    let line = archive_line(&r, &d, &k)?;
    assert!(!line.contains("example.com") && line.contains(r#""user_id":"<masked>""#));
    for bad in [
        "{\"user_id\":\"U00000042\",\"user_id\":\"x\"}",
        "not json U00000042",
    ] {
        let r = rec(TRANSACTIONS_TOPIC, bad);
        let line = archive_line(&r, &decode(&r, &k.tokenizer()), &k)?;
        assert!(
            !line.contains("U00000042") && line.contains("value_sha256"),
            "{line}"
        );
    }
    // An unknown topic: nothing of the value.
    let r = rec("other_topic", value);
    let line = archive_line(&r, &decode(&r, &k.tokenizer()), &k)?;
    assert!(
        !line.contains("\"value\"") && line.contains("value_sha256"),
        "{line}"
    );
    Ok(())
}

#[test]
fn a_field_given_twice_is_refused_by_name() -> crate::Result<()> {
    let k = pii()?;
    let twice = TXN.replace(
        "\"currency\":\"USD\"",
        "\"amount\":\"1.00\",\"currency\":\"USD\"",
    );
    let d = decode(&rec(TRANSACTIONS_TOPIC, &twice), &k.tokenizer());
    assert_eq!(d, Err(Rejection("duplicate field `amount`".into())));
    Ok(())
}

#[test]
fn signals_are_validated() -> crate::Result<()> {
    let k = pii()?;
    let ok = r#"{"fraud_signal_id":"FS-1","transaction_id":"TX-1","fraud_score":"0.8123","model_version":"m1","inference_time":"2026-11-20T10:00:01.000Z"}"#;
    assert!(matches!(
        decode(&rec(FRAUD_SIGNALS_TOPIC, ok), &k.tokenizer()),
        Ok(Fact::Signal { .. })
    ));
    let bad = ok.replace("0.8123", "1.2");
    assert!(decode(&rec(FRAUD_SIGNALS_TOPIC, &bad), &k.tokenizer()).is_err());
    // Scores are exact: 20 significant digits are refused when they do not fit the ratio
    // columns, kept when their trailing zeros do.
    let long = ok.replace("0.8123", "0.81234567890123456789");
    assert_eq!(
        decode(&rec(FRAUD_SIGNALS_TOPIC, &long), &k.tokenizer()),
        Err(Rejection(
            "fraud_score has more than 6 decimal places".into()
        ))
    );
    let zeros = ok.replace("0.8123", "0.81234500000000000000");
    let Ok(Fact::Signal { state, .. }) = decode(&rec(FRAUD_SIGNALS_TOPIC, &zeros), &k.tokenizer())
    else {
        return Err(Error::Invariant("trailing zeros refused".into()));
    };
    assert_eq!(state.fraud_score.to_string(), "0.812345");
    let numeric = ok.replace("\"0.8123\"", "0.8123");
    let d = decode(&rec(FRAUD_SIGNALS_TOPIC, &numeric), &k.tokenizer());
    assert!(
        matches!(&d, Err(r) if r.0.contains("where a string is expected")),
        "{d:?}"
    );
    Ok(())
}
