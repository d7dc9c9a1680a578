//! `manifest-validator`: S3 `ObjectCreated` on `landing/{source}/{date}/_manifest.json`.
//!
//! Decodes the event, validates each manifest with [`recon_shared::ingest::validate`], and
//! returns the outcomes with the normalization work they hand on.

use aws_lambda_events::event::s3::S3Event;
use recon_shared::Result;
use recon_shared::ingest::{
    DeliveryStatus, NormalizeRequest, ValidationOutcome, decode_s3_key, validate,
};
use recon_shared::keys;
use recon_shared::ports::{ManifestTable, ObjectStore};
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
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
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
