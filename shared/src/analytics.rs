//! What the close learns from its own history (design.md §14, docs/anomalies.md): the daily
//! figures of each bank and merchant ([`Figures`]), anomaly flags against each subject's own
//! history ([`anomaly`]) and the volume forecast of each bank ([`forecast`]). Pure functions over
//! exact decimals: the close reads and writes, these decide.

pub mod anomaly;
pub mod forecast;
pub mod stats;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Currency;

/// Break aging buckets of open breaks, by age in days: upper bounds of the first four buckets
/// (the fifth is everything older).
pub const AGING_BOUNDS: [i32; 4] = [2, 7, 14, 30];

/// Labels of the aging buckets, in order.
pub const AGING_LABELS: [&str; 5] = [
    "0-2 days",
    "3-7 days",
    "8-14 days",
    "15-30 days",
    "over 30 days",
];

/// The bucket of a break `age` days old.
pub fn aging_bucket(age: i32) -> usize {
    AGING_BOUNDS
        .iter()
        .position(|b| age <= *b)
        .unwrap_or(AGING_BOUNDS.len())
}

/// Fees of one statement currency on a day's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeFigure {
    /// Lines of the day in the currency.
    pub lines: u64,
    /// Lines charged another fee than the rules give.
    pub lines_with_variance: u64,
    /// Fees charged, in the currency.
    pub charged: Decimal,
    /// Sum of the absolute fee variances, in the currency.
    pub variance: Decimal,
}

impl FeeFigure {
    /// Lines charged another fee than the rules give, per line (`None` without lines).
    pub fn share(&self) -> Option<Decimal> {
        stats::ratio(self.lines_with_variance, self.lines)
    }
}

/// Lines charged another fee, and lines, over the fees of several currencies.
pub fn variance_lines<'a>(fees: impl IntoIterator<Item = &'a FeeFigure>) -> (u64, u64) {
    fees.into_iter()
        .fold((0, 0), |(v, n), f| (v + f.lines_with_variance, n + f.lines))
}

/// One subject's (a bank's or a merchant's) figures of one close, counted from the batch index
/// of the close's date (docs/anomalies.md defines each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// Ledger transactions of the date.
    pub payments: u64,
    /// Statement lines delivered for the date.
    pub lines: u64,
    /// Of those, lines matched.
    pub lines_matched: u64,
    /// Items (transactions and lines) the close decided: not pending, and not a break an
    /// earlier close had opened.
    pub decided: u64,
    /// Breaks the close opened.
    pub new_breaks: u64,
    /// Breaks open after the close.
    pub open_breaks: u64,
    /// Open breaks by [`AGING_LABELS`] bucket.
    pub aging: [u64; 5],
    /// Fees of the day's lines by statement currency.
    pub fees: BTreeMap<Currency, FeeFigure>,
}

impl Figures {
    /// Lines matched per line delivered (`None` without lines).
    pub fn match_rate(&self) -> Option<Decimal> {
        stats::ratio(self.lines_matched, self.lines)
    }

    /// Lines charged another fee, of all the day's lines with fees, and those lines.
    pub fn fee_variance_lines(&self) -> (u64, u64) {
        variance_lines(self.fees.values())
    }
}

/// The figures of every bank and merchant of one close (`index/metrics/business_date=D/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayFigures {
    /// The close's business date.
    pub business_date: NaiveDate,
    /// Per bank.
    pub banks: BTreeMap<String, Figures>,
    /// Per merchant.
    pub merchants: BTreeMap<String, Figures>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aging_buckets_cover_every_age() {
        let buckets: Vec<usize> = [0, 2, 3, 7, 8, 14, 15, 30, 31, 400]
            .into_iter()
            .map(aging_bucket)
            .collect();
        assert_eq!(buckets, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }
}
