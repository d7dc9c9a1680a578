//! `normalizer`: turns the accepted files of one delivery into curated Parquet.
//!
//! Its event is the [`NormalizeRequest`] the validator hands on (invoked asynchronously or
//! through a queue); the work is [`recon_shared::ingest::normalize`].

use recon_shared::Result;
pub use recon_shared::ingest::NormalizeRequest;
use recon_shared::ingest::{NormalizeOutcome, normalize};
use recon_shared::pii::PiiKey;
use recon_shared::ports::{Catalog, ManifestTable, ObjectStore};

pub async fn handle<S: ObjectStore, M: ManifestTable, C: Catalog>(
    req: NormalizeRequest,
    store: &S,
    table: &M,
    catalog: &C,
    pii: &PiiKey,
) -> Result<NormalizeOutcome> {
    normalize(store, table, catalog, pii, &req).await
}
