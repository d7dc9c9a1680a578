//! The local TransactionIndex's operations: opening (with its lock), the writes that append to
//! the log, compaction into a new snapshot generation, and the port's reads.

use super::*;

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

    /// How many transactions the index holds (one item per `transaction_id`).
    pub fn len(&self) -> Result<usize> {
        Ok(self.tables()?.t.items.len())
    }

    /// Whether the index holds no transaction.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The snapshot file of the current generation (after [`Self::compact`]).
    pub fn snapshot_path(&self) -> Result<PathBuf> {
        Ok(self.dir.join(snapshot_name(self.lock()?.generation)))
    }
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
