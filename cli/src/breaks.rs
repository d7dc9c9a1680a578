//! `recon breaks …`: finance works its breaks (design.md §12) from the command line, each
//! command one call into `recon_shared::close::breaks` over the local data directory or the
//! deployment of the environment.

use recon_shared::breaks::{Action, Refusal, is_break_id};
use recon_shared::close::breaks::{self as work, BreakRecord, BreakView, FactsCache};
use recon_shared::select::Backend;
use recon_shared::{Error, Result};

use crate::commands::{ActOn, BreaksCommand};
use crate::{out, outln};

fn refused(action: &'static str, r: Refusal) -> Error {
    let (refusal, code, message) = match r {
        Refusal::Invalid(m) => (recon_shared::error::Refusal::Invalid, "invalid", m),
        Refusal::NotFound(m) => (recon_shared::error::Refusal::Invalid, "not found", m),
        Refusal::Conflict(m) => (recon_shared::error::Refusal::Conflict, "conflict", m),
    };
    Error::Refused {
        refusal,
        service: "breaks",
        operation: action,
        code: code.into(),
        message,
    }
}

fn check_id(id: &str) -> Result<()> {
    if is_break_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidId {
            kind: "break_id",
            value: id.chars().take(24).collect(),
            reason: "expected brk_ and 20 lowercase hex digits",
        })
    }
}

async fn act(on: ActOn, action: Action) -> Result<()> {
    let backend = Backend::from_data_or_env(on.at.data).await?;
    let (store, log) = (backend.store()?, backend.break_log()?);
    let code = action.code();
    let (event, _) = work::act(
        &store,
        &log,
        &FactsCache::default(),
        &on.break_id,
        on.date,
        action,
        &on.actor,
        chrono::Utc::now(),
    )
    .await?
    .map_err(|r| refused(code, r))?;
    outln!("{}", serde_json::to_string_pretty(&event)?);
    Ok(())
}

/// The list as a table for people.
fn table(views: &[BreakView]) -> String {
    let mut s = format!(
        "{:<24} {:<10} {:<17} {:>12} {:>5}  {:<19} {}\n",
        "break", "bank", "type", "discrepancy", "age", "status", "owner"
    );
    for v in views {
        let f = &v.facts;
        s.push_str(&format!(
            "{:<24} {:<10} {:<17} {:>12} {:>5}  {:<19} {}\n",
            f.break_id,
            f.bank_id.as_str(),
            f.mismatch_type.as_str(),
            f.amounts
                .discrepancy
                .map_or_else(|| "-".into(), |d| d.normalize().to_string()),
            f.age_days.map_or_else(|| "-".into(), |a| a.to_string()),
            v.status.as_str(),
            v.owner.as_deref().unwrap_or("-"),
        ));
    }
    s.push_str(&format!("{} break(s)\n", views.len()));
    s
}

/// Runs one `recon breaks` command.
pub async fn command(what: BreaksCommand) -> Result<()> {
    match what {
        BreaksCommand::List {
            at,
            date,
            bank,
            status,
            owner,
            json,
        } => {
            let status = status
                .as_deref()
                .map(|s| {
                    work::status_filter(s).ok_or_else(|| Error::InvalidConfig {
                        name: "--status".into(),
                        reason: "open or resolved".into(),
                    })
                })
                .transpose()?;
            let backend = Backend::from_data_or_env(at.data).await?;
            let views: Vec<BreakView> = work::list(
                &backend.store()?,
                &backend.break_log()?,
                &FactsCache::default(),
                date,
                bank.as_ref(),
            )
            .await?
            .into_iter()
            .filter(|v| status.is_none_or(|s| v.status == s))
            .filter(|v| owner.is_none() || v.owner == owner)
            .collect();
            if json {
                outln!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                out!("{}", table(&views));
            }
        }
        BreaksCommand::Show { at, break_id, date } => {
            check_id(&break_id)?;
            let backend = Backend::from_data_or_env(at.data).await?;
            let (store, log) = (backend.store()?, backend.break_log()?);
            let record =
                BreakRecord::read(&store, &log, &FactsCache::default(), &break_id, date).await?;
            outln!("{}", serde_json::to_string_pretty(&record)?);
        }
        BreaksCommand::Assign { on, owner } => act(on, Action::Assign { owner }).await?,
        BreaksCommand::Comment { on, text } => act(on, Action::Comment { text }).await?,
        BreaksCommand::Resolve {
            on,
            reason,
            note,
            transactions,
            statements,
        } => {
            let action = Action::Resolve {
                reason,
                note,
                transaction_ids: transactions,
                statement_ids: statements,
            };
            act(on, action).await?
        }
        BreaksCommand::Reopen { on, note } => act(on, Action::Reopen { note }).await?,
        BreaksCommand::Verify { at, break_id } => {
            let backend = Backend::from_data_or_env(at.data).await?;
            let log = backend.break_log()?;
            let (breaks, events, broken) = match break_id {
                Some(id) => {
                    check_id(&id)?;
                    let events = recon_shared::ports::BreakLog::history(&log, &id, 0).await?;
                    let broken = recon_shared::breaks::verify(&events).err();
                    (1, events.len() as u64, broken.into_iter().collect())
                }
                None => work::verify_all(&log).await?,
            };
            if let Some(b) = broken.first() {
                return Err(Error::Invariant(format!(
                    "{} of {breaks} break chain(s) broken; first: break {} at event {}: {}",
                    broken.len(),
                    b.break_id,
                    b.seq,
                    b.reason
                )));
            }
            outln!("{breaks} break(s), {events} event(s): every chain verified");
        }
    }
    Ok(())
}
