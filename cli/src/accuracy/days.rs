//! `recon accuracy` on a generated sequence of days (`recon generate --days N`): every close's
//! batch index against `truth/closes.csv`, and every break's life (the close that opened it,
//! the close that resolved it) against `truth/breaks.csv`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use recon_shared::Result;
use recon_shared::ids::BankId;
use recon_shared::reconcile::{IndexRow, RowKind, break_id};
use recon_shared::records::MismatchType;
use serde_json::{Value, json};

use super::{Tally, Verdict, batch_index_rows, pct, ratio, read_csv};

/// One close's score.
#[derive(Debug, Clone, Default)]
pub struct CloseScore {
    /// Items truth says the close decides.
    pub items: u64,
    /// Those the close's batch index gives exactly (status, mismatch, rule, counterparts,
    /// discrepancy).
    pub correct: u64,
}

/// The scores of a sequence of closes.
#[derive(Debug, Clone, Default)]
pub struct DaysReport {
    /// Per close date.
    pub closes: BTreeMap<String, CloseScore>,
    /// Per expected status, over every close.
    pub by_status: BTreeMap<String, Tally>,
    /// Exact-id items over every close.
    pub exact_id: Tally,
    /// Breaks of truth, and those opened and resolved on the right closes.
    pub breaks: Tally,
    /// Rows the index has that truth does not (an item decided twice, or one truth has not).
    pub extra: u64,
    /// (close, kind, id, expected, actual), then breaks as (bank, "break", subject, …).
    pub wrong: Vec<(String, String, String, String, String)>,
}

/// A row's id list in truth's form: sorted, `;`-joined.
fn ids(v: &[String]) -> String {
    let mut v = v.to_vec();
    v.sort();
    v.join(";")
}

/// Every batch index row under `data`, by (close date, kind, id).
fn batch_rows(data: &Path) -> Result<BTreeMap<(String, String, String), IndexRow>> {
    let mut out = BTreeMap::new();
    for r in batch_index_rows(data)? {
        let (kind, id) = match r.row_kind {
            RowKind::Transaction => (
                "transaction",
                r.transaction_id
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            ),
            RowKind::StatementLine => {
                ("line", r.statement_ids.first().cloned().unwrap_or_default())
            }
        };
        out.insert((r.business_date.to_string(), kind.to_string(), id), r);
    }
    Ok(out)
}

fn verdict(r: &IndexRow) -> Verdict {
    let counterparts = match r.row_kind {
        RowKind::Transaction => ids(&r.statement_ids),
        RowKind::StatementLine => ids(&r.transaction_ids),
    };
    Verdict {
        status: r.reconciled_status.to_string(),
        mismatch: r.mismatch_type.to_string(),
        rule: r.match_rule.to_string(),
        counterparts,
        discrepancy: r.discrepancy.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// Scores the closes under `data` against `truth/closes.csv` and `truth/breaks.csv`.
pub fn accuracy_days(data: &Path) -> Result<DaysReport> {
    let all = batch_rows(data)?;
    let mut seen = std::collections::HashSet::new();
    let mut rep = DaysReport::default();
    for t in read_csv(&data.join("truth/closes.csv"))? {
        let get = |k: &str| t.get(k).cloned().unwrap_or_default();
        let expected = Verdict {
            status: get("reconciled_status"),
            mismatch: get("mismatch_type"),
            rule: get("match_rule"),
            counterparts: get("counterparts"),
            discrepancy: get("discrepancy"),
        };
        let key = (get("close_date"), get("kind"), get("id"));
        let got = all.get(&key).map(verdict);
        let ok = got.as_ref() == Some(&expected);
        let close = rep.closes.entry(key.0.clone()).or_default();
        close.items += 1;
        close.correct += u64::from(ok);
        let s = rep.by_status.entry(expected.status.clone()).or_default();
        s.truth += 1;
        s.correct += u64::from(ok);
        if let Some(g) = &got {
            rep.by_status.entry(g.status.clone()).or_default().predicted += 1;
        }
        if expected.rule == "EXACT_ID" {
            rep.exact_id.truth += 1;
            rep.exact_id.correct += u64::from(ok);
        }
        if !ok {
            rep.wrong.push((
                key.0.clone(),
                key.1.clone(),
                key.2.clone(),
                format!("{expected:?}"),
                format!("{got:?}"),
            ));
        }
        seen.insert(key);
    }
    let extra: Vec<_> = all.iter().filter(|(k, _)| !seen.contains(*k)).collect();
    rep.extra = extra.len() as u64;
    for ((close, kind, id), r) in extra.into_iter().take(20) {
        rep.wrong.push((
            close.clone(),
            kind.clone(),
            id.clone(),
            "no row in truth".into(),
            format!("{:?}", verdict(r)),
        ));
    }
    // Each break's life as the index tells it: the close that first saw it (the row that
    // owns it) and the close that resolved it.
    let mut life: HashMap<&str, (Option<String>, Option<String>)> = HashMap::new();
    for r in all.values() {
        let Some(id) = r.break_id.as_deref() else {
            continue;
        };
        let e = life.entry(id).or_default();
        if let Some(first) = r.first_seen {
            e.0 = Some(first.to_string());
        }
        if let Some(res) = r.resolved_on {
            e.1 = Some(res.to_string());
        }
    }
    for b in read_csv(&data.join("truth/breaks.csv"))? {
        let get = |k: &str| b.get(k).cloned().unwrap_or_default();
        let mismatch: MismatchType = get("mismatch_type").parse()?;
        let id = break_id(&BankId::new(get("bank_id"))?, mismatch, &get("subject"));
        let want = (Some(get("opened_on")), {
            let r = get("resolved_on");
            (!r.is_empty()).then_some(r)
        });
        let got = life.get(id.as_str()).cloned().unwrap_or_default();
        rep.breaks.truth += 1;
        rep.breaks.predicted += u64::from(got.0.is_some());
        let ok = got == want;
        rep.breaks.correct += u64::from(ok);
        if !ok {
            rep.wrong.push((
                get("bank_id"),
                "break".into(),
                format!("{} {}", get("subject"), get("mismatch_type")),
                format!("opened {:?} resolved {:?}", want.0, want.1),
                format!("opened {:?} resolved {:?}", got.0, got.1),
            ));
        }
    }
    Ok(rep)
}

impl DaysReport {
    /// Items over every close, and those right.
    pub fn totals(&self) -> (u64, u64) {
        self.closes
            .values()
            .fold((0, 0), |(i, c), s| (i + s.items, c + s.correct))
    }

    /// The report as JSON (`recon accuracy --json`).
    pub fn to_json(&self) -> Value {
        let (items, correct) = self.totals();
        json!({
            "total": items,
            "correct": correct,
            "accuracy": ratio(correct, items),
            "closes": self.closes.iter().map(|(d, s)| (d.clone(), json!({"items": s.items, "correct": s.correct, "accuracy": ratio(s.correct, s.items)}))).collect::<serde_json::Map<_, _>>(),
            "by_status": self.by_status.iter().map(|(k, t)| (k.clone(), json!({"truth": t.truth, "predicted": t.predicted, "correct": t.correct, "recall": ratio(t.correct, t.truth)}))).collect::<serde_json::Map<_, _>>(),
            "exact_id": {"total": self.exact_id.truth, "correct": self.exact_id.correct, "accuracy": ratio(self.exact_id.correct, self.exact_id.truth)},
            "breaks": {"total": self.breaks.truth, "found": self.breaks.predicted, "lifecycle_correct": self.breaks.correct, "accuracy": ratio(self.breaks.correct, self.breaks.truth)},
            "rows_not_in_truth": self.extra,
            "wrong": self.wrong.iter().take(100).map(|(a, b, c, d, e)| json!({"close": a, "kind": b, "id": c, "expected": d, "actual": e})).collect::<Vec<_>>(),
            "wrong_total": self.wrong.len(),
        })
    }

    /// The report as a table.
    pub fn table(&self) -> String {
        let (items, correct) = self.totals();
        let mut s = format!(
            "accuracy over {} closes: {correct} of {items} items ({}); exact-id {} of {} ({}); break lifecycle {} of {} ({}); rows not in truth {}\n",
            self.closes.len(),
            pct(correct, items),
            self.exact_id.correct,
            self.exact_id.truth,
            pct(self.exact_id.correct, self.exact_id.truth),
            self.breaks.correct,
            self.breaks.truth,
            pct(self.breaks.correct, self.breaks.truth),
            self.extra,
        );
        s.push_str(&format!(
            "{:<12} {:>9} {:>9} {:>10}\n",
            "close", "items", "correct", "accuracy"
        ));
        for (d, c) in &self.closes {
            s.push_str(&format!(
                "{d:<12} {:>9} {:>9} {:>10}\n",
                c.items,
                c.correct,
                pct(c.correct, c.items)
            ));
        }
        s.push_str(&format!(
            "{:<16} {:>9} {:>9} {:>9} {:>10}\n",
            "status", "truth", "predicted", "correct", "recall"
        ));
        for (k, t) in &self.by_status {
            s.push_str(&format!(
                "  {k:<14} {:>9} {:>9} {:>9} {:>10}\n",
                t.truth,
                t.predicted,
                t.correct,
                pct(t.correct, t.truth)
            ));
        }
        for (a, b, c, d, e) in self.wrong.iter().take(20) {
            s.push_str(&format!("  wrong {a} {b} {c}: expected {d}, got {e}\n"));
        }
        s
    }
}
