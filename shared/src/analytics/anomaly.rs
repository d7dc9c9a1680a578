//! Anomaly flags (docs/anomalies.md): each subject's figure of the day against its own history,
//! with a robust baseline (median and median absolute deviation, which a few earlier anomalies
//! in the history do not move), a noise floor from counting statistics (a figure made of a
//! handful of events is not called unusual for being 3 instead of 1), a minimum effect and a
//! minimum history.
//!
//! - **VOLUME**: payments of the day against the weekday-adjusted median; high or low.
//! - **MISMATCH_RATE**: breaks opened per item decided, on delivery days; high only.
//! - **FEE_VARIANCE**: share of the lines charged another fee than the rules give, on delivery
//!   days; high only.
//! - **BREAK_COUNT**: breaks opened per calendar day the delivery covers (a Monday's delivery
//!   covers the weekend, the day after a holiday two days), on delivery days; high only.

use chrono::{Datelike, NaiveDate};
use rust_decimal::{Decimal, dec};
use serde::{Deserialize, Serialize};

use super::Figures;
use super::stats::{MAD_TO_SIGMA, mad, median, sqrt};
use crate::records::{AnomalyKind, Direction, SubjectLevel};

/// Days of history a flag looks back on.
pub const WINDOW_DAYS: i64 = 56;
/// Fewest earlier closes (delivery days for the line figures) before a subject is judged.
pub const MIN_HISTORY: usize = 14;
/// Robust z-score at or above which a bank's figure is flagged.
pub const THRESHOLD: Decimal = dec!(4);
/// Fewest events (payments, breaks, lines) a bank's flagged figure differs from its baseline by.
pub const MIN_EFFECT: Decimal = dec!(5);
/// A merchant's trade is burstier than counting noise says (a campaign, a payday, a large
/// basket), so its figures are flagged from a higher score and a larger effect.
pub const MERCHANT_THRESHOLD: Decimal = dec!(6);
/// Fewest events a merchant's flagged figure differs from its baseline by.
pub const MERCHANT_MIN_EFFECT: Decimal = dec!(10);
/// Fewest payments a day (median) for a subject's volume to be judged.
pub const MIN_VOLUME: Decimal = dec!(20);
/// Fewest items decided (lines with fees) for a rate to be judged.
pub const MIN_ITEMS: u64 = 30;
/// Most calendar days one delivery is taken to cover.
const MAX_COVER: i64 = 7;

/// A flagged figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What is unusual.
    pub kind: AnomalyKind,
    /// Above or below its baseline.
    pub direction: Direction,
    /// The day's figure.
    pub value: Decimal,
    /// What the history leads to expect for the day.
    pub expected: Decimal,
    /// Robust z-score: (value − expected) / noise.
    pub score: Decimal,
    /// Earlier closes the baseline was drawn from.
    pub history: u32,
}

/// Whether a figure's test could be made, and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Too little history or too few events to judge.
    NotJudged,
    /// Judged, within its baseline.
    Normal,
    /// Judged and flagged.
    Flagged(Finding),
}

/// The bar a figure must pass to be flagged: a score and an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// Robust z-score at or above which the figure is flagged.
    pub threshold: Decimal,
    /// Fewest events the figure must differ from its baseline by.
    pub effect: Decimal,
}

impl Bar {
    /// The bar of a bank's or a merchant's figures.
    pub fn of(level: SubjectLevel) -> Self {
        match level {
            SubjectLevel::Bank => Bar {
                threshold: THRESHOLD,
                effect: MIN_EFFECT,
            },
            SubjectLevel::Merchant => Bar {
                threshold: MERCHANT_THRESHOLD,
                effect: MERCHANT_MIN_EFFECT,
            },
        }
    }
}

/// Every kind's verdict for `today` of one subject of `level`, against `history` (earlier
/// closes of the same subject, any order, within [`WINDOW_DAYS`]).
pub fn assess(
    level: SubjectLevel,
    history: &[(NaiveDate, &Figures)],
    today: (NaiveDate, &Figures),
) -> Vec<(AnomalyKind, Verdict)> {
    let mut hist: Vec<(NaiveDate, &Figures)> = history
        .iter()
        .filter(|(d, _)| *d < today.0 && (today.0 - *d).num_days() <= WINDOW_DAYS)
        .copied()
        .collect();
    hist.sort_by_key(|(d, _)| *d);
    let bar = Bar::of(level);
    [
        (AnomalyKind::Volume, volume(&hist, today)),
        (AnomalyKind::MismatchRate, mismatch_rate(&hist, today)),
        (AnomalyKind::FeeVariance, fee_variance(&hist, today)),
        (AnomalyKind::BreakCount, break_count(&hist, today)),
    ]
    .into_iter()
    .map(|(k, m)| (k, m.map_or(Verdict::NotJudged, |m| m.verdict(bar))))
    .collect()
}

fn count(n: u64) -> Decimal {
    Decimal::from(n)
}

/// Weekday factors of a daily series: the median of each weekday's value over the series'
/// median (1 for a weekday seen fewer than twice).
pub fn weekday_factors(series: &[(NaiveDate, Decimal)]) -> [Decimal; 7] {
    let mut f = [Decimal::ONE; 7];
    let values: Vec<Decimal> = series.iter().map(|(_, v)| *v).collect();
    let Some(m) = median(&values).filter(|m| *m > Decimal::ZERO) else {
        return f;
    };
    for (w, slot) in f.iter_mut().enumerate() {
        let of_day: Vec<Decimal> = series
            .iter()
            .filter(|(d, _)| d.weekday().num_days_from_monday() as usize == w)
            .map(|(_, v)| *v / m)
            .collect();
        if of_day.len() >= 2
            && let Some(x) = median(&of_day).filter(|x| *x > Decimal::ZERO)
        {
            *slot = x;
        }
    }
    f
}

fn weekday(d: NaiveDate) -> usize {
    d.weekday().num_days_from_monday() as usize
}

/// A figure against its baseline, before the bar of its level is applied.
struct Measured {
    kind: AnomalyKind,
    value: Decimal,
    expected: Decimal,
    noise: Decimal,
    /// Events the figure differs from its baseline by, in the direction it may be flagged.
    effect: Decimal,
    history: usize,
    both_ways: bool,
}

impl Measured {
    fn verdict(self, bar: Bar) -> Verdict {
        if self.noise <= Decimal::ZERO {
            return Verdict::Normal;
        }
        let score = ((self.value - self.expected) / self.noise).round_dp(2);
        let high = score >= bar.threshold;
        let low = self.both_ways && score <= -bar.threshold;
        if (high || low) && self.effect >= bar.effect {
            Verdict::Flagged(Finding {
                kind: self.kind,
                direction: if high {
                    Direction::High
                } else {
                    Direction::Low
                },
                value: self.value.round_dp(6),
                expected: self.expected.round_dp(6),
                score,
                history: self.history as u32,
            })
        } else {
            Verdict::Normal
        }
    }
}

fn volume(hist: &[(NaiveDate, &Figures)], today: (NaiveDate, &Figures)) -> Option<Measured> {
    let series: Vec<(NaiveDate, Decimal)> =
        hist.iter().map(|(d, f)| (*d, count(f.payments))).collect();
    if series.len() < MIN_HISTORY {
        return None;
    }
    let factors = weekday_factors(&series);
    let adjusted: Vec<Decimal> = series
        .iter()
        .map(|(d, v)| *v / factors[weekday(*d)])
        .collect();
    let level = median(&adjusted)?;
    if level < MIN_VOLUME {
        return None;
    }
    let s = factors[weekday(today.0)];
    let expected = level * s;
    let spread = MAD_TO_SIGMA * mad(&adjusted, level) * s;
    // Counting noise, and 3 % for what a count's own noise leaves out (campaigns, paydays).
    let noise = spread.max(sqrt(expected)).max(expected * dec!(0.03));
    let value = count(today.1.payments);
    Some(Measured {
        kind: AnomalyKind::Volume,
        value,
        expected,
        noise,
        effect: (value - expected).abs(),
        history: series.len(),
        both_ways: true,
    })
}

/// Delivery days of the history (the subject's statement had lines).
fn deliveries<'a>(hist: &[(NaiveDate, &'a Figures)]) -> Vec<(NaiveDate, &'a Figures)> {
    hist.iter().filter(|(_, f)| f.lines > 0).copied().collect()
}

/// A rate's verdict: `of` gives (events, items) of a day; binomial noise at the baseline rate.
fn rate(
    kind: AnomalyKind,
    hist: &[(NaiveDate, &Figures)],
    today: &Figures,
    of: impl Fn(&Figures) -> (u64, u64),
) -> Option<Measured> {
    let (events, items) = of(today);
    if today.lines == 0 || items < MIN_ITEMS {
        return None;
    }
    let rates: Vec<Decimal> = deliveries(hist)
        .iter()
        .map(|(_, f)| of(f))
        .filter(|(_, n)| *n >= MIN_ITEMS)
        .map(|(e, n)| count(e) / count(n))
        .collect();
    if rates.len() < MIN_HISTORY {
        return None;
    }
    let base = median(&rates)?;
    let n = count(items);
    let p = base.max(Decimal::ONE / n);
    let noise = (MAD_TO_SIGMA * mad(&rates, base)).max(sqrt(p * (Decimal::ONE - p) / n));
    let value = count(events) / n;
    Some(Measured {
        kind,
        value,
        expected: base,
        noise,
        effect: count(events) - base * n,
        history: rates.len(),
        both_ways: false,
    })
}

fn mismatch_rate(hist: &[(NaiveDate, &Figures)], today: (NaiveDate, &Figures)) -> Option<Measured> {
    rate(AnomalyKind::MismatchRate, hist, today.1, |f| {
        (f.new_breaks, f.decided)
    })
}

fn fee_variance(hist: &[(NaiveDate, &Figures)], today: (NaiveDate, &Figures)) -> Option<Measured> {
    rate(
        AnomalyKind::FeeVariance,
        hist,
        today.1,
        Figures::fee_variance_lines,
    )
}

/// Calendar days the delivery of `date` covers: since the delivery before it (1 to 7).
fn cover(prev: Option<NaiveDate>, date: NaiveDate) -> i64 {
    prev.map(|p| (date - p).num_days())
        .unwrap_or(1)
        .clamp(1, MAX_COVER)
}

fn break_count(hist: &[(NaiveDate, &Figures)], today: (NaiveDate, &Figures)) -> Option<Measured> {
    if today.1.lines == 0 {
        return None;
    }
    let days = deliveries(hist);
    let per_day: Vec<Decimal> = days
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, (d, f))| count(f.new_breaks) / Decimal::from(cover(Some(days[i - 1].0), *d)))
        .collect();
    if per_day.len() < MIN_HISTORY {
        return None;
    }
    let base = median(&per_day)?;
    let c = Decimal::from(cover(days.last().map(|(d, _)| *d), today.0));
    let expected = base * c;
    let noise = (MAD_TO_SIGMA * mad(&per_day, base) * c).max(sqrt(expected.max(Decimal::ONE)));
    let value = count(today.1.new_breaks);
    Some(Measured {
        kind: AnomalyKind::BreakCount,
        value,
        expected,
        noise,
        effect: value - expected,
        history: per_day.len(),
        both_ways: false,
    })
}

#[cfg(test)]
mod tests;
