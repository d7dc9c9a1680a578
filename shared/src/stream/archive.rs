//! The raw-record archive: `stream/archive/topic={T}/date={D}/p{P}-{first}-{last}.jsonl`.
//!
//! One object per topic, broker date (UTC, from the record timestamp) and partition of a batch,
//! named after the partition and the offset range it holds, records sorted by offset and each
//! offset once. Re-processing a batch writes the same objects with the same bytes.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::decode::{Fact, KafkaRecordIn, Rejection, archive_line};
use crate::error::Result;
use crate::pii::PiiKey;
use crate::ports::ObjectStore;

pub const ARCHIVE_PREFIX: &str = "stream/archive/";

/// The topic as a path segment (Kafka topic names are `[A-Za-z0-9._-]`, at most 249 long).
fn topic_segment(topic: &str) -> &str {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && !topic.starts_with('.')
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok { topic } else { "_invalid" }
}

fn date_segment(timestamp_ms: i64) -> String {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp_millis(timestamp_ms)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()))
        .filter(|d| d.len() == 10)
        .unwrap_or_else(|| "_invalid".into())
}

/// The object key of one group of the archive.
pub fn archive_key(topic: &str, date: &str, partition: i32, first: i64, last: i64) -> String {
    format!(
        "{ARCHIVE_PREFIX}topic={}/date={date}/p{partition:04}-{first:019}-{last:019}.jsonl",
        topic_segment(topic)
    )
}

/// Archives a batch; returns the number of objects written.
pub async fn archive_batch<S: ObjectStore>(
    store: &S,
    records: &[KafkaRecordIn],
    decoded: &[std::result::Result<Fact, Rejection>],
    pii: &PiiKey,
) -> Result<u64> {
    type Group<'a> = BTreeMap<i64, (&'a KafkaRecordIn, &'a std::result::Result<Fact, Rejection>)>;
    let mut groups: BTreeMap<(String, String, i32), Group<'_>> = BTreeMap::new();
    for (r, d) in records.iter().zip(decoded) {
        groups
            .entry((
                topic_segment(&r.topic).to_string(),
                date_segment(r.timestamp_ms),
                r.partition,
            ))
            .or_default()
            .entry(r.offset)
            .or_insert((r, d));
    }
    let mut objects = 0;
    for ((topic, date, partition), recs) in groups {
        let (Some(first), Some(last)) = (recs.keys().next(), recs.keys().next_back()) else {
            continue;
        };
        let key = archive_key(&topic, &date, partition, *first, *last);
        let mut body = String::with_capacity(recs.len() * 320);
        for (r, d) in recs.values() {
            body.push_str(&archive_line(r, d, pii)?);
            body.push('\n');
        }
        store.put(&key, Bytes::from(body)).await?;
        objects += 1;
    }
    Ok(objects)
}
