//! The `recon` command: its command line ([`commands`]) and, for each command, the one call
//! into the libraries that does it — the generator (`recon_generator`), the local runtime
//! (`recon_runtime`), the handlers of `functions/`, and the modules here (accuracy, bench,
//! ops, serve). A library, so tests drive it in-process.

pub mod accuracy;
pub mod bench;
pub mod breaks;
pub mod browser;
pub mod commands;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "aws")]
pub mod ops;
pub mod out;
pub mod rules;
pub mod serve;
pub mod spark;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;
use recon_generator::{GenerateConfig, Knobs, generate};
use recon_runtime::close::rerun_partition;
use recon_runtime::ingest::RunConfig;
use recon_runtime::run::{Problems, close_days, run_days};
use recon_shared::local::{LocalRuns, LocalStore};
use recon_shared::{Error, Result};

use crate::commands::{BenchCommand, Cli, Command, DayArgs, PartitionArgs};

/// Exit status of a run that finished with parts failed, quarantined or awaited (everything
/// else was done); 1 is a run that could not finish, 2 a usage error.
const EXIT_PROBLEMS: u8 = 3;

/// `recon` with these arguments (the first is the program's name).
pub fn main_with(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> ExitCode {
    init_logging();
    let cli = Cli::parse_from(args);
    match run(cli.command) {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(problems) => {
            eprintln!(
                "recon: finished, but {} part(s) need attention:",
                problems.len()
            );
            for p in &problems {
                eprintln!("  {p}");
            }
            ExitCode::from(EXIT_PROBLEMS)
        }
        Err(e) => {
            eprintln!("recon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr when `RUST_LOG` is set (`RUST_LOG=debug recon run …`); silent otherwise.
fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
}

/// A tokio runtime on this thread, with `io` and `time` when `all`.
fn runtime(all: bool) -> Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_current_thread();
    if all {
        b.enable_all();
    }
    b.build().map_err(|e| Error::io("tokio runtime", e))
}

/// What the local runtime reports, printed as it comes.
fn say(text: &str) {
    out!("{text}");
}

/// Runs one command.
fn run(command: Command) -> Result<Problems> {
    match command {
        Command::Generate {
            out,
            date,
            transactions,
            days,
            banks,
            seed,
            mix,
            force,
        } => {
            let knobs = Knobs::for_days(days, &mix)?;
            let cfg = GenerateConfig {
                out,
                date,
                transactions,
                banks,
                seed,
                knobs,
                force,
                days,
            };
            out!("{}", generate(&cfg)?.summary(&cfg.out));
        }
        Command::Run(DayArgs {
            data,
            date,
            through,
        }) => {
            return run_days(&RunConfig { data, date }, through, &mut say);
        }
        Command::Close(DayArgs {
            data,
            date,
            through,
        }) => return close_days(&data, date, through, &mut say),
        Command::Accuracy { data, json } if data.join("truth/closes.csv").is_file() => {
            let report = accuracy::accuracy_days(&data)?;
            let flags = accuracy::anomalies::anomaly_accuracy(&data)?;
            if json {
                let mut v = report.to_json();
                if let (Some(f), Some(o)) = (&flags, v.as_object_mut()) {
                    o.insert("anomalies".into(), f.to_json());
                }
                outln!("{v}");
            } else {
                out!("{}", report.table());
                if let Some(f) = &flags {
                    out!("{}", f.table());
                }
            }
        }
        Command::Accuracy { data, json } => {
            let report = accuracy::accuracy(&data)?;
            if json {
                outln!("{}", report.to_json());
            } else {
                out!("{}", report.table());
            }
        }
        Command::ReconcilePartition {
            data,
            partition:
                PartitionArgs {
                    date,
                    bank,
                    as_of,
                    execution,
                },
        } => {
            let (store, runs) = (LocalStore::new(&data), LocalRuns::new(&data));
            let summary = runtime(false)?.block_on(rerun_partition(
                &store, &runs, date, &bank, as_of, execution,
            ))?;
            outln!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Spark { what } => runtime(true)?.block_on(spark::command(what))?,
        Command::Bench { what } => bench_command(what)?,
        #[cfg(feature = "aws")]
        Command::Ops { what } => runtime(true)?.block_on(ops::command(what))?,
        #[cfg(not(feature = "aws"))]
        Command::Ops { .. } => {
            return Err(Error::InvalidConfig {
                name: "recon ops".into(),
                reason: "this recon was built without the AWS clients; install the AWS-enabled build with `cargo install --locked --path cli --features aws` (docs/runbook.md, `recon ops`)".into(),
            });
        }
        #[cfg(feature = "kafka")]
        Command::Publish { data, kafka, json } => {
            return runtime(true)?.block_on(kafka::publish(&data, &kafka, json));
        }
        #[cfg(feature = "kafka")]
        Command::Stream {
            data,
            kafka,
            group,
            consumers,
            batch,
            batch_window_ms,
            idle_exit_ms,
            stall_warn_ms,
            json,
        } => {
            let opts = recon_runtime::kafka::StreamOptions {
                consumers,
                batch_size: batch,
                batch_window: std::time::Duration::from_millis(batch_window_ms),
                idle_exit: idle_exit_ms.map(std::time::Duration::from_millis),
                stall_after: std::time::Duration::from_millis(stall_warn_ms),
                ..recon_runtime::kafka::StreamOptions::new(group)
            };
            runtime(true)?.block_on(kafka::stream(data, &kafka, opts, json))?;
        }
        #[cfg(not(feature = "kafka"))]
        Command::Kafka { .. } => {
            return Err(Error::InvalidConfig {
                name: "recon publish / recon stream".into(),
                reason: "this recon was built without the Kafka client; install the Kafka-enabled build with `cargo install --locked --path cli --features kafka` (docs/kafka.md)".into(),
            });
        }
        Command::Serve { data, port, actor } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(|e| Error::io("tokio runtime", e))?;
            let actor = actor
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "local".into());
            rt.block_on(serve::serve(&data, port, &actor))?;
        }
        Command::Breaks { what } => runtime(true)?.block_on(breaks::command(what))?,
        Command::Rules { what } => return runtime(true)?.block_on(rules::command(what)),
        Command::Report { data, date } => {
            let store = LocalStore::new(&data);
            let published =
                runtime(false)?.block_on(recon_shared::close::insight::rebuild(&store, date))?;
            outln!(
                "{} ({} anomaly flags)",
                data.join(&published.report_key).display(),
                published.anomalies
            );
        }
    }
    Ok(Problems::new())
}

/// Runs one `recon bench` command.
fn bench_command(what: BenchCommand) -> Result<()> {
    match what {
        BenchCommand::Reconcile {
            lines,
            dir,
            python,
            runs,
        } => bench::reconcile_report(&lines, &dir, python.as_deref(), runs)?,
        BenchCommand::Breaks {
            data,
            date,
            clients,
            requests,
        } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::io("tokio runtime", e))?
            .block_on(bench::breaks::bench_breaks(&data, date, clients, requests))?,
        BenchCommand::Report {
            data,
            date,
            chromium,
            loads,
        } => {
            let chromium = chromium
                .or_else(|| std::env::var_os("RECON_CHROMIUM").map(Into::into))
                .unwrap_or_else(|| "/usr/bin/chromium".into());
            out!(
                "{}",
                bench::report::bench_report(&data, date, &chromium, loads)?
            );
        }
        BenchCommand::Normalize { data, date, runs } => {
            out!(
                "{}",
                bench::normalize_table(&bench::normalize(&data, date, runs)?)
            );
        }
        BenchCommand::Spark {
            lines,
            dir,
            spark_submit,
            groups,
        } => {
            out!(
                "{}",
                bench::spark_report(&lines, &dir, &spark_submit, groups)?
            );
        }
        BenchCommand::ReconcileOnce { dir } => {
            outln!(
                "{}",
                serde_json::to_string(&bench::reconcile_partition(&dir)?)?
            );
        }
        BenchCommand::Stream { data, batch } => {
            out!("{}", bench::stream_table(&bench::stream(&data, batch)?));
        }
        #[cfg(feature = "kafka")]
        BenchCommand::Kafka {
            data,
            brokers,
            broker_pid,
            batch,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Error::io("tokio runtime", e))?;
            out!(
                "{}",
                rt.block_on(bench::kafka::bench_kafka(
                    &data, &brokers, broker_pid, batch
                ))?
            );
        }
    }
    Ok(())
}
