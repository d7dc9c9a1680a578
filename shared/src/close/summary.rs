//! The typed contract between the close's tasks: what the Map states hand to `final-aggregate`
//! (a [`PartitionOutcome`] per partition) and the run summary it writes to
//! `runs/{date}/{execution}.json` and returns ([`CloseSummary`]). The JSON at the Lambda
//! boundary is their serde form.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::partition::PartitionSummary;
use super::plan::AwaitingDelivery;
use crate::error::Result;
use crate::ids::{BankId, BusinessDate};
use crate::ports::RunStatus;

/// One element of the Map states' results: what became of a partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PartitionOutcome {
    /// `ReconcilePartition`'s output: the Lambda's [`PartitionSummary`].
    Reconciled(PartitionSummary),
    /// `RecordPartitionFailure` / `RecordStepFailure`: the caught error of a partition.
    Failed(PartitionFailure),
    /// `EmrReconcileStep`'s output: the Map item with the step's result at `step`.
    Step(StepOutcome),
}

/// The Pass states' record of a partition whose task failed (status `FAILED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionFailure {
    /// Always `FAILED`.
    pub status: RunStatus,
    /// The business date of the failed partition.
    pub business_date: BusinessDate,
    /// The bank of the failed partition.
    pub bank_id: BankId,
    /// The error name (`Retryable`, `InvalidInput`, `States.Timeout`, …).
    pub error: String,
    /// The error's message ([`cause_message`] of what Step Functions caught).
    #[serde(deserialize_with = "message_of_cause")]
    pub cause: String,
}

/// The message of a cause as Step Functions reports it: a failed Lambda's cause is the
/// function's error object in JSON text (`{"errorType", "errorMessage", …}`), whose
/// `errorMessage` is the message; any other cause is the message itself.
pub fn cause_message(cause: &str) -> String {
    #[derive(Deserialize)]
    struct LambdaError {
        #[serde(rename = "errorMessage")]
        error_message: String,
    }
    match serde_json::from_str::<LambdaError>(cause) {
        Ok(e) if cause.trim_start().starts_with('{') => e.error_message,
        _ => cause.to_string(),
    }
}

fn message_of_cause<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(cause_message(&String::deserialize(d)?))
}

/// A partition reconciled by the EMR branch: the Map item (`ItemSelector`) with what
/// `ReadSparkSummary` read back at `step`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// The business date of the partition.
    pub business_date: BusinessDate,
    /// The bank of the partition.
    pub bank_id: BankId,
    /// The close the partition belongs to (break ages are counted to this date).
    pub as_of: BusinessDate,
    /// Name of the state machine execution.
    pub execution: String,
    /// The Spark job's summary of the partition (and any other key, kept).
    pub step: EmrStep,
}

/// What the EMR branch leaves at `step`: the partition's summary the Spark job wrote
/// (`ReadSparkSummary`), a step `Status` if one is there, and any other key, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct EmrStep {
    /// `Status`.
    pub status: Option<EmrStepStatus>,
    /// The partition's summary, when the step reports it.
    pub summary: Option<PartitionSummary>,
    /// The other keys.
    pub other: Map<String, Value>,
}

/// The step's `Status`: its `State` and the other keys as they came.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct EmrStepStatus {
    /// `PENDING`, `RUNNING`, `COMPLETED`, `CANCELLED`, `FAILED`, `INTERRUPTED`.
    pub state: String,
    /// The other keys of `Status`, kept as they came.
    pub other: Map<String, Value>,
}

// The known keys are taken out of the object and the rest kept (no `serde(flatten)`, whose
// buffering goes through floats).
impl TryFrom<Map<String, Value>> for EmrStep {
    type Error = serde_json::Error;

    fn try_from(mut other: Map<String, Value>) -> std::result::Result<Self, Self::Error> {
        let status = other.remove("Status").map(serde_json::from_value);
        let summary = other.remove("summary").map(serde_json::from_value);
        Ok(EmrStep {
            status: status.transpose()?,
            summary: summary.transpose()?,
            other,
        })
    }
}

impl TryFrom<Map<String, Value>> for EmrStepStatus {
    type Error = serde_json::Error;

    fn try_from(mut other: Map<String, Value>) -> std::result::Result<Self, Self::Error> {
        let state = other
            .remove("State")
            .ok_or_else(|| serde::de::Error::missing_field("State"))?;
        Ok(EmrStepStatus {
            state: serde_json::from_value(state)?,
            other,
        })
    }
}

impl Serialize for EmrStep {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(None)?;
        if let Some(status) = &self.status {
            m.serialize_entry("Status", status)?;
        }
        if let Some(summary) = &self.summary {
            m.serialize_entry("summary", summary)?;
        }
        for (k, v) in &self.other {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Serialize for EmrStepStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("State", &self.state)?;
        for (k, v) in &self.other {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl PartitionOutcome {
    /// A failure the state machine recorded, or a summary whose status is `FAILED`.
    pub fn is_failed(&self) -> bool {
        match self {
            PartitionOutcome::Reconciled(s) => s.status == RunStatus::Failed,
            PartitionOutcome::Failed(f) => f.status == RunStatus::Failed,
            PartitionOutcome::Step(_) => false,
        }
    }

    /// The failure the state machine recorded.
    pub fn failure(&self) -> Option<&PartitionFailure> {
        match self {
            PartitionOutcome::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// The partition's summary: the Lambda's, or the EMR step's when it reports one.
    pub fn summary(&self) -> Option<&PartitionSummary> {
        match self {
            PartitionOutcome::Reconciled(s) => Some(s),
            PartitionOutcome::Step(s) => s.step.summary.as_ref(),
            PartitionOutcome::Failed(_) => None,
        }
    }

    /// The partition: (business date, bank).
    pub fn partition(&self) -> (BusinessDate, &BankId) {
        match self {
            PartitionOutcome::Reconciled(s) => (s.business_date, &s.bank_id),
            PartitionOutcome::Failed(f) => (f.business_date, &f.bank_id),
            PartitionOutcome::Step(s) => (s.business_date, &s.bank_id),
        }
    }
}

/// The shape is told by its keys: `step` (the EMR branch), `status` `FAILED` with an
/// `error` (a recorded failure), else a partition summary; each decodes with its own errors.
impl<'de> Deserialize<'de> for PartitionOutcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = Value::deserialize(deserializer)?;
        let shape = |what: &str, e: serde_json::Error| {
            D::Error::custom(format!("a partition result read as {what}: {e}"))
        };
        if v.get("step").is_some() {
            serde_json::from_value(v)
                .map(PartitionOutcome::Step)
                .map_err(|e| shape("an EMR step outcome", e))
        } else if v.get("status").and_then(Value::as_str) == Some("FAILED")
            && v.get("error").is_some()
        {
            serde_json::from_value(v)
                .map(PartitionOutcome::Failed)
                .map_err(|e| shape("a recorded failure", e))
        } else {
            serde_json::from_value(v)
                .map(PartitionOutcome::Reconciled)
                .map_err(|e| shape("a partition summary", e))
        }
    }
}

/// The run summary of a close (`runs/{date}/{execution}.json`, and the `FinalAggregate`
/// state's output the `AnyPartitionFailed` choice reads). Fields in alphabetical order, the
/// order of the file's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseSummary {
    /// Anomaly flags the close raised (`index/anomalies/business_date=D/`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub anomalies: u64,
    /// Banks the plan found without a usable statement (not closed, not failed).
    #[serde(default)]
    pub awaiting_deliveries: Vec<AwaitingDelivery>,
    /// The business date closed.
    pub business_date: BusinessDate,
    /// Each date the close aggregated.
    pub dates: BTreeMap<BusinessDate, DateSummary>,
    /// Wall time of the final aggregation in milliseconds.
    pub duration_ms: u64,
    /// Name of the state machine execution (the file's name).
    pub execution: String,
    /// Partitions whose reconciliation failed; any makes the close `FAILED`.
    pub failed_partitions: u64,
    /// The Map states' results as they came: the Lambda branch's, then the EMR branch's.
    pub partitions: Vec<PartitionOutcome>,
    /// The key of the close's report page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// `SUCCEEDED` when no partition failed, else `FAILED`.
    pub status: RunStatus,
}

/// What the close aggregated for one date. Fields in alphabetical order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateSummary {
    /// Transactions by mismatch type (`NONE` included).
    pub by_mismatch: BTreeMap<String, u64>,
    /// Transactions by reconciled status.
    pub by_status: BTreeMap<String, u64>,
    /// Merchant KPI rows written.
    pub merchants: u64,
    /// Milliseconds per phase of the aggregation.
    pub phase_ms: BTreeMap<String, u64>,
    /// Settlements of the date's rows the TransactionIndex holds after the close (only those
    /// that changed were written: the log says how many).
    pub settlements_written_back: u64,
    /// Transactions of the date a later close of this execution settled or called missing
    /// (their final index rows were updated).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settled_later: u64,
    /// Statement lines in the batch index.
    pub statement_lines: u64,
    /// Statement lines whose status is not MATCHED.
    pub statement_lines_not_matched: u64,
    /// Transactions with a state in the streaming index.
    pub stream_states: u64,
    /// Transactions in the final index.
    pub transactions: u64,
}

/// Whether a count is zero (counts that are usually zero are left out of the JSON).
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CloseSummary {
    /// The bytes of `runs/{date}/{execution}.json`: pretty JSON with every object's keys in
    /// sorted order (the summary goes through a `Value`, whose maps sort), and a newline.
    pub fn to_file_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(&serde_json::to_value(self)?)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The recorded failures among the partitions.
    pub fn failures(&self) -> impl Iterator<Item = &PartitionFailure> {
        self.partitions.iter().filter_map(PartitionOutcome::failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn partition_summary() -> Value {
        json!({"bank_id": "bank_01", "breaks": {"new": 2, "persisting": 1, "resolved": 0},
               "business_date": "2026-11-20", "by_mismatch": {"AMOUNT": 2},
               "by_rule": {"EXACT_ID": 7}, "by_status": {"MATCHED": 6, "PARTIAL_MATCH": 1},
               "duration_ms": 41, "run_id": "run-a6ca8c61d98be933", "statement_lines": 9,
               "status": "SUCCEEDED", "transactions": 7})
    }

    /// The three shapes the Map states send, and a real EMR step's result (more keys, no
    /// summary), decode to their variant and serialize back to the JSON that came.
    #[test]
    fn partition_outcomes_read_and_write_the_json_of_the_state_machine() -> Result<()> {
        let failure = json!({"status": "FAILED", "business_date": "2026-11-20",
                             "bank_id": "bank_03", "error": "Retryable", "cause": "reset"});
        let local_step = json!({"business_date": "2026-11-20", "bank_id": "bank_04",
                                "as_of": "2026-11-20", "execution": "close-2026-11-20-1",
                                "step": {"Status": {"State": "COMPLETED"},
                                         "summary": partition_summary()}});
        let emr_step = json!({"business_date": "2026-11-20", "bank_id": "bank_05",
                              "as_of": "2026-11-20", "execution": "close-2026-11-20-1",
                              "step": {"Id": "s-1", "Name": "reconcile-2026-11-20-bank_05",
                                       "Status": {"State": "COMPLETED",
                                                  "Timeline": {"EndDateTime": 1_764_979_200_000u64}}}});
        for (raw, failed) in [
            (partition_summary(), false),
            (failure.clone(), true),
            (local_step.clone(), false),
            (emr_step.clone(), false),
        ] {
            let o: PartitionOutcome = serde_json::from_value(raw.clone())?;
            assert_eq!(serde_json::to_value(&o)?, raw);
            assert_eq!(o.is_failed(), failed, "{raw}");
        }
        let o: PartitionOutcome = serde_json::from_value(failure)?;
        assert_eq!(o.failure().map(|f| f.error.as_str()), Some("Retryable"));
        assert_eq!(o.partition().1.as_str(), "bank_03");
        let o: PartitionOutcome = serde_json::from_value(local_step)?;
        assert_eq!(o.summary().map(|s| s.transactions), Some(7));
        assert_eq!(o.partition().1.as_str(), "bank_04");
        let o: PartitionOutcome = serde_json::from_value(emr_step)?;
        assert!(o.summary().is_none());
        let PartitionOutcome::Step(s) = &o else {
            return Err(crate::Error::Invariant(format!("{o:?}")));
        };
        assert_eq!(
            s.step.status.as_ref().map(|s| s.state.as_str()),
            Some("COMPLETED")
        );
        // A result of none of the shapes names the shape it was read as.
        let bad = serde_json::from_value::<PartitionOutcome>(json!({"status": "SUCCEEDED"}));
        assert!(
            bad.as_ref()
                .is_err_and(|e| e.to_string().contains("a partition summary")),
            "{bad:?}"
        );
        Ok(())
    }

    /// The typed summary writes the bytes the `json!` summary wrote.
    #[test]
    fn the_summary_file_is_the_bytes_of_the_json_summary() -> Result<()> {
        let awaiting = json!([{"business_date": "2026-11-20", "bank_id": "bank_07",
                               "sources": ["bank_07"], "reason": "NOT_DELIVERED"}]);
        let partitions = json!([
            partition_summary(),
            {"status": "FAILED", "business_date": "2026-11-20", "bank_id": "bank_03",
             "error": "Retryable", "cause": "reset"},
            {"business_date": "2026-11-20", "bank_id": "bank_04", "as_of": "2026-11-20",
             "execution": "close-2026-11-20-1",
             "step": {"Status": {"State": "COMPLETED"}, "summary": partition_summary()}}
        ]);
        let mut per_date = Map::new();
        for (date, n) in [("2026-11-19", 20u64), ("2026-11-20", 7)] {
            let by_status = BTreeMap::from([("MATCHED".to_string(), n)]);
            let by_mismatch = BTreeMap::from([("NONE".to_string(), n)]);
            let phase_ms = BTreeMap::from([("read", 3u64), ("join", 1), ("write", 2)]);
            per_date.insert(
                date.to_string(),
                json!({"transactions": n, "statement_lines": 9usize,
                       "statement_lines_not_matched": 2usize, "by_status": by_status,
                       "by_mismatch": by_mismatch, "merchants": 4usize, "stream_states": 0usize,
                       "settlements_written_back": 5u64, "phase_ms": phase_ms}),
            );
        }
        let old = json!({
            "business_date": "2026-11-20",
            "execution": "close-2026-11-20-1",
            "status": RunStatus::Failed,
            "dates": per_date,
            "partitions": partitions,
            "failed_partitions": 1usize,
            "awaiting_deliveries": awaiting,
            "duration_ms": 12u64,
        });
        let mut old_bytes = serde_json::to_vec_pretty(&old)?;
        old_bytes.push(b'\n');
        let typed: CloseSummary = serde_json::from_value(old.clone())?;
        assert_eq!(typed.failed_partitions, 1);
        assert_eq!(typed.failures().count(), 1);
        assert_eq!(typed.partitions.len(), 3);
        assert_eq!(typed.to_file_bytes()?, old_bytes);
        // The Lambda's output (declaration order) is the same JSON.
        assert_eq!(serde_json::to_value(&typed)?, old);
        Ok(())
    }
}
