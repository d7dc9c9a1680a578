//! The moving side of a generated day: transactions, statement lines and the truth about each.
//!
//! Every case is built so that exactly one outcome is correct: ambiguous constructions (a
//! composite line two transactions could explain, an orphan that looks like a payment) are
//! detected here and replaced by unambiguous ones, so `truth/` is the answer, not a guess.

use std::collections::{BTreeMap, HashMap};

use recon_shared::Result;
use recon_shared::ids::BusinessDate;
use recon_shared::money::Currency;
use recon_shared::reconcile::group::{GroupSearch, pool_limit};
use recon_shared::records::{
    MatchRule, MismatchType, PaymentMethod, ReconciledStatus, RecordType, TxnStatus,
};
use recon_shared::rules::{Tolerances, expected_fee};

use super::knobs::Knobs;
use super::rng::Rng;
use super::world::World;

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
    fn unmatched(mismatch: MismatchType) -> Self {
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
    pub business_date: BusinessDate,
    /// Amount in the bank's settlement currency, minor units.
    pub conv_minor: i64,
    /// Expected fee in the settlement currency, minor units (0 for refunds and chargebacks).
    pub fee_minor: i64,
    pub lines: Vec<u32>,
    pub truth: Option<Truth>,
}

pub struct Line {
    pub bank: usize,
    pub business_date: BusinessDate,
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

fn compact(date: BusinessDate) -> String {
    date.to_string().replace('-', "")
}

/// Draws an amount in minor units, log-uniform-ish between 1 and ~5 000 major units.
fn draw_amount(rng: &mut Rng, currency: Currency) -> i64 {
    let decade = *rng.pick(&[2u32, 3, 3, 3, 4, 4, 4, 5]);
    let lo = 10i64.pow(decade);
    let minor = rng.range(lo, lo * 10 - 1);
    // Zero-decimal currencies (JPY) get amounts ~100x larger in units.
    match currency.exponent() {
        0 => minor,
        e => minor / 10i64.pow(2u32.saturating_sub(e)),
    }
}

/// A merchant's payout candidates and the engine's group search over them.
struct GroupPool {
    search: GroupSearch,
    members: Vec<usize>,
}

impl GroupPool {
    /// Whether `group` is the only set of candidates whose amounts and fees add up to its
    /// payout exactly: otherwise the payout is ambiguous and no engine could tell which.
    fn unique(&self, txns: &[Txn], group: &[usize]) -> bool {
        let target = group.iter().fold((0, 0), |s, t| {
            (s.0 + txns[*t].conv_minor, s.1 + txns[*t].fee_minor)
        });
        let fits = self.search.fits(target, (0, 0), 0, 2);
        let own = group
            .iter()
            .filter_map(|t| self.members.iter().position(|m| m == t))
            .fold(0u128, |m, i| m | 1 << i);
        fits == [own]
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
                tolerances: Tolerances::default(),
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
        self.assign_truth();
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

    fn push_line(&mut self, line: Line) -> u32 {
        let idx = self.day.lines.len() as u32;
        for o in &line.owners {
            self.day.txns[*o as usize].lines.push(idx);
        }
        self.day.lines.push(line);
        idx
    }

    fn line_for(
        &mut self,
        t: usize,
        amount_minor: i64,
        fee_minor: i64,
        record_type: RecordType,
        with_id: bool,
        case: Case,
    ) -> Result<Line> {
        let tx = &self.day.txns[t];
        let bank = &self.world.banks[tx.bank];
        let sign = if matches!(record_type, RecordType::Refund | RecordType::Chargeback) {
            -1
        } else {
            1
        };
        let mut original = None;
        let mut canonical = sign * amount_minor;
        if tx.currency != bank.currency
            && bank.style.posts_original_currency()
            && !matches!(case, Case::Split)
        {
            // The bank sends the transaction currency; the normalizer converts it.
            let orig_minor = if amount_minor == tx.conv_minor {
                tx.amount_minor
            } else {
                // Posted amount differs: express it in the original currency.
                self.convert(amount_minor, bank.currency, tx.currency, tx.business_date)?
            };
            canonical = self.convert(
                sign * orig_minor,
                tx.currency,
                bank.currency,
                tx.business_date,
            )?;
            original = Some((sign * orig_minor, tx.currency));
        }
        let reference = match record_type {
            RecordType::Refund => format!("REFUND {}", tx.id),
            RecordType::Chargeback => format!("CHARGEBACK {}", tx.id),
            _ if self.rng.chance(500) => format!(
                "INV {}, ORDER {}",
                self.rng.range(1000, 99999),
                self.rng.range(10, 99)
            ),
            _ => format!("CARD SETTLEMENT {}", self.rng.range(100_000, 999_999)),
        };
        Ok(Line {
            bank: tx.bank,
            business_date: tx.business_date,
            seq: 0,
            statement_id: String::new(),
            txn_ref: with_id.then(|| tx.id.clone()),
            merchant: Some(tx.merchant),
            amount_minor: canonical,
            fee_minor,
            record_type,
            reference,
            original,
            dup_record: self.rng.chance(self.knobs.exact_duplicate_record),
            case,
            owners: vec![t as u32],
            truth: None,
            posted_secs: self.rng.range(8 * 3600, 20 * 3600) as u32,
        })
    }

    fn make_lines(&mut self) -> Result<()> {
        let mut batches: BTreeMap<(usize, u32), Vec<usize>> = BTreeMap::new();
        for t in 0..self.day.txns.len() {
            let (case, conv, fee) = {
                let x = &self.day.txns[t];
                (x.case, x.conv_minor, x.fee_minor)
            };
            match case {
                Case::MissingAtBank => {}
                Case::Exact | Case::LateFile => {
                    let l = self.line_for(t, conv, fee, RecordType::Settlement, true, case)?;
                    self.push_line(l);
                }
                Case::Composite => {
                    let mut l = self.line_for(t, conv, fee, RecordType::Settlement, false, case)?;
                    l.reference = format!("POS {}", self.rng.range(100_000, 999_999));
                    self.push_line(l);
                }
                Case::AmountDiff => {
                    let tol = self.day.tolerances.amount_minor_units;
                    let mut delta = (conv / 20).max(2 * tol + 1);
                    let mut l;
                    loop {
                        let posted = (conv - delta).max(0);
                        l = self.line_for(t, posted, fee, RecordType::Settlement, true, case)?;
                        if (l.amount_minor - conv).abs() > tol || delta >= conv {
                            break;
                        }
                        delta *= 2;
                    }
                    self.push_line(l);
                }
                Case::FeeVariance => {
                    let tol = self.day.tolerances.fee_minor_units;
                    let delta = self.rng.range(tol + 1, tol + 60);
                    let charged = if fee > delta && self.rng.chance(5000) {
                        fee - delta
                    } else {
                        fee + delta
                    };
                    let l = self.line_for(t, conv, charged, RecordType::Settlement, true, case)?;
                    self.push_line(l);
                }
                Case::DuplicateLine => {
                    for _ in 0..2 {
                        let l = self.line_for(t, conv, fee, RecordType::Settlement, true, case)?;
                        self.push_line(l);
                    }
                }
                Case::Split => {
                    let parts = (self.rng.range(2, 4)).min(conv);
                    let mut left = conv;
                    for p in 0..parts {
                        let amount = if p == parts - 1 {
                            left
                        } else {
                            self.rng.range(1, left - (parts - p - 1))
                        };
                        left -= amount;
                        let mut l = self.line_for(
                            t,
                            amount,
                            if p == 0 { fee } else { 0 },
                            RecordType::Settlement,
                            true,
                            case,
                        )?;
                        l.reference = format!("PARTIAL {}/{parts}", p + 1);
                        self.push_line(l);
                    }
                }
                Case::Batch => {
                    let x = &self.day.txns[t];
                    batches.entry((x.bank, x.merchant)).or_default().push(t);
                }
                Case::Chargeback => {
                    let l = self.line_for(t, conv, fee, RecordType::Settlement, true, case)?;
                    self.push_line(l);
                    let l = self.line_for(t, conv, 0, RecordType::Chargeback, true, case)?;
                    self.push_line(l);
                }
                Case::Refund => {
                    let l = self.line_for(t, conv, 0, RecordType::Refund, true, case)?;
                    self.push_line(l);
                }
                Case::OrphanNoId | Case::OrphanUnknownId => {}
            }
        }
        // Batched payouts: groups of 2..=5 of one merchant's batch transactions.
        let map = self.candidates();
        for ((bank, merchant), members) in batches {
            let pool = self.group_pool(bank, merchant);
            let mut rest = members.as_slice();
            while !rest.is_empty() {
                let size = (self.rng.range(2, 5) as usize).min(rest.len());
                let (group, tail) = rest.split_at(size);
                rest = tail;
                let total: i64 = group.iter().map(|t| self.day.txns[*t].conv_minor).sum();
                let fees: i64 = group.iter().map(|t| self.day.txns[*t].fee_minor).sum();
                if group.len() < 2
                    || self.collides(&map, (bank, merchant), total, false)
                    || !pool
                        .as_ref()
                        .is_some_and(|p| p.unique(&self.day.txns, group))
                {
                    for t in group {
                        self.day.txns[*t].case = Case::Exact;
                        let (conv, fee) =
                            (self.day.txns[*t].conv_minor, self.day.txns[*t].fee_minor);
                        let l = self.line_for(
                            *t,
                            conv,
                            fee,
                            RecordType::Settlement,
                            true,
                            Case::Exact,
                        )?;
                        self.push_line(l);
                    }
                    continue;
                }
                let mut l = self.line_for(
                    group[0],
                    total,
                    fees,
                    RecordType::Settlement,
                    false,
                    Case::Batch,
                )?;
                l.owners = group.iter().map(|t| *t as u32).collect();
                l.original = None;
                l.amount_minor = total;
                l.reference = format!("PAYOUT {} TXNS", group.len());
                self.push_line(l);
            }
        }
        Ok(())
    }

    /// The many-to-one search over what the engine could take for a payout of `merchant`: every
    /// candidate transaction (missing at the bank, composite, batch) of its bank and day. None
    /// when they are more than one search covers, as the engine would not see them all.
    fn group_pool(&self, bank: usize, merchant: u32) -> Option<GroupPool> {
        let tol = &self.day.tolerances;
        let members: Vec<usize> = (0..self.day.txns.len())
            .filter(|t| {
                let x = &self.day.txns[*t];
                x.bank == bank
                    && x.merchant == merchant
                    && x.business_date == self.world.date
                    && matches!(x.case, Case::MissingAtBank | Case::Composite | Case::Batch)
            })
            .collect();
        if members.len() > pool_limit(tol.max_group_candidates, tol.max_group_size) {
            return None;
        }
        let items: Vec<(i64, i64)> = members
            .iter()
            .map(|t| (self.day.txns[*t].conv_minor, self.day.txns[*t].fee_minor))
            .collect();
        Some(GroupPool {
            search: GroupSearch::new(&items, tol.max_group_size),
            members,
        })
    }

    /// Lines with no transaction behind them, so that about `line_match` of lines match.
    fn make_orphans(&mut self) -> Result<()> {
        let matched = self.day.lines.len() as u64;
        let share = u64::from(self.knobs.line_match);
        let orphans = (matched * (10_000 - share) / share) as usize;
        let map = self.candidates();
        let dc = compact(self.world.date);
        for i in 0..orphans {
            let bank = self.rng.weighted(&self.world.bank_weights);
            let currency = self.world.banks[bank].currency;
            let merchant = self.pick_merchant(bank);
            let unknown_id = self.rng.chance(5000);
            let mut amount = draw_amount(&mut self.rng, currency).max(1);
            while !unknown_id && self.collides(&map, (bank, merchant), amount, false) {
                amount += 7 * self.day.tolerances.amount_minor_units + 1;
            }
            let record_type = if self.rng.chance(300) {
                RecordType::Adjustment
            } else {
                RecordType::Settlement
            };
            let line = Line {
                bank,
                business_date: self.world.date,
                seq: 0,
                statement_id: String::new(),
                txn_ref: unknown_id.then(|| format!("TX-{dc}-X{:08}", i + 1)),
                merchant: (!unknown_id || self.rng.chance(5000)).then_some(merchant),
                amount_minor: amount,
                fee_minor: 0,
                record_type,
                reference: format!("UNALLOCATED {}", self.rng.range(10_000, 99_999)),
                original: None,
                dup_record: false,
                case: if unknown_id {
                    Case::OrphanUnknownId
                } else {
                    Case::OrphanNoId
                },
                owners: Vec::new(),
                truth: None,
                posted_secs: self.rng.range(8 * 3600, 20 * 3600) as u32,
            };
            self.push_line(line);
        }
        Ok(())
    }

    /// A small file for the previous business day that arrived after its close.
    fn make_late_file(&mut self) -> Result<()> {
        let prev = self.world.date.pred()?;
        let n = (self.day.txns.len() * self.knobs.late_file as usize / 10_000).max(3);
        let dc = compact(prev);
        for i in 0..n {
            let merchant = self.pick_merchant(0);
            let mut t = self.new_txn(
                format!("TX-{dc}-L{:08}", i + 1),
                0,
                merchant,
                prev,
                TxnStatus::Approved,
                Case::LateFile,
                0,
            )?;
            t.fee_minor = self.fee(0, merchant, t.conv_minor)?;
            let (conv, fee) = (t.conv_minor, t.fee_minor);
            self.day.txns.push(t);
            let idx = self.day.txns.len() - 1;
            let l = self.line_for(idx, conv, fee, RecordType::Settlement, true, Case::LateFile)?;
            self.push_line(l);
        }
        Ok(())
    }

    fn make_declined(&mut self) -> Result<()> {
        let n = self.day.txns.len() * self.knobs.declined as usize / 10_000;
        let dc = compact(self.world.date);
        for i in 0..n {
            let bank = self.rng.weighted(&self.world.bank_weights);
            let merchant = self.pick_merchant(bank);
            let t = self.new_txn(
                format!("TX-{dc}-D{:08}", i + 1),
                bank,
                merchant,
                self.world.date,
                TxnStatus::Declined,
                Case::Exact,
                0,
            )?;
            self.day.declined.push(t);
        }
        Ok(())
    }

    /// Shuffles each bank's lines and numbers them: statement ids in file order.
    fn number_lines(&mut self) {
        let mut per_bank: BTreeMap<(BusinessDate, usize), Vec<u32>> = BTreeMap::new();
        for (i, l) in self.day.lines.iter().enumerate() {
            per_bank
                .entry((l.business_date, l.bank))
                .or_default()
                .push(i as u32);
        }
        for ((date, bank), mut idx) in per_bank {
            for i in (1..idx.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                idx.swap(i, j);
            }
            let prefix = format!("{}-{}", self.world.banks[bank].id, compact(date));
            for (seq, i) in idx.into_iter().enumerate() {
                let l = &mut self.day.lines[i as usize];
                l.seq = seq as u32 + 1;
                l.statement_id = format!("{prefix}-{:08}", seq + 1);
            }
        }
    }

    fn assign_truth(&mut self) {
        let world = self.world;
        let day = &mut self.day;
        let matched = |rule, counterparts, discrepancy| Truth {
            status: ReconciledStatus::Matched,
            mismatch: MismatchType::None,
            rule,
            counterparts,
            discrepancy: Some(discrepancy),
            fee_variance: Some(0),
        };
        for (ti, t) in day.txns.iter_mut().enumerate() {
            let lines: Vec<&Line> = t.lines.iter().map(|l| &day.lines[*l as usize]).collect();
            let sum: i64 = lines.iter().map(|l| l.amount_minor).sum();
            let fees: i64 = lines.iter().map(|l| l.fee_minor).sum();
            let signed = if t.case == Case::Refund {
                -t.conv_minor
            } else {
                t.conv_minor
            };
            let (truth, line_truth): (Truth, Vec<(u32, Truth)>) = match t.case {
                Case::MissingAtBank => (Truth::unmatched(MismatchType::MissingAtBank), vec![]),
                Case::Exact | Case::LateFile | Case::Refund | Case::Composite | Case::Split => {
                    let rule = match t.case {
                        Case::Composite => MatchRule::Composite,
                        Case::Split => MatchRule::OneToMany,
                        _ => MatchRule::ExactId,
                    };
                    let truth = matched(rule, t.lines.clone(), sum - signed);
                    let lt = t
                        .lines
                        .iter()
                        .map(|l| (*l, matched(rule, vec![ti as u32], sum - signed)))
                        .collect();
                    (truth, lt)
                }
                Case::AmountDiff => {
                    let mismatch = if t.currency == world.banks[t.bank].currency {
                        MismatchType::Amount
                    } else {
                        MismatchType::Currency
                    };
                    let truth = Truth {
                        status: ReconciledStatus::PartialMatch,
                        mismatch,
                        rule: MatchRule::ExactId,
                        counterparts: t.lines.clone(),
                        discrepancy: Some(sum - signed),
                        fee_variance: Some(fees - t.fee_minor),
                    };
                    let lt = t
                        .lines
                        .iter()
                        .map(|l| {
                            (
                                *l,
                                Truth {
                                    counterparts: vec![ti as u32],
                                    ..truth.clone()
                                },
                            )
                        })
                        .collect();
                    (truth, lt)
                }
                Case::FeeVariance => {
                    let truth = Truth {
                        status: ReconciledStatus::Matched,
                        mismatch: MismatchType::Fee,
                        rule: MatchRule::ExactId,
                        counterparts: t.lines.clone(),
                        discrepancy: Some(0),
                        fee_variance: Some(fees - t.fee_minor),
                    };
                    let lt = t
                        .lines
                        .iter()
                        .map(|l| {
                            (
                                *l,
                                Truth {
                                    counterparts: vec![ti as u32],
                                    ..truth.clone()
                                },
                            )
                        })
                        .collect();
                    (truth, lt)
                }
                Case::DuplicateLine => {
                    let mut ls = t.lines.clone();
                    ls.sort_by_key(|l| day.lines[*l as usize].seq);
                    let first = ls[0];
                    let truth = matched(MatchRule::ExactId, vec![first], 0);
                    let mut lt = vec![(first, matched(MatchRule::ExactId, vec![ti as u32], 0))];
                    for dup in &ls[1..] {
                        lt.push((
                            *dup,
                            Truth {
                                status: ReconciledStatus::Duplicate,
                                mismatch: MismatchType::Duplicate,
                                rule: MatchRule::ExactId,
                                counterparts: vec![ti as u32],
                                discrepancy: None,
                                fee_variance: None,
                            },
                        ));
                    }
                    (truth, lt)
                }
                Case::Batch => {
                    // The line's truth is set once, below, from all its owners.
                    (matched(MatchRule::ManyToOne, t.lines.clone(), 0), vec![])
                }
                Case::Chargeback => {
                    let truth = Truth {
                        status: ReconciledStatus::Disputed,
                        mismatch: MismatchType::Chargeback,
                        rule: MatchRule::ExactId,
                        counterparts: t.lines.clone(),
                        discrepancy: Some(sum),
                        fee_variance: Some(fees - t.fee_minor),
                    };
                    let lt = t
                        .lines
                        .iter()
                        .map(|l| {
                            (
                                *l,
                                Truth {
                                    counterparts: vec![ti as u32],
                                    ..truth.clone()
                                },
                            )
                        })
                        .collect();
                    (truth, lt)
                }
                Case::OrphanNoId | Case::OrphanUnknownId => {
                    (Truth::unmatched(MismatchType::MissingAtBank), vec![])
                }
            };
            t.truth = Some(truth);
            for (l, lt) in line_truth {
                day.lines[l as usize].truth = Some(lt);
            }
        }
        for l in &mut day.lines {
            match l.case {
                Case::OrphanNoId | Case::OrphanUnknownId => {
                    l.truth = Some(Truth::unmatched(MismatchType::MissingInternal))
                }
                Case::Batch => {
                    let expected: i64 = l
                        .owners
                        .iter()
                        .map(|o| day.txns[*o as usize].conv_minor)
                        .sum();
                    l.truth = Some(matched(
                        MatchRule::ManyToOne,
                        l.owners.clone(),
                        l.amount_minor - expected,
                    ));
                }
                _ => {}
            }
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
