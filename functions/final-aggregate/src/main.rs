//! Lambda entry point: build the ports once; errors carry the stable names the state machine
//! matches.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::config::{ENVIRONMENT_ENV, data_dir};
use recon_shared::local::{LocalRuns, LocalStore};
use recon_shared::local_index::LocalTransactionIndex;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let dir = data_dir()?;
    let store = LocalStore::new(&dir);
    let runs = LocalRuns::new(&dir);
    let index = LocalTransactionIndex::open(&dir)?;
    let environment = std::env::var(ENVIRONMENT_ENV).unwrap_or_else(|_| "local".into());
    run(service_fn(
        |event: LambdaEvent<final_aggregate::FinalRequest>| async {
            let summary = final_aggregate::handle(event.payload, &store, &runs, &index)
                .await
                .map_err(diagnostic)?;
            // Embedded-metric-format lines: the `MismatchRate` alarm of template.yaml.
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            for line in final_aggregate::mismatch_rate_emf(&summary, &environment, now_ms) {
                println!("{line}");
            }
            Ok::<_, Diagnostic>(summary)
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
