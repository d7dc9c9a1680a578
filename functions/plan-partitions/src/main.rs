//! Lambda entry point: build the ports once (AWS adapters when `RECON_BUCKET` is set, local
//! ones from `RECON_DATA_DIR`); errors carry the stable names the state machine matches.

// Handlers over the AWS adapters nest futures deeply (SDK calls inside retry loops inside
// the handler); the default limit of 128 is not enough to lay out the main future.
#![recursion_limit = "256"]

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::select::Backend;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    recon_shared::allocator::keep_freed_memory();
    tracing::init_default_subscriber();
    let backend = Backend::from_env().await?;
    let store = backend.store()?;
    let runs = backend.runs()?;
    let manifests = backend.manifests()?;
    run(service_fn(
        |event: LambdaEvent<plan_partitions::PlanRequest>| async {
            plan_partitions::handle(event.payload, &store, &runs, &manifests)
                .await
                .map_err(diagnostic)
        },
    ))
    .await
}

/// The error as Step Functions sees it: `Error` is the stable name its Retry/Catch match.
fn diagnostic(e: recon_shared::Error) -> Diagnostic {
    Diagnostic {
        error_type: e.error_type().to_string(),
        error_message: e.to_string(),
    }
}
