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

/// The Spark close of a world equals its Lambda-only close: every index file byte for byte.
fn spark_close_equals_lambda_close(seed: u64, groups: u32) -> Result<()> {
    let submit = spark_submit()?;
    let lambda = tmp()?;
    world(lambda.path(), 3000, seed)?;
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
    Ok(())
}

#[test]
fn spark_close_is_the_lambda_close_seed_7_one_group() -> Result<()> {
    spark_close_equals_lambda_close(7, 1)
}

#[test]
fn spark_close_is_the_lambda_close_seed_8_five_groups() -> Result<()> {
    spark_close_equals_lambda_close(8, 5)
}

#[test]
fn spark_close_is_the_lambda_close_seed_9_sixteen_groups() -> Result<()> {
    spark_close_equals_lambda_close(9, 16)
}
