//! `recon run` and `recon close`: the whole pipeline on a local directory that plays the
//! bucket. The day's Kafka traffic is replayed beside ingestion, as on AWS the two are
//! independent until the close (the indexer reads only `config/`); then the daily close.

use std::path::Path;
use std::time::Instant;

use recon_shared::ids::BusinessDate;
use recon_shared::local::{
    LocalBreakLog, LocalCatalog, LocalManifests, LocalRules, LocalRuns, LocalStore,
    remove_interrupted_writes,
};
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::{Error, Result};

use crate::close::{LargePartitions, LocalTasks, close_if_changed, close_problems, close_table};
use crate::ingest::{RunConfig, ingest};
use crate::stream_feed::{BATCH_SIZE, feed_topics_into};

/// What needs attention after a command that finished: empty when everything went through.
pub type Problems = Vec<String>;

/// Where a run writes what it reports, as it goes (`recon` prints it).
pub type Say<'a> = &'a mut dyn FnMut(&str);

/// The runtime the local pipeline blocks on.
fn current_thread() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))
}

/// Ingestion of every delivery and the replay of the topics beside it, then the daily close
/// (not run again when nothing it reads changed). Reports each part through `say` when it is
/// done; the parts that failed, were quarantined or are awaited are the [`Problems`].
pub fn run_day(cfg: &RunConfig, say: Say<'_>) -> Result<Problems> {
    run_days(cfg, None, say)
}

/// [`run_day`], then the closes of every later date through `through`, in date order.
pub fn run_days(cfg: &RunConfig, through: Option<BusinessDate>, say: Say<'_>) -> Result<Problems> {
    let rt = current_thread()?;
    // One TransactionIndex for the whole run: the replay fills it and the close reads it,
    // without reloading a million items in between.
    let index = LocalTransactionIndex::open(&cfg.data)?;
    // This process holds the directory alone now (the index's lock): what an earlier run's
    // crash left half-written is garbage.
    remove_interrupted_writes(&cfg.data)?;
    let started = Instant::now();
    let (report, fed) = std::thread::scope(|scope| {
        let stream = scope.spawn(|| {
            // A crash before the snapshot below loses nothing: the next run replays the
            // topics again, into the store's previous generation.
            index.load_unlogged()?;
            let fed =
                current_thread()?.block_on(feed_topics_into(&cfg.data, &index, BATCH_SIZE))?;
            // A snapshot now, beside ingestion: the close's write-back then only appends to a
            // short log.
            index.compact()?;
            Ok::<_, Error>((fed, started.elapsed()))
        });
        let report = rt.block_on(ingest(cfg)).map(|r| (r, started.elapsed()));
        let fed = stream
            .join()
            .unwrap_or_else(|_| Err(Error::Invariant("the stream replay panicked".into())));
        (report, fed)
    });
    let ((report, ingest_took), (fed, stream_took)) = (report?, fed?);
    say(&format!("ingestion ({} ms)\n", ingest_took.as_millis()));
    say(&report.table());
    for (file, code) in &report.quarantined {
        say(&format!("  quarantined {file}: {code}\n"));
    }
    for delivery in &report.resumed {
        say(&format!(
            "  resumed {delivery}: normalization asked for again\n"
        ));
    }
    for (key, error) in &report.failed {
        say(&format!("  FAILED {key}: {error}\n"));
    }
    let mut problems: Problems = report
        .failed
        .iter()
        .map(|(key, e)| format!("delivery {key} failed: {e}"))
        .chain(
            report
                .quarantined
                .iter()
                .map(|(file, code)| format!("{file} quarantined: {code}")),
        )
        .collect();
    say(&format!(
        "stream, beside ingestion ({} ms)\n",
        stream_took.as_millis()
    ));
    say(&fed.table());
    let mut tasks = LocalTasks::with_ports(
        LocalStore::new(&cfg.data),
        LocalRuns::new(&cfg.data),
        index,
        LocalManifests::new(&cfg.data),
        LocalCatalog::new(&cfg.data),
        (LocalBreakLog::new(&cfg.data), LocalRules::new(&cfg.data)),
    );
    tasks.large = LargePartitions::from_env(&cfg.data)?;
    let inputs_changed = !report.failed.is_empty()
        || report.sources.values().any(|s| s.unchanged < s.deliveries)
        || fed.indexed.applied > 0
        || fed.indexed.items_written > 0;
    let close = close_with(&rt, &tasks, &cfg.data, cfg.date, inputs_changed, say);
    let close = match (close, cfg.date, through) {
        (Ok(mut problems), Some(from), Some(to)) => {
            for date in days_after(from, to)? {
                // A wait the plan finds again on each later date is said once.
                add_new(
                    &mut problems,
                    close_with(&rt, &tasks, &cfg.data, Some(date), inputs_changed, say)?,
                );
            }
            Ok(problems)
        }
        (close, _, _) => close,
    };
    say(&format!(
        "recon run took {} ms\n",
        started.elapsed().as_millis()
    ));
    problems.extend(close?);
    Ok(problems)
}

/// Only the daily close of `data` (the state machine), on what ingestion and the stream left
/// there: a re-run redoes only failed or changed partitions, then the aggregation.
pub fn close_day(data: &Path, date: Option<BusinessDate>, say: Say<'_>) -> Result<Problems> {
    close_days(data, date, None, say)
}

/// [`close_day`] of `date`, then of every later date through `through`, in date order (each
/// close carries the open items of the one before).
pub fn close_days(
    data: &Path,
    date: Option<BusinessDate>,
    through: Option<BusinessDate>,
    say: Say<'_>,
) -> Result<Problems> {
    let mut tasks = LocalTasks::new(data)?;
    tasks.large = LargePartitions::from_env(data)?;
    let rt = current_thread()?;
    let mut problems = close_with(&rt, &tasks, data, date, true, say)?;
    if let (Some(from), Some(to)) = (date, through) {
        for d in days_after(from, to)? {
            add_new(
                &mut problems,
                close_with(&rt, &tasks, data, Some(d), true, say)?,
            );
        }
    }
    Ok(problems)
}

/// Appends the problems not already listed.
fn add_new(problems: &mut Problems, more: Problems) {
    for p in more {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
}

/// The dates after `from` through `to`; `to` before `from` is refused.
fn days_after(from: BusinessDate, to: BusinessDate) -> Result<Vec<BusinessDate>> {
    if to < from {
        return Err(Error::InvalidConfig {
            name: "--through".into(),
            reason: format!("{to} is before --date {from}"),
        });
    }
    let mut out = Vec::new();
    let mut d = from.date();
    while d < to.date() {
        d = d + chrono::Days::new(1);
        out.push(BusinessDate::from_date(d)?);
    }
    Ok(out)
}

/// Runs the daily close of `data` and reports its table.
fn close_with(
    rt: &tokio::runtime::Runtime,
    tasks: &LocalTasks,
    data: &Path,
    date: Option<BusinessDate>,
    inputs_changed: bool,
    say: Say<'_>,
) -> Result<Problems> {
    let date = match date {
        Some(d) => d,
        None => latest_date(data)?,
    };
    let started = Instant::now();
    let close = rt.block_on(close_if_changed(tasks, data, date, inputs_changed))?;
    say(&close_table(&close));
    if let Some(summary) = close.summary.as_ref().filter(|_| !close.unchanged)
        && let Some(report) = &summary.report
    {
        say(&format!(
            "report: {} ({} anomaly flags)\n",
            data.join(report).display(),
            summary.anomalies
        ));
    }
    say(&format!(
        "close took {} ms\n",
        started.elapsed().as_millis()
    ));
    Ok(close_problems(&close))
}

/// The latest business date with a delivery under `landing/`.
pub fn latest_date(data: &Path) -> Result<BusinessDate> {
    let mut latest = None;
    for source in std::fs::read_dir(data.join("landing"))
        .map_err(|e| Error::io(data.join("landing"), e))?
        .flatten()
    {
        for d in std::fs::read_dir(source.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(date) = BusinessDate::parse(&d.file_name().to_string_lossy()) {
                latest = latest.max(Some(date));
            }
        }
    }
    latest.ok_or_else(|| Error::Invariant(format!("no delivery under {}/landing", data.display())))
}
