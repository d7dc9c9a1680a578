//! `plan-partitions` (Step Functions task): which partitions the close reconciles, and where.

pub use recon_shared::close::{Plan, PlanRequest};
use recon_shared::config::Settings;
use recon_shared::entry::Function;
use recon_shared::ports::{BreakLog, ManifestTable, ObjectStore, RulesTable, RunsTable};
use recon_shared::select::{AnyBreakLog, AnyManifests, AnyRules, AnyRuns, AnyStore, Backend};

/// The tables the plan reads besides the bucket.
pub struct Tables<'a, R, M, L, T> {
    /// The Runs table: each partition's last run.
    pub runs: &'a R,
    /// The Manifests table: the deliveries.
    pub manifests: &'a M,
    /// The BreakActions table: people's decisions.
    pub breaks: &'a L,
    /// The Rules table: fee rules, tolerances, calendars.
    pub rules: &'a T,
}

pub async fn handle<S: ObjectStore, R: RunsTable, M: ManifestTable, L: BreakLog, T: RulesTable>(
    req: PlanRequest,
    store: &S,
    tables: Tables<'_, R, M, L, T>,
) -> recon_shared::Result<Plan> {
    // The rules and people's decisions first: they are part of the fingerprints the plan
    // compares.
    let rules = recon_shared::close::rules::publish(store, tables.rules).await?;
    recon_shared::close::breaks::publish_decisions(store, tables.breaks).await?;
    let mut plan = recon_shared::close::plan(store, tables.runs, tables.manifests, &req).await?;
    plan.rules = rules;
    Ok(plan)
}

/// The Lambda (served by `recon_shared::entry`): the plan over the bucket and the Runs and
/// Manifests tables; a request without a Lambda input limit takes the deployment's
/// (`RECON_LAMBDA_MAX_INPUT_BYTES`).
pub struct Lambda {
    ports: (AnyStore, AnyRuns, AnyManifests, AnyBreakLog, AnyRules),
    lambda_max_input_bytes: Option<u64>,
}

impl Function for Lambda {
    type Event = PlanRequest;
    type Output = Plan;

    async fn init(settings: &Settings, b: &Backend) -> recon_shared::Result<Self> {
        let ports = (
            b.store()?,
            b.runs()?,
            b.manifests()?,
            b.break_log()?,
            b.rules()?,
        );
        let lambda_max_input_bytes = settings.lambda_max_input_bytes;
        Ok(Self {
            ports,
            lambda_max_input_bytes,
        })
    }

    async fn handle(&self, mut req: PlanRequest) -> recon_shared::Result<Plan> {
        let (store, runs, manifests, breaks, rules) = &self.ports;
        req.lambda_max_input_bytes = req.lambda_max_input_bytes.or(self.lambda_max_input_bytes);
        let tables = Tables {
            runs,
            manifests,
            breaks,
            rules,
        };
        handle(req, store, tables).await
    }
}
