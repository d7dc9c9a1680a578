//! Lambda entry point: build the ports once (AWS adapters when `RECON_BUCKET` is set, local
//! ones from `RECON_DATA_DIR`); errors carry the stable names the state machine matches.

// Handlers over the AWS adapters nest futures deeply (SDK calls inside retry loops inside
// the handler); the default limit of 128 is not enough to lay out the main future.
#![recursion_limit = "256"]

use lambda_runtime::{Diagnostic, Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::metrics::{Emf, environment, now_ms};
use recon_shared::select::{Backend, IndexMode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    recon_shared::allocator::keep_freed_memory();
    tracing::init_default_subscriber();
    let backend = Backend::from_env().await?;
    let store = backend.store()?;
    let runs = backend.runs()?;
    let index = backend.index(IndexMode::Writer)?;
    let env = environment();
    run(service_fn(
        |event: LambdaEvent<final_aggregate::FinalRequest>| async {
            let started = std::time::Instant::now();
            let summary = final_aggregate::handle(event.payload, &store, &runs, &index)
                .await
                .map_err(diagnostic)?;
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::info!(execution = %summary.execution, "close aggregated");
            // Embedded-metric-format lines: the `MismatchRate` alarm of template.yaml.
            let now = now_ms();
            for line in final_aggregate::mismatch_rate_emf(&summary, &env, now) {
                println!("{line}");
            }
            println!(
                "{}",
                Emf::new(&env, "final-aggregate")
                    .millis("Duration", ms)
                    .count(
                        final_aggregate::AWAITING_METRIC,
                        final_aggregate::awaiting_deliveries(&summary),
                    )
                    .line(now)
            );
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
