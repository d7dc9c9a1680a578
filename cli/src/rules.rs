//! `recon rules …`: the Rules table (docs/rules.md) from the command line, each command one
//! call into `recon_shared::close::rules` over the local data directory's table or the
//! deployment's.

use recon_runtime::run::Problems;
use recon_shared::close::rules::{self as rules, read_files, table_rules, write_files};
use recon_shared::local::LocalStore;
use recon_shared::rules::table::{Author, RuleVersion, changes};
use recon_shared::select::Backend;
use recon_shared::{Error, Result};

use crate::commands::RulesCommand;
use crate::outln;

/// Runs one `recon rules` command; a diff that finds changes is a problem (exit 3).
pub async fn command(what: RulesCommand) -> Result<Problems> {
    match what {
        RulesCommand::Import {
            at,
            from,
            actor,
            reason,
            dry_run,
        } => {
            let table = Backend::from_data_or_env(at.data).await?.rules()?;
            let wanted = read_files(&LocalStore::new(&from)).await?;
            let author = Author::new(&actor, chrono::Utc::now(), &reason)?;
            if dry_run {
                let (_, current) = table_rules(&table).await?;
                for c in changes(&current, &wanted) {
                    outln!("{c}");
                }
                return Ok(Problems::new());
            }
            let written = rules::import(&table, &wanted, &author).await?;
            for v in &written {
                outln!("{} v{}", v.key(), v.version);
            }
            outln!(
                "{} version(s) written; the next close uses them",
                written.len()
            );
        }
        RulesCommand::Export { at, to } => {
            let table = Backend::from_data_or_env(at.data).await?.rules()?;
            let (versions, current) = table_rules(&table).await?;
            if versions.is_empty() {
                return Err(Error::InvalidConfig {
                    name: "the Rules table".into(),
                    reason: "it holds no rule: the close reads the files of config/ (import them with `recon rules import`)".into(),
                });
            }
            let written = write_files(&LocalStore::new(&to), &current).await?;
            outln!(
                "{} rule(s) exported, {} file(s) written under {}",
                current.0.len(),
                written.len(),
                to.display()
            );
        }
        RulesCommand::Diff { at, from } => {
            let table = Backend::from_data_or_env(at.data).await?.rules()?;
            let found = rules::diff(&table, &LocalStore::new(&from)).await?;
            for c in &found {
                outln!("{c}");
            }
            if !found.is_empty() {
                return Ok(vec![format!(
                    "{} rule(s) of {} differ from the Rules table",
                    found.len(),
                    from.display()
                )]);
            }
            outln!("no difference");
        }
        RulesCommand::History { at, id, json } => {
            let table = Backend::from_data_or_env(at.data).await?.rules()?;
            let (mut versions, _) = table_rules(&table).await?;
            versions.retain(|v| id.as_ref().is_none_or(|i| &v.id == i));
            versions.sort_by(|a, b| {
                (a.changed_at, a.key(), a.version).cmp(&(b.changed_at, b.key(), b.version))
            });
            for v in &versions {
                if json {
                    outln!("{}", serde_json::to_string(v)?);
                } else {
                    outln!("{}", line(v));
                }
            }
        }
    }
    Ok(Problems::new())
}

/// One version for people: when, who, what, why.
fn line(v: &RuleVersion) -> String {
    let what = if v.body.is_some() { "" } else { " (retired)" };
    format!(
        "{}  {:<12} {} v{}{what}: {}",
        v.changed_at.format("%Y-%m-%d %H:%M:%S UTC"),
        v.changed_by,
        v.key(),
        v.version,
        v.reason
    )
}
