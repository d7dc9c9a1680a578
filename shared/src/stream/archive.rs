//! The raw-record archive:
//! `stream/archive/topic={T}/date={D}/p{P}-{offset}_p{P}-{offset}_{digest}.jsonl`.
//!
//! One object per topic and broker date (UTC, from the record timestamp) of a batch, whatever
//! the partitions it spans (an MSK batch holds many: one object per partition made ~24 S3 puts
//! per invocation), records sorted by partition and offset, each once. The name holds the first
//! and last coordinates and a digest of all of them, so re-processing a batch writes the same
//! objects with the same bytes, and a batch cut differently writes others (replay is
//! idempotent, like the indexer).

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

/// The object key of one group of the archive: its first and last `(partition, offset)` and a
/// digest of every coordinate it holds.
pub fn archive_key(topic: &str, date: &str, coordinates: &[(i32, i64)]) -> String {
    let (Some((p0, o0)), Some((p1, o1))) = (coordinates.first(), coordinates.last()) else {
        return format!(
            "{ARCHIVE_PREFIX}topic={}/date={date}/empty.jsonl",
            topic_segment(topic)
        );
    };
    let listed: String = coordinates
        .iter()
        .map(|(p, o)| format!("{p}:{o},"))
        .collect();
    let digest = crate::manifest::sha256_hex(listed.as_bytes());
    format!(
        "{ARCHIVE_PREFIX}topic={}/date={date}/p{p0:04}-{o0:019}_p{p1:04}-{o1:019}_{}.jsonl",
        topic_segment(topic),
        digest.get(..16).unwrap_or(&digest)
    )
}

/// Archives a batch; returns the number of objects written.
pub async fn archive_batch<S: ObjectStore>(
    store: &S,
    records: &[KafkaRecordIn],
    decoded: &[std::result::Result<Fact, Rejection>],
    pii: &PiiKey,
) -> Result<u64> {
    type Group<'a> =
        BTreeMap<(i32, i64), (&'a KafkaRecordIn, &'a std::result::Result<Fact, Rejection>)>;
    let mut groups: BTreeMap<(String, String), Group<'_>> = BTreeMap::new();
    for (r, d) in records.iter().zip(decoded) {
        groups
            .entry((
                topic_segment(&r.topic).to_string(),
                date_segment(r.timestamp_ms),
            ))
            .or_default()
            .entry((r.partition, r.offset))
            .or_insert((r, d));
    }
    let mut objects = 0;
    for ((topic, date), recs) in groups {
        let coordinates: Vec<(i32, i64)> = recs.keys().copied().collect();
        if coordinates.is_empty() {
            continue;
        }
        let key = archive_key(&topic, &date, &coordinates);
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
