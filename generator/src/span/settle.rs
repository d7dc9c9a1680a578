//! The statement lines of a multi-day world: each payment's lines on the business day its
//! bank's lag gives, the payouts of the merchants paid by payouts, the orphans of each
//! delivery, and their numbering. A line belongs to the delivery of its posting day (the next
//! business day's when the bank misses it); lines whose delivery falls after the last day are
//! not made (their payments are PENDING at the last close).
//!
//! Ambiguity is removed as in the one-day world, against everything an engine's close could
//! see: a composite line or a payout that another open transaction of the merchant could
//! explain is paid by id instead.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{Days, NaiveDate};
use recon_shared::Result;
use recon_shared::ids::BusinessDate;
use recon_shared::reconcile::group::{GroupSearch, pool_limit};
use recon_shared::records::{RecordType, TxnStatus};

use super::SpanBuilder;
use super::payments::convert;
use crate::day::{Case, Line, compact, draw_amount};
use crate::rng::Rng;

/// The transactions of each (bank, merchant), sorted by settlement amount.
pub(super) type AmountIndex = HashMap<(usize, u32), Vec<(i64, u32)>>;

/// Where a payout merchant's payment was settled: the close and whether by a payout.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Settled {
    close: NaiveDate,
    payout: bool,
}

impl SpanBuilder<'_> {
    pub(super) fn amount_index(&self) -> Result<AmountIndex> {
        let w = self.world;
        let mut index: AmountIndex = HashMap::new();
        for (i, t) in self.day.txns.iter().enumerate() {
            index
                .entry((t.bank, t.merchant))
                .or_default()
                .push((t.conv_minor, i as u32));
            // A second acquirer's payment is open at the merchant file's bank until handed
            // over, at its amount in that bank's currency.
            let acquirer = w.merchant_bank[t.merchant as usize];
            if acquirer != t.bank {
                let there = w.banks[acquirer].currency;
                let conv = convert(w, t.amount_minor, t.currency, there, t.business_date)?;
                index
                    .entry((acquirer, t.merchant))
                    .or_default()
                    .push((conv, i as u32));
            }
        }
        for v in index.values_mut() {
            v.sort_unstable();
        }
        Ok(index)
    }

    /// Whether a transaction of `bank` and `merchant` other than `own` that an engine could
    /// hold open at `close` has a settlement amount within twice the tolerance of `amount` and
    /// a date within the window of `posting`: a line without id could then match it.
    #[allow(clippy::too_many_arguments)]
    fn collides(
        &self,
        index: &AmountIndex,
        bank: usize,
        merchant: u32,
        amount: i64,
        posting: NaiveDate,
        close: NaiveDate,
        own: Option<usize>,
    ) -> bool {
        let tol = 2 * self.tol.amount_minor_units;
        let Some(v) = index.get(&(bank, merchant)) else {
            return false;
        };
        let start = v.partition_point(|(a, _)| *a < amount - tol);
        v[start..]
            .iter()
            .take_while(|(a, _)| *a <= amount + tol)
            .any(|(_, i)| {
                let t = &self.day.txns[*i as usize];
                Some(*i as usize) != own
                    && t.ledger_date.date() <= close
                    && (posting - t.business_date.date()).num_days() <= self.tol.date_window_days
            })
    }

    fn push_line(&mut self, line: Line) -> u32 {
        let idx = self.day.lines.len() as u32;
        for o in &line.owners {
            self.day.txns[*o as usize].lines.push(idx);
        }
        self.day.lines.push(line);
        idx
    }

    /// A line of transaction `t` posted on `posting`, delivered on `delivery`.
    #[allow(clippy::too_many_arguments)]
    fn line(
        &self,
        t: usize,
        amount_minor: i64,
        fee_minor: i64,
        record_type: RecordType,
        with_id: bool,
        case: Case,
        (posting, delivery): (NaiveDate, NaiveDate),
        r: &mut Rng,
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
                convert(
                    self.world,
                    amount_minor,
                    bank.currency,
                    tx.currency,
                    tx.business_date,
                )?
            };
            canonical = convert(
                self.world,
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
            _ if r.chance(500) => {
                format!("INV {}, ORDER {}", r.range(1000, 99999), r.range(10, 99))
            }
            _ => format!("CARD SETTLEMENT {}", r.range(100_000, 999_999)),
        };
        let dup_record = r.chance(self.knobs.exact_duplicate_record);
        // Booked just after midnight in the bank's time zone: the next calendar day's posting
        // date, still in this delivery. Never on lines matched by date (composite, payouts).
        let midnight = r.chance(self.knobs.midnight_posting) && with_id;
        let (posting_date, posted_secs) = if midnight {
            (posting + Days::new(1), r.range(60, 1800) as u32)
        } else {
            (posting, r.range(8 * 3600, 20 * 3600) as u32)
        };
        Ok(Line {
            bank: tx.bank,
            business_date: BusinessDate::from_date(delivery)?,
            posting_date: BusinessDate::from_date(posting_date)?,
            seq: 0,
            statement_id: String::new(),
            txn_ref: with_id.then(|| tx.id.clone()),
            merchant: Some(tx.merchant),
            amount_minor: canonical,
            fee_minor,
            record_type,
            reference,
            original,
            dup_record,
            case,
            owners: vec![t as u32],
            truth: None,
            posted_secs,
        })
    }

    /// Every line but payouts and orphans, then the payouts, the orphans and the numbering.
    pub(super) fn settle(&mut self) -> Result<()> {
        let index = self.amount_index()?;
        for t in 0..self.day.txns.len() {
            self.settle_txn(t, &index)?;
        }
        self.payouts(&index)?;
        self.orphans()?;
        self.number_lines();
        Ok(())
    }

    fn settle_txn(&mut self, t: usize, index: &AmountIndex) -> Result<()> {
        let x = &self.day.txns[t];
        let (case, bank, merchant, conv, fee) =
            (x.case, x.bank, x.merchant, x.conv_minor, x.fee_minor);
        let date = x.business_date.date();
        if matches!(case, Case::MissingAtBank | Case::NotExpected | Case::Batch) {
            return Ok(());
        }
        let days = self.bank_days;
        let mut r = Rng::new(self.plans[t].seed);
        let posting = if case == Case::LateSettlement {
            days.add_business_days(bank, days.expected_by(bank, date), 1)
        } else {
            days.posting(bank, date, self.plans[t].lag)
        };
        let delivery = days.delivery(bank, posting);
        if delivery > self.last {
            return Ok(());
        }
        let case = match super::anomalies::line_case(
            &self.anomalies,
            bank,
            delivery,
            self.plans[t].seed,
        ) {
            // Not a second acquirer's payment: its hand-over is the case it tests.
            Some(c)
                if case == Case::Exact && self.world.merchant_bank[merchant as usize] == bank =>
            {
                self.day.txns[t].case = c;
                c
            }
            _ => case,
        };
        let at = (posting, delivery);
        let settlement = RecordType::Settlement;
        match case {
            Case::Composite => {
                let near = (posting - date).num_days() <= self.tol.date_window_days;
                if near && !self.collides(index, bank, merchant, conv, posting, delivery, Some(t)) {
                    let mut l = self.line(t, conv, fee, settlement, false, case, at, &mut r)?;
                    l.reference = format!("POS {}", r.range(100_000, 999_999));
                    self.push_line(l);
                } else {
                    self.day.txns[t].case = Case::Exact;
                    let l = self.line(t, conv, fee, settlement, true, Case::Exact, at, &mut r)?;
                    self.push_line(l);
                }
            }
            Case::AmountDiff => {
                let tol = self.tol.amount_minor_units;
                let mut delta = (conv / 20).max(2 * tol + 1);
                let mut l;
                loop {
                    let posted = (conv - delta).max(0);
                    l = self.line(t, posted, fee, settlement, true, case, at, &mut r)?;
                    if (l.amount_minor - conv).abs() > tol || delta >= conv {
                        break;
                    }
                    delta *= 2;
                }
                self.push_line(l);
            }
            Case::FeeVariance => {
                let tol = self.tol.fee_minor_units;
                let delta = r.range(tol + 1, tol + 60);
                let charged = if fee > delta && r.chance(5000) {
                    fee - delta
                } else {
                    fee + delta
                };
                let l = self.line(t, conv, charged, settlement, true, case, at, &mut r)?;
                self.push_line(l);
            }
            Case::DuplicateLine => {
                for _ in 0..2 {
                    let l = self.line(t, conv, fee, settlement, true, case, at, &mut r)?;
                    self.push_line(l);
                }
            }
            Case::Split => {
                // No part within tolerance of the whole: each at least tolerance + 1, so every
                // other part leaves more than the tolerance.
                let least = self.tol.amount_minor_units + 1;
                let parts = r.range(2, 4).min(conv / least);
                let mut left = conv;
                for p in 0..parts {
                    let amount = if p == parts - 1 {
                        left
                    } else {
                        r.range(least, left - least * (parts - p - 1))
                    };
                    left -= amount;
                    let part_fee = if p == 0 { fee } else { 0 };
                    let mut l =
                        self.line(t, amount, part_fee, settlement, true, case, at, &mut r)?;
                    l.reference = format!("PARTIAL {}/{parts}", p + 1);
                    self.push_line(l);
                }
            }
            Case::Refund => {
                let l = self.line(t, conv, 0, RecordType::Refund, true, case, at, &mut r)?;
                self.push_line(l);
            }
            Case::Chargeback => {
                let l = self.line(t, conv, 0, RecordType::Chargeback, true, case, at, &mut r)?;
                self.push_line(l);
            }
            _ => {
                let l = self.line(t, conv, fee, settlement, true, case, at, &mut r)?;
                self.push_line(l);
            }
        }
        Ok(())
    }

    /// Payouts: each payout merchant is paid every 2 or 3 business days (its own schedule) for
    /// its payments of the days before, in lines of 2 to 5 payments of those days. A payout that is not the
    /// only way to add up to its amount and fee among the payments an engine holds open at its
    /// close (or that a single payment comes within tolerance of) is paid by id instead.
    fn payouts(&mut self, index: &AmountIndex) -> Result<()> {
        let mut settled: HashMap<u32, Settled> = HashMap::new();
        for bank in 0..self.world.banks.len() {
            let merchants: Vec<u32> = self.world.bank_merchants[bank]
                .iter()
                .copied()
                .filter(|m| self.world.payout[*m as usize])
                .collect();
            if merchants.is_empty() {
                continue;
            }
            let mut queues: BTreeMap<u32, VecDeque<usize>> = BTreeMap::new();
            for (i, t) in self.day.txns.iter().enumerate() {
                if t.bank == bank && t.case == Case::Batch {
                    queues.entry(t.merchant).or_default().push_back(i);
                }
            }
            let schedule: HashMap<u32, (u32, u32)> = merchants
                .iter()
                .map(|m| {
                    let mut r = Rng::new(self.base ^ u64::from(*m).wrapping_mul(0x9E37_79B9));
                    let every = r.range(2, 3) as u32;
                    (*m, (every, r.below(u64::from(every)) as u32))
                })
                .collect();
            let mut posting = self.first;
            while posting <= self.last {
                let p = posting;
                posting = posting + Days::new(1);
                if !self.bank_days.is_business_day(bank, p) {
                    continue;
                }
                let close = self.bank_days.delivery(bank, p);
                if close > self.last {
                    break;
                }
                let nth = self.bank_days.business_days_between(bank, self.first, p);
                for m in &merchants {
                    let (every, phase) = schedule[m];
                    if !(nth + phase).is_multiple_of(every) {
                        continue;
                    }
                    let Some(queue) = queues.get_mut(m) else {
                        continue;
                    };
                    let mut due = Vec::new();
                    while queue
                        .front()
                        .is_some_and(|t| self.day.txns[*t].business_date.date() < p)
                    {
                        due.extend(queue.pop_front());
                    }
                    if due.is_empty() {
                        continue;
                    }
                    due.sort_by_key(|t| (self.day.txns[*t].event_ms, *t));
                    let mut r = self.rng_for(p, 1000 + u64::from(*m));
                    // A payout takes payments of any of the days it covers.
                    for i in (1..due.len()).rev() {
                        due.swap(i, r.below(i as u64 + 1) as usize);
                    }
                    let mut groups: Vec<Vec<usize>> = Vec::new();
                    let mut rest = due.as_slice();
                    while !rest.is_empty() {
                        let size = (r.range(2, 5) as usize).min(rest.len());
                        let (g, tail) = rest.split_at(size);
                        rest = tail;
                        match groups.last_mut() {
                            Some(prev) if g.len() == 1 && prev.len() < 5 => prev.extend(g),
                            _ => groups.push(g.to_vec()),
                        }
                    }
                    for g in groups {
                        let unique = g.len() >= 2
                            && self.payout_is_unique(index, bank, *m, &g, (p, close), &settled);
                        for t in &g {
                            settled.insert(
                                *t as u32,
                                Settled {
                                    close,
                                    payout: unique,
                                },
                            );
                        }
                        if unique {
                            self.payout_line(&g, (p, close), &mut r)?;
                        } else {
                            for t in g {
                                self.day.txns[t].case = Case::Exact;
                                let x = &self.day.txns[t];
                                let (conv, fee) = (x.conv_minor, x.fee_minor);
                                let mut tr = Rng::new(self.plans[t].seed);
                                let l = self.line(
                                    t,
                                    conv,
                                    fee,
                                    RecordType::Settlement,
                                    true,
                                    Case::Exact,
                                    (p, close),
                                    &mut tr,
                                )?;
                                self.push_line(l);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn payout_line(
        &mut self,
        group: &[usize],
        at: (NaiveDate, NaiveDate),
        r: &mut Rng,
    ) -> Result<()> {
        let total: i64 = group.iter().map(|t| self.day.txns[*t].conv_minor).sum();
        let fees: i64 = group.iter().map(|t| self.day.txns[*t].fee_minor).sum();
        let mut l = self.line(
            group[0],
            total,
            fees,
            RecordType::Settlement,
            false,
            Case::Batch,
            at,
            r,
        )?;
        l.owners = group.iter().map(|t| *t as u32).collect();
        l.original = None;
        l.amount_minor = total;
        l.reference = format!("PAYOUT {} TXNS", group.len());
        self.push_line(l);
        Ok(())
    }

    /// Whether `group` is the only set of `merchant`'s payments an engine holds open at the
    /// payout's close whose amounts and fees add up to the payout, and no single payment is
    /// within tolerance of it (the composite pass comes first).
    fn payout_is_unique(
        &self,
        index: &AmountIndex,
        bank: usize,
        merchant: u32,
        group: &[usize],
        (posting, close): (NaiveDate, NaiveDate),
        settled: &HashMap<u32, Settled>,
    ) -> bool {
        let txns = &self.day.txns;
        let window = self.tol.date_window_days;
        if group
            .iter()
            .any(|t| (posting - txns[*t].business_date.date()).num_days() > window)
        {
            return false;
        }
        let total: i64 = group.iter().map(|t| txns[*t].conv_minor).sum();
        let fees: i64 = group.iter().map(|t| txns[*t].fee_minor).sum();
        if self.collides(index, bank, merchant, total, posting, close, None) {
            return false;
        }
        // Open at the close's many-to-one pass: in the ledger by then, expected positive, not
        // settled before it nor by id in it (payouts of the same close are still open).
        let mut pool: Vec<usize> = index
            .get(&(bank, merchant))
            .into_iter()
            .flatten()
            .map(|(_, i)| *i as usize)
            .filter(|i| {
                let t = &txns[*i];
                t.ledger_date.date() <= close
                    && t.status != TxnStatus::Refunded
                    && settled
                        .get(&(*i as u32))
                        .is_none_or(|s| s.close == close && s.payout)
            })
            .collect();
        let limit = pool_limit(self.tol.max_group_candidates, self.tol.max_group_size);
        if pool.len() > limit {
            return false;
        }
        pool.sort_unstable();
        let items: Vec<(i64, i64)> = pool
            .iter()
            .map(|t| (txns[*t].conv_minor, txns[*t].fee_minor))
            .collect();
        let own = group
            .iter()
            .filter_map(|t| pool.iter().position(|p| p == t))
            .fold(0u128, |m, i| m | 1 << i);
        let fits =
            GroupSearch::new(&items, self.tol.max_group_size).fits((total, fees), (0, 0), 0, 2);
        fits == [own]
    }

    /// Lines with no transaction behind them, so that about `line_match` of each delivery's
    /// lines match: half name an unknown transaction id (some with a merchant), half name
    /// nothing (no id, no merchant: an unallocated receipt no amount search can take).
    fn orphans(&mut self) -> Result<()> {
        let mut per_delivery: BTreeMap<(NaiveDate, usize), u64> = BTreeMap::new();
        for l in &self.day.lines {
            *per_delivery
                .entry((l.business_date.date(), l.bank))
                .or_default() += 1;
        }
        let share = u64::from(self.knobs.line_match);
        for ((delivery, bank), lines) in per_delivery {
            let mut r = self.rng_for(delivery, 100 + bank as u64);
            let wanted = lines * (10_000 - share);
            let n = wanted / share + u64::from(r.below(share) < wanted % share);
            let date = BusinessDate::from_date(delivery)?;
            let dc = compact(date);
            let currency = self.world.banks[bank].currency;
            for i in 0..n {
                let unknown_id = r.chance(5000);
                let merchant = if unknown_id && r.chance(5000) {
                    let ms = &self.world.bank_merchants[bank];
                    Some(ms[r.below(ms.len() as u64) as usize])
                } else {
                    None
                };
                let record_type = if r.chance(300) {
                    RecordType::Adjustment
                } else {
                    RecordType::Settlement
                };
                let line = Line {
                    bank,
                    business_date: date,
                    posting_date: date,
                    seq: 0,
                    statement_id: String::new(),
                    txn_ref: unknown_id.then(|| format!("TX-{dc}-X{:02}{:06}", bank + 1, i + 1)),
                    merchant,
                    amount_minor: draw_amount(&mut r, currency).max(1),
                    fee_minor: 0,
                    record_type,
                    reference: format!("UNALLOCATED {}", r.range(10_000, 99_999)),
                    original: None,
                    dup_record: false,
                    case: if unknown_id {
                        Case::OrphanUnknownId
                    } else {
                        Case::OrphanNoId
                    },
                    owners: Vec::new(),
                    truth: None,
                    posted_secs: r.range(8 * 3600, 20 * 3600) as u32,
                };
                self.push_line(line);
            }
        }
        Ok(())
    }

    /// Shuffles each delivery's lines and numbers them: statement ids in file order.
    fn number_lines(&mut self) {
        let mut per_delivery: BTreeMap<(BusinessDate, usize), Vec<u32>> = BTreeMap::new();
        for (i, l) in self.day.lines.iter().enumerate() {
            per_delivery
                .entry((l.business_date, l.bank))
                .or_default()
                .push(i as u32);
        }
        for ((date, bank), mut idx) in per_delivery {
            let mut r = self.rng_for(date.date(), 200 + bank as u64);
            for i in (1..idx.len()).rev() {
                let j = r.below(i as u64 + 1) as usize;
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
}
