//! The `recon` command line: its commands and their arguments (clap). [`crate::main_with`]
//! runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use recon_shared::ids::{BankId, BusinessDate};
use recon_shared::records::ResolveReason;

#[derive(Parser)]
#[command(
    name = "recon",
    version,
    about = "Payment settlement and reconciliation index"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Write one realistic business day (landing files, topics, config) and its ground truth.
    Generate {
        /// Directory that acts as the bucket.
        #[arg(long)]
        out: PathBuf,
        /// Business date, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date)]
        date: BusinessDate,
        /// Internal transactions of the day (of each weekday with `--days`).
        #[arg(long, default_value_t = 10_000)]
        transactions: usize,
        /// Consecutive calendar days of one world from `--date` (1 to 31): above 1, payments
        /// every day, banks settling on their business days, and the truth of every daily
        /// close (`docs/generator.md`).
        #[arg(long, default_value_t = 1)]
        days: u32,
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
        #[command(flatten)]
        partition: PartitionArgs,
    },
    /// The Spark job's kernel (`infra/emr/reconcile_partition.py` runs these; docs/spark.md):
    /// plan a large partition, reconcile one match group, merge the groups.
    #[command(hide = true)]
    Spark {
        #[command(subcommand)]
        what: SparkCommand,
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
    /// Operate the daily close on AWS (needs the AWS-enabled build: `cargo install --path cli
    /// --features aws`; this build says how and exits with 1).
    #[cfg(not(feature = "aws"))]
    Ops {
        /// Whatever `recon ops` was given.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Write the report of a close again (`reports/business_date=D/report.html`, design.md
    /// §14) from what the close wrote, and print its path.
    Report {
        /// Directory that acts as the bucket.
        #[arg(long)]
        data: PathBuf,
        /// The close's business date, YYYY-MM-DD.
        #[arg(long)]
        date: BusinessDate,
    },
    /// Serve the query API (design.md §9) on 127.0.0.1 over DIR.
    Serve {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Who acts on breaks through this server (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Work the breaks (design.md §12): list a close's breaks, show one's history, assign,
    /// comment, resolve, reopen, and verify every hash chain (docs/runbook.md).
    Breaks {
        #[command(subcommand)]
        what: BreaksCommand,
    },
    /// Send a generated day's topics (DIR/topics/*.jsonl) to a Kafka-protocol broker: each
    /// record to its topic and partition with its key and timestamp, redeliveries and late
    /// records as generated; creates the topics when missing (docs/kafka.md).
    #[cfg(feature = "kafka")]
    Publish {
        #[arg(long)]
        data: PathBuf,
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Consume both topics with a consumer group and index them as the stream-indexer Lambda
    /// does, committing offsets after each durable index write; stops on SIGINT/SIGTERM
    /// (finishing the batch in hand) and reports lag (docs/kafka.md).
    #[cfg(feature = "kafka")]
    Stream {
        /// The data directory whose index to write; without it the deployment of the
        /// environment (RECON_BUCKET, RECON_TRANSACTION_INDEX_TABLE; the AWS-enabled build).
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        kafka: KafkaArgs,
        /// The consumer group: its committed offsets are where a restart resumes.
        #[arg(long, default_value = "recon-stream-indexer")]
        group: String,
        /// Group members this process runs (each its own connection and thread).
        #[arg(long, default_value_t = 1)]
        consumers: usize,
        /// Records per batch at most (the MSK mapping's BatchSize).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// How long a batch may wait to fill, in milliseconds.
        #[arg(long, default_value_t = 500)]
        batch_window_ms: u64,
        /// Stop once caught up (lag 0) and idle this many milliseconds; by default run until
        /// a signal.
        #[arg(long)]
        idle_exit_ms: Option<u64>,
        /// Warn about a partition behind the broker whose committed offset has not moved for
        /// this many milliseconds (reported as stalled).
        #[arg(long, default_value_t = 60_000)]
        stall_warn_ms: u64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish to or index from a Kafka-protocol broker (needs the Kafka-enabled build:
    /// `cargo install --locked --path cli --features kafka`; this build says how and exits
    /// with 1).
    #[cfg(not(feature = "kafka"))]
    #[command(name = "publish", alias = "stream")]
    Kafka {
        /// Whatever the command was given.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Fee rules, tolerances and calendars in the Rules table (docs/rules.md): import a set of
    /// `config/` files as new versions, export the table's rules as files, diff the two, and
    /// the history of every change.
    Rules {
        #[command(subcommand)]
        what: RulesCommand,
    },
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Store the rules of DIR/config/ (fee_rules.jsonl, tolerances.json, calendars/) in the
    /// table: a new version of each rule that differs, rules DIR lacks retired. Checked as the
    /// close checks them first; nothing is written when one is refused.
    Import {
        #[command(flatten)]
        at: BreaksWhere,
        /// The directory whose config/ holds the rules.
        #[arg(long)]
        from: PathBuf,
        /// Who makes the change (recorded with every version).
        #[arg(long)]
        actor: String,
        /// Why (recorded with every version).
        #[arg(long)]
        reason: String,
        /// Show what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the table's rules as DIR/config/ files (what the plan publishes to the bucket).
    Export {
        #[command(flatten)]
        at: BreaksWhere,
        #[arg(long)]
        to: PathBuf,
    },
    /// What importing DIR would change: each rule added, changed or retired, before and after.
    /// Exits 3 when something differs.
    Diff {
        #[command(flatten)]
        at: BreaksWhere,
        #[arg(long)]
        from: PathBuf,
    },
    /// Every version of every rule (or of one rule id): who changed what, when and why.
    History {
        #[command(flatten)]
        at: BreaksWhere,
        /// Only this rule (a fee rule's id, a bank's calendar, `default` for the tolerances).
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// The broker and how to reach it.
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT…].
    #[arg(long)]
    pub brokers: String,
    /// A librdkafka property, KEY=VALUE, repeatable (security.protocol, sasl.*,
    /// session.timeout.ms, …).
    #[arg(long = "kafka-config", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
}

/// Where the breaks (or rules) are: `--data DIR`, or without it the deployment of the
/// environment (`RECON_BUCKET`, `RECON_BREAK_ACTIONS_TABLE`, `RECON_RULES_TABLE`; the
/// AWS-enabled build).
#[derive(clap::Args, Debug, Clone)]
pub struct BreaksWhere {
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// An action on one break as seen in one close.
#[derive(clap::Args, Debug, Clone)]
pub struct ActOn {
    #[command(flatten)]
    pub at: BreaksWhere,
    /// The break (`brk_…`).
    pub break_id: String,
    /// The close whose facts you act on (YYYY-MM-DD).
    #[arg(long)]
    pub date: BusinessDate,
    /// Who acts (recorded in the event).
    #[arg(long)]
    pub actor: String,
}

#[derive(Subcommand)]
pub enum BreaksCommand {
    /// The breaks the close of a date holds open, with owner and status.
    List {
        #[command(flatten)]
        at: BreaksWhere,
        #[arg(long)]
        date: BusinessDate,
        #[arg(long)]
        bank: Option<BankId>,
        /// open | resolved (by a person).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A break's state and whole history (its chain checked); with --date, as that close shows it.
    Show {
        #[command(flatten)]
        at: BreaksWhere,
        break_id: String,
        #[arg(long)]
        date: Option<BusinessDate>,
    },
    /// Give the break to someone.
    Assign {
        #[command(flatten)]
        on: ActOn,
        #[arg(long)]
        owner: String,
    },
    /// Add a remark to the history.
    Comment {
        #[command(flatten)]
        on: ActOn,
        #[arg(long)]
        text: String,
    },
    /// Resolve: WRITE_OFF, MANUAL_MATCH (with --transaction and --statement), ACCEPTED_VARIANCE,
    /// DUPLICATE_CONFIRMED or OTHER.
    Resolve {
        #[command(flatten)]
        on: ActOn,
        #[arg(long)]
        reason: ResolveReason,
        #[arg(long, default_value = "")]
        note: String,
        /// A transaction of a manual match (repeat for several).
        #[arg(long = "transaction")]
        transactions: Vec<String>,
        /// A statement line of a manual match (repeat for several).
        #[arg(long = "statement")]
        statements: Vec<String>,
    },
    /// Open a resolved break again.
    Reopen {
        #[command(flatten)]
        on: ActOn,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Check every break's hash chain (or one break's) and name the first broken link.
    Verify {
        #[command(flatten)]
        at: BreaksWhere,
        break_id: Option<String>,
    },
}

#[cfg(feature = "aws")]
#[derive(Subcommand)]
pub enum OpsCommand {
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
        #[command(flatten)]
        partition: PartitionArgs,
        /// A local data directory instead of the AWS resources of the environment.
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// The steps of the Spark job. Each works on `--data DIR`, or without it on the deployment
/// of the environment (`RECON_BUCKET`, `RECON_RUNS_TABLE`; the AWS-enabled build).
#[derive(Subcommand)]
pub enum SparkCommand {
    /// Plan the job of one partition (its previous close found as `reconcile-partition`
    /// finds it); prints the plan (JSON).
    Plan {
        #[arg(long)]
        data: Option<PathBuf>,
        #[command(flatten)]
        partition: PartitionArgs,
        /// Why the bank's statement is awaited, when it is (`no_manifest`, …).
        #[arg(long)]
        awaiting: Option<String>,
        /// Match groups to split the partition into.
        #[arg(long, default_value_t = 16)]
        groups: u32,
    },
    /// Reconcile one group: its transactions and lines as Arrow IPC files; prints the
    /// group's counts (JSON).
    Group {
        #[arg(long)]
        data: Option<PathBuf>,
        /// Key of the plan in the store.
        #[arg(long)]
        plan: String,
        #[arg(long)]
        group: u32,
        #[arg(long)]
        transactions: PathBuf,
        #[arg(long)]
        lines: PathBuf,
    },
    /// Merge the groups into the partition's outputs and record the run; prints the
    /// partition's summary (JSON).
    Merge {
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        plan: String,
        /// The groups that ran, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<u32>,
    },
}

/// One partition of a close, for `recon reconcile-partition` and `recon ops rerun`.
#[derive(Args)]
pub struct PartitionArgs {
    #[arg(long, value_parser = parse_date)]
    pub date: BusinessDate,
    #[arg(long)]
    pub bank: String,
    /// The close the run belongs to (default: the partition's date).
    #[arg(long = "as-of", value_parser = parse_date)]
    pub as_of: Option<BusinessDate>,
    #[arg(long)]
    pub execution: Option<String>,
}

/// The data directory and the day of `recon run` and `recon close`.
#[derive(Args)]
pub struct DayArgs {
    #[arg(long)]
    pub data: PathBuf,
    /// Business date of the close (default: the latest date with a delivery).
    #[arg(long, value_parser = parse_date)]
    pub date: Option<BusinessDate>,
    /// Close every date from `--date` through this one, in order: a sequence of days, each
    /// carrying the open items of the one before (a generated week: `--days 7`).
    #[arg(long, value_parser = parse_date, requires = "date")]
    pub through: Option<BusinessDate>,
}

#[derive(Subcommand)]
pub enum BenchCommand {
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
    /// `POST /breaks/{id}/actions` under load on 127.0.0.1: throughput and latency
    /// percentiles, spread over a closed day's breaks and contended on one.
    Breaks {
        /// A closed data directory (`recon run` of a generated day).
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_parser = parse_date)]
        date: BusinessDate,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        #[arg(long, default_value_t = 500)]
        requests: usize,
    },
    /// The report of a closed day in headless Chromium (`RECON_CHROMIUM`, or `--chromium`):
    /// its weight, the time to write it, and its load time over several loads.
    Report {
        /// A closed data directory.
        #[arg(long)]
        data: PathBuf,
        #[arg(long, value_parser = parse_date)]
        date: BusinessDate,
        /// The browser (default `$RECON_CHROMIUM`, else /usr/bin/chromium).
        #[arg(long)]
        chromium: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        loads: usize,
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
    /// The Spark job (local[2]) on the synthetic partitions against reconcile-partition of the
    /// same data: times, where the job's time goes, and whether the outputs are identical.
    Spark {
        #[arg(long = "lines", default_values_t = vec![1_000_000usize])]
        lines: Vec<usize>,
        #[arg(long, default_value = "/tmp/recon-bench")]
        dir: PathBuf,
        /// The local `spark-submit` (scripts/with-spark.sh exports RECON_SPARK_SUBMIT).
        #[arg(long = "spark-submit")]
        spark_submit: PathBuf,
        #[arg(long, default_value_t = 8)]
        groups: u32,
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
    /// The day's topics through a Kafka-protocol broker (a fresh one: the topics are
    /// created): publish, consume and index with one group member, beside the in-process
    /// indexer, and the index compared with the JSONL replay's.
    #[cfg(feature = "kafka")]
    Kafka {
        #[arg(long)]
        data: PathBuf,
        /// Bootstrap brokers, HOST:PORT.
        #[arg(long)]
        brokers: String,
        /// The broker's process id on this machine, to count its CPU too.
        #[arg(long)]
        broker_pid: Option<u32>,
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

pub fn parse_date(s: &str) -> Result<BusinessDate, String> {
    BusinessDate::parse(s).map_err(|e| e.to_string())
}
