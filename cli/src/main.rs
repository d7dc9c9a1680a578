//! `recon`: generate a day, run the pipeline locally, check it against the truth.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use recon_cli::generate::{GenerateConfig, Knobs, generate};
use recon_cli::run::{RunConfig, ingest};
use recon_shared::ids::BusinessDate;

#[derive(Parser)]
#[command(
    name = "recon",
    version,
    about = "Payment settlement and reconciliation index"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write one realistic business day (landing files, topics, config) and its ground truth.
    Generate {
        /// Directory that acts as the bucket.
        #[arg(long)]
        out: PathBuf,
        /// Business date, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        date: BusinessDate,
        /// Internal transactions of the day.
        #[arg(long, default_value_t = 10_000)]
        transactions: usize,
        /// Banks delivering statements (volume is skewed towards the first).
        #[arg(long, default_value_t = 6)]
        banks: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Case mix, `name=fraction`, repeatable (see `docs/generator.md`).
        #[arg(long = "mix", value_name = "NAME=FRACTION")]
        mix: Vec<String>,
        /// Replace a day already in `--out`.
        #[arg(long)]
        force: bool,
    },
    /// Measure throughput on a generated day (single-threaded: figures are per core).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Compare the index with the generator's ground truth (`truth/`).
    Accuracy {
        #[arg(long)]
        data: PathBuf,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Reconcile one partition (what the EMR step and `recon ops rerun` run).
    ReconcilePartition {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_parser = parse_date)]
        date: BusinessDate,
        #[arg(long)]
        bank: String,
        /// The close the run belongs to (default: the partition's date).
        #[arg(long = "as-of", value_parser = parse_date)]
        as_of: Option<BusinessDate>,
        #[arg(long)]
        execution: Option<String>,
    },
    /// Run the pipeline on DIR as the bucket: ingestion (validate, normalize) of every delivery.
    Run(DayArgs),
    /// Run only the daily close of DIR (the state machine), on what ingestion and the stream
    /// left there: a re-run redoes only failed or changed partitions, then the aggregation.
    Close(DayArgs),
    /// Operate the daily close on AWS: executions, redrive, rerun of one partition
    /// (`docs/runbook.md`).
    #[cfg(feature = "aws")]
    Ops {
        #[command(subcommand)]
        what: OpsCommand,
    },
    /// Serve the query API (DESIGN §9) on 127.0.0.1 over DIR.
    Serve {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

#[cfg(feature = "aws")]
#[derive(Subcommand)]
enum OpsCommand {
    /// Executions of the daily close state machine (`RECON_DAILY_CLOSE_ARN`), newest first.
    Executions {
        /// Only executions of this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED,
        /// PENDING_REDRIVE.
        #[arg(long)]
        status: Option<String>,
        /// The state machine (default: `RECON_DAILY_CLOSE_ARN`).
        #[arg(long = "state-machine")]
        state_machine: Option<String>,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Redrive a failed execution: it resumes at the failed states, and the Map re-runs only
    /// its failed partitions.
    Redrive {
        execution_arn: String,
        #[arg(long = "state-machine")]
        state_machine: Option<String>,
    },
    /// Start the close of a date (`close-{date}-{n}`, n one more than the closes started).
    Start {
        #[arg(long, value_parser = parse_date)]
        date: BusinessDate,
        /// Start exactly `close-{date}-{n}` (an existing one is left as it is).
        #[arg(long)]
        n: Option<u32>,
        #[arg(long = "state-machine")]
        state_machine: Option<String>,
    },
    /// Reconcile one partition again with the reconcile-partition handler, on AWS
    /// (`RECON_BUCKET`, `RECON_RUNS_TABLE`) or on `--data DIR`.
    Rerun {
        #[arg(long, value_parser = parse_date)]
        date: BusinessDate,
        #[arg(long)]
        bank: String,
        #[arg(long = "as-of", value_parser = parse_date)]
        as_of: Option<BusinessDate>,
        #[arg(long)]
        execution: Option<String>,
        /// A local data directory instead of the AWS resources of the environment.
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// The data directory and the day of `recon run` and `recon close`.
#[derive(Args)]
struct DayArgs {
    #[arg(long)]
    data: PathBuf,
    /// Business date of the close (default: the latest date with a delivery).
    #[arg(long, value_parser = parse_date)]
    date: Option<BusinessDate>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Reconcile synthetic single-bank partitions from Parquet; compare with DuckDB SQL.
    Reconcile {
        /// Statement lines per partition (repeatable).
        #[arg(long = "lines", default_values_t = vec![1_000_000usize])]
        lines: Vec<usize>,
        #[arg(long, default_value = "/tmp/recon-bench")]
        dir: PathBuf,
        /// Python with the `duckdb` package, to time the same work in DuckDB SQL.
        #[arg(long)]
        python: Option<PathBuf>,
        /// Runs of each engine per size, each in a fresh process; the least CPU time is kept (this
        /// VM's noise is ±20 %).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Parse and encode the first file of every delivery of the day.
    Normalize {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_parser = parse_date)]
        date: BusinessDate,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// One reconciliation of a synthetic partition in this process, timings as JSON (the
    /// reconcile bench runs each measurement in a fresh process, as it runs DuckDB).
    #[command(hide = true)]
    ReconcileOnce {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Index the day's topics (decode, join, enrich, tokenize, local upsert).
    Stream {
        #[arg(long)]
        data: PathBuf,
        /// Records per batch, as the MSK event source mapping would send them.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

fn parse_date(s: &str) -> Result<BusinessDate, String> {
    BusinessDate::parse(s).map_err(|e| e.to_string())
}

#[cfg(feature = "aws")]
async fn ops(what: OpsCommand) -> recon_shared::Result<()> {
    use recon_cli::ops;
    match what {
        OpsCommand::Executions {
            status,
            state_machine,
            json,
        } => {
            let client = ops::close_client(state_machine).await?;
            let list = ops::executions(&client, status.as_deref()).await?;
            if json {
                for e in &list {
                    recon_cli::outln!("{}", serde_json::to_string(e)?);
                }
            } else {
                recon_cli::out!("{}", ops::executions_table(&list));
            }
        }
        OpsCommand::Redrive {
            execution_arn,
            state_machine,
        } => {
            let client = ops::close_client(state_machine).await?;
            let when = client.redrive(&execution_arn).await?;
            recon_cli::outln!("redriven {execution_arn} at {when}");
        }
        OpsCommand::Start {
            date,
            n,
            state_machine,
        } => {
            let client = ops::close_client(state_machine).await?;
            let (arn, started) = client.start_close(date, n).await?;
            let what = if started { "started" } else { "exists already" };
            recon_cli::outln!("{what}: {arn}");
        }
        OpsCommand::Rerun {
            date,
            bank,
            as_of,
            execution,
            data,
        } => {
            let backend = match data {
                Some(dir) => recon_shared::select::Backend::Local(dir),
                None => {
                    let settings = recon_shared::config::Settings::from_env()?;
                    recon_shared::select::Backend::from_settings(&settings).await?
                }
            };
            let summary = ops::rerun(
                &backend.store()?,
                &backend.runs()?,
                date,
                &bank,
                as_of,
                execution,
            )
            .await?;
            recon_cli::outln!("{}", serde_json::to_string_pretty(&summary)?);
        }
    }
    Ok(())
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

#[global_allocator]
static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;

fn main() -> ExitCode {
    recon_shared::allocator::keep_freed_memory();
    init_logging();
    let cli = Cli::parse();
    match run(cli) {
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

/// Exit status of a run that finished with parts failed, quarantined or awaited (everything
/// else was done); 1 is a run that could not finish, 2 a usage error.
const EXIT_PROBLEMS: u8 = 3;

/// What needs attention after a command that finished: empty when everything went through.
type Problems = Vec<String>;

fn run(cli: Cli) -> recon_shared::Result<Problems> {
    match cli.command {
        Command::Bench {
            what:
                BenchCommand::Reconcile {
                    lines,
                    dir,
                    python,
                    runs,
                },
        } => recon_cli::bench::reconcile_report(&lines, &dir, python.as_deref(), runs)
            .map(|()| Problems::new()),
        Command::Bench {
            what: BenchCommand::Normalize { data, date, runs },
        } => {
            let rows = recon_cli::bench::normalize(&data, date, runs)?;
            recon_cli::out!("{}", recon_cli::bench::normalize_table(&rows));
            Ok(Problems::new())
        }
        Command::Bench {
            what: BenchCommand::ReconcileOnce { dir },
        } => {
            let r = recon_cli::bench::reconcile_partition(&dir)?;
            recon_cli::outln!("{}", serde_json::to_string(&r)?);
            Ok(Problems::new())
        }
        Command::Bench {
            what: BenchCommand::Stream { data, batch },
        } => {
            let b = recon_cli::bench::stream(&data, batch)?;
            recon_cli::out!("{}", recon_cli::bench::stream_table(&b));
            Ok(Problems::new())
        }
        #[cfg(feature = "aws")]
        Command::Ops { what } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| recon_shared::Error::io("tokio runtime", e))?;
            rt.block_on(ops(what)).map(|()| Problems::new())
        }
        Command::Serve { data, port } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(|e| recon_shared::Error::io("tokio runtime", e))?;
            rt.block_on(recon_cli::serve::serve(&data, port))
                .map(|()| Problems::new())
        }
        Command::Run(DayArgs { data, date }) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| recon_shared::Error::io("tokio runtime", e))?;
            let cfg = RunConfig { data, date };
            // One TransactionIndex for the whole run: the replay fills it and the close reads
            // it, without reloading a million items in between.
            let index = recon_shared::local_index::LocalTransactionIndex::open(&cfg.data)?;
            // This process holds the directory alone now (the index's lock): what an earlier
            // run's crash left half-written is garbage.
            recon_shared::local::remove_interrupted_writes(&cfg.data)?;
            // The day's Kafka traffic and the bank deliveries are independent until the close
            // (the indexer reads only `config/`), as on AWS: the replay runs beside ingestion.
            let started = std::time::Instant::now();
            let (report, fed) = std::thread::scope(|scope| {
                let stream = scope.spawn(|| {
                    // A crash before the snapshot below loses nothing: the next run replays
                    // the topics again, into the store's previous generation.
                    index.load_unlogged()?;
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .map_err(|e| recon_shared::Error::io("tokio runtime", e))?;
                    let fed = rt.block_on(recon_cli::stream_feed::feed_topics_into(
                        &cfg.data,
                        &index,
                        recon_cli::stream_feed::BATCH_SIZE,
                    ))?;
                    // A snapshot now, beside ingestion: the close's write-back then only
                    // appends to a short log.
                    index.compact()?;
                    Ok::<_, recon_shared::Error>((fed, started.elapsed()))
                });
                let report = rt.block_on(ingest(&cfg)).map(|r| (r, started.elapsed()));
                let fed = stream.join().unwrap_or_else(|_| {
                    Err(recon_shared::Error::Invariant(
                        "the stream replay panicked".into(),
                    ))
                });
                (report, fed)
            });
            let ((report, ingest_took), (fed, stream_took)) = (report?, fed?);
            recon_cli::outln!("ingestion ({} ms)", ingest_took.as_millis());
            recon_cli::out!("{}", report.table());
            for (file, code) in &report.quarantined {
                recon_cli::outln!("  quarantined {file}: {code}");
            }
            for delivery in &report.resumed {
                recon_cli::outln!("  resumed {delivery}: normalization asked for again");
            }
            for (key, error) in &report.failed {
                recon_cli::outln!("  FAILED {key}: {error}");
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
            recon_cli::outln!("stream, beside ingestion ({} ms)", stream_took.as_millis());
            recon_cli::out!("{}", fed.table());
            let tasks = recon_cli::close::LocalTasks::with_ports(
                recon_shared::local::LocalStore::new(&cfg.data),
                recon_shared::local::LocalRuns::new(&cfg.data),
                index,
                recon_shared::local::LocalManifests::new(&cfg.data),
            );
            let inputs_changed = !report.failed.is_empty()
                || report.sources.values().any(|s| s.unchanged < s.deliveries)
                || fed.indexed.applied > 0
                || fed.indexed.items_written > 0;
            let close = run_close(&rt, &tasks, &cfg.data, cfg.date, inputs_changed);
            recon_cli::outln!("recon run took {} ms", started.elapsed().as_millis());
            problems.extend(close?);
            Ok(problems)
        }
        Command::Close(DayArgs { data, date }) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| recon_shared::Error::io("tokio runtime", e))?;
            let tasks = recon_cli::close::LocalTasks::new(&data)?;
            run_close(&rt, &tasks, &data, date, true)
        }
        Command::Accuracy { data, json } => {
            let report = recon_cli::accuracy::accuracy(&data)?;
            if json {
                recon_cli::outln!("{}", report.to_json());
            } else {
                recon_cli::out!("{}", report.table());
            }
            Ok(Problems::new())
        }
        Command::ReconcilePartition {
            data,
            date,
            bank,
            as_of,
            execution,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| recon_shared::Error::io("tokio runtime", e))?;
            let req = recon_shared::close::PartitionRequest {
                business_date: date,
                bank_id: recon_shared::ids::BankId::new(bank)?,
                as_of: as_of.unwrap_or(date),
                execution,
            };
            let store = recon_shared::local::LocalStore::new(&data);
            let runs = recon_shared::local::LocalRuns::new(&data);
            let summary = rt.block_on(reconcile_partition::handle(req, &store, &runs))?;
            recon_cli::outln!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(Problems::new())
        }
        Command::Generate {
            out,
            date,
            transactions,
            banks,
            seed,
            mix,
            force,
        } => {
            let mut knobs = Knobs::default();
            for m in &mix {
                knobs.set(m)?;
            }
            let report = generate(&GenerateConfig {
                out: out.clone(),
                date,
                transactions,
                banks,
                seed,
                knobs,
                force,
            })?;
            recon_cli::outln!(
                "generated {} in {} ms: {} files, {:.1} MB",
                out.display(),
                report.elapsed_ms,
                report.files,
                report.bytes / 1_000_000
            );
            recon_cli::outln!("  transactions     {:>10}", report.transactions);
            recon_cli::outln!("  statement lines  {:>10}", report.statement_lines);
            recon_cli::outln!(
                "  {:<10} {:<16} {:<4} {:>10}",
                "bank",
                "style",
                "ccy",
                "lines"
            );
            for (id, style, ccy, n) in &report.banks {
                recon_cli::outln!("  {id:<10} {style:<16} {ccy:<4} {n:>10}");
            }
            if let Some(cases) = report
                .truth_summary
                .get("transaction_cases")
                .and_then(|c| c.as_object())
            {
                recon_cli::outln!("  transaction cases:");
                for (k, v) in cases {
                    recon_cli::outln!("    {k:<22} {v:>10}");
                }
            }
            if let Some(cases) = report
                .truth_summary
                .get("statement_line_cases")
                .and_then(|c| c.as_object())
            {
                recon_cli::outln!("  statement line cases:");
                for (k, v) in cases {
                    recon_cli::outln!("    {k:<22} {v:>10}");
                }
            }
            Ok(Problems::new())
        }
    }
}

/// Runs the daily close of `data` and prints its table.
fn run_close(
    rt: &tokio::runtime::Runtime,
    tasks: &recon_cli::close::LocalTasks,
    data: &std::path::Path,
    date: Option<BusinessDate>,
    inputs_changed: bool,
) -> recon_shared::Result<Problems> {
    let date = match date {
        Some(d) => d,
        None => recon_cli::run::latest_date(data)?,
    };
    let started = std::time::Instant::now();
    let close = rt.block_on(recon_cli::close::close_if_changed(
        tasks,
        data,
        date,
        inputs_changed,
    ))?;
    recon_cli::out!("{}", recon_cli::run::close_table(&close));
    recon_cli::outln!("close took {} ms", started.elapsed().as_millis());
    Ok(recon_cli::run::close_problems(&close))
}
