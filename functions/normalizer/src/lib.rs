//! `normalizer`: turns the accepted files of one delivery into curated Parquet.
//!
//! Its event is the [`NormalizeRequest`] the validator hands on (invoked asynchronously or
//! through a queue); the work is [`recon_shared::ingest::normalize`].

use recon_shared::Result;
use recon_shared::config::Settings;
use recon_shared::entry::{Function, Invocation};
pub use recon_shared::ingest::NormalizeRequest;
use recon_shared::ingest::{NormalizeOutcome, normalize};
use recon_shared::pii::PiiKey;
use recon_shared::ports::{Catalog, ManifestTable, ObjectStore};
use recon_shared::select::{AnyCatalog, AnyManifests, AnyStore, Backend, PiiKeySource};

pub async fn handle<S: ObjectStore, M: ManifestTable, C: Catalog>(
    req: NormalizeRequest,
    store: &S,
    table: &M,
    catalog: &C,
    pii: &PiiKey,
) -> Result<NormalizeOutcome> {
    normalize(store, table, catalog, pii, &req).await
}

/// EMF line of one delivery: records in, accepted, rejected, duplicates, the reject rate and
/// the duration, with the source and date as properties.
pub fn metrics(
    outcome: &NormalizeOutcome,
    environment: &str,
    duration_ms: u64,
    timestamp_ms: i64,
) -> String {
    let t = outcome.totals();
    recon_shared::metrics::Emf::new(environment, "normalizer")
        .count("RecordsIn", t.records_in)
        .count("RecordsAccepted", t.accepted)
        .count("RecordsRejected", t.rejected)
        .count("RecordsDuplicate", t.duplicates)
        .ratio("RejectRate", t.rejected, t.records_in)
        .millis("Duration", duration_ms)
        .property("SourceId", outcome.source_id.as_str())
        .property("BusinessDate", outcome.business_date.to_string())
        .property("Version", outcome.version)
        .line(timestamp_ms)
}

/// The Lambda (served by `recon_shared::entry`): one delivery over the bucket, the Manifests
/// table and the catalog, user ids tokenized with the deployment's key (its secret, read
/// again every [`KEY_TTL_MS`], so a rotation reaches a warm function); then its metrics line.
pub struct Lambda {
    pii: PiiKeySource,
    ports: (AnyStore, AnyManifests, AnyCatalog),
}

/// How long a warm normalizer uses its PII key before reading the secret again.
pub const KEY_TTL_MS: i64 = 5 * 60 * 1000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Function for Lambda {
    type Event = NormalizeRequest;
    type Output = NormalizeOutcome;

    async fn init(settings: &Settings, backend: &Backend) -> Result<Self> {
        let pii = backend
            .pii_key_source(settings, KEY_TTL_MS, now_ms())
            .await?;
        let ports = (backend.store()?, backend.manifests()?, backend.catalog()?);
        Ok(Self { pii, ports })
    }

    async fn handle(&self, req: NormalizeRequest) -> Result<NormalizeOutcome> {
        // The library logs the outcome ("delivery normalized", or that the request was stale).
        let (store, manifests, catalog) = &self.ports;
        let pii = self.pii.get(now_ms()).await?;
        handle(req, store, manifests, catalog, &pii).await
    }

    fn metrics(&self, outcome: &NormalizeOutcome, at: &Invocation<'_>) -> Vec<String> {
        vec![metrics(
            outcome,
            at.environment,
            at.duration_ms,
            at.timestamp_ms,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_delivery_metrics_count_records_and_never_carry_them() -> Result<()> {
        let outcome: NormalizeOutcome = serde_json::from_value(json!({
            "source_id": "bank_01", "business_date": "2026-11-20", "version": 2,
            "kind": "statement",
            "files": [["a.csv", {"records_in": 600, "accepted": 590, "rejected": 6, "duplicates": 4}],
                      ["b.csv", {"records_in": 400, "accepted": 400, "rejected": 0, "duplicates": 0}]],
            "outputs": ["curated/statements/business_date=2026-11-20/bank_id=bank_01/part.parquet"],
            "removed": [], "stale": false
        }))?;
        let line = metrics(&outcome, "dev", 35, 1_795_226_400_000);
        let m = recon_shared::metrics::parse_line(&line)?;
        assert_eq!(m["RecordsIn"], json!(1000));
        assert_eq!(m["RecordsAccepted"], json!(990));
        assert_eq!(m["RecordsRejected"], json!(6));
        assert_eq!(m["RecordsDuplicate"], json!(4));
        assert_eq!(m["RejectRate"], json!(0.006));
        assert_eq!(m["Duration"], json!(35));
        let v: serde_json::Value = serde_json::from_str(&line)?;
        assert_eq!(v["SourceId"], "bank_01");
        assert_eq!(v["Environment"], "dev");
        assert!(!line.contains("a.csv") && !line.contains("curated/"));
        Ok(())
    }
}
