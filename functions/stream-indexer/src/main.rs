//! Lambda entry point: build the ports and the enrichment context once (AWS adapters when
//! `RECON_BUCKET` is set, local ones from `RECON_DATA_DIR`), then index each MSK batch with
//! the library handler.

// Handlers over the AWS adapters nest futures deeply (SDK calls inside retry loops inside
// the handler); the default limit of 128 is not enough to lay out the main future.
#![recursion_limit = "256"]

use aws_lambda_events::event::kafka::KafkaEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::metrics::{environment, now_ms};
use recon_shared::pii::PiiKey;
use recon_shared::select::{Backend, IndexMode};
use recon_shared::stream::StreamContext;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    recon_shared::allocator::keep_freed_memory();
    tracing::init_default_subscriber();
    let backend = Backend::from_env().await?;
    let pii = PiiKey::from_env()?;
    let store = backend.store()?;
    let index = backend.index(IndexMode::Writer)?;
    let ctx = StreamContext::load(&store, pii).await?;
    let env = environment();
    run(service_fn(|event: LambdaEvent<KafkaEvent>| async {
        let started = std::time::Instant::now();
        let report = stream_indexer::handle(event.payload, &store, &index, &ctx).await?;
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The library logged the batch's counts ("stream batch indexed"); the metrics follow.
        println!("{}", stream_indexer::metrics(&report, &env, ms, now_ms()));
        Ok::<_, Error>(report)
    }))
    .await
}
