//! Lambda entry point: build the ports once; errors carry the stable names the state machine
//! matches.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::config::data_dir;
use recon_shared::local::{LocalRuns, LocalStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let dir = data_dir()?;
    let store = LocalStore::new(&dir);
    let runs = LocalRuns::new(&dir);
    run(service_fn(
        |event: LambdaEvent<plan_partitions::PlanRequest>| async {
            plan_partitions::handle(event.payload, &store, &runs)
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
