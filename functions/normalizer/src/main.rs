//! Lambda entry point: build the ports once, then normalize each request.

use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use recon_shared::config::data_dir;
use recon_shared::local::{LocalCatalog, LocalManifests, LocalStore};
use recon_shared::pii::PiiKey;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let dir = data_dir()?;
    let pii = PiiKey::from_env()?;
    let store = LocalStore::new(&dir);
    let table = LocalManifests::new(&dir);
    let catalog = LocalCatalog::new(&dir);
    run(service_fn(
        |event: LambdaEvent<normalizer::NormalizeRequest>| async {
            Ok::<_, Error>(normalizer::handle(event.payload, &store, &table, &catalog, &pii).await?)
        },
    ))
    .await
}
