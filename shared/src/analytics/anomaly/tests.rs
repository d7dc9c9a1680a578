use chrono::{Datelike, Days, NaiveDate};

use super::*;
use crate::analytics::FeeFigure;
use crate::money::Currency;
use crate::records::SubjectLevel;

fn start() -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 9, 1)
}

/// A bank's day: payments 1000 on weekdays (750 on Sundays), deliveries on weekdays with lines
/// covering the days since the last one, 2 % of the decided items broken, 1 % fee variance;
/// `wobble` varies every count a little, deterministically.
fn day(date: NaiveDate, wobble: u64) -> Figures {
    let eur = Currency::new("EUR").ok();
    let wd = date.weekday().num_days_from_monday();
    let payments = if wd == 6 { 750 } else { 1000 } + wobble * 7;
    let cover = match wd {
        0 => 3,
        5 | 6 => 0,
        _ => 1,
    };
    let lines = if cover == 0 {
        0
    } else {
        1000 * cover + wobble * 5
    };
    let mut fees = std::collections::BTreeMap::new();
    if let (true, Some(eur)) = (lines > 0, eur) {
        fees.insert(
            eur,
            FeeFigure {
                lines,
                lines_with_variance: lines / 100 + wobble % 3,
                charged: Decimal::from(lines),
                variance: Decimal::from(lines / 100),
            },
        );
    }
    Figures {
        payments,
        lines,
        lines_matched: lines,
        decided: lines,
        new_breaks: lines / 50 + wobble % 4,
        fees,
        ..Figures::default()
    }
}

fn history(days: u64) -> Result<Vec<(NaiveDate, Figures)>, String> {
    let first = start().ok_or("date")?;
    Ok((0..days)
        .map(|i| {
            (
                first + Days::new(i),
                day(first + Days::new(i), (i * 7919) % 11),
            )
        })
        .collect())
}

fn verdicts(
    h: &[(NaiveDate, Figures)],
    today: (NaiveDate, &Figures),
) -> Vec<(AnomalyKind, Verdict)> {
    let refs: Vec<(NaiveDate, &Figures)> = h.iter().map(|(d, f)| (*d, f)).collect();
    assess(SubjectLevel::Bank, &refs, today)
}

fn flagged(v: &[(AnomalyKind, Verdict)]) -> Vec<AnomalyKind> {
    v.iter()
        .filter(|(_, x)| matches!(x, Verdict::Flagged(_)))
        .map(|(k, _)| *k)
        .collect()
}

#[test]
fn ordinary_days_raise_no_flag_whatever_their_weekday() -> Result<(), String> {
    let h = history(70)?;
    for i in 42..70 {
        let (date, f) = &h[i];
        let v = verdicts(&h[..i], (*date, f));
        assert_eq!(flagged(&v), Vec::<AnomalyKind>::new(), "{date}: {v:?}");
        assert!(v.iter().any(|(_, x)| *x == Verdict::Normal));
    }
    Ok(())
}

#[test]
fn each_kind_is_flagged_by_its_own_spike() -> Result<(), String> {
    let h = history(56)?;
    let date = h[55].0 + Days::new(1);
    let base = day(date, 3);
    let mut surge = base.clone();
    surge.payments *= 3;
    let mut drop = base.clone();
    drop.payments /= 4;
    let mut mismatches = base.clone();
    mismatches.new_breaks = base.decided / 5;
    let mut fees = base.clone();
    for f in fees.fees.values_mut() {
        f.lines_with_variance = f.lines / 4;
    }
    let cases = [
        (surge, vec![AnomalyKind::Volume], Direction::High),
        (drop, vec![AnomalyKind::Volume], Direction::Low),
        (
            mismatches,
            vec![AnomalyKind::MismatchRate, AnomalyKind::BreakCount],
            Direction::High,
        ),
        (fees, vec![AnomalyKind::FeeVariance], Direction::High),
    ];
    for (figures, kinds, direction) in cases {
        let v = verdicts(&h, (date, &figures));
        assert_eq!(flagged(&v), kinds, "{v:?}");
        for (_, x) in &v {
            if let Verdict::Flagged(f) = x {
                assert_eq!(f.direction, direction);
                assert!(f.score.abs() >= THRESHOLD);
                assert!(f.history as usize >= MIN_HISTORY);
            }
        }
    }
    Ok(())
}

#[test]
fn a_monday_or_a_day_after_a_holiday_covers_more_days() -> Result<(), String> {
    let h = history(56)?;
    // The history ends on a Sunday's eve or so; the day after a one-day gap with two days' lines.
    let mut h2 = h.clone();
    let last = h2.len() - 1;
    let gap_day = h2[last].0;
    if gap_day.weekday().num_days_from_monday() < 5 {
        h2[last].1.lines = 0;
        h2[last].1.new_breaks = 0;
    }
    let date = gap_day + Days::new(1);
    let mut two_days = day(date, 2);
    two_days.new_breaks *= 2;
    two_days.lines *= 2;
    two_days.decided *= 2;
    let v = verdicts(&h2, (date, &two_days));
    assert!(!flagged(&v).contains(&AnomalyKind::BreakCount), "{v:?}");
    Ok(())
}

#[test]
fn too_little_history_or_too_few_items_is_not_judged() -> Result<(), String> {
    let h = history(10)?;
    let date = h[9].0 + Days::new(1);
    let v = verdicts(&h, (date, &day(date, 0)));
    assert!(v.iter().all(|(_, x)| *x == Verdict::NotJudged), "{v:?}");
    let h = history(56)?;
    let tiny = Figures {
        payments: 3,
        lines: 2,
        decided: 2,
        new_breaks: 2,
        ..Figures::default()
    };
    let v = verdicts(&h, (date + Days::new(50), &tiny));
    for (k, x) in &v {
        if *k != AnomalyKind::Volume && *k != AnomalyKind::BreakCount {
            assert_eq!(*x, Verdict::NotJudged, "{k}");
        }
    }
    Ok(())
}

#[test]
fn weekday_factors_find_the_quiet_sunday() -> Result<(), String> {
    let h = history(56)?;
    let series: Vec<(NaiveDate, Decimal)> = h
        .iter()
        .map(|(d, f)| (*d, Decimal::from(f.payments)))
        .collect();
    let f = weekday_factors(&series);
    assert!(f[6] < dec!(0.8) && f[6] > dec!(0.7), "{f:?}");
    assert!(f[2] > dec!(0.98), "{f:?}");
    Ok(())
}

#[test]
fn a_merchant_needs_a_larger_departure_than_a_bank() -> Result<(), String> {
    let h = history(56)?;
    let refs: Vec<(NaiveDate, &Figures)> = h.iter().map(|(d, f)| (*d, f)).collect();
    // A weekday with 15 % more payments: about 4.7 times the noise.
    let date = h[55].0 + Days::new(1);
    let mut busier = day(date, 3);
    busier.payments = busier.payments * 115 / 100;
    let bank = assess(SubjectLevel::Bank, &refs, (date, &busier));
    let merchant = assess(SubjectLevel::Merchant, &refs, (date, &busier));
    assert_eq!(flagged(&bank), vec![AnomalyKind::Volume], "{bank:?}");
    assert_eq!(
        flagged(&merchant),
        Vec::<AnomalyKind>::new(),
        "{merchant:?}"
    );
    Ok(())
}
