//! Local adapters: the bucket is a directory, the tables are JSON documents under `state/`.
//! Writes go to a temporary file and are renamed into place, so readers never see half an
//! object and a crash leaves the previous version.

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::ids::{BusinessDate, SourceId};
use crate::ports::{
    Catalog, FileRecord, ManifestTable, ObjectInfo, ObjectStore, Partition, delivery_pk,
};

/// Serializes read-modify-write of the local tables' documents across threads of one process
/// (the local runner works on several partitions at once).
static TABLE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn table_lock() -> std::sync::MutexGuard<'static, ()> {
    TABLE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where the local tables live inside the data directory (not part of the bucket layout).
pub const STATE_DIR: &str = "state";

/// Writes `bytes` to `path` atomically (temp file + rename), creating parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| Error::Invariant(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A directory acting as the bucket.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// The bucket rooted at directory `root`: key `a/b` is the file `root/a/b`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory that stands for the bucket.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Maps a key to a path, refusing keys that would leave the root.
    fn path(&self, key: &str) -> Result<PathBuf> {
        let rel = Path::new(key);
        let ok = !key.is_empty()
            && rel.components().all(|c| matches!(c, Component::Normal(_)))
            && !key.contains('\\');
        if !ok {
            return Err(Error::InvalidId {
                kind: "object key",
                value: key.chars().take(120).collect(),
                reason: "must be a relative path without `..`",
            });
        }
        Ok(self.root.join(rel))
    }
}

/// Whether `name` is the temporary file of an in-flight [`write_atomic`] (`.{name}.tmp-{pid}`):
/// the only names the bucket's listing hides (other dot-files are objects like any other, so a
/// delivery folder's `.hidden` file is seen and reported).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temporary files that writes interrupted by a crash left under `root` (a write
/// renames its temporary file into place; one that never got there is garbage). Only for a
/// process that holds the data directory alone (`recon run` holds the TransactionIndex
/// lock). Returns how many were removed.
pub fn remove_interrupted_writes(root: &Path) -> Result<u64> {
    fn sweep(dir: &Path, removed: &mut u64) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if ft.is_dir() {
                sweep(&path, removed)?;
            } else if ft.is_file() && is_temp_name(&entry.file_name().to_string_lossy()) {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                *removed += 1;
            }
        }
        Ok(())
    }
    let mut removed = 0;
    sweep(root, &mut removed)?;
    Ok(removed)
}

/// What a file type is, in words, when it is not a regular file.
fn not_regular(ft: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        None
    } else if ft.is_symlink() {
        Some("a symbolic link")
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_socket() {
        Some("a socket")
    } else if ft.is_block_device() || ft.is_char_device() {
        Some("a device")
    } else {
        Some("a special file")
    }
}

/// Lists everything under `dir` but write_atomic's temporary files. Symbolic links (to folders
/// too) and special files are listed as objects, never followed, so that readers report them.
fn walk(dir: &Path, root: &Path, prefix: &str, out: &mut Vec<ObjectInfo>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if is_temp_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        // The entry's own type: a link is not followed.
        let ft = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if ft.is_dir() {
            walk(&path, root, prefix, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let key = rel.to_string_lossy().replace('\\', "/");
            if key.starts_with(prefix) {
                let size = entry.metadata().map_err(|e| Error::io(&path, e))?.len();
                out.push(ObjectInfo { key, size });
            }
        }
    }
    Ok(())
}

impl LocalStore {
    /// Reads the regular file at `key`, never leaving the root: no folder on the way and not
    /// the file itself may be a symbolic link, and a FIFO, device, socket or directory is
    /// refused before it is opened. The file is opened without following a link and without
    /// blocking, checked again through its handle, and read up to the length it had then.
    fn read_object(&self, key: &str) -> Result<Bytes> {
        use std::io::Read as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.path(key)?;
        let not_found = || Error::NotFound {
            key: key.to_string(),
        };
        let refuse = |what: &'static str| Error::NotRegularFile {
            key: key.to_string(),
            what,
        };
        let parts: Vec<Component<'_>> = Path::new(key).components().collect();
        let mut at = self.root.clone();
        for (i, c) in parts.iter().enumerate() {
            at.push(c);
            let meta = match std::fs::symlink_metadata(&at) {
                Ok(m) => m,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Err(not_found());
                }
                Err(e) => return Err(Error::io(&at, e)),
            };
            let ft = meta.file_type();
            if i + 1 < parts.len() {
                if ft.is_symlink() {
                    return Err(refuse("under a symbolic link to a folder"));
                }
                if !ft.is_dir() {
                    return Err(not_found());
                }
            } else if let Some(what) = not_regular(ft) {
                return Err(refuse(what));
            }
        }
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            // O_NOFOLLOW on a link that replaced the file since the check.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refuse("a symbolic link"));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let meta = file.metadata().map_err(|e| Error::io(&path, e))?;
        if let Some(what) = not_regular(meta.file_type()) {
            return Err(refuse(what));
        }
        let len = meta.len();
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Bytes::from(buf))
    }
}

impl ObjectStore for LocalStore {
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.read_object(key)
    }

    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        crate::fault::point("store.put");
        write_atomic(&self.path(key)?, &bytes)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // Walk from the deepest directory the prefix names.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path(dir_part)?
        };
        let mut out = Vec::new();
        walk(&start, &self.root, prefix, &mut out)?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let bytes = self.get(from).await?;
        self.put(to, bytes).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        // A folder is no object (as on S3, deleting a key that names none is a no-op); a link
        // or special file is removed itself, never what it points to.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return Ok(());
        }
        crate::fault::point("store.delete");
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// The Manifests table as one JSON document per partition key.
#[derive(Debug, Clone)]
pub struct LocalManifests {
    dir: PathBuf,
}

impl LocalManifests {
    /// The Manifests table kept under the state directory of `data_dir` (`manifests/`).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(STATE_DIR).join("manifests"),
        }
    }

    fn path(&self, pk: &str) -> PathBuf {
        self.dir.join(format!("{}.json", pk.replace('#', "__")))
    }

    fn read(&self, pk: &str) -> Result<Vec<FileRecord>> {
        let path = self.path(pk);
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

impl ManifestTable for LocalManifests {
    async fn delivery(&self, source: &SourceId, date: BusinessDate) -> Result<Vec<FileRecord>> {
        self.read(&delivery_pk(source, date))
    }

    async fn put(&self, records: &[FileRecord]) -> Result<()> {
        let _guard = table_lock();
        crate::fault::point("manifests.put");
        let mut by_pk: std::collections::BTreeMap<String, Vec<&FileRecord>> = Default::default();
        for r in records {
            by_pk.entry(r.pk()).or_default().push(r);
        }
        for (pk, new) in by_pk {
            let mut rows = self.read(&pk)?;
            for r in new {
                match rows.iter_mut().find(|x| x.file == r.file) {
                    Some(x) => *x = r.clone(),
                    None => rows.push(r.clone()),
                }
            }
            rows.sort_by(|a, b| a.file.cmp(&b.file));
            let mut bytes = serde_json::to_vec_pretty(&rows)?;
            bytes.push(b'\n');
            write_atomic(&self.path(&pk), &bytes)?;
        }
        Ok(())
    }
}

/// The catalog as one JSON document per table.
#[derive(Debug, Clone)]
pub struct LocalCatalog {
    dir: PathBuf,
}

impl LocalCatalog {
    /// The catalog kept under the state directory of `data_dir` (`catalog/`).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(STATE_DIR).join("catalog"),
        }
    }

    fn path(&self, database: &str, table: &str) -> PathBuf {
        self.dir.join(database).join(format!("{table}.json"))
    }

    fn read(&self, database: &str, table: &str) -> Result<Vec<Partition>> {
        let path = self.path(database, table);
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

impl Catalog for LocalCatalog {
    async fn register_partition(&self, p: &Partition) -> Result<()> {
        let _guard = table_lock();
        crate::fault::point("catalog.put");
        let mut parts = self.read(&p.database, &p.table)?;
        match parts.iter_mut().find(|x| x.values == p.values) {
            Some(x) if x == p => return Ok(()),
            Some(x) => *x = p.clone(),
            None => parts.push(p.clone()),
        }
        parts.sort();
        let mut bytes = serde_json::to_vec_pretty(&parts)?;
        bytes.push(b'\n');
        write_atomic(&self.path(&p.database, &p.table), &bytes)
    }

    async fn partitions(&self, database: &str, table: &str) -> Result<Vec<Partition>> {
        self.read(database, table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        // The local adapters never suspend, so polling once completes them.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn store_puts_gets_lists_copies_deletes() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let s = LocalStore::new(dir.path());
        block_on(s.put("a/b/c.txt", Bytes::from_static(b"hello")))?;
        block_on(s.put("a/b/d.txt", Bytes::from_static(b"x")))?;
        block_on(s.put("a/e.txt", Bytes::from_static(b"yy")))?;
        assert_eq!(block_on(s.get("a/b/c.txt"))?, Bytes::from_static(b"hello"));
        let keys: Vec<String> = block_on(s.list("a/b/"))?
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["a/b/c.txt", "a/b/d.txt"]);
        assert_eq!(block_on(s.list("a/"))?.len(), 3);
        assert_eq!(block_on(s.list("a/b/c"))?.len(), 1);
        assert!(block_on(s.list("nope/"))?.is_empty());
        block_on(s.copy("a/e.txt", "z/e.txt"))?;
        assert_eq!(block_on(s.get("z/e.txt"))?.len(), 2);
        block_on(s.delete("a/e.txt"))?;
        block_on(s.delete("a/e.txt"))?;
        assert!(matches!(
            block_on(s.get("a/e.txt")),
            Err(Error::NotFound { .. })
        ));
        for bad in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert!(block_on(s.get(bad)).is_err(), "{bad}");
        }
        Ok(())
    }

    /// Makes a FIFO with the system's `mkfifo` (the crate has no unsafe code to call it).
    fn mkfifo(path: &Path) -> Result<()> {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .map_err(|e| Error::io(path, e))?
            .success();
        assert!(ok, "mkfifo {}", path.display());
        Ok(())
    }

    #[test]
    fn links_and_special_files_are_listed_but_never_followed_or_opened() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let outside = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let secret = outside.path().join("secret.txt");
        std::fs::write(&secret, b"outside the bucket").map_err(|e| Error::io(&secret, e))?;
        let s = LocalStore::new(dir.path());
        block_on(s.put("d/ok.csv", Bytes::from_static(b"fine")))?;
        let d = dir.path().join("d");
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, d.join(name)).map_err(|e| Error::io(name, e))
        };
        link(&secret, "out.csv")?;
        link(Path::new("/dev/zero"), "zero.csv")?;
        link(outside.path(), "sub")?;
        mkfifo(&d.join("pipe.csv"))?;
        let keys: Vec<String> = block_on(s.list("d/"))?.into_iter().map(|o| o.key).collect();
        assert_eq!(
            keys,
            ["d/ok.csv", "d/out.csv", "d/pipe.csv", "d/sub", "d/zero.csv"],
            "links and the FIFO are listed (to be reported), the linked folder is not walked"
        );
        let refused = |key: &str| match block_on(s.get(key)) {
            Err(Error::NotRegularFile { what, .. }) => what,
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(refused("d/out.csv"), "a symbolic link");
        assert_eq!(refused("d/zero.csv"), "a symbolic link");
        assert_eq!(refused("d/pipe.csv"), "a FIFO (named pipe)");
        assert_eq!(
            refused("d/sub/secret.txt"),
            "under a symbolic link to a folder"
        );
        assert_eq!(refused("d"), "a directory");
        // Copying a link copies nothing; deleting it removes the link, not its target.
        assert!(block_on(s.copy("d/out.csv", "q/out.csv")).is_err());
        assert!(!dir.path().join("q/out.csv").exists());
        block_on(s.delete("d/out.csv"))?;
        block_on(s.delete("d/pipe.csv"))?;
        assert!(secret.exists());
        assert!(std::fs::symlink_metadata(d.join("out.csv")).is_err());
        assert_eq!(block_on(s.get("d/ok.csv"))?, Bytes::from_static(b"fine"));
        // A folder is no object: deleting its key is a no-op.
        block_on(s.delete("d"))?;
        assert!(d.is_dir());
        Ok(())
    }

    #[test]
    fn dot_files_are_listed_and_only_temporary_files_hidden() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let s = LocalStore::new(dir.path());
        block_on(s.put("d/.hidden.csv", Bytes::from_static(b"x")))?;
        block_on(s.put("d/sub/inner.csv", Bytes::from_static(b"y")))?;
        let tmp = dir.path().join("d/.a.csv.tmp-4242");
        std::fs::write(&tmp, b"half").map_err(|e| Error::io(&tmp, e))?;
        let keys: Vec<String> = block_on(s.list("d/"))?.into_iter().map(|o| o.key).collect();
        assert_eq!(keys, ["d/.hidden.csv", "d/sub/inner.csv"]);
        assert!(is_temp_name(".a.csv.tmp-4242"));
        for name in [".hidden", ".a.csv.tmp-", ".a.tmp-12x", "a.tmp-12"] {
            assert!(!is_temp_name(name), "{name}");
        }
        Ok(())
    }

    #[test]
    fn catalog_registration_is_idempotent() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let c = LocalCatalog::new(dir.path());
        let p = Partition {
            database: "recon".into(),
            table: "statements".into(),
            values: vec![
                ("business_date".into(), "2026-11-20".into()),
                ("bank_id".into(), "bank_01".into()),
            ],
            location: "curated/statements/business_date=2026-11-20/bank_id=bank_01/".into(),
        };
        block_on(c.register_partition(&p))?;
        let before =
            std::fs::read(c.path("recon", "statements")).map_err(|e| Error::io("cat", e))?;
        block_on(c.register_partition(&p))?;
        let after =
            std::fs::read(c.path("recon", "statements")).map_err(|e| Error::io("cat", e))?;
        assert_eq!(before, after);
        assert_eq!(block_on(c.partitions("recon", "statements"))?, vec![p]);
        Ok(())
    }
}

/// The Runs table as one JSON document per business date.
#[derive(Debug, Clone)]
pub struct LocalRuns {
    dir: PathBuf,
}

impl LocalRuns {
    /// The Runs table kept under the state directory of `data_dir` (`runs/`).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(STATE_DIR).join("runs"),
        }
    }

    fn path(&self, date: BusinessDate) -> PathBuf {
        self.dir.join(format!("{date}.json"))
    }

    fn read(&self, date: BusinessDate) -> Result<Vec<crate::ports::RunRecord>> {
        let path = self.path(date);
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

impl crate::ports::RunsTable for LocalRuns {
    async fn put(&self, record: &crate::ports::RunRecord) -> Result<()> {
        let _guard = table_lock();
        crate::fault::point("runs.put");
        let mut rows = self.read(record.business_date)?;
        match rows.iter_mut().find(|r| r.sort_key() == record.sort_key()) {
            Some(r) => *r = record.clone(),
            None => rows.push(record.clone()),
        }
        rows.sort_by_key(|r| r.sort_key());
        let mut bytes = serde_json::to_vec_pretty(&rows)?;
        bytes.push(b'\n');
        write_atomic(&self.path(record.business_date), &bytes)
    }

    async fn runs(&self, date: BusinessDate) -> Result<Vec<crate::ports::RunRecord>> {
        self.read(date)
    }
}

/// Writes `bytes` to `dir/name` unless that file exists: a temporary file, fsync, then a hard
/// link to the name, which fails when the name exists. The conditional put of DynamoDB across
/// processes, and a crash never leaves half a file.
fn create_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<crate::ports::Appended> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(name);
    if path.exists() {
        return Ok(crate::ports::Appended::Conflict);
    }
    let tmp = dir.join(format!(
        ".tmp-{}-{:?}-{name}.part",
        std::process::id(),
        std::thread::current().id(),
    ));
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(crate::ports::Appended::Written),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(crate::ports::Appended::Conflict)
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The BreakActions table as files: `state/break_actions/{break_id}/{seq:012}.json`, one
/// event per file. An event is written to a temporary file and hard-linked to its name, which
/// fails when the name exists: the conditional write of DynamoDB, across processes (`recon
/// serve` and `recon breaks` at once), and a crash never leaves half an event.
#[derive(Debug, Clone)]
pub struct LocalBreakLog {
    dir: PathBuf,
}

impl LocalBreakLog {
    /// The log kept under the state directory of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(STATE_DIR).join("break_actions"),
        }
    }

    fn break_dir(&self, break_id: &str) -> Result<PathBuf> {
        if !crate::breaks::is_break_id(break_id) {
            return Err(Error::InvalidId {
                kind: "break_id",
                value: break_id.chars().take(24).collect(),
                reason: "expected brk_ and 20 lowercase hex digits",
            });
        }
        Ok(self.dir.join(break_id))
    }

    fn read_dir(dir: &Path, after: u64) -> Result<Vec<crate::breaks::BreakEvent>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            let seq = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok());
            if path.extension().is_none_or(|x| x != "json") || seq.is_some_and(|s| s <= after) {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            out.push(
                serde_json::from_slice(&bytes).map_err(|e| Error::InvalidFile {
                    file: path.display().to_string(),
                    reason: format!("not a break event: {e}"),
                })?,
            );
        }
        out.sort_by_key(|e: &crate::breaks::BreakEvent| e.seq);
        Ok(out)
    }
}

impl crate::ports::BreakLog for LocalBreakLog {
    async fn history(&self, break_id: &str, after: u64) -> Result<Vec<crate::breaks::BreakEvent>> {
        Self::read_dir(&self.break_dir(break_id)?, after)
    }

    async fn append(&self, event: &crate::breaks::BreakEvent) -> Result<crate::ports::Appended> {
        let dir = self.break_dir(&event.break_id)?;
        let mut bytes = serde_json::to_vec(event)?;
        bytes.push(b'\n');
        create_new(&dir, &format!("{:012}.json", event.seq), &bytes)
    }

    async fn events(
        &self,
        bank: Option<&crate::ids::BankId>,
    ) -> Result<Vec<crate::breaks::BreakEvent>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&self.dir, e))?.path();
            if path.is_dir() {
                let events = Self::read_dir(&path, 0)?;
                if bank.is_none_or(|b| events.first().is_some_and(|e| &e.bank_id == b)) {
                    out.extend(events);
                }
            }
        }
        Ok(out)
    }
}

/// The Rules table as files: `state/rules/{rule_type}/{id}/{version:06}.json`, one version
/// per file, written like [`LocalBreakLog`]'s events (a version's name is taken once).
#[derive(Debug, Clone)]
pub struct LocalRules {
    dir: PathBuf,
}

impl LocalRules {
    /// The table kept under the state directory of `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join(STATE_DIR).join("rules"),
        }
    }

    /// Every `.json` file two directory levels below `dir`.
    fn files(&self) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut dirs = vec![(self.dir.clone(), 0)];
        while let Some((dir, depth)) = dirs.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&dir, e)),
            };
            for entry in entries {
                let path = entry.map_err(|e| Error::io(&dir, e))?.path();
                if depth < 2 && path.is_dir() {
                    dirs.push((path, depth + 1));
                } else if depth == 2 && path.extension().is_some_and(|x| x == "json") {
                    out.push(path);
                }
            }
        }
        Ok(out)
    }
}

impl crate::ports::RulesTable for LocalRules {
    async fn versions(&self) -> Result<Vec<crate::rules::table::RuleVersion>> {
        let mut out = Vec::new();
        for path in self.files()? {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            out.push(
                serde_json::from_slice(&bytes).map_err(|e| Error::InvalidFile {
                    file: path.display().to_string(),
                    reason: format!("not a rule version: {e}"),
                })?,
            );
        }
        Ok(out)
    }

    async fn append(
        &self,
        version: &crate::rules::table::RuleVersion,
    ) -> Result<crate::ports::Appended> {
        // The id is a path segment: fee rule ids and bank ids cannot hold `/`, and nothing
        // else reaches the table, but a name that could leave the directory is refused here.
        if version.id.is_empty()
            || version.id.starts_with('.')
            || version.id.contains(['/', '\\', '\0'])
        {
            return Err(Error::InvalidId {
                kind: "rule id",
                value: version.id.chars().take(24).collect(),
                reason: "not a file name",
            });
        }
        let dir = self.dir.join(version.kind.as_str()).join(&version.id);
        let mut bytes = serde_json::to_vec(version)?;
        bytes.push(b'\n');
        create_new(&dir, &format!("{:06}.json", version.version), &bytes)
    }
}
