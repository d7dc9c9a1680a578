//! The daily close, locally: `statemachines/daily-close.asl.json` executed by [`crate::asl`]
//! with its task resources bound to the same handlers the Lambda functions and the EMR step run.

use std::path::Path;
use std::sync::Mutex;

use recon_shared::close::{
    CloseSummary, FinalRequest, PartitionRequest, PartitionSummary, PlanRequest, cause_message,
};
use recon_shared::ids::{BankId, BusinessDate};
use recon_shared::local::{
    LocalBreakLog, LocalCatalog, LocalManifests, LocalRules, LocalRuns, LocalStore,
};
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::ports::{
    BreakLog, Catalog, ManifestTable, ObjectStore, RulesTable, RunRecord, RunStatus, RunsTable,
    TransactionIndex,
};
use recon_shared::records::ReconciledStatus;
use recon_shared::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::asl::{Event, Execution, Failure, Outcome, Tasks};
use crate::spark::SparkRunner;

/// The definition shipped with the product.
pub const DEFINITION: &str = include_str!("../../statemachines/daily-close.asl.json");

/// `DefinitionSubstitutions` for a local run (the SAM template supplies the cloud ones).
pub const LOCAL_SUBSTITUTIONS: &[(&str, &str)] = &[
    (
        "PlanPartitionsFunctionArn",
        "arn:aws:lambda:local:000000000000:function:plan-partitions",
    ),
    (
        "ReconcilePartitionFunctionArn",
        "arn:aws:lambda:local:000000000000:function:reconcile-partition",
    ),
    (
        "FinalAggregateFunctionArn",
        "arn:aws:lambda:local:000000000000:function:final-aggregate",
    ),
    ("EmrClusterId", "j-LOCALCLUSTER"),
    ("EmrArtifactsUri", "s3://local-artifacts/emr"),
    ("DataBucket", "local-bucket"),
    ("RunsTable", "local-runs"),
    ("SparkGroups", "8"),
];

/// Resource of the EMR branch.
pub const EMR_ADD_STEP_SYNC: &str = "arn:aws:states:::elasticmapreduce:addStep.sync";

/// Replaces `${Name}` placeholders.
pub fn substitute(definition: &str, subs: &[(&str, &str)]) -> String {
    subs.iter().fold(definition.to_string(), |d, (k, v)| {
        d.replace(&format!("${{{k}}}"), v)
    })
}

/// A fault to inject into one partition's task, for tests of Retry and Catch.
#[derive(Debug, Clone)]
pub struct Fault {
    pub bank_id: BankId,
    /// Error name the task raises (`Retryable` is retried by the definition).
    pub error: String,
    /// How many invocations fail before the task succeeds (`u32::MAX`: always).
    pub times: u32,
}

/// The task resources, bound to in-process handlers over any adapters of the ports (the
/// local ones for `recon run`, the AWS ones in the integration tests).
pub struct PortTasks<S, R, I, M, C, B, T> {
    pub store: S,
    pub runs: R,
    /// The streaming TransactionIndex.
    pub index: I,
    /// The Manifests table (which deliveries are in, for the plan).
    pub manifests: M,
    /// The catalog the close registers its index partitions in.
    pub catalog: C,
    /// The BreakActions table: people's decisions the plan publishes, and the events that
    /// reopen resolutions the close found changed.
    pub breaks: B,
    /// The Rules table the plan publishes to `config/` when it is in use.
    pub rules: T,
    pub faults: Mutex<Vec<Fault>>,
    /// Where partitions too large for a Lambda go, locally.
    pub large: LargePartitions,
}

/// The local stand-ins of the deployment's large-partition settings: the plan's Lambda input
/// limit (`RECON_LAMBDA_MAX_INPUT_BYTES`, as the template sets it) and the Spark that runs the
/// EMR step (`RECON_SPARK_SUBMIT`; none: such a partition fails, saying how to get one).
#[derive(Debug, Clone, Default)]
pub struct LargePartitions {
    /// Partitions with more input bytes go to the EMR branch.
    pub lambda_max_input_bytes: Option<u64>,
    /// The local Spark, when there is one.
    pub spark: Option<SparkRunner>,
    /// The data directory the job reads and writes (the bucket of the step's arguments).
    pub data: Option<std::path::PathBuf>,
}

impl LargePartitions {
    /// From the environment.
    pub fn from_env(data: &Path) -> Result<Self> {
        Ok(Self {
            lambda_max_input_bytes: recon_shared::config::Settings::from_env()?
                .lambda_max_input_bytes,
            spark: SparkRunner::from_env()?,
            data: Some(data.to_path_buf()),
        })
    }
}

/// The local bindings: the data directory's bucket, Runs table and TransactionIndex (under
/// `state/transaction_index/`).
pub type LocalTasks = PortTasks<
    LocalStore,
    LocalRuns,
    LocalTransactionIndex,
    LocalManifests,
    LocalCatalog,
    LocalBreakLog,
    LocalRules,
>;

fn failure(e: Error) -> Failure {
    Failure::new(e.error_type(), e.to_string())
}

fn decode<T: DeserializeOwned>(v: Value) -> std::result::Result<T, Failure> {
    serde_json::from_value(v)
        .map_err(|e| Failure::new("InvalidInput", format!("task input does not decode: {e}")))
}

fn encode<T: serde::Serialize>(v: Result<T>) -> std::result::Result<Value, Failure> {
    let v = v.map_err(failure)?;
    serde_json::to_value(v).map_err(|e| Failure::new("InvariantViolated", e.to_string()))
}

/// The `HadoopJarStep.Args` of an `addStep` request.
fn step_args(input: &Value) -> Vec<String> {
    input["Step"]["HadoopJarStep"]["Args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Resource of the state that reads the Spark job's summary back (EMR answers a step with
/// the step's description only).
pub const S3_GET_OBJECT: &str = "arn:aws:states:::aws-sdk:s3:getObject";

impl LocalTasks {
    pub fn new(data: &Path) -> Result<Self> {
        Ok(Self::with_ports(
            LocalStore::new(data),
            LocalRuns::new(data),
            LocalTransactionIndex::open(data)?,
            LocalManifests::new(data),
            LocalCatalog::new(data),
            (LocalBreakLog::new(data), LocalRules::new(data)),
        ))
    }
}

impl<
    S: ObjectStore,
    R: RunsTable,
    I: TransactionIndex,
    M: ManifestTable,
    C: Catalog,
    B: BreakLog,
    T: RulesTable,
> PortTasks<S, R, I, M, C, B, T>
{
    pub fn with_ports(
        store: S,
        runs: R,
        index: I,
        manifests: M,
        catalog: C,
        (breaks, rules): (B, T),
    ) -> Self {
        Self {
            store,
            runs,
            index,
            manifests,
            catalog,
            breaks,
            rules,
            faults: Mutex::new(Vec::new()),
            large: LargePartitions::default(),
        }
    }

    /// The tables `plan-partitions` reads besides the bucket.
    fn plan_tables(&self) -> plan_partitions::Tables<'_, R, M, B, T> {
        plan_partitions::Tables {
            runs: &self.runs,
            manifests: &self.manifests,
            breaks: &self.breaks,
            rules: &self.rules,
        }
    }

    fn injected(&self, bank: &BankId) -> Option<Failure> {
        let mut faults = self.faults.lock().ok()?;
        let f = faults
            .iter_mut()
            .find(|f| &f.bank_id == bank && f.times > 0)?;
        if f.times != u32::MAX {
            f.times -= 1;
        }
        Some(Failure::new(
            f.error.clone(),
            format!("injected fault for {bank}"),
        ))
    }

    async fn partition(
        &self,
        req: PartitionRequest,
    ) -> std::result::Result<PartitionSummary, Failure> {
        if let Some(f) = self.injected(&req.bank_id) {
            return Err(f);
        }
        reconcile_partition::handle(req, &self.store, &self.runs)
            .await
            .map_err(failure)
    }
}

impl<
    S: ObjectStore,
    R: RunsTable,
    I: TransactionIndex,
    M: ManifestTable,
    C: Catalog,
    B: BreakLog,
    T: RulesTable,
> Tasks for PortTasks<S, R, I, M, C, B, T>
{
    fn invoke<'a>(
        &'a self,
        resource: &'a str,
        input: Value,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = std::result::Result<Value, Failure>> + Send + 'a>,
    > {
        Box::pin(async move {
            let function = resource.rsplit_once(":function:").map(|(_, f)| f);
            let r = self.dispatch(function, resource, input).await;
            // Step Functions gives a failed Lambda's cause as the function's error JSON.
            match function {
                Some(_) => r.map_err(lambda_failure),
                None => r,
            }
        })
    }
}

/// A failed Lambda invocation as Step Functions reports it: the error name, and as the cause
/// the function's error object (`{"errorType", "errorMessage"}`) in JSON text.
pub fn lambda_failure(f: Failure) -> Failure {
    let cause = json!({"errorType": f.error, "errorMessage": f.cause}).to_string();
    Failure::new(f.error, cause)
}

impl<
    S: ObjectStore,
    R: RunsTable,
    I: TransactionIndex,
    M: ManifestTable,
    C: Catalog,
    B: BreakLog,
    T: RulesTable,
> PortTasks<S, R, I, M, C, B, T>
{
    async fn dispatch(
        &self,
        function: Option<&str>,
        resource: &str,
        input: Value,
    ) -> std::result::Result<Value, Failure> {
        match (function, resource) {
            (Some("plan-partitions"), _) => encode(
                plan_partitions::handle(
                    PlanRequest {
                        lambda_max_input_bytes: self.large.lambda_max_input_bytes,
                        ..decode::<PlanRequest>(input)?
                    },
                    &self.store,
                    self.plan_tables(),
                )
                .await,
            ),
            (Some("reconcile-partition"), _) => encode(Ok(self.partition(decode(input)?).await?)),
            (Some("final-aggregate"), _) => {
                let req: FinalRequest = decode(input)?;
                encode(
                    final_aggregate::handle(
                        req,
                        &self.store,
                        &self.runs,
                        &self.index,
                        &self.catalog,
                        &self.breaks,
                    )
                    .await,
                )
            }
            (None, EMR_ADD_STEP_SYNC) => {
                let args = step_args(&input);
                let (Some(spark), Some(data)) = (&self.large.spark, &self.large.data) else {
                    return Err(Failure::new(
                        "States.TaskFailed",
                        format!(
                            "a partition above the Lambda input limit goes to the Spark job, and no local Spark is configured: run the close under scripts/with-spark.sh (or set {}), or raise {}",
                            crate::spark::SPARK_SUBMIT_ENV,
                            recon_shared::config::LAMBDA_MAX_INPUT_BYTES_ENV
                        ),
                    ));
                };
                spark
                    .run(&args, data)
                    .map_err(|cause| Failure::new("States.TaskFailed", cause))?;
                // What DescribeStep says of a completed step (the state keeps none of it).
                Ok(
                    json!({"Step": {"Name": input["Step"]["Name"], "Status": {"State": "COMPLETED"}}}),
                )
            }
            (None, S3_GET_OBJECT) => {
                let key = input["Key"].as_str().unwrap_or_default();
                match self.store.get(key).await {
                    Ok(b) => Ok(json!({
                        "Body": String::from_utf8_lossy(&b),
                        "ContentLength": b.len(),
                    })),
                    Err(Error::NotFound { .. }) => Err(Failure::new(
                        "S3.NoSuchKeyException",
                        format!("The specified key does not exist. ({key})"),
                    )),
                    Err(e) => Err(failure(e)),
                }
            }
            _ => Err(Failure::new(
                "States.Runtime",
                format!("no local binding for resource {resource}"),
            )),
        }
    }
}

/// What a local close did.
#[derive(Debug, Clone)]
pub struct CloseReport {
    pub execution: String,
    pub outcome: Outcome,
    pub events: Vec<Event>,
    /// The run summary written to `runs/{date}/{execution}.json`, when the close got that far.
    pub summary: Option<CloseSummary>,
    /// Not run: nothing it reads changed since `execution`, whose outcome this repeats.
    pub unchanged: bool,
}

/// `close-{date}-{n}`: n one more than the executions of the date that completed (recorded
/// their `_close` row in the Runs table, the last thing a close writes), with the last of them.
/// An execution interrupted before that row is run again under its own name, so a crash and a
/// re-run leave what one uninterrupted close leaves.
pub async fn next_execution<R: RunsTable>(
    runs: &R,
    date: BusinessDate,
) -> Result<(String, Option<RunRecord>)> {
    let prefix = format!("close-{date}-");
    let last = runs
        .runs(date)
        .await?
        .into_iter()
        .filter(|r| r.partition == "_close")
        .filter_map(|r| {
            let n: u32 = r.run_id.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, r))
        })
        .max_by_key(|(n, _)| *n);
    let n = last.as_ref().map_or(0, |(n, _)| *n);
    Ok((format!("{prefix}{}", n + 1), last.map(|(_, r)| r)))
}

fn read_summary(data: &Path, date: BusinessDate, execution: &str) -> Option<CloseSummary> {
    std::fs::read(data.join(recon_shared::keys::run_summary_key(date, execution)))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// Executes the daily close for `date` as execution `name` over any ports: the outcome and
/// the execution's events.
pub async fn execute<
    S: ObjectStore,
    R: RunsTable,
    I: TransactionIndex,
    M: ManifestTable,
    C: Catalog,
    B: BreakLog,
    T: RulesTable,
>(
    tasks: &PortTasks<S, R, I, M, C, B, T>,
    name: &str,
    date: BusinessDate,
) -> Result<(Outcome, Vec<Event>)> {
    let definition: Value = serde_json::from_str(&substitute(DEFINITION, LOCAL_SUBSTITUTIONS))?;
    let ex = Execution::new(name, tasks);
    let outcome = ex.run(&definition, json!({"business_date": date})).await;
    let events = ex
        .events
        .lock()
        .map(|e| e.clone())
        .map_err(|_| Error::Invariant("event log poisoned".into()))?;
    Ok((outcome, events))
}

/// Executes the daily close for `date` on the data directory.
pub async fn close(tasks: &LocalTasks, data: &Path, date: BusinessDate) -> Result<CloseReport> {
    let (name, _) = next_execution(&tasks.runs, date).await?;
    let (outcome, events) = execute(tasks, &name, date).await?;
    Ok(CloseReport {
        summary: read_summary(data, date, &name),
        execution: name,
        outcome,
        events,
        unchanged: false,
    })
}

/// The close of `recon run`: not run again when nothing it reads changed since the last
/// completed close of the date, which succeeded — the deliveries (`inputs_changed` false: every
/// delivery unchanged), the stream's items, and what the plan would reconcile (no partition
/// whose inputs, rules or reference data differ from its last successful run, the same banks
/// awaited). A second `recon run` of the same inputs then leaves the directory as it was.
pub async fn close_if_changed(
    tasks: &LocalTasks,
    data: &Path,
    date: BusinessDate,
    inputs_changed: bool,
) -> Result<CloseReport> {
    let (name, last) = next_execution(&tasks.runs, date).await?;
    if let Some(last) = last.filter(|l| !inputs_changed && l.status == RunStatus::Succeeded)
        && let Some(summary) = read_summary(data, date, &last.run_id)
    {
        let plan = plan_partitions::handle(
            PlanRequest {
                business_date: date,
                execution: Some(name),
                force: false,
                lookback_days: recon_shared::close::DEFAULT_LOOKBACK_DAYS,
                lambda_max_input_bytes: tasks.large.lambda_max_input_bytes,
            },
            &tasks.store,
            tasks.plan_tables(),
        )
        .await?;
        let same_awaited = plan.awaiting == summary.awaiting_deliveries;
        if plan.lambda_chains.is_empty() && plan.emr_chains.is_empty() && same_awaited {
            return Ok(CloseReport {
                execution: last.run_id,
                outcome: Outcome::Succeeded(serde_json::to_value(&summary)?),
                events: Vec::new(),
                summary: Some(summary),
                unchanged: true,
            });
        }
    }
    close(tasks, data, date).await
}

/// Re-reconciles one partition (what a failed Map iteration or EMR step would have done), over
/// any ports: the same [`reconcile_partition::handle`] as the Lambda, for
/// `recon reconcile-partition` and `recon ops rerun`. The Runs table records it under
/// `execution` when given.
pub async fn rerun_partition<S: ObjectStore, R: RunsTable>(
    store: &S,
    runs: &R,
    date: BusinessDate,
    bank: &str,
    as_of: Option<BusinessDate>,
    execution: Option<String>,
) -> Result<PartitionSummary> {
    let bank_id = BankId::new(bank)?;
    let req = PartitionRequest {
        business_date: date,
        previous: recon_shared::close::previous_close(store, &bank_id, date).await?,
        bank_id,
        as_of: as_of.unwrap_or(date),
        execution,
        awaiting: None,
    };
    reconcile_partition::handle(req, store, runs).await
}

/// The close part of `recon run`'s output.
pub fn close_table(report: &CloseReport) -> String {
    if report.unchanged {
        return format!(
            "daily close: nothing changed since {} (SUCCEEDED); not run again\n",
            report.execution
        );
    }
    let mut s = format!("daily close {}: ", report.execution);
    match &report.outcome {
        Outcome::Succeeded(_) => s.push_str("SUCCEEDED\n"),
        Outcome::Failed(f) => s.push_str(&format!(
            "FAILED ({}: {})\n",
            f.error,
            cause_message(&f.cause)
        )),
    }
    let Some(summary) = &report.summary else {
        return s;
    };
    s.push_str(&format!(
        "{:<12} {:<8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>8}\n",
        "date",
        "bank",
        "txns",
        "lines",
        "matched",
        "partial",
        "pending",
        "unmatch",
        "disputed",
        "breaks",
        "resolved"
    ));
    for p in &summary.partitions {
        if let Some(f) = p.failure() {
            s.push_str(&format!(
                "{:<12} {:<8} FAILED {}: {}\n",
                f.business_date.to_string(),
                f.bank_id.as_str(),
                f.error,
                f.cause
            ));
            continue;
        }
        let (date, bank) = p.partition();
        let counts = p.summary();
        let st = |k: ReconciledStatus| {
            counts
                .and_then(|c| c.by_status.get(k.as_str()))
                .copied()
                .unwrap_or(0)
        };
        let breaks = counts.map_or(0, |c| c.breaks.new + c.breaks.persisting);
        s.push_str(&format!(
            "{:<12} {:<8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>7} {:>8}\n",
            date.to_string(),
            bank.as_str(),
            counts.map_or(0, |c| c.transactions),
            counts.map_or(0, |c| c.statement_lines),
            st(ReconciledStatus::Matched),
            st(ReconciledStatus::PartialMatch),
            st(ReconciledStatus::Pending),
            st(ReconciledStatus::Unmatched),
            st(ReconciledStatus::Disputed),
            breaks,
            counts.map_or(0, |c| c.breaks.resolved)
        ));
    }
    if summary.partitions.is_empty() {
        s.push_str("  no partition changed since the last successful close\n");
    }
    for a in &summary.awaiting_deliveries {
        s.push_str(&format!(
            "{:<12} {:<8} AWAITING_DELIVERY ({})\n",
            a.business_date.to_string(),
            a.bank_id.as_str(),
            a.reason.as_str()
        ));
    }
    s
}

/// What needs attention after a close: its failed partitions and the deliveries it awaits.
/// A close that failed as a whole is an error; one whose partitions failed is a problem
/// (the other partitions are closed).
pub fn close_problems(report: &CloseReport) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(summary) = &report.summary {
        for f in summary.failures() {
            problems.push(format!(
                "partition {} {} failed: {}: {}",
                f.business_date, f.bank_id, f.error, f.cause
            ));
        }
        for a in &summary.awaiting_deliveries {
            problems.push(format!(
                "bank {} awaits its statement of {}: {}",
                a.bank_id,
                a.business_date,
                a.reason.as_str()
            ));
        }
    }
    if let Outcome::Failed(f) = &report.outcome
        && problems.is_empty()
    {
        problems.push(format!(
            "close {} failed: {}: {}",
            report.execution,
            f.error,
            cause_message(&f.cause)
        ));
    }
    problems
}
