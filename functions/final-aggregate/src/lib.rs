//! `final-aggregate` (Step Functions task): final index, merchant KPIs and the run summary.

use std::collections::HashMap;

pub use recon_shared::close::FinalRequest;
use recon_shared::close::StreamState;
use recon_shared::ids::TransactionId;
use recon_shared::ports::{ObjectStore, RunsTable};

pub async fn handle<S: ObjectStore, R: RunsTable>(
    req: FinalRequest,
    store: &S,
    runs: &R,
    stream: &HashMap<TransactionId, StreamState>,
) -> recon_shared::Result<serde_json::Value> {
    recon_shared::close::final_aggregate(store, runs, &req, stream).await
}
