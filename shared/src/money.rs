//! Currencies (ISO 4217 with their minor unit) and exact money arithmetic on `rust_decimal`.
//!
//! Rounding is explicit and happens in one place: [`ROUNDING`] (half away from zero, the
//! commercial rule), applied at the currency's minor unit.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::BusinessDate;

/// How amounts are rounded to a currency's minor unit everywhere in the product.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Decimal places FX rates are kept with (at least 8, DESIGN §5).
pub const FX_RATE_SCALE: u32 = 10;

/// Largest minor-unit exponent among ISO 4217 currencies (CLF, UYW), and so the scale of
/// every money column in Arrow/Parquet.
pub const MAX_MINOR_UNIT: u32 = 4;

/// Active ISO 4217 codes and their minor-unit exponent, sorted by code.
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// An ISO 4217 currency. Only codes of the active list are accepted.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// Accepts an upper- or lower-case code of the active ISO 4217 list.
    pub fn new(code: &str) -> Result<Self> {
        let t = code.trim().as_bytes();
        let unknown = || Error::UnknownCurrency(code.chars().take(8).collect());
        let [a, b, c] = t else { return Err(unknown()) };
        let upper = [
            a.to_ascii_uppercase(),
            b.to_ascii_uppercase(),
            c.to_ascii_uppercase(),
        ];
        let idx = ISO_4217
            .binary_search_by(|(c, _)| c.as_bytes().cmp(&upper[..]))
            .map_err(|_| unknown())?;
        Ok(Self {
            code: upper,
            exponent: ISO_4217[idx].1,
        })
    }

    /// The ISO 4217 alphabetic code, upper case (`EUR`, `JPY`).
    pub fn code(&self) -> &str {
        // The bytes come from the ASCII table above.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Number of decimal places of the minor unit (JPY 0, USD 2, KWD 3).
    pub fn exponent(&self) -> u32 {
        u32::from(self.exponent)
    }

    /// Rounds to the minor unit with the product's [`ROUNDING`] rule.
    pub fn round(&self, amount: Decimal) -> Decimal {
        let mut r = amount.round_dp_with_strategy(self.exponent(), ROUNDING);
        r.rescale(self.exponent());
        r
    }

    /// Checks that `amount` has no more decimals than the minor unit allows (no silent rounding
    /// of input), and returns it at exactly the minor-unit scale.
    pub fn exact(&self, amount: Decimal) -> Result<Decimal> {
        let normalized = amount.normalize();
        if normalized.scale() > self.exponent() {
            return Err(Error::InvalidAmount {
                value: amount.to_string(),
                reason: format!(
                    "{} allows {} decimal place(s)",
                    self.code(),
                    self.exponent()
                ),
            });
        }
        let mut r = normalized;
        r.rescale(self.exponent());
        Ok(r)
    }

    /// `amount` rounded to the minor unit with [`ROUNDING`], in minor units: the same as
    /// `to_minor(round(amount))`, without decimal arithmetic when no rounding is needed.
    pub fn round_to_minor(&self, amount: Decimal) -> Result<i64> {
        let exp = self.exponent();
        let (m, scale) = (amount.mantissa(), amount.scale());
        let mantissa = if scale <= exp {
            10i128
                .checked_pow(exp - scale)
                .and_then(|f| m.checked_mul(f))
        } else {
            match 10i128.checked_pow(scale - exp) {
                // Trailing zeros only (a Decimal128(18, 4) cent amount): no rounding.
                Some(f) if m % f == 0 => Some(m / f),
                _ => Some(self.round(amount).mantissa()),
            }
        };
        mantissa
            .and_then(|m| i64::try_from(m).ok())
            .ok_or_else(|| Error::InvalidAmount {
                value: amount.to_string(),
                reason: "does not fit 64-bit minor units".into(),
            })
    }

    /// An amount given in minor units (cents).
    pub fn from_minor(&self, minor: i64) -> Decimal {
        Decimal::new(minor, self.exponent())
    }

    /// The amount in minor units; fails when it is not exact at the minor unit.
    pub fn to_minor(&self, amount: Decimal) -> Result<i64> {
        let exact = self.exact(amount)?;
        i64::try_from(exact.mantissa()).map_err(|_| Error::InvalidAmount {
            value: amount.to_string(),
            reason: "does not fit 64-bit minor units".into(),
        })
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

/// An exact amount in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// The amount in major units (`12.34` EUR), exact `Decimal`; signed, never a float.
    pub amount: Decimal,
    /// The currency the amount is in; its exponent fixes the minor unit the amount rounds to.
    pub currency: Currency,
}

impl Money {
    /// Money rounded to the currency's minor unit.
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self {
            amount: currency.round(amount),
            currency,
        }
    }

    /// Nothing in `currency`: the starting value of a sum.
    pub fn zero(currency: Currency) -> Self {
        Self::new(Decimal::ZERO, currency)
    }

    /// Sum of two amounts of the same currency; refuses to add across currencies.
    pub fn checked_add(self, other: Money) -> Result<Money> {
        self.same_currency(other)?;
        self.amount
            .checked_add(other.amount)
            .map(|amount| Money { amount, ..self })
            .ok_or_else(|| overflow(self.amount, other.amount))
    }

    /// Difference of two amounts of the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money> {
        self.same_currency(other)?;
        self.amount
            .checked_sub(other.amount)
            .map(|amount| Money { amount, ..self })
            .ok_or_else(|| overflow(self.amount, other.amount))
    }

    fn same_currency(self, other: Money) -> Result<()> {
        if self.currency != other.currency {
            return Err(Error::CurrencyMismatch {
                left: self.currency.to_string(),
                right: other.currency.to_string(),
            });
        }
        Ok(())
    }
}

fn overflow(a: Decimal, b: Decimal) -> Error {
    Error::InvalidAmount {
        value: format!("{a} and {b}"),
        reason: "arithmetic overflow".into(),
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// Amounts are stored as Decimal128(18, 4) (14 integer digits): an amount is refused, on every
/// input path (delivered files and the stream), when its absolute value reaches this.
pub const AMOUNT_LIMIT: Decimal = rust_decimal::dec!(100000000000000);

/// Whether `amount` can be stored (its absolute value is below [`AMOUNT_LIMIT`]).
pub fn within_amount_limit(amount: Decimal) -> bool {
    amount.abs() < AMOUNT_LIMIT
}

/// [`parse_decimal`]'s reason when the integer part alone has more digits than a decimal holds.
pub const TOO_MANY_DIGITS: &str = "too many digits (overflow)";
/// [`parse_decimal`]'s reason when the digits after the separator (trailing zeros aside) do not
/// fit beside the integer part: the number is not too large, it is too precise.
pub const TOO_MANY_DECIMAL_PLACES: &str =
    "too many decimal places: a decimal holds 28 significant digits in all";

/// Parses a decimal amount as sent by a source: optional sign, digits, one decimal separator
/// (`.` or `,`), optional thousands separators of the other kind are refused (ambiguous).
/// Leading zeros, and trailing zeros after the separator that would not fit, do not count: a
/// 30-decimal `1.000…0` is 1. Too many digits before the separator is [`TOO_MANY_DIGITS`],
/// after it [`TOO_MANY_DECIMAL_PLACES`].
pub fn parse_decimal(raw: &str, decimal_separator: char) -> Result<Decimal> {
    const MAX_DIGITS: usize = 28;
    let s = raw.trim();
    let bad = |reason: &str| Error::InvalidAmount {
        value: s.chars().take(40).collect(),
        reason: reason.to_string(),
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let (neg, digits) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once(decimal_separator).unwrap_or((digits, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad("not a number"));
    }
    if int.is_empty() && frac.is_empty() {
        return Err(bad("no digits"));
    }
    let int = int.trim_start_matches('0');
    if int.len() > MAX_DIGITS {
        return Err(bad(TOO_MANY_DIGITS));
    }
    let frac = if int.len() + frac.len() > MAX_DIGITS {
        frac.trim_end_matches('0')
    } else {
        frac
    };
    if int.len() + frac.len() > MAX_DIGITS {
        return Err(bad(TOO_MANY_DECIMAL_PLACES));
    }
    let mut mantissa: i128 = 0;
    for d in int.bytes().chain(frac.bytes()) {
        mantissa = mantissa * 10 + i128::from(d - b'0');
    }
    if neg {
        mantissa = -mantissa;
    }
    Decimal::try_from_i128_with_scale(mantissa, frac.len() as u32).map_err(|_| bad(TOO_MANY_DIGITS))
}

/// One day's FX table: `base,quote,rate` with exact decimal rates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FxTable {
    rates: BTreeMap<(Currency, Currency), Decimal>,
}

impl FxTable {
    /// Adds the rate that converts `base` into `quote`; refused when it is not positive or has
    /// more than [`FX_RATE_SCALE`] decimal places (it is stored as Decimal128(38, 10)).
    pub fn insert(&mut self, base: Currency, quote: Currency, rate: Decimal) -> Result<()> {
        if rate <= Decimal::ZERO {
            return Err(Error::InvalidAmount {
                value: rate.to_string(),
                reason: format!("FX rate {base}->{quote} must be positive"),
            });
        }
        // Refused, not rounded: the rate is kept on converted lines as Decimal128(38, 10).
        if rate.normalize().scale() > FX_RATE_SCALE {
            return Err(Error::InvalidAmount {
                value: rate.to_string(),
                reason: format!(
                    "FX rate {base}->{quote} has more than {FX_RATE_SCALE} decimal places"
                ),
            });
        }
        self.rates.insert((base, quote), rate);
        Ok(())
    }

    /// The rate to multiply an amount in `base` by to get `quote`; 1 for the same currency.
    pub fn rate(&self, base: Currency, quote: Currency) -> Option<Decimal> {
        if base == quote {
            return Some(Decimal::ONE);
        }
        self.rates.get(&(base, quote)).copied()
    }

    /// Converts into `quote`, rounded to its minor unit; returns the amount and the rate used.
    pub fn convert(
        &self,
        amount: Decimal,
        base: Currency,
        quote: Currency,
        date: BusinessDate,
    ) -> Result<(Decimal, Decimal)> {
        if base == quote {
            return Ok((quote.round(amount), Decimal::ONE));
        }
        let rate = self.rate(base, quote).ok_or_else(|| Error::FxRateMissing {
            base: base.to_string(),
            quote: quote.to_string(),
            date: date.to_string(),
        })?;
        let converted = amount
            .checked_mul(rate)
            .ok_or_else(|| overflow(amount, rate))?;
        Ok((quote.round(converted), rate))
    }

    /// How many `(base, quote)` rates the table holds.
    pub fn len(&self) -> usize {
        self.rates.len()
    }

    /// Whether the table holds no rate (only same-currency conversions succeed).
    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }

    /// Parses `config/fx/{date}.csv` (header `base,quote,rate`).
    pub fn from_csv(text: &str) -> Result<Self> {
        Self::from_file("FX table", text.as_bytes())
    }

    /// Parses the FX table `file` (header `base,quote,rate`, one positive decimal rate per
    /// pair). Every problem names the file and its line (the header is line 1): a line
    /// without 3 fields, an unknown currency, a rate that is not a decimal or not positive,
    /// a pair given twice.
    pub fn from_file(file: &str, bytes: &[u8]) -> Result<Self> {
        const FIX: &str = "correct the line (`base,quote,rate`, a positive decimal rate such as 1.0845) and deliver the table again";
        let bad = |line: usize, reason: String| {
            crate::config_files::ConfigProblem::new(
                file,
                Some(line),
                reason,
                FIX,
                crate::config_files::Scope::All,
            )
            .error()
        };
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            bad(line, "not UTF-8".into())
        })?;
        let mut table = Self::default();
        let mut seen: BTreeMap<(Currency, Currency), usize> = BTreeMap::new();
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default().trim();
        if header != "base,quote,rate" {
            return Err(bad(
                1,
                format!(
                    "header must be `base,quote,rate`, found `{}`",
                    header.chars().take(40).collect::<String>()
                ),
            ));
        }
        for (i, line) in lines.enumerate() {
            let n = i + 2;
            if line.trim().is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.trim().split(',').map(str::trim).collect();
            let [b, q, r] = parts.as_slice() else {
                return Err(bad(
                    n,
                    format!("{} field(s), expected 3 (`base,quote,rate`)", parts.len()),
                ));
            };
            let base = Currency::new(b).map_err(|e| bad(n, format!("base: {e}")))?;
            let quote = Currency::new(q).map_err(|e| bad(n, format!("quote: {e}")))?;
            let rate =
                parse_decimal(r, '.').map_err(|e| bad(n, format!("rate {base}->{quote}: {e}")))?;
            if rate <= Decimal::ZERO {
                return Err(bad(
                    n,
                    format!("rate {base}->{quote} is {rate}, it must be positive"),
                ));
            }
            if let Some(first) = seen.insert((base, quote), n) {
                return Err(bad(
                    n,
                    format!("rate {base}->{quote} is given again (first on line {first})"),
                ));
            }
            table.insert(base, quote, rate)?;
        }
        Ok(table)
    }

    /// Writes the table in the same CSV form, sorted, rates at [`FX_RATE_SCALE`] places.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("base,quote,rate\n");
        for ((b, q), r) in &self.rates {
            let mut r = *r;
            r.rescale(FX_RATE_SCALE);
            out.push_str(&format!("{b},{q},{r}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests;
