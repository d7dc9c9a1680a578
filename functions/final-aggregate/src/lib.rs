//! `final-aggregate` (Step Functions task): final index, merchant KPIs and the run summary.

pub use recon_shared::close::{CloseSummary, FinalRequest};
use recon_shared::config::Settings;
use recon_shared::entry::{Function, Invocation};
use recon_shared::metrics::{Emf, pascal};
use recon_shared::ports::{BreakLog, Catalog, ObjectStore, RunsTable, TransactionIndex};
use recon_shared::records::MismatchType;
use recon_shared::select::{
    AnyBreakLog, AnyCatalog, AnyIndex, AnyRuns, AnyStore, Backend, IndexMode,
};

pub async fn handle<S: ObjectStore, R: RunsTable, I: TransactionIndex, C: Catalog, L: BreakLog>(
    req: FinalRequest,
    store: &S,
    runs: &R,
    index: &I,
    catalog: &C,
    breaks: &L,
) -> recon_shared::Result<CloseSummary> {
    let summary = recon_shared::close::final_aggregate(store, runs, index, catalog, &req).await?;
    // Resolutions whose amounts changed reopen, with an event that says why (after the
    // outputs: a retried aggregation finds them reopened and appends nothing twice).
    let reopened = recon_shared::close::breaks::record_close_reopens(
        breaks,
        req.results.iter().chain(&req.emr_results),
        chrono::Utc::now(),
    )
    .await?;
    if reopened > 0 {
        tracing::info!(
            reopened,
            "people's resolutions reopened: the amounts changed"
        );
    }
    Ok(summary)
}

/// Namespace and name of the metric the `MismatchRate` alarm of `template.yaml` watches.
pub const METRIC_NAMESPACE: &str = recon_shared::metrics::NAMESPACE;
pub const MISMATCH_RATE_METRIC: &str = "MismatchRate";
/// Banks whose statement the close awaits (the `AwaitingDeliveries` alarm of `template.yaml`).
pub const AWAITING_METRIC: &str = "AwaitingDeliveries";
/// Anomaly flags the close raised (the `AnomaliesFlagged` alarm of `template.yaml`).
pub const ANOMALIES_METRIC: &str = "AnomaliesFlagged";

/// How many bank statements a close's summary awaits.
pub fn awaiting_deliveries(summary: &CloseSummary) -> u64 {
    summary.awaiting_deliveries.len() as u64
}

/// CloudWatch embedded-metric-format lines for a close's summary: for each closed date, the
/// share of its transactions with a mismatch (any `mismatch_type` but `NONE`), with the
/// `Environment` dimension, and its matches per reconciled status (`Matches{Status}`). The
/// Lambda prints them to stdout; CloudWatch Logs turns each line into datapoints. Dates
/// without transactions give no line.
pub fn mismatch_rate_emf(
    summary: &CloseSummary,
    environment: &str,
    timestamp_ms: i64,
) -> Vec<String> {
    summary
        .dates
        .iter()
        .filter(|(_, day)| day.transactions > 0)
        .map(|(date, day)| {
            let clean = day
                .by_mismatch
                .get(MismatchType::None.as_str())
                .copied()
                .unwrap_or(0);
            let mut emf = Emf::new(environment, "final-aggregate")
                .environment_only()
                .ratio(
                    MISMATCH_RATE_METRIC,
                    day.transactions.saturating_sub(clean),
                    day.transactions,
                )
                .property("BusinessDate", date.to_string())
                .property("Execution", summary.execution.as_str())
                .property("Transactions", day.transactions);
            for (status, n) in &day.by_status {
                emf = emf.count(&format!("Matches{}", pascal(status)), *n);
            }
            emf.line(timestamp_ms)
        })
        .collect()
}

/// The close's product-wide figures, with the `Environment` dimension only (as the
/// `AwaitingDeliveries` and `AnomaliesFlagged` alarms of `template.yaml` watch them): banks
/// whose statement the close awaits and the anomaly flags it raised.
pub fn close_emf(summary: &CloseSummary, environment: &str, timestamp_ms: i64) -> String {
    Emf::new(environment, "final-aggregate")
        .environment_only()
        .count(AWAITING_METRIC, awaiting_deliveries(summary))
        .count(ANOMALIES_METRIC, summary.anomalies)
        .property("BusinessDate", summary.business_date.to_string())
        .property("Execution", summary.execution.as_str())
        .line(timestamp_ms)
}

/// The Lambda (served by `recon_shared::entry`): the close's last task over the bucket, the
/// Runs table and the TransactionIndex (settlement write-back), then the `MismatchRate` lines
/// and the function's own (duration, awaited deliveries).
pub struct Lambda(AnyStore, AnyRuns, AnyIndex, AnyCatalog, AnyBreakLog);

impl Function for Lambda {
    type Event = FinalRequest;
    type Output = CloseSummary;

    async fn init(_: &Settings, backend: &Backend) -> recon_shared::Result<Self> {
        let index = backend.index(IndexMode::Writer)?;
        Ok(Self(
            backend.store()?,
            backend.runs()?,
            index,
            backend.catalog()?,
            backend.break_log()?,
        ))
    }

    async fn handle(&self, req: FinalRequest) -> recon_shared::Result<CloseSummary> {
        let summary = handle(req, &self.0, &self.1, &self.2, &self.3, &self.4).await?;
        tracing::info!(execution = %summary.execution, "close aggregated");
        Ok(summary)
    }

    fn metrics(&self, summary: &CloseSummary, at: &Invocation<'_>) -> Vec<String> {
        let mut lines = mismatch_rate_emf(summary, at.environment, at.timestamp_ms);
        lines.push(close_emf(summary, at.environment, at.timestamp_ms));
        let own = Emf::new(at.environment, "final-aggregate").millis("Duration", at.duration_ms);
        lines.push(own.line(at.timestamp_ms));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recon_shared::close::DateSummary;
    use recon_shared::ids::BusinessDate;
    use recon_shared::ports::RunStatus;
    use serde_json::{Value, json};

    fn day(
        transactions: u64,
        by_status: &[(&str, u64)],
        by_mismatch: &[(&str, u64)],
    ) -> DateSummary {
        let map = |kv: &[(&str, u64)]| kv.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        DateSummary {
            transactions,
            by_status: map(by_status),
            by_mismatch: map(by_mismatch),
            ..DateSummary::default()
        }
    }

    fn close_summary(dates: Vec<(&str, DateSummary)>) -> recon_shared::Result<CloseSummary> {
        Ok(CloseSummary {
            anomalies: 0,
            awaiting_deliveries: Vec::new(),
            business_date: BusinessDate::parse("2026-11-20")?,
            dates: dates
                .into_iter()
                .map(|(d, s)| Ok((BusinessDate::parse(d)?, s)))
                .collect::<recon_shared::Result<_>>()?,
            duration_ms: 0,
            execution: "close-2026-11-20-1".into(),
            failed_partitions: 0,
            partitions: Vec::new(),
            report: None,
            status: RunStatus::Succeeded,
        })
    }

    #[test]
    fn one_mismatch_rate_line_per_closed_date() -> recon_shared::Result<()> {
        let summary = close_summary(vec![
            ("2026-11-19", day(20, &[], &[("NONE", 20)])),
            (
                "2026-11-20",
                day(
                    20000,
                    &[("MATCHED", 19335), ("PARTIAL_MATCH", 194)],
                    &[
                        ("AMOUNT", 177),
                        ("FEE", 312),
                        ("NONE", 19023),
                        ("MISSING_AT_BANK", 402),
                        ("CHARGEBACK", 69),
                        ("CURRENCY", 17),
                    ],
                ),
            ),
            ("2026-11-18", day(0, &[], &[])),
        ])?;
        let lines = mismatch_rate_emf(&summary, "prod", 1_795_226_400_000);
        assert_eq!(lines.len(), 2);
        let today: Value = serde_json::from_str(&lines[1])?;
        assert_eq!(today["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Recon");
        assert_eq!(
            today["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "MismatchRate"
        );
        assert_eq!(
            today["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Environment"]])
        );
        assert_eq!(today["Environment"], "prod");
        assert_eq!(today["BusinessDate"], "2026-11-20");
        assert_eq!(today["MismatchRate"], json!(0.04885));
        let metrics = recon_shared::metrics::parse_line(&lines[1])?;
        assert_eq!(metrics["MatchesMatched"], json!(19335));
        assert_eq!(metrics["MatchesPartialMatch"], json!(194));
        assert_eq!(metrics["MismatchRate"], json!(0.04885));
        assert_eq!(pascal("MISSING_AT_BANK"), "MissingAtBank");
        let late: Value = serde_json::from_str(&lines[0])?;
        assert_eq!(late["MismatchRate"], json!(0.0));
        assert_eq!(today["Execution"], "close-2026-11-20-1");
        assert!(mismatch_rate_emf(&close_summary(Vec::new())?, "prod", 0).is_empty());
        Ok(())
    }

    #[test]
    fn the_close_line_carries_the_alarmed_figures_under_the_environment_alone()
    -> recon_shared::Result<()> {
        let mut summary = close_summary(Vec::new())?;
        summary.anomalies = 3;
        let line: Value = serde_json::from_str(&close_emf(&summary, "prod", 0))?;
        let cw = &line["_aws"]["CloudWatchMetrics"][0];
        // The dimensions the AwaitingDeliveries and AnomaliesFlagged alarms name, exactly.
        assert_eq!(cw["Dimensions"], json!([["Environment"]]));
        assert_eq!(line["AwaitingDeliveries"], json!(0));
        assert_eq!(line["AnomaliesFlagged"], json!(3));
        assert_eq!(line["BusinessDate"], "2026-11-20");
        Ok(())
    }
}
