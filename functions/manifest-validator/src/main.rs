//! Lambda entry point: build the ports once (AWS adapters when `RECON_BUCKET` is set, local
//! ones from `RECON_DATA_DIR`), then serve S3 events with the library handler.

// Handlers over the AWS adapters nest futures deeply (SDK calls inside retry loops inside
// the handler); the default limit of 128 is not enough to lay out the main future.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::metrics::{environment, now_ms};
use recon_shared::select::Backend;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    recon_shared::allocator::keep_freed_memory();
    tracing::init_default_subscriber();
    let backend = Backend::from_env().await?;
    let store = backend.store()?;
    let table = backend.manifests()?;
    #[cfg(feature = "aws")]
    let normalizer = backend.normalizer()?;
    let env = environment();
    run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::s3::S3Event>| async {
            let started = std::time::Instant::now();
            let resp = manifest_validator::handle(event.payload, &store, &table).await?;
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::info!(
                deliveries = resp.outcomes.len(),
                normalize_requests = resp.normalize.len(),
                ignored = resp.ignored.len(),
                "manifests validated"
            );
            // On AWS each accepted delivery goes to the normalizer as an asynchronous event.
            #[cfg(feature = "aws")]
            if let Some(n) = &normalizer {
                let queued = n.dispatch(&resp.normalize).await?;
                tracing::info!(queued, "normalize requests queued");
            }
            println!("{}", manifest_validator::metrics(&resp, &env, ms, now_ms()));
            Ok::<_, Error>(resp)
        },
    ))
    .await
}
