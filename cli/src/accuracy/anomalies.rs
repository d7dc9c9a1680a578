//! `recon accuracy` of the anomaly flags (design.md §14, docs/anomalies.md): every close's
//! `index/anomalies/` against `truth/anomalies.csv` (knob `anomalies` of the generator), per
//! kind, and the volume forecast's backtest per bank from the last close's report.
//!
//! - **Recall** of a kind: injected anomalies that must raise it, raised on their subject and
//!   date.
//! - **Precision** of a kind: flags of that kind an injected anomaly explains: one on the same
//!   date whose subject is the flag's (or, for a bank's anomaly, the bank of the flagged
//!   merchant) and which may move that kind.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use recon_shared::analytics::forecast::Backtest;
use recon_shared::columnar::read_parquet;
use recon_shared::ids::BusinessDate;
use recon_shared::records::AnomalyKind;
use recon_shared::report::{Flag, ReportData};
use recon_shared::{Error, Result};
use serde_json::{Value, json};

use super::{pct, ratio, read_csv};

/// One kind's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindScore {
    /// Injected anomalies that must raise the kind.
    pub injected: u64,
    /// Of those, raised.
    pub found: u64,
    /// Flags of the kind.
    pub flags: u64,
    /// Of those, explained by an injected anomaly.
    pub explained: u64,
}

/// The anomaly flags' score over a generated world.
#[derive(Debug, Clone, Default)]
pub struct AnomalyReport {
    /// Closes with flags written.
    pub closes: u64,
    /// Per kind.
    pub kinds: BTreeMap<String, KindScore>,
    /// Each bank's forecast backtest (the last close's report).
    pub forecast: Vec<(String, Backtest)>,
    /// (date, level, subject, kind) of flags nothing injected explains.
    pub unexplained: Vec<(String, String, String, String)>,
    /// (date, subject, injected, kind) of injected anomalies not flagged.
    pub missed: Vec<(String, String, String, String)>,
}

struct Truth {
    date: String,
    level: String,
    subject: String,
    bank: String,
    injected: String,
    must: String,
    may: Vec<String>,
}

/// The score, or `None` when the world has no `truth/anomalies.csv`.
pub fn anomaly_accuracy(data: &Path) -> Result<Option<AnomalyReport>> {
    let path = data.join("truth/anomalies.csv");
    if !path.is_file() {
        return Ok(None);
    }
    let truth: Vec<Truth> = read_csv(&path)?
        .into_iter()
        .map(|r| {
            let g = |k: &str| r.get(k).cloned().unwrap_or_default();
            Truth {
                date: g("business_date"),
                level: g("level"),
                subject: g("subject"),
                bank: g("bank_id"),
                injected: g("injected"),
                must: g("must_flag"),
                may: g("may_flag")
                    .split('|')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect();
    let merchant_bank = merchant_banks(data)?;
    let mut flags: Vec<(String, Flag)> = Vec::new();
    let mut closed: HashSet<String> = HashSet::new();
    let dir = data.join("index/anomalies");
    if dir.is_dir() {
        for e in std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(date) = name.strip_prefix("business_date=") else {
                continue;
            };
            let file = e.path().join("part.parquet");
            let bytes = std::fs::read(&file).map_err(|e| Error::io(&file, e))?;
            closed.insert(date.to_string());
            for r in read_parquet::<Flag>(bytes.into())? {
                flags.push((date.to_string(), r));
            }
        }
    }
    let mut report = AnomalyReport {
        closes: closed.len() as u64,
        ..AnomalyReport::default()
    };
    for k in AnomalyKind::ALL {
        report
            .kinds
            .insert(k.as_str().to_string(), KindScore::default());
    }
    let raised: HashSet<(&str, &str, &str, &str)> = flags
        .iter()
        .map(|(d, r)| {
            (
                d.as_str(),
                r.level.as_str(),
                r.subject.as_str(),
                r.kind.as_str(),
            )
        })
        .collect();
    for t in truth
        .iter()
        .filter(|t| !t.must.is_empty() && closed.contains(&t.date))
    {
        let score = report.kinds.entry(t.must.clone()).or_default();
        score.injected += 1;
        if raised.contains(&(
            t.date.as_str(),
            t.level.as_str(),
            t.subject.as_str(),
            t.must.as_str(),
        )) {
            score.found += 1;
        } else {
            report.missed.push((
                t.date.clone(),
                t.subject.clone(),
                t.injected.clone(),
                t.must.clone(),
            ));
        }
    }
    for (date, f) in &flags {
        let kind = f.kind.as_str();
        let explained = truth.iter().any(|t| {
            t.date == *date
                && t.may.iter().any(|m| m == kind)
                && ((t.level == f.level.as_str() && t.subject == f.subject)
                    || (t.level == "BANK"
                        && f.level.as_str() == "MERCHANT"
                        && merchant_bank.get(&f.subject) == Some(&t.bank)))
        });
        let score = report.kinds.entry(kind.to_string()).or_default();
        score.flags += 1;
        if explained {
            score.explained += 1;
        } else {
            report.unexplained.push((
                date.clone(),
                f.level.as_str().into(),
                f.subject.clone(),
                kind.into(),
            ));
        }
    }
    report.unexplained.sort();
    report.missed.sort();
    if let Some(last) = closed.iter().max() {
        let date = BusinessDate::parse(last)?;
        let file = data.join(recon_shared::keys::report_data_key(date));
        if let Ok(bytes) = std::fs::read(&file) {
            let r: ReportData = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Invariant(format!("{}: {e}", file.display())))?;
            report.forecast = r
                .banks
                .into_iter()
                .filter_map(|b| b.backtest.map(|t| (b.bank_id, t)))
                .collect();
        }
    }
    Ok(Some(report))
}

/// Each merchant's acquirer from `config/merchants.jsonl`.
fn merchant_banks(data: &Path) -> Result<HashMap<String, String>> {
    let path = data.join(recon_shared::keys::MERCHANTS);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            Some((
                v.get("merchant_id")?.as_str()?.to_string(),
                v.get("acquirer_bank_id")?.as_str()?.to_string(),
            ))
        })
        .collect())
}

impl AnomalyReport {
    /// As JSON (`recon accuracy --json`, member `anomalies`).
    pub fn to_json(&self) -> Value {
        json!({
            "closes": self.closes,
            "kinds": self.kinds.iter().map(|(k, s)| (k.clone(), json!({
                "injected": s.injected, "found": s.found, "recall": ratio(s.found, s.injected),
                "flags": s.flags, "explained": s.explained, "precision": ratio(s.explained, s.flags),
            }))).collect::<serde_json::Map<_, _>>(),
            "forecast": self.forecast.iter().map(|(b, t)| (b.clone(), json!(t))).collect::<serde_json::Map<_, _>>(),
            "unexplained": self.unexplained.iter().map(|(d, l, s, k)| json!({"date": d, "level": l, "subject": s, "kind": k})).collect::<Vec<_>>(),
            "missed": self.missed.iter().map(|(d, s, i, k)| json!({"date": d, "subject": s, "injected": i, "kind": k})).collect::<Vec<_>>(),
        })
    }

    /// As a table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "anomaly flags over {} closes\n{:<16} {:>9} {:>7} {:>9} {:>7} {:>10} {:>10}\n",
            self.closes, "kind", "injected", "found", "recall", "flags", "explained", "precision"
        );
        for (k, v) in &self.kinds {
            s.push_str(&format!(
                "{k:<16} {:>9} {:>7} {:>9} {:>7} {:>10} {:>10}\n",
                v.injected,
                v.found,
                pct(v.found, v.injected),
                v.flags,
                v.explained,
                pct(v.explained, v.flags)
            ));
        }
        for (d, l, sub, k) in self.unexplained.iter().take(20) {
            s.push_str(&format!("  unexplained flag {d} {l} {sub} {k}\n"));
        }
        for (d, sub, i, k) in self.missed.iter().take(20) {
            s.push_str(&format!("  missed {d} {sub} {i}: no {k} flag\n"));
        }
        s.push_str(&format!("volume forecast, backtest per bank (MAPE; naive = same weekday a week before)\n{:<10} {:>6} {:>8} {:>8} {:>10}\n", "bank", "days", "method", "naive", "in 80 %"));
        for (b, t) in &self.forecast {
            s.push_str(&format!(
                "{b:<10} {:>6} {:>7}% {:>7}% {:>9}%\n",
                t.points, t.mape, t.naive_mape, t.coverage
            ));
        }
        s
    }
}
