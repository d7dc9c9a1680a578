//! Accuracy does not depend on the seed: 20 generated 20 000-payment days, each ingested and
//! closed through the real pipeline, reconcile at ≥ 99.99 % with every exact-id case right.

mod common;

use common::date;
use recon_runtime::asl::Outcome;
use recon_runtime::close::{LocalTasks, close};
use recon_runtime::ingest::{RunConfig, ingest};
use recon_shared::Result;

/// Seeds of the sweep (11 was 99.882 %: payouts whose members lay beyond the search's first 24
/// candidates, and payouts that another set of candidates added up to as well).
fn seeds() -> Vec<u64> {
    match std::env::var("RECON_SEED_SWEEP") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => (1..=20).collect(),
    }
}

#[tokio::test]
async fn twenty_seeds_reconcile_at_four_nines_with_every_exact_id_right() -> Result<()> {
    let mut failures = Vec::new();
    for seed in seeds() {
        let dir = common::tmp()?;
        common::day(dir.path(), 20_000, seed)?;
        ingest(&RunConfig {
            data: dir.path().to_path_buf(),
            date: None,
        })
        .await?;
        let report = close(&LocalTasks::new(dir.path())?, dir.path(), date()?).await?;
        assert!(
            matches!(report.outcome, Outcome::Succeeded(_)),
            "seed {seed}: {:?}",
            report.outcome
        );
        let acc = recon_cli::accuracy::accuracy(dir.path())?;
        eprintln!(
            "seed {seed}: {} of {} correct, exact-id {} of {}",
            acc.correct, acc.total, acc.exact_id.correct, acc.exact_id.truth
        );
        if acc.correct * 10_000 < acc.total * 9_999 || acc.exact_id.correct != acc.exact_id.truth {
            failures.push((seed, acc.correct, acc.total, acc.wrong.first().cloned()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}
