//! `plan-partitions` (Step Functions task): which partitions the close reconciles, and where.

pub use recon_shared::close::{Plan, PlanRequest};
use recon_shared::ports::{ObjectStore, RunsTable};

pub async fn handle<S: ObjectStore, R: RunsTable>(
    req: PlanRequest,
    store: &S,
    runs: &R,
) -> recon_shared::Result<Plan> {
    recon_shared::close::plan(store, runs, &req).await
}
