//! The files of a multi-day world: config (with the banks' calendars and an FX file per date),
//! a ledger extract per date, each bank's statement per delivery, the topics of every day, and
//! the truth per close (`truth/closes.csv`, `truth/breaks.csv`, `truth/closes_summary.json`)
//! beside the one-day truth files holding each item's state at the last close.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::NaiveDate;
use recon_shared::Result;
use recon_shared::ids::BusinessDate;
use serde_json::json;

use super::Span;
use super::closes::{Kind, Row, State};
use crate::day::{Line, Truth, Txn};
use crate::formats::opening_balance_minor;
use crate::knobs::Knobs;
use crate::mapping::LEDGER_SOURCE;
use crate::rng::Rng;
use crate::text::minor_str;
use crate::topics::topics_of;
use crate::world::World;
use crate::write::{
    LEDGER_HEADER, Tree, at, config_files, delivery, plain_files, statement_files, write_txn,
};

/// Header of `truth/closes.csv`.
pub const CLOSES_HEADER: &str = "close_date,bank_id,kind,id,reconciled_status,mismatch_type,match_rule,counterparts,discrepancy,fee_variance,currency\n";

/// Header of `truth/breaks.csv`.
pub const BREAKS_HEADER: &str =
    "bank_id,subject_kind,subject,mismatch_type,opened_on,resolved_on\n";

/// The topics of every day: each day's transactions (ledger-late ones on their event day) and
/// fraud signals, one file per topic.
pub fn topics(world: &World, span: &Span, knobs: &Knobs, rng: &mut Rng) -> Result<Tree> {
    let mut by_date: BTreeMap<BusinessDate, Vec<&Txn>> =
        span.dates.iter().map(|d| (*d, Vec::new())).collect();
    for t in &span.day.txns {
        by_date.entry(t.business_date).or_default().push(t);
    }
    let days: Vec<(BusinessDate, Vec<&Txn>)> = by_date.into_iter().collect();
    topics_of(world, &span.day, knobs, rng, &days)
}

/// Everything but the topics.
pub fn files(world: &World, span: &Span, knobs: &Knobs) -> Result<Tree> {
    let mut tree = Tree::new();
    let day = &span.day;
    config_files(
        &mut tree,
        world,
        &day.tolerances,
        knobs.describe_for(span.dates.len() as u32),
        &span.dates,
    )?;
    for cal in &span.bank_days.calendars {
        tree.insert(
            format!("config/calendars/{}.json", cal.bank_id),
            serde_json::to_vec_pretty(cal)?,
        );
    }
    // One ledger extract per date: the transactions it carries, all statuses.
    let mut ledger: BTreeMap<BusinessDate, Vec<String>> =
        span.dates.iter().map(|d| (*d, Vec::new())).collect();
    for t in &day.txns {
        if let Some(rows) = ledger.get_mut(&t.ledger_date) {
            let mut s = String::with_capacity(128);
            write_txn(&mut s, world, day, t);
            rows.push(s);
        }
    }
    for (d, rows) in &ledger {
        delivery(
            &mut tree,
            "landing/",
            LEDGER_SOURCE,
            *d,
            1,
            at(*d, 1, 0, 30),
            "transactions",
            "csv",
            plain_files(LEDGER_HEADER, rows),
        )?;
    }
    // One statement per bank and delivery day (an empty one when nothing was posted), the
    // balances running on from delivery to delivery.
    let mut by_delivery: BTreeMap<(usize, BusinessDate), Vec<&Line>> = BTreeMap::new();
    for l in &day.lines {
        by_delivery
            .entry((l.bank, l.business_date))
            .or_default()
            .push(l);
    }
    for (bank, b) in world.banks.iter().enumerate() {
        let mut balance = opening_balance_minor(bank, b.currency);
        for d in &span.dates {
            if !span.bank_days.delivers(bank, d.date()) {
                continue;
            }
            let mut lines = by_delivery.remove(&(bank, *d)).unwrap_or_default();
            lines.sort_by_key(|l| l.seq);
            let generated = at(*d, 1, 1, 10);
            let files = statement_files(world, bank, *d, generated, &lines, balance);
            balance += lines
                .iter()
                .map(|l| l.amount_minor * (1 + i64::from(l.dup_record)))
                .sum::<i64>();
            delivery(
                &mut tree,
                "landing/",
                b.id.as_str(),
                *d,
                1,
                generated,
                "statements",
                b.style.extension(),
                files,
            )?;
        }
    }
    if let Some(((bank, d), _)) = by_delivery.into_iter().next() {
        return Err(recon_shared::Error::Invariant(format!(
            "lines of {} for {d}, a day it does not deliver",
            world.banks[bank].id
        )));
    }
    truth(&mut tree, world, span)?;
    Ok(tree)
}

/// The id of a row's item.
fn item_id(span: &Span, kind: Kind, item: u32) -> &str {
    match kind {
        Kind::Transaction => &span.day.txns[item as usize].id,
        Kind::Line => &span.day.lines[item as usize].statement_id,
    }
}

/// The ids of a truth's counterparts (the other side of `kind`), sorted.
fn counterpart_ids<'a>(span: &'a Span, kind: Kind, truth: &Truth) -> Vec<&'a str> {
    let other = match kind {
        Kind::Transaction => Kind::Line,
        Kind::Line => Kind::Transaction,
    };
    let mut ids: Vec<&str> = truth
        .counterparts
        .iter()
        .map(|i| item_id(span, other, *i))
        .collect();
    ids.sort_unstable();
    ids
}

/// `status,mismatch,rule,counterparts,discrepancy,fee_variance` of a state.
fn state_columns(
    out: &mut String,
    span: &Span,
    kind: Kind,
    state: &State,
    sep: &str,
    cur: recon_shared::money::Currency,
) {
    match state {
        State::Pending => out.push_str("PENDING,NONE,NONE,,,"),
        State::Outcome(t) => {
            let money = |m: Option<i64>| m.map(|m| minor_str(m, cur)).unwrap_or_default();
            let _ = write!(
                out,
                "{},{},{},{},{},{}",
                t.status,
                t.mismatch,
                t.rule,
                counterpart_ids(span, kind, t).join(sep),
                money(t.discrepancy),
                money(t.fee_variance)
            );
        }
    }
}

fn status_of(state: &State) -> String {
    match state {
        State::Pending => "PENDING".into(),
        State::Outcome(t) => t.status.to_string(),
    }
}

/// `truth/closes.csv`, `truth/breaks.csv`, `truth/closes_summary.json`, and the one-day files
/// with each item's state at the last close.
fn truth(tree: &mut Tree, world: &World, span: &Span) -> Result<()> {
    let bank_id = |b: usize| world.banks[b].id.as_str();
    let mut rows: Vec<&Row> = span.closes.rows.iter().collect();
    rows.sort_by_key(|r| {
        (
            r.close,
            bank_id(r.bank),
            r.kind,
            item_id(span, r.kind, r.item),
        )
    });
    let mut csv = String::from(CLOSES_HEADER);
    for r in &rows {
        let cur = world.banks[r.bank].currency;
        let _ = write!(
            csv,
            "{},{},{},{},",
            r.close,
            bank_id(r.bank),
            r.kind.as_str(),
            item_id(span, r.kind, r.item)
        );
        state_columns(&mut csv, span, r.kind, &r.state, ";", cur);
        let _ = writeln!(csv, ",{cur}");
    }
    tree.insert("truth/closes.csv".into(), csv.into_bytes());

    let mut breaks: Vec<_> = span.closes.breaks.iter().collect();
    breaks.sort_by_key(|b| {
        (
            b.opened,
            bank_id(b.bank),
            b.kind,
            item_id(span, b.kind, b.item),
        )
    });
    let mut csv = String::from(BREAKS_HEADER);
    for b in &breaks {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{}",
            bank_id(b.bank),
            b.kind.as_str(),
            item_id(span, b.kind, b.item),
            b.mismatch,
            b.opened,
            b.resolved.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    tree.insert("truth/breaks.csv".into(), csv.into_bytes());
    if !span.anomalies.is_empty() {
        tree.insert(
            "truth/anomalies.csv".into(),
            super::anomalies::truth(world, &span.anomalies).into_bytes(),
        );
    }
    tree.insert(
        "truth/closes_summary.json".into(),
        serde_json::to_vec_pretty(&summary(world, span, &rows))?,
    );
    final_states(tree, world, span, &rows)
}

/// Counts per close (bank and date) and status, the banks' calendars and lags, and the breaks.
fn summary(world: &World, span: &Span, rows: &[&Row]) -> serde_json::Value {
    let days = &span.bank_days;
    let mut per_close: BTreeMap<(NaiveDate, usize), [BTreeMap<String, u64>; 2]> = BTreeMap::new();
    for r in rows {
        let counts = per_close.entry((r.close, r.bank)).or_default();
        *counts[r.kind as usize]
            .entry(status_of(&r.state))
            .or_default() += 1;
    }
    let mut closes = Vec::new();
    for d in &span.dates {
        for (bank, b) in world.banks.iter().enumerate() {
            let d = d.date();
            let delivery = if days.delivers(bank, d) {
                "DELIVERED"
            } else if days.is_business_day(bank, d) {
                "AWAITING_DELIVERY"
            } else {
                "NOT_A_BUSINESS_DAY"
            };
            let counts = per_close.remove(&(d, bank)).unwrap_or_default();
            let opened = span
                .closes
                .breaks
                .iter()
                .filter(|x| x.bank == bank && x.opened == d)
                .count();
            let resolved = span
                .closes
                .breaks
                .iter()
                .filter(|x| x.bank == bank && x.resolved == Some(d))
                .count();
            let open = span
                .closes
                .breaks
                .iter()
                .filter(|x| x.bank == bank && x.opened <= d && x.resolved.is_none_or(|r| r > d))
                .count();
            closes.push(json!({
                "close_date": d.to_string(),
                "bank_id": b.id.as_str(),
                "delivery": delivery,
                "lines": counts[Kind::Line as usize],
                "transactions": counts[Kind::Transaction as usize],
                "breaks_opened": opened,
                "breaks_resolved": resolved,
                "breaks_open": open,
            }));
        }
    }
    let banks: Vec<serde_json::Value> = world
        .banks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let lags: BTreeMap<String, u64> = days.lags[i]
                .iter()
                .enumerate()
                .map(|(lag, pct)| (format!("T+{lag}"), *pct))
                .collect();
            json!({
                "bank_id": b.id.as_str(),
                "lag_percent": lags,
                "holidays": days.calendars[i].holidays.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                "missed_delivery": days.missed.filter(|(m, _)| *m == i).map(|(_, d)| d.to_string()),
            })
        })
        .collect();
    let tol = &span.day.tolerances;
    json!({
        "first_date": span.first().to_string(),
        "last_date": span.last().to_string(),
        "days": span.dates.len(),
        "settlement_window_days": tol.settlement_window_days,
        "carry_grace_days": tol.carry_grace_days,
        "date_window_days": tol.date_window_days,
        "banks": banks,
        "closes": closes,
        "rows": rows.len(),
        "breaks": span.closes.breaks.len(),
        "breaks_resolved": span.closes.breaks.iter().filter(|b| b.resolved.is_some()).count(),
    })
}

/// `truth/transactions.csv`, `truth/statement_lines.csv` and `truth/summary.json` in the
/// one-day format, with each item's state at the last close (`PENDING` included).
fn final_states(tree: &mut Tree, world: &World, span: &Span, rows: &[&Row]) -> Result<()> {
    let day = &span.day;
    let mut last: HashMap<(Kind, u32), &State> = HashMap::new();
    for r in rows {
        last.insert((r.kind, r.item), &r.state);
    }
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut tx_cases: BTreeMap<&str, u64> = BTreeMap::new();
    let mut tx = String::from(
        "business_date,transaction_id,bank_id,case,reconciled_status,mismatch_type,match_rule,statement_ids,discrepancy,fee_variance,currency\n",
    );
    for (i, t) in day.txns.iter().enumerate() {
        let Some(state) = last.get(&(Kind::Transaction, i as u32)) else {
            continue;
        };
        let cur = world.banks[t.bank].currency;
        let _ = write!(
            tx,
            "{},{},{},{},",
            t.ledger_date,
            t.id,
            world.banks[t.bank].id,
            t.case.as_str()
        );
        state_columns(&mut tx, span, Kind::Transaction, state, "|", cur);
        let _ = writeln!(tx, ",{cur}");
        *tx_cases.entry(t.case.as_str()).or_default() += 1;
        *by_status
            .entry(format!("transactions.{}", status_of(state)))
            .or_default() += 1;
    }
    let mut ln = String::from(
        "business_date,statement_id,bank_id,case,reconciled_status,mismatch_type,match_rule,transaction_ids,discrepancy,currency,duplicate_records\n",
    );
    let mut lines: Vec<(usize, &Line)> = day.lines.iter().enumerate().collect();
    lines.sort_by_key(|(_, l)| (l.business_date, l.bank, l.seq));
    let mut line_cases: BTreeMap<&str, u64> = BTreeMap::new();
    let mut dup_records = 0u64;
    for (i, l) in lines {
        let Some(state) = last.get(&(Kind::Line, i as u32)) else {
            continue;
        };
        let cur = world.banks[l.bank].currency;
        let _ = write!(
            ln,
            "{},{},{},{},",
            l.business_date,
            l.statement_id,
            world.banks[l.bank].id,
            l.case.as_str()
        );
        let mut cols = String::new();
        state_columns(&mut cols, span, Kind::Line, state, "|", cur);
        // The line file has no fee_variance column.
        let cols = cols.rsplit_once(',').map_or(cols.as_str(), |(a, _)| a);
        let _ = writeln!(ln, "{cols},{cur},{}", u8::from(l.dup_record));
        *line_cases.entry(l.case.as_str()).or_default() += 1;
        *by_status
            .entry(format!("statement_lines.{}", status_of(state)))
            .or_default() += 1;
        dup_records += u64::from(l.dup_record);
    }
    let in_ledger = day
        .txns
        .iter()
        .filter(|t| t.ledger_date.date() <= span.last())
        .count();
    let summary = json!({
        "business_date": span.first().to_string(),
        "last_date": span.last().to_string(),
        "days": span.dates.len(),
        "transactions": in_ledger,
        "statement_lines": day.lines.len(),
        "exact_duplicate_records": dup_records,
        "transaction_cases": tx_cases,
        "statement_line_cases": line_cases,
        "by_status": by_status,
    });
    tree.insert("truth/transactions.csv".into(), tx.into_bytes());
    tree.insert("truth/statement_lines.csv".into(), ln.into_bytes());
    tree.insert(
        "truth/summary.json".into(),
        serde_json::to_vec_pretty(&summary)?,
    );
    Ok(())
}
