//! The aggregates the TransactionIndex keeps beside its items (merchant-day totals, payments
//! per user and hour), and the change one write makes to them: computed here once, applied as
//! they are by both index adapters ([`crate::local_index`], `aws::dynamo`).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{IndexItem, RiskLabel};
use crate::error::{Error, Result};
use crate::ids::{BusinessDate, MerchantId};
use crate::money::Currency;
use crate::records::TxnStatus;

/// Running totals of one merchant and day (`txn_day`), a function of the index's items: the
/// store keeps them up to date with every write (old item out, new item in), so redeliveries
/// and reordering never double count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantDayTotals {
    /// The merchant.
    pub merchant_id: MerchantId,
    /// The UTC day of the transactions' event time.
    pub txn_day: BusinessDate,
    /// Transactions of the merchant that day, whatever their status.
    pub transactions: u64,
    /// Transactions with status DECLINED.
    pub declined: u64,
    /// Transactions with status REFUNDED.
    pub refunds: u64,
    /// Transactions with status CHARGEBACK.
    pub chargebacks: u64,
    /// Transactions labelled HIGH_RISK.
    pub high_risk: u64,
    /// Σ amount of PENDING, APPROVED and CHARGEBACK payments, per currency.
    pub volume: BTreeMap<Currency, Decimal>,
    /// Σ amount of REFUNDED transactions, per currency.
    pub refund_volume: BTreeMap<Currency, Decimal>,
}

fn bump(n: &mut u64, add: bool, by: bool) -> Result<()> {
    if !by {
        return Ok(());
    }
    *n = if add {
        n.checked_add(1)
    } else {
        n.checked_sub(1)
    }
    .ok_or_else(|| Error::Invariant("merchant-day totals out of step with the index".into()))?;
    Ok(())
}

fn bump_money(
    map: &mut BTreeMap<Currency, Decimal>,
    currency: Currency,
    amount: Decimal,
    add: bool,
) -> Result<()> {
    let entry = map
        .entry(currency)
        .or_insert_with(|| currency.round(Decimal::ZERO));
    let next = if add {
        entry.checked_add(amount)
    } else {
        entry.checked_sub(amount)
    }
    .ok_or_else(|| Error::InvalidAmount {
        value: amount.to_string(),
        reason: "merchant-day volume overflows".into(),
    })?;
    if next.is_zero() {
        map.remove(&currency);
    } else {
        *entry = next;
    }
    Ok(())
}

impl MerchantDayTotals {
    /// Totals of a merchant and day with nothing counted yet.
    pub fn new(merchant_id: MerchantId, txn_day: BusinessDate) -> Self {
        Self {
            merchant_id,
            txn_day,
            transactions: 0,
            declined: 0,
            refunds: 0,
            chargebacks: 0,
            high_risk: 0,
            volume: BTreeMap::new(),
            refund_volume: BTreeMap::new(),
        }
    }

    /// Adds (`add`) or removes an item's contribution. Items without a transaction (pending
    /// signals) contribute nothing. Amounts are positive (the decoder refuses others), so a
    /// currency whose volume returns to zero has no contribution left and is dropped: the
    /// totals depend only on the items, not on the order they were written in.
    pub fn apply(&mut self, item: &IndexItem, add: bool) -> Result<()> {
        let Some(t) = &item.txn else {
            return Ok(());
        };
        bump(&mut self.transactions, add, true)?;
        bump(&mut self.declined, add, t.status == TxnStatus::Declined)?;
        bump(&mut self.refunds, add, t.status == TxnStatus::Refunded)?;
        bump(
            &mut self.chargebacks,
            add,
            t.status == TxnStatus::Chargeback,
        )?;
        bump(
            &mut self.high_risk,
            add,
            item.risk_label() == Some(RiskLabel::HighRisk),
        )?;
        match t.status {
            TxnStatus::Pending | TxnStatus::Approved | TxnStatus::Chargeback => {
                bump_money(&mut self.volume, t.currency, t.amount, add)?
            }
            TxnStatus::Refunded => bump_money(&mut self.refund_volume, t.currency, t.amount, add)?,
            TxnStatus::Declined => {}
        }
        Ok(())
    }

    /// Whether no transaction counts in the totals (the store then drops them).
    pub fn is_empty(&self) -> bool {
        self.transactions == 0
    }

    /// Names of the counts, in the order of [`MerchantDayTotals::counts`] (the field names).
    pub const COUNT_NAMES: [&'static str; 5] = [
        "transactions",
        "declined",
        "refunds",
        "chargebacks",
        "high_risk",
    ];

    /// The counts, in the order of [`MerchantDayTotals::COUNT_NAMES`].
    pub fn counts(&self) -> [u64; 5] {
        [
            self.transactions,
            self.declined,
            self.refunds,
            self.chargebacks,
            self.high_risk,
        ]
    }

    /// The counts to write, in the order of [`MerchantDayTotals::COUNT_NAMES`].
    pub fn counts_mut(&mut self) -> [&mut u64; 5] {
        [
            &mut self.transactions,
            &mut self.declined,
            &mut self.refunds,
            &mut self.chargebacks,
            &mut self.high_risk,
        ]
    }

    /// Applies a change computed by [`aggregate_delta`]: counts never go below zero, and a
    /// currency whose volume returns to zero is dropped (as [`MerchantDayTotals::apply`] does).
    pub fn apply_delta(&mut self, d: &MerchantDayDelta) -> Result<()> {
        for (n, by) in self.counts_mut().into_iter().zip(d.counts) {
            *n = n.checked_add_signed(by).ok_or_else(|| {
                Error::Invariant("merchant-day totals out of step with the index".into())
            })?;
        }
        for (map, changes) in [
            (&mut self.volume, &d.volume),
            (&mut self.refund_volume, &d.refund_volume),
        ] {
            for (currency, amount) in changes {
                bump_money(map, *currency, *amount, true)?;
            }
        }
        Ok(())
    }
}

/// The signed change of one merchant-day's totals (see [`aggregate_delta`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantDayDelta {
    /// The merchant whose totals change.
    pub merchant_id: MerchantId,
    /// The day whose totals change.
    pub txn_day: BusinessDate,
    /// Changes of the counts, in the order of [`MerchantDayTotals::COUNT_NAMES`].
    pub counts: [i64; 5],
    /// Changes of the volume per currency (zero changes left out).
    pub volume: BTreeMap<Currency, Decimal>,
    /// Changes of the refund volume per currency (zero changes left out).
    pub refund_volume: BTreeMap<Currency, Decimal>,
}

impl MerchantDayDelta {
    fn of(t: &MerchantDayTotals, sign: i64) -> Result<Self> {
        let mut counts = [0i64; 5];
        for (d, c) in counts.iter_mut().zip(t.counts()) {
            *d = i64::try_from(c)
                .map_err(|_| Error::Invariant("merchant-day count overflow".into()))?
                * sign;
        }
        let signed = |m: &BTreeMap<Currency, Decimal>| -> BTreeMap<Currency, Decimal> {
            m.iter()
                .map(|(c, a)| (*c, if sign < 0 { -*a } else { *a }))
                .collect()
        };
        Ok(Self {
            merchant_id: t.merchant_id.clone(),
            txn_day: t.txn_day,
            counts,
            volume: signed(&t.volume),
            refund_volume: signed(&t.refund_volume),
        })
    }

    /// Adds another change of the same merchant-day.
    fn add(&mut self, o: MerchantDayDelta) -> Result<()> {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        for (mine, theirs) in [
            (&mut self.volume, o.volume),
            (&mut self.refund_volume, o.refund_volume),
        ] {
            for (c, a) in theirs {
                let e = mine.entry(c).or_insert(Decimal::ZERO);
                *e = e.checked_add(a).ok_or_else(|| Error::InvalidAmount {
                    value: a.to_string(),
                    reason: "merchant-day volume overflows".into(),
                })?;
                if e.is_zero() {
                    mine.remove(&c);
                }
            }
        }
        Ok(())
    }

    /// Whether the change changes nothing.
    pub fn is_zero(&self) -> bool {
        self.counts.iter().all(|c| *c == 0)
            && self.volume.is_empty()
            && self.refund_volume.is_empty()
    }
}

/// What replacing `old` (`None`: no item yet) by `new` changes in the aggregates kept beside
/// the TransactionIndex. Both index adapters apply it as it is: the aggregate rule lives here
/// (and in [`MerchantDayTotals::apply`]), not in a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateDelta {
    /// Merchant-days whose totals change (at most two: the old item's and the new one's).
    pub merchant_days: Vec<MerchantDayDelta>,
    /// Payments per (user token, UTC hour) that change, with the signed change.
    pub user_hours: Vec<((String, i64), i64)>,
}

impl AggregateDelta {
    /// Whether the write changes no aggregate.
    pub fn is_empty(&self) -> bool {
        self.merchant_days.is_empty() && self.user_hours.is_empty()
    }
}

/// Whether two items count the same in the merchant-day totals (a cheap test that spares
/// building both contributions for most rewrites: a signal or a flag changed, not the payment).
fn same_contribution(a: Option<&IndexItem>, b: &IndexItem) -> bool {
    match (a.and_then(|a| a.txn.as_ref()), &b.txn) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x.merchant_id == y.merchant_id
                && x.txn_day == y.txn_day
                && x.status == y.status
                && x.currency == y.currency
                && x.amount == y.amount
                && a.and_then(IndexItem::risk_label) == b.risk_label()
        }
        _ => false,
    }
}

/// The contribution of an item to its merchant-day's totals.
fn contribution(item: &IndexItem) -> Result<Option<MerchantDayTotals>> {
    let Some((m, d)) = item.by_merchant_key() else {
        return Ok(None);
    };
    let mut t = MerchantDayTotals::new(m.clone(), d);
    t.apply(item, true)?;
    Ok(Some(t))
}

/// The change in the aggregates when `old` is replaced by `new` (see [`AggregateDelta`]):
/// the old item's contribution out, the new one's in, netted per merchant-day and per user
/// hour; what nets to zero is left out.
pub fn aggregate_delta(old: Option<&IndexItem>, new: &IndexItem) -> Result<AggregateDelta> {
    let mut out = AggregateDelta::default();
    if !same_contribution(old, new) {
        let minus = old.map(contribution).transpose()?.flatten();
        let plus = contribution(new)?;
        let mut days: Vec<MerchantDayDelta> = Vec::with_capacity(2);
        for (t, sign) in minus
            .iter()
            .map(|t| (t, -1))
            .chain(plus.iter().map(|t| (t, 1)))
        {
            let d = MerchantDayDelta::of(t, sign)?;
            match days
                .iter_mut()
                .find(|x| x.merchant_id == d.merchant_id && x.txn_day == d.txn_day)
            {
                Some(x) => x.add(d)?,
                None => days.push(d),
            }
        }
        out.merchant_days = days.into_iter().filter(|d| !d.is_zero()).collect();
    }
    let (oh, nh) = (old.and_then(IndexItem::user_hour), new.user_hour());
    if oh != nh {
        out.user_hours
            .extend(oh.map(|(u, h)| ((u.to_string(), h), -1)));
        out.user_hours
            .extend(nh.map(|(u, h)| ((u.to_string(), h), 1)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TransactionId;
    use crate::index_item::{Derived, RecordVersion, TRANSACTIONS_TOPIC, TxnState, topic};
    use crate::records::PaymentMethod;

    fn item(
        id: &str,
        merchant: &str,
        day: &str,
        status: TxnStatus,
        amount: i64,
        hour: i64,
    ) -> Result<IndexItem> {
        let event_time = chrono::DateTime::from_timestamp(hour * 3600, 0)
            .ok_or_else(|| Error::Invariant("time".into()))?;
        let mut i = IndexItem::empty(TransactionId::new(id)?);
        i.txn = Some(TxnState {
            version: RecordVersion {
                event_ms: hour * 3_600_000,
                topic: topic(TRANSACTIONS_TOPIC),
                partition: 0,
                offset: 0,
            },
            merchant_id: MerchantId::new(merchant)?,
            user_token: "u1".into(),
            amount: Decimal::new(amount, 2),
            currency: Currency::new("EUR")?,
            status,
            event_time,
            txn_day: BusinessDate::parse(day)?,
            payment_method: PaymentMethod::Card,
            original_transaction_id: None,
        });
        Ok(i)
    }

    fn eur() -> Result<Currency> {
        Currency::new("EUR")
    }

    #[test]
    fn a_new_payment_adds_its_contribution_and_its_hour() -> Result<()> {
        let new = item("T1", "M1", "2026-11-20", TxnStatus::Approved, 1050, 10)?;
        let d = aggregate_delta(None, &new)?;
        let [md] = d.merchant_days.as_slice() else {
            return Err(Error::Invariant(format!("{d:?}")));
        };
        assert_eq!(md.merchant_id.as_str(), "M1");
        assert_eq!(md.counts, [1, 0, 0, 0, 0]);
        assert_eq!(md.volume, BTreeMap::from([(eur()?, Decimal::new(1050, 2))]));
        assert!(md.refund_volume.is_empty());
        assert_eq!(d.user_hours, vec![(("u1".to_string(), 10), 1)]);
        Ok(())
    }

    #[test]
    fn a_rewrite_that_counts_the_same_changes_nothing() -> Result<()> {
        let old = item("T1", "M1", "2026-11-20", TxnStatus::Approved, 1050, 10)?;
        let mut new = old.clone();
        new.derived = Some(Derived {
            merchant: None,
            policy_flags: Vec::new(),
            risk_label: RiskLabel::Ok,
        });
        // No label before, OK after: neither is HIGH_RISK, but the cheap test sees a change
        // and the netted delta is still empty.
        assert!(aggregate_delta(Some(&old), &new)?.is_empty());
        assert!(aggregate_delta(Some(&old), &old)?.is_empty());
        Ok(())
    }

    #[test]
    fn a_refund_moves_volume_and_a_high_risk_label_counts() -> Result<()> {
        let old = item("T1", "M1", "2026-11-20", TxnStatus::Approved, 1050, 10)?;
        let mut new = item("T1", "M1", "2026-11-20", TxnStatus::Refunded, 1050, 10)?;
        new.derived = Some(Derived {
            merchant: None,
            policy_flags: Vec::new(),
            risk_label: RiskLabel::HighRisk,
        });
        let d = aggregate_delta(Some(&old), &new)?;
        let [md] = d.merchant_days.as_slice() else {
            return Err(Error::Invariant(format!("{d:?}")));
        };
        assert_eq!(md.counts, [0, 0, 1, 0, 1]);
        assert_eq!(
            md.volume,
            BTreeMap::from([(eur()?, Decimal::new(-1050, 2))])
        );
        assert_eq!(
            md.refund_volume,
            BTreeMap::from([(eur()?, Decimal::new(1050, 2))])
        );
        assert!(d.user_hours.is_empty());
        Ok(())
    }

    #[test]
    fn a_payment_that_moves_day_and_hour_leaves_one_and_joins_the_other() -> Result<()> {
        let old = item("T1", "M1", "2026-11-20", TxnStatus::Approved, 1050, 10)?;
        let new = item("T1", "M1", "2026-11-21", TxnStatus::Approved, 1050, 34)?;
        let d = aggregate_delta(Some(&old), &new)?;
        let days: Vec<(String, [i64; 5])> = d
            .merchant_days
            .iter()
            .map(|m| (m.txn_day.to_string(), m.counts))
            .collect();
        assert_eq!(
            days,
            vec![
                ("2026-11-20".to_string(), [-1, 0, 0, 0, 0]),
                ("2026-11-21".to_string(), [1, 0, 0, 0, 0])
            ]
        );
        assert_eq!(
            d.user_hours,
            vec![(("u1".to_string(), 10), -1), (("u1".to_string(), 34), 1)]
        );
        Ok(())
    }

    #[test]
    fn applied_deltas_give_the_totals_of_the_final_items() -> Result<()> {
        // A sequence of writes of three payments, applied as deltas, against the totals
        // computed from scratch from the items as they end.
        let writes = [
            item("T1", "M1", "2026-11-20", TxnStatus::Pending, 1000, 10)?,
            item("T2", "M1", "2026-11-20", TxnStatus::Approved, 250, 11)?,
            item("T1", "M1", "2026-11-20", TxnStatus::Approved, 1000, 10)?,
            item("T3", "M1", "2026-11-20", TxnStatus::Declined, 999, 12)?,
            item("T2", "M1", "2026-11-20", TxnStatus::Refunded, 250, 11)?,
            item("T1", "M1", "2026-11-20", TxnStatus::Chargeback, 1000, 10)?,
        ];
        let (m, day) = (MerchantId::new("M1")?, BusinessDate::parse("2026-11-20")?);
        let mut stored: BTreeMap<String, IndexItem> = BTreeMap::new();
        let mut running = MerchantDayTotals::new(m.clone(), day);
        for w in writes {
            let old = stored.get(w.transaction_id.as_str());
            for md in aggregate_delta(old, &w)?.merchant_days {
                running.apply_delta(&md)?;
            }
            stored.insert(w.transaction_id.to_string(), w);
        }
        let mut scratch = MerchantDayTotals::new(m, day);
        for i in stored.values() {
            scratch.apply(i, true)?;
        }
        assert_eq!(running, scratch);
        assert_eq!(running.counts(), [3, 1, 1, 1, 0]);
        assert_eq!(
            running.volume,
            BTreeMap::from([(eur()?, Decimal::new(1000, 2))])
        );
        // Removing more than there is is refused, not wrapped.
        let out = aggregate_delta(
            Some(&item("T9", "M1", "2026-11-20", TxnStatus::Declined, 1, 1)?),
            &IndexItem::empty(TransactionId::new("T9")?),
        )?;
        let mut t = running.clone();
        for md in &out.merchant_days {
            t.apply_delta(md)?;
        }
        for md in &out.merchant_days {
            assert!(t.apply_delta(md).is_err());
        }
        Ok(())
    }
}
