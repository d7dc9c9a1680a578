//! Kafka for real (cargo feature `kafka`): [`publish`] sends a generated day's topics to a
//! Kafka-protocol broker, and [`stream`] consumes both topics with a consumer group and indexes
//! each poll through the `stream-indexer` function's own path.
//!
//! The consumer is at-least-once by construction: a poll's records are shaped into the MSK
//! event the Lambda receives ([`kafka_event`]), handed to the function, and their offsets are
//! committed only once it returned, that is once the index write is durable. A crash between
//! the two redelivers the batch, which the index absorbs (its upserts are idempotent). Records
//! polled but not yet indexed when a rebalance takes their partition away are dropped from the
//! batch in hand: the partition's next owner reads them from the last commit, so without a
//! crash every record is indexed once.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::kafka::KafkaEvent;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use recon_shared::config::Settings;
use recon_shared::entry::Function;
use recon_shared::index_item::{FRAUD_SIGNALS_TOPIC, TOPIC_PARTITIONS, TRANSACTIONS_TOPIC};
use recon_shared::select::Backend;
use recon_shared::stream::{BatchReport, KafkaRecordIn};
use recon_shared::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::local::local_pii_key;
use crate::stream_feed::{BATCH_SIZE, TopicReader, indexed_lines, kafka_event, topic_files};

/// The topics `recon publish` writes and `recon stream` reads.
pub const TOPICS: [&str; 2] = [TRANSACTIONS_TOPIC, FRAUD_SIGNALS_TOPIC];

/// How long the group waits for a silent member before handing its partitions on.
const DEFAULT_SESSION_TIMEOUT_MS: &str = "10000";

/// How long a request to the broker may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the broker is and how to talk to it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Bootstrap brokers, `HOST:PORT[,HOST:PORT…]`.
    pub brokers: String,
    /// librdkafka properties applied last (`security.protocol`, `session.timeout.ms`, …).
    pub properties: Vec<(String, String)>,
}

impl Connection {
    /// A connection to `brokers` with librdkafka's defaults.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
        }
    }

    fn config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        // librdkafka drops lines below this level before they reach `log_line`.
        c.set_log_level(
            if tracing::enabled!(target: "rdkafka", tracing::Level::DEBUG) {
                RDKafkaLogLevel::Debug
            } else if tracing::enabled!(target: "rdkafka", tracing::Level::INFO) {
                RDKafkaLogLevel::Info
            } else {
                RDKafkaLogLevel::Warning
            },
        );
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// The group session timeout in force (the `session.timeout.ms` given, else ours).
    fn session_timeout(&self) -> Duration {
        let ms = self
            .properties
            .iter()
            .rev()
            .find(|(k, _)| k == "session.timeout.ms")
            .map_or(DEFAULT_SESSION_TIMEOUT_MS, |(_, v)| v.as_str());
        Duration::from_millis(ms.trim().parse().unwrap_or(10_000))
    }
}

/// A `key=value` librdkafka property of the command line.
pub fn parse_property(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "expected KEY=VALUE (a librdkafka property, e.g. session.timeout.ms=10000), got {s:?}"
        )),
    }
}

fn kafka_error(what: &str, brokers: &str, e: KafkaError) -> Error {
    Error::Invariant(format!(
        "{what} at {brokers}: {e} (is a Kafka-protocol broker listening there? \
         `--brokers HOST:PORT`)"
    ))
}

// ---------------------------------------------------------------------------------------------
// publish

/// What [`publish`] did. Counts close: `lines = unreadable_lines + redeliveries + sent`, `sent =
/// delivered + failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PublishReport {
    /// The bootstrap brokers.
    pub brokers: String,
    /// Topic files read, in name order.
    pub files: Vec<String>,
    /// Topics this run created (the others existed with enough partitions).
    pub created_topics: Vec<String>,
    /// Non-empty lines of the topic files.
    pub lines: u64,
    /// Lines that are not a Kafka record: nothing to send, counted and skipped.
    pub unreadable_lines: u64,
    /// Lines that deliver a record of the file again (its topic, partition and offset seen
    /// before): a consumer-side redelivery, which a broker makes when a consumer re-reads
    /// (after a crash or a rebalance), not a second record in the log. Sent once.
    pub redeliveries: u64,
    /// Records handed to the producer, per topic.
    pub sent: BTreeMap<String, u64>,
    /// Records the broker acknowledged.
    pub delivered: u64,
    /// Records the broker did not take; the first errors are in `errors`.
    pub failed: u64,
    /// Delivered records the broker put at another offset than the file's (the topic held
    /// records before, or the file skips offsets): their index versions name the broker's
    /// offsets, so the index differs from the JSONL replay's in those coordinates only.
    pub moved: u64,
    /// The first delivery errors (at most 10), each naming its topic and partition.
    pub errors: Vec<String>,
    pub elapsed_ms: u64,
}

impl PublishReport {
    /// Records handed to the producer.
    pub fn sent_total(&self) -> u64 {
        self.sent.values().sum()
    }

    /// The lines `recon publish` prints.
    pub fn table(&self) -> String {
        let rate = per_second(self.delivered, self.elapsed_ms);
        let mut s = format!(
            "publish to {}: {} lines ({} unreadable, {} redeliveries sent once), {} records \
             sent, {} delivered, {} failed, {} at another offset than the file's, {} ms \
             ({rate} records/s)\n",
            self.brokers,
            self.lines,
            self.unreadable_lines,
            self.redeliveries,
            self.sent_total(),
            self.delivered,
            self.failed,
            self.moved,
            self.elapsed_ms
        );
        for (topic, n) in &self.sent {
            s.push_str(&format!("  {topic:<22} {n:>10}\n"));
        }
        if !self.created_topics.is_empty() {
            s.push_str(&format!(
                "  created: {} ({TOPIC_PARTITIONS} partitions each)\n",
                self.created_topics.join(", ")
            ));
        }
        for e in &self.errors {
            s.push_str(&format!("  error: {e}\n"));
        }
        s
    }
}

fn per_second(n: u64, ms: u64) -> u64 {
    n.saturating_mul(1000) / ms.max(1)
}

/// Counts the producer's delivery reports.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    moved: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_line("recon-publish", level, facility, message);
    }
}

impl ProducerContext for Deliveries {
    /// The offset the record has in its file.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, file_offset: usize) {
        match result {
            Ok(m) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                if usize::try_from(m.offset()).ok() != Some(file_offset) {
                    self.moved.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err((e, m)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut errors) = self.errors.lock()
                    && errors.len() < 10
                {
                    errors.push(format!("{}[{}]: {e}", m.topic(), m.partition()));
                }
            }
        }
    }
}

/// Creates the topics that do not exist ([`TOPIC_PARTITIONS`] partitions, replication 1) and
/// checks that those that do have the partitions the records are keyed onto. Returns the
/// topics it created.
pub async fn ensure_topics(conn: &Connection) -> Result<Vec<String>> {
    let admin: AdminClient<DefaultClientContext> = conn
        .config(&[("client.id", "recon-publish-admin")])
        .create()
        .map_err(|e| kafka_error("cannot create an admin client", &conn.brokers, e))?;
    let new: Vec<NewTopic<'_>> = TOPICS
        .iter()
        .map(|t| NewTopic::new(t, i32::from(TOPIC_PARTITIONS), TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let results = tokio::time::timeout(REQUEST_TIMEOUT, admin.create_topics(&new, &opts))
        .await
        .map_err(|_| {
            Error::Invariant(format!(
                "creating the topics at {} took over {} s: is the broker up?",
                conn.brokers,
                REQUEST_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| kafka_error("cannot create the topics", &conn.brokers, e))?;
    let mut created = Vec::new();
    for r in results {
        match r {
            Ok(topic) => created.push(topic),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::Invariant(format!(
                    "cannot create topic {topic} at {}: {code}",
                    conn.brokers
                )));
            }
        }
    }
    let metadata = admin
        .inner()
        .fetch_metadata(None, REQUEST_TIMEOUT)
        .map_err(|e| kafka_error("cannot read the topics' metadata", &conn.brokers, e))?;
    for topic in TOPICS {
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        if partitions < usize::from(TOPIC_PARTITIONS) {
            return Err(Error::InvalidConfig {
                name: format!("topic {topic} at {}", conn.brokers),
                reason: format!(
                    "has {partitions} partitions; the day's records are keyed onto \
                     {TOPIC_PARTITIONS}: add partitions or delete the topic and publish again"
                ),
            });
        }
    }
    Ok(created)
}

/// Sends `topics/*.jsonl` of a data directory to the broker: every record of the files to its
/// topic and partition, with its key (the transaction id) and timestamp, in the order the
/// generator's broker received them (the files merged by timestamp, each file's own order
/// kept: late records arrive late). A line that delivers a record again (same topic, partition
/// and offset) is a consumer-side redelivery and is sent once, so on a fresh topic every
/// record lands at the offset the file gives it and the index built through the broker is the
/// JSONL replay's.
pub async fn publish(data: &Path, conn: &Connection) -> Result<PublishReport> {
    let started = Instant::now();
    let files = topic_files(data)?;
    if files.is_empty() {
        return Err(Error::InvalidConfig {
            name: data.join("topics").display().to_string(),
            reason: "holds no *.jsonl topic file: generate a day first (recon generate)".into(),
        });
    }
    let mut report = PublishReport {
        brokers: conn.brokers.clone(),
        files: files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
        created_topics: ensure_topics(conn).await?,
        ..PublishReport::default()
    };
    let producer: ThreadedProducer<Deliveries> = ThreadedProducer::from_config_and_context(
        &conn.config(&[
            ("client.id", "recon-publish"),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("message.timeout.ms", "60000"),
        ]),
        Deliveries::default(),
    )
    .map_err(|e| kafka_error("cannot create a producer", &conn.brokers, e))?;
    let mut reader = TopicReader::open(&files)?;
    // The next offset of each partition: the file numbers each partition's records in order.
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    loop {
        let batch = reader.next_batch(BATCH_SIZE)?;
        if batch.is_empty() {
            break;
        }
        for r in batch {
            let expected = next.entry((r.topic.clone(), r.partition)).or_default();
            if r.offset < *expected {
                report.redeliveries += 1;
                continue;
            }
            *expected = r.offset + 1;
            let key = decode(r.key.as_deref(), &r)?;
            let value = decode(r.value.as_deref(), &r)?;
            let file_offset = usize::try_from(r.offset).unwrap_or(usize::MAX);
            let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&r.topic, file_offset)
                .partition(r.partition)
                .timestamp(r.timestamp_ms);
            if let Some(k) = key.as_deref() {
                record = record.key(k);
            }
            if let Some(v) = value.as_deref() {
                record = record.payload(v);
            }
            let mut pending = record;
            loop {
                match producer.send(pending) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for deliveries to drain it.
                        producer.poll(Duration::from_millis(50));
                        pending = back;
                    }
                    Err((e, _)) => {
                        return Err(kafka_error(
                            &format!("cannot send a record of {}[{}]", r.topic, r.partition),
                            &conn.brokers,
                            e,
                        ));
                    }
                }
            }
            *report.sent.entry(r.topic).or_default() += 1;
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| kafka_error("records were not delivered in 120 s", &conn.brokers, e))?;
    let ctx = producer.context();
    report.lines = reader.lines;
    report.unreadable_lines = reader.unreadable;
    report.delivered = ctx.delivered.load(Ordering::Relaxed);
    report.failed = ctx.failed.load(Ordering::Relaxed);
    report.moved = ctx.moved.load(Ordering::Relaxed);
    report.errors = ctx.errors.lock().map(|e| e.clone()).unwrap_or_default();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    let sent = report.sent_total();
    if report.lines != report.unreadable_lines + report.redeliveries + sent
        || sent != report.delivered + report.failed
    {
        return Err(Error::Invariant(format!(
            "publish counts do not close: {} lines = {} unreadable + {} redeliveries + {sent} \
             sent; {sent} sent = {} delivered + {} failed",
            report.lines,
            report.unreadable_lines,
            report.redeliveries,
            report.delivered,
            report.failed
        )));
    }
    Ok(report)
}

fn decode(b64: Option<&str>, r: &KafkaRecordIn) -> Result<Option<Vec<u8>>> {
    b64.map(|s| {
        STANDARD.decode(s).map_err(|e| {
            Error::Invariant(format!(
                "record {}[{}]@{} does not decode: {e}",
                r.topic, r.partition, r.offset
            ))
        })
    })
    .transpose()
}

// ---------------------------------------------------------------------------------------------
// stream

/// How [`stream`] consumes.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The consumer group (`group.id`): its committed offsets are where a restart resumes.
    pub group: String,
    /// Members of the group this process runs, each on its own thread with its own
    /// connection (the broker splits the partitions between them).
    pub consumers: usize,
    /// Records per batch at most (the MSK event source mapping's `BatchSize`).
    pub batch_size: usize,
    /// How long a batch may wait to fill (the mapping's `MaximumBatchingWindowInSeconds`).
    pub batch_window: Duration,
    /// Stop once every member has been idle this long with nothing left to read (lag 0);
    /// `None` runs until the stop flag is raised.
    pub idle_exit: Option<Duration>,
    /// A partition behind the broker whose committed offset has not moved for this long is
    /// reported stalled (a warning, and [`MemberReport::stalled`]).
    pub stall_after: Duration,
    /// Kept up to date with what each member holds.
    pub status: Arc<StreamStatus>,
}

impl StreamOptions {
    /// One member of `group`, MSK's default batching (500 records, 500 ms), run until stopped.
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            consumers: 1,
            batch_size: BATCH_SIZE,
            batch_window: Duration::from_millis(500),
            idle_exit: None,
            stall_after: Duration::from_secs(60),
            status: Arc::default(),
        }
    }
}

/// The `stream-indexer` function as the consumer calls it: one MSK event in, the batch's
/// counts out. Implemented by the Lambda's own handler ([`stream_indexer::Lambda`]).
pub trait BatchHandler: Sync {
    /// Indexes one event; returns once the index write is durable.
    fn handle_batch(&self, event: KafkaEvent) -> impl Future<Output = Result<BatchReport>>;
}

impl BatchHandler for stream_indexer::Lambda {
    fn handle_batch(&self, event: KafkaEvent) -> impl Future<Output = Result<BatchReport>> {
        Function::handle(self, event)
    }
}

/// What the members hold now, for a caller watching a running [`stream`] (a health check, a
/// test waiting for the group to form).
#[derive(Debug, Default)]
pub struct StreamStatus {
    held: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl StreamStatus {
    /// Partitions (`topic[partition]`) each member holds, by client id.
    pub fn held(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.held.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn set(&self, member: &str, partitions: BTreeSet<String>) {
        if let Ok(mut h) = self.held.lock() {
            h.insert(member.to_string(), partitions);
        }
    }
}

/// The `stream-indexer` function over `backend`, started as its Lambda starts; in a local data
/// directory without a configured key it tokenizes with the local development key, as
/// `recon run` does (so both build the same index).
pub async fn indexer(backend: &Backend) -> Result<stream_indexer::Lambda> {
    let mut settings = Settings::from_env()?;
    if matches!(backend, Backend::Local(_))
        && settings.pii_key.is_none()
        && settings.pii_secret.is_none()
    {
        settings.pii_key = Some(local_pii_key()?);
    }
    <stream_indexer::Lambda as Function>::init(&settings, backend).await
}

/// What one member of the group did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    /// `recon-stream-{n}` (the member's `client.id`).
    pub client_id: String,
    /// Partitions assigned to it at the end (`topic[partition]`), sorted.
    pub assigned: Vec<String>,
    /// Assignments and revocations it went through.
    pub rebalances: u64,
    /// Batches indexed, and records in them.
    pub batches: u64,
    pub records: u64,
    /// Records indexed per partition (`topic[partition]`).
    pub read: BTreeMap<String, u64>,
    /// Offset commits that succeeded and that the broker refused (a rebalance took the
    /// partition meanwhile: its next owner receives the records again; the index absorbs
    /// them).
    pub commits: u64,
    pub commit_failures: u64,
    /// Records of the batches whose commit was refused.
    pub uncommitted_records: u64,
    /// When its last commit succeeded, in ms since the stream started (the end of its work,
    /// before any idle wait).
    pub last_commit_ms: u64,
    /// Records polled but not yet indexed when a rebalance took their partition: left to its
    /// next owner.
    pub dropped_on_revoke: u64,
    /// Errors the consumer reported and recovered from.
    pub consumer_errors: u64,
    /// Partitions it held at the end that were behind the broker with no progress for
    /// [`StreamOptions::stall_after`]: the broker does not serve them (docs/kafka.md).
    pub stalled: Vec<String>,
}

/// What [`stream`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamReport {
    pub brokers: String,
    pub group: String,
    pub members: Vec<MemberReport>,
    /// The function's counts, summed over every batch of every member.
    pub indexed: BatchReport,
    /// Records behind the broker's high watermark per partition (`topic[partition]`), from
    /// the last statistics each member received; a partition no member reported is left out.
    pub lag: BTreeMap<String, i64>,
    /// Why it stopped: `signal` or `idle`.
    pub stopped: String,
    pub elapsed_ms: u64,
}

impl StreamReport {
    /// Records indexed by every member.
    pub fn records(&self) -> u64 {
        self.members.iter().map(|m| m.records).sum()
    }

    /// Total lag over the partitions reported.
    pub fn lag_total(&self) -> i64 {
        self.lag.values().map(|l| (*l).max(0)).sum()
    }

    /// The lines `recon stream` prints.
    pub fn table(&self) -> String {
        let mut s = format!(
            "stream from {} (group {}): {} records in {} batches, {} ms ({} records/s), \
             stopped on {}\n{}  \
             lag          {:>10}\n",
            self.brokers,
            self.group,
            self.records(),
            self.members.iter().map(|m| m.batches).sum::<u64>(),
            self.elapsed_ms,
            per_second(self.records(), self.elapsed_ms),
            self.stopped,
            indexed_lines(&self.indexed),
            self.lag_total()
        );
        for m in &self.members {
            s.push_str(&format!(
                "  {}: {} records, {} commits ({} refused), {} rebalances, partitions {}\n",
                m.client_id,
                m.records,
                m.commits,
                m.commit_failures,
                m.rebalances,
                m.assigned.join(" ")
            ));
            if !m.stalled.is_empty() {
                s.push_str(&format!(
                    "  {}: STALLED (behind the broker, no progress): {}\n",
                    m.client_id,
                    m.stalled.join(" ")
                ));
            }
        }
        s
    }
}

fn partition_name(topic: &str, partition: i32) -> String {
    format!("{topic}[{partition}]")
}

/// What a member learns of its group besides the messages: its rebalances, statistics.
#[derive(Default)]
struct GroupState {
    rebalances: u64,
    /// The broker's high watermark and the group's committed offset per partition, from the
    /// last statistics.
    high: BTreeMap<(String, i32), i64>,
    stats_committed: BTreeMap<(String, i32), i64>,
    /// The offsets this member committed.
    committed: BTreeMap<(String, i32), i64>,
    /// The partitions it held at the end.
    held: BTreeSet<(String, i32)>,
}

impl GroupState {
    /// The group's committed offset of partition `k` as this member knows it.
    fn done(&self, k: &(String, i32)) -> i64 {
        [self.committed.get(k), self.stats_committed.get(k)]
            .into_iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Records of partition `k` behind the high watermark, when the statistics told it.
    fn lag(&self, k: &(String, i32)) -> Option<i64> {
        let high = *self.high.get(k)?;
        Some((high - self.done(k)).max(0))
    }
}

/// Partitions behind the broker whose committed offset does not move: a broker that does not
/// serve them (tansu 0.6.0 from inside a record batch) or a fetch that keeps failing.
/// Looked at once a second; each is warned about once.
struct StallWatch {
    after: Duration,
    looked: Instant,
    /// Per partition behind: its committed offset and since when it has not moved.
    since: BTreeMap<(String, i32), (i64, Instant)>,
    stalled: BTreeSet<(String, i32)>,
}

impl StallWatch {
    fn new(after: Duration) -> Self {
        Self {
            after,
            looked: Instant::now(),
            since: BTreeMap::new(),
            stalled: BTreeSet::new(),
        }
    }

    fn look(&mut self, consumer: &BaseConsumer<MemberContext>) -> Result<()> {
        if self.looked.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        self.looked = Instant::now();
        let held = assignment(consumer)?;
        let ctx = consumer.context();
        let now = Instant::now();
        let behind: Vec<((String, i32), i64)> = ctx.with(|s| {
            held.iter()
                .filter(|k| s.lag(k).is_some_and(|l| l > 0))
                .map(|k| (k.clone(), s.done(k)))
                .collect()
        })?;
        self.since.retain(|k, _| behind.iter().any(|(b, _)| b == k));
        self.stalled.retain(|k| self.since.contains_key(k));
        for (k, done) in behind {
            let entry = self.since.entry(k.clone()).or_insert((done, now));
            if entry.0 != done {
                *entry = (done, now);
                self.stalled.remove(&k);
            } else if entry.1.elapsed() >= self.after && self.stalled.insert(k.clone()) {
                tracing::warn!(
                    member = %ctx.client_id,
                    partition = %partition_name(&k.0, k.1),
                    offset = done,
                    "partition stalled: behind the broker with no progress; the broker does \
                     not serve it from this offset (see docs/kafka.md)"
                );
            }
        }
        Ok(())
    }
}

struct MemberContext {
    client_id: String,
    status: Arc<StreamStatus>,
    state: Mutex<GroupState>,
}

impl MemberContext {
    fn with<T>(&self, f: impl FnOnce(&mut GroupState) -> T) -> Result<T> {
        let mut s = self
            .state
            .lock()
            .map_err(|_| Error::Invariant("a consumer's group state is poisoned".into()))?;
        Ok(f(&mut s))
    }
}

/// librdkafka's log lines, as this process's (`RUST_LOG=rdkafka=debug` and
/// `--kafka-config debug=cgrp` show the group protocol).
fn log_line(client: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "rdkafka", client, facility, "{message}");
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "rdkafka", client, facility, "{message}");
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "rdkafka", client, facility, "{message}");
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "rdkafka", client, facility, "{message}");
        }
    }
}

impl ClientContext for MemberContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_line(&self.client_id, level, facility, message);
    }

    fn stats(&self, statistics: Statistics) {
        let _ = self.with(|s| {
            for (topic, t) in statistics.topics {
                for (p, part) in t.partitions {
                    if p >= 0 && part.hi_offset >= 0 {
                        s.high.insert((topic.clone(), p), part.hi_offset);
                    }
                    if p >= 0 && part.committed_offset >= 0 {
                        s.stats_committed
                            .insert((topic.clone(), p), part.committed_offset);
                    }
                }
            }
        });
    }
}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let (what, tpl) = match rebalance {
            Rebalance::Assign(tpl) => ("assigned", tpl),
            Rebalance::Revoke(tpl) => ("revoked", tpl),
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "rebalance error");
                return;
            }
        };
        let partitions: Vec<String> = tpl
            .elements()
            .iter()
            .map(|e| partition_name(e.topic(), e.partition()))
            .collect();
        tracing::info!(member = %self.client_id, what, partitions = partitions.join(" "), "rebalance");
        let _ = self.with(|s| s.rebalances += 1);
        // An eager rebalance revokes everything, then assigns anew.
        let held = if what == "assigned" {
            partitions.into_iter().collect()
        } else {
            BTreeSet::new()
        };
        self.status.set(&self.client_id, held);
    }
}

/// The partitions a consumer holds now (librdkafka's own assignment: what it fetches).
fn assignment(consumer: &BaseConsumer<MemberContext>) -> Result<BTreeSet<(String, i32)>> {
    let tpl = consumer
        .assignment()
        .map_err(|e| kafka_error("cannot read the assignment", "the consumer", e))?;
    Ok(tpl
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect())
}

/// The record a polled message stands for, key and value base64 as in an MSK event.
fn record_of<M: Message>(m: &M) -> KafkaRecordIn {
    KafkaRecordIn {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis().unwrap_or_default(),
        key: m.key().map(|k| STANDARD.encode(k)),
        value: m.payload().map(|v| STANDARD.encode(v)),
    }
}

/// Consumes both topics as `opts.group` until `stop` is raised (or, with
/// [`StreamOptions::idle_exit`], until caught up), indexing every batch through `handler`
/// and committing its offsets after. A batch the handler fails is tried again three times;
/// then the member stops with the error, its offsets uncommitted (a restart redelivers it).
pub fn stream<H: BatchHandler>(
    conn: &Connection,
    opts: &StreamOptions,
    handler: &H,
    stop: &AtomicBool,
) -> Result<StreamReport> {
    let started = Instant::now();
    let members = opts.consumers.max(1);
    // A member that fails raises this so the others stop too.
    let failed = AtomicBool::new(false);
    let results: Vec<Result<(MemberReport, BatchReport, GroupState)>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..members)
                .map(|n| {
                    let failed = &failed;
                    scope.spawn(move || {
                        let r = member(conn, opts, n, handler, stop, failed, started);
                        if r.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        r
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Invariant("a consumer thread panicked".into()))
                    })
                })
                .collect()
        });
    let mut report = StreamReport {
        brokers: conn.brokers.clone(),
        group: opts.group.clone(),
        stopped: if stop.load(Ordering::SeqCst) {
            "signal".into()
        } else {
            "idle".into()
        },
        ..StreamReport::default()
    };
    for r in results {
        let (m, indexed, state) = r?;
        report.indexed.add(&indexed);
        for k in &state.held {
            if let Some(lag) = state.lag(k) {
                report.lag.insert(partition_name(&k.0, k.1), lag);
            }
        }
        report.members.push(m);
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// One member: subscribes, polls batches, indexes them, commits, until told to stop.
fn member<H: BatchHandler>(
    conn: &Connection,
    opts: &StreamOptions,
    n: usize,
    handler: &H,
    stop: &AtomicBool,
    failed: &AtomicBool,
    started: Instant,
) -> Result<(MemberReport, BatchReport, GroupState)> {
    let client_id = format!("recon-stream-{n}");
    let consumer: BaseConsumer<MemberContext> = BaseConsumer::from_config_and_context(
        &conn.config(&[
            ("group.id", opts.group.as_str()),
            ("client.id", client_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "500"),
            ("session.timeout.ms", DEFAULT_SESSION_TIMEOUT_MS),
            ("heartbeat.interval.ms", "1000"),
        ]),
        MemberContext {
            client_id: client_id.clone(),
            status: opts.status.clone(),
            state: Mutex::default(),
        },
    )
    .map_err(|e| kafka_error("cannot create a consumer", &conn.brokers, e))?;
    consumer
        .subscribe(&TOPICS)
        .map_err(|e| kafka_error("cannot subscribe to the topics", &conn.brokers, e))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::io("a consumer's runtime", e))?;
    let ctx = consumer.context().clone();
    let mut report = MemberReport {
        client_id,
        ..MemberReport::default()
    };
    let mut indexed = BatchReport::default();
    let mut batch: Vec<KafkaRecordIn> = Vec::with_capacity(opts.batch_size);
    let mut batch_started: Option<Instant> = None;
    let mut last_record = Instant::now();
    let mut stalls = StallWatch::new(opts.stall_after);
    loop {
        let stopping = stop.load(Ordering::SeqCst) || failed.load(Ordering::SeqCst);
        if !stopping {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    batch.push(record_of(&m));
                    batch_started.get_or_insert_with(Instant::now);
                    last_record = Instant::now();
                }
                Some(Err(e)) => {
                    report.consumer_errors += 1;
                    tracing::warn!(error = %e, member = %report.client_id, "consumer error (librdkafka retries)");
                }
                None => {}
            }
        }
        let full = batch.len() >= opts.batch_size.max(1);
        let waited = batch_started.is_some_and(|t| t.elapsed() >= opts.batch_window);
        if !batch.is_empty() && (full || waited || stopping) {
            // Records of partitions a rebalance took away meanwhile are left to their next
            // owner, which reads them from the last commit.
            let held = assignment(&consumer)?;
            let before = batch.len();
            batch.retain(|r| held.contains(&(r.topic.clone(), r.partition)));
            report.dropped_on_revoke += (before - batch.len()) as u64;
        }
        if !batch.is_empty() && (full || waited || stopping) {
            let r = index_and_commit(
                &consumer,
                &rt,
                handler,
                std::mem::take(&mut batch),
                &mut report,
            )?;
            report.last_commit_ms = started.elapsed().as_millis() as u64;
            indexed.add(&r);
            batch_started = None;
        }
        if stopping {
            break;
        }
        stalls.look(&consumer)?;
        if let Some(idle) = opts.idle_exit
            && batch.is_empty()
            && last_record.elapsed() >= idle
            && caught_up(&consumer, last_record, idle, conn.session_timeout())?
        {
            break;
        }
    }
    let held = assignment(&consumer)?;
    report.assigned = held.iter().map(|(t, p)| partition_name(t, *p)).collect();
    let mut state = ctx.with(std::mem::take)?;
    state.held = held;
    report.rebalances = state.rebalances;
    report.stalled = stalls
        .stalled
        .iter()
        .map(|(t, p)| partition_name(t, *p))
        .collect();
    // Dropping the consumer closes it: it leaves the group, which hands its partitions on.
    drop(consumer);
    Ok((report, indexed, state))
}

/// Whether a member has nothing left to read: idle for `idle` and, on every partition it holds,
/// at the high watermark. A member without partitions waits longer, for two session timeouts
/// at least: a member that died holding them keeps them until its session expires, and a
/// restart joins only then.
fn caught_up(
    consumer: &BaseConsumer<MemberContext>,
    last_record: Instant,
    idle: Duration,
    session: Duration,
) -> Result<bool> {
    let held = assignment(consumer)?;
    if held.is_empty() {
        return Ok(last_record.elapsed() >= (3 * idle).max(2 * session));
    }
    consumer
        .context()
        .with(|s| held.iter().all(|k| s.lag(k) == Some(0)))
}

/// Indexes one batch through the handler (three more tries on failure), then commits the
/// offset after the last record of each partition in it.
fn index_and_commit<H: BatchHandler>(
    consumer: &BaseConsumer<MemberContext>,
    rt: &tokio::runtime::Runtime,
    handler: &H,
    batch: Vec<KafkaRecordIn>,
    report: &mut MemberReport,
) -> Result<BatchReport> {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for r in &batch {
        let e = next.entry((r.topic.clone(), r.partition)).or_default();
        *e = (*e).max(r.offset + 1);
    }
    let records = batch.len() as u64;
    for r in &batch {
        *report
            .read
            .entry(partition_name(&r.topic, r.partition))
            .or_default() += 1;
    }
    let event = kafka_event(batch);
    let mut tries = 0u32;
    let r = loop {
        match rt.block_on(handler.handle_batch(event.clone())) {
            Ok(r) => break r,
            Err(e) if tries < 3 => {
                tries += 1;
                tracing::warn!(error = %e, try_ = tries, "indexing a batch failed; trying again");
                std::thread::sleep(Duration::from_secs(1 << tries));
            }
            Err(e) => return Err(e),
        }
    };
    report.batches += 1;
    report.records += records;
    recon_shared::fault::point("stream.commit");
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in &next {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| kafka_error("cannot name an offset", "the consumer", e))?;
    }
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => {
            report.commits += 1;
            consumer.context().with(|s| {
                for (k, o) in next {
                    s.committed.insert(k, o);
                }
            })?;
        }
        Err(e) => {
            report.commit_failures += 1;
            report.uncommitted_records += records;
            tracing::warn!(error = %e, "offsets not committed (a rebalance took the partitions?): their next owner receives these records again, which the index absorbs");
        }
    }
    Ok(r)
}
