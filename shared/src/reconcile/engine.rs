//! The matching engine for one (business date, bank) partition.
//!
//! Passes, each over what the previous left unmatched:
//! 0. **manual** — a person's match of open items ([`ManualMatch`], design.md §12), applied
//!    as the person made it once every item it names is in the partition;
//! 1. **exact id** — lines naming a transaction_id; one line, several lines summing to it
//!    (one-to-many), duplicates, partial settlements, chargebacks;
//! 2. **composite** — lines without an id: same merchant, amount within tolerance, posting
//!    date within the window; best candidate by amount distance, then date distance, then id;
//! 3. **many-to-one** — a line paying several transactions of its merchant: a complete search
//!    of groups of 2..=`max_group_size` among the merchant's first `max_group_candidates`
//!    unmatched transactions (by event time; [`super::group`] bounds the work), exact sums
//!    before sums within tolerance;
//! 4. what remains is MISSING_INTERNAL (lines); a transaction left is PENDING inside its
//!    settlement window, MISSING_AT_BANK after it, and no break at all when it moves no money
//!    (DECLINED, PENDING): docs/daily-close.md, "Open items".
//!
//! The inputs are the partition's own items and the open items earlier closes carried
//! forward ([`TxnRef::prior`]), so every pass matches across days.
//!
//! Money is handled in integer minor units of the statement currency inside the passes and
//! converted from and to exact decimals at the edges.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use chrono::NaiveDate;

use super::frame::{LineRef, TxnRef};
use super::group::{self, GroupSearch};
use crate::breaks::ManualMatch;
use crate::calendar::Calendar;
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate, MerchantId};
use crate::money::{Currency, FxTable};
use crate::records::{FeeRule, MatchRule, MismatchType, ReconciledStatus, RecordType, TxnStatus};
use crate::rules::{Tolerances, select_fee_rule};

/// Everything the engine needs for one partition.
pub struct PartitionInput<'a> {
    /// The business date of the partition.
    pub business_date: BusinessDate,
    /// The bank of the partition.
    pub bank_id: BankId,
    /// Currency of the bank's statements (from its source mapping); lines carry it too.
    pub settlement_currency: Option<Currency>,
    /// The bank's transactions of the day (any order).
    pub transactions: &'a [TxnRef<'a>],
    /// The bank's statement lines of the day (any order).
    pub lines: &'a [LineRef<'a>],
    /// Merchant category by id (for fee rules).
    pub categories: &'a HashMap<MerchantId, String>,
    /// Every fee rule; the engine picks the one in force per transaction.
    pub fee_rules: &'a [FeeRule],
    /// How close amounts and dates must be, and how far the group search goes.
    pub tolerances: &'a Tolerances,
    /// The day's FX table, for transactions in another currency than the statement.
    pub fx: &'a FxTable,
    /// The bank's calendar: its settlement window counts its business days.
    pub calendar: &'a Calendar,
    /// The bank's statement for the date is not in: no transaction's window runs out.
    pub awaiting: bool,
    /// People's matches of the bank's items, in force (the bank's decisions file).
    pub manual: &'a [ManualMatch],
}

impl PartitionInput<'_> {
    /// The bank's settlement window in business days (its calendar's, else the tolerances').
    pub fn window_days(&self) -> u32 {
        self.calendar
            .settlement_window_days
            .unwrap_or(self.tolerances.settlement_window_days)
    }

    /// The last close whose statement may still settle `t` without a break.
    pub fn expected_by(&self, t: &TxnRef<'_>) -> NaiveDate {
        self.calendar
            .add_business_days(t.event_date, self.window_days())
    }

    /// What a transaction no line settled is at this close: no break when it moves no
    /// money, PENDING inside its window (or while the statement is awaited), else
    /// MISSING_AT_BANK.
    fn unsettled(&self, t: &TxnRef<'_>) -> Outcome {
        if !expected_at_bank(t.status) {
            Outcome::unmatched(MismatchType::None)
        } else if self.awaiting || self.business_date.date() < self.expected_by(t) {
            Outcome {
                status: ReconciledStatus::Pending,
                ..Outcome::unmatched(MismatchType::None)
            }
        } else {
            Outcome::unmatched(MismatchType::MissingAtBank)
        }
    }
}

/// Applies one manual match: its transactions and lines MATCHED to each other
/// (`match_rule = MANUAL`, confidence 1), the group's discrepancy and fee variance on each.
/// A match waits while an item it names is not in the partition or already taken.
fn manual_group(
    m: &ManualMatch,
    txns: &[&TxnRef],
    lines: &[&LineRef],
    facts: &[TxnFacts],
    line_minor: &[(i64, i64)],
    t_out: &mut [Option<Outcome>],
    l_out: &mut [Option<Outcome>],
) {
    let tis: Option<Vec<usize>> = m
        .transaction_ids
        .iter()
        .map(|id| {
            txns.binary_search_by(|t| t.transaction_id.cmp(id.as_str()))
                .ok()
                .filter(|i| t_out[*i].is_none())
        })
        .collect();
    let lis: Option<Vec<usize>> = m
        .statement_ids
        .iter()
        .map(|id| {
            lines
                .binary_search_by(|l| l.statement_id.cmp(id.as_str()))
                .ok()
                .filter(|i| l_out[*i].is_none())
        })
        .collect();
    let (Some(tis), Some(lis)) = (tis, lis) else {
        return;
    };
    if tis.is_empty() || lis.is_empty() {
        return;
    }
    let expected: i64 = tis.iter().map(|t| facts[*t].expected_minor).sum();
    let fee: i64 = tis.iter().map(|t| facts[*t].expected_fee_minor).sum();
    let posted: i64 = lis.iter().map(|l| line_minor[*l].0).sum();
    let charged: i64 = lis.iter().map(|l| line_minor[*l].1).sum();
    let o = |c: Counterparts| Outcome {
        status: ReconciledStatus::Matched,
        mismatch: MismatchType::None,
        rule: MatchRule::Manual,
        counterparts: c,
        discrepancy: Some(posted - expected),
        fee_variance: Some(charged - fee),
        confidence: 1000,
    };
    for t in &tis {
        t_out[*t] = Some(o(lis.iter().map(|l| *l as u32).collect()));
    }
    for l in &lis {
        l_out[*l] = Some(o(tis.iter().map(|t| *t as u32).collect()));
    }
}

/// Whether a transaction of this status moves money, so the bank must post it: captured
/// payments, refunds and chargebacks; never a DECLINED or still PENDING one.
pub fn expected_at_bank(status: TxnStatus) -> bool {
    matches!(
        status,
        TxnStatus::Approved | TxnStatus::Refunded | TxnStatus::Chargeback
    )
}

/// The outcome of one transaction or statement line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The reconciled status.
    pub status: ReconciledStatus,
    /// The kind of break, NONE when there is none.
    pub mismatch: MismatchType,
    /// How the match was found (`NONE` when unmatched).
    pub rule: MatchRule,
    /// Line indices for a transaction, transaction indices for a line (into the sorted inputs).
    pub counterparts: Counterparts,
    /// Minor units of the statement currency.
    pub discrepancy: Option<i64>,
    /// Fee charged minus fee expected, in minor units of the statement currency.
    pub fee_variance: Option<i64>,
    /// Confidence in per-mille: 1000 for exact-id matches.
    pub confidence: u16,
}

impl Outcome {
    fn unmatched(mismatch: MismatchType) -> Self {
        Outcome {
            status: ReconciledStatus::Unmatched,
            mismatch,
            rule: MatchRule::None,
            counterparts: Counterparts::None,
            discrepancy: None,
            fee_variance: None,
            confidence: 0,
        }
    }
}

/// The other side of an outcome: line indices for a transaction, transaction indices for a
/// line. Most outcomes have none or one, which take no allocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Counterparts {
    /// Unmatched.
    #[default]
    None,
    /// A one-to-one match.
    One(u32),
    /// A group match (one-to-many or many-to-one).
    Many(Box<[u32]>),
}

impl std::ops::Deref for Counterparts {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        match self {
            Counterparts::None => &[],
            Counterparts::One(i) => std::slice::from_ref(i),
            Counterparts::Many(v) => v,
        }
    }
}

impl FromIterator<u32> for Counterparts {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut it = iter.into_iter();
        let Some(first) = it.next() else {
            return Counterparts::None;
        };
        match it.next() {
            None => Counterparts::One(first),
            Some(second) => {
                let mut v = vec![first, second];
                v.extend(it);
                Counterparts::Many(v.into_boxed_slice())
            }
        }
    }
}

/// Per-transaction facts in statement-currency minor units.
#[derive(Debug, Clone)]
pub struct TxnFacts {
    /// Expected signed amount on the statement (refunds negative).
    pub expected_minor: i64,
    /// Fee the applicable rule expects, in minor units.
    pub expected_fee_minor: i64,
    /// Whether the transaction is in another currency than the statement (converted by FX).
    pub cross_currency: bool,
    /// The transaction's event date, for the composite match's date window.
    pub date: NaiveDate,
}

/// The engine's answer: inputs sorted by id, with facts and outcomes aligned to them.
pub struct PartitionResult<'a> {
    /// The statement (settlement) currency of every minor-unit amount.
    pub currency: Currency,
    /// The transactions, sorted by id.
    pub transactions: Vec<&'a TxnRef<'a>>,
    /// Facts of each transaction, aligned with `transactions`.
    pub facts: Vec<TxnFacts>,
    /// Outcome of each transaction, aligned with `transactions`.
    pub txn_outcomes: Vec<Outcome>,
    /// The statement lines, sorted by statement id.
    pub lines: Vec<&'a LineRef<'a>>,
    /// Each line's posted amount and fee charged in minor units, aligned with `lines`.
    pub line_minor: Vec<(i64, i64)>,
    /// Outcome of each line, aligned with `lines`.
    pub line_outcomes: Vec<Outcome>,
}

/// Reconciles one partition. Deterministic: the same inputs in any order give the same result.
pub fn reconcile<'a>(input: &PartitionInput<'a>) -> Result<PartitionResult<'a>> {
    let mut txns: Vec<&TxnRef> = input.transactions.iter().collect();
    txns.sort_by(|a, b| a.transaction_id.cmp(b.transaction_id));
    let mut lines: Vec<&LineRef> = input.lines.iter().collect();
    lines.sort_by(|a, b| a.statement_id.cmp(b.statement_id));
    if let Some(w) = txns
        .windows(2)
        .find(|w| w[0].transaction_id == w[1].transaction_id)
    {
        return Err(Error::Invariant(format!(
            "transaction {} appears twice in the partition",
            w[0].transaction_id
        )));
    }
    let currency = input
        .settlement_currency
        .or_else(|| lines.first().map(|l| l.currency))
        .or_else(|| txns.first().map(|t| t.currency))
        .ok_or_else(|| Error::Invariant("empty partition has no currency".into()))?;
    if let Some(l) = lines.iter().find(|l| l.currency != currency) {
        return Err(Error::CurrencyMismatch {
            left: l.currency.to_string(),
            right: currency.to_string(),
        });
    }
    let date = input.business_date.date();
    let tol = input.tolerances.amount_minor_units;
    let fee_tol = input.tolerances.fee_minor_units;
    let window = input.tolerances.date_window_days;

    // Facts per transaction. The fee rule depends on the merchant category only: choose it
    // once per category.
    let mut rule_by_category: FxHashMap<Option<&str>, Option<&FeeRule>> = FxHashMap::default();
    let mut facts = Vec::with_capacity(txns.len());
    for t in &txns {
        let conv_minor = if t.currency == currency {
            currency.round_to_minor(t.amount)?
        } else {
            let (conv, _) =
                input
                    .fx
                    .convert(t.amount, t.currency, currency, input.business_date)?;
            currency.round_to_minor(conv)?
        };
        let refund = t.status == TxnStatus::Refunded;
        let fee = if refund {
            0
        } else {
            let cat = input.categories.get(t.merchant_id).map(String::as_str);
            let rule = *rule_by_category.entry(cat).or_insert_with(|| {
                select_fee_rule(input.fee_rules, &input.bank_id, cat, currency, date)
            });
            match rule {
                Some(r) => currency.round_to_minor(r.fee_for(currency.from_minor(conv_minor)))?,
                None => 0,
            }
        };
        facts.push(TxnFacts {
            expected_minor: if refund { -conv_minor } else { conv_minor },
            expected_fee_minor: fee,
            cross_currency: t.currency != currency,
            date: t.event_date,
        });
    }
    let line_minor: Vec<(i64, i64)> = lines
        .iter()
        .map(|l| {
            Ok((
                currency.round_to_minor(l.amount_posted)?,
                currency.round_to_minor(l.fee_charged)?,
            ))
        })
        .collect::<Result<_>>()?;
    let mut t_out: Vec<Option<Outcome>> = vec![None; txns.len()];
    let mut l_out: Vec<Option<Outcome>> = vec![None; lines.len()];

    // 0. Manual: each person's match whose items are all here and not yet taken.
    for m in input.manual {
        manual_group(
            m,
            &txns,
            &lines,
            &facts,
            &line_minor,
            &mut t_out,
            &mut l_out,
        );
    }

    // 1. Exact id: lines naming a transaction, merged with the transactions on sorted ids
    // (lines of one id in line order); groups are settled in transaction order.
    // A transaction some line names is decided here or left unmatched, never offered to the
    // composite and group passes (a line taken by a manual match still names it), so the
    // Spark job's groups, which keep a named transaction with its lines, decide the same.
    let mut named: Vec<(&str, usize)> = lines
        .iter()
        .enumerate()
        .filter_map(|(li, l)| l.transaction_id.map(|id| (id, li)))
        .collect();
    if !named.is_sorted() {
        named.sort_unstable();
    }
    let mut named_txn = vec![false; txns.len()];
    let (mut ti, mut group) = (0, Vec::new());
    for run in named.chunk_by(|a, b| a.0 == b.0) {
        let id = run[0].0;
        while ti < txns.len() && txns[ti].transaction_id < id {
            ti += 1;
        }
        let found = ti < txns.len() && txns[ti].transaction_id == id;
        if found {
            named_txn[ti] = true;
        }
        // Lines a manual match took are settled; a transaction it took, too: its other
        // lines are left for the last pass.
        group.clear();
        group.extend(
            run.iter()
                .map(|(_, li)| *li)
                .filter(|li| l_out[*li].is_none()),
        );
        if group.is_empty() || (found && t_out[ti].is_some()) {
            continue;
        }
        if found {
            exact_group(
                ti,
                &group,
                &txns,
                &facts,
                &lines,
                &line_minor,
                tol,
                fee_tol,
                &mut t_out,
                &mut l_out,
            );
        } else {
            for li in &group {
                l_out[*li] = Some(Outcome::unmatched(MismatchType::MissingInternal));
            }
        }
    }

    // 2. Composite: (merchant, expected amount) -> unmatched transactions.
    let mut index: FxHashMap<(&str, i64), Vec<usize>> = FxHashMap::default();
    for (ti, t) in txns.iter().enumerate() {
        if t_out[ti].is_none() && !named_txn[ti] {
            index
                .entry((t.merchant_id, facts[ti].expected_minor))
                .or_default()
                .push(ti);
        }
    }
    for li in 0..lines.len() {
        let l = lines[li];
        if l_out[li].is_some() || l.transaction_id.is_some() {
            continue;
        }
        let Some(m) = &l.merchant_id else { continue };
        let amount = line_minor[li].0;
        let mut best: Option<(i64, i64, usize)> = None;
        for d in -tol..=tol {
            let Some(cands) = index.get(&(*m, amount - d)) else {
                continue;
            };
            for &ti in cands {
                if t_out[ti].is_some() {
                    continue;
                }
                let days = (l.posting_date - facts[ti].date).num_days().abs();
                if days > window {
                    continue;
                }
                let key = (d.abs(), days, ti);
                if best.is_none_or(|b| key < b) {
                    best = Some(key);
                }
            }
        }
        if let Some((d, days, ti)) = best {
            let confidence =
                (950 - 50 * days - if d > 0 { 100 } else { 0 }).clamp(500, 1000) as u16;
            let disc = amount - facts[ti].expected_minor;
            let fee_var = line_minor[li].1 - facts[ti].expected_fee_minor;
            let mismatch = if fee_var.abs() > fee_tol {
                MismatchType::Fee
            } else {
                MismatchType::None
            };
            let o = |c: Counterparts| Outcome {
                status: ReconciledStatus::Matched,
                mismatch,
                rule: MatchRule::Composite,
                counterparts: c,
                discrepancy: Some(disc),
                fee_variance: Some(fee_var),
                confidence,
            };
            t_out[ti] = Some(o(Counterparts::One(li as u32)));
            l_out[li] = Some(o(Counterparts::One(ti as u32)));
        }
    }

    // 3. Many-to-one: one line pays several transactions of its merchant. A merchant's lines
    // compete only for its own transactions, so each merchant is settled on its own (lines in
    // statement order): first every line whose group adds up exactly, then the rest within
    // tolerance, so a group within tolerance never takes members of an exact one.
    let mut by_merchant: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
    for (ti, t) in txns.iter().enumerate() {
        if t_out[ti].is_none() && !named_txn[ti] && facts[ti].expected_minor > 0 {
            by_merchant.entry(t.merchant_id).or_default().push(ti);
        }
    }
    let mut payouts: Vec<(&str, usize)> = (0..lines.len())
        .filter(|li| l_out[*li].is_none() && lines[*li].transaction_id.is_none())
        .filter_map(|li| {
            let m = lines[li].merchant_id?;
            by_merchant.contains_key(m).then_some((m, li))
        })
        .collect();
    payouts.sort_unstable();
    for run in payouts.chunk_by(|a, b| a.0 == b.0) {
        let pool = &by_merchant[run[0].0];
        for (atol, ftol) in [(0, 0), (tol, fee_tol)] {
            // The merchant's unmatched transactions, oldest first, as many as one search covers.
            let mut cands: Vec<usize> = pool
                .iter()
                .copied()
                .filter(|ti| t_out[*ti].is_none())
                .collect();
            if cands.len() < 2 {
                break;
            }
            cands.sort_by_key(|ti| (txns[*ti].event_micros, *ti));
            cands.truncate(input.tolerances.max_group_candidates);
            let items: Vec<(i64, i64)> = cands
                .iter()
                .map(|ti| (facts[*ti].expected_minor, facts[*ti].expected_fee_minor))
                .collect();
            let mut search: Option<GroupSearch> = None;
            let mut taken = 0u128;
            for &(_, li) in run {
                if l_out[li].is_some() {
                    continue;
                }
                let l = lines[li];
                let search = search.get_or_insert_with(|| {
                    GroupSearch::new(&items, input.tolerances.max_group_size)
                });
                let outside = (0..search.len())
                    .filter(|i| (l.posting_date - facts[cands[*i]].date).num_days().abs() > window)
                    .fold(0u128, |m, i| m | 1 << i);
                // A payout line carries the fees of what it pays: amount and fee must both add up.
                let Some(group) =
                    search.best(&items, line_minor[li], (atol, ftol), taken | outside)
                else {
                    continue;
                };
                taken |= group;
                let members: Vec<usize> = group::members(group).map(|i| cands[i]).collect();
                let expected: i64 = members.iter().map(|ti| facts[*ti].expected_minor).sum();
                let fees: i64 = members.iter().map(|ti| facts[*ti].expected_fee_minor).sum();
                let disc = line_minor[li].0 - expected;
                let fee_var = line_minor[li].1 - fees;
                let mismatch = if fee_var.abs() > fee_tol {
                    MismatchType::Fee
                } else {
                    MismatchType::None
                };
                let mut sorted = members.clone();
                sorted.sort_unstable();
                let o = |c: Counterparts| Outcome {
                    status: ReconciledStatus::Matched,
                    mismatch,
                    rule: MatchRule::ManyToOne,
                    counterparts: c,
                    discrepancy: Some(disc),
                    fee_variance: Some(fee_var),
                    confidence: 900,
                };
                for ti in &members {
                    t_out[*ti] = Some(o(Counterparts::One(li as u32)));
                }
                l_out[li] = Some(o(sorted.iter().map(|t| *t as u32).collect()));
            }
        }
    }

    // 4. Whatever is left.
    let txn_outcomes = t_out
        .into_iter()
        .zip(&txns)
        .map(|(o, t)| o.unwrap_or_else(|| input.unsettled(t)))
        .collect();
    let line_outcomes = l_out
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::unmatched(MismatchType::MissingInternal)))
        .collect();
    Ok(PartitionResult {
        currency,
        transactions: txns,
        facts,
        txn_outcomes,
        lines,
        line_minor,
        line_outcomes,
    })
}

/// Lines that name one transaction.
#[allow(clippy::too_many_arguments)]
fn exact_group(
    ti: usize,
    ls: &[usize],
    txns: &[&TxnRef],
    facts: &[TxnFacts],
    lines: &[&LineRef],
    line_minor: &[(i64, i64)],
    tol: i64,
    fee_tol: i64,
    t_out: &mut [Option<Outcome>],
    l_out: &mut [Option<Outcome>],
) {
    let f = &facts[ti];
    let chargeback = txns[ti].status == TxnStatus::Chargeback
        || ls
            .iter()
            .any(|li| lines[*li].record_type == Some(RecordType::Chargeback));
    if chargeback {
        // Settlement lines book +amount, chargeback lines -amount.
        let expected: i64 = ls
            .iter()
            .map(|li| {
                if lines[*li].record_type == Some(RecordType::Chargeback) {
                    -f.expected_minor
                } else {
                    f.expected_minor
                }
            })
            .sum();
        let sum: i64 = ls.iter().map(|li| line_minor[*li].0).sum();
        let fees: i64 = ls.iter().map(|li| line_minor[*li].1).sum();
        let o = |c| Outcome {
            status: ReconciledStatus::Disputed,
            mismatch: MismatchType::Chargeback,
            rule: MatchRule::ExactId,
            counterparts: c,
            discrepancy: Some(sum - expected),
            fee_variance: Some(fees - f.expected_fee_minor),
            confidence: 1000,
        };
        t_out[ti] = Some(o(ls.iter().map(|l| *l as u32).collect()));
        for li in ls {
            l_out[*li] = Some(o(Counterparts::One(ti as u32)));
        }
        return;
    }
    // The first line within tolerance is the match and the other lines its duplicates; with
    // none, all the lines together (one-to-many when several).
    let fit = ls
        .iter()
        .position(|li| (line_minor[*li].0 - f.expected_minor).abs() <= tol);
    let (matched, rule): (&[usize], MatchRule) = match fit {
        Some(p) => (std::slice::from_ref(&ls[p]), MatchRule::ExactId),
        None if ls.len() > 1 => (ls, MatchRule::OneToMany),
        None => (ls, MatchRule::ExactId),
    };
    let sum: i64 = matched.iter().map(|li| line_minor[*li].0).sum();
    let fees: i64 = matched.iter().map(|li| line_minor[*li].1).sum();
    let disc = sum - f.expected_minor;
    let fee_var = fees - f.expected_fee_minor;
    let (status, mismatch) = if disc.abs() > tol {
        let m = if f.cross_currency {
            MismatchType::Currency
        } else {
            MismatchType::Amount
        };
        (ReconciledStatus::PartialMatch, m)
    } else if fee_var.abs() > fee_tol {
        (ReconciledStatus::Matched, MismatchType::Fee)
    } else {
        (ReconciledStatus::Matched, MismatchType::None)
    };
    let o = |c| Outcome {
        status,
        mismatch,
        rule,
        counterparts: c,
        discrepancy: Some(disc),
        fee_variance: Some(fee_var),
        confidence: 1000,
    };
    t_out[ti] = Some(o(matched.iter().map(|l| *l as u32).collect()));
    for li in matched {
        l_out[*li] = Some(o(Counterparts::One(ti as u32)));
    }
    let extra = ls
        .iter()
        .enumerate()
        .filter(|(i, _)| fit.is_some_and(|p| p != *i));
    for (_, li) in extra {
        l_out[*li] = Some(Outcome {
            status: ReconciledStatus::Duplicate,
            mismatch: MismatchType::Duplicate,
            rule: MatchRule::ExactId,
            counterparts: Counterparts::One(ti as u32),
            discrepancy: None,
            fee_variance: None,
            confidence: 1000,
        });
    }
}
