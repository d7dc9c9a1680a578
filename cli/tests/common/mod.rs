//! Helpers the integration tests share: a generated day, and a data directory as a map of
//! file hashes.

#![allow(dead_code)] // each test crate uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use recon_generator::{GenerateConfig, Knobs, generate};
use recon_shared::ids::BusinessDate;
use recon_shared::local_index::LocalTransactionIndex;
use recon_shared::manifest::sha256_hex;
use recon_shared::{Error, Result};
use serde_json::Value;

pub fn date() -> Result<BusinessDate> {
    BusinessDate::parse("2026-11-20")
}

pub fn tmp() -> Result<tempfile::TempDir> {
    tempfile::tempdir().map_err(|e| Error::io("tmp", e))
}

/// Generates the default six-bank day into `dir`.
pub fn day(dir: &Path, transactions: usize, seed: u64) -> Result<()> {
    generate(&GenerateConfig {
        out: dir.to_path_buf(),
        date: date()?,
        transactions,
        banks: 6,
        seed,
        knobs: Knobs::default(),
        force: true,
        days: 1,
    })?;
    Ok(())
}

/// Generates `days` days of one six-bank world from `first` into `dir`, with the multi-day
/// case mix (carried items, hand-overs, chargebacks weeks later).
pub fn world(dir: &Path, first: &str, days: u32, transactions: usize, seed: u64) -> Result<()> {
    generate(&GenerateConfig {
        out: dir.to_path_buf(),
        date: BusinessDate::parse(first)?,
        transactions,
        banks: 6,
        seed,
        knobs: Knobs::multi_day(),
        force: true,
        days,
    })?;
    Ok(())
}

/// Ingests what is new under `dir` and closes `from`, then every later date through `through`,
/// in order and quietly, as `recon run --date from [--through]` does.
pub fn run_quietly(dir: &Path, from: &str, through: Option<&str>) -> Result<()> {
    let mut quiet = |_: &str| {};
    recon_runtime::run::run_days(
        &recon_runtime::ingest::RunConfig {
            data: dir.to_path_buf(),
            date: Some(BusinessDate::parse(from)?),
        },
        through.map(BusinessDate::parse).transpose()?,
        &mut quiet,
    )?;
    Ok(())
}

/// Every file below `root`, sorted.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Copies every file under `from` to the same place under `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    for f in files_under(from) {
        let rel = f
            .strip_prefix(from)
            .map_err(|e| Error::Invariant(e.to_string()))?;
        let dst = to.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::copy(&f, &dst).map_err(|e| Error::io(&f, e))?;
    }
    Ok(())
}

/// sha256 of every file under `root/sub`, by path relative to `root`.
pub fn tree(root: &Path, sub: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in files_under(&root.join(sub)) {
        let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let rel = p
            .strip_prefix(root)
            .map_err(|e| Error::Invariant(e.to_string()))?;
        out.insert(rel.to_string_lossy().into_owned(), sha256_hex(&b));
    }
    Ok(out)
}

/// The text of a file: every string cell of a Parquet file, the bytes of any other.
pub fn file_text(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if path.extension().is_none_or(|x| x != "parquet") {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    for batch in recon_shared::columnar::read_batches(bytes::Bytes::from(bytes))? {
        for col in batch.columns() {
            if let Some(s) = col.as_any().downcast_ref::<arrow_array::StringArray>() {
                for v in s.iter().flatten() {
                    out.extend_from_slice(v.as_bytes());
                    out.push(b'\n');
                }
            }
        }
    }
    Ok(out)
}

/// Drops the wall-clock timings of a run summary, a Runs row or an API answer
/// (`duration_ms`, `phase_ms`): they differ between any two runs.
pub fn untimed(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k != "duration_ms" && k != "phase_ms")
                .map(|(k, v)| (k, untimed(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(untimed).collect()),
        v => v,
    }
}

/// The state of a data directory: every file's hash by relative path, compared byte for
/// byte but for what differs between two runs of the same inputs: the TransactionIndex's files
/// (a re-run compacts into a new generation: its items are compared), and the timings of the run
/// summaries and Runs rows.
pub fn state(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in files_under(root) {
        let rel = p
            .strip_prefix(root)
            .map_err(|e| Error::Invariant(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if rel.starts_with("state/transaction_index/") {
            continue;
        }
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let timed = rel.starts_with("runs/") || rel.starts_with("state/runs/");
        let digest = if timed {
            let v: Value = serde_json::from_slice(&bytes)?;
            sha256_hex(&serde_json::to_vec(&untimed(v))?)
        } else {
            sha256_hex(&bytes)
        };
        out.insert(rel, digest);
    }
    let items = LocalTransactionIndex::open_read_only(root)?.scan()?;
    let mut dump = Vec::new();
    for item in &items {
        dump.extend(serde_json::to_vec(item)?);
        dump.push(b'\n');
    }
    out.insert(
        format!("state/transaction_index/ ({} items)", items.len()),
        sha256_hex(&dump),
    );
    Ok(out)
}

/// The differences between two states, for a readable assertion message.
pub fn diff(want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => out.push(format!("missing {k}")),
            Some(g) if g != v => out.push(format!("differs {k}")),
            Some(_) => {}
        }
    }
    out.extend(
        got.keys()
            .filter(|k| !want.contains_key(*k))
            .map(|k| format!("extra {k}")),
    );
    out
}

/// Delivers `source`'s statement of `date` again: its first file with `edit` applied to its
/// records (the lines after a CSV header), the manifest's version one higher and its size,
/// checksum and count those of the new file (a corrected delivery, design.md §3).
pub fn redeliver(
    root: &Path,
    source: &str,
    date: &str,
    edit: impl FnOnce(&mut Vec<String>),
) -> Result<()> {
    let day = root.join(format!("landing/{source}/{date}"));
    let manifest_path = day.join("_manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).map_err(|e| Error::io(&day, e))?)?;
    let file = manifest["files"][0]["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Invariant("no statement file".into()))?;
    let path = day.join(&file);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header = file
        .ends_with(".csv")
        .then(|| lines.remove(0))
        .into_iter()
        .collect::<Vec<_>>();
    edit(&mut lines);
    let body = format!(
        "{}\n",
        header
            .iter()
            .chain(&lines)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::write(&path, &body).map_err(|e| Error::io(&path, e))?;
    let version = manifest["version"].as_u64().unwrap_or(1) + 1;
    let f = &mut manifest["files"][0];
    f["size_bytes"] = body.len().into();
    f["sha256"] = sha256_hex(body.as_bytes()).into();
    f["record_count"] = lines.len().into();
    manifest["version"] = version.into();
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)
        .map_err(|e| Error::io(&manifest_path, e))
}

/// The (date, bank) partitions the close summary `runs/{date}/close-{date}-{n}.json` of `root`
/// reconciled, sorted; the close must have succeeded.
pub fn reconciled(root: &Path, date: &str, n: u32) -> Result<Vec<(String, String)>> {
    let path = root.join(format!("runs/{date}/close-{date}-{n}.json"));
    let summary: recon_shared::close::CloseSummary =
        serde_json::from_slice(&std::fs::read(&path).map_err(|e| Error::io(&path, e))?)?;
    assert_eq!(summary.status, recon_shared::ports::RunStatus::Succeeded);
    let mut out: Vec<(String, String)> = summary
        .partitions
        .iter()
        .map(|p| {
            let (d, b) = p.partition();
            (d.to_string(), b.to_string())
        })
        .collect();
    out.sort();
    Ok(out)
}
