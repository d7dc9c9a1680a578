//! Reading what a close needs from the bucket: dimensions, rules, FX, curated partitions.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::columnar::{Columnar, read_parquet};
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate, MerchantId};
use crate::ingest::fx_key;
use crate::money::{Currency, FxTable};
use crate::ports::ObjectStore;
use crate::records::{FeeRule, Merchant};
use crate::rules::Tolerances;
use crate::source::{SourceKind, SourceMapping};

/// Changes whenever matching rules in code change, so every partition is reconciled again.
pub const ENGINE_VERSION: &str = "recon-engine/1";

pub const MERCHANTS_KEY: &str = "config/merchants.jsonl";
pub const FEE_RULES_KEY: &str = "config/rules/fee_rules.jsonl";
pub const TOLERANCES_KEY: &str = "config/rules/tolerances.json";

pub fn statements_prefix(date: BusinessDate, bank: &BankId) -> String {
    format!("curated/statements/business_date={date}/bank_id={bank}/")
}

pub fn transactions_prefix(date: BusinessDate) -> String {
    format!("curated/transactions/business_date={date}/")
}

/// The curated transactions objects of one bank and date (see
/// [`crate::ingest::transactions_key`]).
pub async fn bank_transaction_objects<S: ObjectStore>(
    store: &S,
    date: BusinessDate,
    bank: &BankId,
) -> Result<Vec<(String, Bytes)>> {
    let mut out = Vec::new();
    for obj in store.list(&transactions_prefix(date)).await? {
        if crate::ingest::transactions_bank(&obj.key) == Some(bank.as_str()) {
            out.push((obj.key.clone(), store.get(&obj.key).await?));
        }
    }
    Ok(out)
}

/// Reference data of a close.
#[derive(Debug, Clone, Default)]
pub struct Dimensions {
    pub merchants: HashMap<MerchantId, Merchant>,
    pub fee_rules: Vec<FeeRule>,
    pub tolerances: Tolerances,
    /// Statement banks and the currency they settle in (from their source mappings).
    pub banks: BTreeMap<BankId, Option<Currency>>,
    /// The sources that deliver each statement bank's statements.
    pub statement_sources: BTreeMap<BankId, Vec<crate::ids::SourceId>>,
    /// Hash of all of the above, part of every partition fingerprint.
    pub fingerprint: String,
}

impl Dimensions {
    pub fn categories(&self) -> HashMap<MerchantId, String> {
        self.merchants
            .iter()
            .map(|(k, m)| (k.clone(), m.category.clone()))
            .collect()
    }

    /// The acquiring bank of a merchant.
    pub fn acquirer(&self, merchant: &str) -> Option<&BankId> {
        self.merchants
            .get(merchant)
            .and_then(|m| m.acquirer_bank_id.as_ref())
    }
}

async fn get_opt<S: ObjectStore>(store: &S, key: &str) -> Result<Option<Bytes>> {
    match store.get(key).await {
        Ok(b) => Ok(Some(b)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn jsonl<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<Vec<T>> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_slice(l).map_err(|e| Error::InvalidConfig {
                name: key.into(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

pub async fn load_dimensions<S: ObjectStore>(store: &S) -> Result<Dimensions> {
    let mut h = Sha256::new();
    h.update(ENGINE_VERSION.as_bytes());
    let merchants_bytes = store.get(MERCHANTS_KEY).await?;
    h.update(&merchants_bytes);
    let merchants: Vec<Merchant> = jsonl(MERCHANTS_KEY, &merchants_bytes)?;
    let fee_rules = match get_opt(store, FEE_RULES_KEY).await? {
        Some(b) => {
            h.update(&b);
            jsonl(FEE_RULES_KEY, &b)?
        }
        None => Vec::new(),
    };
    let tolerances = match get_opt(store, TOLERANCES_KEY).await? {
        Some(b) => {
            h.update(&b);
            serde_json::from_slice(&b).map_err(|e| Error::InvalidConfig {
                name: TOLERANCES_KEY.into(),
                reason: e.to_string(),
            })?
        }
        None => Tolerances::default(),
    };
    let mut banks = BTreeMap::new();
    let mut statement_sources = BTreeMap::new();
    for obj in store.list("config/sources/").await? {
        let b = store.get(&obj.key).await?;
        h.update(obj.key.as_bytes());
        h.update(&b);
        let m = SourceMapping::from_json(&b)?;
        if let (SourceKind::Statement, Some(bank)) = (m.kind, m.bank_id) {
            statement_sources
                .entry(bank.clone())
                .or_insert_with(Vec::new)
                .push(m.source_id);
            banks.insert(bank, m.settlement_currency.or(m.default_currency));
        }
    }
    Ok(Dimensions {
        merchants: merchants
            .into_iter()
            .map(|m| (m.merchant_id.clone(), m))
            .collect(),
        fee_rules,
        tolerances,
        banks,
        statement_sources,
        fingerprint: hex::encode(h.finalize()),
    })
}

/// The day's FX table; an empty table when none was delivered (same-currency days).
pub async fn load_fx<S: ObjectStore>(
    store: &S,
    date: BusinessDate,
) -> Result<(FxTable, Option<Bytes>)> {
    match get_opt(store, &fx_key(date)).await? {
        Some(b) => {
            let text = std::str::from_utf8(&b).map_err(|_| Error::InvalidConfig {
                name: fx_key(date),
                reason: "not UTF-8".into(),
            })?;
            Ok((FxTable::from_csv(text)?, Some(b)))
        }
        None => Ok((FxTable::default(), None)),
    }
}

/// Every Parquet object under `prefix`, with its key and bytes, sorted by key.
pub async fn objects<S: ObjectStore>(store: &S, prefix: &str) -> Result<Vec<(String, Bytes)>> {
    let mut out = Vec::new();
    for obj in store.list(prefix).await? {
        if obj.key.ends_with(".parquet") {
            out.push((obj.key.clone(), store.get(&obj.key).await?));
        }
    }
    Ok(out)
}

/// Decodes every Parquet object under `prefix`.
pub async fn read_all<S: ObjectStore, T: Columnar>(store: &S, prefix: &str) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for (_, b) in objects(store, prefix).await? {
        rows.extend(read_parquet::<T>(b)?);
    }
    Ok(rows)
}

/// Business dates that have curated statements or transactions, within `lookback` days
/// before `date` (inclusive), newest first.
pub async fn dates_with_data<S: ObjectStore>(
    store: &S,
    date: BusinessDate,
    lookback: u32,
) -> Result<Vec<BusinessDate>> {
    let mut out = Vec::new();
    let mut d = date;
    for i in 0..=lookback {
        if i > 0 {
            d = d.pred()?;
        }
        let s = store
            .list(&format!("curated/statements/business_date={d}/"))
            .await?;
        let t = store.list(&transactions_prefix(d)).await?;
        if !s.is_empty() || !t.is_empty() || d == date {
            out.push(d);
        }
    }
    Ok(out)
}
