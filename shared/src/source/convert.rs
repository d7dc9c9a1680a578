//! Canonical records from what the readers found: CSV and JSON lines fields converted per the
//! mapping (amount units, signs, date formats, zones), fixed-layout entries already typed.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::fields::Fields;
use super::{AmountUnit, ParseContext, SignConvention, SourceMapping};
use crate::error::Error;
use crate::formats::{self, Entry};
use crate::ids::{BankId, BusinessDate, MerchantId, StatementId, TransactionId, UserId};
use crate::money::Currency;
use crate::records::{RecordType, StatementLine, Transaction};
use crate::reject::{FieldError, RejectReason, ferr};

fn id<T: std::str::FromStr<Err = Error>>(v: &str) -> std::result::Result<T, FieldError> {
    v.parse()
        .map_err(|e: Error| ferr(RejectReason::InvalidId, e.to_string()))
}

fn currency(v: &str) -> std::result::Result<Currency, FieldError> {
    Currency::new(v).map_err(|e| ferr(RejectReason::UnknownCurrency, e.to_string()))
}

fn enum_value<T: std::str::FromStr<Err = Error>>(v: &str) -> std::result::Result<T, FieldError> {
    v.parse()
        .map_err(|e: Error| ferr(RejectReason::InvalidEnum, e.to_string()))
}

/// Parses an amount per the mapping, exact at the currency's minor unit.
fn amount(m: &SourceMapping, raw: &str, cur: Currency) -> std::result::Result<Decimal, FieldError> {
    let value = match m.amount_unit {
        AmountUnit::Minor => {
            let t = raw.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ferr(
                    RejectReason::InvalidAmount,
                    format!("`{t}` is not an integer amount in minor units"),
                ));
            }
            if digits.len() > 18 {
                return Err(ferr(
                    RejectReason::AmountOverflow,
                    format!("`{t}` has too many digits"),
                ));
            }
            let minor: i64 = t
                .parse()
                .map_err(|_| ferr(RejectReason::AmountOverflow, format!("`{t}` overflows")))?;
            cur.from_minor(minor)
        }
        AmountUnit::Major => return formats::amount(raw, m.decimal_separator, cur),
    };
    formats::limited(value)
}

fn apply_sign(
    m: &SourceMapping,
    value: Decimal,
    f: &Fields<'_>,
) -> std::result::Result<Decimal, FieldError> {
    match m.sign_convention {
        SignConvention::Signed => Ok(value),
        SignConvention::Inverted => Ok(-value),
        SignConvention::DebitCreditColumn => {
            if value.is_sign_negative() && !value.is_zero() {
                return Err(ferr(
                    RejectReason::InvalidAmount,
                    "amount must be unsigned with a direction column",
                ));
            }
            match f.req("direction")?.to_ascii_uppercase().as_str() {
                "C" | "CR" | "CRDT" => Ok(value),
                "D" | "DR" | "DBIT" => Ok(-value),
                other => Err(ferr(
                    RejectReason::InvalidEnum,
                    format!("direction `{other}` is not C/CRDT or D/DBIT"),
                )),
            }
        }
    }
}

/// A date field: a calendar date in the mapping's format, or a timestamp whose local date in
/// the source's zone is taken.
fn local_date(m: &SourceMapping, tz: Tz, raw: &str) -> std::result::Result<NaiveDate, FieldError> {
    let t = raw.trim();
    if m.date_format == "%Y-%m-%d" && t.len() == 10 {
        return BusinessDate::parse(t)
            .map(BusinessDate::date)
            .map_err(|e| ferr(RejectReason::InvalidDate, e.to_string()));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, &m.date_format) {
        return BusinessDate::from_date(d)
            .map(BusinessDate::date)
            .map_err(|e| ferr(RejectReason::InvalidDate, e.to_string()));
    }
    if t.len() > 10 {
        let ts = timestamp(m, tz, t).map_err(|e| ferr(RejectReason::InvalidDate, e.detail))?;
        return Ok(ts.with_timezone(&tz).date_naive());
    }
    Err(ferr(
        RejectReason::InvalidDate,
        format!("`{t}` is not a date in format {}", m.date_format),
    ))
}

/// A timestamp field in UTC. Without `timestamp_format`, RFC 3339 with an offset is required;
/// with a zone-less format the source's time zone applies (earliest instant when ambiguous).
fn timestamp(
    m: &SourceMapping,
    tz: Tz,
    raw: &str,
) -> std::result::Result<DateTime<Utc>, FieldError> {
    let t = raw.trim();
    match &m.timestamp_format {
        None => DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                if NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
                    || NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").is_ok()
                {
                    ferr(
                        RejectReason::TimestampWithoutZone,
                        format!("`{t}` has no UTC offset"),
                    )
                } else {
                    ferr(
                        RejectReason::InvalidTimestamp,
                        format!("`{t}` is not an RFC 3339 timestamp"),
                    )
                }
            }),
        Some(fmt) if fmt.contains("%z") || fmt.contains("%:z") || fmt.contains("%#z") => {
            DateTime::parse_from_str(t, fmt)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|_| {
                    if NaiveDateTime::parse_from_str(
                        t,
                        &fmt.replace("%:z", "").replace("%#z", "").replace("%z", ""),
                    )
                    .is_ok()
                    {
                        ferr(
                            RejectReason::TimestampWithoutZone,
                            format!("`{t}` has no UTC offset"),
                        )
                    } else {
                        ferr(
                            RejectReason::InvalidTimestamp,
                            format!("`{t}` does not match {fmt}"),
                        )
                    }
                })
        }
        Some(fmt) => {
            let naive = NaiveDateTime::parse_from_str(t, fmt).map_err(|_| {
                ferr(
                    RejectReason::InvalidTimestamp,
                    format!("`{t}` does not match {fmt}"),
                )
            })?;
            match tz.from_local_datetime(&naive) {
                LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => Ok(d.with_timezone(&Utc)),
                LocalResult::None => Err(ferr(
                    RejectReason::InvalidTimestamp,
                    format!("`{t}` does not exist in {}", m.timezone),
                )),
            }
        }
    }
}

/// The bank a statement mapping stands for.
fn mapping_bank(m: &SourceMapping) -> std::result::Result<BankId, FieldError> {
    m.bank_id
        .clone()
        .ok_or_else(|| ferr(RejectReason::MissingField, "mapping has no bank_id"))
}

/// A row's currency: its `currency` field, or the mapping's default.
fn row_currency(m: &SourceMapping, f: &Fields<'_>) -> std::result::Result<Currency, FieldError> {
    match f.opt("currency") {
        Some(c) => currency(c),
        None => m.default_currency.ok_or_else(|| {
            ferr(
                RejectReason::MissingField,
                "`currency` is empty and no default",
            )
        }),
    }
}

pub(super) fn statement_line(
    ctx: &ParseContext<'_>,
    tz: Tz,
    f: &Fields<'_>,
) -> std::result::Result<StatementLine, FieldError> {
    let m = ctx.mapping;
    let bank_id = mapping_bank(m)?;
    let cur = row_currency(m, f)?;
    let settle = m.settlement_currency.unwrap_or(cur);
    let raw_amount = apply_sign(m, amount(m, f.req("amount_posted")?, cur)?, f)?;
    let fee = match f.opt("fee_charged") {
        Some(v) => amount(m, v, settle)?,
        None => settle.round(Decimal::ZERO),
    };
    let (amount_posted, original_amount, original_currency, fx_rate) = if cur == settle {
        (raw_amount, None, None, None)
    } else {
        let (converted, rate) = ctx
            .fx
            .convert(raw_amount, cur, settle, ctx.business_date)
            .map_err(|e| ferr(RejectReason::FxRateMissing, e.to_string()))?;
        (
            converted,
            Some(raw_amount),
            Some(cur),
            Some(rate.normalize()),
        )
    };
    Ok(StatementLine {
        statement_id: id::<StatementId>(f.req("statement_id")?)?,
        transaction_id: f
            .opt("transaction_id")
            .map(id::<TransactionId>)
            .transpose()?,
        bank_id,
        posting_date: BusinessDate::from_date(local_date(m, tz, f.req("posting_date")?)?)
            .map_err(|e| ferr(RejectReason::InvalidDate, e.to_string()))?,
        amount_posted,
        currency: settle,
        fee_charged: fee,
        merchant_id: f.opt("merchant_id").map(id::<MerchantId>).transpose()?,
        reference: f.opt("reference").unwrap_or_default().to_string(),
        record_type: f
            .opt("record_type")
            .map(|code| record_type(m, code))
            .transpose()?
            .flatten(),
        original_amount,
        original_currency,
        fx_rate,
    })
}

pub(super) fn transaction(
    ctx: &ParseContext<'_>,
    tz: Tz,
    f: &Fields<'_>,
) -> std::result::Result<Transaction, FieldError> {
    let m = ctx.mapping;
    let cur = row_currency(m, f)?;
    let value = apply_sign(m, amount(m, f.req("amount")?, cur)?, f)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(ferr(
            RejectReason::InvalidAmount,
            "transaction amounts must not be negative",
        ));
    }
    Ok(Transaction {
        transaction_id: id(f.req("transaction_id")?)?,
        merchant_id: id(f.req("merchant_id")?)?,
        // The reason only: the value is PII.
        user_id: f.req("user_id")?.parse::<UserId>().map_err(|e| match e {
            Error::InvalidId { kind, reason, .. } => {
                ferr(RejectReason::InvalidId, format!("invalid {kind}: {reason}"))
            }
            _ => ferr(RejectReason::InvalidId, "invalid user_id"),
        })?,
        amount: value,
        currency: cur,
        status: enum_value(f.req("status")?)?,
        event_time: timestamp(m, tz, f.req("event_time")?)?,
        payment_method: enum_value(f.req("payment_method")?)?,
        original_transaction_id: f.opt("original_transaction_id").map(id).transpose()?,
    })
}

/// A bank's transaction code as a record type: through the mapping's `transaction_codes`
/// (`"*"` for codes not listed that are no record type), else the record type it names.
fn record_type(
    m: &SourceMapping,
    code: &str,
) -> std::result::Result<Option<RecordType>, FieldError> {
    if let Some(t) = m.transaction_codes.get(code) {
        return Ok(*t);
    }
    match code.parse::<RecordType>() {
        Ok(t) => Ok(Some(t)),
        Err(e) => match m.transaction_codes.get("*") {
            Some(t) => Ok(*t),
            None => Err(ferr(RejectReason::InvalidEnum, e.to_string())),
        },
    }
}

fn present(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A statement line from a fixed-layout entry (the checks in the order of [`statement_line`]).
pub(super) fn entry_line(
    ctx: &ParseContext<'_>,
    e: Entry,
) -> std::result::Result<StatementLine, FieldError> {
    let m = ctx.mapping;
    let bank_id = mapping_bank(m)?;
    let cur = m.settlement_currency.ok_or_else(|| {
        ferr(
            RejectReason::MissingField,
            "mapping has no settlement_currency",
        )
    })?;
    let exact = |v: Decimal| {
        cur.exact(v)
            .map_err(|e| ferr(RejectReason::TooManyDecimals, e.to_string()))
            .and_then(formats::limited)
    };
    let amount_posted = exact(e.amount)?;
    let fee_charged = match e.fee? {
        Some(v) => exact(v)?,
        None => cur.round(Decimal::ZERO),
    };
    let statement_id = match present(Some(e.statement_id)) {
        Some(s) => id::<StatementId>(&s)?,
        None => {
            return Err(ferr(
                RejectReason::MissingField,
                "`statement_id` is empty or missing",
            ));
        }
    };
    let transaction_id = present(e.transaction_id)
        .map(|t| id::<TransactionId>(&t))
        .transpose()?;
    let posting_date = BusinessDate::from_date(e.posting_date?)
        .map_err(|e| ferr(RejectReason::InvalidDate, e.to_string()))?;
    Ok(StatementLine {
        statement_id,
        transaction_id,
        bank_id,
        posting_date,
        amount_posted,
        currency: cur,
        fee_charged,
        merchant_id: present(e.merchant_id)
            .map(|v| id::<MerchantId>(&v))
            .transpose()?,
        reference: e.reference.trim().to_string(),
        record_type: present(e.record_type)
            .map(|code| record_type(m, &code))
            .transpose()?
            .flatten(),
        original_amount: None,
        original_currency: None,
        fx_rate: None,
    })
}
