//! `reconcile-partition` (Step Functions Map task): one (business date, bank) partition.

pub use recon_shared::close::{PartitionRequest, PartitionSummary};
use recon_shared::config::Settings;
use recon_shared::entry::{Function, Invocation};
use recon_shared::ports::{ObjectStore, RunsTable};
use recon_shared::select::{AnyRuns, AnyStore, Backend};

pub async fn handle<S: ObjectStore, R: RunsTable>(
    req: PartitionRequest,
    store: &S,
    runs: &R,
) -> recon_shared::Result<PartitionSummary> {
    recon_shared::close::reconcile_partition(store, runs, &req).await
}

/// EMF line of one partition: transactions, statement lines, matches per reconciled status
/// (`Matches{Status}`), breaks by mismatch type (`Mismatches{Type}`), duration.
pub fn metrics(summary: &PartitionSummary, environment: &str, timestamp_ms: i64) -> String {
    let mut emf = recon_shared::metrics::Emf::new(environment, "reconcile-partition")
        .count("Transactions", summary.transactions)
        .count("StatementLines", summary.statement_lines);
    for (status, n) in &summary.by_status {
        emf = emf.count(
            &format!("Matches{}", recon_shared::metrics::pascal(status)),
            *n,
        );
    }
    for (kind, n) in summary
        .by_mismatch
        .iter()
        .filter(|(k, _)| k.as_str() != "NONE")
    {
        emf = emf.count(
            &format!("Mismatches{}", recon_shared::metrics::pascal(kind)),
            *n,
        );
    }
    emf.millis("Duration", summary.duration_ms)
        .property("BusinessDate", summary.business_date.to_string())
        .property("BankId", summary.bank_id.as_str())
        .property("RunId", summary.run_id.as_str())
        .line(timestamp_ms)
}

/// The Lambda (served by `recon_shared::entry`): one partition over the bucket and the Runs
/// table, then its metrics line.
pub struct Lambda(AnyStore, AnyRuns);

impl Function for Lambda {
    type Event = PartitionRequest;
    type Output = PartitionSummary;

    async fn init(_: &Settings, backend: &Backend) -> recon_shared::Result<Self> {
        Ok(Self(backend.store()?, backend.runs()?))
    }

    async fn handle(&self, req: PartitionRequest) -> recon_shared::Result<PartitionSummary> {
        // The library logs "partition reconciled" with its counts.
        handle(req, &self.0, &self.1).await
    }

    fn metrics(&self, summary: &PartitionSummary, at: &Invocation<'_>) -> Vec<String> {
        vec![metrics(summary, at.environment, at.timestamp_ms)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_partition_metrics_are_an_emf_record() -> recon_shared::Result<()> {
        let summary: PartitionSummary = serde_json::from_value(json!({
            "business_date": "2026-11-20", "bank_id": "bank_01", "status": "SUCCEEDED",
            "run_id": "run-0123456789abcdef", "transactions": 1000, "statement_lines": 990,
            "by_status": {"MATCHED": 950, "PARTIAL_MATCH": 20, "UNMATCHED": 30},
            "by_rule": {"EXACT_ID": 900},
            "by_mismatch": {"NONE": 940, "AMOUNT": 20, "MISSING_AT_BANK": 30, "FEE": 10},
            "breaks": {"new": 5, "persisting": 2, "resolved": 1},
            "duration_ms": 812
        }))?;
        let line = metrics(&summary, "prod", 1_795_226_400_000);
        let m = recon_shared::metrics::parse_line(&line)?;
        assert_eq!(m["Transactions"], json!(1000));
        assert_eq!(m["StatementLines"], json!(990));
        assert_eq!(m["MatchesMatched"], json!(950));
        assert_eq!(m["MatchesPartialMatch"], json!(20));
        assert_eq!(m["MatchesUnmatched"], json!(30));
        assert_eq!(m["MismatchesMissingAtBank"], json!(30));
        assert!(!m.contains_key("MismatchesNone"));
        assert_eq!(m["Duration"], json!(812));
        let v: serde_json::Value = serde_json::from_str(&line)?;
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Environment", "Function"]])
        );
        assert_eq!(v["Function"], "reconcile-partition");
        assert_eq!(v["BankId"], "bank_01");
        Ok(())
    }
}
