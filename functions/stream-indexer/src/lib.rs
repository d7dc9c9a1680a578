//! `stream-indexer`: the MSK trigger of `transactions_topic` and `fraud_signals_topic`.
//!
//! Thin: turns the Kafka event (records per topic-partition, base64 keys and values) into the
//! core's records and hands the batch to [`recon_shared::stream::process_batch`], which
//! decodes, archives and indexes it. Bad records are archived and counted there; only an
//! infrastructure error fails the invocation (the event source mapping then retries the batch,
//! which is safe: indexing is idempotent).

use aws_lambda_events::event::kafka::KafkaEvent;
use recon_shared::Result;
use recon_shared::config::Settings;
use recon_shared::entry::{Function, Invocation};
use recon_shared::ports::{ObjectStore, TransactionIndex};
use recon_shared::select::{AnyIndex, AnyStore, Backend, IndexMode, PiiKeySource};
use recon_shared::stream::{
    BatchReport, FreshContext, KafkaRecordIn, StreamContext, process_batch,
};

/// The event's records, topic-partitions in name order, each in delivery order.
pub fn records(event: &KafkaEvent) -> Vec<KafkaRecordIn> {
    let mut groups: Vec<_> = event.records.iter().collect();
    groups.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(groups.iter().map(|(_, v)| v.len()).sum());
    for (name, recs) in groups {
        for r in recs {
            // The group name is `{topic}-{partition}` when a record lacks its topic.
            let topic = r.topic.clone().unwrap_or_else(|| {
                name.rsplit_once('-')
                    .map_or(name.as_str(), |(t, _)| t)
                    .to_string()
            });
            out.push(KafkaRecordIn {
                topic,
                partition: i32::try_from(r.partition).unwrap_or(-1),
                offset: r.offset,
                timestamp_ms: r.timestamp.0.timestamp_millis(),
                key: r.key.clone(),
                value: r.value.clone(),
            });
        }
    }
    out
}

pub async fn handle<S: ObjectStore, I: TransactionIndex>(
    event: KafkaEvent,
    store: &S,
    index: &I,
    ctx: &StreamContext,
) -> Result<BatchReport> {
    process_batch(store, index, ctx, &records(&event)).await
}

/// EMF line of one MSK batch: records in, per topic, rejected, applied, unchanged, duration.
pub fn metrics(r: &BatchReport, environment: &str, duration_ms: u64, timestamp_ms: i64) -> String {
    recon_shared::metrics::Emf::new(environment, "stream-indexer")
        .count("RecordsIn", r.records)
        .count("RecordsAccepted", r.transactions + r.fraud_signals)
        .count("RecordsRejected", r.rejected)
        .count("RecordsApplied", r.applied)
        .count("RecordsUnchanged", r.unchanged)
        .count("PendingSignals", r.pending_signals)
        .millis("Duration", duration_ms)
        .line(timestamp_ms)
}

/// How long a poller uses the enrichment context before reading `config/` again.
pub const CONTEXT_TTL_MS: i64 = 5 * 60 * 1000;

/// The Lambda (served by `recon_shared::entry`): MSK batches over the bucket and the
/// TransactionIndex, with the enrichment context (user ids tokenized with
/// the deployment's key: its secret, read again every [`CONTEXT_TTL_MS`], so a rotation reaches
/// the poller) read at start and again every [`CONTEXT_TTL_MS`]; then the
/// batch's metrics line.
pub struct Lambda {
    store: AnyStore,
    index: AnyIndex,
    key: PiiKeySource,
    ctx: FreshContext,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Function for Lambda {
    type Event = KafkaEvent;
    type Output = BatchReport;

    async fn init(settings: &Settings, backend: &Backend) -> Result<Self> {
        let store = backend.store()?;
        let key = backend
            .pii_key_source(settings, CONTEXT_TTL_MS, now_ms())
            .await?;
        let ctx =
            FreshContext::load(&store, key.get(now_ms()).await?, CONTEXT_TTL_MS, now_ms()).await?;
        let index = backend.index(IndexMode::Writer)?;
        Ok(Self {
            store,
            index,
            key,
            ctx,
        })
    }

    async fn handle(&self, event: KafkaEvent) -> Result<BatchReport> {
        // The library logs the batch's counts ("stream batch indexed").
        let now = now_ms();
        let key = self.key.get(now).await?;
        let ctx = self.ctx.get(&self.store, &key, now).await?;
        handle(event, &self.store, &self.index, &ctx).await
    }

    fn metrics(&self, report: &BatchReport, at: &Invocation<'_>) -> Vec<String> {
        vec![metrics(
            report,
            at.environment,
            at.duration_ms,
            at.timestamp_ms,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recon_shared::Error;

    #[test]
    fn the_batch_metrics_are_an_emf_record() -> Result<()> {
        let r = BatchReport {
            records: 500,
            transactions: 300,
            fraud_signals: 190,
            rejected: 10,
            applied: 480,
            unchanged: 10,
            pending_signals: 3,
            ..BatchReport::default()
        };
        let m = recon_shared::metrics::parse_line(&metrics(&r, "prod", 40, 1))?;
        assert_eq!(m["RecordsIn"], serde_json::json!(500));
        assert_eq!(m["RecordsAccepted"], serde_json::json!(490));
        assert_eq!(m["RecordsRejected"], serde_json::json!(10));
        assert_eq!(m["RecordsApplied"], serde_json::json!(480));
        assert_eq!(m["PendingSignals"], serde_json::json!(3));
        Ok(())
    }

    #[test]
    fn the_sample_event_round_trips_and_decodes() -> Result<()> {
        let raw = include_str!("../../../events/stream-indexer/msk-batch.json");
        let event: KafkaEvent = serde_json::from_str(raw)?;
        let again: KafkaEvent = serde_json::from_str(&serde_json::to_string(&event)?)?;
        assert_eq!(event, again);
        let recs = records(&event);
        assert_eq!(recs.len(), 4);
        assert!(recs.windows(2).all(|w| {
            (w[0].topic.as_str(), w[0].partition) <= (w[1].topic.as_str(), w[1].partition)
        }));
        assert!(
            recs.iter().any(|r| r.topic == "fraud_signals_topic"),
            "{recs:?}"
        );
        recs.first()
            .map(|_| ())
            .ok_or_else(|| Error::Invariant("no records".into()))
    }
}
