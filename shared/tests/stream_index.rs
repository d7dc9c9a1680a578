//! The streaming index against the local TransactionIndex: order and redelivery independence,
//! signals before their transaction, bad records, versions, settlement write-back, VELOCITY,
//! GSI pages, and the store's persistence.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::NaiveDate;
use recon_shared::close::{FinalRow, changed_settlements, stream_states, write_back_settlement};
use recon_shared::ids::{BankId, BusinessDate, MerchantId, PolicyId, TransactionId};
use recon_shared::local::LocalStore;
use recon_shared::local_index::{LocalTransactionIndex, read_snapshot_lines};
use recon_shared::money::Currency;
use recon_shared::pii::{PiiKey, is_token};
use recon_shared::ports::{
    ConditionalPut, Gsi, IndexQuery, ObjectStore, PutOutcome, TransactionIndex,
};
use recon_shared::records::{
    Merchant, MismatchType, Policy, PolicyType, ReconciledStatus, RiskLevel, SettlementStatus,
    TxnStatus,
};
use recon_shared::stream::{
    BatchReport, ComplianceRules, FRAUD_SIGNALS_TOPIC, KafkaRecordIn, PolicyFlag, RiskLabel,
    StreamContext, TRANSACTIONS_TOPIC, process_batch,
};
use recon_shared::{Error, Result};
use serde_json::json;

fn tmp() -> Result<tempfile::TempDir> {
    tempfile::tempdir().map_err(|e| Error::io("tmp", e))
}

fn merchant(id: &str, category: &str, country: &str) -> Result<Merchant> {
    Ok(Merchant {
        merchant_id: MerchantId::new(id)?,
        merchant_name: format!("Shop {id}"),
        category: category.into(),
        risk_level: RiskLevel::Low,
        onboarding_date: NaiveDate::from_ymd_opt(2024, 1, 1)
            .ok_or_else(|| Error::Invariant("date".into()))?,
        country: country.into(),
        acquirer_bank_id: None,
    })
}

fn policy(id: &str, ty: PolicyType, params: serde_json::Value) -> Result<Policy> {
    Ok(Policy {
        policy_id: PolicyId::new(id)?,
        policy_type: ty,
        rule_description: id.into(),
        active_flag: true,
        parameters: params,
    })
}

fn context(velocity: u64) -> Result<StreamContext> {
    let merchants = vec![
        merchant("M1", "grocery", "US")?,
        merchant("M2", "gambling", "DE")?,
        merchant("M3", "travel", "JP")?,
    ];
    let policies = vec![
        policy(
            "KYC",
            PolicyType::Kyc,
            json!({"min_amount": "1500.00", "currency": "USD"}),
        )?,
        policy("AML", PolicyType::Aml, json!({"categories": ["gambling"]}))?,
        policy("BL", PolicyType::Blacklist, json!({"merchant_ids": ["M2"]}))?,
        policy(
            "REG",
            PolicyType::RegionalLimit,
            json!({"country": "JP", "max_amount": "300000", "currency": "JPY"}),
        )?,
        policy(
            "VEL",
            PolicyType::Velocity,
            json!({ "max_per_user_per_hour": velocity }),
        )?,
    ];
    StreamContext::new(
        PiiKey::new(b"integration-test-key-0123")?,
        &merchants,
        &policies,
        ComplianceRules::default(),
    )
}

/// A Kafka record builder with per-partition offsets.
#[derive(Default)]
struct Topics {
    offsets: std::collections::HashMap<(String, i32), i64>,
    records: Vec<KafkaRecordIn>,
}

impl Topics {
    fn push(&mut self, topic: &str, partition: i32, ts: i64, key: &str, value: &str) {
        let o = self
            .offsets
            .entry((topic.to_string(), partition))
            .or_default();
        self.records.push(KafkaRecordIn {
            topic: topic.into(),
            partition,
            offset: *o,
            timestamp_ms: ts,
            key: Some(STANDARD.encode(key)),
            value: Some(STANDARD.encode(value)),
        });
        *o += 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn txn(
        &mut self,
        id: &str,
        merchant: &str,
        user: &str,
        amount: &str,
        currency: &str,
        status: &str,
        time: &str,
    ) {
        let v = json!({"transaction_id": id, "merchant_id": merchant, "user_id": user,
            "amount": amount, "currency": currency, "status": status, "event_time": time,
            "payment_method": "CARD"});
        let p = (id.len() % 3) as i32;
        let ts = chrono::DateTime::parse_from_rfc3339(time)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
        self.push(TRANSACTIONS_TOPIC, p, ts + 500, id, &v.to_string());
    }

    fn signal(&mut self, sig: &str, txn: &str, score: &str, time: &str) {
        let v = json!({"fraud_signal_id": sig, "transaction_id": txn, "fraud_score": score,
            "model_version": "m1", "inference_time": time});
        let ts = chrono::DateTime::parse_from_rfc3339(time)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
        self.push(FRAUD_SIGNALS_TOPIC, 0, ts + 300, txn, &v.to_string());
    }
}

/// A day's worth of streamed facts exercising every rule.
fn scenario() -> Topics {
    let mut t = Topics::default();
    let day = "2026-11-20T";
    // PENDING then APPROVED (and the signal in between).
    t.txn(
        "TX-1",
        "M1",
        "U00000001",
        "10.00",
        "USD",
        "PENDING",
        &format!("{day}09:00:00.000Z"),
    );
    t.signal("FS-1", "TX-1", "0.1000", &format!("{day}09:00:01.000Z"));
    t.txn(
        "TX-1",
        "M1",
        "U00000001",
        "10.00",
        "USD",
        "APPROVED",
        &format!("{day}09:00:05.000Z"),
    );
    // A signal before its transaction, high score.
    t.signal("FS-2", "TX-2", "0.9500", &format!("{day}10:00:00.000Z"));
    t.txn(
        "TX-2",
        "M1",
        "U00000002",
        "20.00",
        "EUR",
        "APPROVED",
        &format!("{day}09:59:59.000Z"),
    );
    // Two signals for one transaction: the later inference wins.
    t.txn(
        "TX-3",
        "M1",
        "U00000002",
        "30.00",
        "USD",
        "APPROVED",
        &format!("{day}11:00:00.000Z"),
    );
    t.signal("FS-3a", "TX-3", "0.9000", &format!("{day}11:00:01.000Z"));
    t.signal("FS-3b", "TX-3", "0.2000", &format!("{day}11:00:02.000Z"));
    // Blacklisted, AML merchant; KYC amount in EUR above 1500 USD; JP regional limit.
    t.txn(
        "TX-4",
        "M2",
        "U00000003",
        "5.00",
        "USD",
        "APPROVED",
        &format!("{day}12:00:00.000Z"),
    );
    t.txn(
        "TX-5",
        "M1",
        "U00000003",
        "1600.00",
        "USD",
        "APPROVED",
        &format!("{day}12:30:00.000Z"),
    );
    t.txn(
        "TX-6",
        "M3",
        "U00000004",
        "300001",
        "JPY",
        "APPROVED",
        &format!("{day}13:00:00.000Z"),
    );
    // Chargeback after approval; declined; refund; unknown merchant.
    t.txn(
        "TX-7",
        "M1",
        "U00000005",
        "70.00",
        "USD",
        "APPROVED",
        &format!("{day}14:00:00.000Z"),
    );
    t.txn(
        "TX-7",
        "M1",
        "U00000005",
        "70.00",
        "USD",
        "CHARGEBACK",
        &format!("{day}18:00:00.000Z"),
    );
    t.txn(
        "TX-8",
        "M1",
        "U00000005",
        "80.00",
        "USD",
        "DECLINED",
        &format!("{day}15:00:00.000Z"),
    );
    t.txn(
        "TX-9",
        "M1",
        "U00000005",
        "5.00",
        "USD",
        "REFUNDED",
        &format!("{day}16:00:00.000Z"),
    );
    t.txn(
        "TX-10",
        "M9",
        "U00000006",
        "9.00",
        "USD",
        "APPROVED",
        &format!("{day}17:00:00.000Z"),
    );
    // An orphan signal.
    t.signal("FS-99", "TX-404", "0.5000", &format!("{day}19:00:00.000Z"));
    // Velocity: 4 payments of one user in one hour (limit 3), one of them moved out later.
    for i in 0..4 {
        t.txn(
            &format!("TX-V{i}"),
            "M1",
            "U00000007",
            "1.00",
            "USD",
            "APPROVED",
            &format!("{day}20:0{i}:00.000Z"),
        );
    }
    t.txn(
        "TX-V3",
        "M1",
        "U00000007",
        "1.00",
        "USD",
        "APPROVED",
        &format!("{day}21:30:00.000Z"),
    );
    t.txn(
        "TX-V4",
        "M1",
        "U00000007",
        "1.00",
        "USD",
        "APPROVED",
        &format!("{day}20:40:00.000Z"),
    );
    // A bad record.
    t.push(
        TRANSACTIONS_TOPIC,
        1,
        1_795_132_814_140,
        "TX-BAD",
        r#"{"transaction_id":"TX-BAD","user_id":"U00000099"}"#,
    );
    t
}

async fn feed(
    dir: &Path,
    ctx: &StreamContext,
    records: &[KafkaRecordIn],
    batch: usize,
) -> Result<(LocalTransactionIndex, BatchReport)> {
    let store = LocalStore::new(dir);
    let index = LocalTransactionIndex::open(dir)?;
    let total = feed_into(&store, &index, ctx, records, batch).await?;
    Ok((index, total))
}

/// Feeds records in batches into any store and index.
async fn feed_into<S: ObjectStore, I: TransactionIndex>(
    store: &S,
    index: &I,
    ctx: &StreamContext,
    records: &[KafkaRecordIn],
    batch: usize,
) -> Result<BatchReport> {
    let mut total = BatchReport::default();
    for chunk in records.chunks(batch.max(1)) {
        total.add(&process_batch(store, index, ctx, chunk).await?);
    }
    Ok(total)
}

/// SplitMix64, for reproducible permutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[tokio::test]
async fn any_order_and_any_redelivery_give_the_same_index() -> Result<()> {
    let ctx = context(3)?;
    let records = scenario().records;
    let base_dir = tmp()?;
    let (base, report) = feed(base_dir.path(), &ctx, &records, 1000).await?;
    assert_eq!(report.rejected, 1);
    assert_eq!(
        report.records,
        report.transactions + report.fraud_signals + report.rejected
    );
    assert_eq!(
        report.transactions + report.fraud_signals,
        report.applied + report.unchanged
    );
    base.compact()?;
    let want_items = base.scan()?;
    let want_totals = base.all_totals()?;
    let want_snapshot = read_snapshot_lines(&base.snapshot_path()?)?;
    let mut rng = Rng(7);
    for round in 0..100 {
        let mut recs = records.clone();
        // Shuffle, redeliver some, and process the whole thing twice half of the time.
        for i in (1..recs.len()).rev() {
            let j = rng.below(i + 1);
            recs.swap(i, j);
        }
        for _ in 0..rng.below(8) {
            let r = recs[rng.below(recs.len())].clone();
            let at = rng.below(recs.len());
            recs.insert(at, r);
        }
        if round % 2 == 1 {
            recs.extend(recs.clone());
        }
        let batch = 1 + rng.below(9);
        let dir = tmp()?;
        let (index, _) = feed(dir.path(), &ctx, &recs, batch).await?;
        assert_eq!(index.scan()?, want_items, "round {round}, batch {batch}");
        assert_eq!(index.all_totals()?, want_totals, "round {round}");
        index.compact()?;
        assert_eq!(
            read_snapshot_lines(&index.snapshot_path()?)?,
            want_snapshot,
            "round {round}: the compacted store differs"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_join_enrichment_and_labels_are_right() -> Result<()> {
    let dir = tmp()?;
    let store = LocalStore::new(dir.path());
    let index = LocalTransactionIndex::open(dir.path())?;
    join_body(&store, &index).await
}

async fn join_body<S: ObjectStore, I: TransactionIndex>(store: &S, index: &I) -> Result<()> {
    let ctx = context(3)?;
    let fx = "base,quote,rate\nEUR,USD,1.0845000000\nUSD,EUR,0.9220000000\nJPY,USD,0.0066225000\nUSD,JPY,151.0000000000\n";
    store
        .put("config/fx/2026-11-20.csv", Bytes::from(fx))
        .await?;
    let mut t = scenario();
    t.txn(
        "TX-11",
        "M1",
        "U00000008",
        "1400.00",
        "EUR",
        "APPROVED",
        "2026-11-20T08:00:00.000Z",
    );
    feed_into(store, index, &ctx, &t.records, 7).await?;
    let get = |id: &str| {
        let id = TransactionId::new(id);
        async {
            let id = id?;
            index
                .get(&id)
                .await?
                .ok_or_else(|| Error::Invariant(format!("{id} missing")))
        }
    };
    let tx1 = get("TX-1").await?;
    let t1 = tx1
        .txn
        .as_ref()
        .ok_or_else(|| Error::Invariant("txn".into()))?;
    assert_eq!(t1.status, TxnStatus::Approved);
    assert!(is_token(&t1.user_token));
    assert_eq!(tx1.risk_label(), Some(RiskLabel::Ok));
    // Signal first, high score.
    let tx2 = get("TX-2").await?;
    assert_eq!(tx2.risk_label(), Some(RiskLabel::HighRisk));
    assert_eq!(
        tx2.signal.as_ref().map(|s| s.fraud_signal_id.to_string()),
        Some("FS-2".into())
    );
    // The later of two signals.
    let tx3 = get("TX-3").await?;
    assert_eq!(
        tx3.signal.as_ref().map(|s| s.fraud_score.to_string()),
        Some("0.2".into())
    );
    assert_eq!(tx3.risk_label(), Some(RiskLabel::Ok));
    let flags = |i: &recon_shared::stream::IndexItem| {
        i.derived
            .as_ref()
            .map(|d| d.policy_flags.clone())
            .unwrap_or_default()
    };
    let tx4 = get("TX-4").await?;
    assert_eq!(flags(&tx4), vec![PolicyFlag::Aml, PolicyFlag::Blacklist]);
    assert_eq!(tx4.risk_label(), Some(RiskLabel::HighRisk));
    assert_eq!(
        get("TX-5").await?.risk_label(),
        Some(RiskLabel::RequiresKyc)
    );
    // 300 001 JPY: above the JP limit, and above the KYC threshold once converted to USD.
    assert_eq!(
        flags(&get("TX-6").await?),
        vec![PolicyFlag::Kyc, PolicyFlag::RegionalLimit]
    );
    // 1400 EUR ≈ 1518 USD: KYC through the day's FX table.
    assert_eq!(flags(&get("TX-11").await?), vec![PolicyFlag::Kyc]);
    assert_eq!(
        get("TX-7").await?.txn.map(|t| t.status),
        Some(TxnStatus::Chargeback)
    );
    assert_eq!(
        flags(&get("TX-10").await?),
        vec![PolicyFlag::UnknownMerchant]
    );
    // The orphan signal waits, outside the GSIs and the states.
    let orphan = get("TX-404").await?;
    assert!(orphan.txn.is_none() && orphan.signal.is_some());
    let states = stream_states(
        index,
        &[TransactionId::new("TX-404")?, TransactionId::new("TX-2")?],
    )
    .await?;
    assert_eq!(states.streams.len(), 1);
    assert_eq!(
        states
            .streams
            .get(&TransactionId::new("TX-2")?)
            .and_then(|s| s.risk_label),
        Some(RiskLabel::HighRisk)
    );
    // VELOCITY: V0..V2 and V4 in the 20h hour (4 > 3), V3 moved out to 21h.
    for id in ["TX-V0", "TX-V1", "TX-V2", "TX-V4"] {
        assert_eq!(flags(&get(id).await?), vec![PolicyFlag::Velocity], "{id}");
    }
    assert!(flags(&get("TX-V3").await?).is_empty());
    // Merchant-day totals.
    let m1 = index
        .merchant_day(&MerchantId::new("M1")?, BusinessDate::parse("2026-11-20")?)
        .await?
        .ok_or_else(|| Error::Invariant("totals".into()))?;
    assert_eq!(m1.transactions, 13);
    assert_eq!((m1.declined, m1.refunds, m1.chargebacks), (1, 1, 1));
    assert_eq!(m1.high_risk, 1);
    let usd = Currency::new("USD")?;
    // 10 + 30 + 1600 + 70 + 5 × 1 (velocity payments) = 1715.
    assert_eq!(
        m1.volume.get(&usd).map(|d| d.to_string()),
        Some("1715.00".into())
    );
    assert_eq!(
        m1.refund_volume.get(&usd).map(|d| d.to_string()),
        Some("5.00".into())
    );
    Ok(())
}

#[tokio::test]
async fn bad_records_are_archived_with_a_reason_and_never_hold_a_raw_user_id() -> Result<()> {
    let ctx = context(12)?;
    let dir = tmp()?;
    let mut t = Topics::default();
    t.txn(
        "TX-1",
        "M1",
        "U00000001",
        "10.00",
        "USD",
        "APPROVED",
        "2026-11-20T09:00:00.000Z",
    );
    t.push(TRANSACTIONS_TOPIC, 0, 1_795_132_814_140, "U00000002", r#"{"transaction_id":"TX-2","merchant_id":"M1","user_id":"U00000002","amount":"1.001","currency":"USD","status":"APPROVED","event_time":"2026-11-20T09:00:00Z","payment_method":"CARD","note":"U00000002"}"#);
    t.push(
        TRANSACTIONS_TOPIC,
        0,
        1_795_132_814_141,
        "TX-3",
        "not json U00000003",
    );
    t.push("unknown_topic", 0, 1_795_132_814_142, "TX-4", "{}");
    let mut none = t.records[0].clone();
    none.value = None;
    none.offset = 99;
    t.records.push(none);
    let (_, report) = feed(dir.path(), &ctx, &t.records, 100).await?;
    assert_eq!(
        (report.records, report.rejected, report.transactions),
        (5, 4, 1)
    );
    let store = LocalStore::new(dir.path());
    let objects = store.list("stream/archive/").await?;
    let mut lines = Vec::new();
    for o in &objects {
        assert!(
            o.key.starts_with("stream/archive/topic=") && o.key.contains("/date=2026-11-"),
            "{}",
            o.key
        );
        let text = String::from_utf8_lossy(&store.get(&o.key).await?).into_owned();
        lines.extend(text.lines().map(str::to_string));
    }
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.contains("\"reason\"")).count(), 4);
    for l in &lines {
        for raw in ["U00000001", "U00000002", "U00000003"] {
            assert!(!l.contains(raw), "{l}");
        }
    }
    // Re-processing writes the same objects, byte for byte.
    let before: Vec<Bytes> = futures_get(&store, &objects).await?;
    let (_, again) = feed(dir.path(), &ctx, &t.records, 100).await?;
    assert_eq!(again.applied, 0);
    assert_eq!(store.list("stream/archive/").await?, objects);
    assert_eq!(futures_get(&store, &objects).await?, before);
    Ok(())
}

#[tokio::test]
async fn a_batch_is_archived_as_one_object_per_topic_and_date() -> Result<()> {
    let dir = tmp()?;
    let ctx = context(12)?;
    let mut t = Topics::default();
    // Three partitions of the transactions topic (an id's length modulo 3), and a signal.
    for id in ["TX-1", "TX-22", "TX-333", "TX-4444"] {
        t.txn(
            id,
            "M1",
            "U00000001",
            "10.00",
            "USD",
            "APPROVED",
            "2026-11-20T09:00:00.000Z",
        );
    }
    t.signal("S-1", "TX-1", "0.10", "2026-11-20T09:00:01.000Z");
    // The batch in an order of its own, and one record delivered twice.
    let mut batch: Vec<KafkaRecordIn> = t.records.iter().rev().cloned().collect();
    batch.push(t.records[1].clone());
    let (_, report) = feed(dir.path(), &ctx, &batch, batch.len()).await?;
    assert_eq!(report.archive_objects, 2);
    let store = LocalStore::new(dir.path());
    let objects = store.list("stream/archive/").await?;
    assert_eq!(objects.len(), 2, "{objects:?}");
    let txn_object = objects
        .iter()
        .find(|o| o.key.contains(&format!("topic={TRANSACTIONS_TOPIC}/")))
        .ok_or_else(|| Error::Invariant("no transactions object".into()))?;
    assert!(
        txn_object.key.contains("/date=2026-11-20/p0000-") && txn_object.key.contains("_p0002-"),
        "{}",
        txn_object.key
    );
    // Sorted by partition and offset, each record once.
    let text = String::from_utf8_lossy(&store.get(&txn_object.key).await?).into_owned();
    let coordinates: Vec<(i64, i64)> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok((
                v["partition"].as_i64().unwrap_or(-1),
                v["offset"].as_i64().unwrap_or(-1),
            ))
        })
        .collect::<Result<_>>()?;
    assert_eq!(coordinates, vec![(0, 0), (1, 0), (1, 1), (2, 0)]);
    // The same batch names the same object; a batch cut differently names another.
    let key = |recs: &[KafkaRecordIn]| {
        let mut c: Vec<(i32, i64)> = recs.iter().map(|r| (r.partition, r.offset)).collect();
        c.sort();
        c.dedup();
        recon_shared::keys::archive_key(TRANSACTIONS_TOPIC, "2026-11-20", &c)
    };
    let txns: Vec<KafkaRecordIn> = t
        .records
        .iter()
        .filter(|r| r.topic == TRANSACTIONS_TOPIC)
        .cloned()
        .collect();
    assert_eq!(key(&txns), txn_object.key);
    assert_ne!(key(&txns[..3]), txn_object.key);
    Ok(())
}

async fn futures_get(
    store: &LocalStore,
    objects: &[recon_shared::ports::ObjectInfo],
) -> Result<Vec<Bytes>> {
    let mut out = Vec::new();
    for o in objects {
        out.push(store.get(&o.key).await?);
    }
    Ok(out)
}

#[tokio::test]
async fn writes_are_conditional_on_the_version_and_settlement_stays_aside() -> Result<()> {
    let dir = tmp()?;
    let store = LocalStore::new(dir.path());
    let index = LocalTransactionIndex::open(dir.path())?;
    conditional_body(&store, &index).await?;
    // Settlements updated in place are in the log: a reader of the directory sees them.
    let reader = LocalTransactionIndex::open_read_only(dir.path())?;
    assert_eq!(reader.scan()?, index.scan()?);
    Ok(())
}

async fn conditional_body<S: ObjectStore, I: TransactionIndex>(store: &S, index: &I) -> Result<()> {
    let ctx = context(12)?;
    let mut t = Topics::default();
    t.txn(
        "TX-1",
        "M1",
        "U00000001",
        "10.00",
        "USD",
        "PENDING",
        "2026-11-20T09:00:00.000Z",
    );
    feed_into(store, index, &ctx, &t.records, 10).await?;
    let id = TransactionId::new("TX-1")?;
    let item = index
        .get(&id)
        .await?
        .ok_or_else(|| Error::Invariant("item".into()))?;
    // A write that did not read the current version, or that goes back in time, is refused.
    let stale = ConditionalPut {
        item: item.clone(),
        expected: Default::default(),
    };
    let mut older = item.clone();
    if let Some(tx) = older.txn.as_mut() {
        tx.version.event_ms -= 1;
    }
    let back = ConditionalPut {
        item: older,
        expected: item.version(),
    };
    assert_eq!(
        index.put_many(vec![stale, back]).await?,
        vec![PutOutcome::Conflict, PutOutcome::Conflict]
    );
    // Settlement write-back keeps the stream version; a later status keeps the settlement.
    let row = FinalRow {
        transaction_id: id.clone(),
        merchant_id: MerchantId::new("M1")?,
        bank_id: BankId::new("bank_01")?,
        user_token: String::new(),
        amount: "10.00".parse().map_err(|_| Error::Invariant("d".into()))?,
        currency: Currency::new("USD")?,
        status: TxnStatus::Approved,
        settlement_status: SettlementStatus::PartiallySettled,
        fraud_score: None,
        risk_label: None,
        policy_flags: Vec::new(),
        discrepancy: Some("-0.50".parse().map_err(|_| Error::Invariant("d".into()))?),
        statement_currency: Currency::new("USD")?,
        reconciled_status: ReconciledStatus::PartialMatch,
        mismatch_type: MismatchType::Amount,
        reconciliation_timestamp: chrono::DateTime::from_timestamp(1_795_219_200, 0)
            .ok_or_else(|| Error::Invariant("t".into()))?,
        detail: Default::default(),
    };
    let mut unknown = row.clone();
    unknown.transaction_id = TransactionId::new("TX-LATER")?;
    let rows = [row, unknown];
    assert_eq!(
        write_back_settlement(
            index,
            BusinessDate::parse("2026-11-20")?,
            &[&rows[0], &rows[1]]
        )
        .await?,
        2
    );
    let settled = index
        .get(&id)
        .await?
        .ok_or_else(|| Error::Invariant("item".into()))?;
    assert_eq!(settled.version(), item.version());
    // The same write-back again changes nothing.
    let ids = [id.clone(), TransactionId::new("TX-LATER")?];
    let before = index.get_many(&ids).await?;
    assert_eq!(
        write_back_settlement(
            index,
            BusinessDate::parse("2026-11-20")?,
            &[&rows[0], &rows[1]]
        )
        .await?,
        2
    );
    assert_eq!(index.get_many(&ids).await?, before);
    // What the close writes back next time: only the rows whose settlement changed.
    let day = BusinessDate::parse("2026-11-20")?;
    let held = stream_states(index, &ids).await?.settlements;
    assert_eq!(held.len(), 2);
    assert!(changed_settlements(&rows, &held, day).is_empty());
    let mut later = rows.clone();
    later[1].reconciled_status = ReconciledStatus::Matched;
    later[1].mismatch_type = MismatchType::None;
    let changed = changed_settlements(&later, &held, day);
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].transaction_id, ids[1]);
    // A projection answers in the order asked and leaves out keys without an item.
    let asked = [ids[1].clone(), TransactionId::new("TX-NONE")?, id.clone()];
    let projected = index
        .map_many(&asked, |i| {
            (i.transaction_id.clone(), i.settlement.is_some())
        })
        .await?;
    assert_eq!(projected, vec![(ids[1].clone(), true), (id.clone(), true)]);
    let mut t2 = Topics::default();
    t2.txn(
        "TX-1",
        "M1",
        "U00000001",
        "10.00",
        "USD",
        "APPROVED",
        "2026-11-20T09:00:05.000Z",
    );
    t2.txn(
        "TX-LATER",
        "M1",
        "U00000001",
        "10.00",
        "USD",
        "APPROVED",
        "2026-11-20T09:00:05.000Z",
    );
    process_batch(store, index, &ctx, &t2.records).await?;
    for id in ["TX-1", "TX-LATER"] {
        let now = index
            .get(&TransactionId::new(id)?)
            .await?
            .ok_or_else(|| Error::Invariant("item".into()))?;
        assert_eq!(now.txn.map(|t| t.status), Some(TxnStatus::Approved));
        assert_eq!(
            now.settlement.map(|s| s.settlement_status),
            Some(SettlementStatus::PartiallySettled),
            "{id}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn gsi_pages_cover_everything_once_and_cursors_are_checked() -> Result<()> {
    let dir = tmp()?;
    let store = LocalStore::new(dir.path());
    let index = LocalTransactionIndex::open(dir.path())?;
    gsi_body(&store, &index).await
}

async fn gsi_body<S: ObjectStore, I: TransactionIndex>(store: &S, index: &I) -> Result<()> {
    let ctx = context(1000)?;
    let mut t = Topics::default();
    for i in 0..57 {
        let day = 18 + i % 3;
        t.txn(
            &format!("TX-{i:03}"),
            if i % 2 == 0 { "M1" } else { "M3" },
            "U00000001",
            "1.00",
            "USD",
            "APPROVED",
            &format!("2026-11-{day}T10:{:02}:00.000Z", i % 60),
        );
    }
    feed_into(store, index, &ctx, &t.records, 500).await?;
    let token = index
        .get(&TransactionId::new("TX-000")?)
        .await?
        .and_then(|i| i.txn.map(|t| t.user_token))
        .ok_or_else(|| Error::Invariant("token".into()))?;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = index
            .query(&IndexQuery {
                gsi: Gsi::ByUser,
                key: token.clone(),
                from: None,
                to: None,
                limit: 10,
                cursor: cursor.clone(),
            })
            .await?;
        seen.extend(page.items.iter().map(|i| i.transaction_id.to_string()));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 57);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 57);
    // Ordered by day: the 18th first.
    assert!(seen.first().is_some_and(|s| s == "TX-000"));
    let by_day = index
        .query(&IndexQuery {
            gsi: Gsi::ByMerchant,
            key: "M1".into(),
            from: BusinessDate::parse("2026-11-19").ok(),
            to: BusinessDate::parse("2026-11-19").ok(),
            limit: 1000,
            cursor: None,
        })
        .await?;
    assert!(by_day.items.iter().all(|i| {
        i.txn
            .as_ref()
            .is_some_and(|t| t.txn_day.to_string() == "2026-11-19")
    }));
    assert_eq!(by_day.items.len(), 9);
    // A cursor of another key, garbage, or bounds out of order.
    let first = index
        .query(&IndexQuery {
            gsi: Gsi::ByMerchant,
            key: "M1".into(),
            from: None,
            to: None,
            limit: 1,
            cursor: None,
        })
        .await?;
    for bad in [
        first.next.clone().unwrap_or_default(),
        "!!".into(),
        "dGVzdA".into(),
    ] {
        let r = index
            .query(&IndexQuery {
                gsi: Gsi::ByUser,
                key: token.clone(),
                from: None,
                to: None,
                limit: 5,
                cursor: Some(bad),
            })
            .await;
        assert!(
            matches!(r, Err(Error::InvalidId { kind: "cursor", .. })),
            "{r:?}"
        );
    }
    let empty = index
        .query(&IndexQuery {
            gsi: Gsi::ByUser,
            key: token,
            from: BusinessDate::parse("2026-11-20").ok(),
            to: BusinessDate::parse("2026-11-18").ok(),
            limit: 5,
            cursor: None,
        })
        .await?;
    assert!(empty.items.is_empty() && empty.next.is_none());
    Ok(())
}

/// The files of the local TransactionIndex under `dir` whose name starts with `prefix`.
fn store_files(dir: &Path, prefix: &str) -> Result<Vec<std::path::PathBuf>> {
    let idx = dir.join("state/transaction_index");
    let mut files = Vec::new();
    for e in std::fs::read_dir(&idx).map_err(|e| Error::io(&idx, e))? {
        let p = e.map_err(|e| Error::io(&idx, e))?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        {
            files.push(p);
        }
    }
    Ok(files)
}

#[tokio::test]
async fn the_store_reopens_to_the_same_state_and_readers_follow_the_writer() -> Result<()> {
    let ctx = context(3)?;
    let dir = tmp()?;
    let records = scenario().records;
    let (half, rest) = records.split_at(records.len() / 2);
    let (writer, _) = feed(dir.path(), &ctx, half, 5).await?;
    let reader = LocalTransactionIndex::open_read_only(dir.path())?;
    assert_eq!(reader.scan()?, writer.scan()?);
    // A second writer is refused while the first holds the lock, and told so.
    match LocalTransactionIndex::open(dir.path()) {
        Err(e @ Error::Locked { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("in use by another process")
                    && msg.contains(&format!("pid {}", std::process::id()))
                    && msg.contains("LOCK")
                    && !msg.contains("invalid config"),
                "{msg}"
            );
        }
        Err(e) => panic!("a second writer: {e}"),
        Ok(_) => panic!("a second writer was let in"),
    }
    let store = LocalStore::new(dir.path());
    for chunk in rest.chunks(4) {
        process_batch(&store, &writer, &ctx, chunk).await?;
    }
    writer.compact()?;
    process_batch(&store, &writer, &ctx, &records[..3]).await?;
    let want = writer.scan()?;
    let totals = writer.all_totals()?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        reader.scan()?,
        want,
        "the reader follows new lines and generations"
    );
    drop(writer);
    // A torn last line (a crash mid-write) is dropped on open.
    let log = store_files(dir.path(), "log-")?
        .pop()
        .ok_or_else(|| Error::Invariant("no log".into()))?;
    let mut bytes = std::fs::read(&log).map_err(|e| Error::io(&log, e))?;
    bytes.extend_from_slice(b"{\"transaction_id\":\"TX-");
    std::fs::write(&log, &bytes).map_err(|e| Error::io(&log, e))?;
    let again = LocalTransactionIndex::open(dir.path())?;
    assert_eq!(again.scan()?, want);
    assert_eq!(again.all_totals()?, totals);
    drop(again);
    // A damaged line is an error that names the file and the line.
    let snapshot = store_files(dir.path(), "snapshot-")?
        .pop()
        .ok_or_else(|| Error::Invariant("no snapshot".into()))?;
    let text = std::fs::read_to_string(&snapshot).map_err(|e| Error::io(&snapshot, e))?;
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{} snapshot lines", lines.len());
    lines[1] = "{\"transaction_id\":";
    std::fs::write(&snapshot, lines.join("\n") + "\n").map_err(|e| Error::io(&snapshot, e))?;
    let err = LocalTransactionIndex::open(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("snapshot-") && err.contains("line 2:"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unlogged_load_is_kept_by_its_compaction_and_lost_without_it() -> Result<()> {
    let ctx = context(3)?;
    let records = scenario().records;
    let (half, rest) = records.split_at(records.len() / 2);
    let logged_dir = tmp()?;
    let (logged, _) = feed(logged_dir.path(), &ctx, &records, 5).await?;
    logged.compact()?;

    let dir = tmp()?;
    let (index, _) = feed(dir.path(), &ctx, half, 5).await?;
    let before = index.scan()?;
    let log_len = |dir: &Path| -> Result<u64> {
        let mut total = 0;
        for p in store_files(dir, "log-")? {
            total += std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
        }
        Ok(total)
    };
    let logged_bytes = log_len(dir.path())?;
    index.load_unlogged()?;
    let store = LocalStore::new(dir.path());
    feed_into(&store, &index, &ctx, rest, 5).await?;
    assert_eq!(log_len(dir.path())?, logged_bytes, "nothing is logged");
    assert_eq!(
        index.scan()?,
        logged.scan()?,
        "the load is applied in memory"
    );
    // Stopped before its compaction, the load is gone and the store is as it was.
    drop(index);
    let reopened = LocalTransactionIndex::open(dir.path())?;
    assert_eq!(reopened.scan()?, before);
    // Redone and compacted, it is kept; writes after the compaction are logged again.
    let (load, tail) = rest.split_at(rest.len() - 6);
    reopened.load_unlogged()?;
    feed_into(&store, &reopened, &ctx, load, 5).await?;
    reopened.compact()?;
    assert_eq!(log_len(dir.path())?, 0);
    let report = process_batch(&store, &reopened, &ctx, tail).await?;
    assert!(report.applied > 0);
    assert!(
        log_len(dir.path())? > 0,
        "after the compaction writes are logged"
    );
    drop(reopened);
    let again = LocalTransactionIndex::open(dir.path())?;
    assert_eq!(again.scan()?, logged.scan()?);
    again.compact()?;
    assert_eq!(
        read_snapshot_lines(&again.snapshot_path()?)?,
        read_snapshot_lines(&logged.snapshot_path()?)?
    );
    Ok(())
}

/// The same bodies on S3 and DynamoDB (moto), and the order and redelivery independence of
/// the DynamoDB item and aggregate writes against the local store's state.
#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use recon_shared::aws::dynamo::{
        DynamoTransactionIndex, EXPIRES_AT, TableNames, USER_HOUR_RETENTION_SECS, create_tables,
        user_hour_expiry,
    };
    use recon_shared::aws::s3::{S3Store, UploadSettings};
    use recon_shared::aws::testing::{moto, unique};

    async fn ports(sdk: &aws_config::SdkConfig) -> Result<(S3Store, DynamoTransactionIndex)> {
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        let store = S3Store::new(
            aws_sdk_s3::Client::from_conf(conf),
            unique("recon-stream"),
            UploadSettings::default(),
        );
        store.create_bucket().await?;
        let client = aws_sdk_dynamodb::Client::new(sdk);
        let names = TableNames::prefixed(&unique("recon"));
        create_tables(&client, &names).await?;
        let mut index = DynamoTransactionIndex::new(client, names.transaction_index);
        // Small GSI pages, so a page of the API spans several Query pages.
        index.query_page_size = Some(7);
        Ok((store, index))
    }

    #[tokio::test]
    async fn dynamodb_join_enrichment_and_labels_are_right() -> Result<()> {
        let Some(sdk) = moto("dynamodb_join_enrichment_and_labels_are_right").await else {
            return Ok(());
        };
        let (store, index) = ports(&sdk).await?;
        join_body(&store, &index).await
    }

    #[tokio::test]
    async fn dynamodb_writes_are_conditional_and_settlement_stays_aside() -> Result<()> {
        let Some(sdk) = moto("dynamodb_writes_are_conditional_and_settlement_stays_aside").await
        else {
            return Ok(());
        };
        let (store, index) = ports(&sdk).await?;
        conditional_body(&store, &index).await
    }

    #[tokio::test]
    async fn dynamodb_gsi_pages_cover_everything_once() -> Result<()> {
        let Some(sdk) = moto("dynamodb_gsi_pages_cover_everything_once").await else {
            return Ok(());
        };
        let (store, index) = ports(&sdk).await?;
        gsi_body(&store, &index).await
    }

    #[tokio::test]
    async fn dynamodb_state_is_independent_of_order_and_redelivery() -> Result<()> {
        let Some(sdk) = moto("dynamodb_state_is_independent_of_order_and_redelivery").await else {
            return Ok(());
        };
        let ctx = context(3)?;
        let records = scenario().records;
        let dir = tmp()?;
        let (base, _) = feed(dir.path(), &ctx, &records, 1000).await?;
        let want_items = base.scan()?;
        let want_totals = base.all_totals()?;
        let ids: Vec<TransactionId> = want_items
            .iter()
            .map(|i| i.transaction_id.clone())
            .collect();
        let mut hours: std::collections::BTreeMap<(String, i64), u64> = Default::default();
        for i in &want_items {
            if let Some((u, h)) = i.user_hour() {
                *hours.entry((u.to_string(), h)).or_default() += 1;
            }
        }
        let mut rng = Rng(11);
        for round in 0..2 {
            let (store, index) = ports(&sdk).await?;
            let mut recs = records.clone();
            for i in (1..recs.len()).rev() {
                let j = rng.below(i + 1);
                recs.swap(i, j);
            }
            for _ in 0..4 {
                let r = recs[rng.below(recs.len())].clone();
                let at = rng.below(recs.len());
                recs.insert(at, r);
            }
            if round == 1 {
                recs.extend(recs.clone());
            }
            feed_into(&store, &index, &ctx, &recs, 5).await?;
            assert_eq!(index.get_many(&ids).await?, want_items, "round {round}");
            for t in &want_totals {
                assert_eq!(
                    index
                        .merchant_day(&t.merchant_id, t.txn_day)
                        .await?
                        .as_ref(),
                    Some(t),
                    "round {round}"
                );
            }
            let keys: Vec<(String, i64)> = hours.keys().cloned().collect();
            assert_eq!(
                index.user_hour_counts(&keys).await?,
                hours.values().copied().collect::<Vec<_>>()
            );
            // Each counter carries its expiry (the table's TTL attribute), 30 days after its hour.
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let (user, hour) = keys
                .first()
                .cloned()
                .ok_or_else(|| Error::Invariant("no user hour".into()))?;
            let item = client
                .get_item()
                .table_name(index.table())
                .key(
                    "transaction_id",
                    AttributeValue::S(format!("uh#{user}#{hour}")),
                )
                .send()
                .await
                .map_err(|e| Error::Invariant(format!("get_item: {e}")))?;
            assert_eq!(
                item.item().and_then(|i| i.get(EXPIRES_AT)),
                Some(&AttributeValue::N(user_hour_expiry(hour).to_string())),
            );
            assert_eq!(
                user_hour_expiry(hour),
                (hour + 1) * 3600 + USER_HOUR_RETENTION_SECS
            );
            assert_eq!(
                index
                    .merchant_day(
                        &MerchantId::new("M404")?,
                        BusinessDate::parse("2026-11-20")?
                    )
                    .await?,
                None
            );
        }
        Ok(())
    }
}
