//! What the close reads from and writes back to the TransactionIndex: the live state of each
//! transaction (joined into the final index) and its settlement (written back onto the item).

use futures_util::stream::{self, StreamExt, TryStreamExt};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::rows::FinalRow;
use crate::error::Result;
use crate::ids::{BusinessDate, TransactionId};
use crate::index_item::{PolicyFlag, RiskLabel, Settlement};
use crate::ports::{INDEX_CHUNK, SettlementUpdate, TransactionIndex};
use crate::records::TxnStatus;

/// Index requests (chunks of [`INDEX_CHUNK`] ids) a close keeps in flight at once, reading
/// live states and writing settlements back: a 1M-payment date is ~1 000 chunks, which one at
/// a time would leave DynamoDB's latency (not its throughput) as the limit. Each chunk's
/// adapter call retries throttled items with backoff.
pub const INDEX_PARALLELISM: usize = 8;

/// Live state of a transaction from the streaming index, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// The newest status the stream reported.
    pub status: TxnStatus,
    /// The fraud score in [0, 1]; `None` until a signal arrived.
    pub fraud_score: Option<Decimal>,
    /// The label enrichment gave the transaction.
    pub risk_label: Option<RiskLabel>,
    /// Sorted, without repeats.
    pub policy_flags: Vec<PolicyFlag>,
}

/// What the close reads of its transactions' items, in one pass over the index.
#[derive(Debug, Clone, Default)]
pub struct LiveStates {
    /// The live state of every id whose item has a transaction side (pending signals are
    /// left out).
    pub streams: FxHashMap<TransactionId, StreamState>,
    /// The settlement a close last wrote onto each item that has one: the next close writes
    /// back only those that change, so a retried aggregation resumes where it stopped.
    pub settlements: FxHashMap<TransactionId, Settlement>,
}

/// The live state and the written-back settlement of transactions, for the final aggregation
/// ([`LiveStates`]).
pub async fn stream_states<I: TransactionIndex>(
    index: &I,
    ids: &[TransactionId],
) -> Result<LiveStates> {
    let state = |item: &crate::index_item::IndexItem| {
        let stream = item.txn.as_ref().map(|txn| StreamState {
            status: txn.status,
            fraud_score: item.signal.as_ref().map(|s| s.fraud_score),
            risk_label: item.risk_label(),
            policy_flags: item
                .derived
                .as_ref()
                .map(|d| d.policy_flags.clone())
                .unwrap_or_default(),
        });
        let settlement = item.settlement.as_deref().cloned();
        (item.transaction_id.clone(), stream, settlement)
    };
    // Chunks by number: a closure over `&[TransactionId]` would be higher-ranked, which the
    // Send bound of the task's future does not accept.
    let chunk = |i: usize| &ids[i * INDEX_CHUNK..((i + 1) * INDEX_CHUNK).min(ids.len())];
    let chunks: Vec<Vec<_>> = stream::iter(0..ids.len().div_ceil(INDEX_CHUNK))
        .map(|i| index.map_many(chunk(i), state))
        .buffered(INDEX_PARALLELISM)
        .try_collect()
        .await?;
    let mut out = LiveStates::default();
    for (id, stream, settlement) in chunks.into_iter().flatten() {
        if let Some(s) = settlement {
            out.settlements.insert(id.clone(), s);
        }
        if let Some(s) = stream {
            out.streams.insert(id, s);
        }
    }
    Ok(out)
}

/// The settlement a row of the final index writes back onto its item.
pub fn settlement_of(r: &FinalRow, business_date: BusinessDate) -> Settlement {
    Settlement {
        settlement_status: r.settlement_status,
        reconciled_status: r.reconciled_status,
        mismatch_type: r.mismatch_type,
        discrepancy: r.discrepancy,
        statement_currency: r.statement_currency,
        reconciliation_timestamp: r.reconciliation_timestamp,
        business_date: Some(business_date),
        detail: r.detail.clone(),
    }
}

/// The rows of `rows` whose settlement differs from the one the index `held` for them: all
/// a close needs to write back (a re-close writes what changed; a retried aggregation resumes
/// where it stopped).
pub fn changed_settlements<'r>(
    rows: &'r [FinalRow],
    held: &FxHashMap<TransactionId, Settlement>,
    business_date: BusinessDate,
) -> Vec<&'r FinalRow> {
    rows.iter()
        .filter(|r| held.get(&r.transaction_id) != Some(&settlement_of(r, business_date)))
        .collect()
}

/// Writes the settlement fields of the final index back onto the TransactionIndex, without
/// touching the stream version. Returns the number of items written.
pub async fn write_back_settlement<I: TransactionIndex>(
    index: &I,
    business_date: BusinessDate,
    rows: &[&FinalRow],
) -> Result<u64> {
    let written: Vec<u64> = stream::iter(0..rows.len().div_ceil(INDEX_CHUNK))
        .map(|i| {
            let updates: Vec<SettlementUpdate> = rows
                [i * INDEX_CHUNK..((i + 1) * INDEX_CHUNK).min(rows.len())]
                .iter()
                .map(|r| SettlementUpdate {
                    transaction_id: r.transaction_id.clone(),
                    settlement: settlement_of(r, business_date),
                })
                .collect();
            async move { index.write_settlements(&updates).await }
        })
        .buffered(INDEX_PARALLELISM)
        .try_collect()
        .await?;
    Ok(written.into_iter().sum())
}
