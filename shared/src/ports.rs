//! Ports: the small capability traits the handlers are generic over. Each has a local adapter
//! (a directory, [`crate::local`]) and an AWS adapter; the core never sees an SDK type.
//!
//! Methods return `Send` futures so handlers run on the Lambda runtime and in `recon run` alike.

use std::future::Future;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{BusinessDate, SourceId};

/// One object under a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// The bucket: objects addressed by `/`-separated keys (design.md §2).
pub trait ObjectStore: Send + Sync {
    /// The object's bytes; [`crate::Error::NotFound`] when there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Bytes>> + Send;
    /// Writes the whole object at once (readers never see a partial object).
    fn put(&self, key: &str, bytes: Bytes) -> impl Future<Output = Result<()>> + Send;
    /// Objects whose key starts with `prefix`, sorted by key.
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<ObjectInfo>>> + Send;
    fn copy(&self, from: &str, to: &str) -> impl Future<Output = Result<()>> + Send;
    /// Deleting a missing object is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;
}

/// The object at `key`, `None` when there is none.
pub async fn get_opt<S: ObjectStore>(store: &S, key: &str) -> Result<Option<Bytes>> {
    match store.get(key).await {
        Ok(b) => Ok(Some(b)),
        Err(crate::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// State of one delivered file in the Manifests table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileStatus {
    /// Checked against its manifest, waiting for normalization.
    Accepted,
    /// Turned into curated Parquet; counts are final.
    Normalized,
    /// Moved to `quarantine/` with a reason.
    Quarantined,
    /// Belonged to an earlier version of the delivery.
    Superseded,
}

/// One row of the Manifests table: PK `source_id#business_date`, SK `file`.
/// The row with `file == "_manifest.json"` describes the delivery itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub source_id: SourceId,
    pub business_date: BusinessDate,
    pub file: String,
    pub version: u32,
    pub status: FileStatus,
    pub sha256: String,
    pub size_bytes: u64,
    /// Records the manifest announced.
    pub record_count: u64,
    /// Records read, and what became of them: `records_in == accepted + rejected + duplicates`.
    pub records_in: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub duplicates: u64,
    /// Machine-readable reason code and a sentence for people, when quarantined.
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    /// Curated objects written from this file (so a later version can replace them).
    pub outputs: Vec<String>,
}

impl FileRecord {
    /// Partition key of the Manifests table.
    pub fn pk(&self) -> String {
        delivery_pk(&self.source_id, self.business_date)
    }
}

pub fn delivery_pk(source: &SourceId, date: BusinessDate) -> String {
    format!("{source}#{date}")
}

/// The Manifests table (design.md §7).
pub trait ManifestTable: Send + Sync {
    /// Every row of one delivery (`source_id#business_date`), sorted by file.
    fn delivery(
        &self,
        source: &SourceId,
        date: BusinessDate,
    ) -> impl Future<Output = Result<Vec<FileRecord>>> + Send;
    /// Inserts or replaces rows of one delivery together.
    fn put(&self, records: &[FileRecord]) -> impl Future<Output = Result<()>> + Send;
}

/// A partition as the Glue Data Catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Partition {
    pub database: String,
    pub table: String,
    /// Partition column values in the table's order, e.g. `[("business_date", "2026-11-20")]`.
    pub values: Vec<(String, String)>,
    /// `s3://…` or a key prefix locally.
    pub location: String,
}

/// The schema catalog (Glue-shaped).
pub trait Catalog: Send + Sync {
    /// Creates or updates a partition; registering the same partition twice changes nothing.
    fn register_partition(&self, partition: &Partition) -> impl Future<Output = Result<()>> + Send;
    fn partitions(
        &self,
        database: &str,
        table: &str,
    ) -> impl Future<Output = Result<Vec<Partition>>> + Send;
}

/// State of one unit of a daily close (a partition, or the whole run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Skipped,
    /// The bank's statement for the date is not in: the partition waits for it.
    AwaitingDelivery,
}

/// One row of the Runs table: PK `business_date`, SK `run_id#partition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub business_date: BusinessDate,
    /// The execution (`close-{date}-{n}` or a local run id).
    pub run_id: String,
    /// `bank_id` for a partition, `_close` for the whole run.
    pub partition: String,
    pub status: RunStatus,
    /// Fingerprint of the partition's inputs (rules and code version included).
    pub fingerprint: String,
    pub counts: std::collections::BTreeMap<String, u64>,
    pub duration_ms: u64,
    pub error: Option<String>,
}

impl RunRecord {
    pub fn sort_key(&self) -> String {
        format!("{}#{}", self.run_id, self.partition)
    }
}

/// The Runs table (design.md §7).
pub trait RunsTable: Send + Sync {
    fn put(&self, record: &RunRecord) -> impl Future<Output = Result<()>> + Send;
    /// Every record of one business date, sorted by sort key.
    fn runs(&self, date: BusinessDate) -> impl Future<Output = Result<Vec<RunRecord>>> + Send;
}

/// A secondary index of the TransactionIndex (design.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gsi {
    /// Partition key `user_token`, sort key `txn_day`.
    ByUser,
    /// Partition key `merchant_id`, sort key `txn_day`.
    ByMerchant,
}

/// A page request on a GSI: items whose `txn_day` is within `from..=to` (open when `None`),
/// ordered by `txn_day` then `transaction_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexQuery {
    pub gsi: Gsi,
    /// The partition key: a user token or a merchant id.
    pub key: String,
    pub from: Option<BusinessDate>,
    pub to: Option<BusinessDate>,
    /// Items per page (the caller bounds it).
    pub limit: usize,
    /// `next` of the previous page. A cursor of another index or key is refused with
    /// [`crate::Error::InvalidId`] of kind `cursor`.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPage {
    pub items: Vec<crate::index_item::IndexItem>,
    /// Opaque; present when more items may follow.
    pub next: Option<String>,
}

/// A write of an item's streaming state, applied only when the stored [`StreamVersion`] is
/// still `expected` (what the writer read; default = nothing streamed yet) and the new version
/// covers it. Its `settlement` is ignored: the stored one is kept.
///
/// [`StreamVersion`]: crate::index_item::StreamVersion
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionalPut {
    pub item: crate::index_item::IndexItem,
    pub expected: crate::index_item::StreamVersion,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Applied,
    /// Someone else wrote the item since it was read: read it again and re-apply.
    Conflict,
}

/// Settlement fields of one transaction, written back by the daily close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementUpdate {
    pub transaction_id: crate::ids::TransactionId,
    pub settlement: crate::index_item::Settlement,
}

/// Items read or written per call to the [`TransactionIndex`] by its users.
pub const INDEX_CHUNK: usize = 1000;

/// The TransactionIndex table (design.md §7) with its two GSIs and the aggregates kept beside it
/// (merchant-day totals, per user and hour counts for the VELOCITY policy), which the store
/// updates in the same atomic write as the item they derive from.
pub trait TransactionIndex: Send + Sync {
    /// Items by key, in the order asked; keys without an item are left out.
    fn get_many(
        &self,
        ids: &[crate::ids::TransactionId],
    ) -> impl Future<Output = Result<Vec<crate::index_item::IndexItem>>> + Send;

    fn get(
        &self,
        id: &crate::ids::TransactionId,
    ) -> impl Future<Output = Result<Option<crate::index_item::IndexItem>>> + Send {
        async move {
            Ok(self
                .get_many(std::slice::from_ref(id))
                .await?
                .into_iter()
                .next())
        }
    }

    /// `f` of the stored item of each key, in the order asked (keys without an item are left
    /// out): a projection, which a store holding its items in memory answers without copying
    /// them.
    fn map_many<T: Send>(
        &self,
        ids: &[crate::ids::TransactionId],
        f: impl Fn(&crate::index_item::IndexItem) -> T + Send + Sync,
    ) -> impl Future<Output = Result<Vec<T>>> + Send {
        async move { Ok(self.get_many(ids).await?.iter().map(f).collect()) }
    }

    /// Conditional writes of streaming state, one outcome per write, in order.
    fn put_many(
        &self,
        writes: Vec<ConditionalPut>,
    ) -> impl Future<Output = Result<Vec<PutOutcome>>> + Send;

    fn query(&self, query: &IndexQuery) -> impl Future<Output = Result<IndexPage>> + Send;

    /// Writes settlement fields without touching the stream version (an item that has no
    /// streaming state yet is created, and joined when its transaction arrives). Returns the
    /// number of items written.
    fn write_settlements(
        &self,
        updates: &[SettlementUpdate],
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Running totals of a merchant and day; `None` when it has no transaction.
    fn merchant_day(
        &self,
        merchant: &crate::ids::MerchantId,
        day: BusinessDate,
    ) -> impl Future<Output = Result<Option<crate::index_item::MerchantDayTotals>>> + Send;

    /// Transactions per (user token, UTC hour since the epoch), in the order asked.
    fn user_hour_counts(
        &self,
        keys: &[(String, i64)],
    ) -> impl Future<Output = Result<Vec<u64>>> + Send;
}
