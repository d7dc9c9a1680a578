//! A generated week of one world (`recon generate --days 7`), ingested once and closed day
//! after day through the real pipeline: every close matches its truth (PENDING included),
//! breaks open and resolve on the right closes, the sequence is reproducible byte for byte, and
//! a late correction re-closes its bank from its day on and nothing else.

mod common;

use std::path::Path;

use common::{diff, state, tmp};
use recon_shared::{Error, Result};

const FIRST: &str = "2026-11-16";
const LAST: &str = "2026-11-22";

fn week(dir: &Path, transactions: usize, seed: u64) -> Result<()> {
    common::world(dir, FIRST, 7, transactions, seed)
}

/// Ingests everything and closes the week in date order, as `recon run --through` does.
fn close_week(dir: &Path) -> Result<()> {
    common::run_quietly(dir, FIRST, Some(LAST))
}

#[test]
fn every_close_of_a_week_matches_its_truth_on_six_seeds() -> Result<()> {
    let mut failures = Vec::new();
    for seed in [1, 2, 3, 4, 5, 42] {
        let dir = tmp()?;
        week(dir.path(), 2000, seed)?;
        close_week(dir.path())?;
        let rep = recon_cli::accuracy::accuracy_days(dir.path())?;
        let (items, correct) = rep.totals();
        let closes_ok = rep.closes.len() == 7
            && rep
                .closes
                .values()
                .all(|c| c.correct * 1000 >= c.items * 999);
        // PENDING is a status of its own, and breaks both open and resolve in a week.
        let pending = rep.by_status.get("PENDING").map_or(0, |t| t.truth);
        let resolved = std::fs::read_to_string(dir.path().join("truth/breaks.csv"))
            .map_err(|e| Error::io("truth/breaks.csv", e))?
            .lines()
            .skip(1)
            .filter(|l| !l.ends_with(','))
            .count();
        // Payments of merchants with two acquirers were handed over, chargebacks disputed.
        let handed_over = walk(&dir.path().join("index/routes"))?;
        let disputed = rep.by_status.get("DISPUTED").map_or(0, |t| t.truth);
        if !closes_ok
            || handed_over == 0
            || disputed == 0
            || rep.exact_id.correct != rep.exact_id.truth
            || rep.breaks.correct * 1000 < rep.breaks.truth * 999
            || rep.extra != 0
            || pending == 0
            || resolved == 0
        {
            failures.push((seed, correct, items, rep.table()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}

#[test]
fn a_week_closed_again_from_the_same_inputs_is_byte_identical() -> Result<()> {
    let (a, b) = (tmp()?, tmp()?);
    week(a.path(), 1500, 7)?;
    week(b.path(), 1500, 7)?;
    close_week(a.path())?;
    close_week(b.path())?;
    let (sa, sb) = (state(a.path())?, state(b.path())?);
    assert!(sa.keys().any(|k| k.starts_with("index/open/")));
    assert_eq!(diff(&sa, &sb), Vec::<String>::new());
    // A second pass over the closed week changes nothing either.
    close_week(a.path())?;
    assert_eq!(diff(&sa, &state(a.path())?), Vec::<String>::new());
    Ok(())
}

#[test]
fn a_late_correction_recloses_its_bank_from_its_day_on_and_nothing_else() -> Result<()> {
    let dir = tmp()?;
    let root = dir.path();
    week(root, 1500, 11)?;
    close_week(root)?;
    // bank_01 sends a corrected statement for Wednesday (version 2: one line fewer).
    common::redeliver(root, "bank_01", "2026-11-18", |lines| {
        assert!(lines.len() > 1, "the statement has no line to drop");
        lines.pop();
    })?;
    common::run_quietly(root, LAST, None)?;
    let redone = common::reconciled(root, LAST, 2)?;
    let want: Vec<(String, String)> = (18..=22)
        .map(|d| (format!("2026-11-{d}"), "bank_01".to_string()))
        .collect();
    assert_eq!(redone, want);
    Ok(())
}

#[tokio::test]
async fn a_payment_settled_days_later_says_when_and_which_break_it_closed() -> Result<()> {
    use recon_shared::ids::TransactionId;
    use recon_shared::local_index::LocalTransactionIndex;
    use recon_shared::ports::TransactionIndex;

    let dir = tmp()?;
    week(dir.path(), 1500, 3)?;
    let root = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || close_week(&root))
        .await
        .map_err(|e| Error::Invariant(e.to_string()))??;
    // A payment whose break (missing at the bank) a later statement resolved.
    let breaks = std::fs::read_to_string(dir.path().join("truth/breaks.csv"))
        .map_err(|e| Error::io("truth/breaks.csv", e))?;
    let resolved: Vec<Vec<&str>> = breaks
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[1] == "transaction" && f[3] == "MISSING_AT_BANK" && !f[5].is_empty())
        .collect();
    assert!(!resolved.is_empty(), "the week resolves no missing payment");
    // Every index partition the week wrote is in the catalog (Athena needs no repair).
    let catalog = recon_shared::local::LocalCatalog::new(dir.path());
    for (table, dir_name) in [("batch_index", "batch"), ("final_index", "final")] {
        use recon_shared::ports::Catalog;
        let registered = catalog.partitions("recon", table).await?.len();
        assert!(registered > 0, "{table}: nothing registered");
        assert_eq!(
            registered,
            walk(&dir.path().join("index").join(dir_name))?,
            "{table}"
        );
    }
    let index = LocalTransactionIndex::open_read_only(dir.path())?;
    for f in &resolved {
        let item = index
            .get(&TransactionId::new(f[2])?)
            .await?
            .ok_or_else(|| Error::Invariant(format!("{} is not indexed", f[2])))?;
        let s = item
            .settlement
            .ok_or_else(|| Error::Invariant(format!("{} has no settlement", f[2])))?;
        let d = &s.detail;
        let day = |v: Option<chrono::NaiveDate>| v.map(|d| d.to_string()).unwrap_or_default();
        assert_eq!(
            (day(d.first_seen), day(d.resolved_on), day(d.settled_on)),
            (f[4].to_string(), f[5].to_string(), f[5].to_string()),
            "{}",
            f[2]
        );
        assert!(d.break_id.is_some() && !d.statement_ids.is_empty(), "{d:?}");
    }
    Ok(())
}

/// How many files are under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in entries {
        let path = e.map_err(|e| Error::io(dir, e))?.path();
        n += if path.is_dir() { walk(&path)? } else { 1 };
    }
    Ok(n)
}
