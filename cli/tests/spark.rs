//! The large-partition branch for real (DESIGN.md §13, docs/spark.md): `recon run` with a low
//! Lambda input limit sends the largest partitions through the state machine's EMR branch,
//! which the local runner runs as the step's own `spark-submit` of
//! `infra/emr/reconcile_partition.py` in `local[2]` mode (the Rust kernel inside Spark's tasks).
//! The index it leaves is the Lambda-only close's, byte for byte, on generated multi-day worlds
//! (carried items, hand-overs, duplicates, splits, payouts, chargebacks) for several seeds and
//! group counts.
//!
//! Needs a local Spark: `scripts/with-spark.sh` (which `make test` runs) exports
//! `RECON_SPARK_SUBMIT`; without it these tests fail saying so.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{diff, files_under, tmp, tree};
use recon_shared::keys;
use recon_shared::{Error, Result};

const RECON: &str = env!("CARGO_BIN_EXE_recon");
const FIRST: &str = "2026-11-16";
const LAST: &str = "2026-11-18";

fn spark_submit() -> Result<String> {
    std::env::var("RECON_SPARK_SUBMIT").map_err(|_| {
        Error::Invariant(
            "RECON_SPARK_SUBMIT is not set: run the tests under scripts/with-spark.sh (make test does)"
                .into(),
        )
    })
}

fn world(dir: &Path, transactions: usize, seed: u64) -> Result<()> {
    common::world(dir, FIRST, 3, transactions, seed)
}

/// `recon run` of the three days; `env` adds to (and `clear` removes from) its environment.
fn recon_run(data: &Path, env: &[(&str, String)], clear: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(RECON);
    cmd.args(["run", "--data"])
        .arg(data)
        .args(["--date", FIRST, "--through", LAST]);
    for k in clear {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| Error::io(RECON, e))?;
    // 3: finished with something to look at (the generated world has a late bank).
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "recon run: {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

/// Input bytes of each (date, bank) partition as the plan counts them: the curated
/// statements and transactions objects of the date and bank.
fn partition_bytes(data: &Path) -> Result<BTreeMap<(String, String), u64>> {
    let mut out = BTreeMap::new();
    for f in files_under(&data.join("curated")) {
        let key = f
            .strip_prefix(data)
            .map_err(|e| Error::Invariant(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if !(key.starts_with("curated/statements/") || key.starts_with("curated/transactions/")) {
            continue;
        }
        let bank = keys::statements_bank(&key).or_else(|| keys::transactions_bank(&key));
        let date = key
            .split('/')
            .find_map(|s| s.strip_prefix("business_date="));
        if let (Some(d), Some(b)) = (date, bank) {
            let len = std::fs::metadata(&f).map_err(|e| Error::io(&f, e))?.len();
            *out.entry((d.to_string(), b.to_string())).or_insert(0) += len;
        }
    }
    Ok(out)
}

/// People's manual matches (design.md §12) on the last close of every bank: the
/// transaction of one exact-id pair with the line of another, so the engine's first pass takes
/// items that other groups would hold (a line naming the transaction, the other line's
/// transaction). Written as BreakActions events; the plan publishes them.
fn manual_matches(dir: &Path) -> Result<usize> {
    use recon_shared::breaks::{Action, Amounts, BreakEvent};
    use recon_shared::ids::{BankId, BusinessDate};
    use recon_shared::local::LocalBreakLog;
    use recon_shared::ports::BreakLog;
    use recon_shared::records::{MismatchType, ResolveReason};
    let truth = std::fs::read_to_string(dir.join("truth/closes.csv"))
        .map_err(|e| Error::io("truth/closes.csv", e))?;
    let mut pairs: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for l in truth.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        // close_date,bank_id,kind,id,reconciled_status,mismatch_type,match_rule,counterparts,…
        if f.len() > 7
            && f[0] == LAST
            && f[2] == "line"
            && f[6] == "EXACT_ID"
            && !f[7].contains('|')
        {
            pairs
                .entry(f[1].to_string())
                .or_default()
                .push((f[3].to_string(), f[7].to_string()));
        }
    }
    let log = LocalBreakLog::new(dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::io("runtime", e))?;
    let mut n = 0;
    for (bank, p) in &pairs {
        let (Some((_, t1)), Some((l2, _))) = (p.first(), p.get(1)) else {
            continue;
        };
        let bank = BankId::new(bank)?;
        let id = recon_shared::reconcile::break_id(&bank, MismatchType::MissingInternal, l2);
        let e = BreakEvent::next(
            None,
            &id,
            bank,
            Action::Resolve {
                reason: ResolveReason::ManualMatch,
                note: "test: matched across groups".into(),
                transaction_ids: vec![t1.clone()],
                statement_ids: vec![l2.clone()],
            },
            "tester",
            chrono::DateTime::UNIX_EPOCH,
            (BusinessDate::parse(LAST)?, Amounts::default()),
        )?;
        rt.block_on(log.append(&e))?;
        n += 1;
    }
    Ok(n)
}

/// The Spark close of a world equals its Lambda-only close: every index file byte for byte
/// (with `manual`, also when people matched items by hand).
fn spark_close_equals_lambda_close(seed: u64, groups: u32, manual: bool) -> Result<()> {
    let submit = spark_submit()?;
    let lambda = tmp()?;
    world(lambda.path(), 3000, seed)?;
    if manual {
        assert!(manual_matches(lambda.path())? >= 3);
    }
    let spark = tmp()?;
    common::copy_dir(lambda.path(), spark.path())?;
    recon_run(lambda.path(), &[], &["RECON_SPARK_SUBMIT"])?;
    // The two largest partitions go to Spark.
    let mut sizes: Vec<u64> = partition_bytes(lambda.path())?.into_values().collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let limit = sizes.get(2).copied().unwrap_or(1);
    let out = recon_run(
        spark.path(),
        &[
            ("RECON_SPARK_SUBMIT", submit),
            ("RECON_BIN", RECON.to_string()),
            ("RECON_LAMBDA_MAX_INPUT_BYTES", limit.to_string()),
            ("RECON_SPARK_GROUPS", groups.to_string()),
        ],
        &[],
    )?;
    let summaries = files_under(&spark.path().join("spark/summary"));
    assert!(
        summaries.len() >= 2,
        "seed {seed}: {} partitions went through Spark (limit {limit} bytes)\n{}",
        summaries.len(),
        String::from_utf8_lossy(&out.stdout)
    );
    let (want, got) = (tree(lambda.path(), "index")?, tree(spark.path(), "index")?);
    let d = diff(&want, &got);
    assert!(
        d.is_empty(),
        "seed {seed}, {groups} groups: the Spark close differs from the Lambda close: {d:#?}"
    );
    assert!(want.len() > 50, "seed {seed}: {} index files", want.len());
    if manual {
        let mut rows = 0;
        for f in files_under(
            &lambda
                .path()
                .join(format!("index/batch/business_date={LAST}")),
        ) {
            let bytes = std::fs::read(&f).map_err(|e| Error::io(&f, e))?;
            let batch: Vec<recon_shared::reconcile::IndexRow> =
                recon_shared::columnar::read_parquet(bytes.into())?;
            rows += batch
                .iter()
                .filter(|r| r.match_rule == recon_shared::records::MatchRule::Manual)
                .count();
        }
        assert!(rows >= 6, "seed {seed}: {rows} MANUAL rows");
    }
    Ok(())
}

#[test]
fn spark_close_is_the_lambda_close_seed_7_one_group() -> Result<()> {
    spark_close_equals_lambda_close(7, 1, false)
}

#[test]
fn spark_close_is_the_lambda_close_seed_8_five_groups() -> Result<()> {
    spark_close_equals_lambda_close(8, 5, false)
}

#[test]
fn spark_close_is_the_lambda_close_seed_9_sixteen_groups_with_manual_matches() -> Result<()> {
    spark_close_equals_lambda_close(9, 16, true)
}
