//! The Rules table on a generated week (docs/rules.md): the world's rules imported into the
//! table change no close; a fee rule of one bank repriced in the table from Wednesday reaches
//! the next close without touching a file, re-reconciles exactly that bank's closes from
//! Wednesday on, and leaves an audit of who changed what; export, diff and history agree.

mod common;

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use common::{state, tmp};
use recon_cli::commands::{BreaksWhere, RulesCommand};
use recon_shared::close::rules::{diff, import, read_files, table_rules, write_files};
use recon_shared::local::{LocalRules, LocalStore};
use recon_shared::rules::table::{Author, RuleKind};
use recon_shared::{Error, Result};
use serde_json::Value;

const FIRST: &str = "2026-11-16";
const LAST: &str = "2026-11-22";
const REPRICED_FROM: &str = "2026-11-18";

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?
        .block_on(f)
}

fn author(who: &str, hour: u32, why: &str) -> Result<Author> {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 22, hour, 0, 0)
        .single()
        .ok_or_else(|| Error::Invariant("bad time".into()))?;
    Author::new(who, at, why)
}

/// bank_02's base fee rule in force in the week ends the day before Wednesday; a copy 0.5
/// points dearer takes over from Wednesday. Returns the rewritten file.
fn reprice_bank_02(fee_rules: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut repriced = 0;
    for line in String::from_utf8_lossy(fee_rules).lines() {
        let mut rule: Value = serde_json::from_str(line)?;
        let in_week = rule["bank_id"] == "bank_02"
            && rule["merchant_category"].is_null()
            && rule["effective_from"].as_str().is_some_and(|f| f <= FIRST)
            && rule["effective_to"].as_str().is_none_or(|t| t >= LAST);
        if in_week {
            let mut next = rule.clone();
            rule["effective_to"] = "2026-11-17".into();
            next["rule_id"] = format!("{}-repriced", next["rule_id"].as_str().unwrap_or("")).into();
            next["effective_from"] = REPRICED_FROM.into();
            let percent: rust_decimal::Decimal = next["percent"]
                .as_str()
                .unwrap_or("")
                .parse()
                .map_err(|e| Error::Invariant(format!("percent: {e}")))?;
            next["percent"] = (percent + rust_decimal::Decimal::new(5, 1))
                .to_string()
                .into();
            out.push(serde_json::to_string(&next)?);
            repriced += 1;
        }
        out.push(serde_json::to_string(&rule)?);
    }
    assert_eq!(
        repriced, 1,
        "bank_02 has one base rule in force in the week"
    );
    Ok((out.join("\n") + "\n").into_bytes())
}

#[test]
fn a_rule_changed_in_the_table_recloses_exactly_the_partitions_it_affects() -> Result<()> {
    let dir = tmp()?;
    let root = dir.path();
    common::world(root, FIRST, 7, 1500, 13)?;
    common::run_quietly(root, FIRST, Some(LAST))?;
    let table = LocalRules::new(root);
    let bucket = LocalStore::new(root);

    // The world's rules move to the table: the plan publishes them, no close changes.
    let rules = block_on(read_files(&bucket))?;
    let first = block_on(import(
        &table,
        &rules,
        &author("alice", 9, "rules move to the table")?,
    ))?;
    assert_eq!(first.len(), rules.0.len());
    assert!(first.iter().any(|v| v.kind == RuleKind::Tolerances));
    assert!(first.iter().any(|v| v.kind == RuleKind::Calendar));
    // Importing the same rules again writes nothing.
    assert!(block_on(import(&table, &rules, &author("alice", 9, "again")?))?.is_empty());
    let before = state(root)?;
    common::run_quietly(root, LAST, None)?;
    assert!(
        !root
            .join(format!("runs/{LAST}/close-{LAST}-2.json"))
            .exists(),
        "the same rules from the table re-ran a close"
    );

    // bank_02 is repriced from Wednesday, in the table only (exported, edited, imported).
    let work = tmp()?;
    let edit = LocalStore::new(work.path());
    block_on(write_files(&edit, &block_on(table_rules(&table))?.1))?;
    let fee_path = work.path().join(recon_shared::keys::FEE_RULES);
    let fees = std::fs::read(&fee_path).map_err(|e| Error::io(&fee_path, e))?;
    std::fs::write(&fee_path, reprice_bank_02(&fees)?).map_err(|e| Error::io(&fee_path, e))?;
    // `recon rules diff` says something differs (a problem: exit 3) until it is imported.
    let cli_diff = || {
        block_on(recon_cli::rules::command(RulesCommand::Diff {
            at: BreaksWhere {
                data: Some(root.to_path_buf()),
            },
            from: work.path().to_path_buf(),
        }))
    };
    assert_eq!(cli_diff()?.len(), 1);
    let changes = block_on(diff(&table, &edit))?;
    assert_eq!(
        changes.iter().map(|c| c.verb()).collect::<Vec<_>>(),
        ["changed", "added"],
        "{changes:#?}"
    );
    let written = block_on(import(
        &table,
        &block_on(read_files(&edit))?,
        &author("bob", 10, "bank_02 repriced from Wednesday")?,
    ))?;
    assert_eq!(written.len(), 2);
    assert!(block_on(diff(&table, &edit))?.is_empty());
    assert!(cli_diff()?.is_empty());

    // The next close: bank_02 from Wednesday on, nothing else.
    common::run_quietly(root, LAST, None)?;
    let want: Vec<(String, String)> = (18..=22)
        .map(|d| (format!("2026-11-{d}"), "bank_02".to_string()))
        .collect();
    assert_eq!(common::reconciled(root, LAST, 2)?, want);
    let after = state(root)?;
    let changed: BTreeSet<&str> = after
        .iter()
        .filter(|(k, v)| k.starts_with("index/batch/") && before.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    assert!(!changed.is_empty(), "the repricing changed no batch index");
    for k in &changed {
        assert!(
            k.contains("bank_id=bank_02") && *k >= "index/batch/business_date=2026-11-18",
            "{k} changed"
        );
    }
    // The bucket's fee rules are the table's, written by the plan.
    let published = std::fs::read(root.join(recon_shared::keys::FEE_RULES))
        .map_err(|e| Error::io("fee rules", e))?;
    let table_files = block_on(table_rules(&table))?.1.files()?;
    assert!(
        published == table_files.fee_rules,
        "the bucket's fee rules are not the table's"
    );

    // The audit: who changed what, when and why.
    let (versions, _) = block_on(table_rules(&table))?;
    let by_bob: Vec<(String, u32)> = versions
        .iter()
        .filter(|v| v.changed_by == "bob")
        .map(|v| (v.id.clone(), v.version))
        .collect();
    assert_eq!(by_bob.len(), 2);
    assert!(
        by_bob
            .iter()
            .any(|(id, v)| id.ends_with("-repriced") && *v == 1)
    );
    assert!(
        by_bob
            .iter()
            .any(|(id, v)| !id.ends_with("-repriced") && *v == 2)
    );
    Ok(())
}
