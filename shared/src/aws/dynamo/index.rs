//! The TransactionIndex port on DynamoDB: the item keys, the stream and settlement writes with
//! their merchant-day and user-hour updates, and the GSI queries (layout in the parent
//! module's documentation).

use super::*;

fn settlement_key(id: &str) -> String {
    format!("st#{id}")
}

fn merchant_day_key(merchant: &str, day: BusinessDate) -> String {
    format!("md#{merchant}#{day}")
}

fn user_hour_key(user: &str, hour: i64) -> String {
    format!("uh#{user}#{hour}")
}

/// How long a user-hour counter outlives its hour: a record later than that finds its hour's
/// count gone (VELOCITY counts from zero again).
pub const USER_HOUR_RETENTION_SECS: i64 = 30 * 86_400;

/// The table's TTL attribute (`template.yaml`, `TimeToLiveSpecification`).
pub const EXPIRES_AT: &str = "expires_at";

/// When DynamoDB may delete the counter of `hour` (hours since the epoch): epoch seconds.
pub fn user_hour_expiry(hour: i64) -> i64 {
    (hour + 1) * 3600 + USER_HOUR_RETENTION_SECS
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
        out.push(add_update(table, key, &adds, None)?);
    }
    for ((u, h), d) in &delta.user_hours {
        // The counter expires a while after its hour (TTL), set on its first write.
        out.push(add_update(
            table,
            user_hour_key(u, *h),
            &[("n".to_string(), d.to_string())],
            Some(user_hour_expiry(*h)),
        )?);
    }
    Ok(out)
}

/// `ADD`s of `adds` to the item `key`, and its TTL attribute set to `expires` when it has none.
fn add_update(
    table: &str,
    key: String,
    adds: &[(String, String)],
    expires: Option<i64>,
) -> Result<Update> {
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
    let mut expression = format!("ADD {}", parts.join(", "));
    if let Some(at) = expires {
        expression.push_str(" SET #ttl = if_not_exists(#ttl, :ttl)");
        b = b
            .expression_attribute_names("#ttl", EXPIRES_AT)
            .expression_attribute_values(":ttl", AttributeValue::N(at.to_string()));
    }
    b.update_expression(expression).build().map_err(build_err)
}

impl DynamoTransactionIndex {
    /// The TransactionIndex table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            query_page_size: None,
            backoff: Backoff::default(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
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
                break_actions: format!("{}-unused-break-actions", self.table),
                rules: format!("{}-unused-rules", self.table),
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
