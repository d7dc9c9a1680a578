//! A known id is never unknown (§11): a payment routed at ingestion to its merchant's acquirer
//! (bank A's partition) but settled by another bank B (a merchant with two acquirers) is
//! handed over to B's partition when a line of B names it.
//!
//! The planner decides the hand-overs from inputs only — the ids B's lines name and the ids
//! of every bank's ledger — so they need no order between the banks' chains: from the first
//! close of each bank on or after `max(line delivery, ledger date)`, A no longer holds the
//! payment (it resolves any break it had) and B reconciles it with its lines, its fee rules
//! and its calendar. Each partition's hand-overs are written to `index/routes/` before the
//! partitions run and are part of its fingerprint, so a corrected ledger or statement
//! re-closes exactly the banks whose hand-overs change.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use chrono::Days;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::inputs::Dimensions;
use crate::columnar::{Columnar, Columns};
use crate::error::{Error, Result};
use crate::ids::{BankId, BusinessDate};
use crate::keys::{self, ROUTES, routes_key, statements_date_prefix, transactions_prefix};
use crate::ports::ObjectStore;
use crate::reconcile::frame::read_columns;
use crate::records::{StatementLine, Transaction};

/// The hand-overs of one partition (`index/routes/bank_id=B/business_date=D/routes.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    /// Transactions of other banks' partitions this bank's lines name: reconciled here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incoming: Vec<Incoming>,
    /// Transactions of this bank's partition another bank's lines name: no longer held here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outgoing: Vec<Outgoing>,
    /// The ledger objects the incoming transactions are read from, with their SHA-256: a
    /// corrected ledger changes the routes, so the partition's fingerprint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

/// A transaction taken in from another bank's partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Incoming {
    /// The transaction.
    pub transaction_id: String,
    /// The bank whose partition the ledger split it into (its merchant's acquirer).
    pub from_bank: BankId,
    /// Its ledger date (the item date it keeps).
    pub ledger_date: BusinessDate,
}

/// A transaction handed over to another bank's partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Outgoing {
    /// The transaction.
    pub transaction_id: String,
    /// The bank whose line names it.
    pub to_bank: BankId,
}

/// A ledger object incoming transactions are read from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Source {
    /// Its key.
    pub key: String,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// The ledger date of its transactions.
    pub ledger_date: BusinessDate,
}

impl Routes {
    /// Whether the partition hands nothing over.
    pub fn is_empty(&self) -> bool {
        self.incoming.is_empty() && self.outgoing.is_empty()
    }

    /// The object's bytes: pretty JSON and a newline (the same routes, the same bytes).
    pub fn to_bytes(&self) -> Result<Bytes> {
        let mut b = serde_json::to_vec_pretty(self)?;
        b.push(b'\n');
        Ok(Bytes::from(b))
    }
}

/// The ids the planner reads: per (bank, date), those named by the bank's lines delivered
/// that date, and those of the bank's ledger split of that date.
#[derive(Debug, Default)]
pub struct Ids {
    /// Transaction ids named by statement lines, by (bank, delivery date).
    pub lines: BTreeMap<(BankId, BusinessDate), Vec<String>>,
    /// Ledger transaction ids, by (bank, ledger date).
    pub ledger: BTreeMap<(BankId, BusinessDate), Vec<String>>,
}

/// The hand-overs `ids` imply for the closes `closes` (each bank's close dates, ascending):
/// a line of B delivered on D naming a transaction that only another bank A's ledger split
/// holds (ledger date T, within `horizon` days of D) hands it from A to B at each bank's
/// first close on or after `max(D, T)`. A transaction named by several banks goes to the
/// earliest, then the first bank. Hand-overs before the first close of `closes` were made by
/// earlier closes and are not repeated; one whose bank has no close yet waits for it.
pub fn handovers(
    ids: &Ids,
    closes: &BTreeMap<BankId, Vec<BusinessDate>>,
    horizon: u64,
) -> BTreeMap<(BankId, BusinessDate), Routes> {
    let mut ledger: HashMap<&str, Vec<(&BankId, BusinessDate)>> = HashMap::new();
    for ((bank, date), list) in &ids.ledger {
        for id in list {
            ledger.entry(id.as_str()).or_default().push((bank, *date));
        }
    }
    let first = closes.values().filter_map(|d| d.first()).min().copied();
    let next_close = |bank: &BankId, on: BusinessDate| {
        closes
            .get(bank)
            .and_then(|d| d.iter().find(|c| **c >= on).copied())
    };
    // transaction -> (effective date, to bank, from bank, ledger date)
    let mut chosen: BTreeMap<&str, (BusinessDate, &BankId, &BankId, BusinessDate)> =
        BTreeMap::new();
    for ((to, delivered), list) in &ids.lines {
        for id in list {
            let Some(held) = ledger.get(id.as_str()) else {
                continue;
            };
            if held.iter().any(|(b, _)| *b == to) {
                continue;
            }
            let Some((from, ledger_date)) = held.first().copied() else {
                continue;
            };
            if (delivered.date() - ledger_date.date())
                .num_days()
                .unsigned_abs()
                > horizon
            {
                continue;
            }
            let on = (*delivered).max(ledger_date);
            let candidate = (on, to, from, ledger_date);
            chosen
                .entry(id.as_str())
                .and_modify(|c| {
                    if (candidate.0, candidate.1) < (c.0, c.1) {
                        *c = candidate;
                    }
                })
                .or_insert(candidate);
        }
    }
    let mut out: BTreeMap<(BankId, BusinessDate), Routes> = BTreeMap::new();
    for (id, (on, to, from, ledger_date)) in chosen {
        if first.is_none_or(|f| on < f) {
            continue;
        }
        let (Some(at_to), Some(at_from)) = (next_close(to, on), next_close(from, on)) else {
            continue;
        };
        out.entry((to.clone(), at_to))
            .or_default()
            .incoming
            .push(Incoming {
                transaction_id: id.to_string(),
                from_bank: from.clone(),
                ledger_date,
            });
        out.entry((from.clone(), at_from))
            .or_default()
            .outgoing
            .push(Outgoing {
                transaction_id: id.to_string(),
                to_bank: to.clone(),
            });
    }
    out
}

/// Calendar days an item can stay open: the longest settlement window of any bank plus the
/// grace, in business days, with their weekends and two holidays.
pub fn horizon_days(dims: &Dimensions) -> u64 {
    let window = dims
        .calendars
        .values()
        .filter_map(|c| c.settlement_window_days)
        .chain([dims.tolerances.settlement_window_days])
        .max()
        .unwrap_or_default();
    let n = u64::from(window + dims.tolerances.carry_grace_days);
    n + 2 * n.div_ceil(5) + 2
}

/// The ids statement lines name that may be another bank's payment: lines naming a
/// transaction and no merchant, or a merchant the merchant file gives another acquirer (a line
/// naming a merchant its own bank acquires pays that bank's payment). By (bank, delivery).
async fn candidate_lines<S: ObjectStore>(
    store: &S,
    dims: &Dimensions,
    date: BusinessDate,
    into: &mut BTreeMap<(BankId, BusinessDate), Vec<String>>,
) -> Result<()> {
    for obj in store.list(&statements_date_prefix(date)).await? {
        let Some(bank) = keys::statements_bank(&obj.key).filter(|_| obj.key.ends_with(".parquet"))
        else {
            continue;
        };
        let bank = BankId::new(bank)?;
        let bytes = store.get(&obj.key).await?;
        let batches = read_columns::<StatementLine>(bytes, &["transaction_id", "merchant_id"])?;
        let list = into.entry((bank.clone(), date)).or_default();
        for b in &batches {
            let c = Columns::new(StatementLine::TABLE, b);
            let (ids, merchants) = (c.strings("transaction_id")?, c.strings("merchant_id")?);
            for (id, merchant) in ids.iter().zip(merchants.iter()) {
                let Some(id) = id else { continue };
                if merchant.is_none_or(|m| dims.acquirer(m) != Some(&bank)) {
                    list.push(id.to_string());
                }
            }
        }
    }
    Ok(())
}

/// Plans the hand-overs of the closes `closes` (each bank's close dates, ascending) and
/// writes each partition's `routes.json`, removing those of partitions that no longer hand
/// anything over; returns how many transactions change partition.
///
/// It reads the lines delivered and the ledgers booked from `horizon` days before the first
/// close to the last: the lines' candidate ids first, then the ledgers' ids, keeping only the
/// candidates (so the cost is one pass over the id columns, without keeping them).
pub async fn plan_routes<S: ObjectStore>(
    store: &S,
    dims: &Dimensions,
    closes: &BTreeMap<BankId, Vec<BusinessDate>>,
) -> Result<usize> {
    let dates: BTreeSet<BusinessDate> = closes.values().flatten().copied().collect();
    let (Some(first), Some(last)) = (dates.first().copied(), dates.last().copied()) else {
        return Ok(0);
    };
    let horizon = horizon_days(dims);
    let start = first
        .date()
        .checked_sub_days(Days::new(horizon))
        .ok_or_else(|| Error::Invariant(format!("{first} minus {horizon} days")))?;
    let days = {
        let mut v = vec![BusinessDate::from_date(start)?];
        while let Some(d) = v.last().copied().filter(|d| *d < last) {
            v.push(d.succ()?);
        }
        v
    };
    let mut ids = Ids::default();
    for d in &days {
        candidate_lines(store, dims, *d, &mut ids.lines).await?;
    }
    ids.lines.retain(|_, v| !v.is_empty());
    let wanted: HashMap<&str, ()> = ids
        .lines
        .values()
        .flatten()
        .map(|id| (id.as_str(), ()))
        .collect();
    // The ledger objects holding a candidate, to hash as the hand-overs' sources.
    let mut objects: BTreeMap<(BankId, BusinessDate), Vec<String>> = BTreeMap::new();
    if !wanted.is_empty() {
        for d in &days {
            for obj in store.list(&transactions_prefix(*d)).await? {
                let Some(bank) = keys::transactions_bank(&obj.key) else {
                    continue;
                };
                let bank = BankId::new(bank)?;
                let mut hits = Vec::new();
                let bytes = store.get(&obj.key).await?;
                for b in &read_columns::<Transaction>(bytes, &["transaction_id"])? {
                    hits.extend(
                        Columns::new(Transaction::TABLE, b)
                            .strings("transaction_id")?
                            .iter()
                            .flatten()
                            .filter(|id| wanted.contains_key(id))
                            .map(str::to_string),
                    );
                }
                if !hits.is_empty() {
                    objects
                        .entry((bank.clone(), *d))
                        .or_default()
                        .push(obj.key.clone());
                    ids.ledger.entry((bank, *d)).or_default().extend(hits);
                }
            }
        }
    }
    let mut routes = handovers(&ids, closes, horizon);
    let mut hashed: HashMap<String, String> = HashMap::new();
    for r in routes.values_mut() {
        let mut sources = BTreeSet::new();
        for i in &r.incoming {
            for key in objects
                .get(&(i.from_bank.clone(), i.ledger_date))
                .into_iter()
                .flatten()
            {
                let sha256 = match hashed.get(key) {
                    Some(h) => h.clone(),
                    None => {
                        let h = hex::encode(Sha256::digest(store.get(key).await?));
                        hashed.insert(key.clone(), h.clone());
                        h
                    }
                };
                sources.insert(Source {
                    key: key.clone(),
                    sha256,
                    ledger_date: i.ledger_date,
                });
            }
        }
        r.sources = sources.into_iter().collect();
    }
    // Partitions of these closes that handed something over before and no longer do.
    for obj in store.list(ROUTES).await? {
        let (Some(bank), Some(date)) = (keys::statements_bank(&obj.key), keys::open_date(&obj.key))
        else {
            continue;
        };
        let bank = BankId::new(bank)?;
        if closes.get(&bank).is_some_and(|d| d.contains(&date))
            && !routes.contains_key(&(bank, date))
        {
            store.delete(&obj.key).await?;
        }
    }
    let moved = routes.values().map(|r| r.incoming.len()).sum();
    for ((bank, date), r) in &routes {
        store.put(&routes_key(bank, *date), r.to_bytes()?).await?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Spec<'a> = &'a [(&'a str, u32, &'a [&'a str])];

    fn day(n: u32) -> Result<BusinessDate> {
        BusinessDate::parse(&format!("2026-11-{n:02}"))
    }

    fn key(b: &str, d: u32) -> Result<(BankId, BusinessDate)> {
        Ok((BankId::new(b)?, day(d)?))
    }

    fn ids(lines: Spec, ledger: Spec) -> Result<Ids> {
        let map = |v: Spec| -> Result<BTreeMap<_, _>> {
            v.iter()
                .map(|(b, d, l)| Ok((key(b, *d)?, l.iter().map(|s| s.to_string()).collect())))
                .collect()
        };
        Ok(Ids {
            lines: map(lines)?,
            ledger: map(ledger)?,
        })
    }

    fn closes(banks: &[(&str, &[u32])]) -> Result<BTreeMap<BankId, Vec<BusinessDate>>> {
        banks
            .iter()
            .map(|(b, days)| {
                Ok((
                    BankId::new(*b)?,
                    days.iter().map(|d| day(*d)).collect::<Result<_>>()?,
                ))
            })
            .collect()
    }

    const WEEK: &[u32] = &[16, 17, 18, 19, 20];

    #[test]
    fn a_line_naming_another_banks_payment_takes_it_over_at_the_later_date() -> Result<()> {
        // T1 booked on the 16th at A, paid by B on the 17th; T2 is B's own; T3 is paid by B
        // on the 16th but reaches the ledger on the 18th.
        let ids = ids(
            &[("B", 17, &["T1", "T2"]), ("B", 16, &["T3"])],
            &[("A", 16, &["T1"]), ("B", 16, &["T2"]), ("A", 18, &["T3"])],
        )?;
        let r = handovers(&ids, &closes(&[("A", WEEK), ("B", WEEK)])?, 9);
        let b17 = &r[&key("B", 17)?];
        assert_eq!(b17.incoming[0].transaction_id, "T1");
        assert_eq!(b17.incoming[0].ledger_date, day(16)?);
        assert_eq!(r[&key("A", 17)?].outgoing[0].transaction_id, "T1");
        assert_eq!(r[&key("B", 18)?].incoming[0].transaction_id, "T3");
        assert_eq!(r[&key("A", 18)?].outgoing[0].to_bank, BankId::new("B")?);
        assert_eq!(r.len(), 4, "T2 stays with B: {r:?}");
        Ok(())
    }

    #[test]
    fn hand_overs_wait_for_a_close_and_are_not_repeated_before_the_window() -> Result<()> {
        let ids = ids(
            &[("B", 17, &["T1"]), ("B", 10, &["T0"])],
            &[("A", 16, &["T1"]), ("A", 9, &["T0"])],
        )?;
        // B has no close on the 17th: the hand-over happens at its next close, the 19th.
        let r = handovers(&ids, &closes(&[("A", WEEK), ("B", &[16, 19])])?, 9);
        assert_eq!(r[&key("B", 19)?].incoming.len(), 1);
        assert_eq!(r[&key("A", 17)?].outgoing.len(), 1);
        // T0's hand-over (the 10th) was made before these closes.
        assert!(
            r.values()
                .all(|x| x.incoming.iter().all(|i| i.transaction_id != "T0"))
        );
        // Beyond the horizon, a line does not reach a payment.
        assert!(handovers(&ids, &closes(&[("A", WEEK), ("B", WEEK)])?, 0).is_empty());
        Ok(())
    }

    #[test]
    fn a_payment_named_by_two_banks_goes_to_the_earliest() -> Result<()> {
        let ids = ids(
            &[("B", 18, &["T1"]), ("C", 17, &["T1"])],
            &[("A", 16, &["T1"])],
        )?;
        let r = handovers(&ids, &closes(&[("A", WEEK), ("B", WEEK), ("C", WEEK)])?, 9);
        assert_eq!(r[&key("C", 17)?].incoming.len(), 1);
        assert!(!r.contains_key(&key("B", 18)?));
        Ok(())
    }
}
