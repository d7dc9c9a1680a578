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
    /// The object's full key.
    pub key: String,
    /// The object's size in bytes.
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
    /// Copies object `from` to key `to` (e.g. a refused file into `quarantine/`).
    fn copy(&self, from: &str, to: &str) -> impl Future<Output = Result<()>> + Send;
    /// Deleting a missing object is not an error.
    fn delete(&self, key: &str) -> impl Future<Output = Result<()>> + Send;
    /// The hex SHA-256 of the object's bytes. A store that recorded it when the object was
    /// put answers without reading the object (S3: its `sha256` metadata); by default, and for
    /// an object put by someone else, the bytes are read and hashed.
    fn sha256(&self, key: &str) -> impl Future<Output = Result<String>> + Send {
        async move { Ok(crate::manifest::sha256_hex(&self.get(key).await?)) }
    }
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
    /// The source that delivered the file.
    pub source_id: SourceId,
    /// The business date of the delivery.
    pub business_date: BusinessDate,
    /// The file's name in the delivery (the sort key).
    pub file: String,
    /// The manifest version the row belongs to.
    pub version: u32,
    /// Where the file is in its processing.
    pub status: FileStatus,
    /// SHA-256 of the file's bytes, 64 hex digits.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size_bytes: u64,
    /// Records the manifest announced.
    pub record_count: u64,
    /// Records read, and what became of them: `records_in == accepted + rejected + duplicates`.
    pub records_in: u64,
    /// Records written to the curated table.
    pub accepted: u64,
    /// Records sent to `curated/rejects/`.
    pub rejected: u64,
    /// Identical repeats dropped.
    pub duplicates: u64,
    /// Machine-readable reason code and a sentence for people, when quarantined.
    pub reason_code: Option<String>,
    /// The sentence for people that goes with `reason_code`.
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

/// Partition key of a delivery in the Manifests table: `source_id#business_date`.
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
    /// The catalog database (`recon`).
    pub database: String,
    /// The table (`statements`, `transactions`, `batch` …).
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
    /// Every registered partition of a table.
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
    /// Started, not finished.
    Running,
    /// Finished; its outputs are written.
    Succeeded,
    /// Ended in an error (recorded in `error`).
    Failed,
    /// Not run by this close.
    Skipped,
    /// The bank's statement for the date is not in: the partition waits for it.
    AwaitingDelivery,
}

/// One row of the Runs table: PK `business_date`, SK `run_id#partition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The business date closed (the partition key).
    pub business_date: BusinessDate,
    /// The execution (`close-{date}-{n}` or a local run id).
    pub run_id: String,
    /// `bank_id` for a partition, `_close` for the whole run.
    pub partition: String,
    /// How the unit ended (or that it waits).
    pub status: RunStatus,
    /// Fingerprint of the partition's inputs (rules and code version included).
    pub fingerprint: String,
    /// Named counts of the run: transactions by status, statement lines, breaks new,
    /// persisting and resolved.
    pub counts: std::collections::BTreeMap<String, u64>,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Why the unit failed or waits; `None` when it succeeded.
    pub error: Option<String>,
}

impl RunRecord {
    /// Sort key of the Runs table: `run_id#partition`.
    pub fn sort_key(&self) -> String {
        format!("{}#{}", self.run_id, self.partition)
    }
}

/// The Runs table (design.md §7).
pub trait RunsTable: Send + Sync {
    /// Inserts or replaces one record.
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
    /// The secondary index to read.
    pub gsi: Gsi,
    /// The partition key: a user token or a merchant id.
    pub key: String,
    /// First `txn_day` included; `None`: from the earliest.
    pub from: Option<BusinessDate>,
    /// Last `txn_day` included; `None`: to the latest.
    pub to: Option<BusinessDate>,
    /// Items per page (the caller bounds it).
    pub limit: usize,
    /// `next` of the previous page. A cursor of another index or key is refused with
    /// [`crate::Error::InvalidId`] of kind `cursor`.
    pub cursor: Option<String>,
}

/// One page of an [`IndexQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPage {
    /// The page's items, in the query's order.
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
    /// The item with its new streaming state.
    pub item: crate::index_item::IndexItem,
    /// The stream version the writer read; the write applies only if it is still stored.
    pub expected: crate::index_item::StreamVersion,
}

/// What became of one [`ConditionalPut`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Written.
    Applied,
    /// Someone else wrote the item since it was read: read it again and re-apply.
    Conflict,
}

/// Settlement fields of one transaction, written back by the daily close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementUpdate {
    /// The item to update.
    pub transaction_id: crate::ids::TransactionId,
    /// The settlement the close found for it.
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

    /// The item of one key, `None` when there is none.
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

    /// One page of items of a GSI key.
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

/// What became of a conditional append ([`BreakLog::append`], [`RulesTable::append`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The event is stored.
    Written,
    /// The key is taken (someone else acted first: a break's event with this `seq`, a rule's
    /// version with this number): read the history again and decide on the new state.
    Conflict,
}

/// The BreakActions table (design.md §12): PK `break_id`, SK `seq`; an event is written only
/// if its `seq` is free, so two people acting at once never overwrite each other.
pub trait BreakLog: Send + Sync {
    /// The events of a break after event `after` (0: every event), by `seq` (empty for a
    /// break nobody worked).
    fn history(
        &self,
        break_id: &str,
        after: u64,
    ) -> impl Future<Output = Result<Vec<crate::breaks::BreakEvent>>> + Send;
    /// Stores `event` unless its break already has an event with its `seq`.
    fn append(
        &self,
        event: &crate::breaks::BreakEvent,
    ) -> impl Future<Output = Result<Appended>> + Send;
    /// Every event of the breaks of `bank` (`None`: of every bank), in no particular order.
    fn events(
        &self,
        bank: Option<&crate::ids::BankId>,
    ) -> impl Future<Output = Result<Vec<crate::breaks::BreakEvent>>> + Send;
}

/// The Rules table (design.md §7, [`crate::rules::table`]): PK `rule_type`, SK
/// `{id}#{version:06}`; a version is written only if its key is free, so two operators
/// changing one rule at once never overwrite each other, and no version is ever changed.
pub trait RulesTable: Send + Sync {
    /// Every version of every rule, in no particular order (empty: the table is not in use and
    /// the files of `config/` are the rules).
    fn versions(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::rules::table::RuleVersion>>> + Send;
    /// Stores `version` unless its rule already has a version with its number.
    fn append(
        &self,
        version: &crate::rules::table::RuleVersion,
    ) -> impl Future<Output = Result<Appended>> + Send;
}
