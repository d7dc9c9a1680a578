//! Breaks worked by people (design.md §12), over the ports: a break's facts from the close's
//! `index/mismatches`, actions checked against its state and appended to the [`BreakLog`]
//! (again on the new state when someone else acted first), the list of a close's breaks with
//! their state, and the decisions file every close of a bank reads.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::partition::{OPEN_LINES, OPEN_TRANSACTIONS, read_open};
use crate::breaks::{
    Action, Amounts, BreakEvent, BreakFacts, BreakState, BrokenLink, Context, Decisions, OpenItem,
    Refusal, verify_after,
};
use crate::columnar::read_parquet;
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate};
use crate::keys::{self, decisions_key, mismatches_prefix, open_key};
use crate::ports::{Appended, BreakLog, ObjectStore, get_opt};
use crate::reconcile::frame::{LINE_COLUMNS, TXN_COLUMNS, line_refs, txn_refs};
use crate::reconcile::{IndexRow, expected_at_bank};
use crate::records::{BreakStatus, ResolveReason, StatementLine, Transaction, TxnStatus};
use crate::rules::Tolerances;

/// How often an action is decided again on a newer state before the caller is told to retry.
pub const MAX_ATTEMPTS: u32 = 64;

/// The break's facts from the row that owns it.
pub fn facts_of(row: &IndexRow) -> Option<BreakFacts> {
    let id = row.break_id.clone()?;
    let mut transaction_ids: Vec<String> = row
        .transaction_id
        .iter()
        .map(|t| t.to_string())
        .chain(row.transaction_ids.iter().cloned())
        .collect();
    transaction_ids.dedup();
    Some(BreakFacts {
        break_id: id,
        bank_id: row.bank_id.clone(),
        business_date: row.business_date,
        mismatch_type: row.mismatch_type,
        currency: row.currency,
        amounts: amounts_of(row),
        first_seen: row.first_seen,
        age_days: row.age_days,
        transaction_ids,
        statement_ids: row.statement_ids.clone(),
    })
}

/// A row's money as a resolution records it.
pub fn amounts_of(row: &IndexRow) -> Amounts {
    Amounts {
        expected_amount: row.expected_amount,
        amount_posted: row.amount_posted,
        discrepancy: row.discrepancy,
        fee_variance: row.fee_variance,
    }
}

/// The breaks of each `index/mismatches` object, decoded once and kept while the object's
/// bytes stay the same: a warm API process reads a close's objects on every action but
/// decodes them only when a close rewrote them.
#[derive(Debug, Default)]
pub struct FactsCache(Mutex<HashMap<String, Cached>>);

type Cached = (Bytes, Arc<Vec<BreakFacts>>);

impl FactsCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The breaks of each mismatch object of the close of `date` (of `bank`, or every bank).
    async fn objects<S: ObjectStore>(
        &self,
        store: &S,
        date: BusinessDate,
        bank: Option<&BankId>,
    ) -> Result<Vec<Arc<Vec<BreakFacts>>>> {
        let mut out = Vec::new();
        for o in store.list(&mismatches_prefix(date, bank)).await? {
            if !o.key.ends_with(".parquet") {
                continue;
            }
            let bytes = store.get(&o.key).await?;
            let hit = self
                .entries()
                .get(&o.key)
                .filter(|(b, _)| *b == bytes)
                .map(|(_, f)| f.clone());
            let facts = match hit {
                Some(f) => f,
                None => {
                    let rows: Vec<IndexRow> = read_parquet(bytes.clone())?;
                    let f = Arc::new(rows.iter().filter_map(facts_of).collect::<Vec<_>>());
                    self.entries().insert(o.key, (bytes, f.clone()));
                    f
                }
            };
            out.push(facts);
        }
        Ok(out)
    }

    /// The breaks the close of `date` holds open (of `bank`, or of every bank), by break id.
    pub async fn close_breaks<S: ObjectStore>(
        &self,
        store: &S,
        date: BusinessDate,
        bank: Option<&BankId>,
    ) -> Result<Vec<BreakFacts>> {
        let mut out: Vec<BreakFacts> = self
            .objects(store, date, bank)
            .await?
            .iter()
            .flat_map(|f| f.iter().cloned())
            .collect();
        out.sort_by(|a, b| a.break_id.cmp(&b.break_id));
        out.dedup_by(|a, b| a.break_id == b.break_id);
        Ok(out)
    }

    /// The break as the close of `date` shows it; `None` when that close does not hold it
    /// open.
    pub async fn facts<S: ObjectStore>(
        &self,
        store: &S,
        date: BusinessDate,
        break_id: &str,
    ) -> Result<Option<BreakFacts>> {
        Ok(self
            .objects(store, date, None)
            .await?
            .iter()
            .find_map(|f| f.iter().find(|b| b.break_id == break_id).cloned()))
    }
}

/// Whether the close of `date` ran (any bank).
pub async fn closed<S: ObjectStore>(store: &S, date: BusinessDate) -> Result<bool> {
    Ok(!store.list(&keys::batch_date_prefix(date)).await?.is_empty())
}

/// The items a manual match names, each with what the close of `facts` left open under its id.
async fn open_items<S: ObjectStore>(
    store: &S,
    facts: &BreakFacts,
    transaction_ids: &[String],
    statement_ids: &[String],
) -> Result<Vec<(String, Option<OpenItem>)>> {
    let (bank, date) = (&facts.bank_id, facts.business_date);
    let txn_bytes = get_opt(store, &open_key(bank, date, OPEN_TRANSACTIONS)).await?;
    let line_bytes = get_opt(store, &open_key(bank, date, OPEN_LINES)).await?;
    let txn_batches = match txn_bytes {
        Some(b) => read_open::<Transaction>(b, TXN_COLUMNS)?,
        None => Vec::new(),
    };
    let line_batches = match line_bytes {
        Some(b) => read_open::<StatementLine>(b, LINE_COLUMNS)?,
        None => Vec::new(),
    };
    let txns = txn_refs(&txn_batches, date.date())?;
    let lines = line_refs(&line_batches, date.date())?;
    let mut out = Vec::new();
    for id in transaction_ids {
        let item = txns
            .iter()
            .find(|t| t.transaction_id == id && expected_at_bank(t.status))
            .map(|t| OpenItem {
                id: id.clone(),
                line: false,
                // A refund is a negative line; another currency is compared by a person.
                amount: (t.currency == facts.currency).then(|| {
                    if t.status == TxnStatus::Refunded {
                        -t.amount
                    } else {
                        t.amount
                    }
                }),
                currency: facts.currency,
            });
        out.push((id.clone(), item));
    }
    for id in statement_ids {
        let item = lines
            .iter()
            .find(|l| l.statement_id == id)
            .map(|l| OpenItem {
                id: id.clone(),
                line: true,
                amount: Some(l.amount_posted),
                currency: l.currency,
            });
        out.push((id.clone(), item));
    }
    Ok(out)
}

/// The tolerances the close uses (`config/rules/tolerances.json`, defaults without it); a file
/// the close would refuse is refused here too.
async fn tolerances<S: ObjectStore>(store: &S) -> Result<Tolerances> {
    let bytes = get_opt(store, keys::TOLERANCES).await?;
    let mut problems = Vec::new();
    let t = super::inputs::tolerances(bytes.as_deref(), &mut problems);
    match crate::config_files::problems_error(&problems) {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

/// A break's history read and checked: its events and the state they give.
pub struct History {
    /// The events, by `seq`.
    pub events: Vec<BreakEvent>,
    /// Their state.
    pub state: BreakState,
}

impl History {
    /// Reads a break's history and checks its chain.
    pub async fn read<L: BreakLog>(log: &L, break_id: &str) -> Result<History> {
        let mut h = History {
            events: Vec::new(),
            state: BreakState::default(),
        };
        h.follow(log, break_id).await?;
        Ok(h)
    }

    /// Adds the events written since, checked against the last one known.
    async fn follow<L: BreakLog>(&mut self, log: &L, break_id: &str) -> Result<()> {
        let known = self.events.last().map_or(0, |e| e.seq);
        let new = log.history(break_id, known).await?;
        verify_after(self.events.last(), &new).map_err(broken)?;
        for e in &new {
            self.state.apply(e);
        }
        self.events.extend(new);
        Ok(())
    }
}

fn broken(b: BrokenLink) -> Error {
    Error::Invariant(format!(
        "the history of break {} is broken at event {}: {}; run `recon breaks verify` and restore the table from its point-in-time backup",
        b.break_id, b.seq, b.reason
    ))
}

/// Checks `action` on the break as the close of `date` shows it and appends it for `actor`;
/// when someone else appended first, decides again on the new state. Answers the event and
/// the break's state after it; `Ok(Err(_))` is a refusal for the caller (400, 404 or 409).
#[allow(clippy::too_many_arguments)]
pub async fn act<S: ObjectStore, L: BreakLog>(
    store: &S,
    log: &L,
    cache: &FactsCache,
    break_id: &str,
    date: BusinessDate,
    action: Action,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<(BreakEvent, BreakState), Refusal>> {
    if !crate::breaks::is_break_id(break_id) {
        return Ok(Err(Refusal::Invalid(
            "break_id must be brk_ and 20 lowercase hex digits".into(),
        )));
    }
    let Some(facts) = cache.facts(store, date, break_id).await? else {
        let why = if closed(store, date).await? {
            format!("the close of {date} holds no open break {break_id}")
        } else {
            format!("no close for {date}")
        };
        return Ok(Err(Refusal::NotFound(why)));
    };
    let items = match &action {
        Action::Resolve {
            reason: ResolveReason::ManualMatch,
            transaction_ids,
            statement_ids,
            ..
        } => open_items(store, &facts, transaction_ids, statement_ids).await?,
        _ => Vec::new(),
    };
    let tol = tolerances(store).await?;
    let ctx = Context {
        facts: &facts,
        items: &items,
        tolerance_minor: tol.amount_minor_units,
    };
    let mut history = History::read(log, break_id).await?;
    for _ in 0..MAX_ATTEMPTS {
        if let Err(r) = crate::breaks::check(&history.state, &action, &ctx) {
            return Ok(Err(r));
        }
        let event = BreakEvent::next(
            history.events.last(),
            break_id,
            facts.bank_id.clone(),
            action.clone(),
            actor,
            now,
            (date, facts.amounts),
        )?;
        match log.append(&event).await? {
            Appended::Written => {
                history.state.apply(&event);
                return Ok(Ok((event, history.state)));
            }
            Appended::Conflict => history.follow(log, break_id).await?,
        }
    }
    Ok(Err(Refusal::Conflict(format!(
        "break {break_id} changed {MAX_ATTEMPTS} times while this action was decided: send it again"
    ))))
}

/// `open` (no person's resolution holds) or `resolved` (one does): the status filter of the
/// break list, as the API and the command line take it.
pub fn status_filter(s: &str) -> Option<BreakStatus> {
    match s {
        "open" => Some(BreakStatus::Open),
        "resolved" => Some(BreakStatus::ResolvedByPerson),
        _ => None,
    }
}

/// A break's whole record: its state and checked history, and with a date the break as that
/// close shows it (`GET /breaks/{id}`, `recon breaks show`).
#[derive(Debug, Clone, Serialize)]
pub struct BreakRecord {
    /// The break.
    pub break_id: String,
    /// Its state from the history.
    pub state: BreakState,
    /// The break as the close of the date asked for shows it, when it holds it open.
    pub close: Option<BreakView>,
    /// Every event, by `seq`.
    pub history: Vec<BreakEvent>,
    /// Always `verified`: a broken chain is an error, not a record.
    pub chain: &'static str,
}

impl BreakRecord {
    /// Reads the record of `break_id` (`date`: the close to show it in).
    pub async fn read<S: ObjectStore, L: BreakLog>(
        store: &S,
        log: &L,
        cache: &FactsCache,
        break_id: &str,
        date: Option<BusinessDate>,
    ) -> Result<BreakRecord> {
        let history = History::read(log, break_id).await?;
        let close = match date {
            Some(d) => cache
                .facts(store, d, break_id)
                .await?
                .map(|f| BreakView::new(f, history.state.clone())),
            None => None,
        };
        Ok(BreakRecord {
            break_id: break_id.to_string(),
            state: history.state,
            close,
            history: history.events,
            chain: "verified",
        })
    }

    /// Whether nobody acted on the break and the close asked for does not hold it.
    pub fn is_empty(&self) -> bool {
        self.history.is_empty() && self.close.is_none()
    }
}

/// A break of a close with what people did about it.
#[derive(Debug, Clone, Serialize)]
pub struct BreakView {
    /// The break as the close shows it.
    #[serde(flatten)]
    pub facts: BreakFacts,
    /// `OPEN`, or `RESOLVED_BY_PERSON` while a person's resolution holds (a resolution holds
    /// while the amounts are those the person saw; a manual match always).
    pub status: BreakStatus,
    /// Who works it.
    pub owner: Option<String>,
    /// The person's resolution in force, if any.
    pub resolution: Option<crate::breaks::Resolution>,
    /// Comments made.
    pub comments: u64,
    /// Events in its history.
    pub events: u64,
}

impl BreakView {
    /// The view of `facts` given its state.
    pub fn new(facts: BreakFacts, state: BreakState) -> BreakView {
        let holds = state
            .resolution
            .as_ref()
            .is_some_and(|r| r.reason == ResolveReason::ManualMatch || r.amounts == facts.amounts);
        BreakView {
            status: if holds {
                BreakStatus::ResolvedByPerson
            } else {
                BreakStatus::Open
            },
            owner: state.owner,
            resolution: state.resolution,
            comments: state.comments,
            events: state.events,
            facts,
        }
    }
}

/// The breaks of the close of `date` (of `bank`, or every bank) with their state, by id.
pub async fn list<S: ObjectStore, L: BreakLog>(
    store: &S,
    log: &L,
    cache: &FactsCache,
    date: BusinessDate,
    bank: Option<&BankId>,
) -> Result<Vec<BreakView>> {
    let facts = cache.close_breaks(store, date, bank).await?;
    let mut banks: Vec<&BankId> = facts.iter().map(|f| &f.bank_id).collect();
    banks.sort();
    banks.dedup();
    let mut events = Vec::new();
    for b in banks {
        events.extend(log.events(Some(b)).await?);
    }
    events.sort_by(|a, b| (&a.break_id, a.seq).cmp(&(&b.break_id, b.seq)));
    let mut states = std::collections::HashMap::new();
    for chain in events.chunk_by(|a, b| a.break_id == b.break_id) {
        states.insert(chain[0].break_id.clone(), BreakState::of(chain));
    }
    Ok(facts
        .into_iter()
        .map(|f| {
            let s = states.remove(&f.break_id).unwrap_or_default();
            BreakView::new(f, s)
        })
        .collect())
}

/// Writes each bank's decisions file from the BreakActions events (the plan does, before it
/// fingerprints the partitions: a decision changes the fingerprint of the bank's next close).
/// The same events give the same bytes. Returns the banks written.
pub async fn publish_decisions<S: ObjectStore, L: BreakLog>(
    store: &S,
    log: &L,
) -> Result<Vec<BankId>> {
    let mut events = log.events(None).await?;
    events.sort_by(|a, b| (&a.bank_id, &a.break_id, a.seq).cmp(&(&b.bank_id, &b.break_id, b.seq)));
    let mut banks = Vec::new();
    for bank_events in events.chunk_by(|a, b| a.bank_id == b.bank_id) {
        let bank = bank_events[0].bank_id.clone();
        let decisions = Decisions::of(bank_events.to_vec());
        let mut bytes = serde_json::to_vec_pretty(&decisions)?;
        bytes.push(b'\n');
        let key = decisions_key(&bank);
        if get_opt(store, &key).await?.as_deref() != Some(bytes.as_slice()) {
            store.put(&key, Bytes::from(bytes)).await?;
        }
        banks.push(bank);
    }
    Ok(banks)
}

/// Appends the events that reopen resolutions a close found no longer holding (the amounts
/// changed). A resolution already reopened, or resolved again since, is left alone, so a
/// retried close appends nothing twice. Returns the events written.
pub async fn record_reopened<L: BreakLog>(
    log: &L,
    bank: &BankId,
    date: BusinessDate,
    reopened: &[crate::breaks::Reopened],
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut written = 0;
    for r in reopened {
        let mut history = History::read(log, &r.break_id).await?;
        for _ in 0..MAX_ATTEMPTS {
            let still = history
                .state
                .resolution
                .as_ref()
                .is_some_and(|res| res.seq == r.resolved_seq);
            if !still {
                break;
            }
            let event = BreakEvent::next(
                history.events.last(),
                &r.break_id,
                bank.clone(),
                Action::Reopen {
                    note: r.why.clone(),
                },
                crate::breaks::CLOSE_ACTOR,
                now,
                (date, r.amounts),
            )?;
            match log.append(&event).await? {
                Appended::Written => {
                    written += 1;
                    break;
                }
                Appended::Conflict => history.follow(log, &r.break_id).await?,
            }
        }
    }
    Ok(written)
}

/// [`record_reopened`] of every partition of a close (its summaries, Lambda and Spark).
pub async fn record_close_reopens<'a, L: BreakLog>(
    log: &L,
    outcomes: impl Iterator<Item = &'a super::PartitionOutcome>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut written = 0;
    for s in outcomes.filter_map(|o| o.summary()) {
        written += record_reopened(log, &s.bank_id, s.business_date, &s.reopened, now).await?;
    }
    Ok(written)
}

/// Every break's chain checked: the number of breaks and events, and each broken link.
pub async fn verify_all<L: BreakLog>(log: &L) -> Result<(u64, u64, Vec<BrokenLink>)> {
    let mut events = log.events(None).await?;
    events.sort_by(|a, b| (&a.break_id, a.seq).cmp(&(&b.break_id, b.seq)));
    let (mut breaks, mut broken) = (0, Vec::new());
    for chain in events.chunk_by(|a, b| a.break_id == b.break_id) {
        breaks += 1;
        if let Err(b) = crate::breaks::verify(chain) {
            broken.push(b);
        }
    }
    Ok((breaks, events.len() as u64, broken))
}
