//! `recon ops` (cargo feature `aws`): the daily close's executions on Step Functions, redrive
//! of a failed one, and the rerun of one partition with the same handler the Lambda and the
//! EMR step run ([`rerun_partition`]). `docs/runbook.md` says when to use which.

use recon_runtime::close::rerun_partition;
use recon_shared::Result;
use recon_shared::aws::sfn::{CloseClient, ExecutionInfo, parse_status};

use crate::commands::{OpsCommand, PartitionArgs};

/// The client of the daily close state machine from the environment (`RECON_DAILY_CLOSE_ARN`
/// unless `arn` is given; region, credentials and `RECON_AWS_ENDPOINT_URL` as the functions).
pub async fn close_client(arn: Option<String>) -> Result<CloseClient> {
    let settings = recon_shared::config::Settings::from_env()?;
    let sdk =
        recon_shared::aws::sdk_config(&recon_shared::aws::AwsSettings::from_settings(&settings))
            .await;
    CloseClient::from_conf(&sdk, arn, &settings)
}

/// Executions of the close, optionally of one status (`FAILED`, `RUNNING`, …).
pub async fn executions(client: &CloseClient, status: Option<&str>) -> Result<Vec<ExecutionInfo>> {
    let status = status.map(parse_status).transpose()?;
    client.executions(status).await
}

/// One line per execution: name, status, start, stop.
pub fn executions_table(list: &[ExecutionInfo]) -> String {
    let mut out = format!(
        "{:<28} {:<16} {:<22} {:<22}\n",
        "execution", "status", "started", "stopped"
    );
    for e in list {
        out.push_str(&format!(
            "{:<28} {:<16} {:<22} {:<22}\n",
            e.name,
            e.status,
            e.start,
            e.stop.as_deref().unwrap_or("-")
        ));
    }
    out.push_str(&format!("{} execution(s)\n", list.len()));
    out
}

/// Runs one `recon ops` command.
pub async fn command(what: OpsCommand) -> Result<()> {
    match what {
        OpsCommand::Executions {
            status,
            state_machine,
            json,
        } => {
            let client = close_client(state_machine).await?;
            let list = executions(&client, status.as_deref()).await?;
            if json {
                for e in &list {
                    crate::outln!("{}", serde_json::to_string(e)?);
                }
            } else {
                crate::out!("{}", executions_table(&list));
            }
        }
        OpsCommand::Redrive {
            execution_arn,
            state_machine,
        } => {
            let client = close_client(state_machine).await?;
            let when = client.redrive(&execution_arn).await?;
            crate::outln!("redriven {execution_arn} at {when}");
        }
        OpsCommand::Start {
            date,
            n,
            state_machine,
        } => {
            let client = close_client(state_machine).await?;
            let (arn, started) = client.start_close(date, n).await?;
            let what = if started { "started" } else { "exists already" };
            crate::outln!("{what}: {arn}");
        }
        OpsCommand::Rerun {
            partition:
                PartitionArgs {
                    date,
                    bank,
                    as_of,
                    execution,
                },
            data,
        } => {
            let backend = recon_shared::select::Backend::from_data_or_env(data).await?;
            let summary = rerun_partition(
                &backend.store()?,
                &backend.runs()?,
                date,
                &bank,
                as_of,
                execution,
            )
            .await?;
            crate::outln!("{}", serde_json::to_string_pretty(&summary)?);
        }
    }
    Ok(())
}
