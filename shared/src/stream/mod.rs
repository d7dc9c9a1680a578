//! The streaming index (`stream-indexer`): Kafka records → the TransactionIndex.
//!
//! - [`decode`]: validation of each record, PII tokenization, the masked archive form;
//! - [`enrich`]: merchant dimension, active policies, the compliance label;
//! - [`indexer`]: the versioned join of transactions and fraud signals, VELOCITY;
//! - [`archive`]: raw records kept for replay under `stream/archive/`;
//!
//! The index item and the merchant-day totals kept beside it are [`crate::index_item`], below
//! the ports (re-exported here as [`model`]).
//!
//! `docs/streaming.md` describes the rules.

pub mod archive;
pub mod decode;
pub mod enrich;
pub mod indexer;
pub use crate::index_item as model;

pub use decode::{Fact, KafkaRecordIn, Rejection, decode};
pub use enrich::{ActivePolicies, ComplianceRules, FreshContext, StreamContext};
pub use indexer::{BatchReport, index_facts, process_batch};
pub use model::{
    Derived, FRAUD_SIGNALS_TOPIC, IndexItem, MerchantDayTotals, MerchantInfo, PolicyFlag,
    RecordVersion, RiskLabel, Settlement, SignalState, StreamVersion, TRANSACTIONS_TOPIC, TxnState,
};
