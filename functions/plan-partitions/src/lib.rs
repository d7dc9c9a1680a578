//! `plan-partitions` (Step Functions task): which partitions the close reconciles, and where.

pub use recon_shared::close::{Plan, PlanRequest};
use recon_shared::ports::{ManifestTable, ObjectStore, RunsTable};

pub async fn handle<S: ObjectStore, R: RunsTable, M: ManifestTable>(
    req: PlanRequest,
    store: &S,
    runs: &R,
    manifests: &M,
) -> recon_shared::Result<Plan> {
    recon_shared::close::plan(store, runs, manifests, &req).await
}
