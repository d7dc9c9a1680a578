//! The banks' calendars in the multi-day world: business days (weekend, one holiday), the
//! settlement lag of each bank, the delivery a bank misses, and the dates the rules derive
//! from them (posting, delivery, `expected_by`).

use chrono::{Datelike, Days, NaiveDate, Weekday};
use recon_shared::Result;
use recon_shared::calendar::Calendar;

use crate::rng::Rng;
use crate::world::World;

/// Settlement lag profiles in per cent of lines posted T+0, T+1, T+2 and T+3 business days
/// after their payment; each bank draws one.
pub const LAG_PROFILES: [[u64; 4]; 4] = [
    [10, 60, 25, 5],
    [5, 50, 35, 10],
    [20, 65, 12, 3],
    [0, 45, 40, 15],
];

/// The calendars and settlement habits of every bank of a multi-day world.
pub struct BankDays {
    /// One calendar per bank (weekend SAT/SUN; the holiday bank's holiday).
    pub calendars: Vec<Calendar>,
    /// Per bank, the per-cent weights of a lag of 0..=3 business days.
    pub lags: Vec<[u64; 4]>,
    /// The bank that misses one delivery and the business day it misses: that day's lines
    /// come with the next business day's delivery.
    pub missed: Option<(usize, NaiveDate)>,
    /// The bank with a holiday on a weekday, and the date.
    pub holiday: Option<(usize, NaiveDate)>,
    /// Settlement window in business days (the tolerances').
    pub window: u32,
    /// Business days an unmatched item stays open past its window or delivery.
    pub grace: u32,
}

/// The first date on or after `from`, within four weeks, that `ok` accepts.
fn first_date(from: NaiveDate, ok: impl Fn(NaiveDate) -> bool) -> Option<NaiveDate> {
    (0..28).map(|i| from + Days::new(i)).find(|d| ok(*d))
}

impl BankDays {
    /// Calendars and lags of `world`'s banks for a world starting on `first`. Nothing here
    /// depends on how many days are generated, so a longer world is the same world continued:
    /// the holiday (bank 3) is the first weekday from `first` + 3 days, the missed delivery
    /// (bank 2) the first Monday to Thursday from `first` + 2 days that is a business day
    /// followed by one.
    pub fn new(
        world: &World,
        first: NaiveDate,
        window: u32,
        grace: u32,
        rng: &mut Rng,
    ) -> Result<Self> {
        let k = world.banks.len();
        let weekend = vec![Weekday::Sat, Weekday::Sun];
        let is_weekday = |d: NaiveDate| d.weekday().num_days_from_monday() < 5;
        let holiday = first_date(first + Days::new(3), is_weekday).map(|d| (2 % k, d));
        let calendars: Vec<Calendar> = world
            .banks
            .iter()
            .enumerate()
            .map(|(i, b)| Calendar {
                bank_id: b.id.clone(),
                weekend: weekend.clone(),
                holidays: holiday
                    .filter(|(h, _)| *h == i)
                    .map(|(_, d)| d)
                    .into_iter()
                    .collect(),
                settlement_window_days: None,
            })
            .collect();
        let missed_bank = 1 % k;
        let cal = &calendars[missed_bank];
        let missed = first_date(first + Days::new(2), |d| {
            d.weekday().num_days_from_monday() < 4
                && cal.is_business_day(d)
                && cal.is_business_day(d + Days::new(1))
        })
        .map(|d| (missed_bank, d));
        let lags = (0..k)
            .map(|_| LAG_PROFILES[rng.below(LAG_PROFILES.len() as u64) as usize])
            .collect();
        Ok(BankDays {
            calendars,
            lags,
            missed,
            holiday,
            window,
            grace,
        })
    }

    /// Whether `bank` posts on `date`.
    pub fn is_business_day(&self, bank: usize, date: NaiveDate) -> bool {
        self.calendars[bank].is_business_day(date)
    }

    /// Whether `bank` delivers a statement for `date`: a business day it does not miss.
    pub fn delivers(&self, bank: usize, date: NaiveDate) -> bool {
        self.is_business_day(bank, date) && self.missed != Some((bank, date))
    }

    /// The day `bank` posts a payment of `date` settled `lag` business days later: that
    /// business day, or for a lag of 0 on a day the bank does not post, its next business day.
    pub fn posting(&self, bank: usize, date: NaiveDate, lag: u32) -> NaiveDate {
        let cal = &self.calendars[bank];
        if lag == 0 && !cal.is_business_day(date) {
            cal.add_business_days(date, 1)
        } else {
            cal.add_business_days(date, lag)
        }
    }

    /// The delivery a line posted on `posting` belongs to: that day's, or the next business
    /// day's when the bank misses `posting`'s.
    pub fn delivery(&self, bank: usize, posting: NaiveDate) -> NaiveDate {
        if self.missed == Some((bank, posting)) {
            self.calendars[bank].add_business_days(posting, 1)
        } else {
            posting
        }
    }

    /// The date by which a payment of `date` must be on a statement of `bank`: `date` plus the
    /// window in the bank's business days.
    pub fn expected_by(&self, bank: usize, date: NaiveDate) -> NaiveDate {
        self.calendars[bank].add_business_days(date, self.window)
    }

    /// The `n`-th business day of `bank` after `date`.
    pub fn add_business_days(&self, bank: usize, date: NaiveDate, n: u32) -> NaiveDate {
        self.calendars[bank].add_business_days(date, n)
    }

    /// Business days of `bank` from `from` (excluded) to `to` (included).
    pub fn business_days_between(&self, bank: usize, from: NaiveDate, to: NaiveDate) -> u32 {
        self.calendars[bank].business_days_between(from, to)
    }

    /// A settlement lag of `bank`, drawn from its profile.
    pub fn lag(&self, bank: usize, rng: &mut Rng) -> u32 {
        let mut acc = 0;
        let cum: Vec<u64> = self.lags[bank]
            .iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        rng.weighted(&cum) as u32
    }
}
