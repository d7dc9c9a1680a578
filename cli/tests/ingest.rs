//! Ingestion of a generated day through the real handlers: every delivery validated and
//! normalized, counts that add up, idempotent re-runs, and a corrected delivery that replaces
//! its first version.

use std::path::Path;

mod common;

use common::tree;
use recon_runtime::ingest::{RunConfig, ingest};
use recon_shared::columnar::read_parquet;
use recon_shared::records::{StatementLine, Transaction};
use recon_shared::{Error, Result};

fn day(dir: &Path, transactions: usize) -> Result<()> {
    common::day(dir, transactions, 42)
}

fn read_all<T: recon_shared::columnar::Columnar>(root: &Path, prefix: &str) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for (rel, _) in tree(root, prefix)? {
        let b = std::fs::read(root.join(&rel)).map_err(|e| Error::io(&rel, e))?;
        rows.extend(read_parquet::<T>(bytes::Bytes::from(b))?);
    }
    Ok(rows)
}

#[tokio::test]
async fn a_generated_day_is_ingested_whole_and_reruns_change_nothing() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    day(dir.path(), 4000)?;
    let cfg = RunConfig {
        data: dir.path().to_path_buf(),
        date: None,
    };
    let report = ingest(&cfg).await?;
    let (accepted_files, quarantined_files, totals) = report.totals();
    assert_eq!(quarantined_files, 0, "{:?}", report.quarantined);
    assert_eq!(accepted_files, 9, "ledger x2, six banks, the late file");
    assert_eq!(totals.rejected, 0);
    assert_eq!(
        totals.records_in,
        totals.accepted + totals.rejected + totals.duplicates
    );
    // Against the truth: every line once, exact duplicate records removed.
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("truth/summary.json"))
            .map_err(|e| Error::io("summary", e))?,
    )?;
    let lines: Vec<StatementLine> = read_all(dir.path(), "curated/statements")?;
    assert_eq!(
        Some(lines.len() as u64),
        summary["statement_lines"].as_u64()
    );
    let txns: Vec<Transaction> = read_all(dir.path(), "curated/transactions")?;
    assert_eq!(Some(txns.len() as u64), summary["transactions"].as_u64());
    let dups = report
        .sources
        .values()
        .map(|s| s.counts.duplicates)
        .sum::<u64>();
    assert_eq!(Some(dups), summary["exact_duplicate_records"].as_u64());
    // Curated user ids are tokens.
    assert!(
        txns.iter()
            .all(|t| recon_shared::pii::is_token(t.user_id.as_str()))
    );
    // The catalog knows every partition.
    let cat = std::fs::read_to_string(dir.path().join("state/catalog/recon/statements.json"))
        .map_err(|e| Error::io("cat", e))?;
    assert_eq!(
        cat.matches("\"location\"").count(),
        7,
        "six banks today and the late partition"
    );

    // A second run: every delivery unchanged, no byte of curated/ or state/ moves.
    let before = (tree(dir.path(), "curated")?, tree(dir.path(), "state")?);
    let again = ingest(&cfg).await?;
    assert!(again.sources.values().all(|s| s.unchanged == s.deliveries));
    assert_eq!(
        (tree(dir.path(), "curated")?, tree(dir.path(), "state")?),
        before
    );
    Ok(())
}

#[tokio::test]
async fn a_corrected_delivery_replaces_its_first_version() -> Result<()> {
    // Reference: the day ingested with version 2 only.
    let direct = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    day(direct.path(), 3000)?;
    ingest(&RunConfig {
        data: direct.path().to_path_buf(),
        date: None,
    })
    .await?;

    // Replay: version 1 arrives first, then version 2.
    let replay = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    day(replay.path(), 3000)?;
    let v2 = replay.path().join("landing/bank_02/2026-11-20");
    let v1 = replay
        .path()
        .join("redelivery/v1/landing/bank_02/2026-11-20");
    let parked = replay.path().join("parked");
    std::fs::rename(&v2, &parked).map_err(|e| Error::io(&v2, e))?;
    std::fs::create_dir_all(&v2).map_err(|e| Error::io(&v2, e))?;
    for e in std::fs::read_dir(&v1).map_err(|e| Error::io(&v1, e))? {
        let p = e.map_err(|e| Error::io(&v1, e))?.path();
        let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        std::fs::copy(&p, v2.join(name)).map_err(|e| Error::io(&p, e))?;
    }
    let cfg = RunConfig {
        data: replay.path().to_path_buf(),
        date: None,
    };
    let first = ingest(&cfg).await?;
    assert_eq!(first.sources["bank_02"].versions, vec![1]);
    let v1_lines: Vec<StatementLine> = read_all(
        replay.path(),
        "curated/statements/business_date=2026-11-20/bank_id=bank_02",
    )?;
    // Version 2 lands (data files first, the manifest last).
    for e in std::fs::read_dir(&parked).map_err(|e| Error::io(&parked, e))? {
        let p = e.map_err(|e| Error::io(&parked, e))?.path();
        let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        std::fs::copy(&p, v2.join(name)).map_err(|e| Error::io(&p, e))?;
    }
    let second = ingest(&cfg).await?;
    assert_eq!(second.sources["bank_02"].versions, vec![2]);
    assert_eq!(
        second.sources["bank_02"].files_quarantined, 0,
        "v1 files are superseded, not extra"
    );
    let v2_lines: Vec<StatementLine> = read_all(
        replay.path(),
        "curated/statements/business_date=2026-11-20/bank_id=bank_02",
    )?;
    assert!(
        v2_lines.len() > v1_lines.len(),
        "the correction adds the lines v1 lacked"
    );
    assert_eq!(
        tree(replay.path(), "curated")?,
        tree(direct.path(), "curated")?,
        "same curated data as delivering v2 alone"
    );

    // The first version's manifest arriving again (late) is stale and changes nothing.
    let before = tree(replay.path(), "curated")?;
    let table = recon_shared::local::LocalManifests::new(replay.path());
    let store = recon_shared::local::LocalStore::new(replay.path());
    std::fs::copy(v1.join("_manifest.json"), v2.join("_manifest.json"))
        .map_err(|e| Error::io("v1", e))?;
    let key = "landing/bank_02/2026-11-20/_manifest.json";
    let ev = manifest_validator::s3_put_event("b", key, 1)?;
    let resp = manifest_validator::handle(ev, &store, &table).await?;
    assert_eq!(
        resp.outcomes[0].status,
        recon_shared::ingest::DeliveryStatus::Stale
    );
    assert!(resp.normalize.is_empty());
    assert_eq!(tree(replay.path(), "curated")?, before);
    Ok(())
}

/// Splits the day's ledger file in two (a header each) under a new manifest; returns the
/// second file's path.
fn split_ledger(root: &Path) -> Result<std::path::PathBuf> {
    use recon_shared::manifest::{Manifest, ManifestFile, sha256_hex};
    let delivery = root.join("landing/ledger/2026-11-20");
    let path = delivery.join("_manifest.json");
    let mut manifest =
        Manifest::parse("m", &std::fs::read(&path).map_err(|e| Error::io(&path, e))?)?;
    let whole = delivery.join(&manifest.files[0].name);
    let text = std::fs::read_to_string(&whole).map_err(|e| Error::io(&whole, e))?;
    std::fs::remove_file(&whole).map_err(|e| Error::io(&whole, e))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let rows: Vec<&str> = lines.collect();
    let (a, b) = rows.split_at(rows.len() / 2);
    manifest.files.clear();
    for (name, part) in [("transactions_a.csv", a), ("transactions_b.csv", b)] {
        let body = format!("{header}\n{}\n", part.join("\n"));
        let p = delivery.join(name);
        std::fs::write(&p, &body).map_err(|e| Error::io(&p, e))?;
        manifest.files.push(ManifestFile {
            name: name.into(),
            size_bytes: body.len() as u64,
            sha256: sha256_hex(body.as_bytes()),
            record_count: part.len() as u64,
        });
    }
    std::fs::write(&path, manifest.to_json()?).map_err(|e| Error::io(&path, e))?;
    Ok(delivery.join("transactions_b.csv"))
}

#[tokio::test]
async fn a_listed_file_that_arrives_late_is_picked_up() -> Result<()> {
    // Reference: the day as delivered.
    let direct = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    day(direct.path(), 2000)?;
    let cfg = |d: &Path| RunConfig {
        data: d.to_path_buf(),
        date: None,
    };
    split_ledger(direct.path())?;
    ingest(&cfg(direct.path())).await?;

    // The ledger's second file is not there when the manifest lands.
    let late = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    day(late.path(), 2000)?;
    let missing = split_ledger(late.path())?;
    let parked = late.path().join("parked");
    std::fs::rename(&missing, &parked).map_err(|e| Error::io(&missing, e))?;
    let first = ingest(&cfg(late.path())).await?;
    assert_eq!(first.sources["ledger"].files_quarantined, 1);
    assert!(
        first
            .quarantined
            .iter()
            .any(|(_, code)| code == "MISSING_FILE")
    );
    assert_ne!(
        tree(late.path(), "curated")?,
        tree(direct.path(), "curated")?
    );

    // It arrives: the next validation of the same manifest checks and accepts it, and the
    // delivery is normalized again with it — the same curated data as an on-time delivery.
    std::fs::rename(&parked, &missing).map_err(|e| Error::io(&missing, e))?;
    let second = ingest(&cfg(late.path())).await?;
    assert_eq!(second.resumed, vec!["ledger/2026-11-20".to_string()]);
    assert_eq!(
        tree(late.path(), "curated")?,
        tree(direct.path(), "curated")?
    );
    let rows = recon_shared::local::LocalManifests::new(late.path());
    use recon_shared::ports::{FileStatus, ManifestTable};
    let rows = rows
        .delivery(
            &recon_shared::ids::SourceId::new("ledger")?,
            common::date()?,
        )
        .await?;
    assert!(
        rows.iter()
            .filter(|r| r.file != "_manifest.json")
            .all(|r| r.status == FileStatus::Normalized),
        "{rows:?}"
    );
    // And then nothing is left to do.
    let third = ingest(&cfg(late.path())).await?;
    assert!(third.resumed.is_empty());
    assert!(third.sources.values().all(|s| s.unchanged == s.deliveries));
    Ok(())
}

#[tokio::test]
async fn one_bad_delivery_fails_alone() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    day(dir.path(), 1000)?;
    // A folder that is not a date, with a manifest in it; and a listed file that is a
    // directory. Neither stops the other deliveries.
    let bad_date = dir.path().join("landing/bank_04/yesterday");
    std::fs::create_dir_all(&bad_date).map_err(|e| Error::io(&bad_date, e))?;
    std::fs::write(bad_date.join("_manifest.json"), b"{}").map_err(|e| Error::io("m", e))?;
    let report = ingest(&RunConfig {
        data: dir.path().to_path_buf(),
        date: None,
    })
    .await?;
    assert_eq!(report.failed.len(), 1, "{:?}", report.failed);
    assert!(report.failed[0].0.contains("yesterday"));
    assert!(
        report.failed[0].1.contains("business_date") || report.failed[0].1.contains("date"),
        "{}",
        report.failed[0].1
    );
    // Every real delivery went through.
    let (accepted_files, quarantined_files, _) = report.totals();
    assert_eq!((accepted_files, quarantined_files), (9, 0));
    Ok(())
}
