//! `events/final-aggregate/final.json` is what the `FinalAggregate` state of
//! `statemachines/daily-close.asl.json` sends after the Map states: a late day's partition, two
//! of today's, and one recorded failure. It decodes into `recon_shared::close::FinalRequest`.

use std::collections::BTreeSet;

use final_aggregate::FinalRequest;
use recon_shared::close::PartitionOutcome;
use recon_shared::{Error, Result};
use serde_json::Value;

const FINAL: &str = include_str!("../../../events/final-aggregate/final.json");
const ASL: &str = include_str!("../../../statemachines/daily-close.asl.json");

#[test]
fn the_final_event_is_what_the_state_machine_sends() -> Result<()> {
    let raw: Value = serde_json::from_str(FINAL)?;
    let asl: Value = serde_json::from_str(ASL)?;
    let params = asl
        .pointer("/States/FinalAggregate/Parameters")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Invariant("no FinalAggregate Parameters".into()))?;
    let sent: BTreeSet<String> = params
        .keys()
        .map(|k| k.trim_end_matches(".$").to_string())
        .collect();
    let fields: BTreeSet<String> = raw
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(fields, sent);

    let req: FinalRequest = serde_json::from_value(raw.clone())?;
    let again: FinalRequest = serde_json::from_str(&serde_json::to_string(&req)?)?;
    assert_eq!(req, again);
    assert_eq!(req.business_date.to_string(), "2026-11-20");
    assert_eq!(req.execution.as_deref(), Some("close-2026-11-20-1"));
    let dates: Vec<String> = req.dates.iter().map(ToString::to_string).collect();
    assert_eq!(dates, ["2026-11-19", "2026-11-20"]);
    assert_eq!(req.results.len(), 4);
    assert!(req.emr_results.is_empty());
    // What final-aggregate counts as a failed partition (the Map state's recorded failure).
    let failed: Vec<&PartitionOutcome> = req.results.iter().filter(|r| r.is_failed()).collect();
    assert_eq!(failed.len(), 1);
    let failure = failed[0]
        .failure()
        .ok_or_else(|| Error::Invariant(format!("not a recorded failure: {:?}", failed[0])))?;
    assert_eq!(failure.bank_id.as_str(), "bank_03");
    assert_eq!(failure.error, "Retryable");
    // The partition summaries are read as such, and go back out as the JSON that came.
    assert_eq!(
        req.results
            .iter()
            .filter_map(|r| r.summary())
            .map(|s| s.transactions)
            .sum::<u64>(),
        20 + 8108 + 4155
    );
    assert_eq!(serde_json::to_value(&req.results)?, raw["results"]);
    // The banks the plan awaits, as the plan names them.
    assert_eq!(req.awaiting.len(), 1);
    assert_eq!(req.awaiting[0].bank_id.as_str(), "bank_07");
    assert_eq!(
        req.awaiting[0].reason,
        recon_shared::close::AwaitReason::NotDelivered
    );
    Ok(())
}
