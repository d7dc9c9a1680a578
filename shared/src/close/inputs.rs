//! Reading what a close needs from the bucket: dimensions, rules, FX, curated partitions.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::calendar::Calendar;
use crate::columnar::{Columnar, read_parquet};
use crate::config_files::{
    ConfigProblem, JsonLine, Scope, bank_field, jsonl_lines, problems_error,
};
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate, MerchantId};
use crate::keys::{
    self, FEE_RULES as FEE_RULES_KEY, MERCHANTS as MERCHANTS_KEY, TOLERANCES as TOLERANCES_KEY,
    transactions_prefix,
};
use crate::money::Currency;
use crate::ports::{ObjectInfo, ObjectStore, get_opt};
use crate::records::{FeeRule, Merchant};
use crate::rules::{Tolerances, check_fee_rules};
use crate::source::{SourceKind, SourceMapping};

/// Changes whenever matching rules in code change, so every partition is reconciled again.
pub const ENGINE_VERSION: &str = "recon-engine/1";

/// The curated transactions objects of one bank and date (see
/// [`crate::keys::transactions_key`]).
pub async fn bank_transaction_objects<S: ObjectStore>(
    store: &S,
    date: BusinessDate,
    bank: &BankId,
) -> Result<Vec<(String, Bytes)>> {
    let mut out = Vec::new();
    for obj in bank_transaction_keys(store, date, bank).await? {
        out.push((obj.key.clone(), store.get(&obj.key).await?));
    }
    Ok(out)
}

/// The keys and sizes of [`bank_transaction_objects`], sorted by key.
pub async fn bank_transaction_keys<S: ObjectStore>(
    store: &S,
    date: BusinessDate,
    bank: &BankId,
) -> Result<Vec<ObjectInfo>> {
    let mut objs = store.list(&transactions_prefix(date)).await?;
    objs.retain(|o| keys::transactions_bank(&o.key) == Some(bank.as_str()));
    Ok(objs)
}

/// Reference data of a close.
#[derive(Debug, Clone, Default)]
pub struct Dimensions {
    /// The merchant dimension (`config/merchants.jsonl`), by merchant id.
    pub merchants: HashMap<MerchantId, Merchant>,
    /// The fee rules of every line that decodes (the problems of the file are in `problems`).
    pub fee_rules: Vec<FeeRule>,
    /// The matching tolerances (defaults when the file is absent).
    pub tolerances: Tolerances,
    /// Statement banks and the currency they settle in (from their source mappings).
    pub banks: BTreeMap<BankId, Option<Currency>>,
    /// The sources that deliver each statement bank's statements.
    pub statement_sources: BTreeMap<BankId, Vec<crate::ids::SourceId>>,
    /// Business calendars of the banks that have one (`config/calendars/{bank}.json`).
    pub calendars: BTreeMap<BankId, Calendar>,
    /// Hash of the engine version, the merchants and the source mappings, part of every
    /// partition fingerprint (the rules a partition uses are in its own:
    /// [`Self::rules_digest`]).
    pub fingerprint: String,
    /// What is wrong with the configuration; each problem fails the partitions it affects
    /// (and only those), naming the file, the line and what to do.
    pub problems: Vec<ConfigProblem>,
}

impl Dimensions {
    /// Each merchant's category, the key fee rules are chosen by.
    pub fn categories(&self) -> HashMap<MerchantId, String> {
        self.merchants
            .iter()
            .map(|(k, m)| (k.clone(), m.category.clone()))
            .collect()
    }

    /// The business calendar of `bank`: its file, or every day a business day.
    pub fn calendar(&self, bank: &BankId) -> Calendar {
        self.calendars
            .get(bank)
            .cloned()
            .unwrap_or_else(|| Calendar::every_day(bank.clone()))
    }

    /// A digest of the rules the close of `bank` on `date` can use: the tolerances, the bank's
    /// calendar and its fee rules in force on `date` (the engine chooses among those alone:
    /// [`crate::rules::select_fee_rule`]), each in canonical form without its effective dates.
    /// A rule of another bank, one booked for a later date, or a rule's end moved to a later
    /// date, leaves it unchanged.
    pub fn rules_digest(&self, bank: &BankId, date: BusinessDate) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&self.tolerances)?);
        if let Some(c) = self.calendars.get(bank) {
            h.update(b"|calendar");
            h.update(serde_json::to_vec(c)?);
        }
        let mut rules: Vec<&FeeRule> = self
            .fee_rules
            .iter()
            .filter(|r| r.bank_id.as_ref() == Some(bank) && r.in_force(date.date()))
            .collect();
        rules.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        for r in rules {
            // What the rule charges, not when: moving a rule's end date leaves the dates it
            // still covers unchanged.
            let charge = FeeRule {
                effective_from: chrono::NaiveDate::MIN,
                effective_to: None,
                ..r.clone()
            };
            h.update(b"|fee");
            h.update(serde_json::to_vec(&charge)?);
        }
        Ok(h.finalize().into())
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
pub(crate) fn fee_rules(bytes: Option<&[u8]>, problems: &mut Vec<ConfigProblem>) -> Vec<FeeRule> {
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
pub(crate) fn tolerances(bytes: Option<&[u8]>, problems: &mut Vec<ConfigProblem>) -> Tolerances {
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

/// The calendars of `config/calendars/`, by bank; a file that cannot be used is a problem of
/// its bank.
pub(crate) async fn calendars<S: ObjectStore>(
    store: &S,
    problems: &mut Vec<ConfigProblem>,
) -> Result<BTreeMap<BankId, Calendar>> {
    let mut calendars = BTreeMap::new();
    for obj in store.list(keys::CALENDARS).await? {
        let b = store.get(&obj.key).await?;
        let Some(bank) = keys::calendar_bank(&obj.key) else {
            continue;
        };
        let parsed = BankId::new(bank)
            .and_then(|id| Calendar::from_json(&obj.key, &id, &b).map(|c| (id, c)));
        match parsed {
            Ok((id, c)) => {
                calendars.insert(id, c);
            }
            Err(e) => problems.push(ConfigProblem::new(
                &obj.key,
                None,
                match e {
                    Error::InvalidConfig { reason, .. } => reason,
                    e => e.to_string(),
                },
                "correct the calendar ({\"bank_id\", \"weekend\": [\"SAT\", \"SUN\"], \"holidays\": [\"YYYY-MM-DD\"], \"settlement_window_days\"}) or delete it: the bank then posts every day",
                BankId::new(bank).map_or(Scope::All, Scope::Bank),
            )),
        }
    }
    Ok(calendars)
}

/// Reads the reference data of a close from `config/`: merchants, fee rules, tolerances and
/// the statement sources' mappings, with their fingerprint and every problem found.
pub async fn load_dimensions<S: ObjectStore>(store: &S) -> Result<Dimensions> {
    let mut h = Sha256::new();
    h.update(ENGINE_VERSION.as_bytes());
    let mut problems = Vec::new();
    let merchants_bytes = get_opt(store, MERCHANTS_KEY).await?;
    let fee_bytes = get_opt(store, FEE_RULES_KEY).await?;
    let tolerance_bytes = get_opt(store, TOLERANCES_KEY).await?;
    // The rules are not hashed here: each partition's fingerprint holds the rules it can use
    // (`Dimensions::rules_digest`), so a rule change re-runs only the partitions it affects.
    if let Some(b) = &merchants_bytes {
        h.update(b);
    }
    let merchants = merchants(merchants_bytes.as_deref(), &mut problems);
    let fee_rules = fee_rules(fee_bytes.as_deref(), &mut problems);
    let tolerances = tolerances(tolerance_bytes.as_deref(), &mut problems);
    let mut banks = BTreeMap::new();
    let mut statement_sources = BTreeMap::new();
    for obj in store.list(keys::SOURCES).await? {
        let b = store.get(&obj.key).await?;
        h.update(obj.key.as_bytes());
        h.update(&b);
        match SourceMapping::from_file(&obj.key, &b) {
            Ok(m) => {
                if let (SourceKind::Statement, Some(bank)) = (m.kind, m.bank_id) {
                    statement_sources
                        .entry(bank.clone())
                        .or_insert_with(Vec::new)
                        .push(m.source_id);
                    banks.insert(bank, m.settlement_currency.or(m.default_currency));
                }
            }
            Err(e) => problems.extend(mapping_problem(&obj.key, &b, e)),
        }
    }
    let calendars = calendars(store, &mut problems).await?;
    for p in &problems {
        tracing::warn!(file = %p.file, scope = ?p.scope, "invalid config: {p}");
    }
    Ok(Dimensions {
        merchants,
        fee_rules,
        tolerances,
        banks,
        statement_sources,
        calendars,
        fingerprint: hex::encode(h.finalize()),
        problems,
    })
}

/// Every Parquet object under `prefix`, with its key and bytes, sorted by key.
pub async fn objects<S: ObjectStore>(store: &S, prefix: &str) -> Result<Vec<(String, Bytes)>> {
    let mut out = Vec::new();
    for obj in parquet_keys(store, prefix).await? {
        out.push((obj.key.clone(), store.get(&obj.key).await?));
    }
    Ok(out)
}

/// The keys and sizes of [`objects`], sorted by key.
pub async fn parquet_keys<S: ObjectStore>(store: &S, prefix: &str) -> Result<Vec<ObjectInfo>> {
    let mut objs = store.list(prefix).await?;
    objs.retain(|o| o.key.ends_with(".parquet"));
    Ok(objs)
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
        let s = store.list(&keys::statements_date_prefix(d)).await?;
        let t = store.list(&transactions_prefix(d)).await?;
        if !s.is_empty() || !t.is_empty() || d == date {
            out.push(d);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalStore;

    const MT940: &str = r#"{"source_id": "SRC", "kind": "statement", "format": "mt940", "bank_id": "BANK",
        "settlement_currency": "EUR", "timezone": "Europe/Paris", "columns": {}}"#;

    fn merchant(id: &str, bank: &str) -> String {
        format!(
            r#"{{"merchant_id":"{id}","merchant_name":"m","category":"travel","risk_level":"LOW","onboarding_date":"2024-01-01","country":"FR","acquirer_bank_id":"{bank}"}}"#
        )
    }

    fn rule(id: &str, bank: &str, percent: &str) -> String {
        format!(
            r#"{{"rule_id":"{id}","bank_id":"{bank}","percent":"{percent}","fixed":"0.10","currency":"EUR","effective_from":"2026-01-01"}}"#
        )
    }

    async fn put(store: &LocalStore, key: &str, text: &str) -> Result<()> {
        store.put(key, Bytes::from(text.to_string())).await
    }

    async fn bucket(dir: &std::path::Path) -> Result<LocalStore> {
        let store = LocalStore::new(dir);
        let merchants = [
            merchant("M1", "bank_01"),
            String::new(),
            // Line 3: a risk level that does not exist, for a bank_02 merchant.
            merchant("M2", "bank_02").replace("LOW", "SOMEWHAT"),
        ];
        put(&store, MERCHANTS_KEY, &merchants.join("\n")).await?;
        let rules = [rule("r1", "bank_01", "1.5"), rule("r3", "bank_03", "abc")];
        put(&store, FEE_RULES_KEY, &rules.join("\n")).await?;
        let mapping = |src: &str, bank: &str| MT940.replace("SRC", src).replace("BANK", bank);
        put(
            &store,
            "config/sources/bank_01.json",
            &mapping("bank_01", "bank_01"),
        )
        .await?;
        // Not JSON at all: its bank cannot be told, its source can.
        put(&store, "config/sources/src_x.json", "{\"source_id\": ").await?;
        // A ledger mapping is no concern of a close.
        put(
            &store,
            "config/sources/ledger.json",
            r#"{"source_id": "ledger", "kind": "transactions", "format": "csv", "columns": {}}"#,
        )
        .await?;
        Ok(store)
    }

    fn check(dims: &Dimensions, bank: &str, keys: &[&str]) -> Result<String> {
        Ok(
            match dims.check(&BankId::new(bank)?, keys.iter().copied()) {
                Ok(()) => String::new(),
                Err(e) => e.to_string(),
            },
        )
    }

    #[tokio::test]
    async fn each_config_problem_fails_only_the_partitions_it_concerns() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let store = bucket(dir.path()).await?;
        // Before, the first bad line failed the whole plan (every bank's close).
        let dims = load_dimensions(&store).await?;
        assert_eq!(dims.problems.len(), 3, "{:?}", dims.problems);
        assert_eq!(check(&dims, "bank_01", &[])?, "");
        let b2 = check(&dims, "bank_02", &[])?;
        assert!(
            b2.contains("config/merchants.jsonl")
                && b2.contains("line 3:")
                && b2.contains("SOMEWHAT"),
            "{b2}"
        );
        let b3 = check(&dims, "bank_03", &[])?;
        assert!(
            b3.contains("config/rules/fee_rules.jsonl") && b3.contains("line 2:"),
            "{b3}"
        );
        let from_x = [
            "curated/statements/business_date=2026-11-20/bank_id=bank_04/part-src_x-2026-11-20.parquet",
        ];
        let b4 = check(&dims, "bank_04", &from_x)?;
        assert!(
            b4.contains("config/sources/src_x.json") && b4.contains("correct the mapping"),
            "{b4}"
        );
        assert_eq!(check(&dims, "bank_04", &[])?, "");
        assert_eq!(dims.banks.len(), 1);
        assert_eq!(dims.merchants.len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_merchant_given_twice_fails_the_banks_of_both_lines() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let store = bucket(dir.path()).await?;
        let lines = [
            merchant("M1", "bank_01"),
            merchant("M5", "bank_05"),
            merchant("M1", "bank_02"),
        ];
        put(&store, MERCHANTS_KEY, &lines.join("\n")).await?;
        let dims = load_dimensions(&store).await?;
        for bank in ["bank_01", "bank_02"] {
            let e = check(&dims, bank, &[])?;
            assert!(
                e.contains("line 3:") && e.contains("`M1` is given again (first on line 1)"),
                "{e}"
            );
        }
        assert_eq!(check(&dims, "bank_05", &[])?, "");
        Ok(())
    }

    #[tokio::test]
    async fn missing_fee_rules_and_absurd_tolerances_fail_every_partition() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let store = bucket(dir.path()).await?;
        store.delete(FEE_RULES_KEY).await?;
        put(
            &store,
            TOLERANCES_KEY,
            r#"{"amount_minor_units": -1, "fee_minor_units": 1, "date_window_days": 3, "max_group_size": 6, "max_group_candidates": 24}"#,
        )
        .await?;
        let dims = load_dimensions(&store).await?;
        let b1 = check(&dims, "bank_01", &[])?;
        for part in [
            "config/rules/fee_rules.jsonl",
            "is missing",
            "deliver the fee rules",
            "config/rules/tolerances.json",
            "`amount_minor_units` is -1, must be 0 to 10000",
        ] {
            assert!(b1.contains(part), "{part} not in {b1}");
        }
        assert!(!check(&dims, "bank_09", &[])?.is_empty());
        // An empty fee rules file says that no bank charges fees: no problem.
        put(&store, FEE_RULES_KEY, "").await?;
        store.delete(TOLERANCES_KEY).await?;
        assert_eq!(check(&load_dimensions(&store).await?, "bank_01", &[])?, "");
        Ok(())
    }
}
