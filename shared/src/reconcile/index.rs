//! Batch index rows (design.md §6) and the break registry that keeps a mismatch's identity and
//! age from one run to the next.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::types::{Decimal128Type, Int32Type};
use arrow_array::{Array, ArrayRef, Decimal128Array, Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::engine::{Outcome, PartitionResult};
use super::frame::Prior;
use crate::breaks::{Amounts, Decisions, Reopened};
use crate::calendar::Calendar;
use crate::columnar::{
    Columnar, Columns, MONEY_PRECISION, MONEY_SCALE, ParquetWriter, RATIO_PRECISION, RATIO_SCALE,
    WRITE_BATCH_ROWS, date_array, decimal_array, money_type, opt_string_array, ratio_type,
    string_array, try_primitive_array,
};
use crate::error::Result;
use crate::ids::{BankId, BusinessDate, MerchantId, TransactionId};
use crate::manifest::sha256_hex;
use crate::money::Currency;
use crate::records::{BreakStatus, MatchRule, MismatchType, ReconciledStatus, ResolveReason};

mod columns;

/// Whether a row is about an internal transaction or a statement line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RowKind {
    /// A ledger transaction, with the lines it matched.
    Transaction,
    /// A bank statement line, with the transactions it pays.
    StatementLine,
}

impl RowKind {
    /// The code as written in the index (`TRANSACTION`, `STATEMENT_LINE`).
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Transaction => "TRANSACTION",
            RowKind::StatementLine => "STATEMENT_LINE",
        }
    }
}

/// One row of `index/batch` (and, where it carries a break, of `index/mismatches`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRow {
    /// Transaction row or statement line row.
    pub row_kind: RowKind,
    /// The transaction, on transaction rows.
    pub transaction_id: Option<TransactionId>,
    /// The statement line itself (line rows) or the matched lines (transaction rows).
    pub statement_ids: Vec<String>,
    /// For line rows: the transactions the line pays.
    pub transaction_ids: Vec<String>,
    /// The bank of the partition.
    pub bank_id: BankId,
    /// The merchant, when the transaction or the line names one.
    pub merchant_id: Option<MerchantId>,
    /// The transaction's amount and currency as booked internally.
    pub amount: Option<Decimal>,
    /// The currency of `amount`; differs from `currency` for a cross-currency settlement.
    pub txn_currency: Option<Currency>,
    /// The amount expected on the statement, in the statement currency (refunds negative).
    pub expected_amount: Option<Decimal>,
    /// The amount the bank posted on the statement line(s).
    pub amount_posted: Option<Decimal>,
    /// Statement (settlement) currency of the money columns below `amount`.
    pub currency: Currency,
    /// The fee the bank charged on the line(s).
    pub fee_charged: Option<Decimal>,
    /// The fee the applicable fee rule expects.
    pub expected_fee: Option<Decimal>,
    /// `amount_posted − expected_amount`.
    pub discrepancy: Option<Decimal>,
    /// `fee_charged − expected_fee`.
    pub fee_variance: Option<Decimal>,
    /// The reconciliation outcome.
    pub reconciled_status: ReconciledStatus,
    /// The kind of break, NONE when there is none.
    pub mismatch_type: MismatchType,
    /// How the match was found (UNMATCHED rows have none).
    pub match_rule: MatchRule,
    /// 1 for exact-id matches, lower for composite and group matches, 0 when unmatched.
    pub confidence: Decimal,
    /// The break the row carries (see [`break_id`]); `None` without a mismatch.
    pub break_id: Option<String>,
    /// The close that first saw the break.
    pub first_seen: Option<NaiveDate>,
    /// Business days of the bank from `first_seen` to this close.
    pub age_days: Option<i32>,
    /// The close that resolved the row's break (an open item matched at last), if it did.
    pub resolved_on: Option<NaiveDate>,
    /// Where the row's break stands: open, resolved by the engine, or resolved by a person
    /// whose decision holds (design.md §12); `None` without a break.
    pub break_status: Option<BreakStatus>,
    /// The person's reason, when a person resolved the break.
    pub resolution: Option<ResolveReason>,
    /// Who resolved it, when a person did.
    pub resolved_by: Option<String>,
    /// The item's own business date: the ledger date of a transaction, the delivery of a
    /// line (earlier than `business_date` for an item carried forward).
    pub item_date: NaiveDate,
    /// The business date of the close (the partition).
    pub business_date: BusinessDate,
    /// The run that wrote the row.
    pub run_id: String,
}

/// A break's identity: derived from its facts (bank, type, the id it is about), so the same
/// break keeps its id across runs whatever its amounts do.
pub fn break_id(bank: &BankId, mismatch: MismatchType, subject: &str) -> String {
    format!(
        "brk_{}",
        &sha256_hex(format!("{bank}|{mismatch}|{subject}").as_bytes())[..20]
    )
}

/// The open breaks of a bank after a close: break id -> the close that first saw it, and
/// the breaks that close resolved -> its date.
///
/// Each close starts from the registry the bank's previous close left (the chain of §11), so
/// its counts are a function of that registry and its inputs only: a close repeated after a
/// crash that had already written its registry counts the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakRegistry {
    /// Open breaks: break id -> date of the close that first saw it. Breaks whose items
    /// have left the open items (past their window and grace) stay here until resolved.
    pub open: BTreeMap<String, NaiveDate>,
    /// Breaks this close resolved: break id -> its date.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolved: BTreeMap<String, NaiveDate>,
}

impl BreakRegistry {
    /// Resolves, as of this close, the breaks of transactions handed over to the bank that
    /// settled them (§11): they are that bank's to decide from now on.
    pub fn hand_over(
        &mut self,
        stats: &mut BreakStats,
        transactions: &[&str],
        bank: &BankId,
        date: BusinessDate,
    ) {
        for t in transactions {
            for m in MismatchType::ALL {
                let id = break_id(bank, *m, t);
                if self.open.remove(&id).is_some() {
                    self.resolved.insert(id, date.date());
                    stats.resolved += 1;
                }
            }
        }
    }

    /// What this registry adds to `previous`: the breaks it opened that `previous` did not
    /// have, and those it resolved. A close run in independent groups (the Spark job) gives one
    /// delta per group; [`Self::apply`] of every delta to `previous` is the whole close's.
    pub fn delta(&self, previous: &BreakRegistry) -> BreakRegistry {
        BreakRegistry {
            open: self
                .open
                .iter()
                .filter(|(k, _)| !previous.open.contains_key(*k))
                .map(|(k, d)| (k.clone(), *d))
                .collect(),
            resolved: self.resolved.clone(),
        }
    }

    /// `self` (the previous close's registry) after the groups' `deltas`: a break resolved in
    /// one group leaves the open breaks, those opened are added. A break is about one item,
    /// and an item is in one group, so the deltas never disagree.
    pub fn apply(mut self, deltas: impl IntoIterator<Item = BreakRegistry>) -> BreakRegistry {
        let mut resolved = BTreeMap::new();
        let mut opened = BTreeMap::new();
        for d in deltas {
            resolved.extend(d.resolved);
            opened.extend(d.open);
        }
        self.open.retain(|k, _| !resolved.contains_key(k));
        self.open.extend(opened);
        BreakRegistry {
            open: self.open,
            resolved,
        }
    }
}

/// New, persisting and resolved breaks of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakStats {
    /// Breaks first seen by this close.
    pub new: u64,
    /// Breaks still open from an earlier close.
    pub persisting: u64,
    /// Breaks an earlier close opened that this close resolved.
    pub resolved: u64,
    /// Breaks of this close that people resolved: a resolution that holds, or a manual match
    /// this close applied (design.md §12). Counted within the above.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resolved_by_people: u64,
    /// People's resolutions this close found no longer holding (the amounts changed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reopened: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BreakStats {
    /// The sum of two runs' (or groups') stats.
    pub fn add(&mut self, o: &BreakStats) {
        self.new += o.new;
        self.persisting += o.persisting;
        self.resolved += o.resolved;
        self.resolved_by_people += o.resolved_by_people;
        self.reopened += o.reopened;
    }
}

/// A row of the index: a transaction or a statement line of the engine's result, by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// The transaction at this position of the sorted inputs.
    Txn(u32),
    /// The statement line at this position of the sorted inputs.
    Line(u32),
}

/// A break a row carries: its id; when the row opened it (or resolved it), since when it
/// is open and its age in business days.
#[derive(Debug, Clone)]
struct Carried {
    id: String,
    opened: Option<(NaiveDate, i32)>,
    resolved: bool,
    /// Where the break stands, and the person's reason and name when a person resolved it.
    status: BreakStatus,
    person: Option<(ResolveReason, String)>,
}

impl Carried {
    fn new(id: String, opened: Option<(NaiveDate, i32)>, resolved: bool) -> Self {
        Carried {
            id,
            opened,
            resolved,
            status: if resolved {
                BreakStatus::ResolvedByEngine
            } else {
                BreakStatus::Open
            },
            person: None,
        }
    }
}

/// The batch index of a reconciled partition, built column by column straight from the
/// engine's result (no row structs), with the break registry after this run.
pub struct PartitionIndex<'r, 'a> {
    result: &'r PartitionResult<'a>,
    bank: &'r BankId,
    date: BusinessDate,
    run_id: &'r str,
    txn_breaks: Vec<Option<u32>>,
    line_breaks: Vec<Option<u32>>,
    breaks: Vec<Carried>,
    /// The break registry after this run, to be written for the next.
    pub registry: BreakRegistry,
    /// New, persisting and resolved breaks of this run.
    pub stats: BreakStats,
}

impl<'r, 'a> PartitionIndex<'r, 'a> {
    /// Gives every mismatch its break: ids from the facts, first-seen dates from `previous`
    /// (the registry the bank's previous close left), ages in business days of `calendar`
    /// to `date`; a carried item matched now resolves the break it had.
    pub fn new(
        result: &'r PartitionResult<'a>,
        bank: &'r BankId,
        date: BusinessDate,
        calendar: &Calendar,
        run_id: &'r str,
        previous: &BreakRegistry,
    ) -> Self {
        let today = date.date();
        let mut breaks = Vec::new();
        let mut opened = Vec::new();
        let mut resolved_now: Vec<(String, NaiveDate)> = Vec::new();
        let mut stats = BreakStats::default();
        let age = |first: NaiveDate| calendar.business_days_between(first, today) as i32;
        let mut open = |subject: &str, mismatch: MismatchType| -> Carried {
            let id = break_id(bank, mismatch, subject);
            let first = previous.open.get(&id).copied().unwrap_or(today);
            if first < today {
                stats.persisting += 1;
            } else {
                stats.new += 1;
            }
            opened.push((id.clone(), first));
            Carried::new(id, Some((first, age(first))), false)
        };
        // The break a carried item had, when this close ends it (matched, or another kind).
        let mut resolves = |subject: &str, prior: Option<Prior>, now: MismatchType| {
            let prior = prior.filter(|p| p.mismatch != MismatchType::None && p.mismatch != now)?;
            let id = break_id(bank, prior.mismatch, subject);
            let first = previous.open.get(&id).copied().unwrap_or(today);
            resolved_now.push((id.clone(), first));
            Some(Carried::new(id, Some((first, age(first))), true))
        };
        let mut push = |b: Carried| {
            breaks.push(b);
            Some(breaks.len() as u32 - 1)
        };
        let txn_breaks: Vec<Option<u32>> = result
            .transactions
            .iter()
            .zip(&result.txn_outcomes)
            .map(|(t, o)| {
                let ended = resolves(t.transaction_id, t.prior, o.mismatch);
                if o.mismatch != MismatchType::None {
                    push(open(t.transaction_id, o.mismatch))
                } else {
                    ended.and_then(&mut push)
                }
            })
            .collect();
        let mut line_breaks = Vec::with_capacity(result.lines.len());
        for (l, o) in result.lines.iter().zip(&result.line_outcomes) {
            // Line-level breaks: lines nobody booked, and duplicates. Others belong to their
            // transaction's break.
            let own = matches!(
                o.mismatch,
                MismatchType::MissingInternal | MismatchType::Duplicate
            );
            let ended = resolves(l.statement_id, l.prior, o.mismatch);
            line_breaks.push(if own {
                push(open(l.statement_id, o.mismatch))
            } else if let Some(ended) = ended {
                push(ended)
            } else if o.mismatch != MismatchType::None {
                o.counterparts.first().and_then(|t| {
                    let subject = result.transactions[*t as usize].transaction_id;
                    push(Carried::new(
                        break_id(bank, o.mismatch, subject),
                        None,
                        false,
                    ))
                })
            } else {
                None
            });
        }
        let resolved: BTreeMap<String, NaiveDate> =
            resolved_now.into_iter().map(|(k, _)| (k, today)).collect();
        stats.resolved = resolved.len() as u64;
        // Built at once from the list (a map insert per break costs more); breaks of items
        // no longer carried stay open.
        let mut open: BTreeMap<String, NaiveDate> = opened.into_iter().collect();
        for (k, d) in &previous.open {
            if !resolved.contains_key(k) {
                open.entry(k.clone()).or_insert(*d);
            }
        }
        let registry = BreakRegistry { open, resolved };
        PartitionIndex {
            result,
            bank,
            date,
            run_id,
            txn_breaks,
            line_breaks,
            breaks,
            registry,
            stats,
        }
    }

    /// Honours what people decided (design.md §12): a break a manual match resolved, and an
    /// open break whose person's resolution holds (its amounts are those the person saw), are
    /// `RESOLVED_BY_PERSON`; a resolution whose amounts changed no longer holds, and is
    /// returned to be reopened with an event that says why. Rows that only point to a break
    /// (a line of a transaction's break) show the state of the break they point to.
    pub fn honour(&mut self, decisions: &Decisions) -> Vec<Reopened> {
        let mut manual_by_item: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for m in &decisions.manual {
            for id in m.transaction_ids.iter().chain(&m.statement_ids) {
                manual_by_item.insert(id.as_str(), (m.break_id.as_str(), m.actor.as_str()));
            }
        }
        let mut reopened = Vec::new();
        let mut owners: BTreeMap<String, (BreakStatus, Option<(ResolveReason, String)>)> =
            BTreeMap::new();
        let rows: Vec<Row> = self.all_rows().collect();
        for row in rows.iter().copied() {
            let manual = (self.outcome(row).rule == MatchRule::Manual)
                .then(|| manual_by_item.get(self.item_id(row)).copied())
                .flatten();
            let bi = match (self.break_index(row), manual) {
                (Some(bi), _) => bi,
                // An item matched by hand on its own date had no break in this close: it
                // shows the break the person resolved.
                (None, Some((id, _))) => {
                    self.breaks.push(Carried::new(id.to_string(), None, true));
                    let bi = self.breaks.len() as u32 - 1;
                    match row {
                        Row::Txn(i) => self.txn_breaks[i as usize] = Some(bi),
                        Row::Line(i) => self.line_breaks[i as usize] = Some(bi),
                    }
                    bi
                }
                (None, None) => continue,
            };
            let b = &self.breaks[bi as usize];
            let (status, person) = if let (true, Some((_, actor))) = (b.resolved, manual) {
                (
                    BreakStatus::ResolvedByPerson,
                    Some((ResolveReason::ManualMatch, actor.to_string())),
                )
            } else if b.resolved {
                (BreakStatus::ResolvedByEngine, None)
            } else if b.opened.is_some() {
                match decisions.resolved.get(&b.id) {
                    Some(held) => {
                        let now = self.amounts(row);
                        if now == held.amounts {
                            (
                                BreakStatus::ResolvedByPerson,
                                Some((held.reason, held.actor.clone())),
                            )
                        } else {
                            reopened.push(Reopened {
                                break_id: b.id.clone(),
                                resolved_seq: held.seq,
                                amounts: now,
                                why: now.changes_from(&held.amounts),
                            });
                            (BreakStatus::Open, None)
                        }
                    }
                    None => (BreakStatus::Open, None),
                }
            } else {
                continue;
            };
            owners.insert(b.id.clone(), (status, person.clone()));
            let b = &mut self.breaks[bi as usize];
            b.status = status;
            b.person = person;
        }
        for b in &mut self.breaks {
            if b.opened.is_none()
                && !b.resolved
                && let Some((status, person)) = owners.get(&b.id)
            {
                b.status = *status;
                b.person = person.clone();
            }
        }
        self.stats.resolved_by_people = owners
            .values()
            .filter(|(s, _)| *s == BreakStatus::ResolvedByPerson)
            .count() as u64;
        self.stats.reopened = reopened.len() as u64;
        reopened.sort_by(|a, b| a.break_id.cmp(&b.break_id));
        reopened.dedup_by(|a, b| a.break_id == b.break_id);
        reopened
    }

    fn break_index(&self, row: Row) -> Option<u32> {
        match row {
            Row::Txn(i) => self.txn_breaks[i as usize],
            Row::Line(i) => self.line_breaks[i as usize],
        }
    }

    fn item_id(&self, row: Row) -> &str {
        match row {
            Row::Txn(i) => self.result.transactions[i as usize].transaction_id,
            Row::Line(i) => self.result.lines[i as usize].statement_id,
        }
    }

    /// A row's money as its columns show it (what a person's resolution is compared with).
    fn amounts(&self, row: Row) -> Amounts {
        let cur = self.result.currency;
        let m = |v: Option<i64>| v.map(|v| cur.from_minor(v));
        let o = self.outcome(row);
        Amounts {
            expected_amount: m(match row {
                Row::Txn(i) => Some(self.result.facts[i as usize].expected_minor),
                Row::Line(_) => None,
            }),
            amount_posted: m(self.posted(row).map(|p| p.0)),
            discrepancy: m(o.discrepancy),
            fee_variance: m(o.fee_variance),
        }
    }

    /// Every row of the engine's result: the transactions, then the lines, each in id order.
    fn all_rows(&self) -> impl Iterator<Item = Row> + '_ {
        let t = (0..self.result.transactions.len() as u32).map(Row::Txn);
        t.chain((0..self.result.lines.len() as u32).map(Row::Line))
    }

    /// The rows of the batch index: the close's own items, and the carried items whose
    /// outcome it changed (matched, or no longer pending); transactions, then lines.
    pub fn rows(&self) -> Vec<Row> {
        self.all_rows().filter(|r| self.decided(*r)).collect()
    }

    /// Whether this close decides `row`: an item of its own date, or a carried one whose
    /// outcome changed.
    fn decided(&self, row: Row) -> bool {
        let o = self.outcome(row);
        match self.prior(row) {
            None => true,
            Some(p) => p.status != o.status || p.mismatch != o.mismatch,
        }
    }

    fn prior(&self, row: Row) -> Option<Prior> {
        match row {
            Row::Txn(i) => self.result.transactions[i as usize].prior,
            Row::Line(i) => self.result.lines[i as usize].prior,
        }
    }

    fn item_date(&self, row: Row) -> NaiveDate {
        match row {
            Row::Txn(i) => self.result.transactions[i as usize].item_date,
            Row::Line(i) => self.result.lines[i as usize].item_date,
        }
    }

    /// The rows with a break open as of this close, carried ones included (the
    /// `index/mismatches` table).
    pub fn mismatch_rows(&self) -> Vec<Row> {
        self.all_rows()
            .filter(|r| {
                self.carried(*r)
                    .is_some_and(|b| b.opened.is_some() && !b.resolved)
            })
            .collect()
    }

    fn carried(&self, row: Row) -> Option<&Carried> {
        self.break_index(row).map(|b| &self.breaks[b as usize])
    }

    fn outcome(&self, row: Row) -> &Outcome {
        match row {
            Row::Txn(i) => &self.result.txn_outcomes[i as usize],
            Row::Line(i) => &self.result.line_outcomes[i as usize],
        }
    }

    /// `(amount_posted, fee_charged)` of a row in minor units.
    fn posted(&self, row: Row) -> Option<(i64, i64)> {
        let r = self.result;
        match row {
            Row::Line(i) => Some(r.line_minor[i as usize]),
            Row::Txn(i) => {
                let o = &r.txn_outcomes[i as usize];
                let first = *o.counterparts.first()?;
                if o.rule == MatchRule::ManyToOne {
                    // The line pays several transactions: its share is not separable; show
                    // the line.
                    return Some(r.line_minor[first as usize]);
                }
                Some(o.counterparts.iter().fold((0, 0), |(a, f), l| {
                    let (la, lf) = r.line_minor[*l as usize];
                    (a + la, f + lf)
                }))
            }
        }
    }

    /// Transactions by status and by match rule, and breaks opened or carried by mismatch type.
    pub fn counts(&self) -> [BTreeMap<String, u64>; 3] {
        let (mut by_status, mut by_rule, mut by_mismatch) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for o in &self.result.txn_outcomes {
            *by_status.entry(o.status.to_string()).or_insert(0) += 1;
            *by_rule.entry(o.rule.to_string()).or_insert(0) += 1;
        }
        for r in self.mismatch_rows() {
            *by_mismatch
                .entry(self.outcome(r).mismatch.to_string())
                .or_insert(0) += 1;
        }
        [by_status, by_rule, by_mismatch]
    }

    /// `rows` as Parquet with the [`IndexRow`] schema, one row group per
    /// [`ROW_GROUP_SIZE`](crate::columnar::ROW_GROUP_SIZE) rows, built
    /// [`WRITE_BATCH_ROWS`] rows at a time.
    pub fn parquet(&self, rows: &[Row]) -> Result<Vec<u8>> {
        let mut w = ParquetWriter::new::<IndexRow>()?;
        for chunk in rows.chunks(WRITE_BATCH_ROWS) {
            w.write(&self.batch(chunk)?)?;
        }
        if rows.is_empty() {
            w.write(&self.batch(rows)?)?;
        }
        w.finish()
    }

    /// One record batch of `rows`, the same as [`IndexRow::to_batch`] of the same rows.
    pub fn batch(&self, rows: &[Row]) -> Result<RecordBatch> {
        let r = self.result;
        let cur = r.currency;
        let txn = |row: &Row| match row {
            Row::Txn(i) => Some((r.transactions[*i as usize], &r.facts[*i as usize])),
            Row::Line(_) => None,
        };
        let out = |row: &Row| self.outcome(*row);
        let minor = |f: &dyn Fn(&Row) -> Option<i64>| minor_array(rows.iter().map(f), cur);
        let line_id = |l: &u32| r.lines[*l as usize].statement_id;
        let txn_id = |t: &u32| r.transactions[*t as usize].transaction_id;
        let brk = |row: &Row| self.carried(*row);
        Ok(RecordBatch::try_new(
            IndexRow::schema(),
            vec![
                string_array(rows.iter().map(|row| match row {
                    Row::Txn(_) => RowKind::Transaction.as_str(),
                    Row::Line(_) => RowKind::StatementLine.as_str(),
                })),
                opt_string_array(rows.iter().map(|row| match row {
                    Row::Txn(i) => Some(r.transactions[*i as usize].transaction_id),
                    Row::Line(i) => r.lines[*i as usize].transaction_id,
                })),
                joined_array(rows, |row, ids| match row {
                    Row::Txn(_) => ids.extend(out(row).counterparts.iter().map(line_id)),
                    Row::Line(i) => ids.push(r.lines[*i as usize].statement_id),
                }),
                joined_array(rows, |row, ids| {
                    if let Row::Line(_) = row {
                        ids.extend(out(row).counterparts.iter().map(txn_id));
                    }
                }),
                string_array(rows.iter().map(|_| self.bank.as_str())),
                opt_string_array(rows.iter().map(|row| match row {
                    Row::Txn(i) => Some(r.transactions[*i as usize].merchant_id),
                    Row::Line(i) => r.lines[*i as usize].merchant_id,
                })),
                decimal_array(
                    rows.iter().map(|row| txn(row).map(|(t, _)| t.amount)),
                    MONEY_PRECISION,
                    MONEY_SCALE,
                )?,
                opt_string_array(
                    rows.iter()
                        .map(|row| txn(row).map(|(t, _)| t.currency.code())),
                ),
                minor(&|row| txn(row).map(|(_, f)| f.expected_minor))?,
                minor(&|row| self.posted(*row).map(|p| p.0))?,
                string_array(rows.iter().map(|_| cur.code())),
                minor(&|row| self.posted(*row).map(|p| p.1))?,
                minor(&|row| txn(row).map(|(_, f)| f.expected_fee_minor))?,
                minor(&|row| out(row).discrepancy)?,
                minor(&|row| out(row).fee_variance)?,
                string_array(rows.iter().map(|row| out(row).status.as_str())),
                string_array(rows.iter().map(|row| out(row).mismatch.as_str())),
                string_array(rows.iter().map(|row| out(row).rule.as_str())),
                Arc::new(
                    try_primitive_array::<Decimal128Type>(
                        rows.iter()
                            .map(|row| Ok(Some(i128::from(out(row).confidence) * 1000))),
                    )?
                    .with_precision_and_scale(RATIO_PRECISION, RATIO_SCALE)?,
                ),
                opt_string_array(rows.iter().map(|row| brk(row).map(|b| b.id.as_str()))),
                date_array(
                    rows.iter()
                        .map(|row| brk(row).and_then(|b| b.opened).map(|o| o.0)),
                ),
                Arc::new(try_primitive_array::<Int32Type>(
                    rows.iter()
                        .map(|row| Ok(brk(row).and_then(|b| b.opened).map(|o| o.1))),
                )?),
                date_array(
                    rows.iter()
                        .map(|row| brk(row).filter(|b| b.resolved).map(|_| self.date.date())),
                ),
                opt_string_array(rows.iter().map(|row| brk(row).map(|b| b.status.as_str()))),
                opt_string_array(rows.iter().map(|row| {
                    brk(row)
                        .and_then(|b| b.person.as_ref())
                        .map(|p| p.0.as_str())
                })),
                opt_string_array(rows.iter().map(|row| {
                    brk(row)
                        .and_then(|b| b.person.as_ref())
                        .map(|p| p.1.as_str())
                })),
                date_array(rows.iter().map(|row| Some(self.item_date(*row)))),
                date_array(rows.iter().map(|_| Some(self.date.date()))),
                string_array(rows.iter().map(|_| self.run_id)),
            ],
        )?)
    }
}

/// Money in minor units of `cur` as a `Decimal128(18, 4)` column.
fn minor_array(
    values: impl ExactSizeIterator<Item = Option<i64>>,
    cur: Currency,
) -> Result<ArrayRef> {
    let exp = cur.exponent();
    let scale = u32::try_from(MONEY_SCALE).unwrap_or(0);
    let factor = 10i128.pow(scale.saturating_sub(exp));
    let limit = 10i128.pow(u32::from(MONEY_PRECISION));
    let v: Decimal128Array = try_primitive_array(values.map(|m| {
        m.map(|m| {
            let v = i128::from(m) * factor;
            if exp > scale || v.abs() >= limit {
                Err(crate::Error::InvalidAmount {
                    value: cur.from_minor(m).to_string(),
                    reason: "does not fit the money column".into(),
                })
            } else {
                Ok(v)
            }
        })
        .transpose()
    }))?;
    Ok(Arc::new(
        v.with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)?,
    ))
}

/// Id lists joined with `|`, one per row; an empty list is null.
fn joined_array<'s>(rows: &[Row], ids_of: impl Fn(&Row, &mut Vec<&'s str>)) -> ArrayRef {
    let mut ids = Vec::new();
    let bytes: usize = rows
        .iter()
        .map(|row| {
            ids.clear();
            ids_of(row, &mut ids);
            ids.iter().map(|s| s.len() + 1).sum::<usize>()
        })
        .sum();
    let mut b = StringBuilder::with_capacity(rows.len(), bytes);
    let mut buf = String::new();
    for row in rows {
        ids.clear();
        ids_of(row, &mut ids);
        match ids.as_slice() {
            [] => b.append_null(),
            [one] => b.append_value(one),
            many => {
                buf.clear();
                for (i, s) in many.iter().enumerate() {
                    if i > 0 {
                        buf.push('|');
                    }
                    buf.push_str(s);
                }
                b.append_value(&buf);
            }
        }
    }
    Arc::new(b.finish())
}

impl IndexRow {
    /// Rows that open or carry their own break (the `index/mismatches` table).
    pub fn owns_break(&self) -> bool {
        self.first_seen.is_some() && self.resolved_on.is_none()
    }
}

fn join(v: &[String]) -> Option<String> {
    (!v.is_empty()).then(|| v.join("|"))
}

fn split(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split('|').map(str::to_string).collect())
        .unwrap_or_default()
}
