//! Injected anomalies (knob `anomalies`, multi-day world): on a share of the (date, bank) pairs
//! after a warm-up, something unusual happens, and `truth/anomalies.csv` says what and which
//! figures it is expected to move, so `recon accuracy` can score the close's anomaly flags
//! (docs/anomalies.md). Each is large enough that a person reading the day would call it
//! unusual:
//!
//! - `VOLUME_SURGE`: the bank takes 2.5 times its payments of the day;
//! - `VOLUME_DROP`: 70 % of the bank's payments of the day never arrive;
//! - `AMOUNT_ERRORS`, `FEE_ERRORS`, `DUPLICATE_POSTINGS`: a quarter of the lines of the
//!   bank's delivery of the day post a wrong amount, charge a wrong fee, or are posted twice
//!   (days the bank delivers only);
//! - `MERCHANT_SURGE`: the bank's largest merchant paid by card takes 4 times its payments.
//!
//! Nothing is injected on the days next to the world's missed delivery or holiday, which are
//! unusual on their own.

use std::fmt::Write as _;

use chrono::NaiveDate;
use recon_shared::ids::date_to_days;

use super::calendar::BankDays;
use crate::day::Case;
use crate::knobs::Knobs;
use crate::rng::Rng;
use crate::world::World;

/// Days of history before the first injection (the detector needs two weeks).
pub const WARMUP_DAYS: usize = 21;
/// Share of a delivery's exact lines an injected line anomaly turns, in basis points.
const LINE_SHARE: u32 = 2500;
/// Share of a bank's payments a drop removes, in basis points.
pub(super) const DROP_SHARE: u32 = 7000;

/// What was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// The bank's payments of the day times 2.5.
    VolumeSurge,
    /// 70 % of the bank's payments of the day missing.
    VolumeDrop,
    /// A quarter of the delivery's lines post a wrong amount.
    AmountErrors,
    /// A quarter of the delivery's lines charge a wrong fee.
    FeeErrors,
    /// A quarter of the delivery's lines posted twice.
    DuplicatePostings,
    /// The bank's largest card merchant's payments times 4.
    MerchantSurge,
}

const ALL: [Injected; 6] = [
    Injected::VolumeSurge,
    Injected::VolumeDrop,
    Injected::AmountErrors,
    Injected::FeeErrors,
    Injected::DuplicatePostings,
    Injected::MerchantSurge,
];

impl Injected {
    /// As written in `truth/anomalies.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Injected::VolumeSurge => "VOLUME_SURGE",
            Injected::VolumeDrop => "VOLUME_DROP",
            Injected::AmountErrors => "AMOUNT_ERRORS",
            Injected::FeeErrors => "FEE_ERRORS",
            Injected::DuplicatePostings => "DUPLICATE_POSTINGS",
            Injected::MerchantSurge => "MERCHANT_SURGE",
        }
    }

    /// The flag kind it must raise, and every kind it may move (on its subject, and for a bank
    /// on the bank's merchants).
    pub fn kinds(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Injected::VolumeSurge | Injected::VolumeDrop | Injected::MerchantSurge => {
                ("VOLUME", &["VOLUME"])
            }
            Injected::AmountErrors => ("MISMATCH_RATE", &["MISMATCH_RATE", "BREAK_COUNT"]),
            Injected::DuplicatePostings => ("BREAK_COUNT", &["BREAK_COUNT", "MISMATCH_RATE"]),
            Injected::FeeErrors => (
                "FEE_VARIANCE",
                &["FEE_VARIANCE", "MISMATCH_RATE", "BREAK_COUNT"],
            ),
        }
    }

    fn on_lines(self) -> bool {
        matches!(
            self,
            Injected::AmountErrors | Injected::FeeErrors | Injected::DuplicatePostings
        )
    }

    /// The case an exact payment of a line anomaly's delivery becomes.
    pub(super) fn line_case(self) -> Option<Case> {
        match self {
            Injected::AmountErrors => Some(Case::AmountDiff),
            Injected::FeeErrors => Some(Case::FeeVariance),
            Injected::DuplicatePostings => Some(Case::DuplicateLine),
            _ => None,
        }
    }
}

/// One injected anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anomaly {
    /// The payments' date, or the delivery's for a line anomaly.
    pub date: NaiveDate,
    /// The bank.
    pub bank: usize,
    /// What happened.
    pub what: Injected,
    /// The merchant of a merchant surge.
    pub merchant: Option<u32>,
}

/// The anomalies of a world: each (date, bank) after [`WARMUP_DAYS`] draws from its own
/// stream, so a longer world keeps a shorter one's anomalies.
pub fn plan(
    world: &World,
    days: &BankDays,
    knobs: &Knobs,
    dates: &[NaiveDate],
    base: u64,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    if knobs.anomalies == 0 {
        return out;
    }
    let quiet = |bank: usize, d: NaiveDate| {
        let near = |x: NaiveDate| (d - x).num_days().abs() <= 3;
        days.missed.is_some_and(|(b, x)| b == bank && near(x))
            || days.holiday.is_some_and(|(b, x)| b == bank && near(x))
    };
    for d in dates.iter().skip(WARMUP_DAYS) {
        let mut r =
            Rng::new(base ^ (date_to_days(*d) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).fork(9);
        for bank in 0..world.banks.len() {
            let hit = r.chance(knobs.anomalies);
            let pick = ALL[r.below(ALL.len() as u64) as usize];
            if !hit || quiet(bank, *d) {
                continue;
            }
            let what = if pick.on_lines() && !days.delivers(bank, *d) {
                Injected::VolumeSurge
            } else {
                pick
            };
            let merchant = (what == Injected::MerchantSurge)
                .then(|| {
                    world.bank_merchants[bank]
                        .iter()
                        .copied()
                        .find(|m| !world.payout[*m as usize])
                })
                .flatten();
            if what == Injected::MerchantSurge && merchant.is_none() {
                continue;
            }
            out.push(Anomaly {
                date: *d,
                bank,
                what,
                merchant,
            });
        }
    }
    out
}

/// The anomaly of `bank` on `date`, if one was injected.
pub fn of(anomalies: &[Anomaly], bank: usize, date: NaiveDate) -> Option<&Anomaly> {
    anomalies.iter().find(|a| a.bank == bank && a.date == date)
}

/// Whether the exact payment whose line is delivered on `delivery` by `bank` turns into a
/// line anomaly's case (drawn from the payment's own seed).
pub(super) fn line_case(
    anomalies: &[Anomaly],
    bank: usize,
    delivery: NaiveDate,
    seed: u64,
) -> Option<Case> {
    let a = of(anomalies, bank, delivery)?;
    let case = a.what.line_case()?;
    Rng::new(seed ^ 0xA0A0_5EED)
        .chance(LINE_SHARE)
        .then_some(case)
}

/// Header of `truth/anomalies.csv`.
pub const HEADER: &str = "business_date,level,subject,bank_id,injected,must_flag,may_flag\n";

/// `truth/anomalies.csv`: one row per subject an anomaly is about (a merchant surge names the
/// merchant, which must be flagged, and its bank, which may be).
pub fn truth(world: &World, anomalies: &[Anomaly]) -> String {
    let mut csv = String::from(HEADER);
    for a in anomalies {
        let bank = world.banks[a.bank].id.as_str();
        let (must, may) = a.what.kinds();
        if let Some(m) = a.merchant {
            let merchant = world.merchants[m as usize].merchant_id.as_str();
            let _ = writeln!(
                csv,
                "{},MERCHANT,{merchant},{bank},{},{must},{}",
                a.date,
                a.what.name(),
                may.join("|")
            );
            let _ = writeln!(
                csv,
                "{},BANK,{bank},{bank},{},,{}",
                a.date,
                a.what.name(),
                may.join("|")
            );
        } else {
            let _ = writeln!(
                csv,
                "{},BANK,{bank},{bank},{},{must},{}",
                a.date,
                a.what.name(),
                may.join("|")
            );
        }
    }
    csv
}
