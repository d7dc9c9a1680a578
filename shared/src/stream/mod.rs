//! The streaming index (`stream-indexer`): Kafka records → the TransactionIndex.
//!
//! - [`decode`]: validation of each record, PII tokenization, the masked archive form;
//! - [`enrich`]: merchant dimension, active policies, the compliance label;
//! - [`indexer`]: the versioned join of transactions and fraud signals, VELOCITY;
//! - [`archive`]: raw records kept for replay under `stream/archive/`;
//! - [`model`]: the index item and the merchant-day totals kept beside it.
//!
//! `docs/streaming.md` describes the rules.

pub mod archive;
pub mod decode;
pub mod enrich;
pub mod indexer;
pub mod model;

use rustc_hash::FxHashMap;

pub use decode::{Fact, KafkaRecordIn, Rejection, decode};
pub use enrich::{ActivePolicies, ComplianceRules, StreamContext};
pub use indexer::{BatchReport, index_facts, process_batch};
pub use model::{
    Derived, FRAUD_SIGNALS_TOPIC, IndexItem, MerchantDayTotals, MerchantInfo, PolicyFlag,
    RecordVersion, RiskLabel, Settlement, SignalState, StreamVersion, TRANSACTIONS_TOPIC, TxnState,
};

use crate::close::{FinalRow, StreamState};
use crate::error::Result;
use crate::ids::TransactionId;
use crate::ports::{SettlementUpdate, TransactionIndex};

/// The live state of transactions, for the final aggregation: status, fraud score, label and
/// policy flags of every id that has a transaction in the index (pending signals are left out).
pub async fn stream_states<I: TransactionIndex>(
    index: &I,
    ids: &[TransactionId],
) -> Result<FxHashMap<TransactionId, StreamState>> {
    let mut out = FxHashMap::with_capacity_and_hasher(ids.len(), Default::default());
    for chunk in ids.chunks(indexer::CHUNK) {
        let states = index
            .map_many(chunk, |item| {
                let txn = item.txn.as_ref()?;
                Some((
                    item.transaction_id.clone(),
                    StreamState {
                        status: txn.status,
                        fraud_score: item.signal.as_ref().map(|s| s.fraud_score),
                        risk_label: item.derived.as_ref().map(|d| d.risk_label.to_string()),
                        policy_flags: item
                            .derived
                            .as_ref()
                            .map(|d| d.policy_flags.iter().map(|f| f.to_string()).collect())
                            .unwrap_or_default(),
                    },
                ))
            })
            .await?;
        out.extend(states.into_iter().flatten());
    }
    Ok(out)
}

/// Writes the settlement fields of the final index back onto the TransactionIndex, without
/// touching the stream version. Returns the number of items written.
pub async fn write_back_settlement<I: TransactionIndex>(
    index: &I,
    rows: &[FinalRow],
) -> Result<u64> {
    let mut written = 0;
    for chunk in rows.chunks(indexer::CHUNK) {
        let updates: Vec<SettlementUpdate> = chunk
            .iter()
            .map(|r| SettlementUpdate {
                transaction_id: r.transaction_id.clone(),
                settlement: Settlement {
                    settlement_status: r.settlement_status.clone(),
                    reconciled_status: r.reconciled_status,
                    mismatch_type: r.mismatch_type,
                    discrepancy: r.discrepancy,
                    statement_currency: r.statement_currency,
                    reconciliation_timestamp: r.reconciliation_timestamp,
                },
            })
            .collect();
        written += index.write_settlements(&updates).await?;
    }
    Ok(written)
}
