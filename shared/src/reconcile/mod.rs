//! Per-bank reconciliation: the matching engine and the batch index it produces.

pub mod engine;
pub mod frame;
pub mod group;
pub mod index;
pub mod open;

pub use engine::{
    Counterparts, Outcome, PartitionInput, PartitionResult, expected_at_bank, reconcile,
};
pub use frame::{LineRef, TxnRef};
pub use group::GroupSearch;
pub use index::{BreakRegistry, BreakStats, IndexRow, PartitionIndex, Row, RowKind, break_id};

#[cfg(test)]
mod tests;
