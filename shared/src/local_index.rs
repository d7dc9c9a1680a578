//! The local TransactionIndex: an embedded store under `{data}/state/transaction_index/` with
//! the key, GSIs and conditional-write semantics of the DynamoDB table (design.md §7).
//!
//! Items live in memory (a hash map by key, ordered sets for the GSIs, the aggregates beside
//! them) and on disk as a snapshot plus an append-only log:
//!
//! - `CURRENT` names the generation `g`;
//! - `snapshot-{g}.jsonl`: every item, sorted by `transaction_id` (so a compaction of the
//!   same state writes the same bytes);
//! - `log-{g}.jsonl`: every item written since, one JSON line per write (last line wins), or,
//!   for a settlement written back onto an item, a line `{"settle": id, "settlement": {…}}`
//!   that replaces only that item's settlement (a bulk load that is redone from its source
//!   after a crash may skip the log until its compaction: [`LocalTransactionIndex::load_unlogged`]);
//! - `LOCK`: held by the one writer process; readers open without it and follow the writer
//!   (new log lines, new generations) on their next call.
//!
//! Opening loads the snapshot and replays the log (a torn last line, from a crash, is
//! dropped). Compaction writes `snapshot-{g+1}`, switches `CURRENT`, starts an empty log and
//! removes generation `g`; a crash at any point leaves a loadable generation. Aggregates are
//! not stored: they are functions of the items and rebuilt on load.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::Hasher;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};
use crate::ids::{BusinessDate, MerchantId, TransactionId};
use crate::index_item::{IndexItem, MerchantDayTotals, Settlement, aggregate_delta};
use crate::local::{STATE_DIR, write_atomic};
use crate::ports::{
    ConditionalPut, Gsi, IndexPage, IndexQuery, PutOutcome, SettlementUpdate, TransactionIndex,
};

mod store;

/// A log line that sets the settlement of one item (the first member names it, so a reader
/// tells it from an item by its first bytes).
#[derive(serde::Serialize, serde::Deserialize)]
struct SettleLine<'a> {
    #[serde(borrow)]
    settle: std::borrow::Cow<'a, str>,
    settlement: std::borrow::Cow<'a, Settlement>,
}

const SETTLE_PREFIX: &[u8] = b"{\"settle\":";

/// Directory of the store under `state/`.
pub const INDEX_DIR: &str = "transaction_index";
const CURRENT: &str = "CURRENT";
const LOCK: &str = "LOCK";
/// A writer compacts when its log holds more than this many lines and twice the items.
const COMPACT_MIN_LOG: u64 = 1_000_000;
/// How often a reader looks for the writer's changes.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

fn snapshot_name(g: u64) -> String {
    format!("snapshot-{g}.jsonl")
}

fn log_name(g: u64) -> String {
    format!("log-{g}.jsonl")
}

/// The in-memory maps hash with FxHash (`rustc-hash`): fast and non-cryptographic; keys are ids
/// and the store is a local development tool, not exposed to untrusted input at scale.
type Map<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// An id as a map key, held inline (every id and token is at most 64 bytes), so probing a map
/// or comparing rows never follows a pointer.
#[derive(Clone, Copy)]
struct Key {
    len: u8,
    buf: [u8; 64],
}

impl Key {
    fn new(s: &str) -> Result<Self> {
        let b = s.as_bytes();
        if b.len() > 64 {
            return Err(Error::Invariant(format!(
                "key of {} bytes is longer than any id",
                b.len()
            )));
        }
        let mut buf = [0u8; 64];
        buf[..b.len()].copy_from_slice(b);
        Ok(Self {
            len: b.len() as u8,
            buf,
        })
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.bytes()).unwrap_or_default()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl std::hash::Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.bytes());
    }
}

/// The rows of one GSI partition key, `(txn_day, transaction_id)`, sorted on demand: writes
/// append, the first query after them sorts (keeping them ordered on every write costs more
/// than the rest of the write).
#[derive(Default)]
struct Rows {
    rows: Vec<(BusinessDate, Key)>,
    sorted: bool,
}

impl Rows {
    fn insert(&mut self, day: BusinessDate, id: Key) {
        self.sorted = self.rows.is_empty();
        self.rows.push((day, id));
    }

    fn remove(&mut self, day: BusinessDate, id: &Key) {
        if let Some(i) = self.rows.iter().position(|(d, k)| *d == day && k == id) {
            self.rows.swap_remove(i);
            self.sorted = false;
        }
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.rows.sort_unstable();
            self.sorted = true;
        }
    }
}

/// A user: its `by_user` rows and its payments per UTC hour (VELOCITY).
#[derive(Default)]
struct UserEntry {
    rows: Rows,
    hours: Vec<(i64, u64)>,
}

/// A merchant: its `by_merchant` rows and its running totals per day.
#[derive(Default)]
struct MerchantEntry {
    rows: Rows,
    totals: BTreeMap<BusinessDate, MerchantDayTotals>,
}

fn bad_cursor(reason: &'static str) -> Error {
    Error::InvalidId {
        kind: "cursor",
        value: String::new(),
        reason,
    }
}

fn gsi_tag(gsi: Gsi) -> char {
    match gsi {
        Gsi::ByUser => 'u',
        Gsi::ByMerchant => 'm',
    }
}

fn encode_cursor(gsi: Gsi, key: &str, day: BusinessDate, id: &Key) -> String {
    cursor_for(gsi, key, day, id.as_str())
}

/// The cursor of a page that ends at `(day, id)` (the DynamoDB adapter writes the same ones).
pub(crate) fn cursor_for(gsi: Gsi, key: &str, day: BusinessDate, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}{key}\0{day}\0{id}", gsi_tag(gsi)))
}

/// The `(day, id)` a cursor points at, checked to belong to this index and key.
#[cfg(feature = "aws")]
pub(crate) fn cursor_position(cursor: &str, gsi: Gsi, key: &str) -> Result<(BusinessDate, String)> {
    decode_cursor(cursor, gsi, key).map(|(d, k)| (d, k.as_str().to_string()))
}

/// The (day, id) a cursor points at, checked to belong to this index and key.
fn decode_cursor(cursor: &str, gsi: Gsi, key: &str) -> Result<(BusinessDate, Key)> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| bad_cursor("not a cursor of this API"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad_cursor("not a cursor of this API"))?;
    let entry = text
        .strip_prefix(gsi_tag(gsi))
        .ok_or_else(|| bad_cursor("the cursor belongs to another query"))?;
    let parts: Vec<&str> = entry.split('\0').collect();
    match parts.as_slice() {
        [k, d, id] if *k == key => match (BusinessDate::parse(d), TransactionId::new(*id)) {
            (Ok(d), Ok(id)) => Ok((d, Key::new(id.as_str())?)),
            _ => Err(bad_cursor("the cursor belongs to another query")),
        },
        _ => Err(bad_cursor("the cursor belongs to another query")),
    }
}

/// Adds a signed change to a user's payments in hour `h` (an hour at zero is dropped).
fn hours_change(hours: &mut Vec<(i64, u64)>, h: i64, by: i64) -> Result<()> {
    let i = match hours.iter().position(|(x, _)| *x == h) {
        Some(i) => i,
        None => {
            hours.push((h, 0));
            hours.len() - 1
        }
    };
    hours[i].1 = hours[i]
        .1
        .checked_add_signed(by)
        .ok_or_else(|| Error::Invariant("user-hour count below zero".into()))?;
    if hours[i].1 == 0 {
        hours.swap_remove(i);
    }
    Ok(())
}

/// The tables in memory.
#[derive(Default)]
struct Tables {
    items: Map<Key, Box<IndexItem>>,
    users: Map<Key, UserEntry>,
    merchants: Map<Key, MerchantEntry>,
}

impl Tables {
    fn get(&self, id: &TransactionId) -> Option<&IndexItem> {
        let k = Key::new(id.as_str()).ok()?;
        self.items.get(&k).map(|b| &**b)
    }

    /// Replaces (or inserts) an item, keeping the GSIs in step and applying the change the
    /// core computes for the aggregates ([`aggregate_delta`]).
    fn replace(&mut self, new: IndexItem) -> Result<()> {
        let key = Key::new(new.transaction_id.as_str())?;
        let old = self.items.remove(&key);
        let prev = old.as_deref();
        let delta = aggregate_delta(prev, &new)?;
        // by_user rows, then the users' hours.
        let (ou, nu) = (prev.and_then(IndexItem::by_user_key), new.by_user_key());
        if ou != nu {
            if let Some((u, d)) = ou
                && let Some(e) = self.users.get_mut(&Key::new(u)?)
            {
                e.rows.remove(d, &key);
            }
            if let Some((u, d)) = nu {
                self.users
                    .entry(Key::new(u)?)
                    .or_default()
                    .rows
                    .insert(d, key);
            }
        }
        for ((u, h), by) in &delta.user_hours {
            let e = self.users.entry(Key::new(u)?).or_default();
            hours_change(&mut e.hours, *h, *by)?;
        }
        if let Some((u, _)) = ou {
            let uk = Key::new(u)?;
            if self
                .users
                .get(&uk)
                .is_some_and(|e| e.rows.rows.is_empty() && e.hours.is_empty())
            {
                self.users.remove(&uk);
            }
        }
        // by_merchant rows, then the merchant-day totals.
        let (om, nm) = (
            prev.and_then(IndexItem::by_merchant_key),
            new.by_merchant_key(),
        );
        if om != nm {
            if let Some((m, d)) = om
                && let Some(e) = self.merchants.get_mut(&Key::new(m.as_str())?)
            {
                e.rows.remove(d, &key);
            }
            if let Some((m, d)) = nm {
                let e = self.merchants.entry(Key::new(m.as_str())?).or_default();
                e.rows.insert(d, key);
            }
        }
        for md in &delta.merchant_days {
            let e = self
                .merchants
                .entry(Key::new(md.merchant_id.as_str())?)
                .or_default();
            let t = e
                .totals
                .entry(md.txn_day)
                .or_insert_with(|| MerchantDayTotals::new(md.merchant_id.clone(), md.txn_day));
            t.apply_delta(md)?;
            if t.is_empty() {
                e.totals.remove(&md.txn_day);
            }
        }
        if let Some((m, _)) = om {
            let mk = Key::new(m.as_str())?;
            if self
                .merchants
                .get(&mk)
                .is_some_and(|e| e.rows.rows.is_empty() && e.totals.is_empty())
            {
                self.merchants.remove(&mk);
            }
        }
        self.items.insert(key, Box::new(new));
        Ok(())
    }

    /// Sets an item's settlement (creating the item when there is none). Settlement fields
    /// feed no GSI and no total, so an existing item is updated in place.
    fn settle(&mut self, id: TransactionId, settlement: Settlement) -> Result<()> {
        match self.items.get_mut(&Key::new(id.as_str())?) {
            Some(item) => item.settlement = Some(Box::new(settlement)),
            None => {
                let mut item = IndexItem::empty(id);
                item.settlement = Some(Box::new(settlement));
                self.replace(item)?;
            }
        }
        Ok(())
    }

    /// Applies the complete lines of a log or snapshot; returns the bytes consumed. Lines are
    /// parsed on every core, in slices cut at line ends, then applied in file order.
    fn apply_lines(&mut self, bytes: &[u8], file: &Path) -> Result<usize> {
        // A torn last line (an interrupted write) is left for later.
        let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let complete = bytes.get(..end).unwrap_or_default();
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let slices = line_slices(complete, workers, 1 << 20);
        type Parsed = std::result::Result<Vec<LogLine>, (usize, String)>;
        let parsed: Vec<Parsed> = each_on_a_thread(&slices, |slice| parse_lines(slice))
            .into_iter()
            .map(|p| p.unwrap_or_else(|| Err((0, "the parser panicked".into()))))
            .collect();
        let mut line_no = 0;
        for (slice, lines) in slices.iter().zip(parsed) {
            let lines = lines.map_err(|(n, reason)| Error::InvalidFile {
                file: file.display().to_string(),
                reason: format!("line {}: {reason}", line_no + n + 1),
            })?;
            for line in lines {
                match line {
                    LogLine::Item(item) => self.replace(*item)?,
                    LogLine::Settle(id, settlement) => self.settle(id, settlement)?,
                }
            }
            line_no += slice.iter().filter(|b| **b == b'\n').count();
        }
        Ok(end)
    }
}

/// `f` of every part, each on a thread of its own, in order; `None` where `f` panicked.
fn each_on_a_thread<P: Sync, R: Send>(parts: &[P], f: impl Fn(&P) -> R + Sync) -> Vec<Option<R>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .map(|p| {
                let f = &f;
                scope.spawn(move || f(p))
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok()).collect()
    })
}

/// Items per block of a snapshot serialized by one thread.
const SNAPSHOT_BLOCK: usize = 1 << 16;

/// The snapshot lines of a block of items.
fn snapshot_lines(block: &[(&Key, &IndexItem)]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(block.len() * 700);
    for (_, item) in block {
        serde_json::to_writer(&mut out, item)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// `bytes` (whole lines) cut at line ends into about `parts` slices of at least `min` bytes.
fn line_slices(bytes: &[u8], parts: usize, min: usize) -> Vec<&[u8]> {
    let target = (bytes.len() / parts.max(1)).max(min).max(1);
    let mut slices = Vec::with_capacity(parts);
    let mut rest = bytes;
    while !rest.is_empty() {
        let cut = rest
            .get(target..)
            .and_then(|tail| tail.iter().position(|b| *b == b'\n'))
            .map_or(rest.len(), |i| target + i + 1);
        let (head, tail) = rest.split_at(cut);
        slices.push(head);
        rest = tail;
    }
    slices
}

/// One parsed line of a snapshot or log.
enum LogLine {
    Item(Box<IndexItem>),
    Settle(TransactionId, Settlement),
}

/// Parses complete lines; an error is the failing line's index in the slice and the reason.
fn parse_lines(slice: &[u8]) -> std::result::Result<Vec<LogLine>, (usize, String)> {
    let mut out = Vec::with_capacity(slice.len() / 512);
    for (n, line) in slice.split_inclusive(|b| *b == b'\n').enumerate() {
        let bad = |e: &dyn std::fmt::Display| (n, e.to_string());
        out.push(if line.starts_with(SETTLE_PREFIX) {
            let s: SettleLine<'_> = serde_json::from_slice(line).map_err(|e| bad(&e))?;
            let id = TransactionId::new(s.settle.as_ref()).map_err(|e| bad(&e))?;
            LogLine::Settle(id, s.settlement.into_owned())
        } else {
            LogLine::Item(Box::new(serde_json::from_slice(line).map_err(|e| bad(&e))?))
        });
    }
    Ok(out)
}

struct Inner {
    t: Tables,
    generation: u64,
    /// Bytes of `log-{generation}` applied.
    log_len: u64,
    log_lines: u64,
    log: Option<BufWriter<File>>,
    checked: Option<Instant>,
    /// Writes skip the log until the next compaction ([`LocalTransactionIndex::load_unlogged`]).
    unlogged: bool,
}

/// The local TransactionIndex. One writer process at a time; any number of readers.
pub struct LocalTransactionIndex {
    dir: PathBuf,
    writer: bool,
    inner: Mutex<Inner>,
    _lock: Option<File>,
}

impl std::fmt::Debug for LocalTransactionIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTransactionIndex")
            .field("dir", &self.dir)
            .field("writer", &self.writer)
            .finish()
    }
}

fn read_generation(dir: &Path) -> Result<u64> {
    let path = dir.join(CURRENT);
    match std::fs::read_to_string(&path) {
        Ok(s) => s.trim().parse().map_err(|_| Error::InvalidFile {
            file: path.display().to_string(),
            reason: "expected a generation number".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Loads the current generation, again if a compaction switched it meanwhile.
fn load_current(dir: &Path) -> Result<(u64, Tables, u64, u64)> {
    let mut g = read_generation(dir)?;
    for _ in 0..5 {
        let (t, len, lines) = load(dir, g)?;
        let now = read_generation(dir)?;
        if now == g {
            return Ok((g, t, len, lines));
        }
        g = now;
    }
    Err(Error::Invariant(format!(
        "{} keeps switching generations; try again",
        dir.display()
    )))
}

/// Loads generation `g`: its snapshot, then its log. Returns tables, log bytes and lines.
fn load(dir: &Path, g: u64) -> Result<(Tables, u64, u64)> {
    let mut t = Tables::default();
    let snap = dir.join(snapshot_name(g));
    if let Some(b) = read_file(&snap)? {
        t.apply_lines(&b, &snap)?;
    }
    let log = dir.join(log_name(g));
    let (mut len, mut lines) = (0, 0);
    if let Some(b) = read_file(&log)? {
        len = t.apply_lines(&b, &log)? as u64;
        lines = b[..len as usize].iter().filter(|c| **c == b'\n').count() as u64;
    }
    Ok((t, len, lines))
}

/// Reads the lines of a snapshot (for tools that do not need the tables).
pub fn read_snapshot_lines(path: &Path) -> Result<Vec<String>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    BufReader::new(f)
        .lines()
        .map(|l| l.map_err(|e| Error::io(path, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_lines_once_and_end_at_line_ends() {
        let text: String = (0..1000)
            .map(|i| format!("line {i} {}\n", "x".repeat(i % 37)))
            .collect();
        for (parts, min) in [(1, 1), (2, 1), (3, 100), (8, 1), (2, 1 << 20), (64, 7)] {
            let slices = line_slices(text.as_bytes(), parts, min);
            assert_eq!(slices.concat(), text.as_bytes(), "{parts} {min}");
            assert!(slices.iter().all(|s| s.ends_with(b"\n")), "{parts} {min}");
            assert!(
                slices.len() <= parts.max(1) + 1,
                "{} for {parts}",
                slices.len()
            );
        }
        assert!(line_slices(b"", 2, 1).is_empty());
    }
}
