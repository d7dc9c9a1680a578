//! The streaming index on generated days: the topics fed as MSK batches, the same index
//! whatever the order and redelivery of the records, the close's settlement written back and
//! served, the HTTP server, and no raw user id anywhere in the data directory or the logs.

mod common;

use common::{file_text, files_under, tmp};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use recon_runtime::close::{LocalTasks, close};
use recon_runtime::ingest::{RunConfig, ingest};
use recon_runtime::stream_feed::{BATCH_SIZE, feed_topics, feed_topics_into};
use recon_shared::close::{FinalRow, stream_states, write_back_settlement};
use recon_shared::columnar::read_parquet;
use recon_shared::ids::{BusinessDate, TransactionId};
use recon_shared::local::LocalStore;
use recon_shared::local_index::{LocalTransactionIndex, read_snapshot_lines};
use recon_shared::{Error, Result};

fn date() -> Result<BusinessDate> {
    BusinessDate::parse("2026-11-20")
}

fn day(dir: &Path, transactions: usize) -> Result<()> {
    common::day(dir, transactions, 42)
}

/// Raw user ids of the day (`config/users.jsonl`).
fn raw_user_ids(dir: &Path) -> Result<BTreeSet<String>> {
    let p = dir.join("config/users.jsonl");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if let Some(u) = v["user_id"].as_str() {
            out.insert(u.to_string());
        }
    }
    Ok(out)
}

/// Every `U` + 8 digits in `text` that is a raw user id.
fn leaks(text: &[u8], ids: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, w) in text.windows(9).enumerate() {
        if w[0] == b'U' && w[1..].iter().all(u8::is_ascii_digit) {
            let s = String::from_utf8_lossy(w).into_owned();
            let boundary = i == 0 || !text[i - 1].is_ascii_alphanumeric();
            if boundary && ids.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Log output captured from the global tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One HTTP/1.1 GET; returns the status and body.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<(u16, serde_json::Value)> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| Error::io("connect", e))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| Error::io("send", e))?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)
        .map_err(|e| Error::io("recv", e))?;
    let status = buf
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok((status, serde_json::from_str(body)?))
}

#[tokio::test]
async fn a_streamed_and_closed_day_never_holds_a_raw_user_id() -> Result<()> {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let logs = Captured::default();
    let sink = logs.clone();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish()
        .try_init();

    let dir = tmp()?;
    let data = dir.path();
    day(data, 3000)?;
    let ids = raw_user_ids(data)?;
    assert!(ids.len() > 100);
    // The topics do hold raw ids: the scan below would see one.
    let topics = std::fs::read(data.join("topics/transactions_topic.jsonl"))
        .map_err(|e| Error::io("topics", e))?;
    assert!(!leaks(&topics, &ids).is_empty());

    let report = feed_topics(data).await?;
    let i = &report.indexed;
    assert_eq!(report.unreadable_lines, 0);
    assert_eq!(i.records, report.lines);
    assert_eq!(i.rejected, 0, "the generator's records are all valid");
    assert_eq!(i.records, i.transactions + i.fraud_signals + i.rejected);
    assert_eq!(i.transactions + i.fraud_signals, i.applied + i.unchanged);
    assert!(
        i.unchanged > 0,
        "redeliveries and superseded statuses change nothing"
    );
    assert!(
        i.pending_signals > 0,
        "signals of unknown transactions wait"
    );
    assert!(report.batches >= report.lines / BATCH_SIZE as u64);

    // The close: the stream's states join the batch index, the settlement is written back.
    ingest(&RunConfig {
        data: data.to_path_buf(),
        date: None,
    })
    .await?;
    let txn_ids: Vec<TransactionId> = LocalTransactionIndex::open_read_only(data)?
        .scan()?
        .into_iter()
        .filter(|i| i.txn.is_some())
        .map(|i| i.transaction_id)
        .collect();
    let tasks = LocalTasks::new(data)?;
    let closed = close(&tasks, data, date()?).await?;
    assert!(closed.summary.is_some(), "{:?}", closed.outcome);
    drop(tasks);
    let store = LocalStore::new(data);
    let finals: Vec<FinalRow> = read_parquet(
        recon_shared::ports::ObjectStore::get(&store, &recon_shared::keys::final_key(date()?))
            .await?,
    )?;
    assert!(!finals.is_empty());
    let index = LocalTransactionIndex::open(data)?;
    let states = stream_states(&index, &txn_ids).await?;
    assert_eq!(states.streams.len(), txn_ids.len());
    // Writing back again changes nothing but is accepted (a re-run of the close).
    assert_eq!(
        write_back_settlement(&index, date()?, &finals.iter().collect::<Vec<_>>()).await?,
        finals.len() as u64
    );
    index.compact()?;
    drop(index);

    // Served over HTTP: a settled transaction, its user's page, errors.
    let listener = recon_cli::serve::bind(0).await?;
    let addr = listener.local_addr().map_err(|e| Error::io("addr", e))?;
    let root = data.to_path_buf();
    let server =
        tokio::spawn(
            async move { recon_cli::serve::serve_on(listener, &root, "stream-test").await },
        );
    let settled = finals
        .iter()
        .find(|f| txn_ids.contains(&f.transaction_id))
        .ok_or_else(|| Error::Invariant("no streamed final row".into()))?;
    let path = format!("/transactions/{}", settled.transaction_id);
    let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, &path))
        .await
        .map_err(|e| Error::Invariant(e.to_string()))??;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["settlement_status"],
        settled.settlement_status.as_str()
    );
    assert_eq!(
        body["reconciled_status"],
        settled.reconciled_status.as_str()
    );
    let token = body["user_token"].as_str().unwrap_or_default().to_string();
    assert!(recon_shared::pii::is_token(&token));
    let (status, page) = tokio::task::spawn_blocking(move || {
        http_get(addr, &format!("/users/{token}/transactions?limit=1000"))
    })
    .await
    .map_err(|e| Error::Invariant(e.to_string()))??;
    assert_eq!(status, 200);
    assert!(page["count"].as_u64().unwrap_or(0) >= 1);
    let raw = ids.iter().next().cloned().unwrap_or_default();
    let (status, err) =
        tokio::task::spawn_blocking(move || http_get(addr, &format!("/users/{raw}/transactions")))
            .await
            .map_err(|e| Error::Invariant(e.to_string()))??;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_id"))
    );
    server.abort();

    // No raw user id in what the pipeline wrote, nor in its logs.
    let mut scanned = 0;
    for sub in ["stream", "state", "index", "curated", "runs"] {
        for f in files_under(&data.join(sub)) {
            let found = leaks(&file_text(&f)?, &ids);
            assert!(found.is_empty(), "{} holds {:?}", f.display(), found);
            scanned += 1;
        }
    }
    assert!(scanned > 20, "{scanned} files scanned");
    for sub in [
        "stream/archive",
        "state/transaction_index",
        "index/final",
        "curated/transactions",
    ] {
        assert!(!files_under(&data.join(sub)).is_empty(), "{sub} is empty");
    }
    let log = logs.0.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&log).contains("stream batch indexed"),
        "logs were captured"
    );
    assert_eq!(leaks(&log, &ids), Vec::<String>::new());
    Ok(())
}

/// Reverses and redelivers the lines of every topic file.
fn scramble_topics(from: &Path, to: &Path) -> Result<()> {
    for f in recon_runtime::stream_feed::topic_files(from)? {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io(&f, e))?;
        let mut lines: Vec<&str> = text.lines().collect();
        lines.reverse();
        let again: Vec<&str> = lines.iter().step_by(7).copied().collect();
        lines.extend(again);
        let name = f
            .file_name()
            .ok_or_else(|| Error::Invariant("name".into()))?;
        let out = to.join("topics").join(name);
        std::fs::write(&out, lines.join("\n") + "\n").map_err(|e| Error::io(&out, e))?;
    }
    Ok(())
}

#[tokio::test]
async fn reordered_and_redelivered_topics_give_the_same_index() -> Result<()> {
    let a = tmp()?;
    day(a.path(), 1500)?;
    let first = feed_topics(a.path()).await?;
    // Fed again: nothing changes.
    let index = LocalTransactionIndex::open(a.path())?;
    let again = feed_topics_into(a.path(), &index, 97).await?;
    assert_eq!(again.indexed.applied, 0);
    assert_eq!(
        again.indexed.unchanged,
        first.indexed.transactions + first.indexed.fraud_signals
    );
    index.compact()?;
    let want = read_snapshot_lines(&index.snapshot_path()?)?;
    let totals = index.all_totals()?;
    drop(index);

    let b = tmp()?;
    day(b.path(), 1500)?;
    scramble_topics(a.path(), b.path())?;
    let index = LocalTransactionIndex::open(b.path())?;
    let report = feed_topics_into(b.path(), &index, 333).await?;
    assert!(report.indexed.records > first.indexed.records);
    index.compact()?;
    assert_eq!(index.all_totals()?, totals);
    let got = read_snapshot_lines(&index.snapshot_path()?)?;
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the scrambled feed built another index");
    Ok(())
}
