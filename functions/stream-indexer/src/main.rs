//! Lambda entry point: build the ports and the enrichment context once, then index each MSK
//! batch with the library handler. Local adapters from `RECON_DATA_DIR` (AWS adapters come with
//! the infrastructure issue).

use aws_lambda_events::event::kafka::KafkaEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::config::data_dir;
use recon_shared::local::LocalStore;
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::pii::PiiKey;
use recon_shared::stream::StreamContext;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let dir = data_dir()?;
    let pii = PiiKey::from_env()?;
    let store = LocalStore::new(&dir);
    let index = LocalTransactionIndex::open(&dir)?;
    let ctx = StreamContext::load(&store, pii).await?;
    run(service_fn(|event: LambdaEvent<KafkaEvent>| async {
        Ok::<_, Error>(stream_indexer::handle(event.payload, &store, &index, &ctx).await?)
    }))
    .await
}
