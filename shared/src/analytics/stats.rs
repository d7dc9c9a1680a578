//! Robust statistics over exact decimals: median, median absolute deviation, nearest-rank
//! quantiles and a square root, with no float anywhere.

use rust_decimal::Decimal;
use rust_decimal::dec;

/// Scales a median absolute deviation to the standard deviation of a normal distribution.
pub const MAD_TO_SIGMA: Decimal = dec!(1.4826);

/// `num / den` rounded to 6 decimals (`None` when `den` is 0).
pub fn ratio(num: u64, den: u64) -> Option<Decimal> {
    (den > 0).then(|| (Decimal::from(num) / Decimal::from(den)).round_dp(6))
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub fn median(values: &[Decimal]) -> Option<Decimal> {
    let mut v = values.to_vec();
    v.sort();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / Decimal::TWO),
    }
}

/// The median absolute deviation of `values` from `center`.
pub fn mad(values: &[Decimal], center: Decimal) -> Decimal {
    let dev: Vec<Decimal> = values.iter().map(|v| (*v - center).abs()).collect();
    median(&dev).unwrap_or(Decimal::ZERO)
}

/// The nearest-rank `q` quantile (0 ≤ q ≤ 1) of `values`.
pub fn quantile(values: &[Decimal], q: Decimal) -> Option<Decimal> {
    let mut v = values.to_vec();
    v.sort();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let rank = (q * Decimal::from(n)).ceil();
    let i = usize::try_from(rank.mantissa() / 10i128.pow(rank.scale()))
        .unwrap_or(0)
        .clamp(1, n);
    Some(v[i - 1])
}

/// The square root of `x` (0 for `x` ≤ 0), to 6 decimals, by Newton's method.
pub fn sqrt(x: Decimal) -> Decimal {
    if x <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let mut r = if x > Decimal::ONE {
        x / Decimal::TWO
    } else {
        Decimal::ONE
    };
    for _ in 0..100 {
        let next = (r + x / r) / Decimal::TWO;
        if (next - r).abs() < dec!(0.0000001) {
            r = next;
            break;
        }
        r = next;
    }
    r.round_dp(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: &[i64]) -> Vec<Decimal> {
        v.iter().map(|x| Decimal::from(*x)).collect()
    }

    #[test]
    fn median_and_mad_are_robust_to_one_outlier() {
        let v = d(&[10, 11, 9, 10, 12, 1000]);
        assert_eq!(median(&v), Some(dec!(10.5)));
        assert_eq!(mad(&v, dec!(10.5)), dec!(1));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&d(&[3, 1, 2])), Some(dec!(2)));
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v = d(&[5, 1, 4, 2, 3]);
        assert_eq!(quantile(&v, dec!(0.1)), Some(dec!(1)));
        assert_eq!(quantile(&v, dec!(0.5)), Some(dec!(3)));
        assert_eq!(quantile(&v, dec!(0.9)), Some(dec!(5)));
        assert_eq!(quantile(&v, Decimal::ONE), Some(dec!(5)));
        assert_eq!(quantile(&[], dec!(0.5)), None);
    }

    #[test]
    fn square_roots() {
        assert_eq!(sqrt(dec!(16)), dec!(4));
        assert_eq!(sqrt(dec!(2)), dec!(1.414214));
        assert_eq!(sqrt(dec!(0.25)), dec!(0.5));
        assert_eq!(sqrt(dec!(1000000)), dec!(1000));
        assert_eq!(sqrt(Decimal::ZERO), Decimal::ZERO);
        assert_eq!(sqrt(dec!(-4)), Decimal::ZERO);
        assert_eq!(ratio(1, 3), Some(dec!(0.333333)));
        assert_eq!(ratio(1, 0), None);
    }
}
