//! `final-aggregate` (Step Functions task): final index, merchant KPIs and the run summary.

pub use recon_shared::close::FinalRequest;
use recon_shared::metrics::{Emf, pascal};
use recon_shared::ports::{ObjectStore, RunsTable, TransactionIndex};

pub async fn handle<S: ObjectStore, R: RunsTable, I: TransactionIndex>(
    req: FinalRequest,
    store: &S,
    runs: &R,
    index: &I,
) -> recon_shared::Result<serde_json::Value> {
    recon_shared::close::final_aggregate(store, runs, index, &req).await
}

/// Namespace and name of the metric the `MismatchRate` alarm of `template.yaml` watches.
pub const METRIC_NAMESPACE: &str = recon_shared::metrics::NAMESPACE;
pub const MISMATCH_RATE_METRIC: &str = "MismatchRate";
/// Banks whose statement the close awaits (the `AwaitingDeliveries` alarm of `template.yaml`).
pub const AWAITING_METRIC: &str = "AwaitingDeliveries";

/// How many bank statements a close's summary awaits.
pub fn awaiting_deliveries(summary: &serde_json::Value) -> u64 {
    summary["awaiting_deliveries"]
        .as_array()
        .map_or(0, |a| a.len() as u64)
}

/// CloudWatch embedded-metric-format lines for a close's summary: for each closed date, the
/// share of its transactions with a mismatch (any `mismatch_type` but `NONE`), with the
/// `Environment` dimension, and its matches per reconciled status (`Matches{Status}`). The
/// Lambda prints them to stdout; CloudWatch Logs turns each line into datapoints. Dates
/// without transactions give no line.
pub fn mismatch_rate_emf(
    summary: &serde_json::Value,
    environment: &str,
    timestamp_ms: i64,
) -> Vec<String> {
    let Some(dates) = summary["dates"].as_object() else {
        return Vec::new();
    };
    dates
        .iter()
        .filter_map(|(date, day)| {
            let transactions = day["transactions"].as_u64().filter(|&n| n > 0)?;
            let clean = day["by_mismatch"]["NONE"].as_u64().unwrap_or(0);
            let mut emf = Emf::new(environment, "final-aggregate")
                .environment_only()
                .ratio(
                    MISMATCH_RATE_METRIC,
                    transactions.saturating_sub(clean),
                    transactions,
                )
                .property("BusinessDate", date.as_str())
                .property("Execution", summary["execution"].clone())
                .property("Transactions", transactions);
            if let Some(by_status) = day["by_status"].as_object() {
                for (status, n) in by_status {
                    emf = emf.count(
                        &format!("Matches{}", pascal(status)),
                        n.as_u64().unwrap_or(0),
                    );
                }
            }
            Some(emf.line(timestamp_ms))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn one_mismatch_rate_line_per_closed_date() -> recon_shared::Result<()> {
        let summary = json!({
            "execution": "close-2026-11-20-1",
            "dates": {
                "2026-11-19": {"transactions": 20, "by_mismatch": {"NONE": 20}},
                "2026-11-20": {"transactions": 20000,
                               "by_status": {"MATCHED": 19335, "PARTIAL_MATCH": 194},
                               "by_mismatch": {"AMOUNT": 177, "FEE": 312, "NONE": 19023,
                                               "MISSING_AT_BANK": 402, "CHARGEBACK": 69,
                                               "CURRENCY": 17}},
                "2026-11-18": {"transactions": 0, "by_mismatch": {}}
            }
        });
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
        assert!(mismatch_rate_emf(&json!({}), "prod", 0).is_empty());
        Ok(())
    }
}
