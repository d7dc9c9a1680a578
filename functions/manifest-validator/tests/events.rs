//! `events/manifest-validator/s3-put-manifest.json` (the sample for `cargo lambda invoke`) is
//! the S3 notification the bucket sends: it survives the `aws_lambda_events` round trip, names
//! a manifest under `landing/`, and drives the handler to a validation.

use aws_lambda_events::event::s3::S3Event;
use recon_shared::ingest::{DeliveryStatus, decode_s3_key};
use recon_shared::local::{LocalManifests, LocalStore};
use recon_shared::manifest::MANIFEST_FILE;
use recon_shared::{Error, Result};

const S3_PUT_MANIFEST: &str =
    include_str!("../../../events/manifest-validator/s3-put-manifest.json");
const MANIFEST_KEY: &str = "landing/bank_01/2026-11-20/_manifest.json";

fn event() -> Result<S3Event> {
    Ok(serde_json::from_str(S3_PUT_MANIFEST)?)
}

#[test]
fn the_s3_put_event_round_trips_and_names_a_manifest() -> Result<()> {
    let event = event()?;
    let again: S3Event = serde_json::from_str(&serde_json::to_string(&event)?)?;
    assert_eq!(event, again);
    let [record] = event.records.as_slice() else {
        return Err(Error::Invariant(format!(
            "one record expected, found {}",
            event.records.len()
        )));
    };
    assert_eq!(record.event_source.as_deref(), Some("aws:s3"));
    assert_eq!(record.event_name.as_deref(), Some("ObjectCreated:Put"));
    assert_eq!(
        record.s3.bucket.name.as_deref(),
        Some("recon-dev-123456789012-eu-central-1")
    );
    let key = decode_s3_key(record.s3.object.key.as_deref().unwrap_or_default())?;
    assert_eq!(key, MANIFEST_KEY);
    assert!(key.ends_with(&format!("/{MANIFEST_FILE}")));
    // The bucket is versioned (template.yaml): S3 names the version it created.
    assert!(record.s3.object.version_id.is_some());
    Ok(())
}

#[tokio::test]
async fn the_sample_event_drives_a_validation() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let manifest = dir.path().join(MANIFEST_KEY);
    if let Some(parent) = manifest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    // A manifest that is not one: the validator must quarantine it with its reason.
    std::fs::write(&manifest, b"{\"source_id\": \"bank_01\"}")
        .map_err(|e| Error::io(&manifest, e))?;
    let store = LocalStore::new(dir.path());
    let table = LocalManifests::new(dir.path());

    let resp = manifest_validator::handle(event()?, &store, &table).await?;

    assert!(resp.ignored.is_empty(), "{:?}", resp.ignored);
    assert!(resp.normalize.is_empty());
    let [outcome] = resp.outcomes.as_slice() else {
        return Err(Error::Invariant(format!("{:?}", resp.outcomes)));
    };
    assert_eq!(outcome.source_id.as_str(), "bank_01");
    assert_eq!(outcome.business_date.to_string(), "2026-11-20");
    assert_eq!(outcome.status, DeliveryStatus::Rejected);
    assert_eq!(outcome.quarantined.len(), 1);
    assert_eq!(outcome.quarantined[0].file, MANIFEST_FILE);
    assert_eq!(outcome.quarantined[0].reason_code, "INVALID_MANIFEST");
    let reason = dir
        .path()
        .join("quarantine/bank_01/2026-11-20/_manifest.json.reason.json");
    assert!(reason.exists(), "{} is missing", reason.display());
    Ok(())
}
