//! `manifest-validator`: S3 `ObjectCreated` on `landing/{source}/{date}/_manifest.json`.
//!
//! Decodes the event, validates each manifest with [`recon_shared::ingest::validate`], and
//! returns the outcomes with the normalization work they hand on.

use aws_lambda_events::event::s3::S3Event;
use recon_shared::Result;
use recon_shared::config::Settings;
use recon_shared::entry::{Function, Invocation};
use recon_shared::ingest::{
    DeliveryStatus, NormalizeRequest, ValidationOutcome, decode_s3_key, validate,
};
use recon_shared::keys;
use recon_shared::ports::{ManifestTable, ObjectStore};
use recon_shared::select::{AnyManifests, AnyStore, Backend};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub outcomes: Vec<ValidationOutcome>,
    /// One request per delivery with accepted files, for the normalizer.
    pub normalize: Vec<NormalizeRequest>,
    /// Keys of records that were not manifest creations (the bucket's filter should stop them).
    pub ignored: Vec<String>,
}

pub async fn handle<S: ObjectStore, M: ManifestTable>(
    event: S3Event,
    store: &S,
    table: &M,
) -> Result<Response> {
    let mut resp = Response::default();
    for record in event.records {
        let created = record
            .event_name
            .as_deref()
            .is_some_and(|n| n.starts_with("ObjectCreated"));
        let raw = record.s3.object.key.unwrap_or_default();
        let key = decode_s3_key(&raw)?;
        if !created || !keys::is_manifest_key(&key) {
            resp.ignored.push(key);
            continue;
        }
        let outcome = validate(store, table, &key).await?;
        resp.normalize.extend(outcome.normalize_request());
        resp.outcomes.push(outcome);
    }
    Ok(resp)
}

/// EMF line of one invocation: deliveries, files accepted and quarantined, deliveries whose
/// unfinished normalization was asked for again, duration.
pub fn metrics(resp: &Response, environment: &str, duration_ms: u64, timestamp_ms: i64) -> String {
    let resumed = |o: &&ValidationOutcome| o.status == DeliveryStatus::Resumed;
    // A resumed delivery's files were counted when they were accepted.
    let accepted: usize = resp
        .outcomes
        .iter()
        .filter(|o| !resumed(o))
        .map(|o| o.accepted.len())
        .sum();
    let quarantined: usize = resp.outcomes.iter().map(|o| o.quarantined.len()).sum();
    recon_shared::metrics::Emf::new(environment, "manifest-validator")
        .count("Deliveries", resp.outcomes.len() as u64)
        .count(
            "DeliveriesResumed",
            resp.outcomes.iter().filter(resumed).count() as u64,
        )
        .count("FilesAccepted", accepted as u64)
        .count("FilesQuarantined", quarantined as u64)
        .millis("Duration", duration_ms)
        .line(timestamp_ms)
}

/// The S3 notification the bucket sends when `key` is written (for the local runner and tests).
pub fn s3_put_event(bucket: &str, key: &str, size: u64) -> Result<S3Event> {
    let encoded = recon_shared::percent::encode_event_key(key);
    let v = serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-central-1",
        "eventTime": "2026-11-21T01:10:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:bank-sftp"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "landing-manifests",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encoded, "size": size, "sequencer": "0055AED6DCD90281E5"}
        }
    }]});
    Ok(serde_json::from_value(v)?)
}

/// The Lambda (served by `recon_shared::entry`): S3 events over the bucket and the Manifests
/// table; on AWS each accepted delivery then goes to the normalizer as an asynchronous event
/// (`RECON_NORMALIZER_FUNCTION`). Locally the response carries the requests and the local
/// runner calls the normalizer itself.
pub struct Lambda {
    store: AnyStore,
    manifests: AnyManifests,
    #[cfg(feature = "aws")]
    normalizer: Option<recon_shared::aws::lambda::NormalizerInvoker>,
}

impl Function for Lambda {
    type Event = S3Event;
    type Output = Response;

    async fn init(_: &Settings, backend: &Backend) -> Result<Self> {
        Ok(Self {
            store: backend.store()?,
            manifests: backend.manifests()?,
            #[cfg(feature = "aws")]
            normalizer: backend.normalizer()?,
        })
    }

    async fn handle(&self, event: S3Event) -> Result<Response> {
        let resp = handle(event, &self.store, &self.manifests).await?;
        tracing::info!(
            deliveries = resp.outcomes.len(),
            normalize_requests = resp.normalize.len(),
            ignored = resp.ignored.len(),
            "manifests validated"
        );
        #[cfg(feature = "aws")]
        if let Some(n) = &self.normalizer {
            let queued = n.dispatch(&resp.normalize).await?;
            tracing::info!(queued, "normalize requests queued");
        }
        Ok(resp)
    }

    fn metrics(&self, resp: &Response, at: &Invocation<'_>) -> Vec<String> {
        vec![metrics(
            resp,
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
    fn the_validation_metrics_count_files() -> Result<()> {
        let resp: Response = serde_json::from_value(json!({
            "outcomes": [{"source_id": "bank_01", "business_date": "2026-11-20", "version": 1,
                          "status": "PARTIALLY_ACCEPTED", "accepted": ["a.csv", "b.csv"],
                          "quarantined": [{"file": "c.csv", "reason_code": "SHA256_MISMATCH", "reason": "x"}],
                          "superseded_version": null}],
            "normalize": [], "ignored": []
        }))?;
        let m = recon_shared::metrics::parse_line(&metrics(&resp, "prod", 12, 0))?;
        assert_eq!(m["Deliveries"], json!(1));
        assert_eq!(m["FilesAccepted"], json!(2));
        assert_eq!(m["FilesQuarantined"], json!(1));
        assert_eq!(m["Duration"], json!(12));
        assert_eq!(m["DeliveriesResumed"], json!(0));
        // A resumed delivery asks for its normalization again; its files are not counted twice.
        let resp: Response = serde_json::from_value(json!({
            "outcomes": [{"source_id": "bank_01", "business_date": "2026-11-20", "version": 1,
                          "status": "RESUMED", "accepted": ["a.csv", "b.csv"],
                          "quarantined": [], "superseded_version": null}],
            "normalize": [], "ignored": []
        }))?;
        let m = recon_shared::metrics::parse_line(&metrics(&resp, "prod", 12, 0))?;
        assert_eq!(m["DeliveriesResumed"], json!(1));
        assert_eq!(m["FilesAccepted"], json!(0));
        Ok(())
    }
}
