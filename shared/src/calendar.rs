//! A bank's business calendar (`config/calendars/{bank_id}.json`, design.md §11): the days it
//! posts and delivers a statement, and its settlement window. Business days are counted in it.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::ids::BankId;

/// The days a bank posts, and how long its settlements may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// The bank the calendar is of (must match the file name).
    pub bank_id: BankId,
    /// Weekdays the bank never posts on (`["SAT", "SUN"]`); none when absent.
    #[serde(
        default,
        serialize_with = "ser_weekdays",
        deserialize_with = "de_weekdays",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub weekend: Vec<Weekday>,
    /// Dates the bank does not post on besides its weekend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holidays: Vec<NaiveDate>,
    /// The bank's settlement window in business days, when it differs from the tolerances'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_window_days: Option<u32>,
}

/// The weekday codes of a calendar file, Monday first.
const WEEKDAY_CODES: [(&str, Weekday); 7] = [
    ("MON", Weekday::Mon),
    ("TUE", Weekday::Tue),
    ("WED", Weekday::Wed),
    ("THU", Weekday::Thu),
    ("FRI", Weekday::Fri),
    ("SAT", Weekday::Sat),
    ("SUN", Weekday::Sun),
];

fn ser_weekdays<S: Serializer>(days: &[Weekday], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(
        days.iter()
            .map(|d| WEEKDAY_CODES[d.num_days_from_monday() as usize].0),
    )
}

fn de_weekdays<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Weekday>, D::Error> {
    let codes = Vec::<String>::deserialize(d)?;
    codes
        .iter()
        .map(|c| {
            WEEKDAY_CODES
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(c))
                .map(|(_, w)| *w)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "`{c}` is not a weekday: expected one of MON, TUE, WED, THU, FRI, SAT, SUN"
                    ))
                })
        })
        .collect()
}

impl Calendar {
    /// The calendar of a bank that posts every day (a bank without a calendar file).
    pub fn every_day(bank_id: BankId) -> Self {
        Self {
            bank_id,
            weekend: Vec::new(),
            holidays: Vec::new(),
            settlement_window_days: None,
        }
    }

    /// Whether the bank posts on `date`.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !self.weekend.contains(&date.weekday()) && !self.holidays.contains(&date)
    }

    /// The `n`-th business day after `date` (`date` itself for 0, whatever it is).
    pub fn add_business_days(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut d = date;
        let mut left = n;
        // A calendar with every weekday off would never end: it is refused by `check`.
        while left > 0 {
            d = d + Days::new(1);
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Business days from `from` (excluded) to `to` (included); 0 when `to` is not later.
    pub fn business_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d = d + Days::new(1);
            if self.is_business_day(d) {
                n += 1;
            }
        }
        n
    }

    /// Parses a calendar file and checks it names `bank` and leaves the bank a business day.
    pub fn from_json(file: &str, bank: &BankId, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::InvalidConfig {
            name: file.to_string(),
            reason,
        };
        let cal: Calendar = serde_json::from_slice(crate::config_files::strip_bom(bytes))
            .map_err(|e| bad(format!("{e} (line {}, column {})", e.line(), e.column())))?;
        if &cal.bank_id != bank {
            return Err(bad(format!(
                "`bank_id` is `{}` but the file is the calendar of `{bank}`: name the file after its bank",
                cal.bank_id
            )));
        }
        if cal.weekend.len() >= 7 {
            return Err(bad(
                "`weekend` names every weekday: the bank would never post".into(),
            ));
        }
        if cal.settlement_window_days.is_some_and(|w| w > 30) {
            return Err(bad(
                "`settlement_window_days` must be 0 to 30 business days".into(),
            ));
        }
        Ok(cal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<NaiveDate> {
        Ok(crate::ids::BusinessDate::parse(s)?.date())
    }

    fn cal() -> Result<Calendar> {
        Ok(Calendar {
            bank_id: BankId::new("bank_01")?,
            weekend: vec![Weekday::Sat, Weekday::Sun],
            holidays: vec![d("2026-11-26")?],
            settlement_window_days: Some(2),
        })
    }

    #[test]
    fn business_days_skip_weekends_and_holidays() -> Result<()> {
        let c = cal()?;
        // Wed 25th + 1 skips Thanksgiving (26th) to Friday; +2 skips the weekend to Monday.
        assert_eq!(c.add_business_days(d("2026-11-25")?, 1), d("2026-11-27")?);
        assert_eq!(c.add_business_days(d("2026-11-25")?, 2), d("2026-11-30")?);
        // From a Saturday, the first business day is Monday.
        assert_eq!(c.add_business_days(d("2026-11-28")?, 1), d("2026-11-30")?);
        assert_eq!(c.add_business_days(d("2026-11-28")?, 0), d("2026-11-28")?);
        assert_eq!(
            c.business_days_between(d("2026-11-25")?, d("2026-11-30")?),
            2
        );
        assert_eq!(
            c.business_days_between(d("2026-11-30")?, d("2026-11-25")?),
            0
        );
        assert!(!c.is_business_day(d("2026-11-26")?));
        assert!(c.is_business_day(d("2026-11-27")?));
        Ok(())
    }

    #[test]
    fn a_calendar_file_round_trips_and_bad_ones_are_refused() -> Result<()> {
        let bank = BankId::new("bank_01")?;
        let text = serde_json::to_string(&cal()?)?;
        assert!(text.contains(r#""weekend":["SAT","SUN"]"#), "{text}");
        assert_eq!(
            Calendar::from_json("c.json", &bank, text.as_bytes())?,
            cal()?
        );
        let other = BankId::new("bank_02")?;
        let refused = |bank: &BankId, text: &str| {
            Calendar::from_json("c.json", bank, text.as_bytes())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(refused(&other, &text).contains("calendar of `bank_02`"));
        let long_name = r#"{"bank_id":"bank_01","weekend":["SATURDAY"]}"#;
        assert!(refused(&bank, long_name).contains("not a weekday"));
        let all = r#"{"bank_id":"bank_01","weekend":["MON","TUE","WED","THU","FRI","SAT","SUN"]}"#;
        assert!(refused(&bank, all).contains("never post"));
        let plain = Calendar::from_json("c.json", &bank, br#"{"bank_id":"bank_01"}"#)?;
        assert_eq!(plain, Calendar::every_day(bank));
        Ok(())
    }
}
