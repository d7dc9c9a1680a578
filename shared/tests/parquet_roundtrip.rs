//! Money and every canonical record survive Parquet exactly.

use bytes::Bytes;
use chrono::{DateTime, NaiveDate};
use recon_shared::columnar::{Columnar, read_parquet, write_parquet};
use recon_shared::ids::*;
use recon_shared::money::Currency;
use recon_shared::records::*;
use recon_shared::{Error, Result};
use rust_decimal::Decimal;
use rust_decimal::dec;
use serde_json::json;

fn roundtrip<T: Columnar + PartialEq + std::fmt::Debug>(rows: &[T]) -> Result<()> {
    let bytes = write_parquet(rows)?;
    let back: Vec<T> = read_parquet(Bytes::from(bytes.clone()))?;
    assert_eq!(back, rows);
    // Deterministic: the same rows give the same bytes.
    assert_eq!(write_parquet(rows)?, bytes);
    Ok(())
}

fn ts(secs: i64) -> Result<DateTime<chrono::Utc>> {
    DateTime::from_timestamp(secs, 123_456_000).ok_or_else(|| Error::Invariant("ts".into()))
}

fn day(s: &str) -> Result<NaiveDate> {
    Ok(BusinessDate::parse(s)?.date())
}

#[test]
fn transactions_keep_exact_amounts_in_every_minor_unit() -> Result<()> {
    let mk = |id: &str, amount: Decimal, cur: &str| -> Result<Transaction> {
        Ok(Transaction {
            transaction_id: TransactionId::new(id)?,
            merchant_id: MerchantId::new("M000001")?,
            user_id: UserId::new("U00000001")?,
            amount,
            currency: Currency::new(cur)?,
            status: TxnStatus::Approved,
            event_time: ts(1_763_600_000)?,
            payment_method: PaymentMethod::Card,
            original_transaction_id: None,
        })
    };
    let mut rows = vec![
        mk("T1", dec!(0.01), "USD")?,
        mk("T2", dec!(12345), "JPY")?,
        mk("T3", dec!(1.234), "KWD")?,
        mk("T4", dec!(0.0001), "CLF")?,
        mk("T5", dec!(99999999999999.99), "EUR")?,
        mk("T6", dec!(0.10), "GBP")?,
    ];
    rows[5].original_transaction_id = Some(TransactionId::new("T1")?);
    rows[5].status = TxnStatus::Refunded;
    roundtrip(&rows)?;
    // Scale is kept: 0.10 stays 0.10 (two places), not 0.1.
    let back: Vec<Transaction> = read_parquet(Bytes::from(write_parquet(&rows)?))?;
    assert_eq!(back[5].amount.to_string(), "0.10");
    assert_eq!(back[1].amount.to_string(), "12345");
    Ok(())
}

#[test]
fn amounts_that_cannot_be_stored_exactly_are_refused() -> Result<()> {
    let t = Transaction {
        transaction_id: TransactionId::new("T1")?,
        merchant_id: MerchantId::new("M1")?,
        user_id: UserId::new("U1")?,
        amount: dec!(0.00001),
        currency: Currency::new("USD")?,
        status: TxnStatus::Approved,
        event_time: ts(0)?,
        payment_method: PaymentMethod::Wallet,
        original_transaction_id: None,
    };
    assert!(write_parquet(std::slice::from_ref(&t)).is_err());
    let mut big = t;
    big.amount = dec!(100000000000000.00);
    assert!(write_parquet(&[big]).is_err());
    Ok(())
}

#[test]
fn statement_lines_fraud_signals_and_dimensions_roundtrip() -> Result<()> {
    let line = StatementLine {
        statement_id: StatementId::new("bank_01-1")?,
        transaction_id: Some(TransactionId::new("T1")?),
        bank_id: BankId::new("bank_01")?,
        posting_date: BusinessDate::parse("2026-11-20")?,
        amount_posted: dec!(-108.45),
        currency: Currency::new("USD")?,
        fee_charged: dec!(0.00),
        merchant_id: None,
        reference: "REFUND T1, \"quoted\"".into(),
        record_type: Some(RecordType::Refund),
        original_amount: Some(dec!(-100.00)),
        original_currency: Some(Currency::new("EUR")?),
        fx_rate: Some(dec!(1.0845123456)),
    };
    let mut plain = line.clone();
    plain.statement_id = StatementId::new("bank_01-2")?;
    plain.transaction_id = None;
    plain.record_type = None;
    plain.original_amount = None;
    plain.original_currency = None;
    plain.fx_rate = None;
    roundtrip(&[line, plain])?;

    roundtrip(&[FraudSignal {
        fraud_signal_id: FraudSignalId::new("FS-1")?,
        transaction_id: TransactionId::new("T1")?,
        fraud_score: dec!(0.8123),
        model_version: "m1".into(),
        inference_time: ts(1_763_600_001)?,
        reason_code: Some("VELOCITY".into()),
    }])?;
    roundtrip(&[Merchant {
        merchant_id: MerchantId::new("M1")?,
        merchant_name: "Blue Market 1".into(),
        category: "grocery".into(),
        risk_level: RiskLevel::Low,
        onboarding_date: day("2024-03-01")?,
        country: "US".into(),
        acquirer_bank_id: Some(BankId::new("bank_01")?),
    }])?;
    roundtrip(&[Policy {
        policy_id: PolicyId::new("POL-1")?,
        policy_type: PolicyType::Blacklist,
        rule_description: "barred".into(),
        active_flag: true,
        parameters: json!({"merchant_ids": ["M1"]}),
    }])?;
    roundtrip(&[FeeRule {
        rule_id: RuleId::new("r1")?,
        bank_id: Some(BankId::new("bank_01")?),
        network: Some("VISA".into()),
        merchant_category: None,
        percent: dec!(1.75),
        fixed: dec!(0.25),
        currency: Currency::new("USD")?,
        effective_from: day("2026-01-01")?,
        effective_to: None,
    }])?;
    Ok(())
}

#[test]
fn a_batch_of_the_wrong_schema_is_a_clear_error() -> Result<()> {
    let bytes = write_parquet(&[Merchant {
        merchant_id: MerchantId::new("M1")?,
        merchant_name: "x".into(),
        category: "grocery".into(),
        risk_level: RiskLevel::Low,
        onboarding_date: day("2024-03-01")?,
        country: "US".into(),
        acquirer_bank_id: Some(BankId::new("bank_01")?),
    }])?;
    let err = read_parquet::<Transaction>(Bytes::from(bytes))
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|m| m.contains("transactions") && m.contains("missing")));
    Ok(())
}
