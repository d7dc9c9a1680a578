//! `events/plan-partitions/plan.json` is what the `PlanPartitions` state of
//! `statemachines/daily-close.asl.json` sends: the same fields, decoded into the handler's input.

use std::collections::BTreeSet;

use plan_partitions::PlanRequest;
use recon_shared::{Error, Result};
use serde_json::Value;

const PLAN: &str = include_str!("../../../events/plan-partitions/plan.json");
const ASL: &str = include_str!("../../../statemachines/daily-close.asl.json");

/// Field names a state's `Parameters` produce (`name.$` is `name`).
fn parameter_names(asl: &Value, pointer: &str) -> Result<BTreeSet<String>> {
    let params = asl
        .pointer(pointer)
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Invariant(format!("no {pointer} in the state machine")))?;
    Ok(params
        .keys()
        .map(|k| k.trim_end_matches(".$").to_string())
        .collect())
}

#[test]
fn the_plan_event_is_what_the_state_machine_sends() -> Result<()> {
    let raw: Value = serde_json::from_str(PLAN)?;
    let asl: Value = serde_json::from_str(ASL)?;
    let sent = parameter_names(&asl, "/States/PlanPartitions/Parameters")?;
    let fields: BTreeSet<String> = raw
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(fields, sent);

    let req: PlanRequest = serde_json::from_value(raw)?;
    let again: PlanRequest = serde_json::from_str(&serde_json::to_string(&req)?)?;
    assert_eq!(req, again);
    assert_eq!(req.business_date.to_string(), "2026-11-20");
    assert_eq!(req.execution.as_deref(), Some("close-2026-11-20-1"));
    assert!(!req.force);
    assert_eq!(req.lambda_max_input_bytes, None);
    Ok(())
}
