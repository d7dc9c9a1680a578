//! `events/reconcile-partition/partition.json` is one item the inner Map state of
//! `ReconcilePartitions` (a bank's days, in order) of `statemachines/daily-close.asl.json`
//! sends: the same fields, decoded into the handler's input.

use std::collections::BTreeSet;

use recon_shared::{Error, Result};
use reconcile_partition::PartitionRequest;
use serde_json::Value;

const PARTITION: &str = include_str!("../../../events/reconcile-partition/partition.json");
const ASL: &str = include_str!("../../../statemachines/daily-close.asl.json");

#[test]
fn the_partition_event_is_what_the_map_state_sends() -> Result<()> {
    let raw: Value = serde_json::from_str(PARTITION)?;
    let asl: Value = serde_json::from_str(ASL)?;
    let selector = asl
        .pointer("/States/ReconcilePartitions/ItemProcessor/States/ReconcileBankDays/ItemSelector")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Invariant("no ItemSelector in the Map state".into()))?;
    let sent: BTreeSet<String> = selector
        .keys()
        .map(|k| k.trim_end_matches(".$").to_string())
        .collect();
    let fields: BTreeSet<String> = raw
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(fields, sent);

    let req: PartitionRequest = serde_json::from_value(raw)?;
    let again: PartitionRequest = serde_json::from_str(&serde_json::to_string(&req)?)?;
    assert_eq!(req, again);
    assert_eq!(req.business_date.to_string(), "2026-11-20");
    assert_eq!(req.bank_id.as_str(), "bank_01");
    assert_eq!(req.as_of, req.business_date);
    assert_eq!(req.execution.as_deref(), Some("close-2026-11-20-1"));
    assert_eq!(
        req.previous.map(|p| p.business_date.to_string()),
        Some("2026-11-19".to_string())
    );
    Ok(())
}
