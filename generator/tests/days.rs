//! The multi-day world (`--days N`): deterministic, one world continued day after day, true to
//! its banks' calendars, and with a truth per close that the matching engine, run close after
//! close on the open items the rules carry, agrees with.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{Days, NaiveDate};
use recon_generator::span::closes::expected;
use recon_generator::truth::{canonical_line, canonical_txn, csv_rows};
use recon_generator::write::Tree;
use recon_generator::{GenerateConfig, Knobs, build, build_span, generate};
use recon_shared::calendar::Calendar;
use recon_shared::ids::{BankId, BusinessDate, MerchantId};
use recon_shared::manifest::{MANIFEST_FILE, Manifest, sha256_hex};
use recon_shared::money::FxTable;
use recon_shared::reconcile::{LineRef, PartitionInput, TxnRef, reconcile};
use recon_shared::records::{ReconciledStatus, StatementLine, Transaction};
use recon_shared::rules::Tolerances;
use recon_shared::source::{
    ParseContext, SourceKind, SourceMapping, count_records, parse_statements, parse_transactions,
};
use recon_shared::{Error, Result};

/// Fri 2026-11-20: the days cross a weekend, bank_03's holiday and bank_02's missed delivery.
const FIRST: &str = "2026-11-20";

fn cfg(seed: u64, transactions: usize, days: u32, mix: &[&str]) -> Result<GenerateConfig> {
    let mix: Vec<String> = mix.iter().map(|m| m.to_string()).collect();
    Ok(GenerateConfig {
        out: std::env::temp_dir().join("unused"),
        date: BusinessDate::parse(FIRST)?,
        transactions,
        banks: 6,
        seed,
        knobs: Knobs::for_days(days, &mix)?,
        force: false,
        days,
    })
}

fn text(tree: &Tree, key: &str) -> Result<String> {
    let bytes = tree
        .get(key)
        .ok_or_else(|| Error::NotFound { key: key.into() })?;
    String::from_utf8(bytes.clone()).map_err(|e| Error::Invariant(e.to_string()))
}

fn rows(tree: &Tree, key: &str) -> Result<Vec<BTreeMap<String, String>>> {
    Ok(csv_rows(&text(tree, key)?))
}

fn date(s: &str) -> Result<NaiveDate> {
    Ok(BusinessDate::parse(s)?.date())
}

fn calendars(tree: &Tree) -> Result<BTreeMap<String, Calendar>> {
    tree.iter()
        .filter_map(|(k, v)| {
            let bank = k.strip_prefix("config/calendars/")?.strip_suffix(".json")?;
            Some((bank.to_string(), v))
        })
        .map(|(bank, v)| {
            let id = BankId::new(&bank)?;
            Ok((bank.clone(), Calendar::from_json(&bank, &id, v)?))
        })
        .collect()
}

/// Every delivery under `landing/`: (source, date) -> parsed lines or transactions.
struct Landing {
    lines: BTreeMap<(String, NaiveDate), Vec<StatementLine>>,
    ledger: BTreeMap<NaiveDate, Vec<Transaction>>,
}

fn landing(tree: &Tree) -> Result<Landing> {
    let mut out = Landing {
        lines: BTreeMap::new(),
        ledger: BTreeMap::new(),
    };
    for (key, bytes) in tree.iter().filter(|(k, _)| k.ends_with(MANIFEST_FILE)) {
        let m = Manifest::parse(key, bytes)?;
        let prefix = key.trim_end_matches(MANIFEST_FILE);
        let mapping =
            SourceMapping::from_json(&tree[&format!("config/sources/{}.json", m.source_id)])?;
        let fx = FxTable::from_csv(&text(tree, &format!("config/fx/{}.csv", m.business_date))?)?;
        for f in &m.files {
            let data = &tree[&format!("{prefix}{}", f.name)];
            assert_eq!(f.sha256, sha256_hex(data), "{prefix}{}", f.name);
            assert_eq!(f.record_count, count_records(&mapping, &f.name, data)?);
            let ctx = ParseContext {
                mapping: &mapping,
                fx: &fx,
                business_date: m.business_date,
                file: &f.name,
            };
            match mapping.kind {
                SourceKind::Statement => {
                    let p = parse_statements(&ctx, data)?;
                    assert!(p.rejects.is_empty(), "{}: {:?}", f.name, p.rejects.first());
                    let v = out
                        .lines
                        .entry((m.source_id.to_string(), m.business_date.date()))
                        .or_default();
                    for (_, l) in p.records {
                        if !v.contains(&l) {
                            v.push(l);
                        }
                    }
                }
                SourceKind::Transactions => {
                    let p = parse_transactions(&ctx, data)?;
                    assert!(p.rejects.is_empty(), "{}: {:?}", f.name, p.rejects.first());
                    out.ledger
                        .entry(m.business_date.date())
                        .or_default()
                        .extend(p.records.into_iter().map(|(_, t)| t));
                }
            }
        }
    }
    Ok(out)
}

#[test]
fn same_arguments_same_bytes_and_one_day_tolerances_say_same_day() -> Result<()> {
    let a = build(&cfg(7, 1500, 6, &[])?)?.2;
    let b = build(&cfg(7, 1500, 6, &[])?)?.2;
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b.get(k) == Some(v), "{k} differs between two runs");
    }
    let c = build(&cfg(8, 1500, 6, &[])?)?.2;
    assert_ne!(a.get("truth/closes.csv"), c.get("truth/closes.csv"));
    // The one-day world settles the same day; the multi-day one within 3 business days.
    for (days, window, grace) in [(1, 0, 2), (6, 3, 2)] {
        let tree = build(&cfg(7, 1500, days, &[])?)?.2;
        let tol: Tolerances = serde_json::from_slice(&tree["config/rules/tolerances.json"])?;
        assert_eq!(
            (tol.settlement_window_days, tol.carry_grace_days),
            (window, grace)
        );
        assert_eq!(tree.contains_key("truth/closes.csv"), days > 1);
    }
    Ok(())
}

#[test]
fn generate_writes_the_built_tree() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let mut c = cfg(11, 800, 4, &[])?;
    c.out = dir.path().join("days");
    let report = generate(&c)?;
    let tree = build(&c)?.2;
    assert_eq!(report.files, tree.len());
    for (k, v) in &tree {
        let on_disk = std::fs::read(c.out.join(k)).map_err(|e| Error::io(k, e))?;
        assert!(&on_disk == v, "{k} on disk differs from the built tree");
    }
    Ok(())
}

/// The world does not know how long it will be generated for: its first days, and their
/// closes, are the same in a longer run.
#[test]
fn a_longer_world_is_the_same_world_continued() -> Result<()> {
    let short = build(&cfg(21, 1200, 5, &[])?)?.2;
    let long = build(&cfg(21, 1200, 9, &[])?)?.2;
    let last = date(FIRST)? + Days::new(4);
    let mut compared = 0;
    for (k, v) in &short {
        if k.starts_with("landing/") || k.starts_with("config/") {
            assert!(long.get(k) == Some(v), "{k} differs in the longer world");
            compared += 1;
        }
    }
    assert!(compared > 40, "{compared} files");
    // Same merchants and the same ids, day after day.
    assert_eq!(
        short["config/merchants.jsonl"],
        long["config/merchants.jsonl"]
    );
    let closes_until = |tree: &Tree| -> Result<Vec<BTreeMap<String, String>>> {
        Ok(rows(tree, "truth/closes.csv")?
            .into_iter()
            .filter(|r| date(&r["close_date"]).is_ok_and(|d| d <= last))
            .collect())
    };
    let s = closes_until(&short)?;
    assert_eq!(s, closes_until(&long)?);
    assert!(s.len() > 3000, "{} rows", s.len());
    Ok(())
}

#[test]
fn landing_files_parse_back_and_every_line_is_on_a_business_day_of_its_bank() -> Result<()> {
    let (world, span, tree) = build_span(&cfg(5, 2500, 8, &[])?)?;
    let cals = calendars(&tree)?;
    assert_eq!(cals.len(), world.banks.len());
    let land = landing(&tree)?;
    // Canonical records: what the generator meant is what the files say.
    let by_id: HashMap<String, &StatementLine> = land
        .lines
        .values()
        .flatten()
        .map(|l| (l.statement_id.to_string(), l))
        .collect();
    assert_eq!(by_id.len(), span.day.lines.len());
    for l in &span.day.lines {
        assert_eq!(
            by_id.get(&l.statement_id).copied(),
            Some(&canonical_line(&world, l)?)
        );
    }
    let txns: HashMap<String, &Transaction> = land
        .ledger
        .values()
        .flatten()
        .map(|t| (t.transaction_id.to_string(), t))
        .collect();
    for t in span
        .day
        .txns
        .iter()
        .filter(|t| t.ledger_date.date() <= span.last())
    {
        assert_eq!(
            txns.get(&t.id).copied(),
            Some(&canonical_txn(&world, &span.day, t)?)
        );
    }
    // A delivery per business day (but the missed one), each line posted on that day, on
    // the missed day before it, or just after midnight.
    let (mut midnight, mut from_missed) = (0, 0);
    for ((bank, d), lines) in &land.lines {
        let cal = &cals[bank];
        assert!(cal.is_business_day(*d), "{bank} delivered on {d}");
        for l in lines {
            let p = l.posting_date.date();
            let missed = |p: NaiveDate| {
                p < *d
                    && cal.is_business_day(p)
                    && cal.add_business_days(p, 1) == *d
                    && !land.lines.contains_key(&(bank.clone(), p))
            };
            if p == *d {
                continue;
            } else if missed(p) {
                from_missed += 1;
            } else if p.pred_opt().is_some_and(|q| q == *d || missed(q)) {
                midnight += 1;
            } else {
                panic!("{} of {bank}'s delivery {d} posted {p}", l.statement_id);
            }
        }
    }
    assert!(midnight > 10, "{midnight} lines booked after midnight");
    assert!(from_missed > 10, "{from_missed} lines of a missed delivery");
    // Every business day but one (the missed one) of every bank has its delivery.
    let mut missing = Vec::new();
    for (bank, cal) in &cals {
        for d in &span.dates {
            let d = d.date();
            if cal.is_business_day(d) && !land.lines.contains_key(&(bank.clone(), d)) {
                missing.push((bank.clone(), d));
            }
        }
    }
    assert_eq!(missing.len(), 1, "{missing:?}");
    // One bank has a holiday inside the days, and delivers nothing then.
    let holidays: Vec<(&String, NaiveDate)> = cals
        .iter()
        .flat_map(|(b, c)| c.holidays.iter().map(move |h| (b, *h)))
        .filter(|(_, h)| span.dates.iter().any(|d| d.date() == *h))
        .collect();
    assert_eq!(holidays.len(), 1, "{holidays:?}");
    assert!(
        !land
            .lines
            .contains_key(&(holidays[0].0.clone(), holidays[0].1))
    );
    Ok(())
}

/// Runs the matching engine close after close, bank by bank, on each close's items and the
/// open items the rules carry (an expected transaction until `expected_by` plus the grace, a
/// line the grace after its delivery), and compares every outcome with `truth/closes.csv`.
/// The engine knows no window, so an unmatched transaction it calls MISSING_AT_BANK may be
/// PENDING in truth (and a DECLINED or PENDING one UNMATCHED / NONE); everything it matches
/// must be matched in truth at that close, exactly so.
fn replay(seed: u64, transactions: usize, days: u32, mix: &[&str]) -> Result<usize> {
    let (world, span, tree) = build_span(&cfg(seed, transactions, days, mix)?)?;
    let day = &span.day;
    let bd = &span.bank_days;
    let tol: Tolerances = serde_json::from_slice(&tree["config/rules/tolerances.json"])?;
    let same_day = Tolerances {
        settlement_window_days: 0,
        ..tol.clone()
    };
    let fx = FxTable::from_csv(&text(&tree, &format!("config/fx/{FIRST}.csv"))?)?;
    let mut truth: BTreeMap<(NaiveDate, String, String), BTreeMap<String, String>> =
        rows(&tree, "truth/closes.csv")?
            .into_iter()
            .map(|r| {
                Ok((
                    (date(&r["close_date"])?, r["kind"].clone(), r["id"].clone()),
                    r,
                ))
            })
            .collect::<Result<_>>()?;
    let categories: HashMap<MerchantId, String> = world
        .merchants
        .iter()
        .map(|m| (m.merchant_id.clone(), m.category.clone()))
        .collect();
    let txns: Vec<Transaction> = day
        .txns
        .iter()
        .map(|t| canonical_txn(&world, day, t))
        .collect::<Result<_>>()?;
    let lines: Vec<StatementLine> = day
        .lines
        .iter()
        .map(|l| canonical_line(&world, l))
        .collect::<Result<_>>()?;
    let money = |m: Option<i64>, cur| {
        m.map(|m| recon_generator::text::minor_str(m, cur))
            .unwrap_or_default()
    };
    let mut checked = 0;
    for (bank, b) in world.banks.iter().enumerate() {
        let every_day = Calendar::every_day(b.id.clone());
        let (mut open_t, mut open_l) = (BTreeSet::new(), BTreeSet::new());
        for d in &span.dates {
            let c = d.date();
            open_t.retain(|t: &usize| {
                let due = bd.expected_by(bank, day.txns[*t].business_date.date());
                c <= bd.add_business_days(bank, due, tol.carry_grace_days)
            });
            open_l.retain(|l: &usize| {
                bd.business_days_between(bank, day.lines[*l].business_date.date(), c)
                    <= tol.carry_grace_days
            });
            let mine_t: BTreeSet<usize> = (0..day.txns.len())
                .filter(|t| day.txns[*t].bank == bank && day.txns[*t].ledger_date.date() == c)
                .collect();
            let mine_l: BTreeSet<usize> = (0..day.lines.len())
                .filter(|l| day.lines[*l].bank == bank && day.lines[*l].business_date.date() == c)
                .collect();
            let tin: Vec<usize> = mine_t.union(&open_t).copied().collect();
            let lin: Vec<usize> = mine_l.union(&open_l).copied().collect();
            if tin.is_empty() && lin.is_empty() {
                continue;
            }
            let trefs: Vec<TxnRef> = tin.iter().map(|t| TxnRef::from(&txns[*t])).collect();
            let lrefs: Vec<LineRef> = lin.iter().map(|l| LineRef::from(&lines[*l])).collect();
            let t_of: HashMap<&str, usize> =
                tin.iter().map(|t| (day.txns[*t].id.as_str(), *t)).collect();
            let l_of: HashMap<&str, usize> = lin
                .iter()
                .map(|l| (day.lines[*l].statement_id.as_str(), *l))
                .collect();
            let result = reconcile(&PartitionInput {
                business_date: *d,
                bank_id: b.id.clone(),
                settlement_currency: Some(b.currency),
                transactions: &trefs,
                lines: &lrefs,
                categories: &categories,
                fee_rules: &world.fee_rules,
                // The window is this replay's (above): the engine's own is shut.
                tolerances: &same_day,
                fx: &fx,
                calendar: &every_day,
                awaiting: false,
                manual: &[],
            })?;
            let cur = result.currency;
            let outcomes = result
                .transactions
                .iter()
                .zip(&result.txn_outcomes)
                .map(|(t, o)| ("transaction", t.transaction_id, o))
                .chain(
                    result
                        .lines
                        .iter()
                        .zip(&result.line_outcomes)
                        .map(|(l, o)| ("line", l.statement_id, o)),
                );
            for (kind, id, o) in outcomes {
                let want = truth.remove(&(c, kind.to_string(), id.to_string()));
                let is_txn = kind == "transaction";
                let item_of_c = if is_txn {
                    mine_t.contains(&t_of[id])
                } else {
                    mine_l.contains(&l_of[id])
                };
                if o.status == ReconciledStatus::Unmatched {
                    let Some(w) = want else {
                        assert!(!item_of_c, "{c} {id}: no row for an item of the close");
                        continue;
                    };
                    let got = (w["reconciled_status"].as_str(), w["mismatch_type"].as_str());
                    if is_txn {
                        let t = &day.txns[t_of[id]];
                        if !expected(t.status) {
                            assert_eq!(got, ("UNMATCHED", "NONE"), "{c} {id}");
                        } else {
                            assert!(
                                got == ("PENDING", "NONE") && item_of_c
                                    || got == ("UNMATCHED", "MISSING_AT_BANK"),
                                "{c} {id}: engine {:?}, truth {got:?}",
                                o.mismatch
                            );
                            open_t.insert(t_of[id]);
                        }
                    } else {
                        assert!(item_of_c, "{c} {id}: a carried line changed nothing");
                        assert_eq!(got, ("UNMATCHED", "MISSING_INTERNAL"), "{c} {id}");
                        open_l.insert(l_of[id]);
                    }
                    checked += 1;
                    continue;
                }
                let w =
                    want.unwrap_or_else(|| panic!("{c} {id}: engine matched, truth has no row"));
                let mut others: Vec<&str> = if is_txn {
                    o.counterparts
                        .iter()
                        .map(|i| result.lines[*i as usize].statement_id)
                        .collect()
                } else {
                    o.counterparts
                        .iter()
                        .map(|i| result.transactions[*i as usize].transaction_id)
                        .collect()
                };
                others.sort_unstable();
                let got = [
                    o.status.to_string(),
                    o.mismatch.to_string(),
                    o.rule.to_string(),
                    others.join(";"),
                    money(o.discrepancy, cur),
                    money(o.fee_variance, cur),
                ];
                let wanted = [
                    "reconciled_status",
                    "mismatch_type",
                    "match_rule",
                    "counterparts",
                    "discrepancy",
                    "fee_variance",
                ]
                .map(|k| w[k].clone());
                assert_eq!(got, wanted, "{c} {kind} {id}");
                if is_txn {
                    open_t.remove(&t_of[id]);
                } else {
                    open_l.remove(&l_of[id]);
                }
                checked += 1;
            }
        }
        let left: Vec<_> = truth
            .keys()
            .filter(|(_, _, id)| id.starts_with(b.id.as_str()))
            .take(3)
            .collect();
        assert!(left.is_empty(), "rows the engine never wrote: {left:?}");
    }
    // Transactions of a bank are not prefixed by it: whatever is left was never reconciled.
    assert!(
        truth.is_empty(),
        "{} rows left, e.g. {:?}",
        truth.len(),
        truth.keys().next()
    );
    Ok(checked)
}

#[test]
fn the_engine_close_after_close_agrees_with_the_truth_per_close() -> Result<()> {
    let n = replay(3, 3000, 10, &[])?;
    assert!(n > 30_000, "{n} outcomes compared");
    Ok(())
}

/// Many more of every hard case: ambiguity removal must hold when the cases crowd.
#[test]
fn the_engine_agrees_under_a_stress_mix() -> Result<()> {
    let mix = [
        "composite=0.2",
        "split=0.05",
        "duplicate_line=0.03",
        "missing_at_bank=0.05",
        "late_settlement=0.03",
        "ledger_late=0.1",
        "line_match=0.95",
        "payout_merchants=1",
        "amount_diff=0.03",
        "fee_variance=0.03",
    ];
    for seed in [1, 2] {
        replay(seed, 2000, 9, &mix)?;
    }
    Ok(())
}

/// The trees the truth tests read: one default world of 8 days.
fn default_world() -> Result<Tree> {
    Ok(build(&cfg(42, 3000, 8, &[])?)?.2)
}

/// A row of a truth file: column -> value.
type CsvRow = BTreeMap<String, String>;

/// A close's rows by item: (kind, id) -> rows in close order.
fn by_item(tree: &Tree) -> Result<BTreeMap<(String, String), Vec<CsvRow>>> {
    let mut out: BTreeMap<(String, String), Vec<CsvRow>> = BTreeMap::new();
    for r in rows(tree, "truth/closes.csv")? {
        out.entry((r["kind"].clone(), r["id"].clone()))
            .or_default()
            .push(r);
    }
    Ok(out)
}

#[test]
fn every_item_first_appears_in_the_close_of_its_ledger_date_or_delivery() -> Result<()> {
    let tree = default_world()?;
    let land = landing(&tree)?;
    let items = by_item(&tree)?;
    let mut seen = HashSet::new();
    for (d, txns) in &land.ledger {
        for t in txns {
            let id = t.transaction_id.to_string();
            let r = &items[&("transaction".to_string(), id.clone())];
            assert_eq!(date(&r[0]["close_date"])?, *d, "{id} first seen");
            assert_eq!(
                r.iter()
                    .filter(|x| date(&x["close_date"]).is_ok_and(|c| c == *d))
                    .count(),
                1,
                "{id} once in its close"
            );
            // Later rows only when the outcome changes, never twice the same.
            for w in r.windows(2) {
                assert!(w[0]["close_date"] < w[1]["close_date"], "{id}");
                assert_ne!(w[0]["reconciled_status"], w[1]["reconciled_status"], "{id}");
            }
            assert!(seen.insert(id));
        }
    }
    for ((bank, d), lines) in &land.lines {
        for l in lines {
            let id = l.statement_id.to_string();
            let r = &items[&("line".to_string(), id.clone())];
            assert_eq!(date(&r[0]["close_date"])?, *d, "{id}");
            assert_eq!(&r[0]["bank_id"], bank);
            assert!(seen.insert(id));
        }
    }
    assert_eq!(seen.len(), items.len(), "every row is of a delivered item");
    Ok(())
}

#[test]
fn transactions_are_pending_until_their_window_ends_and_then_missing() -> Result<()> {
    let tree = default_world()?;
    let cals = calendars(&tree)?;
    let land = landing(&tree)?;
    let tol: Tolerances = serde_json::from_slice(&tree["config/rules/tolerances.json"])?;
    let delivered = |bank: &str, d: NaiveDate| land.lines.contains_key(&(bank.to_string(), d));
    let event_date: HashMap<String, NaiveDate> = land
        .ledger
        .values()
        .flatten()
        .map(|t| (t.transaction_id.to_string(), t.event_time.date_naive()))
        .collect();
    let (mut pending, mut missing, mut not_expected) = (0, 0, 0);
    for r in rows(&tree, "truth/closes.csv")? {
        if r["kind"] != "transaction" {
            continue;
        }
        let (c, bank) = (date(&r["close_date"])?, r["bank_id"].as_str());
        let due = cals[bank].add_business_days(event_date[&r["id"]], tol.settlement_window_days);
        match (r["reconciled_status"].as_str(), r["mismatch_type"].as_str()) {
            ("PENDING", m) => {
                assert_eq!((m, r["match_rule"].as_str()), ("NONE", "NONE"));
                // Pending while the window runs, or while the bank's delivery is missing.
                assert!(
                    c < due || !delivered(bank, c),
                    "{} pending on {c}, due {due}",
                    r["id"]
                );
                pending += 1;
            }
            ("UNMATCHED", "MISSING_AT_BANK") => {
                // The first close from its due date on that has the bank's delivery.
                assert!(c >= due && delivered(bank, c), "{} missing on {c}", r["id"]);
                let mut d = due;
                while d < c {
                    assert!(!delivered(bank, d), "{} should be missing on {d}", r["id"]);
                    d = d + Days::new(1);
                }
                missing += 1;
            }
            ("UNMATCHED", "NONE") => not_expected += 1,
            _ => {}
        }
    }
    assert!(
        pending > 1000 && missing > 5 && not_expected > 50,
        "{pending} {missing} {not_expected}"
    );
    // DECLINED and PENDING transactions: one row, UNMATCHED / NONE, at their own close.
    let items = by_item(&tree)?;
    for (d, txns) in &land.ledger {
        for t in txns.iter().filter(|t| !expected(t.status)) {
            let r = &items[&("transaction".to_string(), t.transaction_id.to_string())];
            assert_eq!(r.len(), 1);
            assert_eq!(
                (
                    date(&r[0]["close_date"])?,
                    r[0]["reconciled_status"].as_str(),
                    r[0]["mismatch_type"].as_str()
                ),
                (*d, "UNMATCHED", "NONE")
            );
        }
    }
    Ok(())
}

#[test]
fn lags_follow_each_banks_profile_within_the_window() -> Result<()> {
    let (_, span, tree) = build_span(&cfg(9, 4000, 12, &[])?)?;
    let cals = calendars(&tree)?;
    let summary: serde_json::Value = serde_json::from_slice(&tree["truth/closes_summary.json"])?;
    let window = summary["settlement_window_days"].as_u64().unwrap_or(0) as u32;
    assert_eq!(window, 3);
    let case: HashMap<String, String> = rows(&tree, "truth/transactions.csv")?
        .into_iter()
        .map(|r| (r["transaction_id"].clone(), r["case"].clone()))
        .collect();
    let day = &span.day;
    let mut lags: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for l in &day.lines {
        let Some(t) = l.owners.first().map(|o| &day.txns[*o as usize]) else {
            continue;
        };
        let Some(case) = case.get(&t.id) else {
            continue; // brought by the ledger after the last day
        };
        let bank = world_bank(&tree, l)?;
        let cal = &cals[&bank];
        let (d, p) = (t.business_date.date(), l.posting_date.date());
        // A line booked after midnight counts from its delivery's day.
        let p = p.min(l.business_date.date());
        let lag = cal.business_days_between(d, p);
        assert!(cal.is_business_day(p), "{} posted on {p}", l.statement_id);
        if case == "late_settlement" {
            assert_eq!(lag, window + 1, "{}", l.statement_id);
            continue;
        }
        assert!(
            lag <= window,
            "{}: {lag} business days after {d}",
            l.statement_id
        );
        if cal.is_business_day(d) && case == "exact" {
            lags.entry(bank).or_default()[lag as usize] += 1;
        }
    }
    // Each bank's lags on business days are its profile (within 6 points on enough lines).
    for b in summary["banks"].as_array().into_iter().flatten() {
        let bank = b["bank_id"].as_str().unwrap_or_default();
        let counts = lags.get(bank).copied().unwrap_or_default();
        let n: u64 = counts.iter().sum();
        if n < 500 {
            continue;
        }
        for (k, c) in counts.iter().enumerate() {
            let want = b["lag_percent"][format!("T+{k}")].as_u64().unwrap_or(0);
            let got = c * 100 / n;
            assert!(
                got.abs_diff(want) <= 6,
                "{bank} T+{k}: {got}% of {n}, profile {want}%"
            );
        }
    }
    assert!(
        lags.values()
            .filter(|c| c.iter().sum::<u64>() >= 500)
            .count()
            >= 2
    );
    Ok(())
}

/// The bank a generated line is of (its statement id starts with it).
fn world_bank(_tree: &Tree, l: &recon_generator::day::Line) -> Result<String> {
    l.statement_id
        .split('-')
        .next()
        .map(str::to_string)
        .ok_or_else(|| Error::Invariant(l.statement_id.clone()))
}

#[test]
fn a_missed_delivery_awaits_and_nothing_goes_missing_that_day() -> Result<()> {
    let tree = default_world()?;
    let summary: serde_json::Value = serde_json::from_slice(&tree["truth/closes_summary.json"])?;
    let awaiting: Vec<(String, String)> = summary["closes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["delivery"] == "AWAITING_DELIVERY")
        .map(|c| {
            (
                c["bank_id"].as_str().unwrap_or_default().to_string(),
                c["close_date"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(awaiting.len(), 1, "{awaiting:?}");
    let (bank, d) = &awaiting[0];
    let rows = rows(&tree, "truth/closes.csv")?;
    let that_close: Vec<_> = rows
        .iter()
        .filter(|r| &r["bank_id"] == bank && &r["close_date"] == d)
        .collect();
    // The close happens (the day's payments are PENDING), no line is in it, nothing becomes
    // MISSING_AT_BANK.
    assert!(
        that_close
            .iter()
            .any(|r| r["reconciled_status"] == "PENDING")
    );
    assert!(that_close.iter().all(|r| r["kind"] == "transaction"));
    assert!(
        that_close
            .iter()
            .all(|r| r["mismatch_type"] != "MISSING_AT_BANK")
    );
    // Closes of days the bank does not post still run for its open items.
    let weekend: Vec<_> = summary["closes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["delivery"] == "NOT_A_BUSINESS_DAY")
        .collect();
    assert!(
        weekend.len() >= 12,
        "weekend closes of 6 banks plus a holiday"
    );
    // No line is delivered then; a carried one may be matched by a payment the ledger brought.
    assert!(weekend.iter().all(|c| {
        c["lines"]
            .as_object()
            .is_some_and(|m| m.keys().all(|k| k == "MATCHED"))
    }));
    assert!(
        weekend
            .iter()
            .all(|c| c["transactions"]["PENDING"].as_u64() > Some(0))
    );
    Ok(())
}

#[test]
fn late_ledger_payments_resolve_the_lines_that_came_first() -> Result<()> {
    let tree = default_world()?;
    let land = landing(&tree)?;
    let items = by_item(&tree)?;
    let breaks = rows(&tree, "truth/breaks.csv")?;
    let mut late = 0;
    let mut resolved = 0;
    for (d, txns) in &land.ledger {
        for t in txns.iter().filter(|t| t.event_time.date_naive() < *d) {
            late += 1;
            let r = &items[&("transaction".to_string(), t.transaction_id.to_string())];
            if r[0]["reconciled_status"] != "MATCHED" {
                continue;
            }
            for sid in r[0]["counterparts"].split(';') {
                let lr = &items[&("line".to_string(), sid.to_string())];
                if date(&lr[0]["close_date"])? < *d {
                    assert_eq!(lr[0]["mismatch_type"], "MISSING_INTERNAL", "{sid}");
                    assert_eq!(lr.len(), 2);
                    assert_eq!(date(&lr[1]["close_date"])?, *d);
                    assert_eq!(lr[1]["reconciled_status"], "MATCHED");
                    let b = breaks
                        .iter()
                        .find(|b| b["subject"] == sid)
                        .ok_or_else(|| Error::Invariant(format!("no break for {sid}")))?;
                    assert_eq!(
                        (b["opened_on"].as_str(), b["resolved_on"].as_str()),
                        (lr[0]["close_date"].as_str(), lr[1]["close_date"].as_str())
                    );
                    resolved += 1;
                }
            }
        }
    }
    let all: usize = land.ledger.values().map(Vec::len).sum();
    assert!(
        late * 200 > all && late * 50 < all,
        "{late} of {all} a day late"
    );
    assert!(resolved > 0, "no line came before its late payment");
    Ok(())
}

#[test]
fn payouts_bundle_payments_of_several_days() -> Result<()> {
    let tree = default_world()?;
    let event_date: HashMap<String, NaiveDate> = landing(&tree)?
        .ledger
        .values()
        .flatten()
        .map(|t| (t.transaction_id.to_string(), t.event_time.date_naive()))
        .collect();
    let (mut payouts, mut spanning) = (0, 0);
    for r in rows(&tree, "truth/closes.csv")? {
        if r["kind"] == "line" && r["match_rule"] == "MANY_TO_ONE" {
            let members: Vec<&str> = r["counterparts"].split(';').collect();
            assert!((2..=6).contains(&members.len()), "{}", r["id"]);
            let days: HashSet<NaiveDate> = members.iter().map(|m| event_date[*m]).collect();
            payouts += 1;
            spanning += usize::from(days.len() > 1);
        }
    }
    assert!(
        payouts > 30 && spanning * 2 > payouts,
        "{spanning} of {payouts} payouts span days"
    );
    Ok(())
}

#[test]
fn real_operations_match_almost_everything() -> Result<()> {
    let tree = default_world()?;
    let lines = rows(&tree, "truth/statement_lines.csv")?;
    let orphans = lines
        .iter()
        .filter(|r| r["case"].starts_with("orphan"))
        .count();
    assert!(
        orphans > 0 && orphans * 100 < lines.len(),
        "{orphans} orphans of {}",
        lines.len()
    );
    let items = by_item(&tree)?;
    let breaks = rows(&tree, "truth/breaks.csv")?;
    let payments = items.keys().filter(|(k, _)| k == "transaction").count();
    assert!(
        breaks.len() * 100 < payments * 5 && breaks.len() * 100 > payments,
        "{} breaks for {payments} transactions",
        breaks.len(),
    );
    // A break opens at the first row with its mismatch and resolves at the row that matches.
    for b in &breaks {
        let r = &items[&(b["subject_kind"].clone(), b["subject"].clone())];
        let opened = r
            .iter()
            .find(|x| x["mismatch_type"] == b["mismatch_type"])
            .ok_or_else(|| Error::Invariant(format!("{b:?}")))?;
        assert_eq!(opened["close_date"], b["opened_on"]);
        match r.iter().find(|x| x["close_date"] > b["opened_on"]) {
            Some(x) => {
                assert_eq!(
                    (x["reconciled_status"].as_str(), x["mismatch_type"].as_str()),
                    ("MATCHED", "NONE")
                );
                assert_eq!(x["close_date"], b["resolved_on"]);
            }
            None => assert_eq!(b["resolved_on"], ""),
        }
    }
    // Every status of the design occurs, PENDING and DISPUTED (chargebacks) included.
    let statuses: BTreeSet<&str> = items
        .values()
        .flatten()
        .map(|r| r["reconciled_status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        BTreeSet::from([
            "DISPUTED",
            "DUPLICATE",
            "MATCHED",
            "PARTIAL_MATCH",
            "PENDING",
            "UNMATCHED"
        ])
    );
    Ok(())
}

#[test]
fn knobs_of_the_other_world_are_refused() {
    assert!(Knobs::for_days(5, &["batch=0.02".into()]).is_err());
    assert!(Knobs::for_days(5, &["late_file=0.01".into()]).is_err());
    assert!(Knobs::for_days(5, &["chargeback=0.01".into()]).is_ok());
    assert!(Knobs::for_days(1, &["ledger_late=0.01".into()]).is_err());
    assert!(Knobs::for_days(1, &["anomalies=0.05".into()]).is_err());
    assert!(Knobs::for_days(40, &["anomalies=0.05".into()]).is_ok());
    assert!(Knobs::for_days(5, &["composite=0.05".into()]).is_ok());
    assert!(
        cfg(1, 100, 63, &[]).is_ok_and(|c| build(&c).is_err()),
        "at most 62 days"
    );
}
