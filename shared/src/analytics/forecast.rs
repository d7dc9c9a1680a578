//! Volume forecast of a bank (docs/anomalies.md): the median of the last two weeks' payments,
//! each divided by its weekday's factor, times the factor of the day forecast. The interval is
//! what the method's own past errors give: the 10th and 90th percentiles of actual / forecast
//! over rolling origins of the history, 1 to 7 days ahead (an 80 % interval that is as wide as
//! the method has been wrong, not a textbook formula). [`backtest`] scores the method against
//! the naive forecast (the same weekday a week before).

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::{Decimal, dec};
use serde::{Deserialize, Serialize};

use super::anomaly::{MIN_HISTORY, weekday_factors};
use super::stats::{median, quantile};

/// Days ahead a forecast and its backtest look.
pub const HORIZON: u64 = 7;
/// Days of history the level is the median of.
const LEVEL_DAYS: usize = 14;
/// Days of history the weekday factors come from.
const SEASON_DAYS: usize = 56;
/// Fewest backtest errors an interval is drawn from.
const MIN_ERRORS: usize = 10;

/// The forecast of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayForecast {
    /// The day.
    pub date: NaiveDate,
    /// Payments expected.
    pub expected: Decimal,
    /// Lower end of the 80 % interval (`None` while the history is too short to tell).
    pub low: Option<Decimal>,
    /// Upper end of the 80 % interval.
    pub high: Option<Decimal>,
}

/// The forecast for `date` from `series` (daily payments, oldest first, all before `date`).
pub fn point(series: &[(NaiveDate, Decimal)], date: NaiveDate) -> Option<Decimal> {
    if series.len() < MIN_HISTORY {
        return None;
    }
    let season = &series[series.len().saturating_sub(SEASON_DAYS)..];
    let factors = weekday_factors(season);
    let wd = |d: NaiveDate| d.weekday().num_days_from_monday() as usize;
    let recent: Vec<Decimal> = season[season.len().saturating_sub(LEVEL_DAYS)..]
        .iter()
        .map(|(d, v)| *v / factors[wd(*d)])
        .collect();
    Some((median(&recent)? * factors[wd(date)]).round_dp(2))
}

/// Actual / forecast of every day 1 to [`HORIZON`] days after each origin of `series` with
/// enough history before it.
fn errors(series: &[(NaiveDate, Decimal)]) -> Vec<Decimal> {
    let mut out = Vec::new();
    for origin in MIN_HISTORY..series.len() {
        for (date, actual) in series[origin..].iter().take(HORIZON as usize) {
            if let Some(f) = point(&series[..origin], *date).filter(|f| *f > Decimal::ZERO) {
                out.push(*actual / f);
            }
        }
    }
    out
}

/// The forecast of each of `dates` (after the last day of `series`) with its interval.
pub fn forecast(series: &[(NaiveDate, Decimal)], dates: &[NaiveDate]) -> Vec<DayForecast> {
    let ratios = errors(series);
    let band = (ratios.len() >= MIN_ERRORS)
        .then(|| Some((quantile(&ratios, dec!(0.1))?, quantile(&ratios, dec!(0.9))?)))
        .flatten();
    dates
        .iter()
        .filter_map(|d| {
            let expected = point(series, *d)?;
            Some(DayForecast {
                date: *d,
                expected,
                low: band.map(|(lo, _)| (expected * lo).round_dp(0)),
                high: band.map(|(_, hi)| (expected * hi).round_dp(0)),
            })
        })
        .collect()
}

/// How the method did on a history, against the naive forecast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backtest {
    /// Days forecast.
    pub points: u32,
    /// Mean absolute percentage error of the method, in per cent.
    pub mape: Decimal,
    /// Mean absolute percentage error of the same weekday a week before, in per cent.
    pub naive_mape: Decimal,
    /// Share of the days inside their 80 % interval, in per cent.
    pub coverage: Decimal,
}

/// Each origin after [`MIN_HISTORY`] + 7 days forecasts the next [`HORIZON`] days from the
/// history before it alone; the errors are averaged over every day forecast.
pub fn backtest(series: &[(NaiveDate, Decimal)]) -> Option<Backtest> {
    let (mut n, mut ape, mut naive_ape, mut inside, mut with_band) =
        (0u32, Decimal::ZERO, Decimal::ZERO, 0u32, 0u32);
    for origin in MIN_HISTORY + 7..series.len() {
        let ahead: Vec<NaiveDate> = series[origin..]
            .iter()
            .take(HORIZON as usize)
            .map(|(d, _)| *d)
            .collect();
        for f in forecast(&series[..origin], &ahead) {
            let Some((_, actual)) = series.iter().find(|(d, _)| *d == f.date) else {
                continue;
            };
            let week_before = f.date.checked_sub_days(Days::new(7));
            let Some((_, naive)) = series[..origin]
                .iter()
                .find(|(d, _)| Some(*d) == week_before)
            else {
                continue;
            };
            if actual.is_zero() {
                continue;
            }
            n += 1;
            ape += (*actual - f.expected).abs() / *actual;
            naive_ape += (*actual - *naive).abs() / *actual;
            if let (Some(lo), Some(hi)) = (f.low, f.high) {
                with_band += 1;
                if lo <= *actual && *actual <= hi {
                    inside += 1;
                }
            }
        }
    }
    if n == 0 {
        return None;
    }
    let pct =
        |x: Decimal, of: u32| (x * Decimal::ONE_HUNDRED / Decimal::from(of.max(1))).round_dp(2);
    Some(Backtest {
        points: n,
        mape: pct(ape, n),
        naive_mape: pct(naive_ape, n),
        coverage: pct(Decimal::from(inside), with_band),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payments with a weekday pattern (quiet weekends), a slow trend and a deterministic
    /// wobble of up to 8 per cent.
    fn series(days: u64) -> Vec<(NaiveDate, Decimal)> {
        let Some(first) = NaiveDate::from_ymd_opt(2026, 8, 3) else {
            return Vec::new();
        };
        (0..days)
            .map(|i| {
                let d = first + Days::new(i);
                let base = match d.weekday().num_days_from_monday() {
                    5 => 900,
                    6 => 750,
                    _ => 1000,
                } + i as i64 / 2;
                let wobble = ((i * 7919) % 161) as i64 - 80;
                (d, Decimal::from(base + wobble))
            })
            .collect()
    }

    #[test]
    fn the_forecast_follows_the_weekday_pattern() -> Result<(), String> {
        let s = series(56);
        let last = s[55].0;
        let next: Vec<NaiveDate> = (1..=7).map(|i| last + Days::new(i)).collect();
        let f = forecast(&s, &next);
        assert_eq!(f.len(), 7);
        let sunday = f
            .iter()
            .find(|x| x.date.weekday().num_days_from_monday() == 6);
        let wednesday = f
            .iter()
            .find(|x| x.date.weekday().num_days_from_monday() == 2);
        let (Some(sun), Some(wed)) = (sunday, wednesday) else {
            return Err(format!("a week has a Sunday and a Wednesday: {f:?}"));
        };
        assert!(sun.expected < wed.expected * dec!(0.85), "{sun:?} {wed:?}");
        for x in &f {
            let (Some(lo), Some(hi)) = (x.low, x.high) else {
                return Err(format!("56 days give an interval: {x:?}"));
            };
            assert!(lo <= x.expected && x.expected <= hi, "{x:?}");
        }
        Ok(())
    }

    #[test]
    fn the_method_beats_the_naive_weekday_forecast_and_its_interval_holds() -> Result<(), String> {
        let b = backtest(&series(60)).ok_or("60 days backtest")?;
        assert!(b.points > 100, "{b:?}");
        assert!(b.mape < b.naive_mape, "{b:?}");
        assert!(b.coverage >= dec!(70), "{b:?}");
        Ok(())
    }

    #[test]
    fn a_short_history_forecasts_nothing() {
        let s = series(10);
        assert_eq!(forecast(&s, &[s[9].0 + Days::new(1)]), Vec::new());
        assert_eq!(backtest(&s), None);
    }
}
