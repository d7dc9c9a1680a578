//! The query API over a small indexed day: every route, every 400 and 404, pagination, the
//! Lambda event round trip, and the route table against `docs/openapi.yaml`.

use std::collections::BTreeSet;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use query_api::{ROUTES, Request, Response, openapi_routes, route};
use recon_shared::close::{FinalRow, KpiRow, write_back_settlement};
use recon_shared::columnar::write_parquet;
use recon_shared::ids::{BankId, BusinessDate, MerchantId, PolicyId, TransactionId};
use recon_shared::local::{LocalBreakLog, LocalStore};
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::money::Currency;
use recon_shared::pii::PiiKey;
use recon_shared::ports::{ObjectStore, TransactionIndex};
use recon_shared::reconcile::{IndexRow, RowKind};
use recon_shared::records::{
    BreakStatus, MatchRule, Merchant, MismatchType, Policy, PolicyType, ReconciledStatus,
    RiskLevel, SettlementStatus, TxnStatus,
};
use recon_shared::stream::{ComplianceRules, KafkaRecordIn, StreamContext, process_batch};
use recon_shared::{Error, Result};
use rust_decimal::Decimal;
use serde_json::{Value, json};

struct Fixture {
    _dir: tempfile::TempDir,
    store: LocalStore,
    index: LocalTransactionIndex,
    breaks: LocalBreakLog,
    token: String,
}

fn rec(topic: &str, offset: i64, value: Value) -> KafkaRecordIn {
    KafkaRecordIn {
        topic: topic.into(),
        partition: 0,
        offset,
        timestamp_ms: 1_795_169_700_000 + offset,
        key: None,
        value: Some(STANDARD.encode(value.to_string())),
    }
}

fn dec(s: &str) -> Result<Decimal> {
    s.parse()
        .map_err(|_| Error::Invariant(format!("decimal {s}")))
}

fn mismatch_row(bank: &str, id: &str, kind: MismatchType) -> Result<IndexRow> {
    let usd = Currency::new("USD")?;
    Ok(IndexRow {
        row_kind: RowKind::Transaction,
        transaction_id: Some(TransactionId::new(id)?),
        statement_ids: vec![],
        transaction_ids: vec![],
        bank_id: BankId::new(bank)?,
        merchant_id: Some(MerchantId::new("M1")?),
        amount: Some(dec("10.00")?),
        txn_currency: Some(usd),
        expected_amount: Some(dec("10.00")?),
        amount_posted: Some(dec("9.50")?),
        currency: usd,
        fee_charged: None,
        expected_fee: None,
        discrepancy: Some(dec("-0.50")?),
        fee_variance: None,
        reconciled_status: ReconciledStatus::PartialMatch,
        mismatch_type: kind,
        match_rule: MatchRule::ExactId,
        confidence: Decimal::ONE,
        break_id: Some(format!("brk_{id}")),
        first_seen: BusinessDate::parse("2026-11-20").ok().map(|d| d.date()),
        age_days: Some(0),
        resolved_on: None,
        break_status: Some(BreakStatus::Open),
        resolution: None,
        resolved_by: None,
        item_date: BusinessDate::parse("2026-11-20")?.date(),
        business_date: BusinessDate::parse("2026-11-20")?,
        run_id: "run-1".into(),
    })
}

async fn fixture() -> Result<Fixture> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let store = LocalStore::new(dir.path());
    let index = LocalTransactionIndex::open(dir.path())?;
    let ctx = StreamContext::new(
        PiiKey::new(b"query-api-test-key-012345")?,
        &[Merchant {
            merchant_id: MerchantId::new("M1")?,
            merchant_name: "Green Foods 1".into(),
            category: "grocery".into(),
            risk_level: RiskLevel::Low,
            onboarding_date: BusinessDate::parse("2024-01-01")?.date(),
            country: "US".into(),
            acquirer_bank_id: None,
        }],
        &[Policy {
            policy_id: PolicyId::new("POL-KYC-001")?,
            policy_type: PolicyType::Kyc,
            rule_description: "kyc".into(),
            active_flag: true,
            parameters: json!({"min_amount": "1500.00", "currency": "USD"}),
        }],
        ComplianceRules::default(),
    )?;
    let mut records = Vec::new();
    for i in 0..7 {
        records.push(rec(
            "transactions_topic",
            i,
            json!({"transaction_id": format!("TX-{i}"), "merchant_id": "M1", "user_id": "U00000001",
                "amount": if i == 0 { "1600.00" } else { "12.30" }, "currency": "USD", "status": "APPROVED",
                "event_time": format!("2026-11-{}T10:00:0{i}.000Z", if i < 5 { 20 } else { 21 }),
                "payment_method": "CARD"}),
        ));
    }
    records.push(rec(
        "fraud_signals_topic",
        0,
        json!({"fraud_signal_id": "FS-1", "transaction_id": "TX-1", "fraud_score": "0.9100",
            "model_version": "m1", "inference_time": "2026-11-20T10:00:02.000Z"}),
    ));
    records.push(rec(
        "fraud_signals_topic",
        1,
        json!({"fraud_signal_id": "FS-2", "transaction_id": "TX-PENDING", "fraud_score": "0.1",
            "model_version": "m1", "inference_time": "2026-11-20T10:00:02.000Z"}),
    ));
    process_batch(&store, &index, &ctx, &records).await?;
    let token = index
        .get(&TransactionId::new("TX-0")?)
        .await
        .ok()
        .flatten()
        .and_then(|i| i.txn.map(|t| t.user_token))
        .ok_or_else(|| Error::Invariant("token".into()))?;
    let kpis = vec![KpiRow {
        transactions: 5,
        volume: dec("1649.20")?,
        ..KpiRow::empty(MerchantId::new("M1")?, Currency::new("USD")?)
    }];
    store
        .put(
            "index/kpis/business_date=2026-11-20/part.parquet",
            Bytes::from(write_parquet(&kpis)?),
        )
        .await?;
    for (bank, rows) in [
        (
            "bank_01",
            vec![
                mismatch_row("bank_01", "TX-1", MismatchType::Amount)?,
                mismatch_row("bank_01", "TX-2", MismatchType::Fee)?,
                mismatch_row("bank_01", "TX-3", MismatchType::Amount)?,
            ],
        ),
        (
            "bank_02",
            vec![mismatch_row("bank_02", "TX-4", MismatchType::Amount)?],
        ),
    ] {
        store
            .put(
                &format!("index/mismatches/business_date=2026-11-20/bank_id={bank}/part.parquet"),
                Bytes::from(write_parquet(&rows)?),
            )
            .await?;
        store
            .put(
                &format!("index/batch/business_date=2026-11-20/bank_id={bank}/part.parquet"),
                Bytes::from(write_parquet(&rows)?),
            )
            .await?;
    }
    store
        .put(
            "index/batch/business_date=2026-11-19/bank_id=bank_01/part.parquet",
            Bytes::from(write_parquet::<IndexRow>(&[])?),
        )
        .await?;
    store
        .put(
            "runs/2026-11-20/close-2026-11-20.json",
            Bytes::from_static(b"{\"status\":\"SUCCEEDED\",\"execution\":\"close-2026-11-20\"}\n"),
        )
        .await?;
    Ok(Fixture {
        breaks: LocalBreakLog::new(dir.path()),
        _dir: dir,
        store,
        index,
        token,
    })
}

async fn get(f: &Fixture, path: &str) -> Response {
    route(&Request::get(path), &f.store, &f.index, &f.breaks).await
}

fn code(r: &Response) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn the_route_table_and_the_openapi_document_agree() {
    let doc = include_str!("../../../docs/openapi.yaml");
    let documented = openapi_routes(doc);
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served);
    assert_eq!(served.len(), 10);
}

#[tokio::test]
async fn a_transaction_is_served_with_its_join_and_labels() -> Result<()> {
    let f = fixture().await?;
    let r = get(&f, "/transactions/TX-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["amount"], "12.30");
    assert_eq!(r.body["fraud"]["fraud_score"], "0.91");
    assert_eq!(r.body["risk_label"], "HIGH_RISK");
    assert_eq!(r.body["user_token"], f.token.as_str());
    assert_eq!(r.body["merchant"]["merchant_name"], "Green Foods 1");
    assert!(r.body["settlement_status"].is_null());
    let kyc = get(&f, "/transactions/TX-0").await;
    assert_eq!(kyc.body["risk_label"], "REQUIRES_KYC");
    assert_eq!(kyc.body["policy_flags"], json!(["KYC"]));
    assert!(!kyc.body.to_string().contains("U00000001"));
    Ok(())
}

#[tokio::test]
async fn a_payment_known_only_from_the_ledger_is_answered_from_the_final_index() -> Result<()> {
    let f = fixture().await?;
    let date = BusinessDate::parse("2026-11-20")?;
    let usd = Currency::new("USD")?;
    let row = FinalRow {
        transaction_id: TransactionId::new("TX-LEDGER-1")?,
        merchant_id: MerchantId::new("M1")?,
        bank_id: BankId::new("bank_01")?,
        user_token: f.token.clone(),
        amount: dec("42.00")?,
        currency: usd,
        status: TxnStatus::Approved,
        settlement_status: SettlementStatus::Settled,
        fraud_score: None,
        risk_label: None,
        policy_flags: Vec::new(),
        discrepancy: Some(dec("0.00")?),
        statement_currency: usd,
        reconciled_status: ReconciledStatus::Matched,
        mismatch_type: MismatchType::None,
        reconciliation_timestamp: chrono::DateTime::parse_from_rfc3339("2026-11-21T00:00:00Z")
            .map_err(|e| Error::Invariant(e.to_string()))?
            .to_utc(),
        detail: recon_shared::index_item::SettlementDetail {
            settled_on: Some(date.date()),
            statement_ids: vec!["bank_01-20261120-00000001".into()],
            match_rule: Some(recon_shared::records::MatchRule::ExactId),
            confidence: Some(Decimal::ONE),
            ..Default::default()
        },
    };
    f.store
        .put(
            &recon_shared::keys::final_key(date),
            Bytes::from(write_parquet(std::slice::from_ref(&row))?),
        )
        .await?;
    // The close writes the settlement back: the stream never carried this payment.
    write_back_settlement(&f.index, date, &[&row]).await?;
    let r = get(&f, "/transactions/TX-LEDGER-1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["transaction_id"], "TX-LEDGER-1");
    assert_eq!(r.body["amount"], "42.00");
    assert_eq!(r.body["status"], "APPROVED");
    assert_eq!(r.body["settlement_status"], "SETTLED");
    assert_eq!(r.body["reconciled_status"], "MATCHED");
    // How it was settled (§11): the close, the line, the rule.
    assert_eq!(r.body["settlement"]["settled_on"], "2026-11-20");
    assert_eq!(
        r.body["settlement"]["statement_ids"],
        serde_json::json!(["bank_01-20261120-00000001"])
    );
    assert_eq!(r.body["settlement"]["match_rule"], "EXACT_ID");
    assert_eq!(r.body["settlement"]["confidence"], "1");
    assert!(r.body["settlement"]["break_id"].is_null());
    assert_eq!(r.body["user_token"], f.token.as_str());
    assert_eq!(r.body["answered_from"], "final_index");
    assert_eq!(r.body["business_date"], "2026-11-20");
    assert!(r.body["event_time"].is_null());
    // A streamed payment is still answered from the stream's item.
    let streamed = get(&f, "/transactions/TX-1").await;
    assert!(streamed.body.get("answered_from").is_none());
    // A pending signal has no settlement: still not found.
    assert_eq!(get(&f, "/transactions/TX-PENDING").await.status, 404);
    Ok(())
}

#[tokio::test]
async fn every_client_error_has_its_status_and_code() -> Result<()> {
    let f = fixture().await?;
    let t = f.token.clone();
    let cases: Vec<(String, u16, &str)> = vec![
        ("/transactions/a%20b".into(), 400, "invalid_id"),
        ("/transactions/%FF".into(), 400, "invalid_id"),
        (
            format!("/transactions/{}", "x".repeat(65)),
            400,
            "invalid_id",
        ),
        ("/transactions/TX-NOPE".into(), 404, "not_found"),
        ("/transactions/TX-PENDING".into(), 404, "not_found"),
        (
            "/transactions/TX-1?verbose=1".into(),
            400,
            "invalid_parameter",
        ),
        ("/users/U00000001/transactions".into(), 400, "invalid_id"),
        (
            format!("/users/{t}/transactions?from=2026-13-01"),
            400,
            "invalid_date",
        ),
        (
            format!("/users/{t}/transactions?to=20261120"),
            400,
            "invalid_date",
        ),
        (
            format!("/users/{t}/transactions?from=2026-11-21&to=2026-11-20&next=x"),
            400,
            "invalid_cursor",
        ),
        (
            format!("/users/{t}/transactions?limit=%2B1"),
            400,
            "invalid_limit",
        ),
        ("/runs/2026-11-%201".into(), 400, "invalid_date"),
        (
            format!("/users/{t}/transactions?limit=0"),
            400,
            "invalid_limit",
        ),
        (
            format!("/users/{t}/transactions?limit=1001"),
            400,
            "invalid_limit",
        ),
        (
            format!("/users/{t}/transactions?limit=ten"),
            400,
            "invalid_limit",
        ),
        (
            format!("/users/{t}/transactions?next=bm9wZQ"),
            400,
            "invalid_cursor",
        ),
        (
            format!("/users/{t}/transactions?next=%%%"),
            400,
            "invalid_parameter",
        ),
        (
            format!("/users/{t}/transactions?limit=1&limit=2"),
            400,
            "invalid_parameter",
        ),
        ("/merchants/M1/transactions".into(), 400, "invalid_date"),
        (
            "/merchants/M1/transactions?date=yesterday".into(),
            400,
            "invalid_date",
        ),
        (
            "/merchants/M%201/transactions?date=2026-11-20".into(),
            400,
            "invalid_id",
        ),
        (
            "/merchants/M1/transactions?date=2026-11-20&next=Zm9v".into(),
            400,
            "invalid_cursor",
        ),
        ("/merchants/M1/kpis".into(), 400, "invalid_date"),
        (
            "/merchants/M1/kpis?date=2026-02-30".into(),
            400,
            "invalid_date",
        ),
        (
            "/merchants/M1/kpis?date=2026-11-25".into(),
            404,
            "not_found",
        ),
        (
            "/merchants/M404/kpis?date=2026-11-20".into(),
            404,
            "not_found",
        ),
        ("/mismatches".into(), 400, "invalid_date"),
        (
            "/mismatches?date=2026-11-20&type=BOGUS".into(),
            400,
            "invalid_parameter",
        ),
        (
            "/mismatches?date=2026-11-20&bank_id=a/b".into(),
            400,
            "invalid_id",
        ),
        (
            "/mismatches?date=2026-11-20&limit=5000".into(),
            400,
            "invalid_limit",
        ),
        (
            "/mismatches?date=2026-11-20&next=xyz".into(),
            400,
            "invalid_cursor",
        ),
        ("/mismatches?date=2026-11-18".into(), 404, "not_found"),
        (
            "/mismatches?date=2026-11-20&bank_id=bank_09".into(),
            404,
            "not_found",
        ),
        ("/runs/2026-11-19".into(), 404, "not_found"),
        ("/runs/20-11-2026".into(), 400, "invalid_date"),
        ("/nope".into(), 404, "not_found"),
        ("/transactions".into(), 404, "not_found"),
    ];
    for (path, status, want) in cases {
        let r = get(&f, &path).await;
        assert_eq!((r.status, code(&r)), (status, want), "{path}: {}", r.body);
        assert!(r.body["error"]["message"].is_string());
        assert!(!r.body.to_string().contains("U00000001"), "{path}");
    }
    let mut post = Request::get("/transactions/TX-1");
    post.method = "POST".into();
    let r = route(&post, &f.store, &f.index, &f.breaks).await;
    assert_eq!((r.status, code(&r)), (405, "method_not_allowed"));
    // A cursor of the merchant index is refused by the user index.
    let m = get(&f, "/merchants/M1/transactions?date=2026-11-20&limit=1").await;
    let cursor = m.body["next"].as_str().unwrap_or_default().to_string();
    assert!(!cursor.is_empty());
    let r = get(&f, &format!("/users/{t}/transactions?next={cursor}")).await;
    assert_eq!(code(&r), "invalid_cursor");
    // A mismatch cursor of another filter is refused.
    let page = get(&f, "/mismatches?date=2026-11-20&limit=1").await;
    let c = page.body["next"].as_str().unwrap_or_default().to_string();
    let r = get(
        &f,
        &format!("/mismatches?date=2026-11-20&type=FEE&next={c}"),
    )
    .await;
    assert_eq!(code(&r), "invalid_cursor");
    Ok(())
}

#[tokio::test]
async fn lists_page_through_everything_once() -> Result<()> {
    let f = fixture().await?;
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &next {
            Some(n) => format!("/users/{}/transactions?limit=2&next={n}", f.token),
            None => format!("/users/{}/transactions?limit=2", f.token),
        };
        let r = get(&f, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        for i in r.body["items"].as_array().cloned().unwrap_or_default() {
            ids.push(i["transaction_id"].as_str().unwrap_or_default().to_string());
        }
        match r.body["next"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(
        ids,
        ["TX-0", "TX-1", "TX-2", "TX-3", "TX-4", "TX-5", "TX-6"]
    );
    let day = get(
        &f,
        &format!(
            "/users/{}/transactions?from=2026-11-21&to=2026-11-21",
            f.token
        ),
    )
    .await;
    assert_eq!(day.body["count"], 2);
    let m = get(&f, "/merchants/M1/transactions?date=2026-11-20").await;
    assert_eq!(m.body["count"], 5);
    assert!(m.body["next"].is_null());
    // Mismatches: all banks, one bank, one type, and pages.
    let all = get(&f, "/mismatches?date=2026-11-20").await;
    assert_eq!(
        (all.body["count"].clone(), all.body["total"].clone()),
        (json!(4), json!(4))
    );
    assert_eq!(all.body["items"][0]["discrepancy"], "-0.50");
    let bank = get(&f, "/mismatches?date=2026-11-20&bank_id=bank_02").await;
    assert_eq!(bank.body["count"], 1);
    let kind = get(&f, "/mismatches?date=2026-11-20&type=AMOUNT").await;
    assert_eq!(kind.body["total"], 3);
    // Codes are exactly as the index writes them (docs/openapi.yaml's enum).
    let lower = get(&f, "/mismatches?date=2026-11-20&type=amount").await;
    assert_eq!(lower.status, 400);
    let mut seen = 0;
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(n) => format!("/mismatches?date=2026-11-20&type=AMOUNT&limit=2&next={n}"),
            None => "/mismatches?date=2026-11-20&type=AMOUNT&limit=2".into(),
        };
        let r = get(&f, &path).await;
        seen += r.body["count"].as_u64().unwrap_or(0);
        match r.body["next"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, 3);
    // A closed day without breaks is an empty list, not a 404.
    let quiet = get(&f, "/mismatches?date=2026-11-19").await;
    assert_eq!((quiet.status, quiet.body["count"].clone()), (200, json!(0)));
    Ok(())
}

#[tokio::test]
async fn kpis_combine_the_close_and_the_running_totals_and_runs_are_listed() -> Result<()> {
    let f = fixture().await?;
    let r = get(&f, "/merchants/M1/kpis?date=2026-11-20").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["close"][0]["volume"], "1649.20");
    assert_eq!(r.body["running_totals"]["transactions"], 5);
    assert_eq!(r.body["running_totals"]["high_risk"], 1);
    assert_eq!(r.body["running_totals"]["volume"]["USD"], "1649.20");
    // Before the close: the running totals alone.
    let live = get(&f, "/merchants/M1/kpis?date=2026-11-21").await;
    assert_eq!(live.status, 200);
    assert!(live.body["close"].is_null());
    assert_eq!(live.body["running_totals"]["transactions"], 2);
    let runs = get(&f, "/runs/2026-11-20").await;
    assert_eq!(runs.status, 200);
    assert_eq!(runs.body["runs"][0]["status"], "SUCCEEDED");
    Ok(())
}

#[tokio::test]
async fn the_lambda_handler_answers_api_gateway_events() -> Result<()> {
    let f = fixture().await?;
    for (raw, status) in [
        (
            include_str!("../../../events/query-api/get-transaction.json"),
            404,
        ),
        (
            include_str!("../../../events/query-api/bad-user-request.json"),
            400,
        ),
    ] {
        let event: ApiGatewayV2httpRequest = serde_json::from_str(raw)?;
        let resp = query_api::handle(event, &f.store, &f.index, &f.breaks).await?;
        assert_eq!(resp.status_code, status);
        assert_eq!(
            resp.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let Some(Body::Text(body)) = resp.body else {
            return Err(Error::Invariant("no body".into()));
        };
        let v: Value = serde_json::from_str(&body)?;
        assert!(v["error"]["code"].is_string());
        assert!(!body.contains("U00000001"));
    }
    Ok(())
}
