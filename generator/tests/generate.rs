//! The generated day: deterministic, true to its manifests and mappings, referentially sound,
//! and covered by its truth exactly once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use recon_generator::truth::{canonical_line, canonical_txn};
use recon_generator::write::Tree;
use recon_generator::{GenerateConfig, Knobs, build, generate};
use recon_shared::ids::BusinessDate;
use recon_shared::manifest::{MANIFEST_FILE, Manifest, sha256_hex};
use recon_shared::money::FxTable;
use recon_shared::records::{Merchant, StatementLine, Transaction};
use recon_shared::source::{
    ParseContext, SourceKind, SourceMapping, count_records, parse_statements, parse_transactions,
};
use recon_shared::{Error, Result};

fn cfg(seed: u64, transactions: usize) -> Result<GenerateConfig> {
    Ok(GenerateConfig {
        out: std::env::temp_dir().join("unused"),
        date: BusinessDate::parse("2026-11-20")?,
        transactions,
        banks: 6,
        seed,
        knobs: Knobs::default(),
        force: false,
        days: 1,
    })
}

fn text(tree: &Tree, key: &str) -> Result<String> {
    let bytes = tree
        .get(key)
        .ok_or_else(|| Error::NotFound { key: key.into() })?;
    String::from_utf8(bytes.clone()).map_err(|e| Error::Invariant(e.to_string()))
}

fn csv_rows(tree: &Tree, key: &str) -> Result<Vec<BTreeMap<String, String>>> {
    Ok(recon_generator::truth::csv_rows(&text(tree, key)?))
}

/// Every landing delivery: (source, date, prefix) for each manifest.
fn manifests(tree: &Tree) -> Result<Vec<(String, Manifest)>> {
    tree.iter()
        .filter(|(k, _)| k.ends_with(MANIFEST_FILE))
        .map(|(k, v)| {
            Ok((
                k.trim_end_matches(MANIFEST_FILE).to_string(),
                Manifest::parse(k, v)?,
            ))
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() -> Result<()> {
    let a = build(&cfg(7, 3000)?)?.2;
    let b = build(&cfg(7, 3000)?)?.2;
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(
            b.get(k) == Some(v),
            "{k} differs between two runs with the same seed"
        );
    }
    let c = build(&cfg(8, 3000)?)?.2;
    assert_ne!(
        a.get("truth/transactions.csv"),
        c.get("truth/transactions.csv")
    );
    assert_ne!(
        a.get("topics/transactions_topic.jsonl"),
        c.get("topics/transactions_topic.jsonl")
    );
    Ok(())
}

#[test]
fn generate_writes_the_same_tree_it_builds_and_refuses_a_full_directory() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let mut c = cfg(11, 1500)?;
    c.out = dir.path().join("day");
    let report = generate(&c)?;
    let tree = build(&c)?.2;
    assert_eq!(report.files, tree.len());
    for (k, v) in &tree {
        let on_disk = std::fs::read(c.out.join(k)).map_err(|e| Error::io(k, e))?;
        assert!(&on_disk == v, "{k} on disk differs from the built tree");
    }
    assert!(
        generate(&c).is_err(),
        "a non-empty --out must be refused without --force"
    );
    c.force = true;
    generate(&c)?;
    Ok(())
}

#[test]
fn every_manifest_is_true_to_its_files() -> Result<()> {
    let tree = build(&cfg(3, 4000)?)?.2;
    let ms = manifests(&tree)?;
    assert!(
        ms.len() >= 8,
        "expected ledger, 6 banks, a late file and a v1 delivery, got {}",
        ms.len()
    );
    let mut formats = BTreeSet::new();
    for (prefix, m) in &ms {
        let mapping =
            SourceMapping::from_json(&tree[&format!("config/sources/{}.json", m.source_id)])?;
        formats.insert(mapping.format.as_str());
        assert!(
            prefix.ends_with(&format!("{}/{}/", m.source_id, m.business_date)),
            "{prefix}"
        );
        for f in &m.files {
            let key = format!("{prefix}{}", f.name);
            let bytes = tree
                .get(&key)
                .ok_or_else(|| Error::NotFound { key: key.clone() })?;
            assert_eq!(f.size_bytes, bytes.len() as u64, "{key} size");
            assert_eq!(f.sha256, sha256_hex(bytes), "{key} sha256");
            assert_eq!(
                f.record_count,
                count_records(&mapping, &f.name, bytes)?,
                "{key} records"
            );
        }
        // No unlisted data file sits beside a manifest.
        let listed: HashSet<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
        for k in tree
            .keys()
            .filter(|k| k.starts_with(prefix.as_str()) && !k.ends_with(MANIFEST_FILE))
        {
            assert!(
                listed.contains(&k[prefix.len()..]),
                "{k} is not listed in its manifest"
            );
        }
    }
    // The six default banks cover every statement format.
    assert_eq!(
        formats,
        BTreeSet::from(["csv", "jsonl", "mt940", "camt053"]),
        "statement and ledger formats"
    );
    let corrected = ms
        .iter()
        .filter(|(p, m)| p.starts_with("landing/") && m.version == 2)
        .count();
    assert_eq!(corrected, 1, "one corrected delivery (version 2)");
    Ok(())
}

#[test]
fn landing_files_parse_back_into_the_generated_records() -> Result<()> {
    let (world, day, tree) = build(&cfg(5, 6000)?)?;
    let mut parsed_lines: BTreeMap<String, StatementLine> = BTreeMap::new();
    let mut parsed_txns: BTreeMap<String, Transaction> = BTreeMap::new();
    let mut physical = 0usize;
    for (prefix, m) in manifests(&tree)? {
        if !prefix.starts_with("landing/") {
            continue;
        }
        let mapping =
            SourceMapping::from_json(&tree[&format!("config/sources/{}.json", m.source_id)])?;
        let fx = FxTable::from_csv(&text(&tree, &format!("config/fx/{}.csv", m.business_date))?)?;
        for f in &m.files {
            let bytes = &tree[&format!("{prefix}{}", f.name)];
            let ctx = ParseContext {
                mapping: &mapping,
                fx: &fx,
                business_date: m.business_date,
                file: &f.name,
            };
            match mapping.kind {
                SourceKind::Statement => {
                    let p = parse_statements(&ctx, bytes)?;
                    assert!(p.rejects.is_empty(), "{}: {:?}", f.name, p.rejects.first());
                    physical += p.records.len();
                    for (_, l) in p.records {
                        if let Some(prev) =
                            parsed_lines.insert(l.statement_id.to_string(), l.clone())
                        {
                            assert_eq!(prev, l, "a repeated record must be byte-identical");
                        }
                    }
                }
                SourceKind::Transactions => {
                    let p = parse_transactions(&ctx, bytes)?;
                    assert!(p.rejects.is_empty(), "{}: {:?}", f.name, p.rejects.first());
                    for (_, t) in p.records {
                        assert!(
                            parsed_txns
                                .insert(t.transaction_id.to_string(), t)
                                .is_none()
                        );
                    }
                }
            }
        }
    }
    assert_eq!(parsed_lines.len(), day.lines.len());
    let dups = day.lines.iter().filter(|l| l.dup_record).count();
    assert_eq!(
        physical,
        day.lines.len() + dups,
        "exact duplicate records are delivered twice"
    );
    for l in &day.lines {
        assert_eq!(
            parsed_lines.get(&l.statement_id),
            Some(&canonical_line(&world, l)?),
            "{}",
            l.statement_id
        );
    }
    assert_eq!(parsed_txns.len(), day.txns.len());
    for t in &day.txns {
        assert_eq!(
            parsed_txns.get(&t.id),
            Some(&canonical_txn(&world, &day, t)?)
        );
    }
    // Cross-currency lines sent in the transaction's currency keep what was sent and the rate.
    assert!(
        parsed_lines
            .values()
            .any(|l| l.original_currency.is_some() && l.fx_rate.is_some())
    );
    Ok(())
}

#[test]
fn truth_covers_every_transaction_and_line_exactly_once() -> Result<()> {
    let (_, day, tree) = build(&cfg(9, 5000)?)?;
    let tx = csv_rows(&tree, "truth/transactions.csv")?;
    let ln = csv_rows(&tree, "truth/statement_lines.csv")?;
    let tx_ids: Vec<&str> = tx.iter().map(|r| r["transaction_id"].as_str()).collect();
    let ln_ids: Vec<&str> = ln.iter().map(|r| r["statement_id"].as_str()).collect();
    assert_eq!(
        tx_ids.iter().collect::<HashSet<_>>().len(),
        tx_ids.len(),
        "a transaction appears twice"
    );
    assert_eq!(
        ln_ids.iter().collect::<HashSet<_>>().len(),
        ln_ids.len(),
        "a line appears twice"
    );
    let want_tx: HashSet<&str> = day.txns.iter().map(|t| t.id.as_str()).collect();
    let want_ln: HashSet<&str> = day.lines.iter().map(|l| l.statement_id.as_str()).collect();
    assert_eq!(tx_ids.into_iter().collect::<HashSet<_>>(), want_tx);
    assert_eq!(ln_ids.into_iter().collect::<HashSet<_>>(), want_ln);
    // Every outcome uses the design's vocabulary and counterparts point both ways.
    let line_status: HashMap<&str, &BTreeMap<String, String>> =
        ln.iter().map(|r| (r["statement_id"].as_str(), r)).collect();
    for r in &tx {
        for sid in r["statement_ids"].split('|').filter(|s| !s.is_empty()) {
            let l = line_status
                .get(sid)
                .ok_or_else(|| Error::Invariant(format!("{sid} unknown")))?;
            assert!(
                l["transaction_ids"]
                    .split('|')
                    .any(|t| t == r["transaction_id"]),
                "{sid} does not point back"
            );
        }
        r["reconciled_status"].parse::<recon_shared::records::ReconciledStatus>()?;
        r["mismatch_type"].parse::<recon_shared::records::MismatchType>()?;
    }
    // The realistic cases are all there with the default mix.
    let cases: BTreeSet<&str> = tx
        .iter()
        .map(|r| r["case"].as_str())
        .chain(ln.iter().map(|r| r["case"].as_str()))
        .collect();
    for c in [
        "exact",
        "missing_at_bank",
        "amount_diff",
        "fee_variance",
        "duplicate_line",
        "composite",
        "split",
        "batch",
        "chargeback",
        "refund",
        "late_file",
        "orphan_unknown_id",
        "orphan_no_id",
    ] {
        assert!(cases.contains(c), "case {c} missing");
    }
    let statuses: BTreeSet<&str> = tx
        .iter()
        .map(|r| r["reconciled_status"].as_str())
        .chain(ln.iter().map(|r| r["reconciled_status"].as_str()))
        .collect();
    assert_eq!(statuses.len(), 5, "all five statuses occur: {statuses:?}");
    // About 80 % of lines match a transaction.
    let matched = ln
        .iter()
        .filter(|r| !r["transaction_ids"].is_empty())
        .count();
    let pct = matched * 100 / ln.len();
    assert!((77..=83).contains(&pct), "{pct}% of lines match");
    Ok(())
}

#[test]
fn references_resolve_except_the_injected_orphans() -> Result<()> {
    let (_, _, tree) = build(&cfg(13, 5000)?)?;
    let merchants: HashSet<String> = text(&tree, "config/merchants.jsonl")?
        .lines()
        .map(|l| serde_json::from_str::<Merchant>(l).map(|m| m.merchant_id.to_string()))
        .collect::<std::result::Result<_, _>>()?;
    let ledger = csv_rows(&tree, "truth/transactions.csv")?;
    let known: HashSet<&str> = ledger
        .iter()
        .map(|r| r["transaction_id"].as_str())
        .collect();
    for r in csv_rows(&tree, "truth/statement_lines.csv")? {
        let orphan = r["case"].starts_with("orphan");
        assert_eq!(
            orphan,
            r["reconciled_status"] == "UNMATCHED" && r["mismatch_type"] == "MISSING_INTERNAL"
        );
        for t in r["transaction_ids"].split('|').filter(|s| !s.is_empty()) {
            assert!(
                known.contains(t),
                "line {} names unknown {t}",
                r["statement_id"]
            );
        }
    }
    // Ledger rows: merchants exist, refunds point at an existing original.
    for key in tree
        .keys()
        .filter(|k| k.starts_with("landing/ledger/") && k.ends_with(".csv"))
    {
        for row in text(&tree, key)?.lines().skip(1) {
            let f: Vec<&str> = row.split(',').collect();
            assert!(
                merchants.contains(f[1]),
                "{} has unknown merchant {}",
                f[0],
                f[1]
            );
            if !f[8].is_empty() {
                assert!(
                    known.contains(f[8]),
                    "refund {} points at unknown {}",
                    f[0],
                    f[8]
                );
            }
        }
    }
    // Fraud signals: about 90 % reference a streamed transaction.
    let streamed: HashSet<String> = text(&tree, "topics/transactions_topic.jsonl")?
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .map(|v| v["key"].as_str().unwrap_or_default().to_string())
        })
        .collect::<std::result::Result<_, _>>()?;
    let (mut hit, mut all) = (0, 0);
    for l in text(&tree, "topics/fraud_signals_topic.jsonl")?.lines() {
        let v: serde_json::Value = serde_json::from_str(l)?;
        all += 1;
        hit += usize::from(
            streamed.contains(v["value"]["transaction_id"].as_str().unwrap_or_default()),
        );
    }
    let pct = hit * 100 / all;
    assert!(
        (87..=93).contains(&pct),
        "{pct}% of fraud signals reference a transaction"
    );
    Ok(())
}

#[test]
fn topics_hold_redeliveries_and_out_of_order_records() -> Result<()> {
    let (_, _, tree) = build(&cfg(17, 5000)?)?;
    let mut seen = HashSet::new();
    let (mut redelivered, mut older_after_newer) = (0, 0);
    let mut latest: HashMap<String, String> = HashMap::new();
    for l in text(&tree, "topics/transactions_topic.jsonl")?.lines() {
        let v: serde_json::Value = serde_json::from_str(l)?;
        let id = (v["partition"].as_u64(), v["offset"].as_u64());
        if !seen.insert(id) {
            redelivered += 1;
            continue;
        }
        let key = v["key"].as_str().unwrap_or_default().to_string();
        let t = v["value"]["event_time"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if latest.get(&key).is_some_and(|prev| *prev > t) {
            older_after_newer += 1;
        }
        let e = latest.entry(key).or_default();
        if t > *e {
            *e = t;
        }
    }
    assert!(redelivered > 10, "{redelivered} redeliveries");
    assert!(older_after_newer > 0, "no out-of-order record");
    Ok(())
}

/// A payout (one line paying several transactions) is in truth only if no other set of its
/// merchant's unpaid transactions adds up to its amount and fee: seed 11 had payouts that
/// eight other sets of 5 fitted exactly, which no engine could tell apart.
#[test]
fn every_payout_is_the_only_group_that_adds_up_to_it() -> Result<()> {
    use recon_generator::day::Case;
    use recon_shared::reconcile::group::{GroupSearch, members, pool_limit};
    let (world, day, _) = build(&cfg(11, 20_000)?)?;
    let tol = &day.tolerances;
    let mut payouts = 0;
    for l in day.lines.iter().filter(|l| l.case == Case::Batch) {
        let pool: Vec<usize> = (0..day.txns.len())
            .filter(|t| {
                let x = &day.txns[*t];
                x.bank == l.bank
                    && Some(x.merchant) == l.merchant
                    && x.business_date == world.date
                    && matches!(x.case, Case::MissingAtBank | Case::Composite | Case::Batch)
            })
            .collect();
        assert!(
            pool.len() <= pool_limit(tol.max_group_candidates, tol.max_group_size),
            "{}: {} candidates, more than one search covers",
            l.statement_id,
            pool.len()
        );
        let items: Vec<(i64, i64)> = pool
            .iter()
            .map(|t| (day.txns[*t].conv_minor, day.txns[*t].fee_minor))
            .collect();
        let fits: Vec<Vec<usize>> = GroupSearch::new(&items, tol.max_group_size)
            .fits((l.amount_minor, l.fee_minor), (0, 0), 0, 3)
            .into_iter()
            .map(|g| members(g).map(|i| pool[i]).collect())
            .collect();
        let mut owners: Vec<usize> = l.owners.iter().map(|o| *o as usize).collect();
        owners.sort_unstable();
        assert_eq!(fits, vec![owners], "{}", l.statement_id);
        payouts += 1;
    }
    assert!(payouts > 80, "{payouts} payouts");
    Ok(())
}
