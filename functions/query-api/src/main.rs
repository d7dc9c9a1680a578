//! Lambda entry point: build the ports once, then answer API Gateway HTTP API requests with the
//! library router. Local adapters from `RECON_DATA_DIR` (the index opened read-only; it follows
//! the indexer's writes).

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::config::data_dir;
use recon_shared::local::LocalStore;
use recon_shared::local_index::LocalTransactionIndex;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let dir = data_dir()?;
    let store = LocalStore::new(&dir);
    let index = LocalTransactionIndex::open_read_only(&dir)?;
    run(service_fn(
        |event: LambdaEvent<ApiGatewayV2httpRequest>| async {
            Ok::<_, Error>(query_api::handle(event.payload, &store, &index).await?)
        },
    ))
    .await
}
