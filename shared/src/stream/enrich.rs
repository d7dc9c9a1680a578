//! Enrichment: merchant dimension, active policies and the compliance label.
//!
//! Everything here is a pure function of a transaction, its fraud signal and the configuration,
//! except VELOCITY, which also depends on the user's other payments in the same hour and is
//! passed in (see [`super::indexer`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config_files::{ConfigProblem, JsonLine, Scope, jsonl, jsonl_lines};
use crate::error::{Error, Result};
use crate::ids::{BusinessDate, MerchantId};
use crate::index_item::{Derived, MerchantInfo, PolicyFlag, RiskLabel, SignalState, TxnState};
use crate::keys::{
    COMPLIANCE as COMPLIANCE_KEY, MERCHANTS as MERCHANTS_KEY, POLICIES as POLICIES_KEY, fx_key,
};
use crate::money::{Currency, FxTable, parse_decimal};
use crate::pii::{PiiKey, Tokenizer};
use crate::ports::{ObjectStore, get_opt};
use crate::records::{Merchant, Policy, PolicyType};

/// How the compliance label is decided: HIGH_RISK when the fraud score is above
/// `high_risk_score` or a flag of `high_risk_flags` is raised; else REQUIRES_KYC when a flag
/// of `kyc_flags` is raised; else OK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceRules {
    /// Strictly above this score is HIGH_RISK (default 0.8).
    #[serde(with = "rust_decimal::serde::str")]
    pub high_risk_score: Decimal,
    /// Default: BLACKLIST.
    pub high_risk_flags: Vec<PolicyFlag>,
    /// Default: KYC.
    pub kyc_flags: Vec<PolicyFlag>,
}

impl Default for ComplianceRules {
    fn default() -> Self {
        Self {
            high_risk_score: Decimal::new(8, 1),
            high_risk_flags: vec![PolicyFlag::Blacklist],
            kyc_flags: vec![PolicyFlag::Kyc],
        }
    }
}

impl ComplianceRules {
    /// The risk label of a transaction: HIGH_RISK for a score above the threshold or a
    /// high-risk flag, else REQUIRES_KYC for a KYC flag, else OK.
    pub fn label(&self, fraud_score: Option<Decimal>, flags: &[PolicyFlag]) -> RiskLabel {
        let any = |set: &[PolicyFlag]| flags.iter().any(|f| set.contains(f));
        if fraud_score.is_some_and(|s| s > self.high_risk_score) || any(&self.high_risk_flags) {
            RiskLabel::HighRisk
        } else if any(&self.kyc_flags) {
            RiskLabel::RequiresKyc
        } else {
            RiskLabel::Ok
        }
    }
}

/// An amount threshold in a currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    /// The limit in major units, exact.
    pub amount: Decimal,
    /// The currency of the limit; an amount in another currency is converted at the day's FX rate.
    pub currency: Currency,
}

/// The active policies of `config/policies.jsonl`, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivePolicies {
    /// KYC: payments at or above a threshold.
    pub kyc: Vec<Threshold>,
    /// AML: merchant categories screened.
    pub aml_categories: BTreeSet<String>,
    /// BLACKLIST: barred merchants.
    pub blacklist: HashSet<MerchantId>,
    /// REGIONAL_LIMIT: (merchant country, per-payment maximum).
    pub regional: Vec<(String, Threshold)>,
    /// VELOCITY: the most payments a user may make in one UTC clock hour (the lowest of the
    /// active policies).
    pub velocity_max: Option<u64>,
}

fn param_err(policy: &Policy, reason: &str) -> Error {
    Error::InvalidConfig {
        name: POLICIES_KEY.into(),
        reason: format!("policy {}: {reason}", policy.policy_id),
    }
}

fn param_decimal(policy: &Policy, name: &str) -> Result<Decimal> {
    let v = &policy.parameters[name];
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(param_err(policy, &format!("`{name}` must be a decimal"))),
    };
    parse_decimal(&text, '.').map_err(|_| param_err(policy, &format!("`{name}` is not a decimal")))
}

fn param_threshold(policy: &Policy, name: &str) -> Result<Threshold> {
    let amount = param_decimal(policy, name)?;
    let currency = policy.parameters["currency"]
        .as_str()
        .and_then(|c| Currency::new(c).ok())
        .ok_or_else(|| param_err(policy, "`currency` must be an ISO 4217 code"))?;
    Ok(Threshold { amount, currency })
}

fn param_strings(policy: &Policy, name: &str) -> Result<Vec<String>> {
    policy.parameters[name]
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| param_err(policy, &format!("`{name}` must be a list of strings")))
}

impl ActivePolicies {
    /// Parses the active policies; a policy with unusable parameters fails naming its id.
    pub fn from_policies(policies: &[Policy]) -> Result<Self> {
        let mut out = Self::default();
        for p in policies.iter().filter(|p| p.active_flag) {
            match p.policy_type {
                PolicyType::Kyc => out.kyc.push(param_threshold(p, "min_amount")?),
                PolicyType::Aml => out.aml_categories.extend(param_strings(p, "categories")?),
                PolicyType::Blacklist => {
                    for m in param_strings(p, "merchant_ids")? {
                        out.blacklist.insert(
                            MerchantId::new(m)
                                .map_err(|_| param_err(p, "`merchant_ids` holds an invalid id"))?,
                        );
                    }
                }
                PolicyType::RegionalLimit => {
                    let country = p.parameters["country"]
                        .as_str()
                        .ok_or_else(|| param_err(p, "`country` must be a string"))?
                        .to_ascii_uppercase();
                    out.regional
                        .push((country, param_threshold(p, "max_amount")?));
                }
                PolicyType::Velocity => {
                    let max = p.parameters["max_per_user_per_hour"]
                        .as_u64()
                        .ok_or_else(|| {
                            param_err(p, "`max_per_user_per_hour` must be a whole number")
                        })?;
                    out.velocity_max = Some(out.velocity_max.map_or(max, |m| m.min(max)));
                }
            }
        }
        Ok(out)
    }
}

/// What the indexer needs besides the records: the PII key, the merchant dimension, the active
/// policies, the label rules, and the day's FX tables (loaded on first use, to compare amounts
/// with thresholds in another currency).
#[derive(Debug)]
pub struct StreamContext {
    /// The secret that turns user ids into tokens (also used for the archive).
    pub pii: PiiKey,
    /// `pii`, keyed once.
    pub tokenizer: Tokenizer,
    /// The merchant dimension, by merchant id: what enrichment copies onto each item.
    pub merchants: HashMap<MerchantId, Arc<MerchantInfo>>,
    /// The policies that set flags on transactions.
    pub policies: ActivePolicies,
    /// How scores and flags become a risk label.
    pub rules: ComplianceRules,
    fx: Mutex<HashMap<BusinessDate, Option<Arc<FxTable>>>>,
}

/// The enrichment context of a long-lived function (a provisioned stream poller): read from
/// the bucket again once it is older than its time-to-live, so a changed merchant, policy,
/// label rule or FX file reaches the index within that time, and at once when the PII key
/// changed (a rotation: [`crate::select::PiiKeySource`]). A reload that fails (a bad line in a
/// configuration file) keeps the last good context and is tried again at the next expiry.
pub struct FreshContext {
    ttl_ms: i64,
    current: Mutex<(i64, Arc<StreamContext>)>,
}

impl FreshContext {
    /// Loads the context now (`now_ms`, epoch milliseconds): a bad configuration fails here,
    /// as the function's start should.
    pub async fn load<S: ObjectStore>(
        store: &S,
        pii: PiiKey,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<Self> {
        let ctx = StreamContext::load(store, pii).await?;
        Ok(Self {
            ttl_ms,
            current: Mutex::new((now_ms, Arc::new(ctx))),
        })
    }

    fn current(&self) -> Result<std::sync::MutexGuard<'_, (i64, Arc<StreamContext>)>> {
        self.current
            .lock()
            .map_err(|_| Error::Invariant("context lock poisoned".into()))
    }

    /// The context to use at `now_ms` with the key `pii`, reloaded first when it has expired
    /// or was built with another key. A context that cannot be rebuilt with a new key fails
    /// the batch (records are never tokenized with a key that was rotated away).
    pub async fn get<S: ObjectStore>(
        &self,
        store: &S,
        pii: &PiiKey,
        now_ms: i64,
    ) -> Result<Arc<StreamContext>> {
        let (loaded, ctx) = self.current()?.clone();
        let rekeyed = ctx.pii != *pii;
        if now_ms - loaded < self.ttl_ms && !rekeyed {
            return Ok(ctx);
        }
        let next = match StreamContext::load(store, pii.clone()).await {
            Ok(fresh) => Arc::new(fresh),
            Err(e) if rekeyed => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; the last good configuration stays in use");
                ctx
            }
        };
        *self.current()? = (now_ms, next.clone());
        Ok(next)
    }
}

impl StreamContext {
    /// Builds the context from the configuration files' records; refused when a policy's
    /// parameters cannot be read.
    pub fn new(
        pii: PiiKey,
        merchants: &[Merchant],
        policies: &[Policy],
        rules: ComplianceRules,
    ) -> Result<Self> {
        Ok(Self {
            tokenizer: pii.tokenizer(),
            pii,
            merchants: merchants
                .iter()
                .map(|m| {
                    (
                        m.merchant_id.clone(),
                        Arc::new(MerchantInfo {
                            merchant_name: m.merchant_name.clone(),
                            category: m.category.clone(),
                            country: m.country.to_ascii_uppercase(),
                            risk_level: m.risk_level,
                        }),
                    )
                })
                .collect(),
            policies: ActivePolicies::from_policies(policies)?,
            rules,
            fx: Mutex::new(HashMap::new()),
        })
    }

    /// Reads the merchants, policies and label rules from the bucket's `config/`.
    pub async fn load<S: ObjectStore>(store: &S, pii: PiiKey) -> Result<Self> {
        let merchants: Vec<Merchant> = match get_opt(store, MERCHANTS_KEY).await? {
            Some(b) => jsonl(
                MERCHANTS_KEY,
                &b,
                "correct the line of the merchant file; the stream indexer does not start until it is fixed",
            )?,
            None => Vec::new(),
        };
        const POLICY_FIX: &str = "correct the line of the policy file (policy_id, policy_type, rule_description, active_flag, parameters); the stream indexer does not start until it is fixed";
        let mut policies: Vec<Policy> = Vec::new();
        let bytes = get_opt(store, POLICIES_KEY).await?.unwrap_or_default();
        for l in jsonl_lines::<Policy>(&bytes) {
            let bad = |line, reason| {
                ConfigProblem::new(POLICIES_KEY, Some(line), reason, POLICY_FIX, Scope::All).error()
            };
            match l {
                JsonLine::Ok { line, value } => {
                    // Parameters are checked policy by policy to name the line.
                    ActivePolicies::from_policies(std::slice::from_ref(&value)).map_err(|e| {
                        bad(
                            line,
                            match e {
                                Error::InvalidConfig { reason, .. } => reason,
                                e => e.to_string(),
                            },
                        )
                    })?;
                    policies.push(value);
                }
                JsonLine::Bad { line, reason, .. } => return Err(bad(line, reason)),
            }
        }
        let rules = match get_opt(store, COMPLIANCE_KEY).await? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| Error::InvalidConfig {
                name: COMPLIANCE_KEY.into(),
                reason: e.to_string(),
            })?,
            None => ComplianceRules::default(),
        };
        Self::new(pii, &merchants, &policies, rules)
    }

    fn fx_cache(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<BusinessDate, Option<Arc<FxTable>>>>> {
        self.fx
            .lock()
            .map_err(|_| Error::Invariant("fx cache lock poisoned".into()))
    }

    /// Loads `config/fx/{day}.csv` for the days not seen yet. A missing table is never
    /// remembered: the next batch that needs the day looks again (a table that arrives later
    /// is used from then on).
    pub async fn prepare_fx<S: ObjectStore>(
        &self,
        store: &S,
        days: impl IntoIterator<Item = BusinessDate>,
    ) -> Result<()> {
        let wanted: BTreeSet<BusinessDate> = days.into_iter().collect();
        for day in wanted {
            if self.fx_cache()?.contains_key(&day) {
                continue;
            }
            if let Some(b) = get_opt(store, &fx_key(day)).await? {
                let table = Arc::new(FxTable::from_file(&fx_key(day), &b)?);
                self.fx_cache()?.insert(day, Some(table));
            }
        }
        Ok(())
    }

    fn fx(&self, day: BusinessDate) -> Option<Arc<FxTable>> {
        self.fx_cache()
            .ok()
            .and_then(|c| c.get(&day).cloned().flatten())
    }

    /// The payment's amount in the threshold's currency (FX of the event day); `None` when
    /// there is no rate.
    fn amount_in(
        &self,
        txn: &TxnState,
        currency: Currency,
        fx: Option<&FxTable>,
    ) -> Option<Decimal> {
        if txn.currency == currency {
            return Some(txn.amount);
        }
        fx?.convert(txn.amount, txn.currency, currency, txn.txn_day)
            .ok()
            .map(|(a, _)| a)
    }

    /// The policy flags of a payment, sorted, with its merchant (`known`: the dimension the
    /// item already carries for this merchant, reused instead of copied again).
    pub fn flags(
        &self,
        txn: &TxnState,
        velocity: bool,
        known: Option<Arc<MerchantInfo>>,
    ) -> (Option<Arc<MerchantInfo>>, Vec<PolicyFlag>) {
        let p = &self.policies;
        let merchant = match self.merchants.get(&txn.merchant_id) {
            Some(m) if known.as_ref() == Some(m) => known,
            Some(m) => Some(Arc::clone(m)),
            None => None,
        };
        let fx = if p.kyc.is_empty() && p.regional.is_empty() {
            None
        } else {
            self.fx(txn.txn_day)
        };
        let mut flags = Vec::new();
        if p.kyc.iter().any(|t| {
            self.amount_in(txn, t.currency, fx.as_deref())
                .is_some_and(|a| a >= t.amount)
        }) {
            flags.push(PolicyFlag::Kyc);
        }
        if p.blacklist.contains(&txn.merchant_id) {
            flags.push(PolicyFlag::Blacklist);
        }
        match &merchant {
            Some(m) => {
                if p.aml_categories.contains(&m.category) {
                    flags.push(PolicyFlag::Aml);
                }
                if p.regional.iter().any(|(country, t)| {
                    *country == m.country
                        && self
                            .amount_in(txn, t.currency, fx.as_deref())
                            .is_some_and(|a| a > t.amount)
                }) {
                    flags.push(PolicyFlag::RegionalLimit);
                }
            }
            None => flags.push(PolicyFlag::UnknownMerchant),
        }
        if velocity {
            flags.push(PolicyFlag::Velocity);
        }
        flags.sort();
        flags.dedup();
        (merchant, flags)
    }

    /// Enrichment of a payment with its signal (if any) and the VELOCITY verdict.
    pub fn derive(&self, txn: &TxnState, signal: Option<&SignalState>, velocity: bool) -> Derived {
        self.derive_from(txn, signal, velocity, None)
    }

    /// [`Self::derive`], reusing what an earlier enrichment of the item holds.
    pub fn derive_from(
        &self,
        txn: &TxnState,
        signal: Option<&SignalState>,
        velocity: bool,
        previous: Option<Derived>,
    ) -> Derived {
        let known = previous.and_then(|d| d.merchant);
        let (merchant, policy_flags) = self.flags(txn, velocity, known);
        let risk_label = self
            .rules
            .label(signal.map(|s| s.fraud_score), &policy_flags);
        Derived {
            merchant,
            policy_flags,
            risk_label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_policy_or_merchant_line_names_the_file_the_line_and_the_fix() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let store = crate::local::LocalStore::new(dir.path());
        let pii = || PiiKey::new(b"0123456789abcdef-key-one");
        let kyc = r#"{"policy_id":"P1","policy_type":"KYC","rule_description":"kyc","active_flag":true,"parameters":{"min_amount":"1000","currency":"USD"}}"#;
        // Line 3 (after a blank line): an amount that is not a decimal; before, the message
        // named the policy but no line.
        let bad = kyc.replace("P1", "P2").replace("\"1000\"", "\"lots\"");
        store
            .put(
                POLICIES_KEY,
                bytes::Bytes::from(format!("{kyc}\n\n{bad}\n")),
            )
            .await?;
        let e = StreamContext::load(&store, pii()?)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for part in [
            "config/policies.jsonl",
            "line 3:",
            "policy P2",
            "min_amount",
            "correct the line",
        ] {
            assert!(e.contains(part), "{part} not in {e}");
        }
        store
            .put(POLICIES_KEY, bytes::Bytes::from(format!("{kyc}\n")))
            .await?;
        store
            .put(
                MERCHANTS_KEY,
                bytes::Bytes::from_static(b"\n{\"merchant_id\":\"M1\"\n"),
            )
            .await?;
        let e = StreamContext::load(&store, pii()?)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("config/merchants.jsonl") && e.contains("line 2:"),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn the_label_rule_and_its_thresholds() {
        let r = ComplianceRules::default();
        let d = |s: &str| s.parse::<Decimal>().ok();
        assert_eq!(r.label(d("0.81"), &[]), RiskLabel::HighRisk);
        assert_eq!(r.label(d("0.80"), &[]), RiskLabel::Ok);
        assert_eq!(r.label(None, &[PolicyFlag::Blacklist]), RiskLabel::HighRisk);
        assert_eq!(
            r.label(d("0.1"), &[PolicyFlag::Kyc]),
            RiskLabel::RequiresKyc
        );
        assert_eq!(
            r.label(d("0.9"), &[PolicyFlag::Kyc]),
            RiskLabel::HighRisk,
            "HIGH_RISK wins over REQUIRES_KYC"
        );
        assert_eq!(r.label(None, &[PolicyFlag::Aml]), RiskLabel::Ok);
        let custom: ComplianceRules = serde_json::from_str(
            r#"{"high_risk_score":"0.5","high_risk_flags":["BLACKLIST","VELOCITY"]}"#,
        )
        .unwrap_or_default();
        assert_eq!(custom.label(d("0.6"), &[]), RiskLabel::HighRisk);
        assert_eq!(
            custom.label(None, &[PolicyFlag::Velocity]),
            RiskLabel::HighRisk
        );
        assert_eq!(custom.kyc_flags, vec![PolicyFlag::Kyc]);
    }

    #[tokio::test]
    async fn a_poller_sees_changed_configuration_after_its_ttl_and_never_caches_a_missing_fx_day()
    -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let store = crate::local::LocalStore::new(dir.path());
        let merchant = |id: &str| {
            format!(
                r#"{{"merchant_id":"{id}","merchant_name":"m","category":"travel","risk_level":"LOW","onboarding_date":"2024-01-01","country":"FR"}}"#
            )
        };
        let put = |key: &'static str, body: String| {
            let store = &store;
            async move { store.put(key, bytes::Bytes::from(body)).await }
        };
        put(MERCHANTS_KEY, format!("{}\n", merchant("M1"))).await?;
        let key = PiiKey::new(b"0123456789abcdef-key-one")?;
        let fresh = FreshContext::load(&store, key.clone(), 1000, 0).await?;
        let m2 = MerchantId::new("M2")?;
        put(
            MERCHANTS_KEY,
            format!("{}\n{}\n", merchant("M1"), merchant("M2")),
        )
        .await?;
        assert!(
            !fresh
                .get(&store, &key, 999)
                .await?
                .merchants
                .contains_key(&m2),
            "within its TTL"
        );
        assert!(
            fresh
                .get(&store, &key, 1000)
                .await?
                .merchants
                .contains_key(&m2),
            "reloaded"
        );
        // A rotated key is used at once, within the TTL.
        let rotated = PiiKey::new(b"0123456789abcdef-key-two")?;
        let user = crate::ids::UserId::new("U1")?;
        let ctx = fresh.get(&store, &rotated, 1500).await?;
        assert_eq!(ctx.tokenizer.tokenize(&user), rotated.tokenize(&user));
        assert_ne!(rotated.tokenize(&user), key.tokenize(&user));
        let key = rotated;
        // A bad line at the next reload keeps the last good context (and says so in the log).
        put(POLICIES_KEY, "{not json\n".into()).await?;
        assert!(
            fresh
                .get(&store, &key, 2000)
                .await?
                .merchants
                .contains_key(&m2)
        );
        // A day without an FX table is looked up again by the next batch.
        let ctx = fresh.get(&store, &key, 2500).await?;
        let day = BusinessDate::parse("2026-11-19")?;
        ctx.prepare_fx(&store, [day]).await?;
        assert!(ctx.fx(day).is_none());
        store
            .put(
                &fx_key(day),
                bytes::Bytes::from_static(b"base,quote,rate\nEUR,USD,1.08\n"),
            )
            .await?;
        ctx.prepare_fx(&store, [day]).await?;
        assert!(ctx.fx(day).is_some(), "the table that arrived is used");
        Ok(())
    }
}
