//! The truth per close of a multi-day world: what the close of each date writes for each bank
//! under the open-item rules of `docs/daily-close.md` ("Open items: days are not islands"),
//! and the breaks those rows open and resolve.
//!
//! A close of C for bank B writes every item of C (B's ledger transactions of C, all statuses;
//! B's lines delivered for C) and every carried item whose outcome C changed (matched at C, or
//! PENDING turned MISSING_AT_BANK at C). An item's match happens at the first close where all
//! its parts are there: the latest of its transactions' ledger dates and its lines' deliveries.

use chrono::NaiveDate;
use recon_shared::records::{MismatchType, TxnStatus};
use recon_shared::{Error, Result};

use super::calendar::BankDays;
use crate::day::{Day, Truth};

/// What a row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A statement line (its index in the day's lines).
    Line,
    /// A ledger transaction (its index in the day's transactions).
    Transaction,
}

impl Kind {
    /// The `kind` column of `truth/closes.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Line => "line",
            Kind::Transaction => "transaction",
        }
    }
}

/// The state a close gives an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// An expected transaction not settled yet, within its window: `PENDING` / `NONE` / `NONE`.
    Pending,
    /// An outcome in the engine's vocabulary (counterparts as indices of the other side).
    Outcome(Truth),
}

/// One row a close writes to its batch index.
#[derive(Debug, Clone)]
pub struct Row {
    /// The close's date.
    pub close: NaiveDate,
    /// The bank (index into the world's banks).
    pub bank: usize,
    /// Transaction or line.
    pub kind: Kind,
    /// Index of the transaction or line.
    pub item: u32,
    /// Its state at this close.
    pub state: State,
}

/// A break: the first mismatch an item gets, from the close that gave it to the close that
/// matched the item (none while it is still open at the last close).
#[derive(Debug, Clone)]
pub struct Break {
    /// The bank.
    pub bank: usize,
    /// Transaction or line.
    pub kind: Kind,
    /// Index of the transaction or line.
    pub item: u32,
    /// The mismatch the break is about.
    pub mismatch: MismatchType,
    /// The close that opened it.
    pub opened: NaiveDate,
    /// The close that resolved it.
    pub resolved: Option<NaiveDate>,
}

/// Every close's rows and every break, in no particular order.
#[derive(Debug, Clone, Default)]
pub struct Closes {
    /// Rows of every close.
    pub rows: Vec<Row>,
    /// Breaks opened by the closes.
    pub breaks: Vec<Break>,
}

/// Whether the bank is expected to carry a transaction of this status.
pub fn expected(status: TxnStatus) -> bool {
    matches!(
        status,
        TxnStatus::Approved | TxnStatus::Refunded | TxnStatus::Chargeback
    )
}

fn outcome(truth: &Option<Truth>, what: &str) -> Result<Truth> {
    truth
        .clone()
        .ok_or_else(|| Error::Invariant(format!("no truth for {what}")))
}

/// Line-level breaks (lines nobody booked, duplicates); other mismatches of a line are its
/// transaction's break.
fn line_break(m: MismatchType) -> bool {
    matches!(m, MismatchType::MissingInternal | MismatchType::Duplicate)
}

/// The closes of `first..=last` of the world `day`.
pub fn closes(day: &Day, days: &BankDays, first: NaiveDate, last: NaiveDate) -> Result<Closes> {
    let mut out = Closes::default();
    let txns = &day.txns;
    // The close where a line's match happens: its delivery or its last owner's ledger date.
    let line_match = |li: usize| -> Option<NaiveDate> {
        let l = &day.lines[li];
        if l.owners.is_empty() {
            return None;
        }
        let at = l
            .owners
            .iter()
            .map(|o| txns[*o as usize].ledger_date.date())
            .fold(l.business_date.date(), NaiveDate::max);
        (at <= last).then_some(at)
    };
    for (ti, t) in txns.iter().enumerate() {
        let seen = t.ledger_date.date();
        if seen > last {
            continue;
        }
        let (bank, item) = (t.bank, ti as u32);
        let mut row = |close, state| {
            out.rows.push(Row {
                close,
                bank,
                kind: Kind::Transaction,
                item,
                state,
            })
        };
        let truth = || outcome(&t.truth, &t.id);
        if !expected(t.status) {
            row(seen, State::Outcome(truth()?));
            continue;
        }
        let matched = if t.lines.is_empty() {
            None
        } else {
            t.lines
                .iter()
                .map(|l| line_match(*l as usize))
                .try_fold(seen, |m, l| l.map(|l| m.max(l)))
        };
        if matched == Some(seen) {
            let truth = truth()?;
            if truth.mismatch != MismatchType::None {
                out.breaks.push(Break {
                    bank,
                    kind: Kind::Transaction,
                    item,
                    mismatch: truth.mismatch,
                    opened: seen,
                    resolved: None,
                });
            }
            row(seen, State::Outcome(truth));
            continue;
        }
        // Open: PENDING until its window ends, then MISSING_AT_BANK at the first close from
        // `expected_by` on whose delivery is there, unless matched first.
        let due = days.expected_by(bank, t.business_date.date());
        let mut missing_at = None;
        let mut c = seen.max(due);
        while c <= last && matched.is_none_or(|m| c < m) {
            if days.delivers(bank, c) {
                missing_at = Some(c);
                break;
            }
            c = c.succ_opt().unwrap_or(c);
        }
        let missing = || State::Outcome(Truth::unmatched(MismatchType::MissingAtBank));
        if missing_at == Some(seen) {
            row(seen, missing());
        } else {
            row(seen, State::Pending);
            if let Some(x) = missing_at {
                row(x, missing());
            }
        }
        if let Some(x) = missing_at {
            out.breaks.push(Break {
                bank,
                kind: Kind::Transaction,
                item,
                mismatch: MismatchType::MissingAtBank,
                opened: x,
                resolved: matched,
            });
        }
        if let Some(m) = matched {
            if missing_at.is_some() && m > days.add_business_days(bank, due, days.grace) {
                return Err(Error::Invariant(format!(
                    "{} matched on {m}, after it left the open items",
                    t.id
                )));
            }
            let truth = truth()?;
            if truth.mismatch != MismatchType::None {
                out.breaks.push(Break {
                    bank,
                    kind: Kind::Transaction,
                    item,
                    mismatch: truth.mismatch,
                    opened: m,
                    resolved: None,
                });
            }
            row(m, State::Outcome(truth));
        }
    }
    for (li, l) in day.lines.iter().enumerate() {
        let (bank, item, seen) = (l.bank, li as u32, l.business_date.date());
        if seen < first || seen > last {
            return Err(Error::Invariant(format!(
                "{} delivered on {seen}, outside the world",
                l.statement_id
            )));
        }
        let mut row = |close, state| {
            out.rows.push(Row {
                close,
                bank,
                kind: Kind::Line,
                item,
                state,
            })
        };
        let truth = outcome(&l.truth, &l.statement_id)?;
        let matched = line_match(li);
        let opens = |mismatch, opened, resolved| Break {
            bank,
            kind: Kind::Line,
            item,
            mismatch,
            opened,
            resolved,
        };
        if l.owners.is_empty() || matched == Some(seen) {
            if line_break(truth.mismatch) {
                out.breaks.push(opens(truth.mismatch, seen, None));
            }
            row(seen, State::Outcome(truth));
            continue;
        }
        // Its transaction is not there yet: MISSING_INTERNAL until it comes.
        out.breaks
            .push(opens(MismatchType::MissingInternal, seen, matched));
        row(
            seen,
            State::Outcome(Truth::unmatched(MismatchType::MissingInternal)),
        );
        if let Some(m) = matched {
            if days.business_days_between(bank, seen, m) > days.grace {
                return Err(Error::Invariant(format!(
                    "{} matched on {m}, after it left the open items",
                    l.statement_id
                )));
            }
            if line_break(truth.mismatch) {
                out.breaks.push(opens(truth.mismatch, m, None));
            }
            row(m, State::Outcome(truth));
        }
    }
    Ok(out)
}
