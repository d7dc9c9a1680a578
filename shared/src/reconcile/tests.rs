//! The matching rules, case by case, on hand-made partitions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::dec;

use super::engine::{Outcome, PartitionInput, reconcile};
use super::frame::{LineRef, TxnRef};
use crate::calendar::Calendar;
use crate::error::{Error, Result};
use crate::ids::*;
use crate::money::{Currency, FxTable};
use crate::records::*;
use crate::rules::Tolerances;

const DAY: &str = "2026-11-20";

fn usd() -> Currency {
    Currency::new("USD").unwrap_or_else(|_| unreachable!())
}

fn at(day: &str) -> Result<DateTime<Utc>> {
    Ok(BusinessDate::parse(day)?
        .date()
        .and_hms_opt(12, 0, 0)
        .ok_or_else(|| Error::Invariant("t".into()))?
        .and_utc())
}

fn txn(
    id: &str,
    merchant: &str,
    amount: Decimal,
    cur: &str,
    status: TxnStatus,
) -> Result<Transaction> {
    Ok(Transaction {
        transaction_id: TransactionId::new(id)?,
        merchant_id: MerchantId::new(merchant)?,
        user_id: UserId::new("utk_x")?,
        amount,
        currency: Currency::new(cur)?,
        status,
        event_time: at(DAY)?,
        payment_method: PaymentMethod::Card,
        original_transaction_id: None,
    })
}

fn line(
    sid: &str,
    tid: Option<&str>,
    merchant: Option<&str>,
    amount: Decimal,
    fee: Decimal,
) -> Result<StatementLine> {
    Ok(StatementLine {
        statement_id: StatementId::new(sid)?,
        transaction_id: tid.map(TransactionId::new).transpose()?,
        bank_id: BankId::new("bank_01")?,
        posting_date: BusinessDate::parse(DAY)?,
        amount_posted: amount,
        currency: usd(),
        fee_charged: fee,
        merchant_id: merchant.map(MerchantId::new).transpose()?,
        reference: String::new(),
        record_type: Some(RecordType::Settlement),
        original_amount: None,
        original_currency: None,
        fx_rate: None,
    })
}

fn fee_rule() -> Result<FeeRule> {
    Ok(FeeRule {
        rule_id: RuleId::new("r")?,
        bank_id: Some(BankId::new("bank_01")?),
        network: None,
        merchant_category: None,
        percent: dec!(1),
        fixed: dec!(0.10),
        currency: usd(),
        effective_from: BusinessDate::parse("2026-01-01")?.date(),
        effective_to: None,
    })
}

struct Fixture {
    rules: Vec<FeeRule>,
    tol: Tolerances,
    cal: Calendar,
    fx: FxTable,
    cats: HashMap<MerchantId, String>,
}

impl Fixture {
    fn new() -> Result<Self> {
        let mut fx = FxTable::default();
        fx.insert(Currency::new("EUR")?, usd(), dec!(1.1))?;
        Ok(Self {
            rules: vec![fee_rule()?],
            // Same-day settlement: what no line pays is missing at the bank at once.
            tol: Tolerances {
                settlement_window_days: 0,
                ..Tolerances::default()
            },
            cal: Calendar::every_day(BankId::new("bank_01")?),
            fx,
            cats: HashMap::new(),
        })
    }

    fn run(&self, t: &[Transaction], l: &[StatementLine]) -> Result<Outcomes> {
        let (t, l): (Vec<TxnRef>, Vec<LineRef>) = (
            t.iter().map(TxnRef::from).collect(),
            l.iter().map(LineRef::from).collect(),
        );
        let r = reconcile(&PartitionInput {
            business_date: BusinessDate::parse(DAY)?,
            bank_id: BankId::new("bank_01")?,
            settlement_currency: Some(usd()),
            transactions: &t,
            lines: &l,
            categories: &self.cats,
            fee_rules: &self.rules,
            tolerances: &self.tol,
            fx: &self.fx,
            calendar: &self.cal,
            awaiting: false,
            manual: &[],
        })?;
        Ok(Outcomes {
            txn_ids: r
                .transactions
                .iter()
                .map(|t| t.transaction_id.to_string())
                .collect(),
            line_ids: r.lines.iter().map(|l| l.statement_id.to_string()).collect(),
            txn_outcomes: r.txn_outcomes,
            line_outcomes: r.line_outcomes,
        })
    }
}

/// The engine's outcomes with the ids they are aligned to.
struct Outcomes {
    txn_ids: Vec<String>,
    line_ids: Vec<String>,
    txn_outcomes: Vec<Outcome>,
    line_outcomes: Vec<Outcome>,
}

/// (status, mismatch, rule, discrepancy in minor units) of transaction `i`.
fn t_out(
    r: &Outcomes,
    id: &str,
) -> (
    ReconciledStatus,
    MismatchType,
    MatchRule,
    Option<i64>,
    Vec<String>,
) {
    let i = r.txn_ids.iter().position(|t| t == id).unwrap_or(usize::MAX);
    let o = &r.txn_outcomes[i];
    let lines = o
        .counterparts
        .iter()
        .map(|l| r.line_ids[*l as usize].clone())
        .collect();
    (o.status, o.mismatch, o.rule, o.discrepancy, lines)
}

fn l_out(r: &Outcomes, sid: &str) -> (ReconciledStatus, MismatchType, MatchRule) {
    let i = r
        .line_ids
        .iter()
        .position(|l| l == sid)
        .unwrap_or(usize::MAX);
    let o = &r.line_outcomes[i];
    (o.status, o.mismatch, o.rule)
}

use MatchRule as R;
use MismatchType as M;
use ReconciledStatus as S;

#[test]
fn exact_id_amount_fee_and_currency_cases() -> Result<()> {
    let f = Fixture::new()?;
    // Fee: 1 % + 0.10.
    let t = vec![
        txn("T1", "M1", dec!(100.00), "USD", TxnStatus::Approved)?,
        txn("T2", "M1", dec!(100.00), "USD", TxnStatus::Approved)?,
        txn("T3", "M1", dec!(100.00), "USD", TxnStatus::Approved)?,
        txn("T4", "M1", dec!(100.00), "EUR", TxnStatus::Approved)?,
        txn("T5", "M1", dec!(100.00), "EUR", TxnStatus::Approved)?,
        txn("T6", "M1", dec!(50.00), "USD", TxnStatus::Approved)?,
    ];
    let l = vec![
        line("L1", Some("T1"), Some("M1"), dec!(100.00), dec!(1.10))?,
        line("L2", Some("T2"), Some("M1"), dec!(90.00), dec!(1.10))?,
        line("L3", Some("T3"), Some("M1"), dec!(100.00), dec!(2.50))?,
        line("L4", Some("T4"), Some("M1"), dec!(110.00), dec!(1.20))?,
        line("L5", Some("T5"), Some("M1"), dec!(100.00), dec!(1.20))?,
        line("L6", Some("T6"), Some("M1"), dec!(50.01), dec!(0.60))?,
    ];
    let r = f.run(&t, &l)?;
    assert_eq!(
        t_out(&r, "T1"),
        (S::Matched, M::None, R::ExactId, Some(0), vec!["L1".into()])
    );
    assert_eq!(
        t_out(&r, "T2").0..=t_out(&r, "T2").0,
        S::PartialMatch..=S::PartialMatch
    );
    assert_eq!(
        (t_out(&r, "T2").1, t_out(&r, "T2").3),
        (M::Amount, Some(-1000))
    );
    assert_eq!((t_out(&r, "T3").0, t_out(&r, "T3").1), (S::Matched, M::Fee));
    assert_eq!(r.txn_outcomes[2].fee_variance, Some(140));
    assert_eq!(
        t_out(&r, "T4"),
        (S::Matched, M::None, R::ExactId, Some(0), vec!["L4".into()]),
        "EUR 100 × 1.1 = USD 110"
    );
    assert_eq!(
        (t_out(&r, "T5").0, t_out(&r, "T5").1),
        (S::PartialMatch, M::Currency)
    );
    assert_eq!(
        (t_out(&r, "T6").0, t_out(&r, "T6").1, t_out(&r, "T6").3),
        (S::Matched, M::None, Some(1)),
        "within 1 minor unit"
    );
    Ok(())
}

#[test]
fn duplicates_splits_chargebacks_and_refunds() -> Result<()> {
    let f = Fixture::new()?;
    let mut refund = txn("R1", "M1", dec!(20.00), "USD", TxnStatus::Refunded)?;
    refund.original_transaction_id = Some(TransactionId::new("T1")?);
    let t = vec![
        txn("T1", "M1", dec!(100.00), "USD", TxnStatus::Approved)?,
        txn("T2", "M1", dec!(100.00), "USD", TxnStatus::Approved)?,
        txn("T3", "M1", dec!(100.00), "USD", TxnStatus::Chargeback)?,
        refund,
    ];
    let mut cb = line("L6", Some("T3"), Some("M1"), dec!(-100.00), dec!(0))?;
    cb.record_type = Some(RecordType::Chargeback);
    let mut rl = line("L7", Some("R1"), Some("M1"), dec!(-20.00), dec!(0))?;
    rl.record_type = Some(RecordType::Refund);
    let l = vec![
        line("L2", Some("T1"), Some("M1"), dec!(100.00), dec!(1.10))?,
        line("L1", Some("T1"), Some("M1"), dec!(100.00), dec!(1.10))?,
        line("L3", Some("T2"), Some("M1"), dec!(60.00), dec!(1.10))?,
        line("L4", Some("T2"), Some("M1"), dec!(40.00), dec!(0))?,
        line("L5", Some("T3"), Some("M1"), dec!(100.00), dec!(1.10))?,
        cb,
        rl,
    ];
    let r = f.run(&t, &l)?;
    assert_eq!(
        t_out(&r, "T1"),
        (S::Matched, M::None, R::ExactId, Some(0), vec!["L1".into()]),
        "first by statement id"
    );
    assert_eq!(l_out(&r, "L2"), (S::Duplicate, M::Duplicate, R::ExactId));
    assert_eq!(
        t_out(&r, "T2"),
        (
            S::Matched,
            M::None,
            R::OneToMany,
            Some(0),
            vec!["L3".into(), "L4".into()]
        )
    );
    assert_eq!(
        t_out(&r, "T3").0..=t_out(&r, "T3").0,
        S::Disputed..=S::Disputed
    );
    assert_eq!(l_out(&r, "L6"), (S::Disputed, M::Chargeback, R::ExactId));
    assert_eq!(
        t_out(&r, "R1"),
        (S::Matched, M::None, R::ExactId, Some(0), vec!["L7".into()]),
        "refund books negative"
    );
    Ok(())
}

#[test]
fn composite_and_many_to_one_without_ids() -> Result<()> {
    let f = Fixture::new()?;
    let mut old = txn("T9", "M2", dec!(70.00), "USD", TxnStatus::Approved)?;
    old.event_time = at("2026-11-10")?; // outside the 3-day window
    let t = vec![
        txn("T1", "M1", dec!(55.55), "USD", TxnStatus::Approved)?,
        txn("T2", "M2", dec!(10.00), "USD", TxnStatus::Approved)?,
        txn("T3", "M2", dec!(20.00), "USD", TxnStatus::Approved)?,
        txn("T4", "M2", dec!(30.00), "USD", TxnStatus::Approved)?,
        old,
        txn("T5", "M3", dec!(5.00), "USD", TxnStatus::Approved)?,
    ];
    let l = vec![
        line("L1", None, Some("M1"), dec!(55.55), dec!(0.66))?,
        // 10 + 30 = 40, fees 0.20 + 0.40.
        line("L2", None, Some("M2"), dec!(40.00), dec!(0.60))?,
        line("L3", None, Some("M2"), dec!(70.00), dec!(0.80))?,
        line("L4", Some("TX-UNKNOWN"), Some("M3"), dec!(5.00), dec!(0.15))?,
        line("L5", None, None, dec!(5.00), dec!(0.15))?,
    ];
    let r = f.run(&t, &l)?;
    assert_eq!(
        t_out(&r, "T1").0..=t_out(&r, "T1").0,
        S::Matched..=S::Matched
    );
    assert_eq!(t_out(&r, "T1").2, R::Composite);
    assert_eq!(
        t_out(&r, "T2"),
        (
            S::Matched,
            M::None,
            R::ManyToOne,
            Some(0),
            vec!["L2".into()]
        )
    );
    assert_eq!(t_out(&r, "T4").4, vec!["L2".to_string()]);
    assert_eq!(
        t_out(&r, "T3").1,
        M::MissingAtBank,
        "not part of the payout"
    );
    assert_eq!(
        l_out(&r, "L3"),
        (S::Unmatched, M::MissingInternal, R::None),
        "T9 is outside the date window"
    );
    assert_eq!(
        l_out(&r, "L4"),
        (S::Unmatched, M::MissingInternal, R::None),
        "an unknown id is not matched by amount"
    );
    assert_eq!(
        l_out(&r, "L5"),
        (S::Unmatched, M::MissingInternal, R::None),
        "no merchant, no composite key"
    );
    assert_eq!(t_out(&r, "T5").1, M::MissingAtBank);
    Ok(())
}

/// A merchant with 40 unpaid payments and a payout of three of the latest: found wherever its
/// members are (the search was cut to the first 24 by event time, so this payout stayed
/// unmatched), and a second payout fitting within tolerance does not take its members.
#[test]
fn a_payout_is_found_among_many_unpaid_payments_of_its_merchant() -> Result<()> {
    let f = Fixture::new()?;
    let mut t = Vec::new();
    for i in 0..40i64 {
        // Unrelated amounts between 1 000 and 11 000 USD: no other group adds up to a payout.
        let cents = 100_000 + (i * 7_919 * 104_729) % 1_000_003;
        let mut x = txn(
            &format!("T{i:02}"),
            "M1",
            usd().from_minor(cents),
            "USD",
            TxnStatus::Approved,
        )?;
        x.event_time += chrono::Duration::minutes(i);
        t.push(x);
    }
    let rule = fee_rule()?;
    let payout = |ids: &[usize], extra_cents: i64| -> Result<(Decimal, Decimal)> {
        let mut amount = usd().from_minor(extra_cents);
        let mut fee = Decimal::ZERO;
        for i in ids {
            amount += t[*i].amount;
            fee += usd().round(rule.fee_for(t[*i].amount));
        }
        Ok((amount, fee))
    };
    let (a1, f1) = payout(&[31, 36, 39], 0)?;
    let (a2, f2) = payout(&[2, 30], 1)?;
    let l = vec![
        // Statement order puts the payout within tolerance first.
        line("L1", None, Some("M1"), a2, f2)?,
        line("L2", None, Some("M1"), a1, f1)?,
    ];
    let r = f.run(&t, &l)?;
    for id in ["T31", "T36", "T39"] {
        assert_eq!(
            t_out(&r, id),
            (
                S::Matched,
                M::None,
                R::ManyToOne,
                Some(0),
                vec!["L2".into()]
            ),
            "{id}"
        );
    }
    for id in ["T02", "T30"] {
        assert_eq!(
            t_out(&r, id),
            (
                S::Matched,
                M::None,
                R::ManyToOne,
                Some(1),
                vec!["L1".into()]
            ),
            "{id}"
        );
    }
    let paid = r
        .txn_outcomes
        .iter()
        .filter(|o| o.rule == R::ManyToOne)
        .count();
    assert_eq!(paid, 5, "the other 35 payments stay missing at the bank");
    Ok(())
}

#[test]
fn composite_ties_break_deterministically_and_order_does_not_matter() -> Result<()> {
    let f = Fixture::new()?;
    let mut far = txn("T0", "M1", dec!(10.00), "USD", TxnStatus::Approved)?;
    far.event_time = at("2026-11-18")?;
    let near_b = txn("T2", "M1", dec!(10.00), "USD", TxnStatus::Approved)?;
    let near_a = txn("T1", "M1", dec!(10.00), "USD", TxnStatus::Approved)?;
    let t = vec![far.clone(), near_b.clone(), near_a.clone()];
    let l = vec![line("L1", None, Some("M1"), dec!(10.00), dec!(0.20))?];
    let r = f.run(&t, &l)?;
    assert_eq!(
        t_out(&r, "T1").2,
        R::Composite,
        "same day first, then the smaller id"
    );
    let shuffled = vec![near_a, far, near_b];
    let r2 = f.run(&shuffled, &l)?;
    assert_eq!(r.txn_outcomes, r2.txn_outcomes);
    assert_eq!(r.line_outcomes, r2.line_outcomes);
    Ok(())
}

#[test]
fn a_partition_refuses_mixed_statement_currencies() -> Result<()> {
    let f = Fixture::new()?;
    let mut l = line("L1", None, None, dec!(1.00), dec!(0))?;
    l.currency = Currency::new("EUR")?;
    assert!(f.run(&[], &[l]).is_err());
    Ok(())
}

/// A partition with every kind of row: exact, duplicate, one-to-many, composite, group,
/// chargeback, and unmatched on both sides.
fn mixed_partition() -> Result<(Vec<Transaction>, Vec<StatementLine>)> {
    let mut cb = line("L7", Some("T5"), Some("M1"), dec!(-5.00), dec!(0))?;
    cb.record_type = Some(RecordType::Chargeback);
    let t = vec![
        txn("T1", "M1", dec!(10.00), "USD", TxnStatus::Approved)?,
        txn("T2", "M1", dec!(20.00), "USD", TxnStatus::Approved)?,
        txn("T3", "M2", dec!(10.00), "USD", TxnStatus::Approved)?,
        txn("T4", "M2", dec!(30.00), "USD", TxnStatus::Approved)?,
        txn("T5", "M1", dec!(5.00), "USD", TxnStatus::Approved)?,
        txn("T6", "M3", dec!(7.77), "USD", TxnStatus::Approved)?,
        txn("T7", "M4", dec!(12.34), "EUR", TxnStatus::Approved)?,
    ];
    let l = vec![
        line("L1", Some("T1"), Some("M1"), dec!(10.00), dec!(0.25))?,
        line("L2", Some("T1"), Some("M1"), dec!(10.00), dec!(0.25))?,
        line("L3", Some("T2"), Some("M1"), dec!(12.00), dec!(0.20))?,
        line("L4", Some("T2"), Some("M1"), dec!(8.00), dec!(0.20))?,
        line("L5", None, Some("M2"), dec!(40.00), dec!(0.60))?,
        line("L6", Some("T5"), Some("M1"), dec!(5.00), dec!(0.18))?,
        cb,
        line("L8", Some("TX-NOBODY"), None, dec!(1.00), dec!(0))?,
        line("L9", Some("T7"), Some("M4"), dec!(99.00), dec!(0.10))?,
    ];
    Ok((t, l))
}

#[test]
fn the_index_columns_are_what_index_rows_would_write() -> Result<()> {
    use super::index::{BreakRegistry, IndexRow, PartitionIndex, RowKind};
    use crate::columnar::{Columnar, read_parquet, write_parquet};

    let f = Fixture::new()?;
    let (t, l) = mixed_partition()?;
    let (t, l): (Vec<TxnRef>, Vec<LineRef>) = (
        t.iter().map(TxnRef::from).collect(),
        l.iter().map(LineRef::from).collect(),
    );
    let date = BusinessDate::parse(DAY)?;
    let bank = BankId::new("bank_01")?;
    let r = reconcile(&PartitionInput {
        business_date: date,
        bank_id: bank.clone(),
        settlement_currency: Some(usd()),
        transactions: &t,
        lines: &l,
        categories: &f.cats,
        fee_rules: &f.rules,
        tolerances: &f.tol,
        fx: &f.fx,
        calendar: &f.cal,
        awaiting: false,
        manual: &[],
    })?;
    let mut previous = BreakRegistry::default();
    let seen = BusinessDate::parse("2026-11-18")?.date();
    let gone = super::index::break_id(&bank, MismatchType::Amount, "T-GONE");
    previous.open.insert(gone.clone(), seen);
    let persisting = super::index::break_id(&bank, MismatchType::MissingAtBank, "T6");
    previous.open.insert(persisting.clone(), seen);
    let index = PartitionIndex::new(&r, &bank, date, &f.cal, "run-x", &previous);
    // A break whose item is no longer carried stays open (nothing resolved it).
    assert_eq!(
        index.stats.new + index.stats.persisting + 1,
        index.registry.open.len() as u64
    );
    assert_eq!((index.stats.persisting, index.stats.resolved), (1, 0));
    assert!(index.registry.open.contains_key(&gone));
    // The same close repeated from the same registry (a crash before the run was recorded)
    // counts the same and writes the same registry.
    let again = PartitionIndex::new(&r, &bank, date, &f.cal, "run-x", &previous);
    assert_eq!(again.stats, index.stats);
    assert_eq!(again.registry, index.registry);
    // A later close that sees the same breaks: they persist, nothing resolves.
    let next = BusinessDate::from_date(date.date() + chrono::Days::new(1))?;
    let later = PartitionIndex::new(&r, &bank, next, &f.cal, "run-y", &index.registry);
    assert_eq!(
        (
            later.stats.new,
            later.stats.persisting,
            later.stats.resolved
        ),
        (0, index.stats.new + index.stats.persisting, 0)
    );

    let batch = index.batch(&index.rows())?;
    // Read back as rows and written again by the row path: the same columns, value for value.
    let rows = IndexRow::from_batch(&batch)?;
    assert_eq!(IndexRow::to_batch(&rows)?, batch);
    assert_eq!(rows.len(), t.len() + l.len());
    // Through Parquet too, and byte-identical on a second run.
    let bytes = index.parquet(&index.rows())?;
    assert_eq!(read_parquet::<IndexRow>(bytes.clone().into())?, rows);
    assert_eq!(index.parquet(&index.rows())?, bytes);
    assert_ne!(write_parquet(&rows)?.len(), 0);

    let t2 = rows.iter().find(|r| {
        r.transaction_id
            .as_ref()
            .is_some_and(|t| t.as_str() == "T2")
    });
    assert_eq!(
        t2.map(|r| (r.match_rule, r.statement_ids.join("|"), r.amount_posted)),
        Some((MatchRule::OneToMany, "L3|L4".to_string(), Some(dec!(20.00))))
    );
    let line_row = |sid: &str| {
        rows.iter()
            .find(|r| r.row_kind == RowKind::StatementLine && r.statement_ids == [sid])
    };
    let l5 = line_row("L5");
    assert_eq!(
        l5.map(|r| (r.match_rule, r.transaction_ids.join("|"))),
        Some((MatchRule::ManyToOne, "T3|T4".to_string()))
    );
    let t6 = rows.iter().find(|r| {
        r.transaction_id
            .as_ref()
            .is_some_and(|t| t.as_str() == "T6")
    });
    assert_eq!(
        t6.map(|r| (r.break_id.clone(), r.first_seen, r.age_days)),
        Some((Some(persisting), Some(seen), Some(2)))
    );
    // A line of a transaction's break carries the id but does not own the break.
    let l9 = line_row("L9");
    assert!(l9.is_some_and(|r| r.break_id.is_some() && !r.owns_break()));

    let mismatches = IndexRow::from_batch(&index.batch(&index.mismatch_rows())?)?;
    let owning: Vec<IndexRow> = rows.iter().filter(|r| r.owns_break()).cloned().collect();
    assert_eq!(mismatches, owning);
    assert_eq!(mismatches.len() + 1, index.registry.open.len());
    let [by_status, by_rule, by_mismatch] = index.counts();
    assert_eq!(by_status.values().sum::<u64>(), t.len() as u64);
    assert_eq!(by_rule.values().sum::<u64>(), t.len() as u64);
    assert_eq!(by_mismatch.values().sum::<u64>(), mismatches.len() as u64);
    Ok(())
}

#[test]
fn views_read_from_parquet_are_the_records_views() -> Result<()> {
    use super::frame::{LINE_COLUMNS, TXN_COLUMNS, line_refs, read_columns, txn_refs};
    use crate::columnar::write_parquet;

    let (t, l) = mixed_partition()?;
    let tb = read_columns::<Transaction>(write_parquet(&t)?.into(), TXN_COLUMNS)?;
    let lb = read_columns::<StatementLine>(write_parquet(&l)?.into(), LINE_COLUMNS)?;
    assert_eq!(tb.first().map(|b| b.num_columns()), Some(TXN_COLUMNS.len()));
    let want_t: Vec<TxnRef> = t.iter().map(TxnRef::from).collect();
    let want_l: Vec<LineRef> = l.iter().map(LineRef::from).collect();
    // Decimals compare by value: 10.00 read back at scale 4 is still 10.00.
    let day = BusinessDate::parse(DAY)?.date();
    assert_eq!(txn_refs(&tb, day)?, want_t);
    assert_eq!(line_refs(&lb, day)?, want_l);
    // A file without a column the engine needs is a clear error.
    let err = read_columns::<Transaction>(write_parquet(&l)?.into(), TXN_COLUMNS);
    assert!(err.is_err_and(|e| e.to_string().contains("merchant_id")
        || e.to_string().contains("amount")
        || e.to_string().contains("missing")));
    Ok(())
}

#[test]
fn counterparts_take_no_allocation_for_none_or_one() {
    use super::engine::Counterparts;
    assert_eq!(
        std::iter::empty().collect::<Counterparts>(),
        Counterparts::None
    );
    assert_eq!(
        [7].into_iter().collect::<Counterparts>(),
        Counterparts::One(7)
    );
    let many: Counterparts = [3, 1, 2].into_iter().collect();
    assert_eq!(&*many, &[3, 1, 2]);
    assert!(Counterparts::None.is_empty());
}

/// A calendar with a weekend, and the engine's inputs for one close of `day`.
fn close_of<'a>(
    f: &'a Fixture,
    day: &str,
    t: &'a [TxnRef<'a>],
    l: &'a [LineRef<'a>],
    awaiting: bool,
) -> Result<PartitionInput<'a>> {
    Ok(PartitionInput {
        business_date: BusinessDate::parse(day)?,
        bank_id: BankId::new("bank_01")?,
        settlement_currency: Some(usd()),
        transactions: t,
        lines: l,
        categories: &f.cats,
        fee_rules: &f.rules,
        tolerances: &f.tol,
        fx: &f.fx,
        calendar: &f.cal,
        awaiting,
        manual: &[],
    })
}

fn weekday_fixture(window: u32) -> Result<Fixture> {
    let mut f = Fixture::new()?;
    f.tol.settlement_window_days = window;
    f.cal.weekend = vec![chrono::Weekday::Sat, chrono::Weekday::Sun];
    Ok(f)
}

#[test]
fn unsettled_transactions_are_pending_inside_their_window_and_missing_after() -> Result<()> {
    // Captured Friday 2026-11-20, window 2 business days: due by Tuesday the 24th.
    let f = weekday_fixture(2)?;
    let records = [
        txn("T1", "M1", dec!(10.00), "USD", TxnStatus::Approved)?,
        txn("T2", "M1", dec!(10.00), "USD", TxnStatus::Declined)?,
        txn("T3", "M1", dec!(10.00), "USD", TxnStatus::Pending)?,
        txn("T4", "M1", dec!(-4.00), "USD", TxnStatus::Refunded)?,
    ];
    let t: Vec<TxnRef> = records.iter().map(TxnRef::from).collect();
    let status = |day: &str, awaiting: bool| -> Result<Vec<(ReconciledStatus, MismatchType)>> {
        let r = reconcile(&close_of(&f, day, &t, &[], awaiting)?)?;
        Ok(r.txn_outcomes
            .iter()
            .map(|o| (o.status, o.mismatch))
            .collect())
    };
    let pending = (ReconciledStatus::Pending, MismatchType::None);
    let missing = (ReconciledStatus::Unmatched, MismatchType::MissingAtBank);
    let never = (ReconciledStatus::Unmatched, MismatchType::None);
    // Saturday, Sunday and Monday are inside the window; DECLINED and PENDING payments move
    // no money and are never expected, whatever the day.
    for day in ["2026-11-20", "2026-11-22", "2026-11-23"] {
        assert_eq!(
            status(day, false)?,
            [pending, never, never, pending],
            "{day}"
        );
    }
    assert_eq!(
        status("2026-11-24", false)?,
        [missing, never, never, missing]
    );
    // While the bank's statement is awaited, no window runs out.
    assert_eq!(
        status("2026-11-24", true)?,
        [pending, never, never, pending]
    );
    Ok(())
}

#[test]
fn open_items_carried_forward_match_later_and_resolve_their_breaks() -> Result<()> {
    use super::frame::{
        LINE_COLUMNS, OPEN_COLUMNS, TXN_COLUMNS, line_refs, read_columns, txn_refs,
    };
    use super::index::{BreakRegistry, PartitionIndex, RowKind};
    use super::open::{carry_forward, lines_parquet, transactions_parquet};
    use crate::columnar::read_parquet;

    // Window 0: what the day's statement does not pay is a break at once.
    let f = weekday_fixture(0)?;
    let (day1, day2) = ("2026-11-20", "2026-11-23");
    let records = [
        txn("T1", "M1", dec!(10.00), "USD", TxnStatus::Approved)?,
        txn("T2", "M1", dec!(20.00), "USD", TxnStatus::Approved)?,
        txn("T3", "M2", dec!(5.00), "USD", TxnStatus::Declined)?,
    ];
    // A line for a payment the ledger brings only on the next day.
    let early = [line("L1", Some("T9"), Some("M1"), dec!(9.00), dec!(0.19))?];
    let t: Vec<TxnRef> = records.iter().map(TxnRef::from).collect();
    let l: Vec<LineRef> = early.iter().map(LineRef::from).collect();
    let in1 = close_of(&f, day1, &t, &l, false)?;
    let r1 = reconcile(&in1)?;
    let carry = carry_forward(&in1, &r1);
    // T1, T2 missing at the bank and L1 nobody's: all three carried; the declined T3 not.
    assert_eq!((carry.transactions.len(), carry.lines.len()), (2, 1));
    let first = PartitionIndex::new(
        &r1,
        &in1.bank_id,
        in1.business_date,
        &f.cal,
        "run-1",
        &BreakRegistry::default(),
    );
    assert_eq!(first.stats.new, 3);

    // The open items through their Parquet form, as the next close reads them.
    let cols = |base: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(OPEN_COLUMNS).copied().collect()
    };
    let tb = read_columns::<Transaction>(
        transactions_parquet(&r1, &carry.transactions)?.into(),
        &cols(TXN_COLUMNS),
    )?;
    let lb = read_columns::<StatementLine>(
        lines_parquet(&r1, &carry.lines)?.into(),
        &cols(LINE_COLUMNS),
    )?;
    let d2 = BusinessDate::parse(day2)?.date();
    let mut t2 = txn_refs(&tb, d2)?;
    let mut l2 = line_refs(&lb, d2)?;
    let d1 = BusinessDate::parse(day1)?.date();
    assert!(t2.iter().all(|t| {
        t.item_date == d1
            && t.prior
                .is_some_and(|p| p.mismatch == MismatchType::MissingAtBank)
    }));
    // Monday: the ledger brings T9 (late), the statement pays T1 by id and T2 by merchant.
    let mut late = txn("T9", "M1", dec!(9.00), "USD", TxnStatus::Approved)?;
    late.event_time = at(day1)?;
    let fresh_l = [
        line("L2", Some("T1"), Some("M1"), dec!(10.00), dec!(0.20))?,
        line("L3", None, Some("M1"), dec!(20.00), dec!(0.30))?,
    ];
    t2.push(TxnRef {
        item_date: d2,
        ..TxnRef::from(&late)
    });
    l2.extend(fresh_l.iter().map(LineRef::from).map(|mut l| {
        l.item_date = d2;
        l
    }));
    let in2 = close_of(&f, day2, &t2, &l2, false)?;
    let r2 = reconcile(&in2)?;
    let status: Vec<(&str, ReconciledStatus, MatchRule)> = r2
        .transactions
        .iter()
        .zip(&r2.txn_outcomes)
        .map(|(t, o)| (t.transaction_id, o.status, o.rule))
        .collect();
    assert_eq!(
        status,
        [
            ("T1", ReconciledStatus::Matched, MatchRule::ExactId),
            ("T2", ReconciledStatus::Matched, MatchRule::Composite),
            ("T9", ReconciledStatus::Matched, MatchRule::ExactId),
        ]
    );
    assert_eq!(carry_forward(&in2, &r2), Default::default());
    let second = PartitionIndex::new(
        &r2,
        &in2.bank_id,
        in2.business_date,
        &f.cal,
        "run-2",
        &first.registry,
    );
    assert_eq!((second.stats.new, second.stats.resolved), (0, 3));
    assert!(second.registry.open.is_empty());
    let rows: Vec<crate::reconcile::IndexRow> =
        read_parquet(second.parquet(&second.rows())?.into())?;
    // Every carried item's row says which break it resolved, since when, and on which close.
    let t1 = rows.iter().find(|r| {
        r.transaction_id
            .as_ref()
            .is_some_and(|t| t.as_str() == "T1")
    });
    let opened = BusinessDate::parse(day1)?.date();
    assert_eq!(
        t1.map(|r| (r.first_seen, r.age_days, r.resolved_on, r.item_date)),
        Some((Some(opened), Some(1), Some(d2), opened))
    );
    let l1 = rows
        .iter()
        .find(|r| r.row_kind == RowKind::StatementLine && r.statement_ids == ["L1"]);
    assert_eq!(
        l1.map(|r| (r.reconciled_status, r.resolved_on)),
        Some((ReconciledStatus::Matched, Some(d2)))
    );
    assert!(second.mismatch_rows().is_empty());
    Ok(())
}
