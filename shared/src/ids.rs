//! Validated identifiers. Raw strings become domain ids once, at the edge.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest id accepted from any source.
pub const MAX_ID_LEN: usize = 64;

fn validate_id(kind: &'static str, value: &str) -> Result<()> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.len() > MAX_ID_LEN {
        "longer than 64 characters"
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        "only ASCII letters, digits and - _ . : are allowed"
    } else if value.starts_with('.') {
        "must not start with a dot"
    } else {
        return Ok(());
    };
    Err(Error::InvalidId {
        kind,
        value: value.chars().take(MAX_ID_LEN).collect(),
        reason,
    })
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `value` as this kind of id.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                validate_id($kind, &value)?;
                Ok(Self(value))
            }

            /// The id as validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        /// Lookups by `&str` (the derived `Hash` and `Eq` are those of the string).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// Internal payment id, the key of the TransactionIndex.
    TransactionId,
    "transaction_id"
);
id_type!(
    /// A merchant of the merchant dimension; transactions and KPIs are grouped by it.
    MerchantId,
    "merchant_id"
);
id_type!(
    /// Raw user id: PII. Only the stream indexer sees it, and turns it into a token.
    UserId,
    "user_id"
);
id_type!(
    /// A bank whose statements are reconciled; the daily close runs one partition per bank.
    BankId,
    "bank_id"
);
id_type!(
    /// A bank's id for one statement line.
    StatementId,
    "statement_id"
);
id_type!(
    /// A delivering source (bank, processor, ledger); the first level under `landing/`.
    SourceId,
    "source_id"
);
id_type!(
    /// One fraud score of the stream (`fraud_signals_topic`).
    FraudSignalId,
    "fraud_signal_id"
);
id_type!(
    /// A policy of `config/policies.jsonl` the stream enrichment applies.
    PolicyId,
    "policy_id"
);
id_type!(
    /// A fee rule of `config/rules/fee_rules.jsonl`; the smallest id wins a tie between rules.
    RuleId,
    "rule_id"
);

/// The business day a record belongs to (`YYYY-MM-DD`), the partition key of every dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BusinessDate(NaiveDate);

impl BusinessDate {
    /// Parses exactly `YYYY-MM-DD` (no time, no other separators).
    pub fn parse(value: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidDate {
            value: value.chars().take(32).collect(),
            reason: reason.to_string(),
        };
        let b = value.as_bytes();
        let digits = [0, 1, 2, 3, 5, 6, 8, 9];
        if b.len() != 10
            || b[4] != b'-'
            || b[7] != b'-'
            || !digits.iter().all(|i| b[*i].is_ascii_digit())
        {
            return Err(bad("expected YYYY-MM-DD"));
        }
        let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map_err(|e| bad(&format!("not a calendar date ({e})")))?;
        Self::from_date(date).map_err(|_| bad("year outside 1970..=9999"))
    }

    /// Wraps a date, refusing years a business date cannot have.
    pub fn from_date(date: NaiveDate) -> Result<Self> {
        if !(1970..=9999).contains(&date.year()) {
            return Err(Error::InvalidDate {
                value: date.to_string(),
                reason: "year outside 1970..=9999".into(),
            });
        }
        Ok(Self(date))
    }

    /// The calendar date.
    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// The day before, if it is still a valid business date.
    pub fn pred(self) -> Result<Self> {
        self.0
            .pred_opt()
            .ok_or_else(|| Error::InvalidDate {
                value: self.to_string(),
                reason: "no previous day".into(),
            })
            .and_then(Self::from_date)
    }

    /// The day after, if it is still a valid business date.
    pub fn succ(self) -> Result<Self> {
        self.0
            .succ_opt()
            .ok_or_else(|| Error::InvalidDate {
                value: self.to_string(),
                reason: "no next day".into(),
            })
            .and_then(Self::from_date)
    }

    /// Days since 1970-01-01 (Arrow `Date32`).
    pub fn days_since_epoch(self) -> i32 {
        date_to_days(self.0)
    }
}

/// Days since the Unix epoch for Arrow `Date32`.
pub fn date_to_days(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - 719_163
}

/// The inverse of [`date_to_days`].
pub fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)
}

impl TryFrom<String> for BusinessDate {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<BusinessDate> for String {
    fn from(d: BusinessDate) -> String {
        d.to_string()
    }
}

impl FromStr for BusinessDate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for BusinessDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same as `%Y-%m-%d` for the years a business date can have, without parsing a
        // format string on every call (dates are formatted on hot paths).
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_usual_shapes() -> Result<()> {
        assert_eq!(
            TransactionId::new("TX-20261120-000000001")?.as_str(),
            "TX-20261120-000000001"
        );
        assert_eq!(BankId::new("bank_01")?.to_string(), "bank_01");
        Ok(())
    }

    #[test]
    fn ids_refuse_bad_input_with_a_reason() {
        for bad in ["", " ", "a b", "../x", "x/y", "ä", ".hidden"] {
            let err = TransactionId::new(bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|m| m.contains("invalid transaction_id")),
                "{bad:?} gave {err:?}"
            );
        }
        let long = "x".repeat(65);
        assert!(MerchantId::new(long).is_err());
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let ok: std::result::Result<BankId, _> = serde_json::from_str("\"bank_02\"");
        assert!(ok.is_ok());
        let bad: std::result::Result<BankId, _> = serde_json::from_str("\"bank 02\"");
        assert!(bad.is_err());
    }

    #[test]
    fn business_dates_are_strict() -> Result<()> {
        let d = BusinessDate::parse("2026-11-20")?;
        assert_eq!(d.to_string(), "2026-11-20");
        assert_eq!(d.pred()?.to_string(), "2026-11-19");
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "20261120",
            "2026-11-20T00:00:00Z",
            "1969-12-31",
            "26-11-20",
            "",
        ] {
            assert!(BusinessDate::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(days_to_date(d.days_since_epoch()), Some(d.date()));
        assert_eq!(
            date_to_days(
                NaiveDate::from_ymd_opt(1970, 1, 1)
                    .ok_or_else(|| Error::Invariant("date".into()))?
            ),
            0
        );
        Ok(())
    }
}
