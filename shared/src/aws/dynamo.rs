//! The DynamoDB tables of DESIGN §7: Manifests, Runs and the TransactionIndex.
//!
//! Records are stored attribute by attribute from their JSON form ([`json_to_av`]): strings
//! as `S` (money and ratios are decimal strings, as in every other serialization of the
//! crate), integers as `N`, lists as `L`, objects as `M`. Nothing goes through `f64`.
//!
//! TransactionIndex layout (one table, `transaction_id` key; `docs/deviations.md`):
//!
//! | key | attributes |
//! |---|---|
//! | `{transaction_id}` | `ver` (the stream version, canonical JSON), `txn`, `signal`, `derived` (maps); `user_token`, `merchant_id`, `txn_day` (the GSI keys) when the item has a transaction |
//! | `st#{transaction_id}` | `settlement`: written by the daily close, beside the streaming state so the two writers never overwrite each other |
//! | `md#{merchant_id}#{txn_day}` | merchant-day totals: `transactions`, `declined`, `refunds`, `chargebacks`, `high_risk`, `vol_{CCY}`, `rvol_{CCY}` (exact `N`) |
//! | `uh#{user_token}#{hour}` | `n`: the user's transactions in that UTC hour (VELOCITY) |
//!
//! `#` is not allowed in ids, so the aggregate keys never meet a transaction id; aggregates
//! carry no GSI key attribute, so the GSIs hold transactions only. A streaming write is one
//! `TransactWriteItems`: the item, conditional on its stored version, and `ADD`s of the
//! change in its aggregates.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, PutRequest, ScalarAttributeType,
    TransactWriteItem, Update, WriteRequest,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{Backoff, drain_batches, sdk_error};
use crate::error::{Error, Result};
use crate::ids::{BusinessDate, MerchantId, SourceId, TransactionId};
use crate::index_item::{IndexItem, MerchantDayTotals, StreamVersion, aggregate_delta};
use crate::money::Currency;
use crate::ports::{
    ConditionalPut, FileRecord, Gsi, IndexPage, IndexQuery, ManifestTable, PutOutcome, RunRecord,
    RunsTable, SettlementUpdate, TransactionIndex, delivery_pk,
};

type Item = HashMap<String, AttributeValue>;

/// Most items in one `BatchWriteItem` and one `BatchGetItem`.
const BATCH_WRITE_MAX: usize = 25;
const BATCH_GET_MAX: usize = 100;

fn invalid(what: &str, reason: impl Into<String>) -> Error {
    Error::InvalidFile {
        file: format!("dynamodb item ({what})"),
        reason: reason.into(),
    }
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Invariant(format!("dynamodb request: {e}"))
}

/// A JSON value as an attribute value. Numbers keep their text (`N` is exact).
pub fn json_to_av(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(json_to_av).collect()),
        Value::Object(o) => {
            AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), json_to_av(v))).collect())
        }
    }
}

/// An attribute value as JSON (the inverse of [`json_to_av`]).
pub fn av_to_json(av: &AttributeValue) -> Result<Value> {
    Ok(match av {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => Value::Number(
            serde_json::from_str::<serde_json::Number>(n)
                .map_err(|_| invalid("number", format!("`{n}` is not a JSON number")))?,
        ),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::L(l) => Value::Array(l.iter().map(av_to_json).collect::<Result<_>>()?),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), av_to_json(v)?)))
                .collect::<Result<Map<String, Value>>>()?,
        ),
        _ => return Err(invalid("value", "unsupported attribute type")),
    })
}

fn to_item<T: serde::Serialize>(v: &T) -> Result<Item> {
    match serde_json::to_value(v)? {
        Value::Object(o) => Ok(o.iter().map(|(k, v)| (k.clone(), json_to_av(v))).collect()),
        _ => Err(Error::Invariant(
            "a table record must be a JSON object".into(),
        )),
    }
}

fn from_item<T: serde::de::DeserializeOwned>(item: &Item, skip: &[&str]) -> Result<T> {
    let mut o = Map::new();
    for (k, v) in item {
        if !skip.contains(&k.as_str()) {
            o.insert(k.clone(), av_to_json(v)?);
        }
    }
    Ok(serde_json::from_value(Value::Object(o))?)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    match item.get(key) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Result<Option<T>> {
    match item.get(key) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| invalid(key, format!("`{n}` is out of range"))),
        Some(_) => Err(invalid(key, "expected a number")),
        None => Ok(None),
    }
}

/// Table names from the environment (`RECON_*_TABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    pub transaction_index: String,
    pub manifests: String,
    pub runs: String,
}

impl TableNames {
    /// Names with a common prefix (tests, local servers).
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            transaction_index: format!("{prefix}-TransactionIndex"),
            manifests: format!("{prefix}-Manifests"),
            runs: format!("{prefix}-Runs"),
        }
    }
}

fn key_schema(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(build_err)
}

fn string_attr(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_err)
}

/// Creates the three tables with the keys and GSIs of `template.yaml` (tests and local
/// servers; on AWS the template owns them). An existing table is left as it is.
pub async fn create_tables(client: &Client, names: &TableNames) -> Result<()> {
    let gsi = |name: &str, pk: &str| -> Result<GlobalSecondaryIndex> {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key_schema(pk, KeyType::Hash)?)
            .key_schema(key_schema("txn_day", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build_err)
    };
    let requests = [
        client
            .create_table()
            .table_name(&names.transaction_index)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr("transaction_id")?)
            .attribute_definitions(string_attr("user_token")?)
            .attribute_definitions(string_attr("merchant_id")?)
            .attribute_definitions(string_attr("txn_day")?)
            .key_schema(key_schema("transaction_id", KeyType::Hash)?)
            .global_secondary_indexes(gsi(BY_USER, "user_token")?)
            .global_secondary_indexes(gsi(BY_MERCHANT, "merchant_id")?),
        client
            .create_table()
            .table_name(&names.manifests)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr("pk")?)
            .attribute_definitions(string_attr("file")?)
            .key_schema(key_schema("pk", KeyType::Hash)?)
            .key_schema(key_schema("file", KeyType::Range)?),
        client
            .create_table()
            .table_name(&names.runs)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr("business_date")?)
            .attribute_definitions(string_attr("sk")?)
            .key_schema(key_schema("business_date", KeyType::Hash)?)
            .key_schema(key_schema("sk", KeyType::Range)?),
    ];
    for req in requests {
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(sdk_error("dynamodb", "CreateTable", e)),
        }
    }
    Ok(())
}

/// Every item of a key condition, page after page.
async fn query_all(client: &Client, table: &str, pk_name: &str, pk: &str) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "Query", e))?;
        out.extend(page.items().iter().cloned());
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(out),
        }
    }
}

/// Puts items together, 100 at a time (`TransactWriteItems`).
async fn transact_puts(client: &Client, table: &str, items: Vec<Item>) -> Result<()> {
    for chunk in items.chunks(100) {
        let ops = chunk
            .iter()
            .map(|item| {
                Ok(TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(table)
                            .set_item(Some(item.clone()))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        client
            .transact_write_items()
            .set_transact_items(Some(ops))
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "TransactWriteItems", e))?;
    }
    Ok(())
}

/// The Manifests table: `pk` = `source_id#business_date`, `file`.
#[derive(Debug, Clone)]
pub struct DynamoManifests {
    client: Client,
    table: String,
}

impl DynamoManifests {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl ManifestTable for DynamoManifests {
    async fn delivery(&self, source: &SourceId, date: BusinessDate) -> Result<Vec<FileRecord>> {
        let items = query_all(&self.client, &self.table, "pk", &delivery_pk(source, date)).await?;
        let mut rows = items
            .iter()
            .map(|i| from_item::<FileRecord>(i, &["pk"]))
            .collect::<Result<Vec<_>>>()?;
        rows.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(rows)
    }

    async fn put(&self, records: &[FileRecord]) -> Result<()> {
        // Last one wins for a row named twice, as in the local table.
        let mut by_key: BTreeMap<(String, String), Item> = BTreeMap::new();
        for r in records {
            let mut item = to_item(r)?;
            item.insert("pk".into(), s(r.pk()));
            by_key.insert((r.pk(), r.file.clone()), item);
        }
        transact_puts(&self.client, &self.table, by_key.into_values().collect()).await
    }
}

/// The Runs table: `business_date`, `sk` = `run_id#partition`.
#[derive(Debug, Clone)]
pub struct DynamoRuns {
    client: Client,
    table: String,
}

impl DynamoRuns {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl RunsTable for DynamoRuns {
    async fn put(&self, record: &RunRecord) -> Result<()> {
        let mut item = to_item(record)?;
        item.insert("sk".into(), s(record.sort_key()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "PutItem", e))?;
        Ok(())
    }

    async fn runs(&self, date: BusinessDate) -> Result<Vec<RunRecord>> {
        let items = query_all(
            &self.client,
            &self.table,
            "business_date",
            &date.to_string(),
        )
        .await?;
        let mut rows = items
            .iter()
            .map(|i| from_item::<RunRecord>(i, &["sk"]))
            .collect::<Result<Vec<_>>>()?;
        rows.sort_by_key(|r| r.sort_key());
        Ok(rows)
    }
}

pub const BY_USER: &str = "by_user";
pub const BY_MERCHANT: &str = "by_merchant";
const KEY: &str = "transaction_id";
const VER: &str = "ver";
/// Attributes of the streaming state.
const STREAM_ATTRS: [&str; 3] = ["txn", "signal", "derived"];
/// The count attributes of a merchant-day item.
const COUNTS: [&str; 5] = MerchantDayTotals::COUNT_NAMES;

fn settlement_key(id: &str) -> String {
    format!("st#{id}")
}

fn merchant_day_key(merchant: &str, day: BusinessDate) -> String {
    format!("md#{merchant}#{day}")
}

fn user_hour_key(user: &str, hour: i64) -> String {
    format!("uh#{user}#{hour}")
}

fn key_of(id: String) -> Item {
    HashMap::from([(KEY.to_string(), s(id))])
}

fn version_text(v: &StreamVersion) -> Result<String> {
    Ok(serde_json::to_string(v)?)
}

/// The item of a streaming state (its settlement is stored apart).
fn stream_item(item: &IndexItem) -> Result<Item> {
    let mut out = key_of(item.transaction_id.to_string());
    out.insert(VER.into(), s(version_text(&item.version())?));
    if let Value::Object(o) = serde_json::to_value(item)? {
        for name in STREAM_ATTRS {
            if let Some(v) = o.get(name) {
                out.insert(name.into(), json_to_av(v));
            }
        }
    }
    if let Some(t) = &item.txn {
        out.insert("user_token".into(), s(t.user_token.clone()));
        out.insert("merchant_id".into(), s(t.merchant_id.to_string()));
        out.insert("txn_day".into(), s(t.txn_day.to_string()));
    }
    Ok(out)
}

/// An index item from its streaming item and settlement item (either may be missing).
fn index_item(id: &str, stream: Option<&Item>, settlement: Option<&Item>) -> Result<IndexItem> {
    let mut o = Map::new();
    o.insert(KEY.into(), Value::String(id.to_string()));
    if let Some(st) = stream {
        for name in STREAM_ATTRS {
            if let Some(v) = st.get(name) {
                o.insert(name.into(), av_to_json(v)?);
            }
        }
    }
    if let Some(v) = settlement.and_then(|i| i.get("settlement")) {
        o.insert("settlement".into(), av_to_json(v)?);
    }
    Ok(serde_json::from_value(Value::Object(o))?)
}

/// The `ADD` updates that apply the core's change of the aggregates ([`aggregate_delta`]).
fn aggregate_updates(table: &str, old: Option<&IndexItem>, new: &IndexItem) -> Result<Vec<Update>> {
    let delta = aggregate_delta(old, new)?;
    let mut out = Vec::new();
    for md in &delta.merchant_days {
        let mut adds: Vec<(String, String)> = COUNTS
            .iter()
            .zip(md.counts)
            .filter(|(_, d)| *d != 0)
            .map(|(n, d)| (n.to_string(), d.to_string()))
            .collect();
        for (prefix, map) in [("vol_", &md.volume), ("rvol_", &md.refund_volume)] {
            adds.extend(
                map.iter()
                    .map(|(c, d)| (format!("{prefix}{}", c.code()), d.to_string())),
            );
        }
        let key = merchant_day_key(md.merchant_id.as_str(), md.txn_day);
        out.push(add_update(table, key, &adds)?);
    }
    for ((u, h), d) in &delta.user_hours {
        out.push(add_update(
            table,
            user_hour_key(u, *h),
            &[("n".to_string(), d.to_string())],
        )?);
    }
    Ok(out)
}

fn add_update(table: &str, key: String, adds: &[(String, String)]) -> Result<Update> {
    let mut b = Update::builder()
        .table_name(table)
        .set_key(Some(key_of(key)));
    let mut parts = Vec::new();
    for (i, (name, value)) in adds.iter().enumerate() {
        parts.push(format!("#a{i} :a{i}"));
        b = b
            .expression_attribute_names(format!("#a{i}"), name)
            .expression_attribute_values(format!(":a{i}"), AttributeValue::N(value.clone()));
    }
    b.update_expression(format!("ADD {}", parts.join(", ")))
        .build()
        .map_err(build_err)
}

/// The TransactionIndex on DynamoDB (layout in the module documentation).
#[derive(Debug, Clone)]
pub struct DynamoTransactionIndex {
    client: Client,
    table: String,
    /// Items per GSI `Query` page (`None`: the service's 1 MB pages).
    pub query_page_size: Option<i32>,
    pub backoff: Backoff,
}

impl DynamoTransactionIndex {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            query_page_size: None,
            backoff: Backoff::default(),
        }
    }

    /// Items by key (strongly consistent), unprocessed keys retried; missing keys left out.
    async fn batch_get(&self, keys: Vec<String>) -> Result<HashMap<String, Item>> {
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<Item> = keys
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .map(key_of)
            .collect();
        let table = self.table.clone();
        let items = drain_batches(keys, BATCH_GET_MAX, self.backoff, |batch: Vec<Item>| {
            let client = self.client.clone();
            let table = table.clone();
            async move {
                let req = KeysAndAttributes::builder()
                    .set_keys(Some(batch))
                    .consistent_read(true)
                    .build()
                    .map_err(build_err)?;
                let out = client
                    .batch_get_item()
                    .request_items(&table, req)
                    .send()
                    .await
                    .map_err(|e| sdk_error("dynamodb", "BatchGetItem", e))?;
                let found = out
                    .responses()
                    .and_then(|r| r.get(&table))
                    .cloned()
                    .unwrap_or_default();
                let unprocessed = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                Ok((found, unprocessed))
            }
        })
        .await?;
        Ok(items
            .into_iter()
            .filter_map(|i| get_s(&i, KEY).map(str::to_string).map(|k| (k, i)))
            .collect())
    }

    /// Writes items with `BatchWriteItem`, 25 at a time, retrying unprocessed items.
    async fn batch_put(&self, items: Vec<Item>) -> Result<()> {
        let requests = items
            .into_iter()
            .map(|item| {
                Ok(WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build())
            })
            .collect::<Result<Vec<_>>>()?;
        let table = self.table.clone();
        drain_batches(requests, BATCH_WRITE_MAX, self.backoff, |batch| {
            let client = self.client.clone();
            let table = table.clone();
            async move {
                let out = client
                    .batch_write_item()
                    .request_items(&table, batch)
                    .send()
                    .await
                    .map_err(|e| sdk_error("dynamodb", "BatchWriteItem", e))?;
                let unprocessed = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&table))
                    .cloned()
                    .unwrap_or_default();
                Ok((Vec::<()>::new(), unprocessed))
            }
        })
        .await?;
        Ok(())
    }

    /// One conditional write: the item and its aggregates in one transaction.
    async fn write_one(&self, old: Option<&IndexItem>, new: &IndexItem) -> Result<PutOutcome> {
        let expected = old.map(IndexItem::version).unwrap_or_default();
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(stream_item(new)?))
            .expression_attribute_names("#v", VER)
            .expression_attribute_values(":v", s(version_text(&expected)?));
        put = if old.is_some() {
            put.condition_expression("#v = :v")
        } else {
            // Nothing streamed yet: no item, or one whose version is still the default.
            put.condition_expression("attribute_not_exists(#v) OR #v = :v")
        };
        let mut ops = vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(build_err)?)
                .build(),
        ];
        for u in aggregate_updates(&self.table, old, new)? {
            ops.push(TransactWriteItem::builder().update(u).build());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(ops))
            .send()
            .await
        {
            Ok(_) => Ok(PutOutcome::Applied),
            Err(e) => {
                let canceled = e.as_service_error().and_then(|s| match s {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                    _ => None,
                });
                let conflict = canceled.is_some_and(|c| {
                    c.cancellation_reasons().iter().any(|r| {
                        matches!(
                            r.code(),
                            Some("ConditionalCheckFailed") | Some("TransactionConflict")
                        )
                    })
                });
                if conflict {
                    Ok(PutOutcome::Conflict)
                } else {
                    Err(sdk_error("dynamodb", "TransactWriteItems", e))
                }
            }
        }
    }

    /// Creates the table (tests, local servers).
    pub async fn create(&self) -> Result<()> {
        create_tables(
            &self.client,
            &TableNames {
                transaction_index: self.table.clone(),
                manifests: format!("{}-unused-manifests", self.table),
                runs: format!("{}-unused-runs", self.table),
            },
        )
        .await
    }
}

fn gsi_names(gsi: Gsi) -> (&'static str, &'static str) {
    match gsi {
        Gsi::ByUser => (BY_USER, "user_token"),
        Gsi::ByMerchant => (BY_MERCHANT, "merchant_id"),
    }
}

fn row_of(item: &Item) -> Result<(BusinessDate, String)> {
    let day = get_s(item, "txn_day").ok_or_else(|| invalid("txn_day", "missing"))?;
    let id = get_s(item, KEY).ok_or_else(|| invalid(KEY, "missing"))?;
    Ok((BusinessDate::parse(day)?, id.to_string()))
}

impl TransactionIndex for DynamoTransactionIndex {
    async fn get_many(&self, ids: &[TransactionId]) -> Result<Vec<IndexItem>> {
        let mut keys = Vec::with_capacity(ids.len() * 2);
        for id in ids {
            keys.push(id.to_string());
            keys.push(settlement_key(id.as_str()));
        }
        let found = self.batch_get(keys).await?;
        ids.iter()
            .filter_map(|id| {
                let stream = found.get(id.as_str());
                let st = found.get(&settlement_key(id.as_str()));
                (stream.is_some() || st.is_some()).then(|| index_item(id.as_str(), stream, st))
            })
            .collect()
    }

    async fn put_many(&self, writes: Vec<ConditionalPut>) -> Result<Vec<PutOutcome>> {
        let found = self
            .batch_get(
                writes
                    .iter()
                    .map(|w| w.item.transaction_id.to_string())
                    .collect(),
            )
            .await?;
        // The state each write is checked against, updated as writes apply.
        let mut current: HashMap<String, Option<IndexItem>> = HashMap::new();
        for (k, item) in &found {
            current.insert(k.clone(), Some(index_item(k, Some(item), None)?));
        }
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            let id = w.item.transaction_id.to_string();
            let old = current.get(&id).cloned().flatten();
            let stored = old.as_ref().map(IndexItem::version).unwrap_or_default();
            if stored != w.expected || !w.item.version().covers(&stored) {
                out.push(PutOutcome::Conflict);
                continue;
            }
            let mut item = w.item;
            item.settlement = None;
            let outcome = self.write_one(old.as_ref(), &item).await?;
            if outcome == PutOutcome::Applied {
                current.insert(id, Some(item));
            } else {
                current.remove(&id);
            }
            out.push(outcome);
        }
        Ok(out)
    }

    async fn query(&self, q: &IndexQuery) -> Result<IndexPage> {
        let after = q
            .cursor
            .as_deref()
            .map(|c| crate::local_index::cursor_position(c, q.gsi, &q.key))
            .transpose()?;
        let mut page = IndexPage {
            items: Vec::new(),
            next: None,
        };
        if q.limit == 0 {
            return Ok(page);
        }
        let (index, pk) = gsi_names(q.gsi);
        let from = match (&after, q.from) {
            (Some((d, _)), Some(f)) => Some((*d).max(f)),
            (Some((d, _)), None) => Some(*d),
            (None, f) => f,
        };
        if let (Some(f), Some(t)) = (from, q.to)
            && f > t
        {
            return Ok(page);
        }
        let cond = match (from, q.to) {
            (Some(_), Some(_)) => "#pk = :pk AND #d BETWEEN :f AND :t",
            (Some(_), None) => "#pk = :pk AND #d >= :f",
            (None, Some(_)) => "#pk = :pk AND #d <= :t",
            (None, None) => "#pk = :pk",
        };
        // Rows come sorted by day only: read whole days until more than a page is complete.
        let mut rows: Vec<((BusinessDate, String), Item)> = Vec::new();
        let mut start: Option<Item> = None;
        let mut exhausted = false;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(cond)
                .expression_attribute_names("#pk", pk)
                .expression_attribute_values(":pk", s(q.key.clone()))
                .set_exclusive_start_key(start.take())
                .set_limit(self.query_page_size);
            if from.is_some() || q.to.is_some() {
                req = req.expression_attribute_names("#d", "txn_day");
            }
            if let Some(f) = from {
                req = req.expression_attribute_values(":f", s(f.to_string()));
            }
            if let Some(t) = q.to {
                req = req.expression_attribute_values(":t", s(t.to_string()));
            }
            let out = req
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb", "Query", e))?;
            for item in out.items() {
                let row = row_of(item)?;
                if after
                    .as_ref()
                    .is_some_and(|(d, id)| (row.0, row.1.as_str()) <= (*d, id.as_str()))
                {
                    continue;
                }
                rows.push((row, item.clone()));
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => {
                    exhausted = true;
                    break;
                }
            }
            let last_day = rows.iter().map(|r| r.0.0).max();
            let complete = rows.iter().filter(|r| Some(r.0.0) < last_day).count();
            if complete > q.limit {
                break;
            }
        }
        if !exhausted && let Some(last_day) = rows.iter().map(|r| r.0.0).max() {
            rows.retain(|r| r.0.0 < last_day);
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let more = rows.len() > q.limit;
        rows.truncate(q.limit);
        if more && let Some(((d, id), _)) = rows.last() {
            page.next = Some(crate::local_index::cursor_for(q.gsi, &q.key, *d, id));
        }
        let settlements = self
            .batch_get(rows.iter().map(|r| settlement_key(&r.0.1)).collect())
            .await?;
        for ((_, id), item) in &rows {
            page.items.push(index_item(
                id,
                Some(item),
                settlements.get(&settlement_key(id)),
            )?);
        }
        Ok(page)
    }

    async fn write_settlements(&self, updates: &[SettlementUpdate]) -> Result<u64> {
        let mut by_id: BTreeMap<String, Item> = BTreeMap::new();
        for u in updates {
            let key = settlement_key(u.transaction_id.as_str());
            let mut item = key_of(key.clone());
            item.insert(
                "settlement".into(),
                json_to_av(&serde_json::to_value(&u.settlement)?),
            );
            by_id.insert(key, item);
        }
        self.batch_put(by_id.into_values().collect()).await?;
        Ok(updates.len() as u64)
    }

    async fn merchant_day(
        &self,
        merchant: &MerchantId,
        day: BusinessDate,
    ) -> Result<Option<MerchantDayTotals>> {
        let key = merchant_day_key(merchant.as_str(), day);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb", "GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let mut t = MerchantDayTotals::new(merchant.clone(), day);
        for (name, slot) in COUNTS.iter().zip(t.counts_mut()) {
            *slot = get_n::<u64>(item, name)?.unwrap_or(0);
        }
        if t.is_empty() {
            return Ok(None);
        }
        for (name, value) in item {
            let (map, code) = if let Some(c) = name.strip_prefix("rvol_") {
                (&mut t.refund_volume, c)
            } else if let Some(c) = name.strip_prefix("vol_") {
                (&mut t.volume, c)
            } else {
                continue;
            };
            let AttributeValue::N(n) = value else {
                return Err(invalid(name, "expected a number"));
            };
            let amount: Decimal = n
                .parse()
                .or_else(|_| Decimal::from_scientific(n))
                .map_err(|_| invalid(name, format!("`{n}` is not a decimal")))?;
            if !amount.is_zero() {
                let ccy = Currency::new(code)?;
                map.insert(ccy, ccy.round(amount));
            }
        }
        Ok(Some(t))
    }

    async fn user_hour_counts(&self, keys: &[(String, i64)]) -> Result<Vec<u64>> {
        let names: Vec<String> = keys.iter().map(|(u, h)| user_hour_key(u, *h)).collect();
        let found = self.batch_get(names.clone()).await?;
        names
            .iter()
            .map(|k| match found.get(k) {
                Some(item) => Ok(get_n::<u64>(item, "n")?.unwrap_or(0)),
                None => Ok(0),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_attribute_values_round_trip_exactly() -> Result<()> {
        let v = json!({"a": "12.3400", "n": 18446744073709551615u64, "neg": -3,
                       "l": [1, "x", null, true], "m": {"k": {"deep": "v"}}});
        let av = json_to_av(&v);
        assert!(
            matches!(&av, AttributeValue::M(m) if matches!(m.get("a"), Some(AttributeValue::S(s)) if s == "12.3400"))
        );
        assert_eq!(av_to_json(&av)?, v);
        Ok(())
    }
}
