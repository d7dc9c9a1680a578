//! The ground truth of a generated day (`truth/`) and the canonical records the pipeline must
//! make of its files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::DateTime;
use recon_shared::ids::{BusinessDate, StatementId, TransactionId, UserId};
use recon_shared::money::Currency;
use recon_shared::records::{StatementLine, Transaction};
use recon_shared::{Error, Result};
use serde_json::json;

use super::day::{Case, Day, Line, Truth, Txn};
use super::text::{minor_str, user_id};
use super::world::World;

/// The canonical record the normalizer must produce from a generated line.
pub fn canonical_line(world: &World, l: &Line) -> Result<StatementLine> {
    let settle = world.banks[l.bank].currency;
    let (original_amount, original_currency, fx_rate) = match l.original {
        Some((minor, cur)) => (
            Some(cur.from_minor(minor)),
            Some(cur),
            world.fx.rate(cur, settle).map(|r| r.normalize()),
        ),
        None => (None, None, None),
    };
    Ok(StatementLine {
        statement_id: StatementId::new(&l.statement_id)?,
        transaction_id: l.txn_ref.as_deref().map(TransactionId::new).transpose()?,
        bank_id: world.banks[l.bank].id.clone(),
        posting_date: l.posting_date,
        amount_posted: settle.from_minor(l.amount_minor),
        currency: settle,
        fee_charged: settle.from_minor(l.fee_minor),
        merchant_id: l
            .merchant
            .map(|m| world.merchants[m as usize].merchant_id.clone()),
        reference: l.reference.clone(),
        record_type: Some(l.record_type),
        original_amount,
        original_currency,
        fx_rate,
    })
}

/// The canonical record of a generated transaction.
pub fn canonical_txn(world: &World, day: &Day, t: &Txn) -> Result<Transaction> {
    Ok(Transaction {
        transaction_id: TransactionId::new(&t.id)?,
        merchant_id: world.merchants[t.merchant as usize].merchant_id.clone(),
        user_id: UserId::new(user_id(t.user))?,
        amount: t.currency.from_minor(t.amount_minor),
        currency: t.currency,
        status: t.status,
        event_time: DateTime::from_timestamp_millis(t.event_ms)
            .ok_or_else(|| Error::Invariant("event time".into()))?,
        payment_method: t.method,
        original_transaction_id: t
            .original
            .map(|o| TransactionId::new(&day.txns[o as usize].id))
            .transpose()?,
    })
}

fn truth_money(minor: Option<i64>, cur: Currency) -> String {
    minor.map(|m| minor_str(m, cur)).unwrap_or_default()
}

/// The files of `truth/`: every transaction's and line's expected outcome, and their counts.
pub fn truth_files(world: &World, day: &Day) -> Result<[(String, Vec<u8>); 3]> {
    let mut tx = String::from(
        "business_date,transaction_id,bank_id,case,reconciled_status,mismatch_type,match_rule,statement_ids,discrepancy,fee_variance,currency\n",
    );
    let mut by_case: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for t in &day.txns {
        let truth = t
            .truth
            .as_ref()
            .ok_or_else(|| Error::Invariant(format!("no truth for {}", t.id)))?;
        let cur = world.banks[t.bank].currency;
        let ids = truth
            .counterparts
            .iter()
            .map(|l| day.lines[*l as usize].statement_id.as_str());
        let at = (t.business_date, t.id.as_str(), t.bank, t.case);
        truth_columns(&mut tx, world, at, truth, ids);
        let fee_variance = truth_money(truth.fee_variance, cur);
        let _ = writeln!(
            tx,
            ",{},{fee_variance},{cur}",
            truth_money(truth.discrepancy, cur)
        );
        *by_case.entry(t.case.as_str()).or_default() += 1;
        *by_status
            .entry(format!("transactions.{}", truth.status))
            .or_default() += 1;
    }
    let mut ln = String::from(
        "business_date,statement_id,bank_id,case,reconciled_status,mismatch_type,match_rule,transaction_ids,discrepancy,currency,duplicate_records\n",
    );
    let mut lines: Vec<&Line> = day.lines.iter().collect();
    lines.sort_by_key(|l| (l.business_date, l.bank, l.seq));
    let mut line_cases: BTreeMap<&str, u64> = BTreeMap::new();
    let mut dup_records = 0u64;
    for l in lines {
        let truth = l
            .truth
            .as_ref()
            .ok_or_else(|| Error::Invariant(format!("no truth for {}", l.statement_id)))?;
        let cur = world.banks[l.bank].currency;
        let ids = truth
            .counterparts
            .iter()
            .map(|t| day.txns[*t as usize].id.as_str());
        let at = (l.business_date, l.statement_id.as_str(), l.bank, l.case);
        truth_columns(&mut ln, world, at, truth, ids);
        let dup = u8::from(l.dup_record);
        let _ = writeln!(ln, ",{},{cur},{dup}", truth_money(truth.discrepancy, cur));
        *line_cases.entry(l.case.as_str()).or_default() += 1;
        *by_status
            .entry(format!("statement_lines.{}", truth.status))
            .or_default() += 1;
        dup_records += u64::from(l.dup_record);
    }
    let summary = json!({
        "business_date": world.date.to_string(),
        "transactions": day.txns.len(),
        "statement_lines": day.lines.len(),
        "exact_duplicate_records": dup_records,
        "declined_stream_only": day.declined.len(),
        "transaction_cases": by_case,
        "statement_line_cases": line_cases,
        "by_status": by_status,
    });
    Ok([
        ("truth/transactions.csv".into(), tx.into_bytes()),
        ("truth/statement_lines.csv".into(), ln.into_bytes()),
        (
            "truth/summary.json".into(),
            serde_json::to_vec_pretty(&summary)?,
        ),
    ])
}

/// The columns a transaction's and a line's truth rows share: date, id, bank, case, status,
/// mismatch, rule and the counterparts' ids (sorted, `|`-separated).
fn truth_columns<'a>(
    out: &mut String,
    world: &World,
    (date, id, bank, case): (BusinessDate, &str, usize, Case),
    truth: &Truth,
    counterparts: impl Iterator<Item = &'a str>,
) {
    let mut ids: Vec<&str> = counterparts.collect();
    ids.sort_unstable();
    let _ = write!(
        out,
        "{date},{id},{},{},{},{},{},{}",
        world.banks[bank].id,
        case.as_str(),
        truth.status,
        truth.mismatch,
        truth.rule,
        ids.join("|"),
    );
}

/// The rows of a `truth/*.csv` file as column -> value maps. Its fields are never quoted
/// (ids, codes and amounts hold no comma), so a line splits at its commas.
pub fn csv_rows<M: FromIterator<(String, String)>>(text: &str) -> Vec<M> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}
