//! `recon bench kafka`: a generated day through a Kafka-protocol broker on 127.0.0.1 —
//! published, then consumed by one group member and indexed through the `stream-indexer`
//! function — beside the same records indexed in-process, and the broker's index compared
//! with the JSONL replay's.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use recon_runtime::kafka::{Connection, StreamOptions, indexer, publish, stream};
use recon_runtime::stream_feed::feed_topics;
use recon_shared::local_index::{LocalTransactionIndex, read_snapshot_lines};
use recon_shared::select::Backend;
use recon_shared::{Error, Result};

/// CPU seconds a process has used (user + system, all threads; Linux `/proc/{pid}/stat`, in
/// USER_HZ = 100 ticks), this one by default; `None` elsewhere.
fn process_cpu_secs() -> Option<f64> {
    cpu_secs_of("self")
}

fn cpu_secs_of(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after its `)`.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn snapshot(dir: &Path) -> Result<Vec<String>> {
    let index = LocalTransactionIndex::open(dir)?;
    index.compact()?;
    read_snapshot_lines(&index.snapshot_path()?)
}

fn copy_day(from: &Path, to: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(to);
    for sub in ["config", "topics"] {
        let (src, dst) = (from.join(sub), to.join(sub));
        std::fs::create_dir_all(&dst).map_err(|e| Error::io(&dst, e))?;
        copy_tree(&src, &dst)?;
    }
    Ok(())
}

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    for entry in std::fs::read_dir(src).map_err(|e| Error::io(src, e))? {
        let path = entry.map_err(|e| Error::io(src, e))?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        let target = dst.join(name);
        if path.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// Publishes `data`'s topics to `brokers` (topics that must not exist yet: a fresh broker),
/// consumes them with one member, and prints the figures beside the in-process indexer's.
pub async fn bench_kafka(
    data: &Path,
    brokers: &str,
    broker_pid: Option<u32>,
    batch: usize,
) -> Result<String> {
    let broker_cpu = || broker_pid.and_then(|p| cpu_secs_of(&p.to_string()));
    let conn = Connection::new(brokers);
    let scratch = std::env::temp_dir().join(format!("recon-bench-kafka-{}", std::process::id()));
    let (replay_dir, broker_dir) = (scratch.join("replay"), scratch.join("broker"));
    copy_day(data, &replay_dir)?;
    copy_day(data, &broker_dir)?;

    // In-process: the same records fed as MSK events to the same function, no broker.
    let (t, c) = (Instant::now(), process_cpu_secs());
    let replay = feed_topics(&replay_dir).await?;
    let local = (t.elapsed().as_secs_f64(), cpu_since(c));
    let want = snapshot(&replay_dir)?;

    let b = broker_cpu();
    let published = publish(&broker_dir, &conn).await?;
    let publish_broker = diff(broker_cpu(), b);
    if published.failed > 0 {
        return Err(Error::Invariant(format!(
            "{} records were not delivered: {:?}",
            published.failed, published.errors
        )));
    }
    let handler = indexer(&Backend::Local(broker_dir.clone())).await?;
    let opts = StreamOptions {
        batch_size: batch,
        idle_exit: Some(std::time::Duration::from_millis(1000)),
        ..StreamOptions::new("bench")
    };
    let (c, b) = (process_cpu_secs(), broker_cpu());
    let report =
        tokio::task::block_in_place(|| stream(&conn, &opts, &handler, &AtomicBool::new(false)))?;
    let consumed_cpu = cpu_since(c);
    let consume_broker = diff(broker_cpu(), b);
    drop(handler);
    let got = snapshot(&broker_dir)?;
    let _ = std::fs::remove_dir_all(&scratch);

    let records = report.records();
    // Until the last batch was committed (the idle wait that ends the run is not work).
    let active = report
        .members
        .iter()
        .map(|m| m.last_commit_ms)
        .max()
        .unwrap_or(report.elapsed_ms)
        .max(1) as f64
        / 1000.0;
    let mut s = format!(
        "kafka: {} records of {} through {brokers} (one group member, batches of {batch}); \
         lag at the end {}\n{:<50} {:>8} {:>8} {:>12} {:>14} {:>10}\n",
        records,
        data.display(),
        report.lag_total(),
        "stage",
        "wall s",
        "cpu s",
        "records/s",
        "records/cpu-s",
        "broker s"
    );
    let rows = [
        (
            "publish (producer, acks=all)",
            published.delivered,
            published.elapsed_ms as f64 / 1000.0,
            None,
            publish_broker,
        ),
        (
            "consume + index + commit (through the broker)",
            records,
            active,
            consumed_cpu,
            consume_broker,
        ),
        (
            "index in-process (JSONL replay, same function)",
            replay.indexed.records,
            local.0,
            local.1,
            None,
        ),
    ];
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |c| format!("{c:.2}"));
    for (name, n, wall, cpu, broker) in rows {
        let per_cpu = cpu.map_or("-".to_string(), |c| {
            format!("{:.0}", n as f64 / c.max(1e-9))
        });
        s.push_str(&format!(
            "{name:<50} {wall:>8.2} {:>8} {:>12.0} {per_cpu:>14} {:>10}\n",
            secs(cpu),
            n as f64 / wall.max(1e-9),
            secs(broker),
        ));
    }
    if let (Some(k), Some(l)) = (consumed_cpu, local.1) {
        s.push_str(&format!(
            "through the broker / in-process, records per cpu-s: {:.2} (the consumer's CPU, \
             librdkafka's threads included; the broker's is the last column)\n",
            (records as f64 / k.max(1e-9)) / (replay.indexed.records as f64 / l.max(1e-9))
        ));
    }
    s.push_str(&format!(
        "index through the broker identical to the JSONL replay's: {} ({} items)\n",
        if got == want { "yes" } else { "NO" },
        got.len()
    ));
    if got != want {
        return Err(Error::Invariant(format!(
            "the broker's index differs from the replay's:\n{s}"
        )));
    }
    Ok(s)
}

fn cpu_since(start: Option<f64>) -> Option<f64> {
    diff(process_cpu_secs(), start)
}

fn diff(end: Option<f64>, start: Option<f64>) -> Option<f64> {
    Some(end? - start?)
}
