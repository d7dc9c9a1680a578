//! `recon ops` (cargo feature `aws`): the daily close's executions on Step Functions, redrive
//! of a failed one, and the rerun of one partition with the same handler the Lambda and the
//! EMR step run. `docs/runbook.md` says when to use which.

use recon_shared::Result;
use recon_shared::aws::sfn::{CloseClient, ExecutionInfo, parse_status};
use recon_shared::close::{PartitionRequest, PartitionSummary};
use recon_shared::ids::{BankId, BusinessDate};
use recon_shared::ports::{ObjectStore, RunsTable};

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

/// Re-reconciles one partition (what a failed Map iteration or EMR step would have done), over
/// any ports: the same [`reconcile_partition::handle`] as the Lambda and
/// `recon reconcile-partition`. The Runs table records it under `execution` when given.
pub async fn rerun<S: ObjectStore, R: RunsTable>(
    store: &S,
    runs: &R,
    date: BusinessDate,
    bank: &str,
    as_of: Option<BusinessDate>,
    execution: Option<String>,
) -> Result<PartitionSummary> {
    let req = PartitionRequest {
        business_date: date,
        bank_id: BankId::new(bank)?,
        as_of: as_of.unwrap_or(date),
        execution,
    };
    reconcile_partition::handle(req, store, runs).await
}
