//! The moving side of a generated day: transactions, statement lines and the truth about each.
//!
//! Every case is built so that exactly one outcome is correct: ambiguous constructions (a
//! composite line two transactions could explain, an orphan that looks like a payment) are
//! detected here and replaced by unambiguous ones, so `truth/` is the answer, not a guess.

use std::collections::HashMap;

use recon_shared::Result;
use recon_shared::ids::BusinessDate;
use recon_shared::money::Currency;
use recon_shared::records::{
    MatchRule, MismatchType, PaymentMethod, ReconciledStatus, RecordType, TxnStatus,
};
use recon_shared::rules::{Tolerances, expected_fee};

use super::knobs::Knobs;
use super::rng::Rng;
use super::world::World;

mod lines;
mod outcome;

pub(crate) use outcome::assign_truth;

/// What the generator made of a transaction or line (also written into truth as `case`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Case {
    Exact,
    MissingAtBank,
    AmountDiff,
    FeeVariance,
    DuplicateLine,
    Composite,
    Split,
    Batch,
    Chargeback,
    Refund,
    LateFile,
    OrphanUnknownId,
    OrphanNoId,
    /// Multi-day world: a payment the ledger extract brings a day after its event.
    LedgerLate,
    /// Multi-day world: a payment the bank posts one business day after its window.
    LateSettlement,
    /// Multi-day world: a DECLINED or PENDING transaction of the ledger, never expected at
    /// the bank.
    NotExpected,
}

impl Case {
    pub fn as_str(self) -> &'static str {
        match self {
            Case::Exact => "exact",
            Case::MissingAtBank => "missing_at_bank",
            Case::AmountDiff => "amount_diff",
            Case::FeeVariance => "fee_variance",
            Case::DuplicateLine => "duplicate_line",
            Case::Composite => "composite",
            Case::Split => "split",
            Case::Batch => "batch",
            Case::Chargeback => "chargeback",
            Case::Refund => "refund",
            Case::LateFile => "late_file",
            Case::OrphanUnknownId => "orphan_unknown_id",
            Case::OrphanNoId => "orphan_no_id",
            Case::LedgerLate => "ledger_late",
            Case::LateSettlement => "late_settlement",
            Case::NotExpected => "not_expected",
        }
    }
}

/// Expected outcome of one transaction or line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truth {
    pub status: ReconciledStatus,
    pub mismatch: MismatchType,
    pub rule: MatchRule,
    /// Counterparts: line indices for a transaction, transaction indices for a line.
    pub counterparts: Vec<u32>,
    /// In minor units of the statement currency; None where nothing matched.
    pub discrepancy: Option<i64>,
    pub fee_variance: Option<i64>,
}

impl Truth {
    pub(crate) fn unmatched(mismatch: MismatchType) -> Self {
        Truth {
            status: ReconciledStatus::Unmatched,
            mismatch,
            rule: MatchRule::None,
            counterparts: Vec::new(),
            discrepancy: None,
            fee_variance: None,
        }
    }
}

pub struct Txn {
    pub id: String,
    pub merchant: u32,
    pub user: u32,
    pub bank: usize,
    pub amount_minor: i64,
    pub currency: Currency,
    pub status: TxnStatus,
    /// Milliseconds since the epoch, UTC.
    pub event_ms: i64,
    pub method: PaymentMethod,
    pub original: Option<u32>,
    pub case: Case,
    /// The date of its event (its partition in the one-day world).
    pub business_date: BusinessDate,
    /// The date of the ledger extract that carries it: its event date, or the next day for a
    /// payment the ledger delivers late (multi-day world).
    pub ledger_date: BusinessDate,
    /// Amount in the bank's settlement currency, minor units.
    pub conv_minor: i64,
    /// Expected fee in the settlement currency, minor units (0 for refunds and chargebacks).
    pub fee_minor: i64,
    pub lines: Vec<u32>,
    pub truth: Option<Truth>,
}

pub struct Line {
    pub bank: usize,
    /// The date of the delivery (statement) the line belongs to.
    pub business_date: BusinessDate,
    /// The line's own posting date: its delivery's date, or another day (a line booked just
    /// after midnight, a missed delivery's line sent with the next one) in the multi-day world.
    pub posting_date: BusinessDate,
    pub seq: u32,
    pub statement_id: String,
    /// Transaction id as written on the line (None: the bank left it out).
    pub txn_ref: Option<String>,
    pub merchant: Option<u32>,
    /// Canonical amount in the settlement currency, signed.
    pub amount_minor: i64,
    pub fee_minor: i64,
    pub record_type: RecordType,
    pub reference: String,
    /// As sent, when the bank posts in the transaction's currency: (signed minor, currency).
    pub original: Option<(i64, Currency)>,
    pub dup_record: bool,
    pub case: Case,
    /// Transactions this line pays (generator's own bookkeeping).
    pub owners: Vec<u32>,
    pub truth: Option<Truth>,
    /// Local posting time (seconds after midnight) for sources that send timestamps.
    pub posted_secs: u32,
}

pub struct Day {
    pub txns: Vec<Txn>,
    pub lines: Vec<Line>,
    /// Declined payments that only the stream sees.
    pub declined: Vec<Txn>,
    /// Bank (index) whose delivery is corrected by a version 2, with its first version.
    pub correction: Option<(usize, Vec<Line>)>,
    pub tolerances: Tolerances,
}

pub(crate) fn compact(date: BusinessDate) -> String {
    date.to_string().replace('-', "")
}

/// Draws an amount in minor units, log-uniform-ish between 1 and ~5 000 major units.
pub(crate) fn draw_amount(rng: &mut Rng, currency: Currency) -> i64 {
    let decade = *rng.pick(&[2u32, 3, 3, 3, 4, 4, 4, 5]);
    let lo = 10i64.pow(decade);
    let minor = rng.range(lo, lo * 10 - 1);
    // Zero-decimal currencies (JPY) get amounts ~100x larger in units.
    match currency.exponent() {
        0 => minor,
        e => minor / 10i64.pow(2u32.saturating_sub(e)),
    }
}

pub struct Builder<'w> {
    world: &'w World,
    knobs: &'w Knobs,
    rng: Rng,
    day: Day,
}

impl<'w> Builder<'w> {
    pub fn new(world: &'w World, knobs: &'w Knobs, rng: Rng) -> Self {
        Builder {
            world,
            knobs,
            rng,
            day: Day {
                txns: Vec::new(),
                lines: Vec::new(),
                declined: Vec::new(),
                correction: None,
                // Same-day settlement: an unmatched transaction is MISSING_AT_BANK at its own
                // close.
                tolerances: Tolerances {
                    settlement_window_days: 0,
                    carry_grace_days: 2,
                    ..Tolerances::default()
                },
            },
        }
    }

    fn convert(&self, minor: i64, from: Currency, to: Currency, date: BusinessDate) -> Result<i64> {
        let (converted, _) = self
            .world
            .fx
            .convert(from.from_minor(minor), from, to, date)?;
        to.to_minor(converted)
    }

    fn fee(&self, bank: usize, merchant: u32, conv_minor: i64) -> Result<i64> {
        let b = &self.world.banks[bank];
        let fee = expected_fee(
            &self.world.fee_rules,
            &b.id,
            Some(self.world.merchants[merchant as usize].category.as_str()),
            b.currency.from_minor(conv_minor),
            b.currency,
            self.world.date.date(),
        );
        b.currency.to_minor(fee)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_txn(
        &mut self,
        id: String,
        bank: usize,
        merchant: u32,
        date: BusinessDate,
        status: TxnStatus,
        case: Case,
        cross_bp: u32,
    ) -> Result<Txn> {
        let w = self.world;
        let settle = w.banks[bank].currency;
        let currency = if self.rng.chance(cross_bp) {
            let others: Vec<Currency> = w
                .currencies
                .iter()
                .copied()
                .filter(|c| *c != settle)
                .collect();
            *self.rng.pick(&others)
        } else {
            settle
        };
        let amount_minor = draw_amount(&mut self.rng, currency).max(1);
        let conv_minor = self.convert(amount_minor, currency, settle, date)?;
        let midnight = date
            .date()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap_or_default();
        let method = match self.rng.below(10) {
            0..=6 => PaymentMethod::Card,
            7 | 8 => PaymentMethod::Wallet,
            _ => PaymentMethod::BankTransfer,
        };
        Ok(Txn {
            id,
            merchant,
            user: self.rng.below(w.users as u64) as u32,
            bank,
            amount_minor,
            currency,
            status,
            event_ms: midnight + self.rng.range(0, 86_399_999),
            method,
            original: None,
            case,
            business_date: date,
            ledger_date: date,
            conv_minor,
            fee_minor: 0,
            lines: Vec::new(),
            truth: None,
        })
    }

    fn pick_merchant(&mut self, bank: usize) -> u32 {
        let ms = &self.world.bank_merchants[bank];
        ms[self.rng.below(ms.len() as u64) as usize]
    }

    /// Builds the whole day.
    pub fn build(mut self, transactions: usize) -> Result<Day> {
        let w = self.world;
        let k = self.knobs;
        let date = w.date;
        let dc = compact(date);
        let n_refunds = transactions * k.refund as usize / 10_000;
        let n_base = transactions - n_refunds;

        // 1. Base transactions with their settlement case.
        let cases: [(u32, Case); 8] = [
            (k.missing_at_bank, Case::MissingAtBank),
            (k.amount_diff, Case::AmountDiff),
            (k.fee_variance, Case::FeeVariance),
            (k.duplicate_line, Case::DuplicateLine),
            (k.composite, Case::Composite),
            (k.split, Case::Split),
            (k.batch, Case::Batch),
            (k.chargeback, Case::Chargeback),
        ];
        for i in 0..n_base {
            let bank = self.rng.weighted(&w.bank_weights);
            let merchant = self.pick_merchant(bank);
            let mut x = self.rng.below(10_000) as u32;
            let mut case = Case::Exact;
            for (bp, c) in cases {
                if x < bp {
                    case = c;
                    break;
                }
                x -= bp;
            }
            let status = if case == Case::Chargeback {
                TxnStatus::Chargeback
            } else {
                TxnStatus::Approved
            };
            let mut t = self.new_txn(
                format!("TX-{dc}-{:09}", i + 1),
                bank,
                merchant,
                date,
                status,
                case,
                k.cross_currency,
            )?;
            if t.currency != w.banks[bank].currency && matches!(case, Case::Split | Case::Batch) {
                t.case = Case::Exact;
            }
            if matches!(t.case, Case::Split) && t.conv_minor < 4 {
                t.case = Case::Exact;
            }
            t.fee_minor = self.fee(bank, merchant, t.conv_minor)?;
            self.day.txns.push(t);
        }
        // 2. Refunds of earlier approved payments, at most the original amount.
        for i in 0..n_refunds {
            let orig = loop {
                let o = self.rng.below(n_base.max(1) as u64) as usize;
                if n_base == 0 || self.day.txns[o].status == TxnStatus::Approved {
                    break o;
                }
            };
            if n_base == 0 {
                break;
            }
            let o = &self.day.txns[orig];
            let (bank, merchant, currency, amount) =
                (o.bank, o.merchant, o.currency, o.amount_minor);
            let mut t = self.new_txn(
                format!("TX-{dc}-R{:08}", i + 1),
                bank,
                merchant,
                date,
                TxnStatus::Refunded,
                Case::Refund,
                0,
            )?;
            t.currency = currency;
            t.amount_minor = self.rng.range(1, amount.max(1));
            t.conv_minor = self.convert(t.amount_minor, currency, w.banks[bank].currency, date)?;
            t.original = Some(orig as u32);
            t.user = self.day.txns[orig].user;
            t.event_ms = t.event_ms.max(self.day.txns[orig].event_ms + 1);
            self.day.txns.push(t);
        }
        self.disambiguate_composites();
        self.make_lines()?;
        self.make_orphans()?;
        self.make_late_file()?;
        self.make_declined()?;
        self.number_lines();
        assign_truth(self.world, &mut self.day);
        self.make_correction();
        Ok(self.day)
    }

    /// Candidate keys for amount-based matching: (bank, merchant) -> settlement amounts of
    /// transactions that no line names by id.
    fn candidates(&self) -> HashMap<(usize, u32), Vec<i64>> {
        let mut map: HashMap<(usize, u32), Vec<i64>> = HashMap::new();
        for t in &self.day.txns {
            if matches!(t.case, Case::MissingAtBank | Case::Composite | Case::Batch) {
                map.entry((t.bank, t.merchant))
                    .or_default()
                    .push(t.conv_minor);
            }
        }
        map
    }

    fn collides(
        &self,
        map: &HashMap<(usize, u32), Vec<i64>>,
        key: (usize, u32),
        amount: i64,
        allow_self: bool,
    ) -> bool {
        let tol = 2 * self.day.tolerances.amount_minor_units;
        let hits = map.get(&key).map_or(0, |v| {
            v.iter().filter(|a| (**a - amount).abs() <= tol).count()
        });
        hits > usize::from(allow_self)
    }

    /// A composite line two candidates could explain is not a fair test: name its id instead.
    fn disambiguate_composites(&mut self) {
        let map = self.candidates();
        let demote: Vec<usize> = self
            .day
            .txns
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.case == Case::Composite
                    && self.collides(&map, (t.bank, t.merchant), t.conv_minor, true)
            })
            .map(|(i, _)| i)
            .collect();
        for i in demote {
            self.day.txns[i].case = Case::Exact;
        }
    }

    /// The first delivery of the second bank lacked some lines; version 2 corrects it.
    fn make_correction(&mut self) {
        if self.world.banks.len() < 2 {
            return;
        }
        let bank = 1;
        let date = self.world.date;
        let mut v1 = Vec::new();
        for l in self
            .day
            .lines
            .iter()
            .filter(|l| l.bank == bank && l.business_date == date)
        {
            if self.rng.chance(self.knobs.correction_drop) {
                continue;
            }
            v1.push(Line {
                statement_id: l.statement_id.clone(),
                txn_ref: l.txn_ref.clone(),
                reference: l.reference.clone(),
                owners: Vec::new(),
                truth: None,
                dup_record: false,
                ..*l
            });
        }
        self.day.correction = Some((bank, v1));
    }
}
