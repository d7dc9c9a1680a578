//! Lambda entry point: build the ports once, then answer API Gateway HTTP API requests with the
//! library router. AWS adapters when `RECON_BUCKET` is set; local ones from `RECON_DATA_DIR`
//! (the index opened read-only; it follows the indexer's writes).

// Handlers over the AWS adapters nest futures deeply (SDK calls inside retry loops inside
// the handler); the default limit of 128 is not enough to lay out the main future.
#![recursion_limit = "256"]

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::select::{Backend, IndexMode};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    recon_shared::allocator::keep_freed_memory();
    tracing::init_default_subscriber();
    let backend = Backend::from_env().await?;
    let store = backend.store()?;
    let index = backend.index(IndexMode::ReadOnly)?;
    run(service_fn(
        |event: LambdaEvent<ApiGatewayV2httpRequest>| async {
            Ok::<_, Error>(query_api::handle(event.payload, &store, &index).await?)
        },
    ))
    .await
}
