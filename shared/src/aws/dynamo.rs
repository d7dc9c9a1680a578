//! The DynamoDB tables of design.md §7: Manifests, Runs and the TransactionIndex.
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
//! | `uh#{user_token}#{hour}` | `n`: the user's transactions in that UTC hour (VELOCITY); `expires_at`, the table's TTL attribute: 30 days after the hour |
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

mod breaks;
mod index;
mod rules;

pub use breaks::{BY_BANK, DynamoBreakLog};
pub use index::{EXPIRES_AT, USER_HOUR_RETENTION_SECS, user_hour_expiry};
pub use rules::DynamoRules;

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
    /// The TransactionIndex table.
    pub transaction_index: String,
    /// The Manifests table.
    pub manifests: String,
    /// The Runs table.
    pub runs: String,
    /// The BreakActions table.
    pub break_actions: String,
    /// The Rules table.
    pub rules: String,
}

impl TableNames {
    /// Names with a common prefix (tests, local servers).
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            transaction_index: format!("{prefix}-TransactionIndex"),
            manifests: format!("{prefix}-Manifests"),
            runs: format!("{prefix}-Runs"),
            break_actions: format!("{prefix}-BreakActions"),
            rules: format!("{prefix}-Rules"),
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

/// Creates the five tables with the keys and GSIs of `template.yaml` (tests and local
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
        client
            .create_table()
            .table_name(&names.break_actions)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr("break_id")?)
            .attribute_definitions(string_attr("bank_id")?)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("seq")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .map_err(build_err)?,
            )
            .key_schema(key_schema("break_id", KeyType::Hash)?)
            .key_schema(key_schema("seq", KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(BY_BANK)
                    .key_schema(key_schema("bank_id", KeyType::Hash)?)
                    .key_schema(key_schema("seq", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(build_err)?,
            ),
        client
            .create_table()
            .table_name(&names.rules)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr("rule_type")?)
            .attribute_definitions(string_attr("rule_id")?)
            .key_schema(key_schema("rule_type", KeyType::Hash)?)
            .key_schema(key_schema("rule_id", KeyType::Range)?),
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
    // The user-hour counters expire (template.yaml's TimeToLiveSpecification).
    client
        .update_time_to_live()
        .table_name(&names.transaction_index)
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name(EXPIRES_AT)
                .enabled(true)
                .build()
                .map_err(build_err)?,
        )
        .send()
        .await
        .map_err(|e| sdk_error("dynamodb", "UpdateTimeToLive", e))?;
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
    /// The Manifests table named `table`.
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
    /// The Runs table named `table`.
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

/// Name of the GSI keyed by user token and `txn_day`.
pub const BY_USER: &str = "by_user";
/// Name of the GSI keyed by merchant id and `txn_day`.
pub const BY_MERCHANT: &str = "by_merchant";
const KEY: &str = "transaction_id";
const VER: &str = "ver";
/// Attributes of the streaming state.
const STREAM_ATTRS: [&str; 3] = ["txn", "signal", "derived"];
/// The count attributes of a merchant-day item.
const COUNTS: [&str; 5] = MerchantDayTotals::COUNT_NAMES;

/// The TransactionIndex on DynamoDB (layout in the module documentation).
#[derive(Debug, Clone)]
pub struct DynamoTransactionIndex {
    client: Client,
    table: String,
    /// Items per GSI `Query` page (`None`: the service's 1 MB pages).
    pub query_page_size: Option<i32>,
    /// Retry delays for unprocessed items of batch reads and writes.
    pub backoff: Backoff,
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
