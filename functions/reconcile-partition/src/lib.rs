//! `reconcile-partition` (Step Functions Map task): one (business date, bank) partition.

pub use recon_shared::close::{PartitionRequest, PartitionSummary};
use recon_shared::ports::{ObjectStore, RunsTable};

pub async fn handle<S: ObjectStore, R: RunsTable>(
    req: PartitionRequest,
    store: &S,
    runs: &R,
) -> recon_shared::Result<PartitionSummary> {
    recon_shared::close::reconcile_partition(store, runs, &req).await
}
