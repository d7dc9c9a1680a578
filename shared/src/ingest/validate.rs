//! File-level validation of one delivery against its manifest.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::NormalizeRequest;
use crate::error::{Error, Result};
use crate::ids::{BusinessDate, SourceId};
use crate::keys::{
    landing_prefix, parse_manifest_key, quarantine_prefix, quarantine_reason_key, source_config_key,
};
use crate::manifest::{MANIFEST_FILE, Manifest, sha256_hex};
use crate::ports::{FileRecord, FileStatus, ManifestTable, ObjectStore};
use crate::source::{SourceMapping, count_records};

mod resume;
use resume::resume;

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// Every listed file passed.
    Accepted,
    /// Some files passed, the others are quarantined.
    PartiallyAccepted,
    /// Nothing can be used (bad manifest, no mapping, every file failed).
    Rejected,
    /// This exact manifest was validated before: nothing changed.
    Unchanged,
    /// This exact manifest was validated before, but its normalization never finished (a
    /// crash, a lost hand-off) or a file it lists arrived late: normalization is asked again.
    Resumed,
    /// A newer version of the delivery is already in place.
    Stale,
}

/// A file (or the manifest) moved aside, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// Name of the file in the delivery (or `_manifest.json`).
    pub file: String,
    /// Machine-readable reason (`CHECKSUM_MISMATCH`, `RECORD_COUNT_MISMATCH`, `MISSING_FILE` …).
    pub reason_code: String,
    /// The reason in words, as written to `{file}.reason.json`.
    pub reason: String,
}

/// What the validation of one manifest decided, file by file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationOutcome {
    /// The source of the delivery.
    pub source_id: SourceId,
    /// The business date of the delivery.
    pub business_date: BusinessDate,
    /// The manifest version validated.
    pub version: u32,
    /// What became of the delivery as a whole.
    pub status: DeliveryStatus,
    /// Files that passed every check, in manifest order; they go on to normalization.
    pub accepted: Vec<String>,
    /// Files moved to `quarantine/` with their reasons.
    pub quarantined: Vec<Quarantined>,
    /// The version this delivery replaced, if any.
    pub superseded_version: Option<u32>,
}

impl ValidationOutcome {
    /// The normalization work this outcome hands on (none when nothing was accepted or changed).
    pub fn normalize_request(&self) -> Option<NormalizeRequest> {
        let fresh = matches!(
            self.status,
            DeliveryStatus::Accepted | DeliveryStatus::PartiallyAccepted | DeliveryStatus::Resumed
        );
        (fresh && !self.accepted.is_empty()).then(|| NormalizeRequest {
            source_id: self.source_id.clone(),
            business_date: self.business_date,
            version: self.version,
            files: self.accepted.clone(),
        })
    }
}

struct Check<'a> {
    name: String,
    expected: Option<&'a crate::manifest::ManifestFile>,
    actual_size: Option<u64>,
    actual_sha: Option<String>,
    actual_count: Option<u64>,
    failure: Option<(&'static str, String)>,
}

fn fail(code: &'static str, reason: String) -> Option<(&'static str, String)> {
    Some((code, reason))
}

/// Checks one listed file: present, size, checksum, readable, record count.
async fn check_file<'a, S: ObjectStore>(
    store: &S,
    prefix: &str,
    mapping: &SourceMapping,
    f: &'a crate::manifest::ManifestFile,
) -> Result<(Check<'a>, Option<Bytes>)> {
    let mut c = Check {
        name: f.name.clone(),
        expected: Some(f),
        actual_size: None,
        actual_sha: None,
        actual_count: None,
        failure: None,
    };
    let bytes = match store.get(&format!("{prefix}{}", f.name)).await {
        Ok(b) => b,
        Err(Error::NotFound { .. }) => {
            c.failure = fail(
                "MISSING_FILE",
                format!(
                    "the manifest lists `{}` but no such object exists under {prefix}",
                    f.name
                ),
            );
            return Ok((c, None));
        }
        Err(Error::NotRegularFile { what, .. }) => {
            c.failure = fail(
                "NOT_A_REGULAR_FILE",
                format!(
                    "`{}` is {what} in {prefix}, not a regular file; it was not read: deliver the file itself",
                    f.name
                ),
            );
            return Ok((c, None));
        }
        Err(e) => return Err(e),
    };
    c.actual_size = Some(bytes.len() as u64);
    let sha = sha256_hex(&bytes);
    c.actual_sha = Some(sha.clone());
    if bytes.is_empty() && f.size_bytes != 0 {
        c.failure = fail(
            "EMPTY_FILE",
            format!(
                "`{}` is empty; the manifest announced {} bytes",
                f.name, f.size_bytes
            ),
        );
    } else if bytes.len() as u64 != f.size_bytes {
        c.failure = fail(
            "SIZE_MISMATCH",
            format!(
                "`{}` has {} bytes, the manifest says {} (truncated or altered in transit?)",
                f.name,
                bytes.len(),
                f.size_bytes
            ),
        );
    } else if !sha.eq_ignore_ascii_case(&f.sha256) {
        c.failure = fail(
            "CHECKSUM_MISMATCH",
            format!(
                "sha256 of `{}` is {sha}, the manifest says {}",
                f.name, f.sha256
            ),
        );
    } else if bytes.is_empty()
        && f.record_count == 0
        && mapping.format == crate::source::SourceFormat::Jsonl
    {
        // JSON lines have no header: no bytes is a day the bank posted nothing, as announced.
        c.actual_count = Some(0);
    } else if bytes.is_empty() {
        c.failure = fail(
            "EMPTY_FILE",
            format!("`{}` is empty (not even a header)", f.name),
        );
    } else {
        match count_records(mapping, &f.name, &bytes) {
            Ok(n) => {
                c.actual_count = Some(n);
                if n != f.record_count {
                    c.failure = fail(
                        "RECORD_COUNT_MISMATCH",
                        format!(
                            "`{}` holds {n} records, the manifest says {}",
                            f.name, f.record_count
                        ),
                    );
                }
            }
            Err(Error::InvalidFile { reason, .. }) => {
                c.failure = fail(
                    "UNREADABLE_FILE",
                    format!(
                        "`{}` cannot be read as {:?}: {reason}",
                        f.name, mapping.format
                    ),
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok((c, Some(bytes)))
}

/// Validates the delivery whose manifest is at `key` (`landing/{source}/{date}/_manifest.json`).
///
/// Idempotent: the same manifest validated again returns [`DeliveryStatus::Unchanged`] and
/// touches nothing; an older version than the one in place returns [`DeliveryStatus::Stale`].
pub async fn validate<S: ObjectStore, M: ManifestTable>(
    store: &S,
    table: &M,
    key: &str,
) -> Result<ValidationOutcome> {
    let (source, date) = parse_manifest_key(key)?;
    let prefix = landing_prefix(&source, date);
    let qprefix = quarantine_prefix(&source, date);
    let bytes = store.get(key).await?;
    let manifest_sha = sha256_hex(&bytes);
    let existing = table.delivery(&source, date).await?;
    let current = existing.iter().find(|r| r.file == MANIFEST_FILE);
    if let Some(c) =
        current.filter(|c| c.sha256 == manifest_sha && c.status != FileStatus::Quarantined)
    {
        return resume(store, table, key, &bytes, c, &existing).await;
    }

    let (manifest, mapping) = match admit(store, key, &source, date, &bytes, current).await? {
        Admission::Ready(m, mapping) => (m, *mapping),
        Admission::Stale(version) => {
            return Ok(outcome(&source, date, version, DeliveryStatus::Stale));
        }
        Admission::Reject(code, reason) => {
            let delivery = (&source, date, &bytes, manifest_sha.as_str());
            return reject_manifest(store, table, delivery, current, code, reason).await;
        }
    };

    // Every listed file, then anything unlisted beside them.
    let mut checks = Vec::new();
    for f in &manifest.files {
        checks.push(check_file(store, &prefix, &mapping, f).await?);
    }
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    let earlier: BTreeSet<&str> = existing.iter().map(|r| r.file.as_str()).collect();
    // Everything else in the folder is reported: files in sub-folders and dot-files too (only
    // the local bucket's in-flight temporary files are not listed). Links and special files
    // are recorded without being read.
    for obj in store.list(&prefix).await? {
        let name = &obj.key[prefix.len()..];
        if name == MANIFEST_FILE || listed.contains(name) || earlier.contains(name) {
            continue;
        }
        let place = if name.contains('/') {
            "in a sub-folder of the delivery folder (a delivery is the files beside its manifest)"
        } else {
            "in the delivery folder"
        };
        let (bytes, failure) = match store.get(&obj.key).await {
            Ok(b) => (
                Some(b),
                fail(
                    "EXTRA_FILE",
                    format!(
                        "`{name}` is {place} but not listed in manifest version {}",
                        manifest.version
                    ),
                ),
            ),
            Err(Error::NotRegularFile { what, .. }) => (
                None,
                fail(
                    "NOT_A_REGULAR_FILE",
                    format!(
                        "`{name}` is {what} {place}, not listed in manifest version {}; it was not read",
                        manifest.version
                    ),
                ),
            ),
            // Gone since the listing: nothing to report.
            Err(Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        checks.push((
            Check {
                name: name.to_string(),
                expected: None,
                actual_size: bytes.as_ref().map(|b| b.len() as u64),
                actual_sha: bytes.as_ref().map(|b| sha256_hex(b)),
                actual_count: None,
                failure,
            },
            bytes,
        ));
    }

    // Quarantine copies and reasons first, then the table, then removal from landing: a retry
    // after a crash finds the same state or an already recorded one.
    let mut quarantined = Vec::new();
    let mut accepted = Vec::new();
    let mut rows = Vec::new();
    for (c, bytes) in &checks {
        let row = file_row(&source, date, manifest.version, c);
        match &c.failure {
            None => accepted.push(c.name.clone()),
            Some((code, reason)) => {
                quarantine_file(store, &qprefix, (&source, date, manifest.version), c, bytes)
                    .await?;
                quarantined.push(Quarantined {
                    file: c.name.clone(),
                    reason_code: code.to_string(),
                    reason: reason.clone(),
                });
            }
        }
        rows.push(row);
    }
    // Files of an earlier version that this one no longer lists.
    for r in existing
        .iter()
        .filter(|r| r.file != MANIFEST_FILE && !listed.contains(r.file.as_str()))
    {
        if r.version < manifest.version && r.status != FileStatus::Superseded {
            rows.push(FileRecord {
                status: FileStatus::Superseded,
                ..r.clone()
            });
        }
    }
    let status = match (accepted.len(), quarantined.len()) {
        (0, _) => DeliveryStatus::Rejected,
        (_, 0) => DeliveryStatus::Accepted,
        _ => DeliveryStatus::PartiallyAccepted,
    };
    let superseded_version = current
        .filter(|c| c.status != FileStatus::Quarantined)
        .map(|c| c.version);
    rows.push(FileRecord {
        source_id: source.clone(),
        business_date: date,
        file: MANIFEST_FILE.to_string(),
        version: manifest.version,
        status: if accepted.is_empty() {
            FileStatus::Quarantined
        } else {
            FileStatus::Accepted
        },
        sha256: manifest_sha,
        size_bytes: bytes.len() as u64,
        record_count: manifest.files.iter().map(|f| f.record_count).sum(),
        records_in: 0,
        accepted: 0,
        rejected: 0,
        duplicates: 0,
        reason_code: None,
        reason: (!quarantined.is_empty()).then(|| {
            format!(
                "{} of {} file(s) quarantined",
                quarantined.len(),
                checks.len()
            )
        }),
        outputs: current.map(|c| c.outputs.clone()).unwrap_or_default(),
    });
    table.put(&rows).await?;
    for q in &quarantined {
        store.delete(&format!("{prefix}{}", q.file)).await?;
    }
    tracing::info!(
        source_id = %source, business_date = %date, version = manifest.version,
        accepted = accepted.len(), quarantined = quarantined.len(), "delivery validated"
    );
    Ok(ValidationOutcome {
        source_id: source,
        business_date: date,
        version: manifest.version,
        status,
        accepted,
        quarantined,
        superseded_version,
    })
}

/// The Manifests row of one checked file.
fn file_row(source: &SourceId, date: BusinessDate, version: u32, c: &Check<'_>) -> FileRecord {
    FileRecord {
        source_id: source.clone(),
        business_date: date,
        file: c.name.clone(),
        version,
        status: if c.failure.is_some() {
            FileStatus::Quarantined
        } else {
            FileStatus::Accepted
        },
        sha256: c.actual_sha.clone().unwrap_or_default(),
        size_bytes: c.actual_size.unwrap_or(0),
        record_count: c.expected.map_or(0, |e| e.record_count),
        records_in: 0,
        accepted: 0,
        rejected: 0,
        duplicates: 0,
        reason_code: c.failure.as_ref().map(|(code, _)| code.to_string()),
        reason: c.failure.as_ref().map(|(_, r)| r.clone()),
        outputs: Vec::new(),
    }
}

/// Copies a failed file (when there is one) and its `{file}.reason.json` to `quarantine/`.
async fn quarantine_file<S: ObjectStore>(
    store: &S,
    qprefix: &str,
    (source, date, version): (&SourceId, BusinessDate, u32),
    c: &Check<'_>,
    bytes: &Option<Bytes>,
) -> Result<()> {
    let Some((code, reason)) = &c.failure else {
        return Ok(());
    };
    if let Some(b) = bytes {
        store
            .put(&format!("{qprefix}{}", c.name), b.clone())
            .await?;
    }
    let doc = json!({
        "source_id": source,
        "business_date": date,
        "file": c.name,
        "manifest_version": version,
        "reason_code": code,
        "reason": reason,
        "expected": c.expected.map(|e| json!({"size_bytes": e.size_bytes, "sha256": e.sha256, "record_count": e.record_count})),
        "actual": {"size_bytes": c.actual_size, "sha256": c.actual_sha, "record_count": c.actual_count},
        "what_to_do": "fix the file at the source and deliver it again under a manifest with a higher version",
    });
    store
        .put(
            &quarantine_reason_key(qprefix, &c.name),
            Bytes::from(serde_json::to_vec_pretty(&doc)?),
        )
        .await
}

/// Whether a delivery's manifest can be validated file by file.
enum Admission {
    Ready(Manifest, Box<SourceMapping>),
    /// A newer version is in place.
    Stale(u32),
    /// The manifest itself cannot be used: reason code and reason.
    Reject(&'static str, String),
}

/// Checks the manifest itself (well formed, for this prefix, a version that moves forward) and
/// finds its source mapping.
async fn admit<S: ObjectStore>(
    store: &S,
    key: &str,
    source: &SourceId,
    date: BusinessDate,
    bytes: &Bytes,
    current: Option<&FileRecord>,
) -> Result<Admission> {
    let manifest = match Manifest::parse(key, bytes) {
        Ok(m) if m.source_id != *source || m.business_date != date => {
            return Ok(Admission::Reject(
                "WRONG_DELIVERY",
                format!(
                    "the manifest is for {} {} but was delivered under {}",
                    m.source_id,
                    m.business_date,
                    landing_prefix(source, date)
                ),
            ));
        }
        Ok(m) => m,
        Err(Error::InvalidManifest { reason, .. }) => {
            return Ok(Admission::Reject("INVALID_MANIFEST", reason));
        }
        Err(e) => return Err(e),
    };
    if let Some(c) = current.filter(|c| c.status != FileStatus::Quarantined) {
        if manifest.version < c.version {
            return Ok(Admission::Stale(manifest.version));
        }
        if manifest.version == c.version {
            return Ok(Admission::Reject(
                "VERSION_CONFLICT",
                format!(
                    "version {} was already delivered with other content; a correction must carry version {}",
                    c.version,
                    c.version + 1
                ),
            ));
        }
    }
    let key = source_config_key(source.as_str());
    let mapping = match store.get(&key).await {
        // Refuses a mapping whose `source_id` is not the one its file is named for.
        Ok(b) => SourceMapping::from_file(&key, &b),
        Err(Error::NotFound { .. }) => {
            let reason = format!("no source mapping at {key}");
            return Ok(Admission::Reject("NO_SOURCE_MAPPING", reason));
        }
        Err(e) => return Err(e),
    };
    Ok(match mapping {
        Ok(m) => Admission::Ready(manifest, Box::new(m)),
        Err(e) => Admission::Reject("NO_SOURCE_MAPPING", e.to_string()),
    })
}

fn outcome(
    source: &SourceId,
    date: BusinessDate,
    version: u32,
    status: DeliveryStatus,
) -> ValidationOutcome {
    ValidationOutcome {
        source_id: source.clone(),
        business_date: date,
        version,
        status,
        accepted: Vec::new(),
        quarantined: Vec::new(),
        superseded_version: None,
    }
}

/// The manifest cannot be used: keep a copy and the reason, record it, leave the data files.
#[allow(clippy::too_many_arguments)]
async fn reject_manifest<S: ObjectStore, M: ManifestTable>(
    store: &S,
    table: &M,
    (source, date, bytes, sha): (&SourceId, BusinessDate, &Bytes, &str),
    current: Option<&FileRecord>,
    code: &str,
    reason: String,
) -> Result<ValidationOutcome> {
    let q = quarantine_prefix(source, date);
    store
        .put(&format!("{q}{MANIFEST_FILE}"), bytes.clone())
        .await?;
    let doc = json!({
        "source_id": source, "business_date": date, "file": MANIFEST_FILE,
        "reason_code": code, "reason": reason,
        "what_to_do": "deliver a corrected manifest (with a higher version if one was accepted before)",
    });
    store
        .put(
            &quarantine_reason_key(&q, MANIFEST_FILE),
            Bytes::from(serde_json::to_vec_pretty(&doc)?),
        )
        .await?;
    // A rejected manifest never displaces an accepted delivery already in place.
    if current.is_none_or(|c| c.status == FileStatus::Quarantined) {
        table
            .put(&[FileRecord {
                source_id: source.clone(),
                business_date: date,
                file: MANIFEST_FILE.to_string(),
                version: 0,
                status: FileStatus::Quarantined,
                sha256: sha.to_string(),
                size_bytes: bytes.len() as u64,
                record_count: 0,
                records_in: 0,
                accepted: 0,
                rejected: 0,
                duplicates: 0,
                reason_code: Some(code.to_string()),
                reason: Some(reason.clone()),
                outputs: Vec::new(),
            }])
            .await?;
    }
    tracing::warn!(source_id = %source, business_date = %date, reason_code = code, "manifest rejected");
    Ok(ValidationOutcome {
        source_id: source.clone(),
        business_date: date,
        version: current.map_or(0, |c| c.version),
        status: DeliveryStatus::Rejected,
        accepted: Vec::new(),
        quarantined: vec![Quarantined {
            file: MANIFEST_FILE.into(),
            reason_code: code.into(),
            reason,
        }],
        superseded_version: None,
    })
}
