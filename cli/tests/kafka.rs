//! Kafka for real: a generated day published to a Kafka-protocol broker (tansu, installed and
//! pinned by scripts/with-kafka.sh; each test starts its own on 127.0.0.1 with in-memory
//! storage) and indexed through a consumer group, against the JSONL replay's index.
#![cfg(feature = "kafka")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::{copy_dir, tmp};
use recon_runtime::kafka::{
    Connection, PublishReport, StreamOptions, StreamReport, StreamStatus, indexer, publish, stream,
};
use recon_runtime::stream_feed::feed_topics;
use recon_shared::local_index::{LocalTransactionIndex, read_snapshot_lines};
use recon_shared::select::Backend;
use recon_shared::{Error, Result};

const RECON: &str = env!("CARGO_BIN_EXE_recon");
/// The pinned broker binary (scripts/with-kafka.sh exports it).
const TANSU_ENV: &str = "RECON_TEST_TANSU";

/// A tansu broker of this test alone, stopped when dropped.
struct Broker {
    child: Child,
    port: u16,
}

impl Broker {
    /// A broker on a free port, or `None` when no broker binary was given: the test is then
    /// skipped with a loud message, except under CI (`CI` set), where that fails it.
    fn start(test: &str) -> Result<Option<Self>> {
        let Ok(tansu) = std::env::var(TANSU_ENV) else {
            if std::env::var_os("CI").is_some() {
                return Err(Error::InvalidConfig {
                    name: TANSU_ENV.into(),
                    reason: "not set under CI: run the suite through scripts/with-kafka.sh".into(),
                });
            }
            eprintln!(
                "SKIPPED {test}: no broker ({TANSU_ENV} unset). Run `scripts/with-kafka.sh \
                 cargo nextest run --workspace --all-features` (or `make test`)."
            );
            return Ok(None);
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("a free port", e))?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io(&tansu, e))?;
        let broker = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(Error::Invariant(format!("tansu did not listen on {port}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Some(broker))
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn connection(&self) -> Connection {
        Connection::new(self.brokers())
    }

    /// The producer's connection. tansu 0.6.0 answers a fetch from an offset inside a record
    /// batch with nothing, so a consumer resuming from a commit in the middle of a producer's
    /// batch stalls there (Kafka returns the batch and the client skips the records before
    /// the offset). One record per batch makes every offset a batch's first, where a restart
    /// or a rebalance may resume (docs/kafka.md, "The broker and the client").
    fn producer(&self) -> Connection {
        Connection {
            properties: vec![("batch.num.messages".into(), "1".into())],
            ..self.connection()
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A generated day in `dir`, and its index as the JSONL replay builds it (in a copy).
async fn day_and_replay(dir: &Path, transactions: usize) -> Result<Vec<String>> {
    common::day(dir, transactions, 42)?;
    let replay = tmp()?;
    copy_dir(dir, replay.path())?;
    feed_topics(replay.path()).await?;
    snapshot(replay.path())
}

/// A day in a fresh directory published to a broker of the test's own (one record per batch:
/// [`Broker::producer`]), with the index the JSONL replay builds of it; `None` when the test
/// is skipped.
struct Published {
    broker: Broker,
    data: tempfile::TempDir,
    want: Vec<String>,
    report: PublishReport,
}

async fn published_day(test: &str) -> Result<Option<Published>> {
    let Some(broker) = Broker::start(test)? else {
        return Ok(None);
    };
    let data = tmp()?;
    let want = day_and_replay(data.path(), 3000).await?;
    let report = publish(data.path(), &broker.producer()).await?;
    check_published(&report);
    Ok(Some(Published {
        broker,
        data,
        want,
        report,
    }))
}

/// The compacted local index of `dir`, line by line.
fn snapshot(dir: &Path) -> Result<Vec<String>> {
    let index = LocalTransactionIndex::open(dir)?;
    index.compact()?;
    read_snapshot_lines(&index.snapshot_path()?)
}

/// The first line where two indexes differ, for a failure's message.
fn first_difference(got: &[String], want: &[String]) -> String {
    match got.iter().zip(want).position(|(g, w)| g != w) {
        Some(i) => format!("line {i}:\n  got  {}\n  want {}", got[i], want[i]),
        None => format!("{} lines against {}", got.len(), want.len()),
    }
}

fn check_published(p: &PublishReport) {
    assert!(p.delivered > 1000, "{p:?}");
    assert_eq!(p.failed, 0, "{:?}", p.errors);
    assert_eq!(
        p.lines,
        p.unreadable_lines + p.redeliveries + p.sent_total()
    );
    assert_eq!(p.sent_total(), p.delivered);
    assert!(p.redeliveries > 0, "the generator's redeliveries: {p:?}");
    assert_eq!(p.moved, 0, "every record at its file offset: {p:?}");
    assert_eq!(p.sent.len(), 2, "both topics: {:?}", p.sent);
}

fn opts(group: &str, consumers: usize) -> StreamOptions {
    StreamOptions {
        consumers,
        idle_exit: Some(Duration::from_millis(1500)),
        ..StreamOptions::new(group)
    }
}

/// Streams `dir`'s index from the broker in-process until caught up.
async fn stream_into(dir: PathBuf, conn: Connection, o: StreamOptions) -> Result<StreamReport> {
    stream_until(dir, conn, o, Arc::default()).await
}

/// Streams `dir`'s index from the broker in-process until caught up or `stop` is raised.
async fn stream_until(
    dir: PathBuf,
    conn: Connection,
    o: StreamOptions,
    stop: Arc<AtomicBool>,
) -> Result<StreamReport> {
    let handler = indexer(&Backend::Local(dir)).await?;
    tokio::task::spawn_blocking(move || stream(&conn, &o, &handler, &stop))
        .await
        .map_err(|e| Error::Invariant(format!("the consumer panicked: {e}")))?
}

/// Waits (30 s at most) until what the members hold satisfies `ready`.
async fn wait_until_held(
    status: &StreamStatus,
    what: &str,
    ready: impl Fn(&BTreeMap<String, BTreeSet<String>>) -> bool,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = status.held();
        if ready(&held) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Invariant(format!("{what}: {held:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_through_the_broker_indexes_as_the_jsonl_replay_does() -> Result<()> {
    let Some(Published {
        broker,
        data,
        want,
        report: published,
    }) = published_day("a_day_through_the_broker_indexes_as_the_jsonl_replay_does").await?
    else {
        return Ok(());
    };
    assert_eq!(published.created_topics.len(), 2);

    let got = stream_into(
        data.path().to_path_buf(),
        broker.connection(),
        opts("index", 1),
    )
    .await?;
    assert_eq!(got.records(), published.delivered, "{}", got.table());
    assert_eq!(got.indexed.records, published.delivered);
    assert_eq!(got.indexed.rejected, 0, "{:?}", got.indexed);
    assert_eq!(got.lag_total(), 0, "{:?}", got.lag);
    assert_eq!(got.lag.len(), 12, "every partition reported: {:?}", got.lag);
    assert_eq!(got.stopped, "idle");
    let index = snapshot(data.path())?;
    assert_eq!(index.len(), want.len());
    assert!(
        index == want,
        "the broker's index differs from the replay's: {}",
        first_difference(&index, &want)
    );

    // The group has committed everything: a restart reads nothing.
    let restart = stream_into(
        data.path().to_path_buf(),
        broker.connection(),
        opts("index", 1),
    )
    .await?;
    assert_eq!(restart.records(), 0, "{}", restart.table());
    // Another group reads the whole log again, every record a redelivery: the index absorbs
    // them all.
    let replay = stream_into(
        data.path().to_path_buf(),
        broker.connection(),
        opts("again", 1),
    )
    .await?;
    assert_eq!(replay.records(), published.delivered);
    assert_eq!(replay.indexed.applied, 0, "{:?}", replay.indexed);
    assert!(snapshot(data.path())? == want);
    Ok(())
}

/// `recon stream --json` as a process; returns its report, or `None` when it died.
fn recon_stream(data: &Path, brokers: &str, fault: Option<&str>) -> Result<Option<StreamReport>> {
    let mut cmd = Command::new(RECON);
    cmd.args([
        "stream",
        "--brokers",
        brokers,
        "--group",
        "crash",
        "--batch",
        "200",
    ])
    .args([
        "--batch-window-ms",
        "5000",
        "--idle-exit-ms",
        "1500",
        "--json",
    ])
    // The dead member holds its partitions until its session expires: keep that short.
    .args(["--kafka-config", "session.timeout.ms=6000", "--data"])
    .arg(data)
    .env_remove("RUST_LOG");
    if let Some(f) = fault {
        cmd.env("RECON_FAULT", f);
    }
    let out = cmd.output().map_err(|e| Error::io(RECON, e))?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_slice(out.stdout.trim_ascii())?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_between_index_and_commit_restarts_into_the_same_index() -> Result<()> {
    let Some(Published {
        broker,
        data,
        want,
        report: published,
    }) = published_day("a_consumer_killed_between_index_and_commit_restarts_into_the_same_index")
        .await?
    else {
        return Ok(());
    };

    // The third batch is indexed, then the process dies before committing it.
    let died = recon_stream(data.path(), &broker.brokers(), Some("stream.commit#3"))?;
    assert!(
        died.is_none(),
        "the consumer was to die at its third commit"
    );
    let partial = snapshot(data.path())?;
    assert!(!partial.is_empty() && partial.len() < want.len());

    // The restart resumes from the two commits: the third batch comes again.
    let restarted = recon_stream(data.path(), &broker.brokers(), None)?
        .ok_or_else(|| Error::Invariant("the restarted consumer failed".into()))?;
    assert_eq!(restarted.records(), published.delivered - 2 * 200);
    assert!(
        restarted.lag.values().all(|l| *l == 0),
        "{:?}",
        restarted.lag
    );
    assert!(
        snapshot(data.path())? == want,
        "the restart built another index"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_of_one_group_split_the_partitions_and_index_everything_once() -> Result<()> {
    let Some(broker) =
        Broker::start("two_consumers_of_one_group_split_the_partitions_and_index_everything_once")?
    else {
        return Ok(());
    };
    let data = tmp()?;
    let want = day_and_replay(data.path(), 3000).await?;
    // Both members join while the topics are empty, then the day arrives.
    recon_runtime::kafka::ensure_topics(&broker.connection()).await?;
    let members = StreamOptions {
        idle_exit: Some(Duration::from_secs(4)),
        ..opts("pair", 2)
    };
    let status = members.status.clone();
    let consuming = tokio::spawn(stream_into(
        data.path().to_path_buf(),
        broker.connection(),
        members,
    ));
    // Published once each member holds its half: the day is then read in halves, not handed
    // over midway.
    wait_until_held(&status, "the group did not form", |held| {
        let all: BTreeSet<&String> = held.values().flatten().collect();
        held.len() == 2 && held.values().all(|p| !p.is_empty()) && all.len() == 12
    })
    .await?;
    let published = publish(data.path(), &broker.producer()).await?;
    check_published(&published);
    let got = consuming
        .await
        .map_err(|e| Error::Invariant(format!("the consumers panicked: {e}")))??;
    let [a, b] = got.members.as_slice() else {
        return Err(Error::Invariant(format!("two members: {got:?}")));
    };
    // Each read its own half of the 12 partitions. (Their assignments at the end may not be
    // halves: the first to finish leaves the group, which hands its partitions to the other.)
    assert!(
        a.read.keys().all(|p| !b.read.contains_key(p)),
        "{a:?}\n{b:?}"
    );
    assert_eq!(a.read.len() + b.read.len(), 12, "{a:?}\n{b:?}");
    assert!(a.records > 0 && b.records > 0, "{}", got.table());
    // Every record once: more only where a rebalance refused a batch's commit (its records go
    // to the partition's next owner again).
    let refused: u64 = got.members.iter().map(|m| m.uncommitted_records).sum();
    assert!(got.records() >= published.delivered, "{}", got.table());
    assert!(
        got.records() <= published.delivered + refused,
        "{}",
        got.table()
    );
    assert_eq!(got.lag_total(), 0, "{:?}", got.lag);
    assert!(
        snapshot(data.path())? == want,
        "the pair built another index"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_stops_the_consumer_after_its_batch_and_commit() -> Result<()> {
    let Some(Published {
        broker,
        data,
        want,
        report: published,
    }) = published_day("a_signal_stops_the_consumer_after_its_batch_and_commit").await?
    else {
        return Ok(());
    };

    // Runs until told to stop (no idle exit), as a deployment's consumer does.
    let mut child = Command::new(RECON)
        .args([
            "stream",
            "--brokers",
            &broker.brokers(),
            "--group",
            "signal",
        ])
        .args(["--json", "--data"])
        .arg(data.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(RECON, e))?;
    // A 3 000-payment day is indexed in about a second.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .map_err(|e| Error::io("kill", e))?;
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().map_err(|e| Error::io(RECON, e))?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(Error::Invariant("recon stream ignored SIGTERM".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = child.wait_with_output().map_err(|e| Error::io(RECON, e))?;
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: StreamReport = serde_json::from_slice(out.stdout.trim_ascii())?;
    assert_eq!(report.stopped, "signal");
    assert_eq!(report.records(), published.delivered, "{}", report.table());
    assert_eq!(report.lag_total(), 0, "{:?}", report.lag);
    // It committed before leaving: the group's next consumer has nothing to read.
    let next = stream_into(
        data.path().to_path_buf(),
        broker.connection(),
        opts("signal", 1),
    )
    .await?;
    assert_eq!(next.records(), 0, "{}", next.table());
    assert!(snapshot(data.path())? == want);
    Ok(())
}

/// tansu 0.6.0 answers a fetch from inside a record batch with nothing (docs/kafka.md): a
/// consumer resuming from a commit in the middle of a producer's batch makes no progress there.
/// That is reported, by partition, instead of passing for a quiet topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_the_broker_does_not_serve_is_reported_stalled() -> Result<()> {
    let Some(broker) = Broker::start("a_partition_the_broker_does_not_serve_is_reported_stalled")?
    else {
        return Ok(());
    };
    let data = tmp()?;
    common::day(data.path(), 3000, 42)?;
    // Large producer batches: the commits after 200 and 400 records fall inside them.
    let batched = Connection {
        properties: vec![("linger.ms".into(), "100".into())],
        ..broker.connection()
    };
    check_published(&publish(data.path(), &batched).await?);
    let died = recon_stream(data.path(), &broker.brokers(), Some("stream.commit#3"))?;
    assert!(
        died.is_none(),
        "the consumer was to die at its third commit"
    );

    // The restart (same group, same session timeout), stopped from outside after a while.
    let conn = Connection {
        properties: vec![("session.timeout.ms".into(), "6000".into())],
        ..broker.connection()
    };
    let o = StreamOptions {
        stall_after: Duration::from_secs(2),
        ..StreamOptions::new("crash")
    };
    let status = o.status.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let consuming = tokio::spawn(stream_until(
        data.path().to_path_buf(),
        conn,
        o,
        stop.clone(),
    ));
    wait_until_held(&status, "the restart got no partitions", |held| {
        held.values().any(|p| !p.is_empty())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let got = consuming
        .await
        .map_err(|e| Error::Invariant(format!("the consumer panicked: {e}")))??;
    let stalled = &got.members[0].stalled;
    assert!(!stalled.is_empty(), "{}", got.table());
    for (p, lag) in &got.lag {
        assert_eq!(
            stalled.contains(p),
            *lag > 0,
            "{p}: lag {lag}\n{}",
            got.table()
        );
    }
    Ok(())
}
