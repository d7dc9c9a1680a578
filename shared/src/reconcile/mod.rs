//! Per-bank reconciliation: the matching engine and the batch index it produces.

pub mod engine;
pub mod index;

pub use engine::{Outcome, PartitionInput, PartitionResult, reconcile, subset_sum};
pub use index::{BreakRegistry, BreakStats, IndexRow, RowKind, break_id, index_rows};

#[cfg(test)]
mod tests;
