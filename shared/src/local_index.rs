//! The local TransactionIndex: an embedded store under `{data}/state/transaction_index/` with
//! the key, GSIs and conditional-write semantics of the DynamoDB table (DESIGN §7).
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
use std::hash::{BuildHasherDefault, Hasher};
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

/// FxHash: a fast, non-cryptographic hasher for the in-memory maps (keys are ids; the store is
/// a local development tool, not exposed to untrusted input at scale).
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

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

impl LocalTransactionIndex {
    fn path_of(data_dir: &Path) -> PathBuf {
        data_dir.join(STATE_DIR).join(INDEX_DIR)
    }

    /// Opens the store of a data directory for writing (creating it), taking its lock.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let dir = Self::path_of(data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let lock_path = dir.join(LOCK);
        let mut lock = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder wrote its process id into the file (best effort: only for the message).
                let holder = std::fs::read_to_string(&lock_path)
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
                return Err(Error::Locked {
                    what: "the local transaction index",
                    path: lock_path,
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        {
            use std::io::Write as _;
            lock.set_len(0)
                .and_then(|()| writeln!(lock, "{}", std::process::id()))
                .map_err(|e| Error::io(&lock_path, e))?;
        }
        let g = read_generation(&dir)?;
        let (t, len, lines) = load(&dir, g)?;
        let log_path = dir.join(log_name(g));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        // Drop a torn last line so appends start on a line boundary.
        log.set_len(len).map_err(|e| Error::io(&log_path, e))?;
        // Files of other generations are leftovers of an interrupted compaction.
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let name = entry.map_err(|e| Error::io(&dir, e))?.file_name();
            let name = name.to_string_lossy();
            let stray = (name.starts_with("snapshot-") && name != snapshot_name(g).as_str())
                || (name.starts_with("log-") && name != log_name(g).as_str())
                || name.starts_with(".snapshot");
            if stray {
                let p = dir.join(name.as_ref());
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        let index = Self {
            dir,
            writer: true,
            inner: Mutex::new(Inner {
                t,
                generation: g,
                log_len: len,
                log_lines: lines,
                log: Some(BufWriter::with_capacity(1 << 20, log)),
                checked: None,
                unlogged: false,
            }),
            _lock: Some(lock),
        };
        {
            let mut inner = index.lock()?;
            if inner.log_lines > 10_000 && inner.log_lines > inner.t.items.len() as u64 {
                index.compact_locked(&mut inner)?;
            }
        }
        Ok(index)
    }

    /// Opens the store read-only (an absent store is empty). It follows the writer's changes.
    pub fn open_read_only(data_dir: &Path) -> Result<Self> {
        let dir = Self::path_of(data_dir);
        let (g, t, len, lines) = load_current(&dir)?;
        Ok(Self {
            dir,
            writer: false,
            inner: Mutex::new(Inner {
                t,
                generation: g,
                log_len: len,
                log_lines: lines,
                log: None,
                checked: Some(Instant::now()),
                unlogged: false,
            }),
            _lock: None,
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::Invariant("transaction index lock poisoned".into()))
    }

    /// The tables, brought up to date with the writer when this is a reader.
    fn tables(&self) -> Result<MutexGuard<'_, Inner>> {
        let mut inner = self.lock()?;
        if !self.writer && inner.checked.is_none_or(|c| c.elapsed() >= FOLLOW_EVERY) {
            self.follow(&mut inner)?;
            inner.checked = Some(Instant::now());
        }
        Ok(inner)
    }

    fn follow(&self, inner: &mut Inner) -> Result<()> {
        let g = read_generation(&self.dir)?;
        let log_path = self.dir.join(log_name(g));
        let size = match std::fs::metadata(&log_path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io(&log_path, e)),
        };
        if g != inner.generation || size < inner.log_len {
            let (g, t, len, lines) = load_current(&self.dir)?;
            (inner.t, inner.generation, inner.log_len, inner.log_lines) = (t, g, len, lines);
            return Ok(());
        }
        if size > inner.log_len {
            let mut f = File::open(&log_path).map_err(|e| Error::io(&log_path, e))?;
            f.seek(SeekFrom::Start(inner.log_len))
                .map_err(|e| Error::io(&log_path, e))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .map_err(|e| Error::io(&log_path, e))?;
            let used = inner.t.apply_lines(&buf, &log_path)?;
            inner.log_len += used as u64;
            inner.log_lines += buf[..used].iter().filter(|c| **c == b'\n').count() as u64;
        }
        Ok(())
    }

    fn append(&self, inner: &mut Inner, line: &impl serde::Serialize) -> Result<()> {
        let generation = inner.generation;
        let log = inner.log.as_mut().ok_or_else(|| Error::InvalidConfig {
            name: self.dir.display().to_string(),
            reason: "the transaction index was opened read-only".into(),
        })?;
        if inner.unlogged {
            return Ok(());
        }
        serde_json::to_writer(&mut *log, line)?;
        // The log's path is built only for an error (this runs once per write).
        log.write_all(b"\n")
            .map_err(|e| Error::io(self.dir.join(log_name(generation)), e))?;
        inner.log_lines += 1;
        Ok(())
    }

    /// Makes the log's new lines visible to readers (and a crash keeps them).
    fn flush(&self, inner: &mut Inner) -> Result<()> {
        let path = self.dir.join(log_name(inner.generation));
        if let Some(log) = inner.log.as_mut() {
            crate::fault::point("index.append");
            log.flush().map_err(|e| Error::io(&path, e))?;
        }
        if inner.log_lines > COMPACT_MIN_LOG && inner.log_lines > 2 * inner.t.items.len() as u64 {
            self.compact_locked(inner)?;
        }
        Ok(())
    }

    /// Until the next [`compact`](Self::compact), writes change the items in memory only:
    /// nothing goes to the log, and the compaction writes the result at once. For a bulk load
    /// that is redone from its source if the process stops first (`recon run` replays the
    /// day's topics, and the upserts are idempotent): meanwhile the store on disk keeps its
    /// last generation, and readers see the load once it is compacted.
    pub fn load_unlogged(&self) -> Result<()> {
        self.lock()?.unlogged = true;
        Ok(())
    }

    /// Writes a snapshot of the current state and starts a new, empty log.
    pub fn compact(&self) -> Result<()> {
        let mut inner = self.lock()?;
        self.compact_locked(&mut inner)
    }

    fn compact_locked(&self, inner: &mut Inner) -> Result<()> {
        if !self.writer {
            return Err(Error::InvalidConfig {
                name: self.dir.display().to_string(),
                reason: "the transaction index was opened read-only".into(),
            });
        }
        let old = inner.generation;
        let g = old + 1;
        let tmp = self.dir.join(format!(".snapshot-{g}.tmp"));
        let snap = self.dir.join(snapshot_name(g));
        crate::fault::point("index.snapshot");
        {
            let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            let mut items: Vec<(&Key, &IndexItem)> =
                inner.t.items.iter().map(|(k, v)| (k, &**v)).collect();
            items.sort_unstable_by(|a, b| a.0.cmp(b.0));
            // Blocks of items are serialized on every core, a round at a time (bounded
            // memory), and written in key order.
            let workers = std::thread::available_parallelism().map_or(1, usize::from);
            for round in items.chunks(SNAPSHOT_BLOCK * workers) {
                let blocks: Vec<&[(&Key, &IndexItem)]> = round.chunks(SNAPSHOT_BLOCK).collect();
                for block in each_on_a_thread(&blocks, |block| snapshot_lines(block)) {
                    let bytes = block
                        .ok_or_else(|| Error::Invariant("a snapshot writer panicked".into()))??;
                    f.write_all(&bytes).map_err(|e| Error::io(&tmp, e))?;
                }
            }
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        }
        std::fs::rename(&tmp, &snap).map_err(|e| Error::io(&snap, e))?;
        let log_path = self.dir.join(log_name(g));
        let log = File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
        crate::fault::point("index.switch");
        write_atomic(&self.dir.join(CURRENT), format!("{g}\n").as_bytes())?;
        inner.log = Some(BufWriter::with_capacity(1 << 20, log));
        (inner.generation, inner.log_len, inner.log_lines) = (g, 0, 0);
        inner.unlogged = false;
        for name in [snapshot_name(old), log_name(old)] {
            let p = self.dir.join(name);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
        }
        Ok(())
    }

    /// Every item, sorted by key (tests and tools).
    pub fn scan(&self) -> Result<Vec<IndexItem>> {
        let inner = self.tables()?;
        let mut items: Vec<IndexItem> = inner
            .t
            .items
            .values()
            .map(|i| IndexItem::clone(i))
            .collect();
        items.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
        Ok(items)
    }

    /// Every merchant-day total, sorted by merchant and day.
    pub fn all_totals(&self) -> Result<Vec<MerchantDayTotals>> {
        let inner = self.tables()?;
        let mut out: Vec<MerchantDayTotals> = inner
            .t
            .merchants
            .values()
            .flat_map(|e| e.totals.values().cloned())
            .collect();
        out.sort_by(|a, b| (&a.merchant_id, a.txn_day).cmp(&(&b.merchant_id, b.txn_day)));
        Ok(out)
    }

    pub fn len(&self) -> Result<usize> {
        Ok(self.tables()?.t.items.len())
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The snapshot file of the current generation (after [`Self::compact`]).
    pub fn snapshot_path(&self) -> Result<PathBuf> {
        Ok(self.dir.join(snapshot_name(self.lock()?.generation)))
    }
}

/// Reads the lines of a snapshot (for tools that do not need the tables).
pub fn read_snapshot_lines(path: &Path) -> Result<Vec<String>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    BufReader::new(f)
        .lines()
        .map(|l| l.map_err(|e| Error::io(path, e)))
        .collect()
}

impl TransactionIndex for LocalTransactionIndex {
    async fn get_many(&self, ids: &[TransactionId]) -> Result<Vec<IndexItem>> {
        let inner = self.tables()?;
        Ok(ids
            .iter()
            .filter_map(|id| inner.t.get(id).cloned())
            .collect())
    }

    async fn map_many<T: Send>(
        &self,
        ids: &[TransactionId],
        f: impl Fn(&IndexItem) -> T + Send + Sync,
    ) -> Result<Vec<T>> {
        let inner = self.tables()?;
        Ok(ids
            .iter()
            .filter_map(|id| inner.t.get(id).map(&f))
            .collect())
    }

    async fn put_many(&self, writes: Vec<ConditionalPut>) -> Result<Vec<PutOutcome>> {
        let mut inner = self.lock()?;
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            let stored = inner.t.get(&w.item.transaction_id);
            let current = stored.map(IndexItem::version).unwrap_or_default();
            if current != w.expected || !w.item.version().covers(&current) {
                out.push(PutOutcome::Conflict);
                continue;
            }
            let mut item = w.item;
            item.settlement = stored.and_then(|s| s.settlement.clone());
            self.append(&mut inner, &item)?;
            inner.t.replace(item)?;
            out.push(PutOutcome::Applied);
        }
        self.flush(&mut inner)?;
        Ok(out)
    }

    async fn query(&self, q: &IndexQuery) -> Result<IndexPage> {
        let mut inner = self.tables()?;
        let after = q
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, q.gsi, &q.key))
            .transpose()?;
        let mut page = IndexPage {
            items: Vec::new(),
            next: None,
        };
        let Ok(k) = Key::new(&q.key) else {
            return Ok(page);
        };
        let Tables {
            items,
            users,
            merchants,
        } = &mut inner.t;
        let rows = match q.gsi {
            Gsi::ByUser => users.get_mut(&k).map(|e| &mut e.rows),
            Gsi::ByMerchant => merchants.get_mut(&k).map(|e| &mut e.rows),
        };
        let Some(rows) = rows else {
            return Ok(page);
        };
        rows.sort();
        let rows = &rows.rows;
        let mut start = q.from.map_or(0, |f| rows.partition_point(|(d, _)| *d < f));
        if let Some(a) = &after {
            start = start.max(rows.partition_point(|r| r <= a));
        }
        let mut last: Option<&(BusinessDate, Key)> = None;
        for row in rows.get(start..).unwrap_or_default() {
            if q.to.is_some_and(|t| row.0 > t) {
                break;
            }
            if page.items.len() >= q.limit {
                page.next = last.map(|(d, id)| encode_cursor(q.gsi, &q.key, *d, id));
                break;
            }
            if let Some(item) = items.get(&row.1) {
                page.items.push(IndexItem::clone(item));
            }
            last = Some(row);
        }
        Ok(page)
    }

    async fn write_settlements(&self, updates: &[SettlementUpdate]) -> Result<u64> {
        let mut inner = self.lock()?;
        let mut n = 0;
        for u in updates {
            // Logged (before the tables change, as every write) only when it changes
            // something: a re-run of the close writes nothing.
            let unchanged = inner
                .t
                .get(&u.transaction_id)
                .is_some_and(|i| i.settlement.as_deref() == Some(&u.settlement));
            if !unchanged {
                let line = SettleLine {
                    settle: u.transaction_id.as_str().into(),
                    settlement: std::borrow::Cow::Borrowed(&u.settlement),
                };
                self.append(&mut inner, &line)?;
                inner
                    .t
                    .settle(u.transaction_id.clone(), u.settlement.clone())?;
            }
            n += 1;
        }
        self.flush(&mut inner)?;
        Ok(n)
    }

    async fn merchant_day(
        &self,
        merchant: &MerchantId,
        day: BusinessDate,
    ) -> Result<Option<MerchantDayTotals>> {
        let inner = self.tables()?;
        let Ok(k) = Key::new(merchant.as_str()) else {
            return Ok(None);
        };
        Ok(inner
            .t
            .merchants
            .get(&k)
            .and_then(|e| e.totals.get(&day))
            .cloned())
    }

    async fn user_hour_counts(&self, keys: &[(String, i64)]) -> Result<Vec<u64>> {
        let inner = self.tables()?;
        Ok(keys
            .iter()
            .map(|(u, h)| {
                Key::new(u)
                    .ok()
                    .and_then(|k| inner.t.users.get(&k))
                    .and_then(|e| e.hours.iter().find(|(x, _)| x == h))
                    .map_or(0, |(_, n)| *n)
            })
            .collect())
    }
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
