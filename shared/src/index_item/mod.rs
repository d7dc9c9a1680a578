//! The TransactionIndex item (design.md §7), its versions and the aggregates derived from it:
//! the values the [`crate::ports::TransactionIndex`] port stores, below the port and every
//! module that reads or writes the index (the stream indexer, the close, the query API).
//!
//! An item joins two streams on `transaction_id`: the latest transaction record and the latest
//! fraud signal. Each side keeps the [`RecordVersion`] of the record it came from; the item's
//! [`StreamVersion`] is the pair, and it only ever grows (in both components), so a redelivered
//! or older record can never replace newer state. Settlement fields written back by the daily
//! close live beside the streaming state and are not part of its version.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

mod totals;

pub use totals::{AggregateDelta, MerchantDayDelta, MerchantDayTotals, aggregate_delta};

use crate::error::{Error, Result};
use crate::ids::{BusinessDate, FraudSignalId, MerchantId, TransactionId};
use crate::money::Currency;
use crate::records::{
    MatchRule, MismatchType, PaymentMethod, ReconciledStatus, RiskLevel, SettlementStatus,
    TxnStatus,
};

/// Serializers for the hot fields of an item: the domain types serialize through an owned
/// `String` and `fmt`, which is most of the cost of writing an item; these write the same text
/// from borrowed strings and small stack buffers.
mod fast {
    use chrono::{DateTime, Datelike, Timelike, Utc};
    use serde::Serializer;

    use crate::ids::BusinessDate;
    use crate::money::Currency;
    use crate::records::{
        MismatchType, PaymentMethod, ReconciledStatus, RiskLevel, SettlementStatus, TxnStatus,
    };

    pub trait Code {
        fn code(&self) -> &str;
    }

    macro_rules! code {
        ($($t:ty),*) => {$(impl Code for $t { fn code(&self) -> &str { self.as_str() } })*};
    }
    code!(
        TxnStatus,
        PaymentMethod,
        RiskLevel,
        ReconciledStatus,
        MismatchType,
        SettlementStatus
    );

    impl Code for Currency {
        fn code(&self) -> &str {
            Currency::code(self)
        }
    }

    pub fn code<T: Code, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.code())
    }

    pub fn id<T: AsRef<str>, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_ref())
    }

    pub fn opt_id<T: AsRef<str>, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(v.as_ref()),
            None => s.serialize_none(),
        }
    }

    fn digits(out: &mut [u8], mut v: u32) {
        for b in out.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }

    /// `YYYY-MM-DD`.
    pub fn day<S: Serializer>(d: &BusinessDate, s: S) -> Result<S::Ok, S::Error> {
        let d = d.date();
        let mut b = *b"0000-00-00";
        digits(&mut b[0..4], d.year().unsigned_abs());
        digits(&mut b[5..7], d.month());
        digits(&mut b[8..10], d.day());
        s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
    }

    /// RFC 3339 UTC with milliseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ` (sub-millisecond digits are
    /// kept the chrono way; stream timestamps have none).
    pub fn time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        let nanos = t.timestamp_subsec_nanos();
        if !nanos.is_multiple_of(1_000_000) || !(0..=9999).contains(&t.year()) {
            return s.collect_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        }
        let mut b = *b"0000-00-00T00:00:00.000Z";
        digits(&mut b[0..4], t.year().unsigned_abs());
        digits(&mut b[5..7], t.month());
        digits(&mut b[8..10], t.day());
        digits(&mut b[11..13], t.hour());
        digits(&mut b[14..16], t.minute());
        digits(&mut b[17..19], t.second().min(59));
        digits(&mut b[20..23], nanos / 1_000_000);
        s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

/// Topic of transaction records (design.md §5).
pub const TRANSACTIONS_TOPIC: &str = "transactions_topic";
/// Topic of fraud signals (design.md §5).
pub const FRAUD_SIGNALS_TOPIC: &str = "fraud_signals_topic";
/// Partitions of each topic: the generator's records are keyed onto them, and `recon publish`
/// creates the topics with them.
pub const TOPIC_PARTITIONS: u16 = 6;

/// A topic name; the two topics of the product are shared static strings (no allocation per
/// record or copy).
pub type Topic = Cow<'static, str>;

/// The topic name, shared when it is one of the product's topics.
pub fn topic(name: &str) -> Topic {
    match name {
        TRANSACTIONS_TOPIC => Cow::Borrowed(TRANSACTIONS_TOPIC),
        FRAUD_SIGNALS_TOPIC => Cow::Borrowed(FRAUD_SIGNALS_TOPIC),
        other => Cow::Owned(other.to_string()),
    }
}

fn de_topic<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Topic, D::Error> {
    let s = <Cow<'de, str>>::deserialize(d)?;
    Ok(topic(&s))
}

/// Where a streamed fact comes from, in the order that decides which of two facts is newer:
/// event time (ms), then topic, partition and offset. Two deliveries of the same Kafka record
/// have the same version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordVersion {
    /// The fact's event time, ms since the epoch (a transaction's event time, a signal's
    /// inference time).
    pub event_ms: i64,
    /// The Kafka topic the record came from.
    #[serde(deserialize_with = "de_topic")]
    pub topic: Topic,
    /// The topic partition of the record.
    pub partition: i32,
    /// The record's offset in its partition.
    pub offset: i64,
}

impl fmt::Display for RecordVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}/{}/{}",
            self.event_ms, self.topic, self.partition, self.offset
        )
    }
}

/// Version of an item's streaming state: the versions of its transaction and fraud-signal
/// sides. `a.covers(b)` when `a` is at least as new as `b` on both sides; writes must cover
/// what they replace, so the version is monotonic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamVersion {
    /// Version of the transaction side; `None` before any transaction record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<RecordVersion>,
    /// Version of the fraud-signal side; `None` before any signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<RecordVersion>,
}

impl StreamVersion {
    /// At least as new as `other` on both sides (`None` is older than any version).
    pub fn covers(&self, other: &StreamVersion) -> bool {
        self.transaction >= other.transaction && self.signal >= other.signal
    }
}

/// The transaction side of an item: the newest transaction record, user id tokenized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnState {
    /// The record this state comes from.
    pub version: RecordVersion,
    /// The merchant paid.
    #[serde(serialize_with = "fast::id")]
    pub merchant_id: MerchantId,
    /// `PiiKey::tokenize` of the user id; the raw id is never stored.
    pub user_token: String,
    /// The amount in `currency`, exact (stored as a decimal string).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// The transaction's currency.
    #[serde(serialize_with = "fast::code")]
    pub currency: Currency,
    /// The status the newest record reports.
    #[serde(serialize_with = "fast::code")]
    pub status: TxnStatus,
    /// When the payment event happened (UTC).
    #[serde(serialize_with = "fast::time")]
    pub event_time: DateTime<Utc>,
    /// UTC date of `event_time`: the sort key of both GSIs.
    #[serde(serialize_with = "fast::day")]
    pub txn_day: BusinessDate,
    /// How the user paid.
    #[serde(serialize_with = "fast::code")]
    pub payment_method: PaymentMethod,
    /// For a refund or chargeback, the transaction it reverses.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "fast::opt_id"
    )]
    pub original_transaction_id: Option<TransactionId>,
}

impl TxnState {
    /// The UTC clock hour of the event (hours since the epoch), the VELOCITY window.
    pub fn hour(&self) -> i64 {
        self.event_time.timestamp().div_euclid(3600)
    }
}

/// The fraud-signal side of an item: the newest signal (by inference time) for the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalState {
    /// The record this state comes from.
    pub version: RecordVersion,
    /// The signal's id.
    #[serde(serialize_with = "fast::id")]
    pub fraud_signal_id: FraudSignalId,
    /// Probability of fraud in [0, 1], exact to the model's precision.
    #[serde(with = "rust_decimal::serde::str")]
    pub fraud_score: Decimal,
    /// The model that produced the score.
    pub model_version: String,
    /// When the model scored the transaction (UTC).
    #[serde(serialize_with = "fast::time")]
    pub inference_time: DateTime<Utc>,
    /// The model's reason for the score, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

/// Merchant dimension copied onto the item at enrichment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantInfo {
    /// The merchant's display name.
    pub merchant_name: String,
    /// The merchant category (AML policies and fee rules select by it).
    pub category: String,
    /// ISO 3166-1 alpha-2 country, upper case (REGIONAL_LIMIT selects by it).
    pub country: String,
    /// The merchant's risk level from the dimension.
    #[serde(serialize_with = "fast::code")]
    pub risk_level: RiskLevel,
}

/// A policy (or data-quality) flag raised on a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PolicyFlag {
    /// The merchant's category is screened by an AML policy.
    Aml,
    /// The merchant is barred.
    Blacklist,
    /// The payment is at or above a KYC threshold.
    Kyc,
    /// The payment is above the per-payment maximum of the merchant's country.
    RegionalLimit,
    /// The user made more payments in one UTC clock hour than the VELOCITY policy allows.
    Velocity,
    /// The merchant is not in `config/merchants.jsonl`.
    UnknownMerchant,
}

impl PolicyFlag {
    /// The flag's code (`REGIONAL_LIMIT`).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyFlag::Aml => "AML",
            PolicyFlag::Blacklist => "BLACKLIST",
            PolicyFlag::Kyc => "KYC",
            PolicyFlag::RegionalLimit => "REGIONAL_LIMIT",
            PolicyFlag::Velocity => "VELOCITY",
            PolicyFlag::UnknownMerchant => "UNKNOWN_MERCHANT",
        }
    }
}

impl PolicyFlag {
    /// Every flag, in code order.
    pub const ALL: &'static [PolicyFlag] = &[
        PolicyFlag::Aml,
        PolicyFlag::Blacklist,
        PolicyFlag::Kyc,
        PolicyFlag::RegionalLimit,
        PolicyFlag::Velocity,
        PolicyFlag::UnknownMerchant,
    ];
}

impl std::str::FromStr for PolicyFlag {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PolicyFlag::ALL
            .iter()
            .find(|f| f.as_str() == s)
            .copied()
            .ok_or_else(|| Error::InvalidEnum {
                field: "policy_flags",
                value: s.chars().take(32).collect(),
                expected: "AML BLACKLIST KYC REGIONAL_LIMIT VELOCITY UNKNOWN_MERCHANT",
            })
    }
}

/// Policy flags as one text, `|`-joined, `None` when there is none: how the final index
/// stores them (serde `with` module for a `Vec<PolicyFlag>` of that form).
pub mod joined_flags {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::PolicyFlag;

    /// `AML|KYC`, or `None` for no flag.
    pub fn text(flags: &[PolicyFlag]) -> Option<String> {
        (!flags.is_empty()).then(|| {
            flags
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join("|")
        })
    }

    /// Serializes as [`text`].
    pub fn serialize<S: Serializer>(flags: &[PolicyFlag], s: S) -> Result<S::Ok, S::Error> {
        text(flags).serialize(s)
    }

    /// Reads `AML|KYC` (or null) back; an unknown flag fails.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PolicyFlag>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(t) => t
                .split('|')
                .map(|f| f.parse().map_err(serde::de::Error::custom))
                .collect(),
            None => Ok(Vec::new()),
        }
    }
}

impl fmt::Display for PolicyFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The compliance label of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RiskLabel {
    /// A fraud score above the threshold or a high-risk flag (BLACKLIST by default).
    HighRisk,
    /// A KYC flag, and not high risk.
    RequiresKyc,
    /// Neither.
    Ok,
}

impl RiskLabel {
    /// The label's code (`HIGH_RISK`).
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLabel::HighRisk => "HIGH_RISK",
            RiskLabel::RequiresKyc => "REQUIRES_KYC",
            RiskLabel::Ok => "OK",
        }
    }
}

impl std::str::FromStr for RiskLabel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        [RiskLabel::HighRisk, RiskLabel::RequiresKyc, RiskLabel::Ok]
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| Error::InvalidEnum {
                field: "risk_label",
                value: s.chars().take(32).collect(),
                expected: "HIGH_RISK REQUIRES_KYC OK",
            })
    }
}

impl fmt::Display for RiskLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn ser_merchant<S: serde::Serializer>(
    m: &Option<Arc<MerchantInfo>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    m.as_deref().serialize(s)
}

fn de_merchant<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Arc<MerchantInfo>>, D::Error> {
    Ok(Option::<MerchantInfo>::deserialize(d)?.map(Arc::new))
}

/// What enrichment adds to an item that has a transaction side: a function of the two sides,
/// the configuration, and (for VELOCITY) the user's other payments in the same hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derived {
    /// The merchant dimension (shared with the enrichment context in memory).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_merchant",
        deserialize_with = "de_merchant"
    )]
    pub merchant: Option<Arc<MerchantInfo>>,
    /// Sorted, without repeats.
    pub policy_flags: Vec<PolicyFlag>,
    /// The label from the fraud score and the flags.
    pub risk_label: RiskLabel,
}

impl Derived {
    /// Whether `flag` is raised.
    pub fn has(&self, flag: PolicyFlag) -> bool {
        self.policy_flags.contains(&flag)
    }
}

/// How a close settled a transaction and the break it had (design.md §11): what the final
/// index and `GET /transactions/{id}` say beside the status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementDetail {
    /// Business date of the close whose statement settled it; `None` while unsettled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_on: Option<NaiveDate>,
    /// The statement lines that settled it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statement_ids: Vec<String>,
    /// How the match was found (`NONE` while unmatched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_rule: Option<MatchRule>,
    /// 1 for an exact-id match, lower for composite and group matches, 0 unmatched.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub confidence: Option<Decimal>,
    /// The break the transaction has or had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_id: Option<String>,
    /// The close that first saw the break.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<NaiveDate>,
    /// Business days the break has been open, as of the close that last decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i32>,
    /// The close that resolved the break.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_on: Option<NaiveDate>,
    /// Where the break stands (open, resolved by the engine or by a person: design.md §12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_status: Option<crate::records::BreakStatus>,
}

impl SettlementDetail {
    /// Whether nothing is known (a settlement written before the close kept details).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Settlement fields written back by the daily close (not part of the stream version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// Whether and how the bank settled the transaction.
    #[serde(serialize_with = "fast::code")]
    pub settlement_status: SettlementStatus,
    /// The reconciliation outcome.
    #[serde(serialize_with = "fast::code")]
    pub reconciled_status: ReconciledStatus,
    /// The kind of break, NONE when there is none.
    #[serde(serialize_with = "fast::code")]
    pub mismatch_type: MismatchType,
    /// `amount_posted − expected amount`, in `statement_currency`.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub discrepancy: Option<Decimal>,
    /// The currency of the bank statement.
    #[serde(serialize_with = "fast::code")]
    pub statement_currency: Currency,
    /// When the close that settled it ran (UTC); its close date is the day before.
    #[serde(serialize_with = "fast::time")]
    pub reconciliation_timestamp: DateTime<Utc>,
    /// The business date whose final index holds the transaction's row (its own date: a
    /// later close may have settled it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_date: Option<BusinessDate>,
    /// The match and the break.
    #[serde(default, skip_serializing_if = "SettlementDetail::is_empty")]
    pub detail: SettlementDetail,
}

/// One item of the TransactionIndex, keyed by `transaction_id`.
///
/// An item with a signal and no transaction is a *pending signal*: the signal arrived first
/// and waits for its transaction. Items without a transaction are in neither GSI and are not
/// served by the query API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexItem {
    /// The key of the item.
    #[serde(serialize_with = "fast::id")]
    pub transaction_id: TransactionId,
    /// The transaction side; `None` for a pending signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<TxnState>,
    /// The fraud-signal side; `None` until a signal arrives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<SignalState>,
    /// The enrichment; present when the item has a transaction side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived: Option<Derived>,
    /// Boxed: most items have none while they stream, and items are moved a lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<Box<Settlement>>,
}

impl IndexItem {
    /// An item of `transaction_id` with nothing on it yet.
    pub fn empty(transaction_id: TransactionId) -> Self {
        Self {
            transaction_id,
            txn: None,
            signal: None,
            derived: None,
            settlement: None,
        }
    }

    /// The stream version of the item: the versions of its two sides.
    pub fn version(&self) -> StreamVersion {
        StreamVersion {
            transaction: self.txn.as_ref().map(|t| t.version.clone()),
            signal: self.signal.as_ref().map(|s| s.version.clone()),
        }
    }

    /// The `by_user` GSI key, when the item has a transaction.
    pub fn by_user_key(&self) -> Option<(&str, BusinessDate)> {
        self.txn
            .as_ref()
            .map(|t| (t.user_token.as_str(), t.txn_day))
    }

    /// The `by_merchant` GSI key, when the item has a transaction.
    pub fn by_merchant_key(&self) -> Option<(&MerchantId, BusinessDate)> {
        self.txn.as_ref().map(|t| (&t.merchant_id, t.txn_day))
    }

    /// The VELOCITY window the item counts in: (user token, UTC hour).
    pub fn user_hour(&self) -> Option<(&str, i64)> {
        self.txn.as_ref().map(|t| (t.user_token.as_str(), t.hour()))
    }

    /// The item's risk label; `None` without enrichment.
    pub fn risk_label(&self) -> Option<RiskLabel> {
        self.derived.as_ref().map(|d| d.risk_label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    fn v(ms: i64, offset: i64) -> RecordVersion {
        RecordVersion {
            event_ms: ms,
            topic: topic(TRANSACTIONS_TOPIC),
            partition: 0,
            offset,
        }
    }

    #[test]
    fn the_fast_serializers_write_what_the_domain_types_read() -> Result<()> {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(serialize_with = "fast::time")]
            t: DateTime<Utc>,
            #[serde(serialize_with = "fast::day")]
            d: BusinessDate,
            #[serde(serialize_with = "fast::code")]
            c: Currency,
            #[serde(serialize_with = "fast::code")]
            s: TxnStatus,
            #[serde(serialize_with = "fast::opt_id")]
            o: Option<TransactionId>,
        }
        for (ms, nanos) in [
            (1_795_165_205_000i64, 0u32),
            (1_795_165_205_123, 0),
            (0, 0),
            (5, 7),
        ] {
            let t = DateTime::from_timestamp_millis(ms)
                .and_then(|t| t.with_nanosecond(t.timestamp_subsec_nanos() + nanos))
                .ok_or_else(|| Error::Invariant("t".into()))?;
            let v = T {
                t,
                d: BusinessDate::parse("2026-01-09")?,
                c: Currency::new("JPY")?,
                s: TxnStatus::Chargeback,
                o: Some(TransactionId::new("TX-1")?),
            };
            let json = serde_json::to_string(&v)?;
            assert_eq!(serde_json::from_str::<T>(&json)?, v, "{json}");
        }
        Ok(())
    }

    #[test]
    fn versions_order_by_event_time_then_position() {
        assert!(v(1, 9) < v(2, 0));
        assert!(v(2, 0) < v(2, 1));
        let a = StreamVersion {
            transaction: Some(v(2, 0)),
            signal: None,
        };
        let b = StreamVersion {
            transaction: Some(v(1, 0)),
            signal: Some(v(5, 0)),
        };
        assert!(!a.covers(&b) && !b.covers(&a));
        assert!(a.covers(&StreamVersion::default()));
        assert!(a.covers(&a));
    }
}
