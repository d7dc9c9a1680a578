//! The case mix of a generated day. Every rate is in basis points (1/10 000) so the day is
//! exact and reproducible; the command line takes fractions (`--mix composite=0.03`).

use recon_shared::{Error, Result};
use rust_decimal::Decimal;

macro_rules! knobs {
    ($($name:ident = $default:expr, $doc:literal;)+) => {
        /// Rates of each realistic case, in basis points.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Knobs { $(#[doc = $doc] pub $name: u32,)+ }

        impl Default for Knobs {
            fn default() -> Self { Self { $($name: $default,)+ } }
        }

        impl Knobs {
            /// Names and documentation of every knob, for `--help` and docs.
            pub const NAMES: &'static [(&'static str, &'static str)] = &[$((stringify!($name), $doc),)+];

            fn slot(&mut self, name: &str) -> Option<&mut u32> {
                match name { $(stringify!($name) => Some(&mut self.$name),)+ _ => None }
            }

            /// Every knob as `name=fraction`, in declaration order.
            pub fn describe(&self) -> Vec<(String, Decimal)> {
                vec![$((stringify!($name).to_string(), Decimal::new(i64::from(self.$name), 4)),)+]
            }
        }
    };
}

knobs! {
    cross_currency = 800, "transactions in another currency than their bank settles in";
    missing_at_bank = 200, "settled transactions with no statement line by cutoff";
    amount_diff = 100, "lines posting another amount than the transaction (partial settlement)";
    fee_variance = 150, "lines charging another fee than the fee rules give";
    duplicate_line = 50, "transactions the bank posted twice";
    composite = 300, "lines without transaction_id, matchable by merchant, amount and date";
    split = 100, "transactions settled in several lines";
    batch = 200, "transactions paid out together in one line per merchant";
    chargeback = 30, "payments charged back (one day: a settlement and a chargeback line; several days: a CHARGEBACK transaction up to 3 weeks later and its line)";
    refund = 200, "refund transactions pointing at their original";
    exact_duplicate_record = 20, "statement records delivered twice byte for byte";
    line_match = 8000, "statement lines that match a transaction (the rest are orphans)";
    fraud_coverage = 7000, "transactions that get a fraud signal";
    fraud_reference = 9000, "fraud signals that reference a known transaction";
    declined = 300, "declined payments seen only on the stream";
    pending_first = 3000, "transactions streamed as PENDING before APPROVED";
    out_of_order = 200, "stream records delivered late, after newer ones";
    redelivery = 100, "stream records delivered twice";
    late_file = 10, "size of the previous day's late statement file, relative to the day";
    correction_drop = 200, "lines missing from the first delivery that version 2 corrects";
    ledger_late = 0, "payments the ledger extract brings a day after their event (multi-day)";
    ledger_pending = 0, "PENDING transactions in the ledger extract, never expected at the bank (multi-day)";
    midnight_posting = 0, "lines booked just after midnight, posting date the next calendar day (multi-day)";
    late_settlement = 0, "payments the bank posts one business day after their window (multi-day)";
    payout_merchants = 0, "small merchants paid by payouts bundling their payments of several days (multi-day)";
    second_acquirer = 0, "payments settled by a merchant's second acquirer, a bank other than the merchant file's (multi-day)";
    anomalies = 0, "bank-days after the first 21 with an injected anomaly, in truth/anomalies.csv (multi-day)";
}

/// Knobs that only the one-day world uses: `--days` above 1 refuses them (the multi-day
/// world pays merchants by payouts instead of `batch`, and has no late file or corrected
/// delivery: the days themselves bring late and repeated deliveries).
pub const ONE_DAY_ONLY: &[&str] = &["batch", "late_file", "correction_drop"];

/// Knobs that only the multi-day world uses: the one-day world refuses them.
pub const MULTI_DAY_ONLY: &[&str] = &[
    "ledger_late",
    "ledger_pending",
    "midnight_posting",
    "late_settlement",
    "payout_merchants",
    "second_acquirer",
    "anomalies",
];

impl Knobs {
    /// The defaults with each `name=fraction` of `--mix` set in turn.
    pub fn from_mix(mix: &[String]) -> Result<Self> {
        let mut knobs = Self::default();
        for m in mix {
            knobs.set(m)?;
        }
        Ok(knobs)
    }

    /// The defaults of a world of `days` days (the one-day defaults for 1, [`Knobs::multi_day`]
    /// above) with each `name=fraction` of `--mix` set in turn, checked for that world.
    pub fn for_days(days: u32, mix: &[String]) -> Result<Self> {
        let mut knobs = if days > 1 {
            Self::multi_day()
        } else {
            Self::default()
        };
        for m in mix {
            knobs.set(m)?;
        }
        knobs.validate_for(days)?;
        Ok(knobs)
    }

    /// The defaults of the multi-day world: real operations, where almost every line matches
    /// on its own (orphans 0.25 % of lines) and breaks are a few per cent.
    pub fn multi_day() -> Self {
        Self {
            missing_at_bank: 30,
            amount_diff: 50,
            fee_variance: 100,
            duplicate_line: 20,
            composite: 300,
            split: 100,
            batch: 0,
            chargeback: 20,
            refund: 200,
            line_match: 9975,
            declined: 150,
            late_file: 0,
            correction_drop: 0,
            ledger_late: 100,
            ledger_pending: 50,
            midnight_posting: 200,
            late_settlement: 20,
            payout_merchants: 5000,
            second_acquirer: 50,
            ..Self::default()
        }
    }

    /// Every knob the world of `days` days uses, as `name=fraction`, in declaration order.
    pub fn describe_for(&self, days: u32) -> Vec<(String, Decimal)> {
        let unused = if days > 1 {
            ONE_DAY_ONLY
        } else {
            MULTI_DAY_ONLY
        };
        self.describe()
            .into_iter()
            .filter(|(k, _)| !unused.contains(&k.as_str()))
            .collect()
    }

    /// [`Knobs::validate`], and no knob set that the world of `days` days does not use.
    pub fn validate_for(&self, days: u32) -> Result<()> {
        self.validate()?;
        let (unused, world) = if days > 1 {
            (ONE_DAY_ONLY, "a multi-day world (--days above 1)")
        } else {
            (MULTI_DAY_ONLY, "the one-day world (--days 1)")
        };
        for (name, value) in self.describe() {
            if unused.contains(&name.as_str()) && !value.is_zero() {
                let hint = if name == "batch" {
                    " (its merchants are paid by payouts: see payout_merchants)"
                } else {
                    ""
                };
                return Err(Error::InvalidConfig {
                    name: format!("--mix {name}"),
                    reason: format!("{world} does not use it{hint}: set it to 0 or leave it out"),
                });
            }
        }
        Ok(())
    }

    /// Sets `name=fraction` (e.g. `composite=0.03`).
    pub fn set(&mut self, spec: &str) -> Result<()> {
        let bad = |reason: String| Error::InvalidConfig {
            name: format!("--mix {spec}"),
            reason,
        };
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| bad("expected name=fraction".into()))?;
        let fraction: Decimal = value
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{value}` is not a decimal fraction")))?;
        let bp = fraction * Decimal::from(10_000);
        if bp.fract() != Decimal::ZERO || bp < Decimal::ZERO || bp > Decimal::from(10_000) {
            return Err(bad(
                "fraction must be within 0..=1 with at most 4 decimals".into()
            ));
        }
        let names = Self::NAMES
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ");
        let slot = self
            .slot(name.trim())
            .ok_or_else(|| bad(format!("unknown knob; known: {names}")))?;
        *slot = u32::try_from(bp.mantissa() / 10i128.pow(bp.scale()))
            .map_err(|_| bad("out of range".into()))?;
        Ok(())
    }

    /// The settlement cases must leave room for exact matches.
    pub fn validate(&self) -> Result<()> {
        let settlement = self.missing_at_bank
            + self.amount_diff
            + self.fee_variance
            + self.duplicate_line
            + self.composite
            + self.split
            + self.batch
            + self.chargeback
            + self.late_settlement;
        if settlement > 10_000 {
            return Err(Error::InvalidConfig {
                name: "--mix".into(),
                reason: format!("settlement case rates add up to {settlement} bp, more than 100 %"),
            });
        }
        if self.line_match == 0 {
            return Err(Error::InvalidConfig {
                name: "--mix line_match".into(),
                reason: "must be above 0".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_parse_fractions_exactly() -> Result<()> {
        let mut k = Knobs::default();
        k.set("composite=0.05")?;
        assert_eq!(k.composite, 500);
        k.set("split=0")?;
        assert_eq!(k.split, 0);
        assert!(k.set("composite=0.00001").is_err());
        assert!(k.set("nope=0.1").is_err());
        assert!(k.set("split=1.5").is_err());
        assert!(k.set("split").is_err());
        k.validate()?;
        k.set("missing_at_bank=1")?;
        assert!(k.validate().is_err());
        Ok(())
    }
}
