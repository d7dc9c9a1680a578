//! Ingestion on a local directory that plays the bucket: for every
//! `landing/*/*/_manifest.json`, the S3 event the bucket would send, handed to the same
//! handlers the Lambda functions run: the manifest validator, then the normalizer for each
//! delivery it accepts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use recon_shared::Result;
use recon_shared::ids::BusinessDate;
use recon_shared::ingest::{DeliveryStatus, FileCounts, NormalizeOutcome, ValidationOutcome};
use recon_shared::keys;
use recon_shared::local::{LocalCatalog, LocalManifests, LocalStore};
use recon_shared::pii::PiiKey;
use recon_shared::ports::ObjectStore;

use crate::local::{LOCAL_BUCKET, local_pii_key};

/// The directory that plays the bucket, and the close's date (default: the latest date with a
/// delivery).
pub struct RunConfig {
    pub data: PathBuf,
    pub date: Option<BusinessDate>,
}

/// Per source: what ingestion did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSummary {
    pub deliveries: u32,
    pub unchanged: u32,
    pub files_accepted: u32,
    pub files_quarantined: u32,
    pub counts: FileCounts,
    pub versions: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    pub sources: BTreeMap<String, SourceSummary>,
    /// `(file, reason code)` of everything quarantined in this run.
    pub quarantined: Vec<(String, String)>,
    /// `(manifest key, error)` of deliveries that could not be processed: each fails alone,
    /// the others go on.
    pub failed: Vec<(String, String)>,
    /// Deliveries validated before whose normalization was asked for again (a crash or lost
    /// hand-off repaired, a late file picked up).
    pub resumed: Vec<String>,
}

impl IngestReport {
    pub fn totals(&self) -> (u32, u32, FileCounts) {
        self.sources
            .values()
            .fold((0, 0, FileCounts::default()), |(a, q, c), s| {
                (
                    a + s.files_accepted,
                    q + s.files_quarantined,
                    FileCounts {
                        records_in: c.records_in + s.counts.records_in,
                        accepted: c.accepted + s.counts.accepted,
                        rejected: c.rejected + s.counts.rejected,
                        duplicates: c.duplicates + s.counts.duplicates,
                    },
                )
            })
    }

    /// The summary table printed by `recon run`.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<10} {:>4} {:>9} {:>11} {:>10} {:>10} {:>9} {:>10}\n",
            "source",
            "ver",
            "files ok",
            "quarantined",
            "records",
            "accepted",
            "rejected",
            "duplicates"
        );
        let row = |name: &str, ver: String, ok: u32, q: u32, c: &FileCounts| {
            format!(
                "{name:<10} {ver:>4} {ok:>9} {q:>11} {:>10} {:>10} {:>9} {:>10}\n",
                c.records_in, c.accepted, c.rejected, c.duplicates
            )
        };
        for (name, s) in &self.sources {
            let ver = s
                .versions
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            out.push_str(&row(
                name,
                ver,
                s.files_accepted,
                s.files_quarantined,
                &s.counts,
            ));
        }
        let (a, q, c) = self.totals();
        out.push_str(&row("total", String::new(), a, q, &c));
        out
    }
}

/// Validates and normalizes every delivery under `landing/` (in key order).
pub async fn ingest(cfg: &RunConfig) -> Result<IngestReport> {
    let store = LocalStore::new(&cfg.data);
    let mut manifests: Vec<_> = store
        .list(keys::LANDING)
        .await?
        .into_iter()
        .filter(|o| keys::is_manifest_key(&o.key))
        .collect();
    // Deliveries are independent: two at a time, the largest first (sizes from the manifests'
    // directories are not known here, so by key; the ledger and the big banks come early).
    manifests.sort_by(|a, b| a.key.cmp(&b.key));
    let pii = local_pii_key()?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Done = (Vec<ValidationOutcome>, Vec<NormalizeOutcome>);
    let slots: Vec<std::sync::Mutex<Option<Result<Done>>>> = manifests
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(manifests.len())
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
                    return;
                };
                let (table, catalog) =
                    (LocalManifests::new(&cfg.data), LocalCatalog::new(&cfg.data));
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(obj) = manifests.get(i) else { break };
                    let r =
                        rt.block_on(deliver(&store, &table, &catalog, &pii, &obj.key, obj.size));
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut report = IngestReport::default();
    for (slot, obj) in slots.into_iter().zip(&manifests) {
        let done =
            slot.into_inner().ok().flatten().ok_or_else(|| {
                recon_shared::Error::Invariant("a delivery was not processed".into())
            })?;
        let (outcomes, normalized) = match done {
            Ok(done) => done,
            Err(e) => {
                report.failed.push((obj.key.clone(), e.to_string()));
                continue;
            }
        };
        for outcome in &outcomes {
            let s = report
                .sources
                .entry(outcome.source_id.to_string())
                .or_default();
            s.deliveries += 1;
            match outcome.status {
                DeliveryStatus::Unchanged => s.unchanged += 1,
                DeliveryStatus::Resumed => report
                    .resumed
                    .push(format!("{}/{}", outcome.source_id, outcome.business_date)),
                _ => {}
            }
            s.files_accepted += outcome.accepted.len() as u32;
            s.files_quarantined += outcome.quarantined.len() as u32;
            if !s.versions.contains(&outcome.version) {
                s.versions.push(outcome.version);
            }
            for q in &outcome.quarantined {
                report.quarantined.push((
                    format!("{}/{}/{}", outcome.source_id, outcome.business_date, q.file),
                    q.reason_code.clone(),
                ));
            }
        }
        for out in normalized {
            let s = report.sources.entry(out.source_id.clone()).or_default();
            let t = out.totals();
            s.counts.records_in += t.records_in;
            s.counts.accepted += t.accepted;
            s.counts.rejected += t.rejected;
            s.counts.duplicates += t.duplicates;
        }
    }
    Ok(report)
}

/// One delivery: the S3 event its manifest raises, the validator, then the normalizer.
async fn deliver(
    store: &LocalStore,
    table: &LocalManifests,
    catalog: &LocalCatalog,
    pii: &PiiKey,
    key: &str,
    size: u64,
) -> Result<(Vec<ValidationOutcome>, Vec<NormalizeOutcome>)> {
    let event = manifest_validator::s3_put_event(LOCAL_BUCKET, key, size)?;
    let resp = manifest_validator::handle(event, store, table).await?;
    // Locally the hand-off is a call; on AWS an asynchronous invoke that can be lost. Either
    // way the delivery is recorded first, and a crash here is repaired by the next event.
    if !resp.normalize.is_empty() {
        recon_shared::fault::point("validate.handoff");
    }
    let mut normalized = Vec::new();
    for req in resp.normalize {
        normalized.push(normalizer::handle(req, store, table, catalog, pii).await?);
    }
    Ok((resp.outcomes, normalized))
}
