//! The multi-day world (`recon generate --days N`, design.md §11): N consecutive calendar days
//! of one world — the same banks, merchants, users, fee rules and tolerances — where payments
//! happen every day and banks settle them on their business days after a lag, pay small
//! merchants by payouts bundling several days, miss a delivery, and the ledger brings a few
//! payments a day late. Its truth is per close (`truth/closes.csv`): what each daily close must
//! write for each bank under the open-item rules of `docs/daily-close.md`.
//!
//! Nothing in it depends on how many days are generated: every day draws from its own random
//! streams, and a decision only looks at what the engine could see by then, so the world of
//! N + 1 days is the world of N days continued (its first N days' files and closes are the
//! same).

pub mod anomalies;
pub mod calendar;
pub mod closes;
mod payments;
mod settle;
mod write;

use chrono::{Days, NaiveDate};
use recon_shared::ids::BusinessDate;
use recon_shared::rules::Tolerances;
use recon_shared::{Error, Result};

pub use calendar::BankDays;
pub use closes::Closes;
pub use write::{files, topics};

use crate::day::{Day, assign_truth};
use crate::knobs::Knobs;
use crate::rng::Rng;
use crate::world::World;

/// Most days one world may have (its fee rules stay the same throughout).
pub const MAX_DAYS: u32 = 62;

/// What the multi-day world decided for a transaction beyond its record.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Settlement lag in business days of its bank (drawn from the bank's profile).
    pub lag: u32,
    /// Seed of the random stream of its lines.
    pub seed: u64,
}

/// A generated multi-day world.
pub struct Span {
    /// The calendar days, first to last.
    pub dates: Vec<BusinessDate>,
    /// Calendars, lags, the holiday and the missed delivery.
    pub bank_days: BankDays,
    /// Every transaction of every day (ledger-late ones included) and every delivered line.
    pub day: Day,
    /// One plan per transaction of `day`.
    pub plans: Vec<Plan>,
    /// The truth per close.
    pub closes: Closes,
    /// The anomalies injected (knob `anomalies`).
    pub anomalies: Vec<anomalies::Anomaly>,
}

impl Span {
    /// The first day.
    pub fn first(&self) -> NaiveDate {
        self.dates[0].date()
    }

    /// The last day.
    pub fn last(&self) -> NaiveDate {
        self.dates[self.dates.len() - 1].date()
    }
}

/// Tolerances of the multi-day world: settlement within 3 business days, items open 2 more,
/// and a composite date window of 6 calendar days (3 business days across a weekend and a
/// holiday).
pub fn tolerances() -> Tolerances {
    Tolerances {
        date_window_days: 6,
        settlement_window_days: 3,
        carry_grace_days: 2,
        ..Tolerances::default()
    }
}

pub(crate) struct SpanBuilder<'w> {
    world: &'w World,
    knobs: &'w Knobs,
    bank_days: &'w BankDays,
    tol: Tolerances,
    /// Seed every date's random streams derive from.
    base: u64,
    first: NaiveDate,
    last: NaiveDate,
    /// Payments of a weekday.
    transactions: usize,
    day: Day,
    plans: Vec<Plan>,
    /// Index of each date's first transaction (and the end).
    date_start: Vec<usize>,
    /// The anomalies to inject.
    anomalies: Vec<anomalies::Anomaly>,
}

/// Builds the world of `days` days from `world`'s first date, `transactions` payments a
/// weekday. `base` seeds the days' streams, `rng` draws the banks' lag profiles.
pub fn build(
    world: &World,
    knobs: &Knobs,
    days: u32,
    transactions: usize,
    base: u64,
    rng: &mut Rng,
) -> Result<Span> {
    if !(2..=MAX_DAYS).contains(&days) {
        return Err(Error::InvalidConfig {
            name: "--days".into(),
            reason: format!("a multi-day world has 2 to {MAX_DAYS} days"),
        });
    }
    let first = world.date.date();
    let dates = (0..u64::from(days))
        .map(|i| BusinessDate::from_date(first + Days::new(i)))
        .collect::<Result<Vec<_>>>()?;
    let tol = tolerances();
    let bank_days = BankDays::new(
        world,
        first,
        tol.settlement_window_days,
        tol.carry_grace_days,
        rng,
    )?;
    let last = dates[dates.len() - 1].date();
    let calendar_days: Vec<NaiveDate> = dates.iter().map(|d| d.date()).collect();
    let injected = anomalies::plan(world, &bank_days, knobs, &calendar_days, base);
    let mut b = SpanBuilder {
        world,
        knobs,
        bank_days: &bank_days,
        tol: tol.clone(),
        base,
        first,
        last,
        transactions,
        day: Day {
            txns: Vec::new(),
            lines: Vec::new(),
            declined: Vec::new(),
            correction: None,
            tolerances: tol,
        },
        plans: Vec::new(),
        date_start: Vec::new(),
        anomalies: injected,
    };
    b.payments(&dates)?;
    b.settle()?;
    let (mut day, plans, anomalies) = (b.day, b.plans, b.anomalies);
    assign_truth(world, &mut day);
    let closes = closes::closes(&day, &bank_days, first, last)?;
    Ok(Span {
        dates,
        bank_days,
        day,
        plans,
        closes,
        anomalies,
    })
}
