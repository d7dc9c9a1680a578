//! Lambda entry point: build the ports once, then serve S3 events with the library handler.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::config::data_dir;
use recon_shared::local::{LocalManifests, LocalStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let dir = data_dir()?;
    let store = LocalStore::new(&dir);
    let table = LocalManifests::new(&dir);
    run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::s3::S3Event>| async {
            Ok::<_, Error>(manifest_validator::handle(event.payload, &store, &table).await?)
        },
    ))
    .await
}
