//! `plan-partitions` (Step Functions task): which partitions the close reconciles, and where.

pub use recon_shared::close::{Plan, PlanRequest};
use recon_shared::config::Settings;
use recon_shared::entry::Function;
use recon_shared::ports::{BreakLog, ManifestTable, ObjectStore, RunsTable};
use recon_shared::select::{AnyBreakLog, AnyManifests, AnyRuns, AnyStore, Backend};

pub async fn handle<S: ObjectStore, R: RunsTable, M: ManifestTable, L: BreakLog>(
    req: PlanRequest,
    store: &S,
    runs: &R,
    manifests: &M,
    breaks: &L,
) -> recon_shared::Result<Plan> {
    // People's decisions first: they are part of the fingerprints the plan compares.
    recon_shared::close::breaks::publish_decisions(store, breaks).await?;
    recon_shared::close::plan(store, runs, manifests, &req).await
}

/// The Lambda (served by `recon_shared::entry`): the plan over the bucket and the Runs and
/// Manifests tables; a request without a Lambda input limit takes the deployment's
/// (`RECON_LAMBDA_MAX_INPUT_BYTES`).
pub struct Lambda {
    ports: (AnyStore, AnyRuns, AnyManifests, AnyBreakLog),
    lambda_max_input_bytes: Option<u64>,
}

impl Function for Lambda {
    type Event = PlanRequest;
    type Output = Plan;

    async fn init(settings: &Settings, b: &Backend) -> recon_shared::Result<Self> {
        let ports = (b.store()?, b.runs()?, b.manifests()?, b.break_log()?);
        let lambda_max_input_bytes = settings.lambda_max_input_bytes;
        Ok(Self {
            ports,
            lambda_max_input_bytes,
        })
    }

    async fn handle(&self, mut req: PlanRequest) -> recon_shared::Result<Plan> {
        let (store, runs, manifests, breaks) = &self.ports;
        req.lambda_max_input_bytes = req.lambda_max_input_bytes.or(self.lambda_max_input_bytes);
        handle(req, store, runs, manifests, breaks).await
    }
}
