//! A small Step Functions client for the daily close (design.md §8): start with the idempotent
//! execution name `close-{business_date}-{n}`, list executions by status, describe, redrive.

use aws_sdk_sfn::Client;
use aws_sdk_sfn::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sfn::types::ExecutionStatus;
use serde::Serialize;

use super::sdk_error;
use crate::error::{Error, Result};
use crate::ids::BusinessDate;

/// The execution name of the `n`-th close of `date` (the launcher starts `n = 1`).
pub fn close_execution_name(date: BusinessDate, n: u32) -> String {
    format!("close-{date}-{n}")
}

/// The `n` of a close execution name of `date`.
pub fn close_number(name: &str, date: BusinessDate) -> Option<u32> {
    name.strip_prefix(&format!("close-{date}-"))?.parse().ok()
}

/// The ARN of execution `name` of a state machine (what `StartExecution` answers).
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// One execution as the ops commands print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionInfo {
    /// The execution name (`close-{date}-{n}`).
    pub name: String,
    /// The execution ARN.
    pub arn: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED` or `PENDING_REDRIVE`.
    pub status: String,
    /// When it started (ISO 8601, UTC).
    pub start: String,
    /// When it stopped; `None` while it runs.
    pub stop: Option<String>,
    /// Error name and cause of a failed execution (describe only).
    pub error: Option<String>,
    /// The cause of a failed execution (describe only).
    pub cause: Option<String>,
    /// How many times the execution was redriven.
    pub redrive_count: Option<i32>,
}

fn time(d: &DateTime) -> String {
    d.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| d.secs().to_string())
}

/// Parses an execution status (`RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`,
/// `PENDING_REDRIVE`), case-insensitive.
pub fn parse_status(s: &str) -> Result<ExecutionStatus> {
    let upper = s.to_ascii_uppercase();
    let known = ExecutionStatus::values();
    if known.contains(&upper.as_str()) {
        Ok(ExecutionStatus::from(upper.as_str()))
    } else {
        Err(Error::InvalidEnum {
            field: "status",
            value: s.to_string(),
            expected: "RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE",
        })
    }
}

/// The daily close state machine.
#[derive(Debug, Clone)]
pub struct CloseClient {
    client: Client,
    state_machine_arn: String,
    /// Executions per `ListExecutions` page (`None`: the service's default).
    pub page_size: Option<i32>,
}

impl CloseClient {
    /// The client of the state machine `state_machine_arn`.
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
            page_size: None,
        }
    }

    /// From the shared SDK configuration and the ARN given, else the settings'
    /// [`crate::config::DAILY_CLOSE_ARN_ENV`].
    pub fn from_conf(
        sdk: &aws_config::SdkConfig,
        arn: Option<String>,
        settings: &crate::config::Settings,
    ) -> Result<Self> {
        let arn = match arn {
            Some(a) => a,
            None => crate::config::Settings::required(
                &settings.daily_close_arn,
                crate::config::DAILY_CLOSE_ARN_ENV,
            )?
            .to_string(),
        };
        Ok(Self::new(Client::new(sdk), arn))
    }

    /// The ARN of the daily close state machine.
    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }

    /// Every execution, newest first as the service lists them, optionally of one status.
    pub async fn executions(&self, status: Option<ExecutionStatus>) -> Result<Vec<ExecutionInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_executions()
                .state_machine_arn(&self.state_machine_arn)
                .set_status_filter(status.clone())
                .set_max_results(self.page_size)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("sfn", "ListExecutions", e))?;
            for e in page.executions() {
                out.push(ExecutionInfo {
                    name: e.name().to_string(),
                    arn: e.execution_arn().to_string(),
                    status: e.status().as_str().to_string(),
                    start: time(e.start_date()),
                    stop: e.stop_date().map(time),
                    error: None,
                    cause: None,
                    redrive_count: e.redrive_count(),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// Starts close `n` of `date` (`n`: one more than the closes already started when `None`).
    /// Starting a name that exists already is not an error: its ARN is answered, with `false`.
    pub async fn start_close(&self, date: BusinessDate, n: Option<u32>) -> Result<(String, bool)> {
        let n = match n {
            Some(n) => n,
            None => {
                let existing = self.executions(None).await?;
                existing
                    .iter()
                    .filter_map(|e| close_number(&e.name, date))
                    .max()
                    .unwrap_or(0)
                    + 1
            }
        };
        let name = close_execution_name(date, n);
        let input = serde_json::json!({ "business_date": date }).to_string();
        match self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(&name)
            .input(input)
            .send()
            .await
        {
            Ok(out) => Ok((out.execution_arn().to_string(), true)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Ok((execution_arn(&self.state_machine_arn, &name), false))
            }
            Err(e) => Err(sdk_error("sfn", "StartExecution", e)),
        }
    }

    /// One execution's status, times, and error and cause when it failed.
    pub async fn describe(&self, execution_arn: &str) -> Result<ExecutionInfo> {
        let d = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| sdk_error("sfn", "DescribeExecution", e))?;
        Ok(ExecutionInfo {
            name: d.name().unwrap_or_default().to_string(),
            arn: d.execution_arn().to_string(),
            status: d.status().as_str().to_string(),
            start: time(d.start_date()),
            stop: d.stop_date().map(time),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
            redrive_count: d.redrive_count(),
        })
    }

    /// Redrives a failed execution: it restarts from the failed states (the Map re-runs only
    /// its failed iterations). Answers the redrive time.
    pub async fn redrive(&self, execution_arn: &str) -> Result<String> {
        let out = self
            .client
            .redrive_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| sdk_error("sfn", "RedriveExecution", e))?;
        Ok(time(out.redrive_date()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_and_arns() -> Result<()> {
        let d = BusinessDate::parse("2026-11-20")?;
        assert_eq!(close_execution_name(d, 3), "close-2026-11-20-3");
        assert_eq!(close_number("close-2026-11-20-12", d), Some(12));
        assert_eq!(close_number("close-2026-11-19-1", d), None);
        assert_eq!(
            execution_arn(
                "arn:aws:states:eu-central-1:123456789012:stateMachine:recon-dev-daily-close",
                "close-2026-11-20-1"
            ),
            "arn:aws:states:eu-central-1:123456789012:execution:recon-dev-daily-close:close-2026-11-20-1"
        );
        assert_eq!(parse_status("failed")?, ExecutionStatus::Failed);
        assert!(parse_status("broken").is_err());
        Ok(())
    }
}
