//! The daily report as a person sees it (design.md §14): 33 days of one world with injected
//! anomalies, closed day after day through the real pipeline; the last close's page opened in
//! headless Chromium (`RECON_CHROMIUM`, installed and exported by `scripts/with-chromium.sh`):
//! its charts and tables are there, nothing leaves the page, a PNG screenshot is saved under
//! the test's output, and what the page says matches a small golden summary and the typed
//! data of the close (`report.json`, `GET /anomalies`). The flags of the 33 days meet the
//! accuracy targets against the injected truth.
//!
//! After an intended change of the page, `RECON_BLESS=1` re-records the golden summary.

mod common;

use std::path::{Path, PathBuf};

use common::tmp;
use recon_cli::browser::Browser;
use recon_generator::{GenerateConfig, Knobs, generate};
use recon_shared::ids::BusinessDate;
use recon_shared::keys::{report_data_key, report_key};
use recon_shared::report::ReportData;
use recon_shared::{Error, Result};
use serde_json::Value;

const FIRST: &str = "2026-10-01";
const LAST: &str = "2026-11-02";
const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/golden/report-summary.json"
);

/// What the test reads off the rendered page (the DOM, after layout).
const CHECK: &str = r#"(() => {
  const text = e => e ? e.textContent.trim() : null;
  const tiles = {};
  document.querySelectorAll('[data-figure]').forEach(t => { tiles[t.dataset.figure] = text(t.querySelector('b')); });
  const tables = {};
  document.querySelectorAll('table').forEach(t => { tables[t.id] = t.tBodies[0].rows.length; });
  const charts = [...document.querySelectorAll('svg.chart')];
  return {
    title: document.title,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    tiles,
    tables,
    anomalies: [...document.querySelectorAll('#anomaly-table tbody tr')].map(r => [...r.cells].slice(0, 4).map(text)),
    banks: [...document.querySelectorAll('#match-rate figcaption')].map(text),
    charts: charts.length,
    charts_named: charts.filter(c => c.getAttribute('role') === 'img' && c.querySelector('title') && c.querySelector('desc')).length,
    charts_drawn: charts.filter(c => c.getBBox().width > 0 && c.querySelectorAll('path, rect, circle, polygon').length > 0).length,
    tables_behind_charts: [...document.querySelectorAll('section')].filter(s => s.querySelector('svg')).every(s => s.querySelector('table')),
  };
})()"#;

/// 33 days of the six-bank world, 10 % of its bank-days after the warm-up with an anomaly.
fn month(dir: &Path) -> Result<()> {
    let mut knobs = Knobs::multi_day();
    knobs.set("anomalies=0.1")?;
    generate(&GenerateConfig {
        out: dir.to_path_buf(),
        date: BusinessDate::parse(FIRST)?,
        transactions: 1500,
        banks: 6,
        seed: 5,
        knobs,
        force: true,
        days: 33,
    })?;
    common::run_quietly(dir, FIRST, Some(LAST))?;
    Ok(())
}

fn chromium() -> Result<PathBuf> {
    std::env::var_os("RECON_CHROMIUM")
        .map(PathBuf::from)
        .ok_or_else(|| Error::InvalidConfig {
            name: "RECON_CHROMIUM".into(),
            reason: "the browser test needs Chromium: run it under scripts/with-chromium.sh (make test does)".into(),
        })
}

fn browser_error(e: String) -> Error {
    Error::Invariant(format!("chromium: {e}"))
}

#[test]
fn the_report_of_a_close_reads_in_a_real_browser_and_asks_for_nothing() -> Result<()> {
    let dir = tmp()?;
    month(dir.path())?;
    let last = BusinessDate::parse(LAST)?;
    let page = dir.path().join(report_key(last));
    let mut browser = Browser::launch(&chromium()?).map_err(browser_error)?;
    let seen = browser
        .render(&page, 1280, 900, CHECK)
        .map_err(browser_error)?;

    // Nothing leaves the page: its own document is the only request, and nothing was refused.
    assert_eq!(
        seen.requests,
        vec![seen.url.clone()],
        "the page asked for more than itself"
    );
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);

    // A screenshot for people, under the test's output.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&shots).map_err(|e| Error::io(&shots, e))?;
    let png = shots.join(format!("report-{LAST}.png"));
    std::fs::write(&png, &seen.png).map_err(|e| Error::io(&png, e))?;
    assert!(
        seen.png.starts_with(b"\x89PNG") && seen.png.len() > 50_000,
        "{} bytes",
        seen.png.len()
    );
    eprintln!(
        "screenshot: {} ({} bytes, loaded in {} ms)",
        png.display(),
        seen.png.len(),
        seen.load_ms
    );

    // Every chart is drawn, named for a screen reader, and has a table in its section.
    let v = &seen.value;
    let charts = v["charts"].as_u64().unwrap_or(0);
    assert!(charts >= 6 * 3 + 2, "{v}");
    assert_eq!(v["charts_named"].as_u64(), Some(charts), "{v}");
    assert_eq!(v["charts_drawn"].as_u64(), Some(charts), "{v}");
    assert_eq!(v["tables_behind_charts"], Value::Bool(true), "{v}");

    // The page's numbers are the close's typed data.
    let data: ReportData = serde_json::from_slice(
        &std::fs::read(dir.path().join(report_data_key(last)))
            .map_err(|e| Error::io("report.json", e))?,
    )?;
    assert_eq!(
        v["anomalies"].as_array().map(Vec::len),
        Some(data.anomalies.len()),
        "{v}"
    );
    assert!(
        !data.anomalies.is_empty(),
        "the last close of this world has flags"
    );
    let payments: u64 = data
        .banks
        .iter()
        .filter_map(|b| {
            b.history
                .last()
                .filter(|p| p.date == last.date())
                .map(|p| p.payments)
        })
        .sum();
    let tile = v["tiles"]["payments"]
        .as_str()
        .unwrap_or("")
        .replace('\u{2009}', "");
    assert_eq!(tile, payments.to_string(), "{v}");
    let store = recon_shared::local::LocalStore::new(dir.path());
    let index = recon_shared::local_index::LocalTransactionIndex::open_read_only(dir.path())?;
    let log = recon_shared::local::LocalBreakLog::new(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::io("tokio", e))?;
    let answer = rt.block_on(query_api::route(
        &query_api::Request::get(&format!("/anomalies?date={LAST}")),
        &store,
        &index,
        &log,
    ));
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body["count"].as_u64(),
        Some(data.anomalies.len() as u64),
        "{}",
        answer.body
    );

    // The plan forecasts each bank against the Lambda path's limit: with the default limit no
    // partition of the next week outgrows it; with a limit of a day's payments of the largest
    // bank, its next week does.
    let plan = |limit: Option<u64>| {
        rt.block_on(recon_shared::close::plan(
            &store,
            &recon_shared::local::LocalRuns::new(dir.path()),
            &recon_shared::local::LocalManifests::new(dir.path()),
            &recon_shared::close::PlanRequest {
                business_date: last,
                execution: Some("capacity-check".into()),
                force: false,
                lookback_days: 7,
                lambda_max_input_bytes: limit,
            },
        ))
    };
    let roomy = plan(None)?;
    assert_eq!(roomy.capacity.len(), 6, "{:?}", roomy.capacity);
    assert!(
        roomy.capacity.iter().all(|c| !c.outgrows),
        "{:?}",
        roomy.capacity
    );
    let largest = roomy
        .capacity
        .iter()
        .max_by_key(|c| c.peak.expected)
        .ok_or_else(|| Error::Invariant("no capacity".into()))?;
    let tight = plan(Some(largest.bytes_per_payment * 100))?;
    let warned = tight.capacity.iter().find(|c| c.bank_id == largest.bank_id);
    assert!(
        warned.is_some_and(|c| c.outgrows && c.lambda_limit == 100),
        "{:?}",
        tight.capacity
    );

    // `recon report` writes the same page again from what the close wrote.
    let before = std::fs::read(&page).map_err(|e| Error::io(&page, e))?;
    let again = rt.block_on(recon_shared::close::insight::rebuild(&store, last))?;
    assert_eq!(again.anomalies, data.anomalies.len() as u64);
    assert_eq!(
        std::fs::read(&page).map_err(|e| Error::io(&page, e))?,
        before,
        "recon report wrote another page"
    );

    // And a small golden summary of the page.
    if std::env::var_os("RECON_BLESS").is_some() {
        std::fs::write(GOLDEN, serde_json::to_vec_pretty(v)?).map_err(|e| Error::io(GOLDEN, e))?;
    }
    let want: Value =
        serde_json::from_slice(&std::fs::read(GOLDEN).map_err(|e| Error::io(GOLDEN, e))?)?;
    assert_eq!(
        *v, want,
        "the page differs from {GOLDEN} (re-record with RECON_BLESS=1 only for an intended change)"
    );

    // The 33 days' flags against the injected truth (the targets of docs/anomalies.md).
    let score = recon_cli::accuracy::anomalies::anomaly_accuracy(dir.path())?
        .ok_or_else(|| Error::Invariant("the world has truth/anomalies.csv".into()))?;
    for (kind, s) in &score.kinds {
        if s.injected > 0 {
            assert!(
                s.found * 10 >= s.injected * 9,
                "{kind} recall: {}",
                score.table()
            );
        }
        if s.flags > 0 {
            assert!(
                s.explained * 10 >= s.flags * 9,
                "{kind} precision: {}",
                score.table()
            );
        }
    }
    assert!(
        score.kinds.values().map(|s| s.injected).sum::<u64>() >= 5,
        "{}",
        score.table()
    );
    Ok(())
}
