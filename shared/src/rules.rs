//! Business rules read from the rules store (design.md §7): fee rules and match tolerances.
//! Operators change them as data; the code only says how a rule is chosen and applied.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config_files::{ConfigProblem, Scope};
use crate::ids::BankId;
use crate::money::Currency;
use crate::records::FeeRule;

pub mod table;

/// How close amounts and dates must be for a match, and how far the group search may go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// Largest amount difference, in minor units of the statement currency, still MATCHED.
    pub amount_minor_units: i64,
    /// Largest fee difference, in minor units, that is not a fee variance.
    pub fee_minor_units: i64,
    /// Days between a transaction's date and a line's posting date for a composite match.
    pub date_window_days: i64,
    /// Largest group size tried for one-to-many and many-to-one matches.
    pub max_group_size: usize,
    /// Most candidates considered in one group search (bounds the search).
    pub max_group_candidates: usize,
    /// Business days after its date by which a transaction must be on a statement; until
    /// then it is PENDING, after it MISSING_AT_BANK (a bank's calendar may say otherwise).
    #[serde(default = "default_settlement_window")]
    pub settlement_window_days: u32,
    /// Business days an unmatched item stays open past its window (a transaction) or its
    /// delivery (a line), so that a late counterpart still resolves it.
    #[serde(default = "default_carry_grace")]
    pub carry_grace_days: u32,
}

/// Settlement window when neither the tolerances nor the bank's calendar name one.
pub const DEFAULT_SETTLEMENT_WINDOW_DAYS: u32 = 3;
/// Grace period of open items when the tolerances do not name one.
pub const DEFAULT_CARRY_GRACE_DAYS: u32 = 2;

fn default_settlement_window() -> u32 {
    DEFAULT_SETTLEMENT_WINDOW_DAYS
}

fn default_carry_grace() -> u32 {
    DEFAULT_CARRY_GRACE_DAYS
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            amount_minor_units: 1,
            fee_minor_units: 1,
            date_window_days: 3,
            max_group_size: 6,
            max_group_candidates: 120,
            settlement_window_days: DEFAULT_SETTLEMENT_WINDOW_DAYS,
            carry_grace_days: DEFAULT_CARRY_GRACE_DAYS,
        }
    }
}

/// The ranges a tolerance must lie in (inclusive). Beyond them a close either calls
/// different amounts equal (a tolerance of thousands of minor units) or searches without end.
pub const TOLERANCE_RANGES: [(&str, i64, i64); 7] = [
    ("amount_minor_units", 0, 10_000),
    ("fee_minor_units", 0, 10_000),
    ("date_window_days", 0, 31),
    ("max_group_size", 1, 12),
    // The many-to-one search tables at most 128 candidates (`reconcile::group::MAX_POOL`).
    ("max_group_candidates", 1, 128),
    ("settlement_window_days", 0, 30),
    ("carry_grace_days", 0, 30),
];

impl Tolerances {
    /// Each tolerance outside its [`TOLERANCE_RANGES`] range, as `field value: reason`.
    pub fn out_of_range(&self) -> Vec<String> {
        let values = [
            self.amount_minor_units,
            self.fee_minor_units,
            self.date_window_days,
            i64::try_from(self.max_group_size).unwrap_or(i64::MAX),
            i64::try_from(self.max_group_candidates).unwrap_or(i64::MAX),
            i64::from(self.settlement_window_days),
            i64::from(self.carry_grace_days),
        ];
        TOLERANCE_RANGES
            .iter()
            .zip(values)
            .filter(|((_, lo, hi), v)| v < lo || v > hi)
            .map(|((name, lo, hi), v)| format!("`{name}` is {v}, must be {lo} to {hi}"))
            .collect()
    }

    /// The amount tolerance as a decimal in `currency`.
    pub fn amount(&self, currency: Currency) -> Decimal {
        currency.from_minor(self.amount_minor_units)
    }

    /// The fee tolerance as a decimal in `currency`: a fee difference up to this is no fee variance.
    pub fn fee(&self, currency: Currency) -> Decimal {
        currency.from_minor(self.fee_minor_units)
    }
}

/// The fee rule that applies to a settlement at `bank` for a merchant `category` on `date`:
/// in force, same currency, the most specific (category over bank-wide), then the latest
/// `effective_from`, then the smallest `rule_id` — so the choice is deterministic. Two rules in
/// force for one bank, category and currency on one date are refused when the file is loaded
/// ([`check_fee_rules`]), so the last two criteria do not decide between loaded rules.
pub fn select_fee_rule<'r>(
    rules: &'r [FeeRule],
    bank: &BankId,
    category: Option<&str>,
    currency: Currency,
    date: NaiveDate,
) -> Option<&'r FeeRule> {
    rules
        .iter()
        .filter(|r| r.bank_id.as_ref() == Some(bank) && r.currency == currency && r.in_force(date))
        .filter(|r| r.merchant_category.is_none() || r.merchant_category.as_deref() == category)
        .max_by(|a, b| {
            let spec = |r: &FeeRule| r.merchant_category.is_some();
            spec(a)
                .cmp(&spec(b))
                .then(a.effective_from.cmp(&b.effective_from))
                .then(b.rule_id.cmp(&a.rule_id))
        })
}

/// What to do about a fee rule that is refused.
const FEE_RULE_FIX: &str =
    "correct or remove the line in the fee rules file and run the close again";

/// The problems of a fee rules file, its rules given with their line numbers: a negative
/// percent or fixed fee, a percent above 100, an `effective_to` before `effective_from`, and
/// two rules in force on one date for the same bank, merchant category and currency (only
/// one of them could ever be chosen, the other would be ignored without a word). Each
/// problem is scoped to the rule's bank.
pub fn check_fee_rules(file: &str, rules: &[(usize, FeeRule)]) -> Vec<ConfigProblem> {
    let scope = |r: &FeeRule| r.bank_id.clone().map_or(Scope::All, Scope::Bank);
    let mut out = Vec::new();
    for (line, r) in rules {
        let mut bad = Vec::new();
        if r.percent < Decimal::ZERO || r.percent > Decimal::ONE_HUNDRED {
            bad.push(format!("`percent` {} is not between 0 and 100", r.percent));
        }
        if r.fixed < Decimal::ZERO {
            bad.push(format!("`fixed` {} is negative", r.fixed));
        }
        if r.effective_to.is_some_and(|to| to < r.effective_from) {
            bad.push(format!(
                "`effective_to` is before `effective_from` {}",
                r.effective_from
            ));
        }
        if !bad.is_empty() {
            out.push(ConfigProblem::new(
                file,
                Some(*line),
                format!("rule `{}`: {}", r.rule_id, bad.join(", ")),
                FEE_RULE_FIX,
                scope(r),
            ));
        }
    }
    for (i, (la, a)) in rules.iter().enumerate() {
        for (lb, b) in &rules[i + 1..] {
            let same = a.bank_id.is_some()
                && a.bank_id == b.bank_id
                && a.merchant_category == b.merchant_category
                && a.currency == b.currency;
            let a_to = a.effective_to.unwrap_or(NaiveDate::MAX);
            let b_to = b.effective_to.unwrap_or(NaiveDate::MAX);
            if !same || a.effective_from > b_to || b.effective_from > a_to {
                continue;
            }
            let from = a.effective_from.max(b.effective_from);
            let to = a_to.min(b_to);
            let until = if to == NaiveDate::MAX {
                "on".to_string()
            } else {
                format!("to {to}")
            };
            out.push(ConfigProblem::new(
                file,
                Some(*lb),
                format!(
                    "rule `{}` and rule `{}` of line {la} are both in force for bank {}, {}, {} from {from} {until}",
                    b.rule_id,
                    a.rule_id,
                    a.bank_id.as_ref().map_or("-", BankId::as_str),
                    a.merchant_category
                        .as_deref()
                        .map_or("every category".to_string(), |c| format!("category `{c}`")),
                    a.currency,
                ),
                "end the older rule the day before the newer one starts (`effective_to`), or remove one of the two lines",
                scope(a),
            ));
        }
    }
    out
}

/// The expected fee for a settled amount; zero when no rule applies.
pub fn expected_fee(
    rules: &[FeeRule],
    bank: &BankId,
    category: Option<&str>,
    amount: Decimal,
    currency: Currency,
    date: NaiveDate,
) -> Decimal {
    select_fee_rule(rules, bank, category, currency, date)
        .map_or_else(|| currency.round(Decimal::ZERO), |r| r.fee_for(amount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::ids::{BusinessDate, RuleId};
    use rust_decimal::dec;

    fn rule(
        id: &str,
        cat: Option<&str>,
        pct: Decimal,
        from: &str,
        to: Option<&str>,
    ) -> Result<FeeRule> {
        Ok(FeeRule {
            rule_id: RuleId::new(id)?,
            bank_id: Some(BankId::new("bank_01")?),
            network: None,
            merchant_category: cat.map(str::to_string),
            percent: pct,
            fixed: dec!(0.10),
            currency: Currency::new("USD")?,
            effective_from: BusinessDate::parse(from)?.date(),
            effective_to: to
                .map(BusinessDate::parse)
                .transpose()?
                .map(BusinessDate::date),
        })
    }

    #[test]
    fn most_specific_rule_in_force_wins() -> Result<()> {
        let rules = vec![
            rule("base", None, dec!(1.5), "2026-01-01", None)?,
            rule("travel", Some("travel"), dec!(2.5), "2026-01-01", None)?,
            rule("old", None, dec!(9), "2025-01-01", Some("2025-12-31"))?,
            rule("future", None, dec!(7), "2027-01-01", None)?,
        ];
        let bank = BankId::new("bank_01")?;
        let usd = Currency::new("USD")?;
        let d = BusinessDate::parse("2026-11-20")?.date();
        let pick = |cat| select_fee_rule(&rules, &bank, cat, usd, d).map(|r| r.rule_id.to_string());
        assert_eq!(pick(Some("travel")).as_deref(), Some("travel"));
        assert_eq!(pick(Some("grocery")).as_deref(), Some("base"));
        assert_eq!(pick(None).as_deref(), Some("base"));
        assert_eq!(
            expected_fee(&rules, &bank, Some("travel"), dec!(100), usd, d),
            dec!(2.60)
        );
        let eur = Currency::new("EUR")?;
        assert_eq!(
            expected_fee(&rules, &bank, None, dec!(100), eur, d),
            dec!(0.00)
        );
        Ok(())
    }

    #[test]
    fn overlapping_rules_for_one_bank_and_category_are_refused_naming_both_lines() -> Result<()> {
        let rules = vec![
            (1, rule("base", None, dec!(1.5), "2026-01-01", None)?),
            (
                2,
                rule("travel", Some("travel"), dec!(2.5), "2026-01-01", None)?,
            ),
            // Before the fix the second rule of a bank was silently never chosen.
            (
                4,
                rule("base-2", None, dec!(1.8), "2026-06-01", Some("2026-12-31"))?,
            ),
            // Ends the day before the next starts: no overlap.
            (
                5,
                rule(
                    "old",
                    Some("travel"),
                    dec!(3),
                    "2025-01-01",
                    Some("2025-12-31"),
                )?,
            ),
        ];
        let problems = check_fee_rules("config/rules/fee_rules.jsonl", &rules);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let p = &problems[0];
        assert_eq!(p.line, Some(4));
        assert_eq!(p.scope, Scope::Bank(BankId::new("bank_01")?));
        let text = p.error().to_string();
        for part in [
            "config/rules/fee_rules.jsonl",
            "line 4:",
            "`base-2`",
            "`base` of line 1",
            "every category",
            "from 2026-06-01 to 2026-12-31",
            "effective_to",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
        // Another currency or another bank is no overlap.
        let mut eur = rule("base-eur", None, dec!(1), "2026-01-01", None)?;
        eur.currency = Currency::new("EUR")?;
        let mut other = rule("base-b2", None, dec!(1), "2026-01-01", None)?;
        other.bank_id = Some(BankId::new("bank_02")?);
        assert!(check_fee_rules("f", &[(1, rules[0].1.clone()), (2, eur), (3, other)]).is_empty());
        Ok(())
    }

    #[test]
    fn fee_rules_with_impossible_values_are_refused() -> Result<()> {
        let rules = vec![
            (
                1,
                rule("neg", None, dec!(-1), "2026-01-01", Some("2026-01-31"))?,
            ),
            (
                2,
                rule("big", None, dec!(101), "2026-02-01", Some("2026-02-28"))?,
            ),
            (
                3,
                rule("back", None, dec!(1), "2026-03-31", Some("2026-03-01"))?,
            ),
        ];
        let problems = check_fee_rules("fee.jsonl", &rules);
        let lines: Vec<Option<usize>> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(1), Some(2), Some(3)]);
        assert!(problems[0].reason.contains("`percent` -1"));
        assert!(problems[2].reason.contains("`effective_to` is before"));
        Ok(())
    }

    #[test]
    fn tolerances_out_of_range_are_named() {
        assert!(Tolerances::default().out_of_range().is_empty());
        let t = Tolerances {
            amount_minor_units: -5,
            max_group_candidates: 1_000_000,
            ..Tolerances::default()
        };
        assert_eq!(
            t.out_of_range(),
            [
                "`amount_minor_units` is -5, must be 0 to 10000",
                "`max_group_candidates` is 1000000, must be 1 to 128"
            ]
        );
    }
}
