//! Validating a delivery again: what finishes the work an interrupted validation left.

use super::*;

/// The manifest in place is validated again (a re-delivered S3 event, a re-run): finishes
/// what an interrupted run left and picks up late files, so a crash anywhere in validation or
/// normalization is repaired by the next event.
/// - quarantined files still in `landing/` (a crash before their removal) are removed;
/// - a file quarantined as `MISSING_FILE` that has arrived since is checked now, and accepted
///   or quarantined for what it is;
/// - when any accepted file is not normalized yet (a crash, or a hand-off to the normalizer
///   that was lost), or a late file was accepted, the delivery's normalization is asked for
///   again ([`DeliveryStatus::Resumed`]); otherwise nothing changed
///   ([`DeliveryStatus::Unchanged`]).
pub(super) async fn resume<S: ObjectStore, M: ManifestTable>(
    store: &S,
    table: &M,
    key: &str,
    bytes: &Bytes,
    current: &FileRecord,
    existing: &[FileRecord],
) -> Result<ValidationOutcome> {
    let (source, date, version) = (&current.source_id, current.business_date, current.version);
    let (prefix, qprefix) = (
        landing_prefix(source, date),
        quarantine_prefix(source, date),
    );
    let present: BTreeSet<String> = store
        .list(&prefix)
        .await?
        .into_iter()
        .map(|o| o.key[prefix.len()..].to_string())
        .collect();
    let rows: Vec<&FileRecord> = existing
        .iter()
        .filter(|r| r.file != MANIFEST_FILE && r.version == version)
        .collect();
    let late: Vec<&FileRecord> = rows
        .iter()
        .copied()
        .filter(|r| {
            r.status == FileStatus::Quarantined
                && r.reason_code.as_deref() == Some("MISSING_FILE")
                && present.contains(&r.file)
        })
        .collect();
    let mut updates = Vec::new();
    let mut newly_quarantined = Vec::new();
    let manifest = Manifest::parse(key, bytes)?;
    if !late.is_empty() {
        let key = source_config_key(source.as_str());
        let mapping = SourceMapping::from_file(&key, &store.get(&key).await?)?;
        for r in &late {
            let Some(f) = manifest.files.iter().find(|f| f.name == r.file) else {
                continue;
            };
            let (c, file_bytes) = check_file(store, &prefix, &mapping, f).await?;
            quarantine_file(store, &qprefix, (source, date, version), &c, &file_bytes).await?;
            if let Some((code, reason)) = &c.failure {
                newly_quarantined.push(Quarantined {
                    file: c.name.clone(),
                    reason_code: code.to_string(),
                    reason: reason.clone(),
                });
            }
            updates.push(file_row(source, date, version, &c));
        }
    }
    let status_of = |file: &str| {
        updates
            .iter()
            .find(|u| u.file == file)
            .or_else(|| rows.iter().copied().find(|r| r.file == file))
            .map(|r| r.status)
    };
    let accepted: Vec<String> = manifest
        .files
        .iter()
        .filter(|f| {
            matches!(
                status_of(&f.name),
                Some(FileStatus::Accepted | FileStatus::Normalized)
            )
        })
        .map(|f| f.name.clone())
        .collect();
    let late_accepted = updates.iter().any(|u| u.status == FileStatus::Accepted);
    let pending = rows.iter().any(|r| r.status == FileStatus::Accepted);
    if !updates.is_empty() {
        let quarantined = manifest
            .files
            .iter()
            .filter(|f| status_of(&f.name) == Some(FileStatus::Quarantined))
            .count();
        updates.push(FileRecord {
            reason: (quarantined > 0).then(|| {
                format!(
                    "{quarantined} of {} file(s) quarantined",
                    manifest.files.len()
                )
            }),
            ..current.clone()
        });
        table.put(&updates).await?;
    }
    // Quarantined files are removed from landing once recorded (again, after a crash).
    for r in rows.iter().filter(|r| {
        r.status == FileStatus::Quarantined && r.reason_code.as_deref() != Some("MISSING_FILE")
    }) {
        if present.contains(&r.file) {
            store.delete(&format!("{prefix}{}", r.file)).await?;
        }
    }
    for q in &newly_quarantined {
        store.delete(&format!("{prefix}{}", q.file)).await?;
    }
    let status = if (pending || late_accepted) && !accepted.is_empty() {
        tracing::info!(
            source_id = %source, business_date = %date, version, late_files = late.len(),
            "delivery validated before; its normalization is asked for again"
        );
        DeliveryStatus::Resumed
    } else {
        DeliveryStatus::Unchanged
    };
    Ok(ValidationOutcome {
        accepted: if status == DeliveryStatus::Resumed {
            accepted
        } else {
            Vec::new()
        },
        quarantined: newly_quarantined,
        ..outcome(source, date, version, status)
    })
}
