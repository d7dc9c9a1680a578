//! The daily close as Step Functions tasks: plan the partitions, reconcile each, aggregate.

pub mod aggregate;
pub mod breaks;
pub mod inputs;
pub mod insight;
pub mod live;
pub mod partition;
pub mod plan;
pub mod routes;
pub mod rows;
pub mod rules;
pub mod spark;
pub mod summary;

pub use aggregate::{FinalRequest, build_final, derive_status, final_aggregate};
pub use live::{
    LiveStates, StreamState, changed_settlements, settlement_of, stream_states,
    write_back_settlement,
};
pub use partition::{PartitionRequest, PartitionSummary, PreviousClose, reconcile_partition};
pub use plan::{
    AwaitReason, AwaitingDelivery, BankChain, DEFAULT_LOOKBACK_DAYS, Plan, PlanRequest,
    PlannedPartition, Route, plan, previous_close,
};
pub use rows::{FinalRow, KpiRow};
pub use summary::{
    CloseSummary, DateSummary, EmrStep, EmrStepStatus, PartitionFailure, PartitionOutcome,
    StepOutcome, cause_message,
};
