//! Canonical records (design.md §5) and the closed vocabularies of design.md §5–6.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{
    BankId, BusinessDate, FraudSignalId, MerchantId, PolicyId, RuleId, StatementId, TransactionId,
    UserId,
};
use crate::money::Currency;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal {
        $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[doc = concat!("Written `", $text, "` in files, tables and the API.")]
                $variant
            ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The code as written in files and tables (upper snake case).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s.trim() {
                    $(t if t.eq_ignore_ascii_case($text) => Ok($name::$variant),)+
                    _ => Err(Error::InvalidEnum {
                        field: $field,
                        value: s.chars().take(32).collect(),
                        expected: concat!($($text, " "),+),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> { s.parse() }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String { v.as_str().to_string() }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Lifecycle status of an internal transaction.
    TxnStatus, "status" {
        Pending => "PENDING", Approved => "APPROVED", Declined => "DECLINED",
        Refunded => "REFUNDED", Chargeback => "CHARGEBACK",
    }
);

string_enum!(
    /// What a statement line books.
    RecordType, "record_type" {
        Settlement => "SETTLEMENT", Refund => "REFUND", Chargeback => "CHARGEBACK",
        Fee => "FEE", Adjustment => "ADJUSTMENT",
    }
);

string_enum!(
    /// How the user paid.
    PaymentMethod, "payment_method" {
        Card => "CARD", Wallet => "WALLET", BankTransfer => "BANK_TRANSFER",
    }
);

string_enum!(
    /// A merchant's risk level in the merchant dimension.
    RiskLevel, "risk_level" { Low => "LOW", Medium => "MEDIUM", High => "HIGH" }
);

string_enum!(
    /// The kind of rule a policy of `config/policies.jsonl` states.
    PolicyType, "policy_type" {
        Kyc => "KYC", Aml => "AML", RegionalLimit => "REGIONAL_LIMIT",
        Blacklist => "BLACKLIST", Velocity => "VELOCITY",
    }
);

string_enum!(
    /// Outcome of reconciliation for a transaction or a statement line (design.md §6).
    ReconciledStatus, "reconciled_status" {
        Matched => "MATCHED", PartialMatch => "PARTIAL_MATCH", Unmatched => "UNMATCHED",
        Duplicate => "DUPLICATE", Disputed => "DISPUTED", Pending => "PENDING",
    }
);

string_enum!(
    /// Settlement state a risk or finance user reads (design.md §6), from the reconciled status.
    SettlementStatus, "settlement_status" {
        Settled => "SETTLED", PartiallySettled => "PARTIALLY_SETTLED", Unsettled => "UNSETTLED",
        Disputed => "DISPUTED",
    }
);

impl SettlementStatus {
    /// The settlement state of a transaction reconciled as `s`.
    pub fn of(s: ReconciledStatus) -> Self {
        match s {
            ReconciledStatus::Matched | ReconciledStatus::Duplicate => SettlementStatus::Settled,
            ReconciledStatus::PartialMatch => SettlementStatus::PartiallySettled,
            ReconciledStatus::Unmatched | ReconciledStatus::Pending => SettlementStatus::Unsettled,
            ReconciledStatus::Disputed => SettlementStatus::Disputed,
        }
    }
}

string_enum!(
    /// The kind of break a reconciled row carries (design.md §6); `NONE` when there is none.
    MismatchType, "mismatch_type" {
        None => "NONE", Amount => "AMOUNT", Fee => "FEE", Currency => "CURRENCY",
        MissingAtBank => "MISSING_AT_BANK", MissingInternal => "MISSING_INTERNAL",
        Duplicate => "DUPLICATE", Chargeback => "CHARGEBACK",
    }
);

string_enum!(
    /// How a pair was found; `NONE` where nothing matched.
    MatchRule, "match_rule" {
        ExactId => "EXACT_ID", Composite => "COMPOSITE", OneToMany => "ONE_TO_MANY",
        ManyToOne => "MANY_TO_ONE",
        /// A person's match of items the engine left open (design.md §12).
        Manual => "MANUAL", None => "NONE",
    }
);

string_enum!(
    /// Why a person resolved a break (design.md §12).
    ResolveReason, "reason" {
        WriteOff => "WRITE_OFF", ManualMatch => "MANUAL_MATCH",
        AcceptedVariance => "ACCEPTED_VARIANCE", DuplicateConfirmed => "DUPLICATE_CONFIRMED",
        Other => "OTHER",
    }
);

string_enum!(
    /// Where a break stands in a close: open, resolved by the engine (its items matched at
    /// last), or resolved by a person whose decision still holds (design.md §12).
    BreakStatus, "break_status" {
        Open => "OPEN", ResolvedByEngine => "RESOLVED_BY_ENGINE",
        ResolvedByPerson => "RESOLVED_BY_PERSON",
    }
);

string_enum!(
    /// What an anomaly flag is about (design.md §14, docs/anomalies.md).
    AnomalyKind, "kind" {
        /// Payments of the day.
        Volume => "VOLUME",
        /// Breaks opened per item the close decided.
        MismatchRate => "MISMATCH_RATE",
        /// Share of the day's statement lines charged another fee than the rules give.
        FeeVariance => "FEE_VARIANCE",
        /// Breaks opened by the close, per calendar day the delivery covers.
        BreakCount => "BREAK_COUNT",
    }
);

string_enum!(
    /// Whom an anomaly flag is about.
    SubjectLevel, "level" {
        Bank => "BANK", Merchant => "MERCHANT",
    }
);

string_enum!(
    /// Which way a flagged figure left its baseline.
    Direction, "direction" {
        High => "HIGH", Low => "LOW",
    }
);

/// Internal payment (system-of-record extract, Kafka `transactions_topic`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The internal payment id.
    pub transaction_id: TransactionId,
    /// The merchant paid.
    pub merchant_id: MerchantId,
    /// The paying user: raw in the source, a token once normalized.
    pub user_id: UserId,
    /// The amount in `currency`, exact (a decimal string in JSON).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// The transaction's currency.
    pub currency: Currency,
    /// The lifecycle status.
    pub status: TxnStatus,
    /// When the payment event happened (UTC).
    pub event_time: DateTime<Utc>,
    /// How the user paid.
    pub payment_method: PaymentMethod,
    /// For a refund or chargeback, the transaction it reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_transaction_id: Option<TransactionId>,
}

/// One line of a bank or aggregator statement, amounts in the bank's settlement currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// The bank's id of the line.
    pub statement_id: StatementId,
    /// The transaction the bank says the line pays, when it says.
    #[serde(default)]
    pub transaction_id: Option<TransactionId>,
    /// The bank whose statement holds the line.
    pub bank_id: BankId,
    /// The date the bank booked the line.
    pub posting_date: BusinessDate,
    /// Signed: credits to the merchant positive, refunds and chargebacks negative.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount_posted: Decimal,
    /// The statement (settlement) currency.
    pub currency: Currency,
    /// The fee the bank charged on the line, in `currency`.
    #[serde(with = "rust_decimal::serde::str")]
    pub fee_charged: Decimal,
    /// The merchant the line pays out to, when given.
    #[serde(default)]
    pub merchant_id: Option<MerchantId>,
    /// The bank's free-text reference (empty when none).
    #[serde(default)]
    pub reference: String,
    /// What the line books, when the bank says.
    #[serde(default)]
    pub record_type: Option<RecordType>,
    /// Amount and currency as the source sent them, before conversion (None when equal).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub original_amount: Option<Decimal>,
    /// The currency of `original_amount`.
    #[serde(default)]
    pub original_currency: Option<Currency>,
    /// FX rate used to convert the original amount.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub fx_rate: Option<Decimal>,
}

/// ML fraud score for one transaction (Kafka `fraud_signals_topic`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudSignal {
    /// The signal's id.
    pub fraud_signal_id: FraudSignalId,
    /// The transaction scored.
    pub transaction_id: TransactionId,
    /// Probability in [0, 1], exact to the model's precision.
    #[serde(with = "rust_decimal::serde::str")]
    pub fraud_score: Decimal,
    /// The model that produced the score.
    pub model_version: String,
    /// When the model scored the transaction (UTC).
    pub inference_time: DateTime<Utc>,
    /// The model's reason for the score, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

impl FraudSignal {
    /// Refuses scores outside [0, 1].
    pub fn validate(&self) -> Result<()> {
        if self.fraud_score < Decimal::ZERO || self.fraud_score > Decimal::ONE {
            return Err(Error::InvalidAmount {
                value: self.fraud_score.to_string(),
                reason: "fraud_score must be within 0..=1".into(),
            });
        }
        Ok(())
    }
}

/// One line of the merchant dimension (`config/merchants.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    /// The merchant's id.
    pub merchant_id: MerchantId,
    /// The display name.
    pub merchant_name: String,
    /// The merchant category (fee rules and AML policies select by it).
    pub category: String,
    /// The merchant's risk level.
    pub risk_level: RiskLevel,
    /// When the merchant was onboarded.
    pub onboarding_date: NaiveDate,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// The bank that acquires the merchant's payments and settles them to its account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer_bank_id: Option<BankId>,
}

/// One line of `config/policies.jsonl`: a compliance rule the stream enrichment applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The policy's id.
    pub policy_id: PolicyId,
    /// The kind of rule, which decides the parameters it reads.
    pub policy_type: PolicyType,
    /// The rule in words, for people.
    pub rule_description: String,
    /// Only active policies are applied.
    pub active_flag: bool,
    /// Free-form parameters of the rule (thresholds, lists).
    pub parameters: serde_json::Value,
}

/// Expected fee: `percent`% of the settled amount plus `fixed`, for a bank (or network),
/// optionally one merchant category, within effective dates (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRule {
    /// The rule's id; the smallest wins a tie.
    pub rule_id: RuleId,
    /// The bank the rule applies to.
    #[serde(default)]
    pub bank_id: Option<BankId>,
    /// The card network the rule applies to, when not a bank.
    #[serde(default)]
    pub network: Option<String>,
    /// The merchant category the rule is limited to; `None`: every category of the bank.
    #[serde(default)]
    pub merchant_category: Option<String>,
    /// Percent of the settled amount (0 to 100), exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub percent: Decimal,
    /// Fixed fee per settlement in `currency`, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub fixed: Decimal,
    /// The settlement currency the rule applies to.
    pub currency: Currency,
    /// First day the rule is in force.
    pub effective_from: NaiveDate,
    /// Last day the rule is in force; `None`: open-ended.
    #[serde(default)]
    pub effective_to: Option<NaiveDate>,
}

impl FeeRule {
    /// Whether this rule is in force on `date`.
    pub fn in_force(&self, date: NaiveDate) -> bool {
        self.effective_from <= date && self.effective_to.is_none_or(|to| date <= to)
    }

    /// The fee for a settled `amount` in this rule's currency, rounded to its minor unit.
    pub fn fee_for(&self, amount: Decimal) -> Decimal {
        let pct = amount.abs() * self.percent / Decimal::ONE_HUNDRED;
        self.currency.round(pct + self.fixed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn enums_parse_case_insensitively_and_refuse_unknowns() -> Result<()> {
        assert_eq!("approved".parse::<TxnStatus>()?, TxnStatus::Approved);
        assert_eq!(" REFUND ".parse::<RecordType>()?, RecordType::Refund);
        let err = "SETTLED".parse::<TxnStatus>().err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("expected one of PENDING")));
        for s in MismatchType::ALL {
            assert_eq!(s.as_str().parse::<MismatchType>()?, *s);
        }
        Ok(())
    }

    #[test]
    fn fee_rules_compute_exact_fees_within_effective_dates() -> Result<()> {
        let rule = FeeRule {
            rule_id: RuleId::new("fee_1")?,
            bank_id: Some(BankId::new("bank_01")?),
            network: None,
            merchant_category: None,
            percent: dec!(1.75),
            fixed: dec!(0.25),
            currency: Currency::new("USD")?,
            effective_from: NaiveDate::from_ymd_opt(2026, 1, 1)
                .ok_or_else(|| Error::Invariant("d".into()))?,
            effective_to: NaiveDate::from_ymd_opt(2026, 12, 31),
        };
        assert_eq!(rule.fee_for(dec!(100.00)), dec!(2.00));
        assert_eq!(rule.fee_for(dec!(-10.00)), dec!(0.43));
        assert!(rule.in_force(BusinessDate::parse("2026-11-20")?.date()));
        assert!(!rule.in_force(BusinessDate::parse("2027-01-01")?.date()));
        Ok(())
    }

    #[test]
    fn records_serialize_amounts_as_decimal_strings() -> Result<()> {
        let sig = FraudSignal {
            fraud_signal_id: FraudSignalId::new("FS-1")?,
            transaction_id: TransactionId::new("TX-1")?,
            fraud_score: dec!(0.8123),
            model_version: "m-2026.11".into(),
            inference_time: DateTime::from_timestamp(1_763_600_000, 0)
                .ok_or_else(|| Error::Invariant("t".into()))?,
            reason_code: None,
        };
        let json = serde_json::to_string(&sig)?;
        assert!(json.contains("\"fraud_score\":\"0.8123\""), "{json}");
        let back: FraudSignal = serde_json::from_str(&json)?;
        assert_eq!(back, sig);
        let mut bad = sig;
        bad.fraud_score = dec!(1.01);
        assert!(bad.validate().is_err());
        Ok(())
    }
}
