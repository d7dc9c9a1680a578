//! Breaks worked by people (design.md §12): the actions, the hash chain of a break's events,
//! the state folded from its history, the rules an action must pass, and the decisions a
//! close honours. Pure functions over values; storing and reading events is a port's job.
//!
//! A break's history is a chain: event `seq` n (from 1) holds the hash of event n − 1
//! ([`GENESIS`] for the first) and its own hash, SHA-256 over the previous hash followed by
//! the event's canonical JSON (every member but `hash`, keys sorted, no whitespace). Anyone
//! with the events can check them with [`verify`], no key needed.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate};
use crate::manifest::sha256_hex;
use crate::money::Currency;
use crate::records::{MismatchType, ResolveReason};

/// The previous hash of a break's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest owner, note or comment accepted, in characters.
pub const MAX_TEXT: usize = 4000;
/// Most transactions, and most lines, one manual match names.
pub const MAX_MATCH_ITEMS: usize = 50;

/// Whether `s` is a break id as [`crate::reconcile::break_id`] makes them: `brk_` and 20
/// lowercase hex digits.
pub fn is_break_id(s: &str) -> bool {
    s.strip_prefix("brk_").is_some_and(|h| {
        h.len() == 20
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What a person does to a break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Gives the break to someone to work.
    Assign {
        /// Who works it now (a name, an e-mail, a team).
        owner: String,
    },
    /// Adds a remark to the history.
    Comment {
        /// The remark.
        text: String,
    },
    /// Closes the break with a reason. A `MANUAL_MATCH` names the items it matches; every
    /// later close matches them (`match_rule = MANUAL`).
    Resolve {
        /// Why it is resolved.
        reason: ResolveReason,
        /// What the person says about it (required unless the facts speak for themselves).
        #[serde(default)]
        note: String,
        /// Transactions of a manual match.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        transaction_ids: Vec<String>,
        /// Statement lines of a manual match.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        statement_ids: Vec<String>,
    },
    /// Opens a resolved break again.
    Reopen {
        /// Why.
        #[serde(default)]
        note: String,
    },
}

impl Action {
    /// The action's code (`ASSIGN`, `COMMENT`, `RESOLVE`, `REOPEN`).
    pub fn code(&self) -> &'static str {
        match self {
            Action::Assign { .. } => "ASSIGN",
            Action::Comment { .. } => "COMMENT",
            Action::Resolve { .. } => "RESOLVE",
            Action::Reopen { .. } => "REOPEN",
        }
    }

    /// The members a request of this action may carry besides `action`.
    pub fn members(code: &str) -> Option<&'static [&'static str]> {
        Some(match code {
            "ASSIGN" => &["owner"],
            "COMMENT" => &["text"],
            "RESOLVE" => &["reason", "note", "transaction_ids", "statement_ids"],
            "REOPEN" => &["note"],
            _ => return None,
        })
    }
}

/// A break's money as a close showed it: a person's resolution holds while these stay the
/// same (in the statement currency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    /// What the bank should have posted.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub expected_amount: Option<Decimal>,
    /// What it posted.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub amount_posted: Option<Decimal>,
    /// `amount_posted − expected_amount`.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub discrepancy: Option<Decimal>,
    /// Fee charged minus fee expected.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub fee_variance: Option<Decimal>,
}

impl Amounts {
    /// What changed from `before` to `self`, for the event that reopens a break.
    pub fn changes_from(&self, before: &Amounts) -> String {
        let show = |d: Option<Decimal>| d.map_or_else(|| "none".to_string(), |d| d.to_string());
        let fields = [
            (
                "expected_amount",
                before.expected_amount,
                self.expected_amount,
            ),
            ("amount_posted", before.amount_posted, self.amount_posted),
            ("discrepancy", before.discrepancy, self.discrepancy),
            ("fee_variance", before.fee_variance, self.fee_variance),
        ];
        let changed: Vec<String> = fields
            .iter()
            .filter(|(_, a, b)| a != b)
            .map(|(n, a, b)| format!("{n} {} -> {}", show(*a), show(*b)))
            .collect();
        format!(
            "amounts changed since the resolution: {}",
            changed.join(", ")
        )
    }
}

/// One immutable event of a break's history. In JSON (and in the hash) the action is
/// `action` (its code) and `payload` (its members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireEvent", try_from = "WireEvent")]
pub struct BreakEvent {
    /// The break.
    pub break_id: String,
    /// 1 for the first event, then one more per event.
    pub seq: u64,
    /// The bank whose close has the break.
    pub bank_id: BankId,
    /// What was done.
    pub action: Action,
    /// Who did it: the caller's IAM principal, `--actor` locally, `recon:close` for an event
    /// a close wrote.
    pub actor: String,
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// The close whose facts the actor saw.
    pub seen_in: BusinessDate,
    /// The break's amounts in that close.
    pub amounts: Amounts,
    /// `hash` of event `seq − 1`, [`GENESIS`] for the first.
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this event's canonical JSON.
    pub hash: String,
}

/// [`BreakEvent`] as stored: the action split into its code and its payload.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    break_id: String,
    seq: u64,
    bank_id: BankId,
    action: String,
    payload: Value,
    actor: String,
    at: DateTime<Utc>,
    seen_in: BusinessDate,
    amounts: Amounts,
    prev_hash: String,
    hash: String,
}

impl From<BreakEvent> for WireEvent {
    fn from(e: BreakEvent) -> Self {
        let mut payload = serde_json::to_value(&e.action).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut payload {
            m.remove("action");
        }
        WireEvent {
            break_id: e.break_id,
            seq: e.seq,
            bank_id: e.bank_id,
            action: e.action.code().to_string(),
            payload,
            actor: e.actor,
            at: e.at,
            seen_in: e.seen_in,
            amounts: e.amounts,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

impl TryFrom<WireEvent> for BreakEvent {
    type Error = serde_json::Error;
    fn try_from(w: WireEvent) -> std::result::Result<Self, Self::Error> {
        let mut payload = w.payload;
        if let Value::Object(m) = &mut payload {
            m.insert("action".into(), Value::String(w.action));
        }
        Ok(BreakEvent {
            break_id: w.break_id,
            seq: w.seq,
            bank_id: w.bank_id,
            action: serde_json::from_value(payload)?,
            actor: w.actor,
            at: w.at,
            seen_in: w.seen_in,
            amounts: w.amounts,
            prev_hash: w.prev_hash,
            hash: w.hash,
        })
    }
}

/// The canonical JSON of `v`: object keys sorted, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    write(&m[*k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

impl BreakEvent {
    /// A new event after `head` (the last event of the break, `None` for the first), hashed.
    pub fn next(
        head: Option<&BreakEvent>,
        break_id: &str,
        bank_id: BankId,
        action: Action,
        actor: &str,
        at: DateTime<Utc>,
        seen: (BusinessDate, Amounts),
    ) -> Result<BreakEvent> {
        let mut e = BreakEvent {
            break_id: break_id.to_string(),
            seq: head.map_or(1, |h| h.seq + 1),
            bank_id,
            action,
            actor: actor.to_string(),
            // Millisecond precision, so the time reads back as written.
            at: DateTime::parse_from_rfc3339(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
                .map_err(|e| Error::Invariant(format!("time: {e}")))?
                .with_timezone(&Utc),
            seen_in: seen.0,
            amounts: seen.1,
            prev_hash: head.map_or_else(|| GENESIS.to_string(), |h| h.hash.clone()),
            hash: String::new(),
        };
        e.hash = e.computed_hash()?;
        Ok(e)
    }

    /// The hash the event should carry.
    pub fn computed_hash(&self) -> Result<String> {
        let mut v = serde_json::to_value(self)?;
        if let Value::Object(m) = &mut v {
            m.remove("hash");
        }
        Ok(sha256_hex(
            format!("{}{}", self.prev_hash, canonical_json(&v)).as_bytes(),
        ))
    }
}

/// The first link of a chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The break.
    pub break_id: String,
    /// The event at fault.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks a break's events, sorted by `seq`: numbered 1, 2, … without gaps, one break, each
/// linked to the previous one's hash, each hash what its content gives.
pub fn verify(events: &[BreakEvent]) -> std::result::Result<(), BrokenLink> {
    verify_after(None, events)
}

/// [`verify`] of the events that follow `head` (an event already checked; `None`: from the
/// first).
pub fn verify_after(
    head: Option<&BreakEvent>,
    events: &[BreakEvent],
) -> std::result::Result<(), BrokenLink> {
    let mut prev = head.map_or(GENESIS, |h| h.hash.as_str());
    let first = head.map_or(1, |h| h.seq + 1);
    let id = head.or(events.first()).map(|e| e.break_id.as_str());
    for (i, e) in events.iter().enumerate() {
        let broken = |reason: String| BrokenLink {
            break_id: e.break_id.clone(),
            seq: e.seq,
            reason,
        };
        let want = first + i as u64;
        if e.seq != want {
            return Err(broken(format!(
                "expected event {want} here (an event is missing or repeated)"
            )));
        }
        if Some(e.break_id.as_str()) != id {
            return Err(broken(format!("belongs to break {}", e.break_id)));
        }
        if e.prev_hash != prev {
            return Err(broken(
                "prev_hash is not the previous event's hash (an event was changed, removed or inserted before it)".into(),
            ));
        }
        match e.computed_hash() {
            Ok(h) if h == e.hash => {}
            Ok(_) => {
                return Err(broken(
                    "hash does not match the event's content (the event was changed)".into(),
                ));
            }
            Err(err) => return Err(broken(err.to_string())),
        }
        prev = &e.hash;
    }
    Ok(())
}

/// A person's resolution of a break, as the history left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// Why.
    pub reason: ResolveReason,
    /// What the person said.
    pub note: String,
    /// Who.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The event.
    pub seq: u64,
    /// The close whose facts the person saw.
    pub seen_in: BusinessDate,
    /// The break's amounts then.
    pub amounts: Amounts,
    /// The transactions of a manual match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transaction_ids: Vec<String>,
    /// The statement lines of a manual match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statement_ids: Vec<String>,
}

/// A break's state from its history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakState {
    /// Who works it.
    pub owner: Option<String>,
    /// The resolution in force; `None` while people consider the break open.
    pub resolution: Option<Resolution>,
    /// Comments made.
    pub comments: u64,
    /// Events so far (the `seq` of the last).
    pub events: u64,
}

impl BreakState {
    /// The state after `events` (in `seq` order).
    pub fn of(events: &[BreakEvent]) -> BreakState {
        let mut s = BreakState::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// The state after one more event.
    pub fn apply(&mut self, e: &BreakEvent) {
        self.events = e.seq;
        match &e.action {
            Action::Assign { owner } => self.owner = Some(owner.clone()),
            Action::Comment { .. } => self.comments += 1,
            Action::Resolve {
                reason,
                note,
                transaction_ids,
                statement_ids,
            } => {
                self.resolution = Some(Resolution {
                    reason: *reason,
                    note: note.clone(),
                    actor: e.actor.clone(),
                    at: e.at,
                    seq: e.seq,
                    seen_in: e.seen_in,
                    amounts: e.amounts,
                    transaction_ids: transaction_ids.clone(),
                    statement_ids: statement_ids.clone(),
                })
            }
            Action::Reopen { .. } => self.resolution = None,
        }
    }
}

/// A break as a close shows it (the rows of `index/mismatches` that carry its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakFacts {
    /// The break.
    pub break_id: String,
    /// The bank.
    pub bank_id: BankId,
    /// The close.
    pub business_date: BusinessDate,
    /// The kind of break.
    pub mismatch_type: MismatchType,
    /// The statement currency of the amounts.
    pub currency: Currency,
    /// Its money.
    pub amounts: Amounts,
    /// The close that first saw it.
    pub first_seen: Option<chrono::NaiveDate>,
    /// Business days open.
    pub age_days: Option<i32>,
    /// Transactions of its rows.
    pub transaction_ids: Vec<String>,
    /// Statement lines of its rows.
    pub statement_ids: Vec<String>,
}

/// An item a manual match may name: an item the close left open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItem {
    /// The transaction or statement id.
    pub id: String,
    /// Whether it is a statement line.
    pub line: bool,
    /// Its amount on the statement's side: expected (a transaction) or posted (a line);
    /// `None` for a transaction in another currency (a person compares, with a note).
    pub amount: Option<Decimal>,
    /// Its currency (the statement currency of its bank).
    pub currency: Currency,
}

/// Why an action is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request is wrong as sent, whatever the break (400).
    Invalid(String),
    /// The break or an item it names does not exist (404).
    NotFound(String),
    /// The break's state or facts do not allow it (409): resolved already, a reason that does
    /// not fit its kind, a manual match whose amounts need a note. Read it again.
    Conflict(String),
}

/// What else an action needs to be checked: the items of a manual match, found in the close,
/// and the amount tolerance of the bank in minor units.
pub struct Context<'a> {
    /// The break as the close shows it.
    pub facts: &'a BreakFacts,
    /// The items a manual match names, found among the close's open items (`None`: not open
    /// or unknown).
    pub items: &'a [(String, Option<OpenItem>)],
    /// The bank's amount tolerance in minor units.
    pub tolerance_minor: i64,
}

fn text_ok(what: &str, t: &str, required: bool) -> std::result::Result<(), Refusal> {
    if required && t.trim().is_empty() {
        return Err(Refusal::Invalid(format!("`{what}` must not be empty")));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(Refusal::Invalid(format!(
            "`{what}` is longer than {MAX_TEXT} characters"
        )));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Refusal::Invalid(format!(
            "`{what}` holds control characters"
        )));
    }
    Ok(())
}

/// Checks `action` against the break's `state` and the close's facts.
pub fn check(
    state: &BreakState,
    action: &Action,
    ctx: &Context<'_>,
) -> std::result::Result<(), Refusal> {
    match action {
        Action::Assign { owner } => {
            text_ok("owner", owner, true)?;
            if owner.chars().count() > 256 {
                return Err(Refusal::Invalid(
                    "`owner` is longer than 256 characters".into(),
                ));
            }
            Ok(())
        }
        Action::Comment { text } => text_ok("text", text, true),
        Action::Reopen { note } => {
            text_ok("note", note, false)?;
            match &state.resolution {
                None => Err(Refusal::Conflict("the break is open already".into())),
                Some(_) => Ok(()),
            }
        }
        Action::Resolve {
            reason,
            note,
            transaction_ids,
            statement_ids,
        } => {
            text_ok("note", note, false)?;
            if let Some(r) = &state.resolution {
                return Err(Refusal::Conflict(format!(
                    "the break was resolved ({}) by {} at {} (event {}); reopen it first",
                    r.reason,
                    r.actor,
                    r.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    r.seq
                )));
            }
            let kind = ctx.facts.mismatch_type;
            let names_items = !transaction_ids.is_empty() || !statement_ids.is_empty();
            match reason {
                ResolveReason::ManualMatch => {
                    check_manual(ctx, note, transaction_ids, statement_ids)
                }
                _ if names_items => Err(Refusal::Invalid(
                    "only a MANUAL_MATCH names transaction_ids and statement_ids".into(),
                )),
                ResolveReason::DuplicateConfirmed if kind != MismatchType::Duplicate => {
                    Err(Refusal::Conflict(format!(
                        "DUPLICATE_CONFIRMED resolves DUPLICATE breaks; this one is {kind}"
                    )))
                }
                ResolveReason::AcceptedVariance
                    if !matches!(
                        kind,
                        MismatchType::Amount | MismatchType::Fee | MismatchType::Currency
                    ) =>
                {
                    Err(Refusal::Conflict(format!(
                        "ACCEPTED_VARIANCE resolves AMOUNT, FEE and CURRENCY breaks; this one is {kind}"
                    )))
                }
                ResolveReason::DuplicateConfirmed => Ok(()),
                _ => text_ok("note", note, true),
            }
        }
    }
}

fn check_manual(
    ctx: &Context<'_>,
    note: &str,
    transaction_ids: &[String],
    statement_ids: &[String],
) -> std::result::Result<(), Refusal> {
    if transaction_ids.is_empty() || statement_ids.is_empty() {
        return Err(Refusal::Invalid(
            "a MANUAL_MATCH names at least one transaction_id and one statement_id".into(),
        ));
    }
    for (what, ids) in [
        ("transaction_ids", transaction_ids),
        ("statement_ids", statement_ids),
    ] {
        if ids.len() > MAX_MATCH_ITEMS {
            return Err(Refusal::Invalid(format!(
                "`{what}` names at most {MAX_MATCH_ITEMS} items"
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(id) = ids.iter().find(|id| !seen.insert(*id)) {
            return Err(Refusal::Invalid(format!("`{what}` names `{id}` twice")));
        }
    }
    let f = ctx.facts;
    if !transaction_ids
        .iter()
        .chain(statement_ids)
        .any(|id| f.transaction_ids.contains(id) || f.statement_ids.contains(id))
    {
        return Err(Refusal::Conflict(
            "a MANUAL_MATCH of a break names at least one of the break's own items".into(),
        ));
    }
    let (mut expected, mut posted, mut converted) = (Decimal::ZERO, Decimal::ZERO, false);
    for (id, item) in ctx.items {
        let Some(item) = item else {
            return Err(Refusal::NotFound(format!(
                "`{id}` is not an open item of {} in the close of {}",
                f.bank_id, f.business_date
            )));
        };
        if item.currency != f.currency {
            return Err(Refusal::Conflict(format!(
                "`{id}` is in {}, the break in {}",
                item.currency, f.currency
            )));
        }
        match (item.amount, item.line) {
            (Some(a), true) => posted += a,
            (Some(a), false) => expected += a,
            (None, _) => converted = true,
        }
    }
    let gap = posted - expected;
    let tolerance = f.currency.from_minor(ctx.tolerance_minor);
    if converted && note.trim().is_empty() {
        return Err(Refusal::Conflict(
            "a transaction of the match is in another currency than the statement: give a `note` that explains the amounts".into(),
        ));
    }
    if gap.abs() > tolerance && note.trim().is_empty() {
        return Err(Refusal::Conflict(format!(
            "the lines post {posted} and the transactions expect {expected} ({gap} apart, more than the tolerance {tolerance}): give a `note` that explains the variance"
        )));
    }
    Ok(())
}

/// A person's manual match for the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualMatch {
    /// The break it resolved.
    pub break_id: String,
    /// Who matched.
    pub actor: String,
    /// The transactions.
    pub transaction_ids: Vec<String>,
    /// The statement lines.
    pub statement_ids: Vec<String>,
}

/// A resolution other than a manual match, for the close: it holds while the break's amounts
/// are those the person saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Why.
    pub reason: ResolveReason,
    /// Who.
    pub actor: String,
    /// The event that resolved it.
    pub seq: u64,
    /// The amounts the person saw.
    pub amounts: Amounts,
}

/// What people decided about a bank's breaks, as its closes read it
/// (`index/decisions/bank_id={B}/decisions.json`, written by the plan from the BreakActions
/// events: the same events give the same bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    /// Resolutions in force, other than manual matches, by break id.
    pub resolved: BTreeMap<String, Held>,
    /// Manual matches in force, by break id.
    pub manual: Vec<ManualMatch>,
}

impl Decisions {
    /// The decisions of the breaks whose events are given (any order, any breaks).
    pub fn of(mut events: Vec<BreakEvent>) -> Decisions {
        events.sort_by(|a, b| (&a.break_id, a.seq).cmp(&(&b.break_id, b.seq)));
        let mut d = Decisions::default();
        for chain in events.chunk_by(|a, b| a.break_id == b.break_id) {
            let Some(r) = BreakState::of(chain).resolution else {
                continue;
            };
            let id = chain[0].break_id.clone();
            if r.reason == ResolveReason::ManualMatch {
                d.manual.push(ManualMatch {
                    break_id: id,
                    actor: r.actor,
                    transaction_ids: r.transaction_ids,
                    statement_ids: r.statement_ids,
                });
            } else {
                d.resolved.insert(
                    id,
                    Held {
                        reason: r.reason,
                        actor: r.actor,
                        seq: r.seq,
                        amounts: r.amounts,
                    },
                );
            }
        }
        d
    }

    /// The decisions of a bank's decisions file (none without one).
    pub fn read(bytes: Option<&[u8]>) -> Result<Decisions> {
        match bytes {
            Some(b) => Ok(serde_json::from_slice(b)?),
            None => Ok(Decisions::default()),
        }
    }

    /// Whether nobody decided anything.
    pub fn is_empty(&self) -> bool {
        self.resolved.is_empty() && self.manual.is_empty()
    }
}

/// The actor of events a close writes (a resolution reopened because the amounts changed).
pub const CLOSE_ACTOR: &str = "recon:close";

/// A resolution a close found no longer holding: the break's amounts changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reopened {
    /// The break.
    pub break_id: String,
    /// The resolution's event (the reopen applies only if it is still the last).
    pub resolved_seq: u64,
    /// The amounts now.
    pub amounts: Amounts,
    /// The event's note: what changed.
    pub why: String,
}

#[cfg(test)]
mod tests;
