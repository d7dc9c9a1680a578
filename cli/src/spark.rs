//! `recon spark …`: the steps of the Spark job for a large partition (docs/spark.md), each one
//! call into `recon_shared::close::spark`.

use std::path::PathBuf;

use bytes::Bytes;
use recon_shared::close::spark::{JobPlan, merge_job, plan_job, read_ipc, run_group};
use recon_shared::close::{PartitionRequest, previous_close};
use recon_shared::ids::BankId;
use recon_shared::ports::ObjectStore;
use recon_shared::select::Backend;
use recon_shared::{Error, Result};

use crate::commands::{PartitionArgs, SparkCommand};
use crate::outln;

async fn load_plan<S: ObjectStore>(store: &S, key: &str) -> Result<JobPlan> {
    Ok(serde_json::from_slice(&store.get(key).await?)?)
}

fn read_file(path: &PathBuf) -> Result<Bytes> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|e| Error::io(path.display().to_string(), e))
}

/// Runs one step and prints its JSON answer.
pub async fn command(what: SparkCommand) -> Result<()> {
    match what {
        SparkCommand::Plan {
            data,
            partition:
                PartitionArgs {
                    date,
                    bank,
                    as_of,
                    execution,
                },
            awaiting,
            groups,
        } => {
            let store = Backend::from_data_or_env(data).await?.store()?;
            let bank_id = BankId::new(&bank)?;
            let awaiting = awaiting
                .map(|a| serde_json::from_value(serde_json::Value::String(a.to_uppercase())))
                .transpose()?;
            let req = PartitionRequest {
                business_date: date,
                previous: previous_close(&store, &bank_id, date).await?,
                bank_id,
                as_of: as_of.unwrap_or(date),
                execution,
                awaiting,
            };
            let plan = plan_job(&store, &req, groups).await?;
            outln!("{}", serde_json::to_string(&plan)?);
        }
        SparkCommand::Group {
            data,
            plan,
            group,
            transactions,
            lines,
        } => {
            let store = Backend::from_data_or_env(data).await?.store()?;
            let plan = load_plan(&store, &plan).await?;
            let txns = read_ipc(
                read_file(&transactions)?,
                &transactions.display().to_string(),
            )?;
            let lines = read_ipc(read_file(&lines)?, &lines.display().to_string())?;
            let out = run_group(&store, &plan, group, &txns, &lines).await?;
            outln!("{}", serde_json::to_string(&out)?);
        }
        SparkCommand::Merge { data, plan, groups } => {
            let backend = Backend::from_data_or_env(data).await?;
            let store = backend.store()?;
            let plan = load_plan(&store, &plan).await?;
            let summary = merge_job(&store, &backend.runs()?, &plan, &groups).await?;
            outln!("{}", serde_json::to_string(&summary)?);
        }
    }
    Ok(())
}
