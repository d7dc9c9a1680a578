//! The daily close on a generated day, through the real state machine definition: accuracy
//! against the truth, determinism, Retry and Catch, redo-only-what-failed, and late and
//! corrected deliveries re-reconciling only their partitions.

use std::path::Path;

mod common;

use common::{date, tree};
use recon_generator::{GenerateConfig, Knobs, generate};
use recon_runtime::asl::{Event, Outcome};
use recon_runtime::close::{Fault, LocalTasks, close};
use recon_runtime::ingest::{RunConfig, ingest};
use recon_shared::ids::BankId;
use recon_shared::{Error, Result};

async fn ingested_day(dir: &Path, transactions: usize, seed: u64) -> Result<()> {
    common::day(dir, transactions, seed)?;
    ingest(&RunConfig {
        data: dir.to_path_buf(),
        date: None,
    })
    .await?;
    Ok(())
}

fn reconciled(report: &recon_runtime::close::CloseReport) -> Vec<(String, String)> {
    report
        .summary
        .iter()
        .flat_map(|s| &s.partitions)
        .map(|p| {
            let (date, bank) = p.partition();
            (date.to_string(), bank.to_string())
        })
        .collect()
}

#[tokio::test]
async fn a_generated_day_closes_with_the_truths_outcomes() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    ingested_day(dir.path(), 6000, 42).await?;
    let tasks = LocalTasks::new(dir.path())?;
    let report = close(&tasks, dir.path(), date()?).await?;
    assert!(
        matches!(report.outcome, Outcome::Succeeded(_)),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.execution, "close-2026-11-20-1");
    // Six banks today plus the late file's partition for the day before.
    assert_eq!(reconciled(&report).len(), 7, "{:?}", reconciled(&report));
    let acc = recon_cli::accuracy::accuracy(dir.path())?;
    assert_eq!(
        acc.exact_id.correct, acc.exact_id.truth,
        "every exact-id case is right"
    );
    assert!(
        acc.correct * 1000 >= acc.total * 999,
        "accuracy {} of {}: {:?}",
        acc.correct,
        acc.total,
        acc.wrong.first()
    );
    for key in [
        "index/final/business_date=2026-11-20/part.parquet",
        "index/kpis/business_date=2026-11-20/part.parquet",
    ] {
        assert!(dir.path().join(key).exists(), "{key}");
    }
    Ok(())
}

#[tokio::test]
async fn the_same_inputs_give_byte_identical_indexes() -> Result<()> {
    let (a, b) = (
        tempfile::tempdir().map_err(|e| Error::io("tmp", e))?,
        tempfile::tempdir().map_err(|e| Error::io("tmp", e))?,
    );
    for d in [a.path(), b.path()] {
        ingested_day(d, 3000, 7).await?;
        close(&LocalTasks::new(d)?, d, date()?).await?;
    }
    for sub in [
        "index/batch",
        "index/mismatches",
        "index/final",
        "index/kpis",
    ] {
        assert_eq!(tree(a.path(), sub)?, tree(b.path(), sub)?, "{sub} differs");
    }
    // A second close with nothing changed reconciles nothing and rewrites no index byte.
    let before = tree(a.path(), "index")?;
    let again = close(&LocalTasks::new(a.path())?, a.path(), date()?).await?;
    assert!(matches!(again.outcome, Outcome::Succeeded(_)));
    assert!(reconciled(&again).is_empty(), "{:?}", reconciled(&again));
    assert_eq!(
        tree(a.path(), "index/batch")?,
        before
            .into_iter()
            .filter(|(k, _)| k.starts_with("index/batch"))
            .collect()
    );
    Ok(())
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_caught_then_redone() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    ingested_day(dir.path(), 3000, 11).await?;
    let tasks = LocalTasks::new(dir.path())?;
    if let Ok(mut f) = tasks.faults.lock() {
        // bank_02 fails twice with a transient error (retried), bank_03 always fails.
        f.push(Fault {
            bank_id: BankId::new("bank_02")?,
            error: "Retryable".into(),
            times: 2,
        });
        f.push(Fault {
            bank_id: BankId::new("bank_03")?,
            error: "InvalidInput".into(),
            times: u32::MAX,
        });
    }
    let first = close(&tasks, dir.path(), date()?).await?;
    match &first.outcome {
        Outcome::Failed(f) => assert_eq!(f.error, "PartitionsFailed"),
        other => panic!("expected PartitionsFailed, got {other:?}"),
    }
    let retried = first
        .events
        .iter()
        .filter(|e| matches!(e, Event::Retried { error, .. } if error == "Retryable"))
        .count();
    assert_eq!(retried, 2, "bank_02 retried twice then succeeded");
    assert!(
        first
            .events
            .iter()
            .any(|e| matches!(e, Event::Caught { error, .. } if error == "InvalidInput"))
    );
    let summary = first
        .summary
        .clone()
        .ok_or_else(|| Error::Invariant("no summary".into()))?;
    assert_eq!(summary.failed_partitions, 1);
    assert!(
        !dir.path()
            .join("index/batch/business_date=2026-11-20/bank_id=bank_03")
            .exists()
    );
    assert!(
        dir.path()
            .join("index/batch/business_date=2026-11-20/bank_id=bank_02/part.parquet")
            .exists()
    );

    // The next close redoes only the failed partition (one writer of the local index at a time).
    drop(tasks);
    let fixed = LocalTasks::new(dir.path())?;
    let second = close(&fixed, dir.path(), date()?).await?;
    assert!(
        matches!(second.outcome, Outcome::Succeeded(_)),
        "{:?}",
        second.outcome
    );
    assert_eq!(second.execution, "close-2026-11-20-2");
    assert_eq!(
        reconciled(&second),
        vec![("2026-11-20".to_string(), "bank_03".to_string())]
    );
    Ok(())
}

#[tokio::test]
async fn late_and_corrected_deliveries_reconcile_only_their_partitions() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    generate(&GenerateConfig {
        out: dir.path().to_path_buf(),
        date: date()?,
        transactions: 3000,
        banks: 6,
        seed: 5,
        knobs: Knobs::default(),
        force: true,
        days: 1,
    })?;
    // Hold back the late file (bank_01, day before) and bank_02's correction: v1 lands first.
    let root = dir.path();
    let late = root.join("landing/bank_01/2026-11-19");
    let late_parked = root.join("parked-late");
    std::fs::rename(&late, &late_parked).map_err(|e| Error::io(&late, e))?;
    let v2 = root.join("landing/bank_02/2026-11-20");
    let v2_parked = root.join("parked-v2");
    std::fs::rename(&v2, &v2_parked).map_err(|e| Error::io(&v2, e))?;
    copy_dir(&root.join("redelivery/v1/landing/bank_02/2026-11-20"), &v2)?;
    let cfg = RunConfig {
        data: root.to_path_buf(),
        date: Some(date()?),
    };
    ingest(&cfg).await?;
    let first = close(&LocalTasks::new(root)?, root, date()?).await?;
    assert!(matches!(first.outcome, Outcome::Succeeded(_)));
    // Six banks, and bank_01's day before: its statement is not in, so its close ran with its
    // transactions pending (awaited, not called missing at the bank).
    assert_eq!(reconciled(&first).len(), 7, "six banks and the awaited day");
    let before = tree(root, "index/batch/business_date=2026-11-19")?;
    assert_eq!(before.len(), 1, "{before:?}");
    let pending = statuses(root, "2026-11-19", "bank_01")?;
    assert!(
        !pending.is_empty() && pending.iter().all(|s| s == "PENDING"),
        "{pending:?}"
    );
    let awaited = first
        .summary
        .as_ref()
        .map(|s| serde_json::to_value(&s.awaiting_deliveries))
        .transpose()?
        .unwrap_or_default();
    assert_eq!(
        awaited,
        serde_json::json!([{"business_date": "2026-11-19", "bank_id": "bank_01",
                            "sources": ["bank_01"], "reason": "NOT_DELIVERED"}])
    );

    // The late file and version 2 arrive; the next close redoes exactly what they change:
    // bank_01 from the late day on (each of its days carries the open items of the day
    // before), and bank_02's day.
    copy_dir(&late_parked, &late)?;
    copy_dir(&v2_parked, &v2)?;
    ingest(&cfg).await?;
    let second = close(&LocalTasks::new(root)?, root, date()?).await?;
    assert!(
        matches!(second.outcome, Outcome::Succeeded(_)),
        "{:?}",
        second.outcome
    );
    let mut redone = reconciled(&second);
    redone.sort();
    assert_eq!(
        redone,
        vec![
            ("2026-11-19".to_string(), "bank_01".to_string()),
            ("2026-11-20".to_string(), "bank_01".to_string()),
            ("2026-11-20".to_string(), "bank_02".to_string())
        ]
    );
    let acc = recon_cli::accuracy::accuracy(root)?;
    assert!(
        acc.correct * 1000 >= acc.total * 999,
        "{} of {}",
        acc.correct,
        acc.total
    );
    Ok(())
}

/// The failed partitions of a close summary: (date, bank, cause).
fn failures(report: &recon_runtime::close::CloseReport) -> Vec<(String, String, String)> {
    report
        .summary
        .iter()
        .flat_map(|s| s.failures())
        .map(|f| {
            (
                f.business_date.to_string(),
                f.bank_id.to_string(),
                f.cause.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn without_the_fee_rules_file_the_close_fails_every_partition_saying_so() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let root = dir.path();
    ingested_day(root, 1500, 3).await?;
    let rules = root.join("config/rules/fee_rules.jsonl");
    let parked = root.join("fee_rules.parked");
    std::fs::rename(&rules, &parked).map_err(|e| Error::io(&rules, e))?;
    // Before: SUCCEEDED, every fee a variance, accuracy 16 %.
    let first = close(&LocalTasks::new(root)?, root, date()?).await?;
    match &first.outcome {
        Outcome::Failed(f) => assert_eq!(f.error, "PartitionsFailed"),
        other => panic!("expected PartitionsFailed, got {other:?}"),
    }
    let failed = failures(&first);
    assert_eq!(failed.len(), 7, "{failed:?}");
    for (_, bank, cause) in &failed {
        assert!(
            cause.contains("config/rules/fee_rules.jsonl")
                && cause.contains("missing")
                && cause.contains("deliver the fee rules"),
            "{bank}: {cause}"
        );
    }
    assert!(!root.join("index/batch/business_date=2026-11-20").exists());
    // The file back, the next close reconciles them all.
    std::fs::rename(&parked, &rules).map_err(|e| Error::io(&rules, e))?;
    let second = close(&LocalTasks::new(root)?, root, date()?).await?;
    assert!(
        matches!(second.outcome, Outcome::Succeeded(_)),
        "{:?}",
        second.outcome
    );
    assert_eq!(reconciled(&second).len(), 7);
    Ok(())
}

#[tokio::test]
async fn a_bad_rule_or_fx_line_fails_only_the_partitions_that_need_it() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let root = dir.path();
    ingested_day(root, 1500, 3).await?;
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::io(p, e));
    let write = |p: &Path, t: &str| std::fs::write(p, t).map_err(|e| Error::io(p, e));
    // A second bank-wide rule for bank_02 in force with its 2026 rule; before, it was ignored.
    let rules_path = root.join("config/rules/fee_rules.jsonl");
    let rules = read(&rules_path)?;
    let (n, line) = rules
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("\"bank_02-base-2026\""))
        .ok_or_else(|| Error::Invariant("no bank_02-base-2026 rule".into()))?;
    let added = line.replace("bank_02-base-2026", "bank_02-base-2026b");
    write(&rules_path, &format!("{rules}{added}\n"))?;
    let first = close(&LocalTasks::new(root)?, root, date()?).await?;
    let failed = failures(&first);
    assert_eq!(failed.len(), 1, "{failed:?}");
    let (_, bank, cause) = &failed[0];
    assert_eq!(bank, "bank_02");
    let last = rules.lines().count() + 1;
    for part in [
        "config/rules/fee_rules.jsonl".to_string(),
        format!("line {last}:"),
        format!("of line {}", n + 1),
        "bank_02-base-2026b".into(),
    ] {
        assert!(cause.contains(&part), "{part} not in {cause}");
    }
    assert_eq!(
        reconciled(&first).len(),
        7,
        "the six others and the late one closed"
    );
    write(&rules_path, &rules)?;

    // A rate that is not a number fails the partitions with payments to convert, naming the
    // table's file and line; partitions in one currency close.
    let fx_path = root.join("config/fx/2026-11-20.csv");
    let fx = read(&fx_path)?;
    let bad_line = 3;
    let broken: Vec<String> = fx
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == bad_line {
                let (pair, _) = l.rsplit_once(',').unwrap_or((l, ""));
                format!("{pair},1,0845")
            } else {
                l.to_string()
            }
        })
        .collect();
    write(&fx_path, &(broken.join("\n") + "\n"))?;
    let second = close(&LocalTasks::new(root)?, root, date()?).await?;
    let failed = failures(&second);
    assert!(
        !failed.is_empty(),
        "cross-currency partitions need the table"
    );
    for (_, _, cause) in &failed {
        assert!(
            cause.contains("config/fx/2026-11-20.csv")
                && cause.contains(&format!("line {bad_line}:")),
            "{cause}"
        );
    }
    assert!(
        failed.len() < 7,
        "partitions without a conversion closed: {failed:?}"
    );
    Ok(())
}

/// The reconciled status of every transaction row of a bank's batch index of `date`.
fn statuses(root: &Path, date: &str, bank: &str) -> Result<Vec<String>> {
    use recon_shared::reconcile::{IndexRow, RowKind};
    let key = root.join(format!(
        "index/batch/business_date={date}/bank_id={bank}/part.parquet"
    ));
    let bytes = std::fs::read(&key).map_err(|e| Error::io(&key, e))?;
    Ok(
        recon_shared::columnar::read_parquet::<IndexRow>(bytes.into())?
            .into_iter()
            .filter(|r| r.row_kind == RowKind::Transaction)
            .map(|r| r.reconciled_status.to_string())
            .collect(),
    )
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    // Data files first, the manifest last, as a bank delivers.
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .map_err(|e| Error::io(from, e))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort_by_key(|p| p.file_name().is_some_and(|n| n == "_manifest.json"));
    for p in entries {
        let name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        std::fs::copy(&p, to.join(name)).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

#[tokio::test]
async fn a_bank_whose_statement_is_quarantined_is_awaited_not_called_unpaid() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    common::day(dir.path(), 3000, 9)?;
    // bank_03's statement fails its checksum: the whole delivery is quarantined.
    let delivery = dir.path().join("landing/bank_03/2026-11-20");
    let file = std::fs::read_dir(&delivery)
        .map_err(|e| Error::io(&delivery, e))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n != "_manifest.json"))
        .ok_or_else(|| Error::Invariant("bank_03 delivers no file".into()))?;
    let mut bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
    if let Some(b) = bytes.iter_mut().rev().find(|b| b.is_ascii_digit()) {
        *b = if *b == b'9' { b'8' } else { *b + 1 };
    }
    std::fs::write(&file, &bytes).map_err(|e| Error::io(&file, e))?;
    ingest(&RunConfig {
        data: dir.path().to_path_buf(),
        date: None,
    })
    .await?;
    let report = close(&LocalTasks::new(dir.path())?, dir.path(), date()?).await?;
    assert!(matches!(report.outcome, Outcome::Succeeded(_)));
    let closed = reconciled(&report);
    assert_eq!(
        closed.len(),
        7,
        "six banks today, bank_03 awaited, and the late partition: {closed:?}"
    );
    let awaited = report
        .summary
        .map(|s| serde_json::to_value(s.awaiting_deliveries))
        .transpose()?
        .unwrap_or_default();
    assert_eq!(
        awaited,
        serde_json::json!([{"business_date": "2026-11-20", "bank_id": "bank_03",
                            "sources": ["bank_03"], "reason": "QUARANTINED"}])
    );
    // None of bank_03's transactions is a break: they wait for the statement, pending.
    let waiting = statuses(dir.path(), "2026-11-20", "bank_03")?;
    assert!(
        !waiting.is_empty() && waiting.iter().all(|s| s == "PENDING"),
        "{waiting:?}"
    );
    // The Runs table says so, and the close's own row counts it.
    let runs = recon_shared::local::LocalRuns::new(dir.path());
    use recon_shared::ports::{RunStatus, RunsTable};
    let rows = runs.runs(date()?).await?;
    let awaited: Vec<_> = rows
        .iter()
        .filter(|r| r.status == RunStatus::AwaitingDelivery)
        .collect();
    assert_eq!(awaited.len(), 1);
    assert_eq!(awaited[0].partition, "bank_03");
    assert!(
        awaited[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("QUARANTINED"))
    );
    let close_row = rows.iter().find(|r| r.partition == "_close");
    assert_eq!(
        close_row.and_then(|r| r.counts.get("awaiting_deliveries")),
        Some(&1)
    );
    Ok(())
}
