//! The report page: one HTML file with its style inline, charts as inline SVG and a table
//! behind each chart. Its Content-Security-Policy allows no script and no request, so the page
//! reads the same offline, from a mail attachment or from the bucket.

use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::svg::{self, Series};
use super::{BankSection, ReportData};
use crate::analytics::{AGING_LABELS, variance_lines};
use crate::records::{AnomalyKind, Direction};

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1280px;padding:0 24px 48px;color:#1b1f24;background:#fff}
h1{font-size:24px;margin:24px 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
nav a{margin-right:14px}a{color:#0a5dc2}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.tile{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:120px}
.tile b{display:block;font-size:20px}.tile.alert{border:2px solid #9a1b1b}
.multiples{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0}figcaption{font-weight:600;font-size:13px}
.chart{background:#fafbfc;border:1px solid #e1e4e8}.axis{stroke:#57606a;stroke-width:1}.tick{font-size:10px;fill:#57606a}
.line{fill:none;stroke:#0a5dc2;stroke-width:1.6}.dot{fill:#0a5dc2}.flag{fill:#9a1b1b}.bar{fill:#57606a}
.band{fill:#0a5dc2;fill-opacity:.15;stroke:#0a5dc2;stroke-dasharray:3 2}
.seg{stroke:#1b1f24;stroke-width:.5}.s0{fill:#e8eef6}.s1{fill:#b9cde5}.s2{fill:#7fa3cf}.s3{fill:#3f6ea8}.s4{fill:#1b3a66}
.seg-label{font-size:10px;fill:#1b1f24;paint-order:stroke;stroke:#fff;stroke-width:2px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
td.n,th.n{text-align:right}caption{text-align:left;font-weight:600;padding:4px 0}details{margin:6px 0 12px}summary{cursor:pointer;color:#0a5dc2}
.high{font-weight:700}.muted{color:#57606a}
@media print{details{display:block}details>*{display:block}}
";

/// `s` with the five HTML special characters escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `n` with a thin space between thousands (12 345 678).
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

/// A ratio as a percentage with `dp` decimals.
pub fn pct(r: Decimal, dp: u32) -> String {
    format!("{}\u{a0}%", (r * Decimal::ONE_HUNDRED).round_dp(dp))
}

fn opt_pct(r: Option<Decimal>) -> String {
    r.map(|r| pct(r, 1)).unwrap_or_else(|| "–".into())
}

fn kind_label(k: AnomalyKind) -> &'static str {
    match k {
        AnomalyKind::Volume => "payments",
        AnomalyKind::MismatchRate => "breaks per item decided",
        AnomalyKind::FeeVariance => "lines with a fee variance",
        AnomalyKind::BreakCount => "breaks opened",
    }
}

fn figure_value(k: AnomalyKind, v: Decimal) -> String {
    match k {
        AnomalyKind::Volume | AnomalyKind::BreakCount => v.round_dp(1).normalize().to_string(),
        AnomalyKind::MismatchRate | AnomalyKind::FeeVariance => pct(v, 2),
    }
}

/// A table with a caption, header cells (a trailing `#` marks a numeric column) and rows.
fn table(out: &mut String, id: &str, caption: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(
        out,
        r#"<table id="{id}"><caption>{}</caption><thead><tr>"#,
        esc(caption)
    );
    let numeric: Vec<bool> = head.iter().map(|h| h.ends_with('#')).collect();
    for h in head {
        let n = h.ends_with('#');
        let _ = write!(
            out,
            r#"<th scope="col"{}>{}</th>"#,
            if n { r#" class="n""# } else { "" },
            esc(h.trim_end_matches('#'))
        );
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let n = numeric.get(i).copied().unwrap_or(false);
            let _ = write!(out, "<td{}>{c}</td>", if n { r#" class="n""# } else { "" });
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// A chart with its caption (one bank of a row of small multiples).
fn figure(out: &mut String, caption: &str, chart: &str) {
    let _ = write!(
        out,
        "<figure><figcaption>{}</figcaption>{chart}</figure>",
        esc(caption)
    );
}

/// A table behind a chart: folded, the chart's data as numbers.
fn behind(out: &mut String, id: &str, caption: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(out, "<details><summary>Table: {}</summary>", esc(caption));
    table(out, id, caption, head, rows);
    out.push_str("</details>");
}

fn short(d: chrono::NaiveDate) -> String {
    d.format("%m-%d").to_string()
}

fn flagged_on(data: &ReportData, bank: &str, kinds: &[AnomalyKind]) -> bool {
    data.anomalies
        .iter()
        .any(|a| a.subject == bank && kinds.contains(&a.kind))
}

fn tiles(out: &mut String, data: &ReportData) {
    let today = |b: &BankSection| {
        b.history
            .last()
            .filter(|p| p.date == data.business_date)
            .cloned()
    };
    let days: Vec<_> = data.banks.iter().filter_map(today).collect();
    let payments: u64 = days.iter().map(|p| p.payments).sum();
    let lines: u64 = days.iter().map(|p| p.lines).sum();
    let matched: Decimal = days
        .iter()
        .filter_map(|p| p.match_rate.map(|r| r * Decimal::from(p.lines)))
        .sum();
    let open: u64 = days.iter().map(|p| p.open_breaks).sum();
    let new: u64 = days.iter().map(|p| p.new_breaks).sum();
    let rate = (lines > 0).then(|| matched / Decimal::from(lines));
    out.push_str(r#"<div class="tiles" id="headline">"#);
    let mut tile = |key: &str, label: &str, value: String, alert: bool| {
        let _ = write!(
            out,
            r#"<div class="tile{}" data-figure="{key}"><b>{value}</b>{}</div>"#,
            if alert { " alert" } else { "" },
            esc(label)
        );
    };
    tile(
        "status",
        "close status",
        esc(&data.status),
        data.status != "SUCCEEDED",
    );
    tile("payments", "payments of the day", count(payments), false);
    tile("lines", "statement lines", count(lines), false);
    tile("match_rate", "lines matched", opt_pct(rate), false);
    tile("new_breaks", "breaks opened", count(new), false);
    tile("open_breaks", "breaks open", count(open), false);
    tile(
        "anomalies",
        "anomaly flags",
        count(data.anomalies.len() as u64),
        !data.anomalies.is_empty(),
    );
    tile(
        "awaiting",
        "deliveries awaited",
        count(data.awaiting.len() as u64),
        !data.awaiting.is_empty(),
    );
    out.push_str("</div>");
}

fn anomalies(out: &mut String, data: &ReportData) {
    out.push_str(r#"<section id="anomalies"><h2>Anomaly flags</h2>"#);
    let _ = write!(
        out,
        r#"<p class="muted">Each bank's and merchant's figure against its own last 8 weeks (weekday-adjusted median and spread; docs/anomalies.md). {} figures judged, {} not judged (too little history or too few events).</p>"#,
        count(data.coverage.judged),
        count(data.coverage.not_judged)
    );
    if data.anomalies.is_empty() {
        out.push_str(r#"<p id="no-anomalies">No figure is unusual today.</p></section>"#);
        return;
    }
    let rows: Vec<Vec<String>> = data
        .anomalies
        .iter()
        .map(|a| {
            let arrow = if a.direction == Direction::High {
                "▲ high"
            } else {
                "▼ low"
            };
            vec![
                esc(a.level.as_str()),
                esc(&a.subject),
                format!(
                    "{} <span class=\"muted\">({})</span>",
                    esc(a.kind.as_str()),
                    kind_label(a.kind)
                ),
                format!(r#"<span class="high">{arrow}</span>"#),
                figure_value(a.kind, a.value),
                figure_value(a.kind, a.expected),
                a.score.to_string(),
                a.history.to_string(),
            ]
        })
        .collect();
    table(
        out,
        "anomaly-table",
        "Flags: banks first, then merchants, strongest first",
        &[
            "level",
            "subject",
            "kind",
            "direction",
            "value#",
            "expected#",
            "score#",
            "closes of history#",
        ],
        &rows,
    );
    out.push_str("</section>");
}

fn y_range(values: impl Iterator<Item = Decimal>) -> (Decimal, Decimal) {
    let hi = values.fold(Decimal::ZERO, Decimal::max);
    (
        Decimal::ZERO,
        if hi > Decimal::ZERO { hi } else { Decimal::ONE },
    )
}

fn match_rates(out: &mut String, data: &ReportData) {
    out.push_str(r#"<section id="match-rate"><h2>Match rate per bank, last 30 closes</h2><p class="muted">Share of each close's statement lines matched. A square marks the close of today when one of its figures is flagged.</p><div class="multiples">"#);
    let mut rows = Vec::new();
    for b in &data.banks {
        let points: Vec<(String, Option<Decimal>, String)> = b
            .history
            .iter()
            .map(|p| {
                (
                    short(p.date),
                    p.match_rate,
                    format!("{} {}", p.date, opt_pct(p.match_rate)),
                )
            })
            .collect();
        let mut marked = vec![false; points.len()];
        if let Some(m) = marked.last_mut() {
            *m = flagged_on(
                data,
                &b.bank_id,
                &[AnomalyKind::MismatchRate, AnomalyKind::BreakCount],
            );
        }
        let rates: Vec<Decimal> = b.history.iter().filter_map(|p| p.match_rate).collect();
        let lo = rates
            .iter()
            .copied()
            .fold(Decimal::ONE, Decimal::min)
            .min(Decimal::new(9, 1));
        let s = Series {
            points: &points,
            range: (lo, Decimal::ONE),
            labels: (pct(lo, 0), "100\u{a0}%".into()),
        };
        figure(
            out,
            &b.bank_id,
            &svg::line(
                &format!("mr-{}", b.bank_id),
                &format!("{} match rate", b.bank_id),
                &format!(
                    "Share of statement lines matched at each of the last {} closes of {}",
                    b.history.len(),
                    b.bank_id
                ),
                &s,
                &marked,
            ),
        );
        for p in &b.history {
            rows.push(vec![
                esc(&b.bank_id),
                p.date.to_string(),
                count(p.lines),
                opt_pct(p.match_rate),
            ]);
        }
    }
    out.push_str("</div>");
    behind(
        out,
        "match-rate-table",
        "Match rate per bank and close",
        &["bank", "close", "lines#", "matched#"],
        &rows,
    );
    out.push_str("</section>");
}

fn breaks(out: &mut String, data: &ReportData) {
    out.push_str(r#"<section id="breaks"><h2>Breaks per bank, last 30 closes</h2><p class="muted">Bars: breaks each close opened. The table adds the breaks open after it.</p><div class="multiples">"#);
    let mut rows = Vec::new();
    for b in &data.banks {
        let points: Vec<(String, Option<Decimal>, String)> = b
            .history
            .iter()
            .map(|p| {
                (
                    short(p.date),
                    Some(Decimal::from(p.new_breaks)),
                    format!(
                        "{}: {} opened, {} open",
                        p.date, p.new_breaks, p.open_breaks
                    ),
                )
            })
            .collect();
        let range = y_range(points.iter().filter_map(|p| p.1));
        let s = Series {
            points: &points,
            range,
            labels: ("0".into(), range.1.to_string()),
        };
        figure(
            out,
            &b.bank_id,
            &svg::bars(
                &format!("br-{}", b.bank_id),
                &format!("{} breaks opened", b.bank_id),
                &format!(
                    "Breaks opened at each of the last {} closes of {}",
                    b.history.len(),
                    b.bank_id
                ),
                &s,
            ),
        );
        for p in &b.history {
            rows.push(vec![
                esc(&b.bank_id),
                p.date.to_string(),
                count(p.new_breaks),
                count(p.open_breaks),
            ]);
        }
    }
    out.push_str("</div>");
    behind(
        out,
        "breaks-table",
        "Breaks per bank and close",
        &["bank", "close", "opened#", "open after the close#"],
        &rows,
    );
    out.push_str("</section>");
}

fn aging(out: &mut String, data: &ReportData) {
    out.push_str(r#"<section id="aging"><h2>Break aging</h2><p class="muted">Open breaks after the close by days open; each segment carries its count.</p>"#);
    let rows: Vec<(String, Vec<u64>)> = data
        .banks
        .iter()
        .map(|b| (b.bank_id.clone(), b.aging.to_vec()))
        .collect();
    out.push_str(&svg::stacked(
        "aging-chart",
        "Open breaks by age",
        "Open breaks of each bank after the close, by days open",
        &rows,
        &AGING_LABELS,
    ));
    let table_rows: Vec<Vec<String>> = data
        .banks
        .iter()
        .map(|b| {
            let mut r = vec![esc(&b.bank_id)];
            r.extend(b.aging.iter().map(|n| count(*n)));
            r.push(count(b.aging.iter().sum()));
            r
        })
        .collect();
    let mut head = vec!["bank"];
    let labels: Vec<String> = AGING_LABELS.iter().map(|l| format!("{l}#")).collect();
    head.extend(labels.iter().map(String::as_str));
    head.push("open#");
    behind(
        out,
        "aging-table",
        "Open breaks by bank and age",
        &head,
        &table_rows,
    );
    out.push_str("</section>");
}

fn largest(out: &mut String, data: &ReportData) {
    out.push_str(r#"<section id="largest"><h2>Largest open discrepancies</h2><p class="muted">Among the breaks this close holds: those it opened and the open items it carried. Every open break is in <code>GET /breaks</code> and <code>recon breaks list</code>.</p>"#);
    if data.largest_open.is_empty() {
        out.push_str("<p>No open break has a discrepancy.</p></section>");
        return;
    }
    let rows: Vec<Vec<String>> = data
        .largest_open
        .iter()
        .map(|d| {
            vec![
                esc(&d.break_id),
                esc(&d.bank_id),
                esc(d.merchant_id.as_deref().unwrap_or("–")),
                esc(d.mismatch_type.as_str()),
                esc(d.currency.code()),
                d.discrepancy.to_string(),
                d.age_days
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "–".into()),
            ]
        })
        .collect();
    table(
        out,
        "largest-table",
        "Per currency, largest first (posted minus expected)",
        &[
            "break",
            "bank",
            "merchant",
            "kind",
            "currency",
            "discrepancy#",
            "days open#",
        ],
        &rows,
    );
    out.push_str("</section>");
}

fn fees(out: &mut String, data: &ReportData) {
    out.push_str(r#"<section id="fees"><h2>Fee variance by bank</h2><p class="muted">Share of the day's statement lines charged another fee than the fee rules give, and the amounts.</p>"#);
    let mut points = Vec::new();
    let mut rows = Vec::new();
    for b in &data.banks {
        let (v, n) = variance_lines(b.fees.iter().map(|(_, f)| f));
        let share = crate::analytics::stats::ratio(v, n);
        points.push((
            b.bank_id.clone(),
            share,
            format!("{}: {}", b.bank_id, opt_pct(share)),
        ));
        for (c, f) in &b.fees {
            rows.push(vec![
                esc(&b.bank_id),
                esc(c.code()),
                count(f.lines),
                count(f.lines_with_variance),
                opt_pct(f.share()),
                f.charged.to_string(),
                f.variance.to_string(),
            ]);
        }
    }
    let range = y_range(points.iter().filter_map(|p| p.1));
    let s = Series {
        points: &points,
        range,
        labels: ("0".into(), pct(range.1, 1)),
    };
    out.push_str(&svg::bars(
        "fee-chart",
        "Fee variance by bank",
        "Share of each bank's lines of the day with a fee variance",
        &s,
    ));
    table(
        out,
        "fees-table",
        "Fees of the day's lines",
        &[
            "bank",
            "currency",
            "lines#",
            "with a variance#",
            "share#",
            "fees charged#",
            "variance (absolute)#",
        ],
        &rows,
    );
    out.push_str("</section>");
}

fn awaiting(out: &mut String, data: &ReportData) {
    out.push_str(r#"<section id="awaiting"><h2>Deliveries awaiting</h2>"#);
    if data.awaiting.is_empty() {
        out.push_str("<p>Every statement due is in.</p></section>");
        return;
    }
    let rows: Vec<Vec<String>> = data
        .awaiting
        .iter()
        .map(|a| vec![a.business_date.to_string(), esc(&a.bank_id), esc(&a.reason)])
        .collect();
    table(
        out,
        "awaiting-table",
        "Statements the close could not use: their partitions wait",
        &["business date", "bank", "reason"],
        &rows,
    );
    out.push_str("</section>");
}

fn forecasts(out: &mut String, data: &ReportData) {
    out.push_str(r#"<section id="forecast"><h2>Volume forecast, next 7 business days</h2><p class="muted">Payments per day: the last 4 weeks, then the forecast (squares) with its 80&nbsp;% interval (hatched), from the method's own past errors. The backtest compares it with the same weekday a week before.</p><div class="multiples">"#);
    let mut rows = Vec::new();
    let mut scores = Vec::new();
    for b in &data.banks {
        let hist: Vec<(String, Decimal)> = b
            .history
            .iter()
            .rev()
            .take(28)
            .rev()
            .map(|p| (short(p.date), Decimal::from(p.payments)))
            .collect();
        let ahead: Vec<svg::Ahead> = b
            .forecast
            .iter()
            .map(|f| (short(f.date), f.expected, f.low.zip(f.high)))
            .collect();
        let range = y_range(
            hist.iter()
                .map(|h| h.1)
                .chain(ahead.iter().map(|a| a.2.map_or(a.1, |(_, hi)| hi))),
        );
        figure(
            out,
            &b.bank_id,
            &svg::forecast(
                &format!("fc-{}", b.bank_id),
                &format!("{} payments and forecast", b.bank_id),
                &format!(
                    "Payments of {} over the last closes and the forecast of its next {} business days",
                    b.bank_id,
                    b.forecast.len()
                ),
                &hist,
                &ahead,
                ("0".into(), range.1.round_dp(0).to_string()),
                range,
            ),
        );
        for f in &b.forecast {
            let over = b
                .lambda_limit
                .is_some_and(|l| f.high.unwrap_or(f.expected) > Decimal::from(l));
            rows.push(vec![
                esc(&b.bank_id),
                f.date.to_string(),
                f.expected.round_dp(0).to_string(),
                f.low.map(|v| v.to_string()).unwrap_or_else(|| "–".into()),
                f.high.map(|v| v.to_string()).unwrap_or_else(|| "–".into()),
                if over {
                    "<b>beyond the Lambda path: EMR</b>".into()
                } else {
                    "Lambda".into()
                },
            ]);
        }
        if let Some(t) = &b.backtest {
            scores.push(vec![
                esc(&b.bank_id),
                count(u64::from(t.points)),
                format!("{}\u{a0}%", t.mape),
                format!("{}\u{a0}%", t.naive_mape),
                format!("{}\u{a0}%", t.coverage),
            ]);
        }
    }
    out.push_str("</div>");
    behind(
        out,
        "forecast-table",
        "Forecast per bank and day",
        &[
            "bank",
            "day",
            "payments expected#",
            "80 % low#",
            "80 % high#",
            "route",
        ],
        &rows,
    );
    table(
        out,
        "backtest-table",
        "Backtest on each bank's history (mean absolute percentage error)",
        &[
            "bank",
            "days forecast#",
            "method#",
            "same weekday last week#",
            "inside the 80 % interval#",
        ],
        &scores,
    );
    out.push_str("</section>");
}

/// The page of `data`.
pub fn render(data: &ReportData) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("Daily close {} · reconciliation report", data.business_date);
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{t}</title><style>{STYLE}</style></head><body><header><h1>{t}</h1><p class="muted">Execution {e}. Figures from the close's batch index; every chart has its table.</p></header>"#,
        t = esc(&title),
        e = esc(&data.execution)
    );
    out.push_str(r##"<nav aria-label="sections"><a href="#anomalies">Anomalies</a><a href="#match-rate">Match rate</a><a href="#breaks">Breaks</a><a href="#aging">Aging</a><a href="#largest">Largest discrepancies</a><a href="#fees">Fees</a><a href="#awaiting">Awaiting</a><a href="#forecast">Forecast</a></nav><main>"##);
    tiles(&mut out, data);
    if !data.failed.is_empty() {
        out.push_str(r#"<section id="failed"><h2>Failed partitions</h2>"#);
        let rows: Vec<Vec<String>> = data
            .failed
            .iter()
            .map(|f| vec![f.business_date.to_string(), esc(&f.bank_id), esc(&f.error)])
            .collect();
        table(
            &mut out,
            "failed-table",
            "Partitions the close could not reconcile: redrive after the fix",
            &["business date", "bank", "error"],
            &rows,
        );
        out.push_str("</section>");
    }
    anomalies(&mut out, data);
    match_rates(&mut out, data);
    breaks(&mut out, data);
    aging(&mut out, data);
    largest(&mut out, data);
    fees(&mut out, data);
    awaiting(&mut out, data);
    forecasts(&mut out, data);
    out.push_str("</main>");
    if !data.notes.is_empty() {
        out.push_str(r#"<footer><h2>Notes</h2><ul id="notes">"#);
        for n in &data.notes {
            let _ = write!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ul></footer>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests;
