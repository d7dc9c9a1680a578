//! `recon generate`: one realistic, reproducible business day with its ground truth, or
//! (`--days N`) N consecutive days of one world with the truth of every daily close.
//!
//! Same arguments give a byte-identical tree: every random choice comes from one seeded
//! stream per part, and every file is assembled in a fixed order.

pub mod day;
pub mod formats;
pub mod knobs;
pub mod mapping;
pub mod rng;
pub mod span;
pub mod text;
pub mod topics;
pub mod truth;
pub mod world;
pub mod write;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use recon_shared::ids::BusinessDate;
use recon_shared::{Error, Result};

pub use knobs::Knobs;

/// Top-level entries of the bucket layout that `--force` may replace.
pub const MANAGED_DIRS: &[&str] = &[
    "config",
    "landing",
    "topics",
    "truth",
    "redelivery",
    "curated",
    "quarantine",
    "stream",
    "index",
    "runs",
    "state",
];

#[derive(Debug, Clone)]
pub struct GenerateConfig {
    pub out: PathBuf,
    pub date: BusinessDate,
    pub transactions: usize,
    pub banks: usize,
    pub seed: u64,
    pub knobs: Knobs,
    /// Replace the layout's directories if `out` already holds a day.
    pub force: bool,
    /// Consecutive calendar days of one world from `date` (1: the one-day world; `transactions`
    /// is then the payments of each weekday).
    pub days: u32,
}

/// What was generated, for the command's summary.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub files: usize,
    pub bytes: u64,
    pub transactions: usize,
    pub statement_lines: usize,
    pub banks: Vec<(String, &'static str, String, usize)>,
    pub elapsed_ms: u128,
    pub truth_summary: serde_json::Value,
}

impl GenerateReport {
    /// The summary `recon generate` prints for a day written to `out`.
    pub fn summary(&self, out: &Path) -> String {
        let mut s = format!(
            "generated {} in {} ms: {} files, {:.1} MB\n",
            out.display(),
            self.elapsed_ms,
            self.files,
            self.bytes / 1_000_000
        );
        let _ = writeln!(s, "  transactions     {:>10}", self.transactions);
        let _ = writeln!(s, "  statement lines  {:>10}", self.statement_lines);
        let _ = writeln!(
            s,
            "  {:<10} {:<16} {:<4} {:>10}",
            "bank", "style", "ccy", "lines"
        );
        for (id, style, ccy, n) in &self.banks {
            let _ = writeln!(s, "  {id:<10} {style:<16} {ccy:<4} {n:>10}");
        }
        for (key, title) in [
            ("transaction_cases", "transaction cases"),
            ("statement_line_cases", "statement line cases"),
        ] {
            if let Some(cases) = self.truth_summary.get(key).and_then(|c| c.as_object()) {
                let _ = writeln!(s, "  {title}:");
                for (k, v) in cases {
                    let _ = writeln!(s, "    {k:<22} {v:>10}");
                }
            }
        }
        s
    }
}

fn day_rng(cfg: &GenerateConfig) -> rng::Rng {
    rng::Rng::new(
        cfg.seed ^ (cfg.date.days_since_epoch() as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
    )
}

fn check(cfg: &GenerateConfig) -> Result<()> {
    if cfg.days == 0 || cfg.days > span::MAX_DAYS {
        return Err(Error::InvalidConfig {
            name: "--days".into(),
            reason: format!("must be between 1 and {}", span::MAX_DAYS),
        });
    }
    cfg.knobs.validate_for(cfg.days)?;
    if cfg.transactions == 0 || cfg.transactions > 50_000_000 {
        return Err(Error::InvalidConfig {
            name: "--transactions".into(),
            reason: "must be between 1 and 50 000 000".into(),
        });
    }
    Ok(())
}

/// The day's world and cases, and the random stream left for the topics.
fn model(cfg: &GenerateConfig) -> Result<(world::World, day::Day, rng::Rng)> {
    check(cfg)?;
    let mut rng = day_rng(cfg);
    let world = world::World::new(cfg.date, cfg.banks, cfg.transactions, &mut rng.fork(1))?;
    let day = day::Builder::new(&world, &cfg.knobs, rng.fork(2)).build(cfg.transactions)?;
    Ok((world, day, rng.fork(3)))
}

/// The multi-day world and the random stream left for the topics.
fn span_model(cfg: &GenerateConfig) -> Result<(world::World, span::Span, rng::Rng)> {
    check(cfg)?;
    let mut rng = day_rng(cfg);
    let world = world::World::for_span(
        cfg.date,
        cfg.banks,
        cfg.transactions,
        cfg.knobs.payout_merchants,
        cfg.days,
        &mut rng.fork(1),
    )?;
    let base = rng.fork(2).next_u64();
    let topics = rng.fork(3);
    let span = span::build(
        &world,
        &cfg.knobs,
        cfg.days,
        cfg.transactions,
        base,
        &mut rng.fork(4),
    )?;
    Ok((world, span, topics))
}

/// Builds a multi-day world in memory (`cfg.days` above 1): the world, its days and every file.
pub fn build_span(cfg: &GenerateConfig) -> Result<(world::World, span::Span, write::Tree)> {
    let (world, span, mut topic_rng) = span_model(cfg)?;
    let (main, topics) = std::thread::scope(|s| {
        let topics = s.spawn(|| span::topics(&world, &span, &cfg.knobs, &mut topic_rng));
        let main = span::files(&world, &span, &cfg.knobs);
        (main, topics.join())
    });
    let mut tree = main?;
    tree.extend(topics.map_err(|_| Error::Invariant("topic writer panicked".into()))??);
    Ok((world, span, tree))
}

/// Builds the day in memory (world, transactions, lines, truth and every file); with
/// `cfg.days` above 1, the multi-day world (its days' transactions and lines in one `Day`).
pub fn build(cfg: &GenerateConfig) -> Result<(world::World, day::Day, write::Tree)> {
    if cfg.days > 1 {
        let (world, span, tree) = build_span(cfg)?;
        return Ok((world, span.day, tree));
    }
    let (world, day, mut topic_rng) = model(cfg)?;
    let (main, topics) = std::thread::scope(|s| {
        let topics = s.spawn(|| topics::topics(&world, &day, &cfg.knobs, &mut topic_rng));
        let main = write::landing_and_config(&world, &day, &cfg.knobs);
        (main, topics.join())
    });
    let mut tree = main?;
    tree.extend(topics.map_err(|_| Error::Invariant("topic writer panicked".into()))??);
    Ok((world, day, tree))
}

fn write_tree(out: &Path, tree: &write::Tree) -> Result<u64> {
    let mut bytes = 0u64;
    for (rel, data) in tree {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, data).map_err(|e| Error::io(&path, e))?;
        bytes += data.len() as u64;
    }
    Ok(bytes)
}

/// Generates the day into `cfg.out`. Topics are built and written on a second thread while
/// the landing files are, so both cores work.
pub fn generate(cfg: &GenerateConfig) -> Result<GenerateReport> {
    let started = Instant::now();
    check(cfg)?;
    prepare_out(&cfg.out, cfg.force)?;
    if cfg.days > 1 {
        return generate_span(cfg, started);
    }
    let (world, day, mut topic_rng) = model(cfg)?;
    let (main, topics) = std::thread::scope(|s| {
        let topics = s.spawn(|| {
            let tree = topics::topics(&world, &day, &cfg.knobs, &mut topic_rng)?;
            Ok::<_, Error>((tree.len(), write_tree(&cfg.out, &tree)?))
        });
        let main = write::landing_and_config(&world, &day, &cfg.knobs).and_then(|tree| {
            let bytes = write_tree(&cfg.out, &tree)?;
            let summary: serde_json::Value = serde_json::from_slice(
                tree.get("truth/summary.json")
                    .map(Vec::as_slice)
                    .unwrap_or(b"{}"),
            )?;
            Ok((tree.len(), bytes, summary))
        });
        (main, topics.join())
    });
    let (files, bytes, truth_summary) = main?;
    let (topic_files, topic_bytes) =
        topics.map_err(|_| Error::Invariant("topic writer panicked".into()))??;
    let banks = world
        .banks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let n = day.lines.iter().filter(|l| l.bank == i).count();
            (b.id.to_string(), b.style.name(), b.currency.to_string(), n)
        })
        .collect();
    Ok(GenerateReport {
        files: files + topic_files,
        bytes: bytes + topic_bytes,
        transactions: day.txns.len(),
        statement_lines: day.lines.len(),
        banks,
        elapsed_ms: started.elapsed().as_millis(),
        truth_summary,
    })
}

fn generate_span(cfg: &GenerateConfig, started: Instant) -> Result<GenerateReport> {
    let (world, span, tree) = build_span(cfg)?;
    let bytes = write_tree(&cfg.out, &tree)?;
    let truth_summary: serde_json::Value = serde_json::from_slice(
        tree.get("truth/summary.json")
            .map(Vec::as_slice)
            .unwrap_or(b"{}"),
    )?;
    let banks = world
        .banks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let n = span.day.lines.iter().filter(|l| l.bank == i).count();
            (b.id.to_string(), b.style.name(), b.currency.to_string(), n)
        })
        .collect();
    let last = span.last();
    Ok(GenerateReport {
        files: tree.len(),
        bytes,
        transactions: span
            .day
            .txns
            .iter()
            .filter(|t| t.ledger_date.date() <= last)
            .count(),
        statement_lines: span.day.lines.len(),
        banks,
        elapsed_ms: started.elapsed().as_millis(),
        truth_summary,
    })
}

fn prepare_out(out: &Path, force: bool) -> Result<()> {
    if !out.exists() {
        return std::fs::create_dir_all(out).map_err(|e| Error::io(out, e));
    }
    let entries: Vec<_> = std::fs::read_dir(out)
        .map_err(|e| Error::io(out, e))?
        .filter_map(std::result::Result::ok)
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(Error::InvalidConfig {
            name: "--out".into(),
            reason: format!(
                "{} is not empty: choose an empty directory or pass --force",
                out.display()
            ),
        });
    }
    for name in MANAGED_DIRS {
        let p = out.join(name);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}
