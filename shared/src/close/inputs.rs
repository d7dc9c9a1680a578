//! Reading what a close needs from the bucket: dimensions, rules, FX, curated partitions.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::columnar::{Columnar, read_parquet};
use crate::config_files::{
    ConfigProblem, JsonLine, Scope, bank_field, get_opt, jsonl_lines, problems_error,
};
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate, MerchantId};
use crate::ingest::fx_key;
use crate::money::{Currency, FxTable};
use crate::ports::ObjectStore;
use crate::records::{FeeRule, Merchant};
use crate::rules::{Tolerances, check_fee_rules};
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
    /// Hash of all of the above, part of every partition fingerprint.
    pub fingerprint: String,
    /// What is wrong with the configuration; each problem fails the partitions it affects
    /// (and only those), naming the file, the line and what to do.
    pub problems: Vec<ConfigProblem>,
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

    /// Fails when a configuration problem affects the partition of `bank` whose statement
    /// objects are `statement_keys`.
    pub fn check<'k>(
        &self,
        bank: &BankId,
        statement_keys: impl Iterator<Item = &'k str> + Clone,
    ) -> Result<()> {
        match problems_error(
            self.problems
                .iter()
                .filter(|p| p.affects(bank, statement_keys.clone())),
        ) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The merchants of `config/merchants.jsonl`, by id; a bad line, or a merchant given twice,
/// is a problem of the acquiring bank the line names (every bank when it names none).
fn merchants(
    bytes: Option<&[u8]>,
    problems: &mut Vec<ConfigProblem>,
) -> HashMap<MerchantId, Merchant> {
    const FIX: &str = "correct the line of the merchant file (one JSON object a line: merchant_id, merchant_name, category, risk_level, onboarding_date, country, acquirer_bank_id)";
    let scope = |b: Option<BankId>| b.map_or(Scope::All, Scope::Bank);
    let Some(bytes) = bytes else {
        problems.push(ConfigProblem::new(
            MERCHANTS_KEY,
            None,
            "the merchant file is missing: a close needs each merchant's acquiring bank and category",
            "deliver the merchant file",
            Scope::All,
        ));
        return HashMap::new();
    };
    let mut out: HashMap<MerchantId, (usize, Merchant)> = HashMap::new();
    for l in jsonl_lines::<Merchant>(bytes) {
        match l {
            JsonLine::Ok { line, value } => {
                if let Some((first, m)) = out.get(&value.merchant_id) {
                    let mut banks =
                        vec![m.acquirer_bank_id.clone(), value.acquirer_bank_id.clone()];
                    banks.dedup();
                    for b in banks {
                        problems.push(ConfigProblem::new(
                            MERCHANTS_KEY,
                            Some(line),
                            format!(
                                "merchant `{}` is given again (first on line {first})",
                                value.merchant_id
                            ),
                            "keep one line per merchant",
                            scope(b),
                        ));
                    }
                    continue;
                }
                out.insert(value.merchant_id.clone(), (line, value));
            }
            JsonLine::Bad { line, reason, raw } => problems.push(ConfigProblem::new(
                MERCHANTS_KEY,
                Some(line),
                reason,
                FIX,
                scope(bank_field(raw.as_ref(), "acquirer_bank_id")),
            )),
        }
    }
    out.into_iter().map(|(k, (_, m))| (k, m)).collect()
}

/// The fee rules of `config/rules/fee_rules.jsonl`. The file is required: without it every
/// expected fee would be zero and every fee a variance (an empty file says no bank charges).
fn fee_rules(bytes: Option<&[u8]>, problems: &mut Vec<ConfigProblem>) -> Vec<FeeRule> {
    let Some(bytes) = bytes else {
        problems.push(ConfigProblem::new(
            FEE_RULES_KEY,
            None,
            "the fee rules file is missing: expected fees cannot be computed",
            "deliver the fee rules (one JSON object a line; an empty file if no bank charges fees) and start the close again",
            Scope::All,
        ));
        return Vec::new();
    };
    let mut rules = Vec::new();
    for l in jsonl_lines::<FeeRule>(bytes) {
        match l {
            JsonLine::Ok { line, value } => rules.push((line, value)),
            JsonLine::Bad { line, reason, raw } => problems.push(ConfigProblem::new(
                FEE_RULES_KEY,
                Some(line),
                reason,
                "correct the line (rule_id, bank_id, merchant_category, percent and fixed as decimal strings, currency, effective_from, effective_to)",
                bank_field(raw.as_ref(), "bank_id").map_or(Scope::All, Scope::Bank),
            )),
        }
    }
    problems.extend(check_fee_rules(FEE_RULES_KEY, &rules));
    rules.into_iter().map(|(_, r)| r).collect()
}

/// The tolerances of `config/rules/tolerances.json`, the defaults when there is none.
fn tolerances(bytes: Option<&[u8]>, problems: &mut Vec<ConfigProblem>) -> Tolerances {
    const FIX: &str = "correct the tolerances file (or delete it for the defaults: amount and fee 1 minor unit, 3 days, groups of 6 among 24)";
    let Some(bytes) = bytes else {
        return Tolerances::default();
    };
    match serde_json::from_slice::<Tolerances>(bytes) {
        Ok(t) => {
            let out = t.out_of_range();
            if !out.is_empty() {
                problems.push(ConfigProblem::new(
                    TOLERANCES_KEY,
                    None,
                    out.join(", "),
                    FIX,
                    Scope::All,
                ));
            }
            t
        }
        Err(e) => {
            problems.push(ConfigProblem::new(
                TOLERANCES_KEY,
                None,
                e.to_string(),
                FIX,
                Scope::All,
            ));
            Tolerances::default()
        }
    }
}

/// A source mapping that cannot be used fails the partitions of its bank; when even its bank
/// cannot be read, those with statements from that source. A ledger mapping is no concern
/// of a close (its deliveries fail at ingestion).
fn mapping_problem(key: &str, bytes: &[u8], e: Error) -> Option<ConfigProblem> {
    let raw: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    if raw
        .as_ref()
        .and_then(|r| r.get("kind"))
        .and_then(|k| k.as_str())
        == Some("transactions")
    {
        return None;
    }
    let source = key
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".json"))
        .unwrap_or(key);
    let reason = match e {
        Error::InvalidConfig { reason, .. } => reason,
        e => e.to_string(),
    };
    Some(ConfigProblem::new(
        key,
        None,
        reason,
        // `from_file` says what to do.
        "",
        bank_field(raw.as_ref(), "bank_id")
            .map_or_else(|| Scope::Source(source.to_string()), Scope::Bank),
    ))
}

pub async fn load_dimensions<S: ObjectStore>(store: &S) -> Result<Dimensions> {
    let mut h = Sha256::new();
    h.update(ENGINE_VERSION.as_bytes());
    let mut problems = Vec::new();
    let merchants_bytes = get_opt(store, MERCHANTS_KEY).await?;
    let fee_bytes = get_opt(store, FEE_RULES_KEY).await?;
    let tolerance_bytes = get_opt(store, TOLERANCES_KEY).await?;
    for b in [&merchants_bytes, &fee_bytes, &tolerance_bytes]
        .into_iter()
        .flatten()
    {
        h.update(b);
    }
    let merchants = merchants(merchants_bytes.as_deref(), &mut problems);
    let fee_rules = fee_rules(fee_bytes.as_deref(), &mut problems);
    let tolerances = tolerances(tolerance_bytes.as_deref(), &mut problems);
    let mut banks = BTreeMap::new();
    for obj in store.list("config/sources/").await? {
        let b = store.get(&obj.key).await?;
        h.update(obj.key.as_bytes());
        h.update(&b);
        match SourceMapping::from_file(&obj.key, &b) {
            Ok(m) => {
                if let (SourceKind::Statement, Some(bank)) = (m.kind, m.bank_id) {
                    banks.insert(bank, m.settlement_currency.or(m.default_currency));
                }
            }
            Err(e) => problems.extend(mapping_problem(&obj.key, &b, e)),
        }
    }
    for p in &problems {
        tracing::warn!(file = %p.file, scope = ?p.scope, "invalid config: {p}");
    }
    Ok(Dimensions {
        merchants,
        fee_rules,
        tolerances,
        banks,
        fingerprint: hex::encode(h.finalize()),
        problems,
    })
}

/// A day's FX table as delivered.
#[derive(Debug, Default)]
pub struct DayFx {
    /// The table; empty when none was delivered (same-currency days) or it cannot be used.
    pub table: FxTable,
    /// The delivered bytes (part of the fingerprint, also when they are bad).
    pub bytes: Option<Bytes>,
    /// Why the delivered table cannot be used (its key, and the reason naming the line):
    /// only what needs a conversion fails with it.
    pub problem: Option<(String, String)>,
}

impl DayFx {
    /// The table, for something that needs a conversion: fails when it cannot be used.
    pub fn needed(&self) -> Result<&FxTable> {
        match &self.problem {
            Some((name, reason)) => Err(Error::InvalidConfig {
                name: name.clone(),
                reason: format!(
                    "{reason} (needed for amounts in another currency than the settlement currency)"
                ),
            }),
            None => Ok(&self.table),
        }
    }
}

/// The day's FX table (`config/fx/{date}.csv`).
pub async fn load_fx<S: ObjectStore>(store: &S, date: BusinessDate) -> Result<DayFx> {
    let key = fx_key(date);
    let Some(bytes) = get_opt(store, &key).await? else {
        return Ok(DayFx::default());
    };
    Ok(match FxTable::from_file(&key, &bytes) {
        Ok(table) => DayFx {
            table,
            bytes: Some(bytes),
            problem: None,
        },
        Err(e) => {
            tracing::warn!(file = %key, "invalid FX table: {e}");
            let reason = match e {
                Error::InvalidConfig { reason, .. } => reason,
                e => e.to_string(),
            };
            DayFx {
                table: FxTable::default(),
                bytes: Some(bytes),
                problem: Some((key, reason)),
            }
        }
    })
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
