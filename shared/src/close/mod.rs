//! The daily close as Step Functions tasks: plan the partitions, reconcile each, aggregate.

pub mod aggregate;
pub mod inputs;
pub mod partition;
pub mod plan;
pub mod summary;

pub use aggregate::{
    FinalRequest, FinalRow, KpiRow, StreamState, build_final, derive_status, final_aggregate,
};
pub use partition::{PartitionRequest, PartitionSummary, reconcile_partition};
pub use plan::{
    AwaitReason, AwaitingDelivery, DEFAULT_LOOKBACK_DAYS, Plan, PlanRequest, PlannedPartition,
    Route, plan,
};
pub use summary::{
    CloseSummary, DateSummary, EmrStep, EmrStepStatus, PartitionFailure, PartitionOutcome,
    StepOutcome,
};
