//! `recon accuracy`: the index against the generator's truth, per status and per match rule.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use recon_shared::columnar::read_parquet;
use recon_shared::reconcile::{IndexRow, RowKind};
use recon_shared::{Error, Result};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

pub mod anomalies;
mod days;
pub use days::{DaysReport, accuracy_days};

/// The outcome of one transaction or line, as truth states it or the index found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub status: String,
    pub mismatch: String,
    pub rule: String,
    /// Counterpart ids, sorted and `|`-joined.
    pub counterparts: String,
    pub discrepancy: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub truth: u64,
    pub predicted: u64,
    pub correct: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub total: u64,
    pub correct: u64,
    pub by_status: BTreeMap<String, Tally>,
    pub by_rule: BTreeMap<String, Tally>,
    pub exact_id: Tally,
    /// (kind, id, expected, actual)
    pub wrong: Vec<(String, String, Verdict, Option<Verdict>)>,
}

fn ratio(a: u64, b: u64) -> Decimal {
    if b == 0 {
        return Decimal::ONE;
    }
    (Decimal::from(a) / Decimal::from(b)).round_dp(6)
}

fn pct(a: u64, b: u64) -> String {
    format!("{:.3}%", ratio(a, b) * Decimal::ONE_HUNDRED)
}

fn read_csv(path: &Path) -> Result<Vec<HashMap<String, String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(recon_generator::truth::csv_rows(&text))
}

fn sorted_ids(ids: &[String]) -> String {
    let mut v = ids.to_vec();
    v.sort();
    v.join("|")
}

/// Every row of every batch index file under `data`.
fn batch_index_rows(data: &Path) -> Result<Vec<IndexRow>> {
    let mut out = Vec::new();
    let mut stack = vec![data.join(recon_shared::keys::BATCH_INDEX)];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            out.extend(read_parquet::<IndexRow>(bytes::Bytes::from(b))?);
        }
    }
    Ok(out)
}

/// Compares `index/batch` with `truth/` under `data`.
pub fn accuracy(data: &Path) -> Result<Report> {
    let mut txn_rows: HashMap<String, Verdict> = HashMap::new();
    let mut line_rows: HashMap<String, Verdict> = HashMap::new();
    for r in batch_index_rows(data)? {
        let v = |counterparts: &[String]| Verdict {
            status: r.reconciled_status.to_string(),
            mismatch: r.mismatch_type.to_string(),
            rule: r.match_rule.to_string(),
            counterparts: sorted_ids(counterparts),
            discrepancy: r.discrepancy.map(|d| d.to_string()).unwrap_or_default(),
        };
        match r.row_kind {
            RowKind::Transaction => {
                let id = r
                    .transaction_id
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                txn_rows.insert(id, v(&r.statement_ids));
            }
            RowKind::StatementLine => {
                let id = r.statement_ids.first().cloned().unwrap_or_default();
                line_rows.insert(id, v(&r.transaction_ids));
            }
        }
    }
    let mut rep = Report::default();
    for (kind, file, id_col, cp_col, actual) in [
        (
            "transaction",
            "truth/transactions.csv",
            "transaction_id",
            "statement_ids",
            &txn_rows,
        ),
        (
            "statement_line",
            "truth/statement_lines.csv",
            "statement_id",
            "transaction_ids",
            &line_rows,
        ),
    ] {
        for t in read_csv(&data.join(file))? {
            let get = |k: &str| t.get(k).cloned().unwrap_or_default();
            let expected = Verdict {
                status: get("reconciled_status"),
                mismatch: get("mismatch_type"),
                rule: get("match_rule"),
                counterparts: get(cp_col),
                discrepancy: get("discrepancy"),
            };
            let id = get(id_col);
            let got = actual.get(&id).cloned();
            let ok = got.as_ref() == Some(&expected);
            rep.total += 1;
            rep.correct += u64::from(ok);
            rep.by_status
                .entry(expected.status.clone())
                .or_default()
                .truth += 1;
            rep.by_rule.entry(expected.rule.clone()).or_default().truth += 1;
            if let Some(g) = &got {
                rep.by_status.entry(g.status.clone()).or_default().predicted += 1;
                rep.by_rule.entry(g.rule.clone()).or_default().predicted += 1;
                if g.status == expected.status {
                    rep.by_status.entry(g.status.clone()).or_default().correct += 1;
                }
                if g.rule == expected.rule && g.counterparts == expected.counterparts {
                    rep.by_rule.entry(g.rule.clone()).or_default().correct += 1;
                }
            }
            if expected.rule == "EXACT_ID" {
                rep.exact_id.truth += 1;
                rep.exact_id.correct += u64::from(ok);
            }
            if !ok {
                rep.wrong.push((kind.to_string(), id, expected, got));
            }
        }
    }
    Ok(rep)
}

impl Report {
    pub fn to_json(&self) -> Value {
        let tallies = |m: &BTreeMap<String, Tally>| -> Value {
            m.iter()
                .map(|(k, t)| {
                    (k.clone(), json!({"truth": t.truth, "predicted": t.predicted, "correct": t.correct,
                        "precision": ratio(t.correct, t.predicted), "recall": ratio(t.correct, t.truth)}))
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        json!({
            "total": self.total,
            "correct": self.correct,
            "accuracy": ratio(self.correct, self.total),
            "exact_id": {"total": self.exact_id.truth, "correct": self.exact_id.correct, "accuracy": ratio(self.exact_id.correct, self.exact_id.truth)},
            "by_status": tallies(&self.by_status),
            "by_rule": tallies(&self.by_rule),
            "wrong": self.wrong.iter().take(100).map(|(k, id, e, a)| json!({"kind": k, "id": id, "expected": e, "actual": a})).collect::<Vec<_>>(),
            "wrong_total": self.wrong.len(),
        })
    }

    pub fn table(&self) -> String {
        let mut s = format!(
            "accuracy: {} of {} correct ({}); exact-id cases {} of {} ({})\n",
            self.correct,
            self.total,
            pct(self.correct, self.total),
            self.exact_id.correct,
            self.exact_id.truth,
            pct(self.exact_id.correct, self.exact_id.truth)
        );
        for (title, m) in [("status", &self.by_status), ("match rule", &self.by_rule)] {
            s.push_str(&format!(
                "{title:<16} {:>9} {:>9} {:>9} {:>10} {:>10}\n",
                "truth", "predicted", "correct", "precision", "recall"
            ));
            for (k, t) in m {
                s.push_str(&format!(
                    "  {k:<14} {:>9} {:>9} {:>9} {:>10} {:>10}\n",
                    t.truth,
                    t.predicted,
                    t.correct,
                    pct(t.correct, t.predicted),
                    pct(t.correct, t.truth)
                ));
            }
        }
        for (k, id, e, a) in self.wrong.iter().take(20) {
            s.push_str(&format!("  wrong {k} {id}: expected {e:?}, got {a:?}\n"));
        }
        s
    }
}
