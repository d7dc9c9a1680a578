//! The day's Kafka topics (`topics/*.jsonl`): transactions and fraud signals in arrival order,
//! with the generator's redeliveries and late records.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use recon_shared::Result;
use recon_shared::ids::BusinessDate;
use recon_shared::records::TxnStatus;
use rust_decimal::Decimal;
use serde_json::json;

use super::day::{Day, Txn};
use super::knobs::Knobs;
use super::rng::Rng;
use super::text::{fmt_minor, push_rfc3339_ms, rfc3339_ms, user_id};
use super::world::World;
use super::write::Tree;

/// Partitions of each Kafka topic.
pub const TOPIC_PARTITIONS: u64 = recon_shared::index_item::TOPIC_PARTITIONS as u64;

fn partition_of(key: &str) -> u64 {
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % TOPIC_PARTITIONS
}

struct Event {
    arrival_ms: i64,
    key: String,
    value: String,
}

/// Orders events by arrival, numbers offsets per partition, and adds redeliveries.
fn topic_file(topic: &str, mut events: Vec<Event>, knobs: &Knobs, rng: &mut Rng) -> Vec<u8> {
    events.sort_by(|a, b| (a.arrival_ms, &a.key, &a.value).cmp(&(b.arrival_ms, &b.key, &b.value)));
    let mut offsets = [0u64; TOPIC_PARTITIONS as usize];
    let mut out = String::with_capacity(
        events.iter().map(|e| e.value.len() + 120).sum::<usize>() * 102 / 100,
    );
    // Records to deliver again: position (in records) -> byte ranges already written.
    let mut pending: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let p = partition_of(&e.key);
        let offset = offsets[p as usize];
        offsets[p as usize] += 1;
        let start = out.len();
        let _ = writeln!(
            out,
            "{{\"topic\":\"{topic}\",\"partition\":{p},\"offset\":{offset},\"timestamp\":{},\"key\":\"{}\",\"value\":{}}}",
            e.arrival_ms, e.key, e.value
        );
        if rng.chance(knobs.redelivery) {
            pending
                .entry(i + 1 + rng.below(500) as usize)
                .or_default()
                .push((start, out.len()));
        }
        if let Some(again) = pending.remove(&i) {
            for (a, b) in again {
                out.extend_from_within(a..b);
            }
        }
    }
    for (_, again) in pending {
        for (a, b) in again {
            out.extend_from_within(a..b);
        }
    }
    out.into_bytes()
}

fn arrival(rng: &mut Rng, knobs: &Knobs, at_ms: i64) -> i64 {
    let mut a = at_ms + rng.range(50, 2000);
    if rng.chance(knobs.out_of_order) {
        a += rng.range(60_000, 900_000);
    }
    a
}

fn txn_value(world: &World, day: &Day, t: &Txn, status: TxnStatus, event_ms: i64) -> String {
    // Ids are validated ASCII without quotes, so no JSON escaping is needed.
    let mut v = String::with_capacity(256);
    let _ = write!(
        v,
        "{{\"transaction_id\":\"{}\",\"merchant_id\":\"{}\",\"user_id\":\"{}\",\"amount\":\"",
        t.id,
        world.merchants[t.merchant as usize].merchant_id,
        user_id(t.user)
    );
    fmt_minor(&mut v, t.amount_minor, t.currency.exponent(), '.');
    let _ = write!(
        v,
        "\",\"currency\":\"{}\",\"status\":\"{}\",\"event_time\":\"",
        t.currency, status
    );
    push_rfc3339_ms(&mut v, event_ms);
    let _ = write!(v, "\",\"payment_method\":\"{}\"", t.method);
    if let Some(o) = t.original {
        let _ = write!(
            v,
            ",\"original_transaction_id\":\"{}\"",
            day.txns[o as usize].id
        );
    }
    v.push('}');
    v
}

/// `topics/transactions_topic.jsonl` and `topics/fraud_signals_topic.jsonl`.
pub fn topics(world: &World, day: &Day, knobs: &Knobs, rng: &mut Rng) -> Result<Tree> {
    let date = world.date;
    let streamed: Vec<&Txn> = day
        .txns
        .iter()
        .filter(|t| t.business_date == date)
        .chain(day.declined.iter())
        .collect();
    topics_of(world, day, knobs, rng, &[(date, streamed)])
}

/// The topics of several days, one file per topic with every day in arrival order: for each
/// date, the transactions streamed that day and the day's fraud signals.
pub(crate) fn topics_of(
    world: &World,
    day: &Day,
    knobs: &Knobs,
    rng: &mut Rng,
    days: &[(BusinessDate, Vec<&Txn>)],
) -> Result<Tree> {
    let mut events = Vec::new();
    let mut signals = Vec::new();
    for (date, streamed) in days {
        day_events(
            world,
            day,
            knobs,
            rng,
            *date,
            streamed,
            &mut events,
            &mut signals,
        );
    }
    let mut sig_events = Vec::with_capacity(signals.len());
    for (dc, txn, score, inferred, n, high) in signals {
        let mut v = json!({
            "fraud_signal_id": format!("FS-{dc}-{n:09}"),
            "transaction_id": txn,
            "fraud_score": Decimal::new(score, 4).to_string(),
            "model_version": "fraud-gbm-2026.11.2",
            "inference_time": rfc3339_ms(inferred),
        });
        if high {
            v["reason_code"] = json!(*rng.pick(&["VELOCITY", "DEVICE_MISMATCH", "GEO_ANOMALY"]));
        }
        let sent = inferred + rng.range(0, 1000);
        sig_events.push(Event {
            arrival_ms: arrival(rng, knobs, sent),
            key: txn,
            value: v.to_string(),
        });
    }
    let mut tree = Tree::new();
    tree.insert(
        "topics/transactions_topic.jsonl".into(),
        topic_file("transactions_topic", events, knobs, rng),
    );
    tree.insert(
        "topics/fraud_signals_topic.jsonl".into(),
        topic_file("fraud_signals_topic", sig_events, knobs, rng),
    );
    Ok(tree)
}

/// A fraud signal before it is sent: (date as `yyyymmdd`, transaction id, score, inference
/// time, number within its day, high risk).
type Signal = (String, String, i64, i64, usize, bool);

/// One day's transaction events and fraud signals.
#[allow(clippy::too_many_arguments)]
fn day_events(
    world: &World,
    day: &Day,
    knobs: &Knobs,
    rng: &mut Rng,
    date: BusinessDate,
    streamed: &[&Txn],
    events: &mut Vec<Event>,
    signals: &mut Vec<Signal>,
) {
    let dc = date.to_string().replace('-', "");
    let mut n_signals = 0usize;
    for t in streamed {
        let mut push = |rng: &mut Rng, status: TxnStatus, at: i64| {
            events.push(Event {
                arrival_ms: arrival(rng, knobs, at),
                key: t.id.clone(),
                value: txn_value(world, day, t, status, at),
            });
        };
        match t.status {
            TxnStatus::Approved if rng.chance(knobs.pending_first) => {
                let at = t.event_ms - rng.range(1_000, 30_000);
                push(rng, TxnStatus::Pending, at);
                push(rng, TxnStatus::Approved, t.event_ms);
            }
            TxnStatus::Chargeback => {
                push(rng, TxnStatus::Approved, t.event_ms);
                let at = t.event_ms + rng.range(3_600_000, 6 * 3_600_000);
                push(rng, TxnStatus::Chargeback, at);
            }
            s => push(rng, s, t.event_ms),
        }
        if rng.chance(knobs.fraud_coverage) {
            n_signals += 1;
            let high = rng.chance(400);
            let score = if high {
                rng.range(8001, 9999)
            } else {
                rng.range(0, 6000)
            };
            let inferred = t.event_ms + rng.range(100, 1500);
            signals.push((dc.clone(), t.id.clone(), score, inferred, n_signals, high));
        }
    }
    let fr = u64::from(knobs.fraud_reference.max(1));
    let orphans = (n_signals as u64 * (10_000 - fr.min(10_000)) / fr) as usize;
    let midnight = date
        .date()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp_millis())
        .unwrap_or_default();
    for i in 0..orphans {
        n_signals += 1;
        let score = rng.range(0, 9999);
        signals.push((
            dc.clone(),
            format!("TX-{dc}-F{:08}", i + 1),
            score,
            midnight + rng.range(0, 86_399_000),
            n_signals,
            score > 8000,
        ));
    }
}
