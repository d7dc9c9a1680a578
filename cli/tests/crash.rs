//! Crash safety of the whole local pipeline, as a property: a `recon run` that dies at any
//! durable step (an injected abort, `recon_shared::fault`) or at any moment (a real SIGKILL),
//! followed by a plain re-run, leaves the data directory as one uninterrupted run leaves it.
//! And a second run of the same inputs, in a new process, changes nothing.
//!
//! The day has rejected records and a quarantined file, so those paths are crossed too.
//! "The same" is byte for byte for every file, but for three things compared by what they
//! mean: the TransactionIndex's files (a re-run compacts into a new generation: its items are
//! compared), and the run summaries and Runs rows, whose timings differ from run to run.

#![cfg(feature = "fault-injection")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{copy_dir, diff, files_under, state, tmp};
use recon_shared::fault::{FAULT_ENV, POINTS, TRACE_ENV};
use recon_shared::manifest::{Manifest, sha256_hex};
use recon_shared::{Error, Result};

const RECON: &str = env!("CARGO_BIN_EXE_recon");

fn recon_run(data: &Path, env: &[(&str, &str)]) -> Result<Output> {
    let mut cmd = Command::new(RECON);
    cmd.args(["run", "--data"])
        .arg(data)
        .args(["--date", "2026-11-20"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().map_err(|e| Error::io(RECON, e))
}

fn io<T>(what: &Path, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|e| Error::io(what, e))
}

/// A generated day with one rejected record (a line that is not a statement line, announced
/// in its manifest) and one quarantined file (in a delivery folder, not in its manifest).
fn spoiled_day(dir: &Path) -> Result<()> {
    common::day(dir, 300, 5)?;
    let delivery = dir.join("landing/bank_02/2026-11-20");
    let manifest_path = delivery.join("_manifest.json");
    let mut manifest = Manifest::parse("m", &io(&manifest_path, std::fs::read(&manifest_path))?)?;
    let entry = manifest
        .files
        .iter_mut()
        .find(|f| f.name.ends_with(".csv"))
        .ok_or_else(|| Error::Invariant("bank_02 delivers no CSV file".into()))?;
    let file = delivery.join(&entry.name);
    let mut bytes = io(&file, std::fs::read(&file))?;
    bytes.extend_from_slice(b"this line,is not,a statement line\n");
    io(&file, std::fs::write(&file, &bytes))?;
    entry.size_bytes = bytes.len() as u64;
    entry.sha256 = sha256_hex(&bytes);
    entry.record_count += 1;
    io(
        &manifest_path,
        std::fs::write(&manifest_path, manifest.to_json()?),
    )?;
    let stray = delivery.join("notes-from-the-bank.txt");
    io(
        &stray,
        std::fs::write(&stray, b"not part of the delivery\n"),
    )
}

struct Baseline {
    /// The spoiled day before any run.
    fresh: tempfile::TempDir,
    /// The same after one uninterrupted run.
    clean: tempfile::TempDir,
    /// After one uninterrupted run.
    state: BTreeMap<String, String>,
    exit: Option<i32>,
    /// How often the run passes each durable step.
    hits: BTreeMap<String, u64>,
    took: Duration,
}

fn baseline() -> Result<Baseline> {
    let fresh = tmp()?;
    spoiled_day(fresh.path())?;
    let clean = tmp()?;
    copy_dir(fresh.path(), clean.path())?;
    let traces = tmp()?;
    let trace = traces.path().join("fault-trace");
    let trace_s = trace.to_string_lossy().into_owned();
    let started = Instant::now();
    let out = recon_run(clean.path(), &[(TRACE_ENV, &trace_s)])?;
    let took = started.elapsed();
    // The run finishes with problems to look at: the rejected line is not one, the
    // quarantined file is (exit 3).
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("EXTRA_FILE"), "{stdout}");
    let mut hits = BTreeMap::new();
    for line in io(&trace, std::fs::read_to_string(&trace))?.lines() {
        *hits.entry(line.to_string()).or_default() += 1;
    }
    Ok(Baseline {
        fresh,
        state: state(clean.path())?,
        clean,
        exit: out.status.code(),
        hits,
        took,
    })
}

/// Re-runs a crashed directory and compares it with the uninterrupted run.
fn rerun_matches(base: &Baseline, dir: &Path, what: &str) -> Result<()> {
    let out = recon_run(dir, &[])?;
    // Finished (3 when this run itself met the quarantined file, 0 when the crashed run had
    // already recorded it).
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "re-run after {what}: {:?} {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = state(dir)?;
    let d = diff(&base.state, &got);
    assert!(d.is_empty(), "after {what} and a re-run: {d:#?}");
    Ok(())
}

#[test]
fn a_crash_at_any_durable_step_then_a_rerun_gives_the_uninterrupted_state() -> Result<()> {
    let base = baseline()?;
    // Every durable step is on the run's path.
    for p in POINTS {
        assert!(
            base.hits.get(*p).is_some_and(|n| *n > 0),
            "{p} never reached: {:?}",
            base.hits
        );
    }
    let mut cases = 0;
    for p in POINTS {
        let n = base.hits[*p];
        let mut ks = vec![1, n.div_ceil(2), n];
        ks.dedup();
        for k in ks {
            let dir = tmp()?;
            copy_dir(base.fresh.path(), dir.path())?;
            let at = format!("{p}#{k}");
            let out = recon_run(dir.path(), &[(FAULT_ENV, &at)])?;
            assert_eq!(
                out.status.code(),
                None,
                "no crash at {at}: the run ended normally"
            );
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("injected crash"),
                "{at}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            rerun_matches(&base, dir.path(), &format!("a crash at {at}"))?;
            cases += 1;
        }
    }
    assert!(cases >= 2 * POINTS.len(), "{cases} crash cases");
    Ok(())
}

#[test]
fn a_run_killed_at_any_moment_then_rerun_gives_the_uninterrupted_state() -> Result<()> {
    let base = baseline()?;
    // Eight moments spread over an uninterrupted run: ingestion, replay, close.
    for i in 1..=8u32 {
        let dir = tmp()?;
        copy_dir(base.fresh.path(), dir.path())?;
        let after = base.took * i / 9;
        let mut child = Command::new(RECON)
            .args(["run", "--data"])
            .arg(dir.path())
            .args(["--date", "2026-11-20"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| Error::io(RECON, e))?;
        std::thread::sleep(after);
        // SIGKILL (a no-op if the run is already over).
        let _ = child.kill();
        let _ = child.wait().map_err(|e| Error::io(RECON, e))?;
        rerun_matches(&base, dir.path(), &format!("a kill after {after:?}"))?;
    }
    Ok(())
}

#[test]
fn a_second_run_in_a_new_process_changes_nothing() -> Result<()> {
    let base = baseline()?;
    let dir = tmp()?;
    copy_dir(base.fresh.path(), dir.path())?;
    let first = recon_run(dir.path(), &[])?;
    assert_eq!(first.status.code(), base.exit);
    let before = state(dir.path())?;
    assert_eq!(diff(&base.state, &before), Vec::<String>::new());
    let second = recon_run(dir.path(), &[])?;
    assert_eq!(
        second.status.code(),
        Some(0),
        "nothing new: {}",
        String::from_utf8_lossy(&second.stderr)
    );
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains("nothing changed since close-2026-11-20-1"),
        "{stdout}"
    );
    let after = state(dir.path())?;
    assert_eq!(diff(&before, &after), Vec::<String>::new());
    Ok(())
}

fn rows<T: recon_shared::columnar::Columnar>(root: &Path, prefix: &str) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for f in files_under(&root.join(prefix)) {
        let b = io(&f, std::fs::read(&f))?;
        out.extend(recon_shared::columnar::read_parquet::<T>(
            bytes::Bytes::from(b),
        )?);
    }
    Ok(out)
}

#[test]
fn counts_add_up_from_the_manifests_to_the_index() -> Result<()> {
    use recon_shared::close::FinalRow;
    use recon_shared::ports::FileStatus;
    use recon_shared::reconcile::{IndexRow, RowKind};
    use recon_shared::records::{StatementLine, Transaction};
    use recon_shared::source::Reject;

    let base = baseline()?;
    let root = base.clean.path();
    // What the sources announced, from their manifests, and what the Manifests table says
    // became of it: every announced record read, every record read accounted for.
    let mut announced = 0;
    let (mut read, mut accepted, mut rejected, mut duplicates) = (0, 0, 0, 0);
    let (mut line_sources, mut txn_sources) = (0, 0);
    for f in files_under(&root.join("state/manifests")) {
        let rows: Vec<recon_shared::ports::FileRecord> =
            serde_json::from_slice(&io(&f, std::fs::read(&f))?)?;
        for r in rows.iter().filter(|r| r.status == FileStatus::Normalized) {
            announced += r.record_count;
            assert_eq!(
                r.records_in, r.record_count,
                "{}: read vs announced",
                r.file
            );
            assert_eq!(
                r.records_in,
                r.accepted + r.rejected + r.duplicates,
                "{}",
                r.file
            );
            read += r.records_in;
            accepted += r.accepted;
            rejected += r.rejected;
            duplicates += r.duplicates;
            if r.source_id.as_str() == "ledger" {
                txn_sources += r.accepted;
            } else {
                line_sources += r.accepted;
            }
        }
    }
    assert!(announced > 0);
    assert_eq!(read, accepted + rejected + duplicates);
    // Curated rows are the accepted records, rejects the rejected ones (the spoiled line).
    let lines: Vec<StatementLine> = rows(root, "curated/statements")?;
    let txns: Vec<Transaction> = rows(root, "curated/transactions")?;
    let rejects: Vec<Reject> = rows(root, "curated/rejects")?;
    assert_eq!(lines.len() as u64, line_sources);
    assert_eq!(txns.len() as u64, txn_sources);
    assert_eq!(rejects.len() as u64, rejected);
    assert_eq!(rejected, 1, "the spoiled line");
    // Every curated line and transaction has exactly one row in the batch index; every
    // transaction exactly one row in the final index.
    let batch: Vec<IndexRow> = rows(root, "index/batch")?;
    let mut line_ids: Vec<String> = batch
        .iter()
        .filter(|r| r.row_kind == RowKind::StatementLine)
        .flat_map(|r| r.statement_ids.clone())
        .collect();
    line_ids.sort();
    let mut want_lines: Vec<String> = lines.iter().map(|l| l.statement_id.to_string()).collect();
    want_lines.sort();
    assert_eq!(line_ids, want_lines);
    let mut txn_ids: Vec<String> = batch
        .iter()
        .filter(|r| r.row_kind == RowKind::Transaction)
        .filter_map(|r| r.transaction_id.as_ref().map(|t| t.to_string()))
        .collect();
    txn_ids.sort();
    let mut want_txns: Vec<String> = txns.iter().map(|t| t.transaction_id.to_string()).collect();
    want_txns.sort();
    assert_eq!(txn_ids, want_txns);
    let finals: Vec<FinalRow> = rows(root, "index/final")?;
    let mut final_ids: Vec<String> = finals
        .iter()
        .map(|f| f.transaction_id.to_string())
        .collect();
    final_ids.sort();
    assert_eq!(final_ids, want_txns);
    Ok(())
}
