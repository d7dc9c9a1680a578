// Timings and rates (seconds, records per second), never money.
#![allow(
    clippy::float_arithmetic,
    clippy::disallowed_types,
    clippy::disallowed_methods
)]

//! `recon bench`: throughput of the product's hot paths on a generated day, single-threaded so
//! the figures are per core. Benchmarks print numbers; they assert nothing about time.

pub mod breaks;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod report;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use recon_shared::calendar::Calendar;
use recon_shared::columnar::write_parquet;
use recon_shared::ids::BusinessDate;
use recon_shared::keys;
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
        &data.join(keys::fx_key(date)),
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
            SourceMapping::from_json(&read(&data.join(keys::source_config_key(&source)))?)?;
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

/// Time this thread has spent on a CPU (Linux `schedstat`), so a figure measured while other
/// work shares the machine is still per core; `None` elsewhere.
fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// Wall and on-CPU seconds of `f`.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, f64, T)> {
    let (t, c) = (Instant::now(), thread_cpu_secs());
    let v = f()?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = match (c, thread_cpu_secs()) {
        (Some(a), Some(b)) => b - a,
        _ => wall,
    };
    Ok((wall, cpu, v))
}

/// Throughput of the stream indexer on a day's topics (one core).
#[derive(Debug, Clone)]
pub struct StreamBench {
    pub records: u64,
    pub transactions: u64,
    pub fraud_signals: u64,
    pub rejected: u64,
    pub index_items: u64,
    /// (wall, on-CPU) seconds. Decode, validate and tokenize only.
    pub decode_secs: (f64, f64),
    /// Decode + join + enrich + tokenize + upsert into the local TransactionIndex.
    pub index_secs: (f64, f64),
    /// The same with the raw-record archive written (what the Lambda does per batch).
    pub archive_secs: (f64, f64),
}

/// Measures the stream indexer on `topics/*.jsonl` of a generated day: the records are read
/// and batched first (not timed), then indexed into a fresh store in a temporary directory.
pub fn stream(data: &Path, batch: usize) -> Result<StreamBench> {
    use recon_shared::local::LocalStore;
    use recon_shared::local_index::LocalTransactionIndex;
    use recon_shared::stream::{Fact, StreamContext, decode, index_facts, process_batch};

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let files = recon_runtime::stream_feed::topic_files(data)?;
    let mut reader = recon_runtime::stream_feed::TopicReader::open(&files)?;
    let mut batches = Vec::new();
    loop {
        let b = reader.next_batch(batch.max(1))?;
        if b.is_empty() {
            break;
        }
        batches.push(b);
    }
    let records: u64 = batches.iter().map(|b| b.len() as u64).sum();
    let store = LocalStore::new(data);
    let ctx = rt.block_on(StreamContext::load(
        &store,
        recon_runtime::local::local_pii_key()?,
    ))?;

    // Decode only.
    let (wall, cpu, (facts_n, days)) = timed(|| {
        let mut facts_n = 0u64;
        let mut days = std::collections::BTreeSet::new();
        for b in &batches {
            for r in b {
                if let Ok(f) = decode(r, &ctx.tokenizer) {
                    if let Fact::Txn { state, .. } = &f {
                        days.insert(state.txn_day);
                    }
                    facts_n += 1;
                }
            }
        }
        Ok((facts_n, days))
    })?;
    let decode_secs = (wall, cpu);
    rt.block_on(ctx.prepare_fx(&store, days))?;

    let scratch = std::env::temp_dir().join(format!("recon-bench-stream-{}", std::process::id()));
    let run = |archive: bool| -> Result<((f64, f64), recon_shared::stream::BatchReport, u64)> {
        let _ = std::fs::remove_dir_all(&scratch);
        let index = LocalTransactionIndex::open(&scratch)?;
        let archive_store = LocalStore::new(&scratch);
        let (wall, cpu, total) = timed(|| {
            let mut total = recon_shared::stream::BatchReport::default();
            for b in &batches {
                let r = if archive {
                    rt.block_on(process_batch(&archive_store, &index, &ctx, b))?
                } else {
                    let facts: Vec<Fact> = b
                        .iter()
                        .filter_map(|r| decode(r, &ctx.tokenizer).ok())
                        .collect();
                    rt.block_on(index_facts(&index, &ctx, facts))?
                };
                total.add(&r);
            }
            Ok(total)
        })?;
        let items = index.len()? as u64;
        // Dropping a large index takes a while; not part of the figure.
        drop(index);
        Ok(((wall, cpu), total, items))
    };
    let (index_secs, report, items) = run(false)?;
    let (archive_secs, _, _) = run(true)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(StreamBench {
        records,
        transactions: report.transactions,
        fraud_signals: report.fraud_signals,
        rejected: records.saturating_sub(facts_n),
        index_items: items,
        decode_secs,
        index_secs,
        archive_secs,
    })
}

/// The table `recon bench stream` prints: records per second of wall time and per second on
/// a CPU (the per-core figure, unaffected by other work on the machine).
pub fn stream_table(b: &StreamBench) -> String {
    let mut s = format!(
        "records {} (transactions {}, fraud signals {}, rejected {}), index items {}\n{:<44} {:>8} {:>8} {:>12} {:>14}\n",
        b.records,
        b.transactions,
        b.fraud_signals,
        b.rejected,
        b.index_items,
        "stage (one thread)",
        "wall s",
        "cpu s",
        "records/s",
        "records/cpu-s"
    );
    for (name, (wall, cpu)) in [
        ("decode + validate + tokenize", b.decode_secs),
        ("+ join + enrich + local upsert (indexer)", b.index_secs),
        ("+ raw-record archive (the Lambda's work)", b.archive_secs),
    ] {
        s.push_str(&format!(
            "{name:<44} {wall:>8.2} {cpu:>8.2} {:>12.0} {:>14.0}\n",
            b.records as f64 / wall.max(1e-9),
            b.records as f64 / cpu.max(1e-9)
        ));
    }
    s
}

/// The bench partition's business date, bank and run id (the SQL reference is given the same
/// run id: it names the run, it is not computed from the data).
pub const BENCH_DATE: &str = "2026-11-20";
const BENCH_BANK: &str = "bank_01";
/// The run id written in every row of the bench's batch index.
pub const BENCH_RUN_ID: &str = "run-bench";
/// Bumped whenever the synthetic layout changes: a partition of another version is made again.
const SYNTH_VERSION: &str = "2";

/// The fee rules the bench installs (`fee_rules.jsonl`): 1.5 % + 0.10 for the bank, and
/// 2.9 % + 0.30 for merchants of category 5812.
pub fn bench_fee_rules() -> Result<Vec<recon_shared::records::FeeRule>> {
    use recon_shared::ids::{BankId, RuleId};
    use recon_shared::money::Currency;
    use rust_decimal::Decimal;
    let rule = |id: &str, category: Option<&str>, percent: i64, fixed: i64| -> Result<_> {
        Ok(recon_shared::records::FeeRule {
            rule_id: RuleId::new(id)?,
            bank_id: Some(BankId::new(BENCH_BANK)?),
            network: None,
            merchant_category: category.map(str::to_string),
            percent: Decimal::new(percent, 1),
            fixed: Decimal::new(fixed, 2),
            currency: Currency::new("USD")?,
            effective_from: BusinessDate::parse("2026-01-01")?.date(),
            effective_to: None,
        })
    };
    Ok(vec![
        rule("bench", None, 15, 10)?,
        rule("bench-5812", Some("5812"), 29, 30)?,
    ])
}

/// The tolerances of the bench: the defaults, with a settlement window of one business day
/// (a transaction of the close's date is PENDING, one of the day before MISSING_AT_BANK).
pub fn bench_tolerances() -> recon_shared::rules::Tolerances {
    recon_shared::rules::Tolerances {
        settlement_window_days: 1,
        ..recon_shared::rules::Tolerances::default()
    }
}

/// A synthetic single-bank partition for the reconciliation bench, and what the bank's
/// previous close left open, with every kind of match and break a real close meets:
///
/// * the day (`transactions.parquet`, `lines.parquet`), about `lines` statement lines: 85 %
///   naming their transaction (of which fee variances, partial amounts, amounts off by a cent,
///   duplicates, one-to-many splits, refunds, chargebacks; 3 % of transactions never settled
///   and 1 % declined), 5 % composite (no id), 9.5 % orphans, 0.5 % orphans without an id,
///   and payouts: one line paying 2-3 transactions of a payout merchant (many-to-one; one in
///   four off by a cent);
/// * the previous close (`open_transactions.parquet`, `open_lines.parquet` and its break
///   registry `registry.json`), made by reconciling a synthetic previous day (lines / 20
///   items, none settled that day) with the engine and writing what it carries forward with
///   [`recon_shared::reconcile::open`]: pending transactions, transactions already
///   MISSING_AT_BANK, lines naming transactions the ledger has not delivered yet and lines
///   without an id; the day settles about half of them, and redelivers a few;
/// * the dimensions: `merchants.jsonl` (categories) and `fee_rules.jsonl`.
///
/// Deterministic: the rng is seeded with `lines`.
pub fn synthesize_partition(dir: &Path, lines: usize) -> Result<(usize, usize)> {
    use recon_shared::ids::{BankId, MerchantId, StatementId, TransactionId, UserId};
    use recon_shared::money::Currency;
    use recon_shared::records::{
        Merchant, PaymentMethod, RecordType, RiskLevel, StatementLine, Transaction, TxnStatus,
    };
    use recon_shared::rules::select_fee_rule;
    use rust_decimal::Decimal;

    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let usd = Currency::new("USD")?;
    let date = BusinessDate::parse(BENCH_DATE)?;
    let prev = BusinessDate::from_date(date.date() - chrono::Days::new(1))?;
    let midnight = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .ok_or_else(|| Error::Invariant("date".into()))
    };
    let (t0, tp, tpp) = (
        midnight(date.date())?,
        midnight(prev.date())?,
        midnight(prev.date() - chrono::Days::new(1))?,
    );
    let bank = BankId::new(BENCH_BANK)?;
    let rules = bench_fee_rules()?;
    let mut rng = recon_generator::rng::Rng::new(lines as u64);
    // About 200 transactions a merchant whatever the size, and a payout merchant per block.
    let n_merchants = (lines / 200).max(50);
    let n_blocks = lines / 400;
    let category = |m: usize| if m.is_multiple_of(5) { "5812" } else { "5411" };
    let mut merchants = Vec::with_capacity(n_merchants + n_blocks);
    for (prefix, n) in [("M", n_merchants), ("P", n_blocks)] {
        for m in 0..n {
            merchants.push(Merchant {
                merchant_id: MerchantId::new(format!("{prefix}{m:06}"))?,
                merchant_name: format!("bench {prefix}{m}"),
                category: category(m).to_string(),
                risk_level: RiskLevel::Low,
                onboarding_date: BusinessDate::parse("2026-01-01")?.date(),
                country: "US".into(),
                acquirer_bank_id: Some(bank.clone()),
            });
        }
    }
    // The fee the bank charges on `amount` for a merchant of category `m % 5`.
    let fee_of = |m: usize, amount: Decimal| {
        select_fee_rule(&rules, &bank, Some(category(m)), usd, date.date())
            .map_or(Decimal::ZERO, |r| r.fee_for(amount))
    };
    let txn = |id: String,
               merchant: &MerchantId,
               amount: Decimal,
               status: TxnStatus,
               at: chrono::DateTime<chrono::Utc>|
     -> Result<Transaction> {
        Ok(Transaction {
            transaction_id: TransactionId::new(id)?,
            merchant_id: merchant.clone(),
            user_id: UserId::new("utk_bench")?,
            amount,
            currency: usd,
            status,
            event_time: at,
            payment_method: PaymentMethod::Card,
            original_transaction_id: None,
        })
    };
    #[allow(clippy::too_many_arguments)]
    let line = |sid: String,
                tid: Option<&str>,
                merchant: &MerchantId,
                posting: BusinessDate,
                amount: Decimal,
                fee: Decimal,
                kind: RecordType|
     -> Result<StatementLine> {
        Ok(StatementLine {
            statement_id: StatementId::new(sid)?,
            transaction_id: tid.map(TransactionId::new).transpose()?,
            bank_id: bank.clone(),
            posting_date: posting,
            amount_posted: amount,
            currency: usd,
            fee_charged: fee,
            merchant_id: Some(merchant.clone()),
            reference: String::new(),
            record_type: Some(kind),
            original_amount: None,
            original_currency: None,
            fx_rate: None,
        })
    };
    let cents = |m: i64| usd.from_minor(m);
    let secs =
        |rng: &mut recon_generator::rng::Rng| chrono::Duration::seconds(rng.range(0, 86_399));
    let merchant_id = |m: usize| MerchantId::new(format!("M{m:06}"));
    use RecordType::{Chargeback, Refund, Settlement};

    let mut txns = Vec::with_capacity(lines);
    let mut stmts = Vec::with_capacity(lines + lines / 20);
    // The day's own items.
    for i in 0..lines {
        let kind = rng.below(1000);
        let m = rng.below(n_merchants as u64) as usize;
        let merchant = merchant_id(m)?;
        let minor = rng.range(100, 500_000);
        let amount = cents(minor);
        let fee = fee_of(m, amount);
        let tid = format!("TX-{i:010}");
        let sid = |k: u32| format!("bank_01-20261120-{i:010}-{k}");
        let at = t0 + secs(&mut rng);
        match kind {
            0..=849 => {
                if rng.chance(300) {
                    // Not settled yet: PENDING.
                    txns.push(txn(tid, &merchant, amount, TxnStatus::Approved, at)?);
                    continue;
                }
                let sub = rng.below(1000);
                let status = match sub {
                    0..=9 => TxnStatus::Declined,
                    60..=64 => TxnStatus::Refunded,
                    _ => TxnStatus::Approved,
                };
                txns.push(txn(tid.clone(), &merchant, amount, status, at)?);
                let named = |k, amount, fee, kind| {
                    line(sid(k), Some(&tid), &merchant, date, amount, fee, kind)
                };
                match sub {
                    0..=9 => {}
                    // Fee variance.
                    10..=29 => {
                        stmts.push(named(0, amount, fee + cents(rng.range(2, 50)), Settlement)?)
                    }
                    // Short paid: a partial match.
                    30..=39 => stmts.push(named(
                        0,
                        amount - cents(rng.range(2, minor / 2)),
                        fee,
                        Settlement,
                    )?),
                    // Posted twice.
                    40..=49 => {
                        stmts.push(named(0, amount, fee, Settlement)?);
                        stmts.push(named(1, amount, fee, Settlement)?);
                    }
                    // Settled in two or three parts: one-to-many.
                    50..=59 => {
                        let first = rng.range(minor / 4, minor / 2);
                        let parts = if rng.chance(5_000) {
                            vec![first, minor - first]
                        } else {
                            let second = rng.range(minor / 8, minor / 4);
                            vec![first, second, minor - first - second]
                        };
                        for (k, p) in parts.into_iter().enumerate() {
                            let f = if k == 0 { fee } else { Decimal::ZERO };
                            stmts.push(named(k as u32, cents(p), f, Settlement)?);
                        }
                    }
                    60..=64 => stmts.push(named(0, -amount, Decimal::ZERO, Refund)?),
                    // Paid, then charged back.
                    65..=69 => {
                        stmts.push(named(0, amount, fee, Settlement)?);
                        stmts.push(named(1, -amount, Decimal::ZERO, Chargeback)?);
                    }
                    // A cent off: within tolerance.
                    70..=79 => {
                        let d = if rng.chance(5_000) { 1 } else { -1 };
                        stmts.push(named(0, amount + cents(d), fee, Settlement)?)
                    }
                    _ => stmts.push(named(0, amount, fee, Settlement)?),
                }
            }
            // Composite: the line names no transaction; one in ten a cent off.
            850..=899 => {
                txns.push(txn(tid, &merchant, amount, TxnStatus::Approved, at)?);
                let d = if rng.chance(1_000) { 1 } else { 0 };
                stmts.push(line(
                    sid(0),
                    None,
                    &merchant,
                    date,
                    amount + cents(d),
                    fee,
                    Settlement,
                )?);
            }
            // A line naming a transaction the ledger does not have.
            900..=994 => stmts.push(line(
                sid(0),
                Some(&format!("TX-X{i:010}")),
                &merchant,
                date,
                amount,
                fee,
                Settlement,
            )?),
            // A line with neither an id nor a transaction to match.
            _ => stmts.push(line(
                sid(0),
                None,
                &merchant,
                date,
                amount,
                fee,
                Settlement,
            )?),
        }
    }
    // Payouts: a payout merchant's 12 transactions of the day, paid by four lines of 2, 3, 3
    // and 3 of them in random order (one left unpaid).
    for b in 0..n_blocks {
        let merchant = MerchantId::new(format!("P{b:06}"))?;
        let members: Vec<(i64, Decimal)> = (0..12)
            .map(|_| {
                let minor = rng.range(100, 200_000);
                (minor, fee_of(b, cents(minor)))
            })
            .collect();
        for (k, (minor, _)) in members.iter().enumerate() {
            let at = t0 + secs(&mut rng);
            txns.push(txn(
                format!("TB-{b:08}-{k:02}"),
                &merchant,
                cents(*minor),
                TxnStatus::Approved,
                at,
            )?);
        }
        let mut order: Vec<usize> = (0..12).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, rng.below(k as u64 + 1) as usize);
        }
        let mut at = 0;
        for (g, size) in [2, 3, 3, 3].into_iter().enumerate() {
            let group = &order[at..at + size];
            at += size;
            let minor: i64 = group.iter().map(|k| members[*k].0).sum();
            let fee: Decimal = group.iter().map(|k| members[*k].1).sum();
            let off = i64::from(g == 0 && b.is_multiple_of(4));
            stmts.push(line(
                format!("bank_01-20261120-P{b:08}-{g}"),
                None,
                &merchant,
                date,
                cents(minor + off),
                fee,
                Settlement,
            )?);
        }
    }
    // The previous close: its items (none settled that day), and what the day does with them.
    let (mut prev_txns, mut prev_lines) = (Vec::new(), Vec::new());
    for j in 0..lines / 20 {
        let kind = rng.below(100);
        let m = rng.below(n_merchants as u64) as usize;
        let merchant = merchant_id(m)?;
        let minor = rng.range(100, 500_000);
        let amount = cents(minor);
        let fee = fee_of(m, amount);
        let settle = rng.below(100);
        let sid = format!("bank_01-20261120-C{j:010}");
        let psid = format!("bank_01-20261119-C{j:010}");
        match kind {
            // Pending at the previous close: settled today by id, by composite, redelivered
            // and settled, or now MISSING_AT_BANK.
            0..=39 => {
                let tid = format!("TP-{j:010}");
                let t = txn(
                    tid.clone(),
                    &merchant,
                    amount,
                    TxnStatus::Approved,
                    tp + secs(&mut rng),
                )?;
                match settle {
                    0..=49 => stmts.push(line(
                        sid,
                        Some(&tid),
                        &merchant,
                        date,
                        amount,
                        fee,
                        Settlement,
                    )?),
                    50..=64 => {
                        stmts.push(line(sid, None, &merchant, date, amount, fee, Settlement)?)
                    }
                    65..=66 => {
                        txns.push(t.clone());
                        stmts.push(line(
                            sid,
                            Some(&tid),
                            &merchant,
                            date,
                            amount,
                            fee,
                            Settlement,
                        )?);
                    }
                    _ => {}
                }
                prev_txns.push(t);
            }
            // Already MISSING_AT_BANK at the previous close: half settled today.
            40..=59 => {
                let tid = format!("TP-{j:010}");
                prev_txns.push(txn(
                    tid.clone(),
                    &merchant,
                    amount,
                    TxnStatus::Approved,
                    tpp + secs(&mut rng),
                )?);
                if settle < 50 {
                    stmts.push(line(
                        sid,
                        Some(&tid),
                        &merchant,
                        date,
                        amount,
                        fee,
                        Settlement,
                    )?);
                }
            }
            // A line naming a transaction the ledger delivers today (or not yet).
            60..=79 => {
                let tid = format!("TL-{j:010}");
                prev_lines.push(line(
                    psid,
                    Some(&tid),
                    &merchant,
                    prev,
                    amount,
                    fee,
                    Settlement,
                )?);
                if settle < 60 {
                    txns.push(txn(
                        tid,
                        &merchant,
                        amount,
                        TxnStatus::Approved,
                        tp + secs(&mut rng),
                    )?);
                }
            }
            // A line without an id whose transaction arrives today (or not yet).
            _ => {
                prev_lines.push(line(psid, None, &merchant, prev, amount, fee, Settlement)?);
                if settle < 50 {
                    txns.push(txn(
                        format!("TQ-{j:010}"),
                        &merchant,
                        amount,
                        TxnStatus::Approved,
                        t0 + secs(&mut rng),
                    )?);
                }
            }
        }
    }
    let write = |name: &str, bytes: Vec<u8>| {
        std::fs::write(dir.join(name), bytes).map_err(|e| Error::io(dir.join(name), e))
    };
    let jsonl = |items: &mut dyn Iterator<Item = Result<String>>| -> Result<Vec<u8>> {
        let mut out = String::new();
        for s in items {
            out.push_str(&s?);
            out.push('\n');
        }
        Ok(out.into_bytes())
    };
    write(
        "merchants.jsonl",
        jsonl(&mut merchants.iter().map(|m| Ok(serde_json::to_string(m)?)))?,
    )?;
    write(
        "fee_rules.jsonl",
        jsonl(&mut rules.iter().map(|r| Ok(serde_json::to_string(r)?)))?,
    )?;
    close_previous(dir, prev, &prev_txns, &prev_lines, &categories(&merchants))?;
    write("transactions.parquet", write_parquet(&txns)?)?;
    write("lines.parquet", write_parquet(&stmts)?)?;
    write("synth.version", SYNTH_VERSION.as_bytes().to_vec())?;
    Ok((txns.len(), stmts.len()))
}

/// The synthetic partition of `lines` lines under `dir` (`lines-{n}`), made again when it is
/// missing or from another version of [`synthesize_partition`].
fn bench_partition(dir: &Path, lines: usize) -> Result<std::path::PathBuf> {
    let d = dir.join(format!("lines-{lines}"));
    let current =
        std::fs::read_to_string(d.join("synth.version")).is_ok_and(|v| v.trim() == SYNTH_VERSION);
    if !current {
        synthesize_partition(&d, lines)?;
    }
    Ok(d)
}

/// Merchant id -> category.
fn categories(
    merchants: &[recon_shared::records::Merchant],
) -> std::collections::HashMap<recon_shared::ids::MerchantId, String> {
    merchants
        .iter()
        .map(|m| (m.merchant_id.clone(), m.category.clone()))
        .collect()
}

/// Reconciles the previous day's items as the bank's previous close (first of its chain)
/// and writes what it carries forward and its break registry, as the real close does.
fn close_previous(
    dir: &Path,
    date: BusinessDate,
    txns: &[recon_shared::records::Transaction],
    lines: &[recon_shared::records::StatementLine],
    categories: &std::collections::HashMap<recon_shared::ids::MerchantId, String>,
) -> Result<()> {
    use recon_shared::ids::BankId;
    use recon_shared::money::Currency;
    use recon_shared::reconcile::frame::{LineRef, TxnRef};
    use recon_shared::reconcile::open::{carry_forward, lines_parquet, transactions_parquet};
    use recon_shared::reconcile::{BreakRegistry, PartitionIndex, PartitionInput, reconcile};

    let bank = BankId::new(BENCH_BANK)?;
    // Own items of the ledger and delivery of `date`.
    let t: Vec<TxnRef> = txns
        .iter()
        .map(|t| TxnRef {
            item_date: date.date(),
            ..TxnRef::from(t)
        })
        .collect();
    let l: Vec<LineRef> = lines.iter().map(LineRef::from).collect();
    let (rules, tol, fx, calendar) = (
        bench_fee_rules()?,
        bench_tolerances(),
        FxTable::default(),
        Calendar::every_day(bank.clone()),
    );
    let input = PartitionInput {
        business_date: date,
        bank_id: bank.clone(),
        settlement_currency: Some(Currency::new("USD")?),
        transactions: &t,
        lines: &l,
        categories,
        fee_rules: &rules,
        tolerances: &tol,
        fx: &fx,
        calendar: &calendar,
        awaiting: false,
        manual: &[],
    };
    let result = reconcile(&input)?;
    let carry = carry_forward(&input, &result);
    let index = PartitionIndex::new(
        &result,
        &bank,
        date,
        &calendar,
        "run-bench-previous",
        &BreakRegistry::default(),
    );
    let write = |name: &str, bytes: Vec<u8>| {
        std::fs::write(dir.join(name), bytes).map_err(|e| Error::io(dir.join(name), e))
    };
    write(
        "open_transactions.parquet",
        transactions_parquet(&result, &carry.transactions)?,
    )?;
    write("open_lines.parquet", lines_parquet(&result, &carry.lines)?)?;
    write("registry.json", serde_json::to_vec_pretty(&index.registry)?)?;
    Ok(())
}

/// Timings of one reconciliation run: (wall, on-CPU) seconds per phase.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReconcileBench {
    /// Transactions and lines reconciled: the day's and those carried in.
    pub transactions: usize,
    pub lines: usize,
    /// Open items carried in from the previous close.
    #[serde(default)]
    pub carried_in: u64,
    /// Rows of the batch index written.
    #[serde(default)]
    pub index_rows: usize,
    /// Parquet decoding of the columns the engine reads, the dimensions and the registry.
    pub read: (f64, f64),
    /// The matching engine, then breaks and their registry.
    pub matching: (f64, f64),
    /// Index columns built and encoded as Parquet.
    pub write: (f64, f64),
}

impl ReconcileBench {
    /// On-CPU seconds of the whole run.
    fn cpu(&self) -> f64 {
        self.read.1 + self.matching.1 + self.write.1
    }
}

/// Reads the synthetic partition and the previous close's open items, merges them, reconciles
/// and writes the batch index, single-threaded, with the functions `reconcile-partition` uses.
pub fn reconcile_partition(dir: &Path) -> Result<ReconcileBench> {
    use recon_shared::close::partition::{merge_open, read_open};
    use recon_shared::ids::BankId;
    use recon_shared::money::{Currency, FxTable};
    use recon_shared::reconcile::frame::{
        LINE_COLUMNS, TXN_COLUMNS, line_refs, read_columns, txn_refs,
    };
    use recon_shared::reconcile::{BreakRegistry, PartitionIndex, PartitionInput, reconcile};
    use recon_shared::records::{FeeRule, Merchant, StatementLine, Transaction};

    let bytes = |name: &str| read(&dir.join(name)).map(bytes::Bytes::from);
    let (txn_bytes, line_bytes, open_txn_bytes, open_line_bytes) = (
        bytes("transactions.parquet")?,
        bytes("lines.parquet")?,
        bytes("open_transactions.parquet")?,
        bytes("open_lines.parquet")?,
    );
    let (registry_bytes, merchant_bytes, rule_bytes) = (
        read(&dir.join("registry.json"))?,
        read(&dir.join("merchants.jsonl"))?,
        read(&dir.join("fee_rules.jsonl"))?,
    );
    let date = BusinessDate::parse(BENCH_DATE)?;
    let day = date.date();
    let (read_wall, read_cpu, (txn_batches, line_batches, open_txns, open_lines)) = timed(|| {
        Ok((
            read_columns::<Transaction>(txn_bytes, TXN_COLUMNS)?,
            read_columns::<StatementLine>(line_bytes, LINE_COLUMNS)?,
            read_open::<Transaction>(open_txn_bytes, TXN_COLUMNS)?,
            read_open::<StatementLine>(open_line_bytes, LINE_COLUMNS)?,
        ))
    })?;
    let (dims_wall, dims_cpu, (registry, categories, rules)) = timed(|| {
        let registry: BreakRegistry = serde_json::from_slice(&registry_bytes)?;
        let lines = |b: &[u8]| {
            b.split(|c| *c == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        };
        let merchants = lines(&merchant_bytes)
            .iter()
            .map(|l| Ok(serde_json::from_slice::<Merchant>(l)?))
            .collect::<Result<Vec<_>>>()?;
        let rules = lines(&rule_bytes)
            .iter()
            .map(|l| Ok(serde_json::from_slice::<FeeRule>(l)?))
            .collect::<Result<Vec<_>>>()?;
        Ok((registry, categories(&merchants), rules))
    })?;
    let (refs_wall, refs_cpu, (txns, lines, carried_in)) = timed(|| {
        let mut txns = txn_refs(&txn_batches, day)?;
        let mut lines = line_refs(&line_batches, day)?;
        let carried = merge_open(&mut txns, txn_refs(&open_txns, day)?, |t| t.transaction_id)
            + merge_open(&mut lines, line_refs(&open_lines, day)?, |l| l.statement_id);
        Ok((txns, lines, carried))
    })?;
    let usd = Currency::new("USD")?;
    let bank = BankId::new(BENCH_BANK)?;
    let tol = bench_tolerances();
    let (fx, calendar) = (FxTable::default(), Calendar::every_day(bank.clone()));
    let input = PartitionInput {
        business_date: date,
        bank_id: bank.clone(),
        settlement_currency: Some(usd),
        transactions: &txns,
        lines: &lines,
        categories: &categories,
        fee_rules: &rules,
        tolerances: &tol,
        fx: &fx,
        calendar: &calendar,
        awaiting: false,
        manual: &[],
    };
    let (engine_wall, engine_cpu, result) = timed(|| reconcile(&input))?;
    let (breaks_wall, breaks_cpu, index) = timed(|| {
        Ok(PartitionIndex::new(
            &result,
            &bank,
            date,
            &calendar,
            BENCH_RUN_ID,
            &registry,
        ))
    })?;
    let (write_wall, write_cpu, (parquet, index_rows)) = timed(|| {
        let rows = index.rows();
        Ok((index.parquet(&rows)?, rows.len()))
    })?;
    if std::env::var_os("RECON_BENCH_VERBOSE").is_some() {
        eprintln!(
            "cpu s: decode {read_cpu:.2}, dimensions + registry {dims_cpu:.2}, views + merge {refs_cpu:.2}, engine {engine_cpu:.2}, breaks {breaks_cpu:.2}, index columns + Parquet {write_cpu:.2} ({index_rows} rows, {} bytes)",
            parquet.len()
        );
    }
    std::fs::write(dir.join("recon_index.parquet"), parquet).map_err(|e| Error::io(dir, e))?;
    Ok(ReconcileBench {
        transactions: txns.len(),
        lines: lines.len(),
        carried_in,
        index_rows,
        read: (
            read_wall + dims_wall + refs_wall,
            read_cpu + dims_cpu + refs_cpu,
        ),
        matching: (engine_wall + breaks_wall, engine_cpu + breaks_cpu),
        write: (write_wall, write_cpu),
    })
}

/// [`reconcile_partition`] in a fresh `recon` process, as DuckDB runs in a fresh Python: a
/// process that reconciled before reuses its warm heap, which a cold Lambda does not have.
fn reconcile_in_fresh_process(dir: &Path) -> Result<ReconcileBench> {
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let out = std::process::Command::new(&exe)
        .args(["bench", "reconcile-once", "--dir"])
        .arg(dir)
        .output()
        .map_err(|e| Error::io(&exe, e))?;
    if !out.status.success() {
        return Err(Error::Invariant(format!(
            "bench reconcile-once failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    if std::env::var_os("RECON_BENCH_VERBOSE").is_some() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn duckdb_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_duckdb.py")
}

/// DuckDB's timings of the same partition: (wall, process CPU) seconds. Its batch index is
/// written to `duckdb_index.parquet`.
fn duckdb(python: &Path, dir: &Path, threads: u32) -> Option<(f64, f64)> {
    let out = std::process::Command::new(python)
        .arg(duckdb_script())
        .arg(dir)
        .arg(threads.to_string())
        .arg(BENCH_RUN_ID)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "bench_duckdb.py failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((v["total_s"].as_f64()?, v["cpu_s"].as_f64()?))
}

/// Whether `recon_index.parquet` and `duckdb_index.parquet` of `dir` hold the same rows, every
/// column (names, types, values) compared, ordered by row kind and id; else the first
/// difference. Run by `bench_duckdb.py --compare`, outside any timing.
fn compare_indexes(python: &Path, dir: &Path) -> Result<std::result::Result<u64, String>> {
    let out = std::process::Command::new(python)
        .arg(duckdb_script())
        .arg("--compare")
        .arg(dir)
        .output()
        .map_err(|e| Error::io(python, e))?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        Error::Invariant(format!(
            "bench_duckdb.py --compare failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })?;
    Ok(if v["equal"].as_bool() == Some(true) {
        Ok(v["rows"].as_u64().unwrap_or(0))
    } else {
        Err(v["difference"].as_str().unwrap_or("?").to_string())
    })
}

/// Runs the reconciliation bench for each size and prints rows per on-CPU second and the
/// ratio to DuckDB, then checks that both wrote the same batch index. On-CPU time is the
/// per-core figure, and it stays put when other work shares the machine; wall times are
/// printed beside it. Fails when the two indexes differ.
pub fn reconcile_report(
    sizes: &[usize],
    dir: &Path,
    python: Option<&Path>,
    runs: usize,
) -> Result<()> {
    crate::outln!(
        "{:>10} {:>10} {:>8} {:>10} {:>7} {:>7} {:>7} {:>13} {:>13} {:>9} {:>10} {:>10} {:>10} {:>7}",
        "lines",
        "txns",
        "carried",
        "index rows",
        "read",
        "match",
        "write",
        "match rows/s",
        "e2e rows/s",
        "e2e wall",
        "duck1t cpu",
        "duck1t wall",
        "duck2t wall",
        "ratio"
    );
    let mut unequal = Vec::new();
    let mut checks = Vec::new();
    for &n in sizes {
        let d = bench_partition(dir, n)?;
        let mut r = reconcile_in_fresh_process(&d)?;
        for _ in 1..runs {
            let again = reconcile_in_fresh_process(&d)?;
            if again.cpu() < r.cpu() {
                r = again;
            }
        }
        let rows = (r.lines + r.transactions) as f64;
        let cpu = r.cpu();
        let wall = r.read.0 + r.matching.0 + r.write.0;
        let best = |threads| {
            let mut best: Option<(f64, f64)> = None;
            for _ in 0..runs.max(1) {
                let t = python.and_then(|p| duckdb(p, &d, threads));
                best = match (best, t) {
                    (Some(b), Some(t)) => Some((b.0.min(t.0), b.1.min(t.1))),
                    (b, t) => b.or(t),
                };
            }
            best
        };
        let (d2, d1) = (best(2), best(1));
        let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |s| format!("{s:.2}"));
        crate::outln!(
            "{:>10} {:>10} {:>8} {:>10} {:>7.2} {:>7.2} {:>7.2} {:>13.0} {:>13.0} {:>9.2} {:>10} {:>10} {:>10} {:>7}",
            r.lines,
            r.transactions,
            r.carried_in,
            r.index_rows,
            r.read.1,
            r.matching.1,
            r.write.1,
            rows / r.matching.1,
            rows / cpu,
            wall,
            fmt(d1.map(|d| d.1)),
            fmt(d1.map(|d| d.0)),
            fmt(d2.map(|d| d.0)),
            d1.map_or_else(|| "-".to_string(), |d| format!("{:.2}x", d.1 / cpu))
        );
        // The last DuckDB run was single-threaded; its index is compared with recon's.
        if let (Some(p), Some(_)) = (python, d1) {
            match compare_indexes(p, &d)? {
                Ok(rows) => checks.push(format!(
                    "{n} lines: recon_index.parquet = duckdb_index.parquet ({rows} rows, every column)"
                )),
                Err(diff) => {
                    checks.push(format!("{n} lines: the indexes DIFFER: {diff}"));
                    unequal.push(n);
                }
            }
        }
    }
    crate::outln!(
        "rows = lines + transactions (carried ones included); read/match/write and rows/s in on-CPU seconds of one core, the run of least CPU time of {runs} (DuckDB: best of {runs}); ratio = DuckDB (1 thread) CPU time / recon CPU time, end to end from Parquet to Parquet"
    );
    for c in &checks {
        crate::outln!("{c}");
    }
    if unequal.is_empty() {
        Ok(())
    } else {
        Err(Error::Invariant(format!(
            "recon's and DuckDB's batch indexes differ at {unequal:?} lines"
        )))
    }
}

/// One run of the Spark job on a bench partition, beside the single-process path.
#[derive(Debug, Clone)]
pub struct SparkBench {
    /// Statement lines and transactions of the partition (carried ones included).
    pub rows: u64,
    /// `reconcile-partition` in this process, wall seconds.
    pub single_s: f64,
    /// `spark-submit` of the job, wall seconds (Spark's start included).
    pub spark_s: f64,
    /// Where the job's time went: `plan_s`, `groups_s`, `kernel_s`, `merge_s`, `groups`.
    pub timing: serde_json::Value,
    /// Whether every file the job wrote equals the single-process path's, byte for byte.
    pub identical: Result<(), String>,
}

/// The bench partition of `dir` as a data directory (`dir/world`): curated statements and
/// ledger of [`BENCH_DATE`], the previous close's open items, state and break registry, and
/// the configuration (merchants, fee rules, tolerances, the bank's statement source).
fn stage_world(dir: &Path) -> Result<std::path::PathBuf> {
    use recon_shared::keys::{open_key, registry_key, statements_key, transactions_key};
    use recon_shared::reconcile::open::OpenState;

    let world = dir.join("world");
    let _ = std::fs::remove_dir_all(&world);
    let date = BusinessDate::parse(BENCH_DATE)?;
    let prev = BusinessDate::from_date(date.date() - chrono::Days::new(1))?;
    let bank = recon_shared::ids::BankId::new(BENCH_BANK)?;
    let put = |key: &str, bytes: &[u8]| -> Result<()> {
        let p = world.join(key);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    };
    let copy = |name: &str, key: &str| put(key, &read(&dir.join(name))?);
    copy(
        "lines.parquet",
        &statements_key(date, &bank, BENCH_BANK, date),
    )?;
    copy(
        "transactions.parquet",
        &transactions_key(date, "ledger", Some(&bank)),
    )?;
    copy(
        "open_transactions.parquet",
        &open_key(&bank, prev, "transactions.parquet"),
    )?;
    copy(
        "open_lines.parquet",
        &open_key(&bank, prev, "lines.parquet"),
    )?;
    copy("registry.json", &registry_key(prev, &bank))?;
    let state = OpenState {
        business_date: prev,
        bank_id: bank.clone(),
        fingerprint: "bench-previous-close".into(),
        transactions: 0,
        lines: 0,
    };
    put(
        &open_key(&bank, prev, "state.json"),
        &serde_json::to_vec_pretty(&state)?,
    )?;
    copy("merchants.jsonl", "config/merchants.jsonl")?;
    copy("fee_rules.jsonl", "config/rules/fee_rules.jsonl")?;
    put(
        "config/rules/tolerances.json",
        &serde_json::to_vec_pretty(&bench_tolerances())?,
    )?;
    let source = serde_json::json!({
        "source_id": BENCH_BANK, "kind": "statement", "format": "csv", "delimiter": ",",
        "header": true, "decimal_separator": ".", "amount_unit": "major",
        "sign_convention": "signed", "timezone": "UTC", "date_format": "%Y-%m-%d",
        "timestamp_format": null, "default_currency": "USD", "bank_id": BENCH_BANK,
        "settlement_currency": "USD",
        "columns": {"amount_posted": "amount", "currency": "ccy", "fee_charged": "fee",
                    "merchant_id": "merchant_ref", "posting_date": "value_date",
                    "record_type": "type", "reference": "description",
                    "statement_id": "statement_id", "transaction_id": "transaction_ref"}
    });
    put(
        &format!("config/sources/{BENCH_BANK}.json"),
        &serde_json::to_vec_pretty(&source)?,
    )?;
    Ok(world)
}

/// The files a partition run writes, by key, as bytes.
fn partition_outputs(world: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    use recon_shared::keys::{batch_key, mismatches_key, open_key, registry_key};
    let date = BusinessDate::parse(BENCH_DATE)?;
    let bank = recon_shared::ids::BankId::new(BENCH_BANK)?;
    let mut out = BTreeMap::new();
    for key in [
        batch_key(date, &bank),
        mismatches_key(date, &bank),
        registry_key(date, &bank),
        open_key(&bank, date, "transactions.parquet"),
        open_key(&bank, date, "lines.parquet"),
        open_key(&bank, date, "state.json"),
    ] {
        out.insert(key.clone(), read(&world.join(&key))?);
    }
    Ok(out)
}

/// The Spark job (`local[2]`, `groups` match groups) on the bench partition of `dir` against
/// `reconcile-partition` of the same data directory, and whether they wrote the same bytes.
pub fn spark_partition(dir: &Path, submit: &Path, groups: u32) -> Result<SparkBench> {
    let world = stage_world(dir)?;
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let partition = |extra: &[&str]| -> Result<std::process::Output> {
        std::process::Command::new(&exe)
            .args(["reconcile-partition", "--data"])
            .arg(&world)
            .args(["--date", BENCH_DATE, "--bank", BENCH_BANK])
            .args(extra)
            .output()
            .map_err(|e| Error::io(&exe, e))
    };
    let started = Instant::now();
    let single = partition(&[])?;
    let single_s = started.elapsed().as_secs_f64();
    if !single.status.success() {
        return Err(Error::Invariant(format!(
            "reconcile-partition of the bench world: {}",
            String::from_utf8_lossy(&single.stderr)
        )));
    }
    let summary: serde_json::Value = serde_json::from_slice(&single.stdout)?;
    let rows = summary["transactions"].as_u64().unwrap_or(0)
        + summary["statement_lines"].as_u64().unwrap_or(0);
    let want = partition_outputs(&world)?;
    let job = dir.join(recon_runtime::spark::JOB_FILE);
    std::fs::write(&job, recon_runtime::spark::JOB).map_err(|e| Error::io(&job, e))?;
    let started = Instant::now();
    let out = std::process::Command::new(submit)
        .args(["--master", "local[2]", "--conf", "spark.ui.enabled=false"])
        .args(["--driver-memory", "6g"])
        .arg(&job)
        .arg("--recon")
        .arg(&exe)
        .arg("--data")
        .arg(&world)
        .args([
            "--date", BENCH_DATE, "--bank", BENCH_BANK, "--as-of", BENCH_DATE,
        ])
        .args(["--groups", &groups.to_string()])
        .output()
        .map_err(|e| Error::io(submit, e))?;
    let spark_s = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(Error::Invariant(format!(
            "the Spark job on the bench world failed: {}",
            stderr.lines().rev().take(5).collect::<Vec<_>>().join("\n")
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let timing = stderr
        .lines()
        .chain(stdout.lines())
        .find_map(|l| l.strip_prefix("recon-spark-timing "))
        .map(serde_json::from_str)
        .transpose()?
        .unwrap_or(serde_json::Value::Null);
    let got = partition_outputs(&world)?;
    let identical = match want.iter().find(|(k, v)| got.get(*k) != Some(*v)) {
        None => Ok(()),
        Some((k, _)) => Err(format!("{k} differs")),
    };
    Ok(SparkBench {
        rows,
        single_s,
        spark_s,
        timing,
        identical,
    })
}

/// `recon bench spark`: the Spark job on each bench partition size.
pub fn spark_report(sizes: &[usize], dir: &Path, submit: &Path, groups: u32) -> Result<String> {
    let mut s = format!(
        "{:>10} {:>10} {:>9} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>7} {:>9}\n",
        "lines",
        "rows",
        "single s",
        "spark s",
        "plan s",
        "session s",
        "stage s",
        "kernel s",
        "merge s",
        "groups",
        "identical"
    );
    let mut unequal = Vec::new();
    for &n in sizes {
        let d = bench_partition(dir, n)?;
        let b = spark_partition(&d, submit, groups)?;
        let t = |k: &str| b.timing[k].as_f64().unwrap_or(f64::NAN);
        s.push_str(&format!(
            "{n:>10} {:>10} {:>9.1} {:>9.1} {:>7.1} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>9}\n",
            b.rows,
            b.single_s,
            b.spark_s,
            t("plan_s"),
            t("session_s"),
            t("groups_s"),
            t("kernel_s"),
            t("merge_s"),
            b.timing["groups"],
            if b.identical.is_ok() { "yes" } else { "NO" }
        ));
        if let Err(e) = b.identical {
            unequal.push(format!("{n} lines: {e}"));
        }
    }
    s.push_str("single = reconcile-partition in one process; spark = spark-submit of infra/emr/reconcile_partition.py in local[2] (JVM start included): plan and merge on the driver, session = starting Spark, stage = reading, shuffling and running the groups, kernel = the groups' recon time summed over tasks (2 run at once)\n");
    if !unequal.is_empty() {
        return Err(Error::Invariant(format!(
            "the Spark job's outputs differ from reconcile-partition's: {}",
            unequal.join("; ")
        )));
    }
    Ok(s)
}
