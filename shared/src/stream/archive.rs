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
use crate::keys::{archive_key, date_segment, topic_segment};
use crate::pii::PiiKey;
use crate::ports::ObjectStore;

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
