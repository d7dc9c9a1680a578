//! Business rules read from the rules store (DESIGN §7): fee rules and match tolerances.
//! Operators change them as data; the code only says how a rule is chosen and applied.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::BankId;
use crate::money::Currency;
use crate::records::FeeRule;

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
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            amount_minor_units: 1,
            fee_minor_units: 1,
            date_window_days: 3,
            max_group_size: 6,
            max_group_candidates: 120,
        }
    }
}

impl Tolerances {
    /// The amount tolerance as a decimal in `currency`.
    pub fn amount(&self, currency: Currency) -> Decimal {
        currency.from_minor(self.amount_minor_units)
    }

    pub fn fee(&self, currency: Currency) -> Decimal {
        currency.from_minor(self.fee_minor_units)
    }
}

/// The fee rule that applies to a settlement at `bank` for a merchant `category` on `date`:
/// in force, same currency, the most specific (category over bank-wide), then the latest
/// `effective_from`, then the smallest `rule_id` — so the choice is deterministic.
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
}
