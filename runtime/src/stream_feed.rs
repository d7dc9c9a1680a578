//! Feeding `topics/*.jsonl` to the stream indexer the way the MSK event source mapping would.
//!
//! The topic files hold one Kafka record per line (`{"topic","partition","offset","timestamp",
//! "key","value":{…}}`), in the order the broker received them, with the generator's
//! redeliveries and late records. The files are merged by timestamp — a file's own order is
//! never changed, so redeliveries and reordering reach the indexer as they were written — and
//! cut into batches of [`BATCH_SIZE`] records, grouped per topic-partition with base64 keys and
//! values like an MSK event, and each batch goes through the `stream-indexer` handler
//! in-process.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use aws_lambda_events::encodings::MillisecondTimestamp;
use aws_lambda_events::event::kafka::{KafkaEvent, KafkaRecord};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use recon_shared::local::LocalStore;
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::stream::{BatchReport, KafkaRecordIn, StreamContext};
use recon_shared::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::local::local_pii_key;

/// Records per MSK batch.
pub const BATCH_SIZE: usize = 500;

/// What feeding the topics did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FeedReport {
    /// Topic files read, in name order.
    pub files: Vec<String>,
    pub lines: u64,
    /// Lines that are not a Kafka record (no topic, partition, offset or timestamp): they
    /// cannot be delivered, so they are counted here and skipped.
    pub unreadable_lines: u64,
    pub batches: u64,
    /// The indexer's counts, summed over the batches.
    pub indexed: BatchReport,
    /// Items in the index afterwards.
    pub index_items: u64,
    pub elapsed_ms: u64,
}

impl FeedReport {
    /// The lines `recon run` prints.
    pub fn table(&self) -> String {
        format!(
            "stream: {} records in {} batches ({} unreadable lines), {} ms\n{}  \
             index items  {:>10}\n",
            self.indexed.records,
            self.batches,
            self.unreadable_lines,
            self.elapsed_ms,
            indexed_lines(&self.indexed),
            self.index_items
        )
    }
}

/// The indexer's counts as `recon run` and `recon stream` print them: two indented lines.
pub(crate) fn indexed_lines(i: &BatchReport) -> String {
    format!(
        "  transactions {:>10}  fraud signals {:>10}  rejected {:>8}\n  \
         applied      {:>10}  unchanged     {:>10}  pending signals {:>5}\n",
        i.transactions, i.fraud_signals, i.rejected, i.applied, i.unchanged, i.pending_signals
    )
}

#[derive(Deserialize)]
struct Envelope {
    topic: String,
    partition: i64,
    offset: i64,
    timestamp: i64,
    #[serde(default)]
    key: Option<String>,
}

/// The byte range of the top-level `"value"` member of a JSON object, if any.
fn value_span(line: &[u8]) -> Option<(usize, usize)> {
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let mut str_start = 0;
    let mut last: Option<(usize, usize)> = None;
    let mut start: Option<usize> = None;
    for (i, &b) in line.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
                if depth == 1 {
                    last = Some((str_start, i));
                }
            }
            continue;
        }
        match b {
            b'"' => {
                in_str = true;
                str_start = i + 1;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 1 && start.is_some() {
                    return start.map(|s| (s, i));
                }
                depth = depth.checked_sub(1)?;
            }
            b':' if depth == 1
                && start.is_none()
                && last.and_then(|(s, e)| line.get(s..e)) == Some(b"value".as_slice()) =>
            {
                start = Some(i + 1);
            }
            b',' if depth == 1 && start.is_some() => return start.map(|s| (s, i)),
            _ => {}
        }
    }
    None
}

/// One line of a topic file as the Kafka record it stands for (key and value base64).
pub fn parse_line(line: &[u8]) -> Option<KafkaRecordIn> {
    let env: Envelope = serde_json::from_slice(line).ok()?;
    let value = value_span(line).map(|(s, e)| {
        let raw = line.get(s..e).unwrap_or_default().trim_ascii();
        STANDARD.encode(raw)
    });
    Some(KafkaRecordIn {
        topic: env.topic,
        partition: i32::try_from(env.partition).ok()?,
        offset: env.offset,
        timestamp_ms: env.timestamp,
        key: env.key.map(|k| STANDARD.encode(k.as_bytes())),
        value,
    })
}

/// The topic files of a data directory, in name order (none without `topics/`).
pub fn topic_files(data: &Path) -> Result<Vec<PathBuf>> {
    let dir = data.join("topics");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads the topic files merged by timestamp (ties: the file first in name order), each
/// file's own order kept. Calls `on_batch` with every `batch_size` records.
pub struct TopicReader {
    readers: Vec<(BufReader<File>, PathBuf)>,
    heads: Vec<Option<KafkaRecordIn>>,
    pub lines: u64,
    pub unreadable: u64,
}

impl TopicReader {
    pub fn open(files: &[PathBuf]) -> Result<Self> {
        let mut r = Self {
            readers: Vec::new(),
            heads: Vec::new(),
            lines: 0,
            unreadable: 0,
        };
        for f in files {
            let file = File::open(f).map_err(|e| Error::io(f, e))?;
            r.readers
                .push((BufReader::with_capacity(1 << 20, file), f.clone()));
            r.heads.push(None);
        }
        for i in 0..r.readers.len() {
            r.advance(i)?;
        }
        Ok(r)
    }

    /// Reads the next record of file `i` into its head.
    fn advance(&mut self, i: usize) -> Result<()> {
        let mut buf = Vec::with_capacity(512);
        self.heads[i] = None;
        let Some((reader, path)) = self.readers.get_mut(i) else {
            return Ok(());
        };
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| Error::io(&*path, e))?;
            if n == 0 {
                return Ok(());
            }
            if buf.trim_ascii().is_empty() {
                continue;
            }
            self.lines += 1;
            match parse_line(buf.trim_ascii()) {
                Some(r) => {
                    self.heads[i] = Some(r);
                    return Ok(());
                }
                None => self.unreadable += 1,
            }
        }
    }

    /// Up to `n` next records in merged order.
    pub fn next_batch(&mut self, n: usize) -> Result<Vec<KafkaRecordIn>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let pick = self
                .heads
                .iter()
                .enumerate()
                .filter_map(|(i, h)| h.as_ref().map(|r| (r.timestamp_ms, i)))
                .min();
            let Some((_, i)) = pick else {
                break;
            };
            if let Some(r) = self.heads[i].take() {
                out.push(r);
            }
            self.advance(i)?;
        }
        Ok(out)
    }
}

/// The MSK event of a batch: records grouped per `{topic}-{partition}`, order kept.
pub fn kafka_event(records: Vec<KafkaRecordIn>) -> KafkaEvent {
    let mut groups: BTreeMap<String, Vec<KafkaRecord>> = BTreeMap::new();
    for r in records {
        let mut k = KafkaRecord::default();
        k.topic = Some(r.topic.clone());
        k.partition = i64::from(r.partition);
        k.offset = r.offset;
        k.timestamp = MillisecondTimestamp(
            chrono::DateTime::from_timestamp_millis(r.timestamp_ms).unwrap_or_default(),
        );
        k.timestamp_type = Some("CREATE_TIME".into());
        k.key = r.key;
        k.value = r.value;
        groups
            .entry(format!("{}-{}", r.topic, r.partition))
            .or_default()
            .push(k);
    }
    let mut event = KafkaEvent::default();
    event.event_source = Some("aws:kafka".into());
    event.event_source_arn =
        Some("arn:aws:kafka:eu-central-1:000000000000:cluster/recon-local/local".into());
    event.records = groups.into_iter().collect();
    event
}

/// Feeds every topic file into an open index.
pub async fn feed_topics_into(
    data: &Path,
    index: &LocalTransactionIndex,
    batch_size: usize,
) -> Result<FeedReport> {
    let started = Instant::now();
    let store = LocalStore::new(data);
    let ctx = StreamContext::load(&store, local_pii_key()?).await?;
    let files = topic_files(data)?;
    let mut reader = TopicReader::open(&files)?;
    let mut report = FeedReport {
        files: files
            .iter()
            .map(|f| {
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect(),
        ..Default::default()
    };
    // Reading the topic files and building the MSK events runs on its own thread, a few
    // batches ahead of the indexer (the same batches in the same order).
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<KafkaEvent>>(4);
    let producer = std::thread::spawn(move || {
        loop {
            match reader.next_batch(batch_size.max(1)) {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => {
                    if tx.send(Ok(kafka_event(batch))).is_err() {
                        break; // the indexer stopped
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
        (reader.lines, reader.unreadable)
    });
    while let Ok(event) = rx.recv() {
        let r = stream_indexer::handle(event?, &store, index, &ctx).await?;
        report.indexed.add(&r);
        report.batches += 1;
    }
    (report.lines, report.unreadable_lines) = producer
        .join()
        .map_err(|_| Error::Invariant("the topic reader panicked".into()))?;
    report.index_items = index.len()? as u64;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Feeds `topics/*.jsonl` of a data directory to the stream indexer (the local
/// TransactionIndex under `state/transaction_index/`), then compacts the index.
pub async fn feed_topics(data: &Path) -> Result<FeedReport> {
    let index = LocalTransactionIndex::open(data)?;
    let report = feed_topics_into(data, &index, BATCH_SIZE).await?;
    index.compact()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_member_is_found_whatever_its_place_and_shape() {
        let cases: [(&str, Option<&str>); 6] = [
            (
                r#"{"topic":"t","value":{"a":"}","b":[1,{"c":2}]},"key":"k"}"#,
                Some(r#"{"a":"}","b":[1,{"c":2}]}"#),
            ),
            (r#"{"value": "x\"y" ,"topic":"t"}"#, Some(r#" "x\"y" "#)),
            (r#"{"key":"value","v":1}"#, None),
            (r#"{"a":{"value":1},"value":2}"#, Some("2")),
            (r#"{"topic":"t"}"#, None),
            (r#"}}"#, None),
        ];
        for (line, want) in cases {
            let got = value_span(line.as_bytes()).and_then(|(s, e)| line.get(s..e));
            assert_eq!(got, want, "{line}");
        }
    }
}
