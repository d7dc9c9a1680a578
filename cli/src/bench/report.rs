//! `recon bench report`: the report of a closed day as a reader gets it. Its weight, the time
//! to write it from its data (in process), and the time headless Chromium takes to load and
//! lay it out (`performance` navigation entry, load event end), over several loads.

use std::path::Path;
use std::time::Instant;

use recon_shared::ids::BusinessDate;
use recon_shared::keys::{report_data_key, report_key};
use recon_shared::report::{ReportData, html};
use recon_shared::{Error, Result};

use crate::browser::Browser;

/// What the page is made of, for the table.
const SHAPE: &str = "(() => ({svg: document.querySelectorAll('svg').length, rows: document.querySelectorAll('tr').length, nodes: document.getElementsByTagName('*').length}))()";

/// Measures the report of `date` under `data` with the Chromium at `chromium`, `loads` times.
pub fn bench_report(
    data: &Path,
    date: BusinessDate,
    chromium: &Path,
    loads: usize,
) -> Result<String> {
    let page = data.join(report_key(date));
    let bytes = std::fs::metadata(&page)
        .map_err(|e| Error::io(&page, e))?
        .len();
    let json = data.join(report_data_key(date));
    let report: ReportData =
        serde_json::from_slice(&std::fs::read(&json).map_err(|e| Error::io(&json, e))?)?;
    // Writing the page from its data, in process: the best of 20.
    let mut write_us = u128::MAX;
    for _ in 0..20 {
        let t = Instant::now();
        let html = html::render(&report);
        write_us = write_us.min(t.elapsed().as_micros());
        std::hint::black_box(html);
    }
    let err = |e: String| Error::Invariant(format!("chromium: {e}"));
    let mut browser = Browser::launch(chromium).map_err(err)?;
    let mut loads_ms = Vec::new();
    let mut shape = serde_json::Value::Null;
    for _ in 0..loads.max(1) {
        let r = browser.render(&page, 1280, 900, SHAPE).map_err(err)?;
        if r.requests != [r.url.clone()] || !r.errors.is_empty() {
            return Err(Error::Invariant(format!(
                "the page asked for {:?} ({:?})",
                r.requests, r.errors
            )));
        }
        loads_ms.push(r.load_ms);
        shape = r.value;
    }
    loads_ms.sort_unstable();
    let median = loads_ms[loads_ms.len() / 2];
    let worst = loads_ms[loads_ms.len() - 1];
    let payments: u64 = report
        .banks
        .iter()
        .filter_map(|b| {
            b.history
                .last()
                .filter(|p| p.date == date.date())
                .map(|p| p.payments)
        })
        .sum();
    let closes = report
        .banks
        .iter()
        .map(|b| b.history.len())
        .max()
        .unwrap_or(0);
    Ok(format!(
        "report of {date}: {payments} payments, {} banks, {closes} closes of history, {} flags\n  {:<34} {:>12}\n  {:<34} {:>12}\n  {:<34} {:>12}\n  {:<34} {:>12}\n  {:<34} {:>12}\n  {:<34} {:>12}\n",
        report.banks.len(),
        report.anomalies.len(),
        "page weight (target < 2 MB)",
        format!("{} KB", bytes / 1024),
        "written from its data (best of 20)",
        format!("{write_us} µs"),
        format!("Chromium load, median of {}", loads_ms.len()),
        format!("{median} ms"),
        "Chromium load, worst (target < 1 s)",
        format!("{worst} ms"),
        "charts (svg)",
        shape["svg"].to_string(),
        "table rows / DOM nodes",
        format!("{} / {}", shape["rows"], shape["nodes"]),
    ))
}
