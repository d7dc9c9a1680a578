//! Lambda entry point: build the ports once (AWS adapters when `RECON_BUCKET` is set, local
//! ones from `RECON_DATA_DIR`), then normalize each request.

// Handlers over the AWS adapters nest futures deeply (SDK calls inside retry loops inside
// the handler); the default limit of 128 is not enough to lay out the main future.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::metrics::{environment, now_ms};
use recon_shared::pii::PiiKey;
use recon_shared::select::Backend;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    recon_shared::allocator::keep_freed_memory();
    tracing::init_default_subscriber();
    let backend = Backend::from_env().await?;
    let pii = PiiKey::from_env()?;
    let store = backend.store()?;
    let table = backend.manifests()?;
    let catalog = backend.catalog()?;
    let env = environment();
    run(service_fn(
        |event: LambdaEvent<normalizer::NormalizeRequest>| async {
            let started = std::time::Instant::now();
            let out = normalizer::handle(event.payload, &store, &table, &catalog, &pii).await?;
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            // The library logged the outcome ("delivery normalized", or that the request was
            // stale); the metrics follow.
            println!("{}", normalizer::metrics(&out, &env, ms, now_ms()));
            Ok::<_, Error>(out)
        },
    ))
    .await
}
