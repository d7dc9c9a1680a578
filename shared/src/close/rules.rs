//! The Rules table and the close (design.md §7, docs/rules.md): the rules of a set of `config/`
//! files, their import into the table as new versions, and the table's rules written back as
//! files — by `recon rules export` to a directory, by the plan to the bucket before it
//! fingerprints any partition, so a change in the table reaches the next close without a
//! deploy.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::inputs::{calendars, fee_rules, tolerances};
use crate::config_files::problems_error;
use crate::error::{Error, Result};
use crate::keys;
use crate::ports::{Appended, ObjectStore, RulesTable, get_opt};
use crate::rules::table::{Author, RuleChange, RuleSet, RuleVersion, changes, next_versions};

/// The rules the `config/` files of `store` hold, checked as the close checks them: a file the
/// close would refuse is refused here, with every problem named (file, line, fix), so nothing
/// the close cannot use reaches the table.
pub async fn read_files<S: ObjectStore>(store: &S) -> Result<RuleSet> {
    let mut problems = Vec::new();
    let fee = fee_rules(
        get_opt(store, keys::FEE_RULES).await?.as_deref(),
        &mut problems,
    );
    let tol_bytes = get_opt(store, keys::TOLERANCES).await?;
    let tol = tolerances(tol_bytes.as_deref(), &mut problems);
    let cals = calendars(store, &mut problems).await?;
    if let Some(e) = problems_error(&problems) {
        return Err(e);
    }
    RuleSet::of(&fee, tol_bytes.is_some().then_some(&tol), &cals)
}

/// The table's versions and the rules they make current.
pub async fn table_rules<T: RulesTable>(table: &T) -> Result<(Vec<RuleVersion>, RuleSet)> {
    let versions = table.versions().await?;
    let current = RuleSet::current(&versions);
    Ok((versions, current))
}

/// Stores `wanted` as the table's rules: a new version of each rule that differs (added,
/// changed, or retired when `wanted` lacks it), stamped with `author`. Nothing is written when
/// nothing differs, so an import run twice writes once. Returns the versions written.
///
/// A rule someone else changed meanwhile (its next version is taken) stops the import with
/// the rule named; the versions written before it stay (each is a whole rule), and an import
/// run again writes what is still missing.
pub async fn import<T: RulesTable>(
    table: &T,
    wanted: &RuleSet,
    author: &Author,
) -> Result<Vec<RuleVersion>> {
    let (versions, current) = table_rules(table).await?;
    let todo = changes(&current, wanted);
    let next = next_versions(&versions, &todo, author);
    let mut written = Vec::new();
    for v in next {
        match table.append(&v).await? {
            Appended::Written => written.push(v),
            Appended::Conflict => {
                return Err(Error::InvalidConfig {
                    name: "the Rules table".into(),
                    reason: format!(
                        "{} was changed by someone else while this import ran ({} of {} changes written); run `recon rules diff` and import again",
                        v.key(),
                        written.len(),
                        todo.len()
                    ),
                });
            }
        }
    }
    Ok(written)
}

/// What the table's rules change in the files of `store` (`recon rules diff`): from the
/// table's rules to the files'.
pub async fn diff<S: ObjectStore, T: RulesTable>(table: &T, store: &S) -> Result<Vec<RuleChange>> {
    let (_, current) = table_rules(table).await?;
    Ok(changes(&current, &read_files(store).await?))
}

/// The rules the table holds, as the plan reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesInForce {
    /// Digest of the current rules ([`RuleSet::digest`]).
    pub digest: String,
    /// Rules in force (fee rules, tolerances, calendars).
    pub rules: usize,
    /// Versions the table holds (the audit trail's length).
    pub versions: usize,
    /// The latest change: which rule, who, when, why.
    pub last_change: String,
    /// Files of `config/` written (or deleted) because the table changed since the last write.
    pub written: Vec<String>,
}

/// Writes `set` as the files of `config/` in `store`: each file whose bytes differ is put,
/// each the set does not have (tolerances, a bank's calendar) deleted. The same rules give
/// the same bytes, so a second write changes nothing. Returns the keys written or deleted.
pub async fn write_files<S: ObjectStore>(store: &S, set: &RuleSet) -> Result<Vec<String>> {
    let files = set.files()?;
    let mut wanted = files.by_key();
    for obj in store.list(keys::CALENDARS).await? {
        if !wanted.iter().any(|(k, _)| *k == obj.key) {
            wanted.push((obj.key, None));
        }
    }
    let mut written = Vec::new();
    for (key, bytes) in wanted {
        let have = get_opt(store, &key).await?;
        if have.as_deref() == bytes {
            continue;
        }
        match bytes {
            Some(b) => store.put(&key, Bytes::copy_from_slice(b)).await?,
            None => store.delete(&key).await?,
        }
        written.push(key);
    }
    Ok(written)
}

/// The plan's first step (before the fingerprints): when the Rules table is in use (holds any
/// version), writes its current rules as the bucket's `config/` files. `None` when the table
/// is empty: the files are the rules (a local world, a deployment that never imported).
pub async fn publish<S: ObjectStore, T: RulesTable>(
    store: &S,
    table: &T,
) -> Result<Option<RulesInForce>> {
    let (versions, current) = table_rules(table).await?;
    let Some(last) = versions
        .iter()
        .max_by_key(|v| (v.changed_at, v.key(), v.version))
    else {
        return Ok(None);
    };
    let written = write_files(store, &current).await?;
    if !written.is_empty() {
        tracing::info!(written = ?written, digest = %current.digest(), "rules published from the Rules table");
    }
    Ok(Some(RulesInForce {
        digest: current.digest(),
        rules: current.0.len(),
        versions: versions.len(),
        last_change: format!(
            "{} v{} by {} at {}: {}",
            last.key(),
            last.version,
            last.changed_by,
            last.changed_at.to_rfc3339(),
            last.reason
        ),
        written,
    }))
}
