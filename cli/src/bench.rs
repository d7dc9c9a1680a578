#![allow(clippy::float_arithmetic)] // timings and rates, never money

//! `recon bench`: throughput of the product's hot paths on a generated day, single-threaded so
//! the figures are per core. Benchmarks print numbers; they assert nothing about time.

use std::path::Path;
use std::time::Instant;

use recon_shared::columnar::write_parquet;
use recon_shared::ids::BusinessDate;
use recon_shared::manifest::{MANIFEST_FILE, Manifest};
use recon_shared::money::FxTable;
use recon_shared::source::{
    ParseContext, SourceKind, SourceMapping, parse_statements, parse_transactions,
};
use recon_shared::{Error, Result};

/// One measured file.
#[derive(Debug, Clone)]
pub struct NormalizeBench {
    pub source: String,
    pub format: String,
    pub bytes: u64,
    pub records: u64,
    /// Best of the runs: parse only, and parse + Parquet encode.
    pub parse_secs: f64,
    pub total_secs: f64,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    last.map(|v| (best, v))
        .ok_or_else(|| Error::Invariant("no run".into()))
}

/// Normalizes the first file of every delivery for `date` under `data/landing`.
pub fn normalize(data: &Path, date: BusinessDate, runs: usize) -> Result<Vec<NormalizeBench>> {
    let fx = FxTable::from_csv(&String::from_utf8_lossy(&read(
        &data.join(format!("config/fx/{date}.csv")),
    )?))?;
    let mut out = Vec::new();
    let landing = data.join("landing");
    let mut sources: Vec<_> = std::fs::read_dir(&landing)
        .map_err(|e| Error::io(&landing, e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    sources.sort();
    for source in sources {
        let dir = landing.join(&source).join(date.to_string());
        let Ok(mbytes) = read(&dir.join(MANIFEST_FILE)) else {
            continue;
        };
        let manifest = Manifest::parse(&source, &mbytes)?;
        let mapping =
            SourceMapping::from_json(&read(&data.join(format!("config/sources/{source}.json")))?)?;
        let Some(file) = manifest.files.first() else {
            continue;
        };
        let bytes = read(&dir.join(&file.name))?;
        let ctx = ParseContext {
            mapping: &mapping,
            fx: &fx,
            business_date: date,
            file: &file.name,
        };
        let (parse_secs, records) = best_of(runs, || match mapping.kind {
            SourceKind::Statement => parse_statements(&ctx, &bytes).map(|p| p.records_in),
            SourceKind::Transactions => parse_transactions(&ctx, &bytes).map(|p| p.records_in),
        })?;
        let (total_secs, _) = best_of(runs, || match mapping.kind {
            SourceKind::Statement => {
                let p = parse_statements(&ctx, &bytes)?;
                let rows: Vec<_> = p.records.into_iter().map(|(_, r)| r).collect();
                write_parquet(&rows).map(|b| b.len())
            }
            SourceKind::Transactions => {
                let p = parse_transactions(&ctx, &bytes)?;
                let rows: Vec<_> = p.records.into_iter().map(|(_, r)| r).collect();
                write_parquet(&rows).map(|b| b.len())
            }
        })?;
        out.push(NormalizeBench {
            source,
            format: format!("{:?}", mapping.format).to_lowercase(),
            bytes: bytes.len() as u64,
            records,
            parse_secs,
            total_secs,
        });
    }
    Ok(out)
}

/// The table `recon bench normalize` prints.
pub fn normalize_table(rows: &[NormalizeBench]) -> String {
    let mut s = format!(
        "{:<8} {:<8} {:>9} {:>9} {:>12} {:>12} {:>16}\n",
        "source", "format", "MB", "records", "parse MB/s", "parse rec/s", "+parquet rec/s"
    );
    for r in rows {
        let mb = r.bytes as f64 / 1e6;
        s.push_str(&format!(
            "{:<8} {:<8} {:>9.1} {:>9} {:>12.0} {:>12.0} {:>16.0}\n",
            r.source,
            r.format,
            mb,
            r.records,
            mb / r.parse_secs,
            r.records as f64 / r.parse_secs,
            r.records as f64 / r.total_secs
        ));
    }
    s
}
