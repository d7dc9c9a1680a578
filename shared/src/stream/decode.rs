//! Decoding and validation of Kafka records into facts, and their masked archive form.
//!
//! A record that cannot be used becomes a [`Rejection`] with a reason that names the field and
//! the rule, never the value (a value may hold a user id). The raw user id is turned into its
//! token here and dropped.

use std::borrow::Cow;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::Error;
use crate::ids::{BusinessDate, FraudSignalId, MerchantId, TransactionId, UserId};
use crate::index_item::{
    FRAUD_SIGNALS_TOPIC, RecordVersion, SignalState, TRANSACTIONS_TOPIC, TxnState, topic,
};
use crate::manifest::sha256_hex;
use crate::money::{Currency, parse_decimal, within_amount_limit};
use crate::pii::{PiiKey, Tokenizer, is_token};
use crate::records::{PaymentMethod, TxnStatus};

/// One Kafka record as the MSK event carries it (key and value base64-encoded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaRecordIn {
    /// The Kafka topic (transactions or fraud signals).
    pub topic: String,
    /// The topic partition the record was read from.
    pub partition: i32,
    /// The record's offset in its partition; with the topic and partition it names the record.
    pub offset: i64,
    /// Broker timestamp (ms since the epoch); decides the archive's `date=`.
    pub timestamp_ms: i64,
    /// The record key, base64; `None` when the record has none.
    pub key: Option<String>,
    /// The record value (the JSON payload), base64; `None` for a tombstone.
    pub value: Option<String>,
}

/// A valid record, keyed by the transaction it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A transaction event of the transactions topic.
    Txn {
        /// The transaction the event is about.
        id: TransactionId,
        /// The transaction's state as the event gives it.
        state: TxnState,
    },
    /// A fraud score of the fraud signals topic.
    Signal {
        /// The transaction the score is for.
        id: TransactionId,
        /// The score as the index keeps it.
        state: SignalState,
    },
}

impl Fact {
    /// The transaction the record is about: the key of its TransactionIndex item.
    pub fn id(&self) -> &TransactionId {
        match self {
            Fact::Txn { id, .. } | Fact::Signal { id, .. } => id,
        }
    }
}

/// Why a record was not indexed: a sentence naming the field and rule, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection(pub String);

impl Rejection {
    fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

type Decoded<T> = std::result::Result<T, Rejection>;

#[derive(Deserialize)]
struct TxnIn<'a> {
    #[serde(borrow)]
    transaction_id: Cow<'a, str>,
    #[serde(borrow)]
    merchant_id: Cow<'a, str>,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    amount: Cow<'a, str>,
    #[serde(borrow)]
    currency: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    event_time: Cow<'a, str>,
    #[serde(borrow)]
    payment_method: Cow<'a, str>,
    #[serde(borrow, default)]
    original_transaction_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct SignalIn<'a> {
    #[serde(borrow)]
    fraud_signal_id: Cow<'a, str>,
    #[serde(borrow)]
    transaction_id: Cow<'a, str>,
    #[serde(borrow)]
    fraud_score: Cow<'a, str>,
    #[serde(borrow)]
    model_version: Cow<'a, str>,
    #[serde(borrow)]
    inference_time: Cow<'a, str>,
    #[serde(borrow, default)]
    reason_code: Option<Cow<'a, str>>,
}

/// The reason of an id error, without the value.
fn id<T: FromStr<Err = Error>>(field: &str, value: &str) -> Decoded<T> {
    value.parse().map_err(|e| match e {
        Error::InvalidId { reason, .. } => Rejection(format!("{field} is invalid: {reason}")),
        _ => Rejection(format!("{field} is invalid")),
    })
}

fn enumerated<T: FromStr<Err = Error>>(field: &str, value: &str) -> Decoded<T> {
    value.parse().map_err(|e| match e {
        Error::InvalidEnum { expected, .. } => {
            Rejection(format!("{field} must be one of {}", expected.trim_end()))
        }
        _ => Rejection(format!("{field} is invalid")),
    })
}

fn timestamp(field: &str, value: &str) -> Decoded<(DateTime<Utc>, BusinessDate)> {
    let t = DateTime::parse_from_rfc3339(value)
        .map_err(|_| Rejection(format!("{field} is not an RFC 3339 timestamp")))?
        .with_timezone(&Utc);
    let day = BusinessDate::from_date(t.date_naive())
        .map_err(|_| Rejection(format!("{field} is outside the years 1970..=9999")))?;
    Ok((t, day))
}

fn short_text(field: &str, value: &str) -> Decoded<String> {
    if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
        return Err(Rejection(format!(
            "{field} must be 1 to 64 characters without control characters"
        )));
    }
    Ok(value.to_string())
}

/// A safe sentence for a JSON error: `missing field` names our schema; other messages may quote
/// the value, so only the position is kept.
fn json_reason(e: &serde_json::Error) -> Rejection {
    use serde_json::error::Category;
    let msg = e.to_string();
    match e.classify() {
        // Both name a field of our schema.
        Category::Data
            if msg.starts_with("missing field") || msg.starts_with("duplicate field") =>
        {
            Rejection(
                msg.split(" at line")
                    .next()
                    .unwrap_or("missing or duplicated field")
                    .to_string(),
            )
        }
        // "invalid type: floating point `10.5`, expected a string": the kinds, not the value.
        Category::Data if msg.starts_with("invalid type: ") => {
            let body = msg.rsplit_once(" at line").map_or(msg.as_str(), |(b, _)| b);
            let found = body
                .trim_start_matches("invalid type: ")
                .split(['`', '"', ','])
                .next()
                .unwrap_or_default()
                .trim();
            let expected = body.rsplit_once(", expected ").map_or("", |(_, x)| x);
            Rejection(format!(
                "a field has the wrong type: {found} where {expected} is expected (column {}); amounts and scores are JSON strings",
                e.column()
            ))
        }
        Category::Data => Rejection(format!(
            "a field has the wrong type or value (column {})",
            e.column()
        )),
        Category::Eof => Rejection("value is truncated JSON".into()),
        Category::Syntax | Category::Io => {
            Rejection(format!("value is not valid JSON (column {})", e.column()))
        }
    }
}

fn user_token(pii: &Tokenizer, raw: &str) -> Decoded<String> {
    if is_token(raw) {
        // Already tokenized (a replay of the archive, or a producer that tokenizes).
        return Ok(raw.to_string());
    }
    let user = UserId::new(raw).map_err(|e| match e {
        Error::InvalidId { reason, .. } => Rejection(format!("user_id is invalid: {reason}")),
        _ => Rejection::new("user_id is invalid"),
    })?;
    Ok(pii.tokenize(&user))
}

fn decode_txn(pii: &Tokenizer, bytes: &[u8], at: (&str, i32, i64)) -> Decoded<Fact> {
    let v: TxnIn<'_> = serde_json::from_slice(bytes).map_err(|e| json_reason(&e))?;
    let transaction_id: TransactionId = id("transaction_id", &v.transaction_id)?;
    let merchant_id: MerchantId = id("merchant_id", &v.merchant_id)?;
    let currency = Currency::new(&v.currency)
        .map_err(|_| Rejection::new("currency is not an active ISO 4217 code"))?;
    let amount = parse_decimal(&v.amount, '.')
        .map_err(|_| Rejection::new("amount is not a decimal number"))?;
    let amount = currency.exact(amount).map_err(|_| {
        Rejection(format!(
            "amount has more decimal places than {currency} allows"
        ))
    })?;
    if amount <= Decimal::ZERO {
        return Err(Rejection::new("amount must be positive"));
    }
    // The batch path's bound: what the money columns (and the close) can hold.
    if !within_amount_limit(amount) {
        return Err(Rejection::new(
            "amount exceeds the largest storable amount (below 10^14)",
        ));
    }
    let status: TxnStatus = enumerated("status", &v.status)?;
    let payment_method: PaymentMethod = enumerated("payment_method", &v.payment_method)?;
    let (event_time, txn_day) = timestamp("event_time", &v.event_time)?;
    let original_transaction_id = v
        .original_transaction_id
        .as_deref()
        .map(|o| id::<TransactionId>("original_transaction_id", o))
        .transpose()?;
    let user_token = user_token(pii, &v.user_id)?;
    Ok(Fact::Txn {
        id: transaction_id,
        state: TxnState {
            version: RecordVersion {
                event_ms: event_time.timestamp_millis(),
                topic: topic(at.0),
                partition: at.1,
                offset: at.2,
            },
            merchant_id,
            user_token,
            amount,
            currency,
            status,
            event_time,
            txn_day,
            payment_method,
            original_transaction_id,
        },
    })
}

fn decode_signal(bytes: &[u8], at: (&str, i32, i64)) -> Decoded<Fact> {
    let v: SignalIn<'_> = serde_json::from_slice(bytes).map_err(|e| json_reason(&e))?;
    let transaction_id: TransactionId = id("transaction_id", &v.transaction_id)?;
    let fraud_signal_id: FraudSignalId = id("fraud_signal_id", &v.fraud_signal_id)?;
    let fraud_score = parse_decimal(&v.fraud_score, '.')
        .map_err(|_| Rejection::new("fraud_score is not a decimal number"))?;
    if fraud_score < Decimal::ZERO || fraud_score > Decimal::ONE {
        return Err(Rejection::new("fraud_score must be within 0..=1"));
    }
    // Kept exactly: more places than the ratio columns hold would fail the close's write.
    if fraud_score.normalize().scale() > crate::columnar::RATIO_SCALE.unsigned_abs().into() {
        return Err(Rejection(format!(
            "fraud_score has more than {} decimal places",
            crate::columnar::RATIO_SCALE
        )));
    }
    let (inference_time, _) = timestamp("inference_time", &v.inference_time)?;
    let model_version = short_text("model_version", &v.model_version)?;
    let reason_code = v
        .reason_code
        .as_deref()
        .map(|r| short_text("reason_code", r))
        .transpose()?;
    Ok(Fact::Signal {
        id: transaction_id,
        state: SignalState {
            version: RecordVersion {
                event_ms: inference_time.timestamp_millis(),
                topic: topic(at.0),
                partition: at.1,
                offset: at.2,
            },
            fraud_signal_id,
            fraud_score: fraud_score.normalize(),
            model_version,
            inference_time,
            reason_code,
        },
    })
}

fn value_bytes(rec: &KafkaRecordIn) -> Decoded<Vec<u8>> {
    let Some(value) = &rec.value else {
        return Err(Rejection::new("record has no value"));
    };
    STANDARD
        .decode(value.as_bytes())
        .map_err(|_| Rejection::new("value is not base64"))
}

/// Decodes and validates one record (`pii`: [`PiiKey::tokenizer`]).
pub fn decode(rec: &KafkaRecordIn, pii: &Tokenizer) -> Decoded<Fact> {
    let at = (rec.topic.as_str(), rec.partition, rec.offset);
    match rec.topic.as_str() {
        TRANSACTIONS_TOPIC => decode_txn(pii, &value_bytes(rec)?, at),
        FRAUD_SIGNALS_TOPIC => decode_signal(&value_bytes(rec)?, at),
        _ => Err(Rejection::new(
            "unknown topic (expected transactions_topic or fraud_signals_topic)",
        )),
    }
}

/// The transaction value as archived: the canonical record with the user token in `user_id`
/// (the decoder takes tokens as they are, so the archive can be replayed).
#[derive(Serialize)]
struct TxnOut<'a> {
    transaction_id: &'a TransactionId,
    merchant_id: &'a MerchantId,
    user_id: &'a str,
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: Currency,
    status: TxnStatus,
    event_time: DateTime<Utc>,
    payment_method: PaymentMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_transaction_id: &'a Option<TransactionId>,
}

#[derive(Serialize)]
struct SignalOut<'a> {
    fraud_signal_id: &'a FraudSignalId,
    transaction_id: &'a TransactionId,
    #[serde(with = "rust_decimal::serde::str")]
    fraud_score: Decimal,
    model_version: &'a str,
    inference_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason_code: &'a Option<String>,
}

/// Canonical fields of a transaction value, in archive order.
const TXN_FIELDS: &[&str] = &[
    "transaction_id",
    "merchant_id",
    "user_id",
    "amount",
    "currency",
    "status",
    "event_time",
    "payment_method",
    "original_transaction_id",
];

/// Canonical fields of a fraud signal value, in archive order.
const SIGNAL_FIELDS: &[&str] = &[
    "fraud_signal_id",
    "transaction_id",
    "fraud_score",
    "model_version",
    "inference_time",
    "reason_code",
];

const MASKED: &str = "\"<masked>\"";

/// A rejected value as archived: only the topic's canonical fields, each as written (numbers
/// exact), `user_id` tokenized (`<masked>` when it is not a valid id), and any value holding
/// the raw user id masked. Fields the schema does not know are dropped (free text, card
/// numbers, e-mail addresses…). `None` when the value is not one JSON object with unique keys
/// or the topic is unknown.
fn canonical_rejected(topic: &str, bytes: &[u8], pii: &PiiKey) -> Option<Box<RawValue>> {
    let fields = match topic {
        TRANSACTIONS_TOPIC => TXN_FIELDS,
        FRAUD_SIGNALS_TOPIC => SIGNAL_FIELDS,
        _ => return None,
    };
    let object = crate::exact_json::Object::parse(std::str::from_utf8(bytes).ok()?).ok()?;
    let raw_user = object
        .get("user_id")
        .and_then(|u| u.text())
        .filter(|u| !u.is_empty() && !is_token(u));
    let mut out = String::from("{");
    for name in fields {
        let Some(member) = object.get(name) else {
            continue;
        };
        if out.len() > 1 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        let text = member.text();
        let value = match (*name, text.as_deref()) {
            ("user_id", Some(u)) if is_token(u) => serde_json::to_string(u).ok(),
            ("user_id", Some(u)) => UserId::new(u)
                .ok()
                .and_then(|u| serde_json::to_string(&pii.tokenize(&u)).ok()),
            ("user_id", None) => None,
            // Nothing the schema expects is an object or array.
            _ if member.object().is_some() || member.json().starts_with('[') => None,
            (_, Some(t)) if raw_user.as_deref().is_some_and(|u| t.contains(u)) => None,
            _ => Some(member.json().to_string()),
        };
        out.push_str(value.as_deref().unwrap_or(MASKED));
    }
    out.push('}');
    RawValue::from_string(out).ok()
}

/// The archive line of a rejected record.
#[derive(Serialize)]
struct RejectedOut<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_bytes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_sha256: Option<String>,
    reason: &'a str,
}

#[derive(Serialize)]
struct LineOut<'a, V: Serialize> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_sha256: Option<String>,
    value: V,
}

/// The archive line of a record: its coordinates, its value (canonical when valid; when
/// rejected, its canonical fields with the user tokenized and nothing else — see
/// [`canonical_rejected`] — or only size and SHA-256 when that cannot be read), and the
/// rejection reason. The key is kept when it is the transaction id; anything else only as a
/// hash.
pub fn archive_line(
    rec: &KafkaRecordIn,
    decoded: &Decoded<Fact>,
    pii: &PiiKey,
) -> crate::error::Result<String> {
    let key = rec
        .key
        .as_deref()
        .and_then(|k| STANDARD.decode(k.as_bytes()).ok());
    let line = |id: &'_ str| {
        let same = key.as_deref() == Some(id.as_bytes());
        (
            same.then_some(()),
            key.as_ref().filter(|_| !same).map(|k| sha256_hex(k)),
        )
    };
    match decoded {
        Ok(Fact::Txn { id, state }) => {
            let (same, key_sha256) = line(id.as_str());
            return Ok(serde_json::to_string(&LineOut {
                topic: &rec.topic,
                partition: rec.partition,
                offset: rec.offset,
                timestamp: rec.timestamp_ms,
                key: same.map(|_| id.as_str()),
                key_sha256,
                value: TxnOut {
                    transaction_id: id,
                    merchant_id: &state.merchant_id,
                    user_id: &state.user_token,
                    amount: state.amount,
                    currency: state.currency,
                    status: state.status,
                    event_time: state.event_time,
                    payment_method: state.payment_method,
                    original_transaction_id: &state.original_transaction_id,
                },
            })?);
        }
        Ok(Fact::Signal { id, state }) => {
            let (same, key_sha256) = line(id.as_str());
            return Ok(serde_json::to_string(&LineOut {
                topic: &rec.topic,
                partition: rec.partition,
                offset: rec.offset,
                timestamp: rec.timestamp_ms,
                key: same.map(|_| id.as_str()),
                key_sha256,
                value: SignalOut {
                    fraud_signal_id: &state.fraud_signal_id,
                    transaction_id: id,
                    fraud_score: state.fraud_score,
                    model_version: &state.model_version,
                    inference_time: state.inference_time,
                    reason_code: &state.reason_code,
                },
            })?);
        }
        Err(_) => {}
    }
    let reason = match decoded {
        Err(reason) => reason.0.as_str(),
        Ok(_) => "",
    };
    let bytes = value_bytes(rec).ok();
    let value = bytes
        .as_deref()
        .and_then(|b| canonical_rejected(&rec.topic, b, pii));
    // The key is kept when it is the (valid) transaction id the value names.
    let id = value.as_ref().and_then(|v| {
        #[derive(Deserialize)]
        struct Id<'a> {
            #[serde(borrow)]
            transaction_id: Option<Cow<'a, str>>,
        }
        serde_json::from_str::<Id<'_>>(v.get())
            .ok()?
            .transaction_id
            .filter(|t| TransactionId::new(t.as_ref()).is_ok())
            .map(Cow::into_owned)
    });
    let same = id
        .as_deref()
        .filter(|id| key.as_deref() == Some(id.as_bytes()));
    let (value_len, value_sha256) = match (&value, &bytes) {
        (None, Some(b)) => (Some(b.len()), Some(sha256_hex(b))),
        _ => (None, None),
    };
    Ok(serde_json::to_string(&RejectedOut {
        topic: &rec.topic,
        partition: rec.partition,
        offset: rec.offset,
        timestamp: rec.timestamp_ms,
        key: same,
        key_sha256: key
            .as_ref()
            .filter(|_| same.is_none())
            .map(|k| sha256_hex(k)),
        value,
        value_bytes: value_len,
        value_sha256,
        reason,
    })?)
}

#[cfg(test)]
mod tests;
