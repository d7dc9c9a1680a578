//! How the generator spells amounts, times, ids and CSV fields, and the statement record the
//! bank formats frame: the leaf every writer of the generator uses.

use std::fmt::Write as _;

use chrono::DateTime;
use recon_shared::money::Currency;

/// `minor` as a decimal string at `exponent` places with `sep` as decimal separator.
pub fn fmt_minor(out: &mut String, minor: i64, exponent: u32, sep: char) {
    if minor < 0 {
        out.push('-');
    }
    let abs = minor.unsigned_abs();
    if exponent == 0 {
        let _ = write!(out, "{abs}");
        return;
    }
    let p = 10u64.pow(exponent);
    let _ = write!(
        out,
        "{}{sep}{:0width$}",
        abs / p,
        abs % p,
        width = exponent as usize
    );
}

pub fn minor_str(minor: i64, cur: Currency) -> String {
    let mut s = String::new();
    fmt_minor(&mut s, minor, cur.exponent(), '.');
    s
}

pub fn csv_field(out: &mut String, value: &str, delim: char) {
    if value.contains([delim, '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

pub fn rfc3339_ms(ms: i64) -> String {
    let mut s = String::with_capacity(24);
    push_rfc3339_ms(&mut s, ms);
    s
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` without going through a format-string interpreter (hot path).
pub fn push_rfc3339_ms(out: &mut String, ms: i64) {
    let dt = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let (d, t) = (dt.date_naive(), dt.time());
    use chrono::{Datelike, Timelike};
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        d.month(),
        d.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms.rem_euclid(1000)
    );
}

/// The id of the generated user `u`.
pub fn user_id(u: u32) -> String {
    format!("U{:08}", u + 1)
}

/// One statement record as written, with its signed amount in minor units of the settlement
/// currency (the MT940 and camt.053 framing adds them up into balances).
pub struct Rec {
    pub text: String,
    pub amount_minor: i64,
}

impl AsRef<str> for Rec {
    fn as_ref(&self) -> &str {
        &self.text
    }
}
