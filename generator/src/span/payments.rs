//! The payments of a multi-day world: every calendar day's transactions with their case,
//! settlement lag and ledger date, the refunds of earlier days' payments, and the DECLINED and
//! PENDING transactions of the ledger extract.

use chrono::{Datelike, Days, NaiveDate};
use recon_shared::ids::{BusinessDate, date_to_days};
use recon_shared::money::Currency;
use recon_shared::records::{PaymentMethod, TxnStatus};
use recon_shared::rules::expected_fee;
use recon_shared::{Error, Result};

use super::anomalies::{self, Injected};
use super::{Plan, SpanBuilder};
use crate::day::{Case, Txn, compact, draw_amount};
use crate::rng::Rng;
use crate::world::World;

/// Volume of a weekday in per cent of `--transactions` (Saturday and Sunday are quieter).
fn day_factor(date: NaiveDate) -> usize {
    match date.weekday().num_days_from_monday() {
        5 => 90,
        6 => 75,
        _ => 100,
    }
}

/// `minor` units of `from` in `to`, rounded to `to`'s minor unit.
pub(super) fn convert(
    world: &World,
    minor: i64,
    from: Currency,
    to: Currency,
    date: BusinessDate,
) -> Result<i64> {
    let (converted, _) = world.fx.convert(from.from_minor(minor), from, to, date)?;
    to.to_minor(converted)
}

/// Days back a refund's original payment may be.
const REFUND_DAYS: usize = 7;
/// Days back a chargeback may dispute a payment ("weeks later", within the world).
const CHARGEBACK_DAYS: usize = 21;

impl SpanBuilder<'_> {
    /// The random stream of one part of one date: the same whatever the world's length.
    pub(super) fn rng_for(&self, date: NaiveDate, part: u64) -> Rng {
        let day = date_to_days(date) as u64;
        Rng::new(self.base ^ day.wrapping_mul(0x2545_F491_4F6C_DD1D)).fork(part)
    }

    fn fee(&self, bank: usize, merchant: u32, conv_minor: i64) -> Result<i64> {
        let b = &self.world.banks[bank];
        let fee = expected_fee(
            &self.world.fee_rules,
            &b.id,
            Some(self.world.merchants[merchant as usize].category.as_str()),
            b.currency.from_minor(conv_minor),
            b.currency,
            self.world.date.date(),
        );
        b.currency.to_minor(fee)
    }

    fn pick_merchant(&self, bank: usize, r: &mut Rng) -> u32 {
        let ms = &self.world.bank_merchants[bank];
        ms[r.weighted(&self.world.merchant_weights[bank])
            .min(ms.len() - 1)]
    }

    /// A transaction of `date` with its amount, currency, event time, method and user drawn.
    #[allow(clippy::too_many_arguments)]
    fn txn(
        &self,
        r: &mut Rng,
        id: String,
        bank: usize,
        merchant: u32,
        date: BusinessDate,
        status: TxnStatus,
        case: Case,
        cross_bp: u32,
    ) -> Result<Txn> {
        let w = self.world;
        let settle = w.banks[bank].currency;
        let currency = if r.chance(cross_bp) {
            let others: Vec<Currency> = w
                .currencies
                .iter()
                .copied()
                .filter(|c| *c != settle)
                .collect();
            *r.pick(&others)
        } else {
            settle
        };
        let amount_minor = draw_amount(r, currency).max(1);
        let conv_minor = convert(w, amount_minor, currency, settle, date)?;
        let midnight = date
            .date()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap_or_default();
        let method = match r.below(10) {
            0..=6 => PaymentMethod::Card,
            7 | 8 => PaymentMethod::Wallet,
            _ => PaymentMethod::BankTransfer,
        };
        Ok(Txn {
            id,
            merchant,
            user: r.below(w.users as u64) as u32,
            bank,
            amount_minor,
            currency,
            status,
            event_ms: midnight + r.range(0, 86_399_999),
            method,
            original: None,
            case,
            business_date: date,
            ledger_date: date,
            conv_minor,
            fee_minor: 0,
            lines: Vec::new(),
            truth: None,
        })
    }

    fn push(&mut self, t: Txn, r: &mut Rng) {
        let lag = self.bank_days.lag(t.bank, r);
        self.plans.push(Plan {
            lag,
            seed: r.next_u64(),
        });
        self.day.txns.push(t);
    }

    /// The extra payments of the day's injected surges: exact payments of the bank (1.5 times
    /// its day's), or of the merchant (3 times its day's).
    fn surges(
        &mut self,
        d: NaiveDate,
        per_bank: &[usize],
        per_merchant: &std::collections::HashMap<u32, usize>,
    ) -> Result<()> {
        let date = BusinessDate::from_date(d)?;
        let dc = compact(date);
        let mut r = self.rng_for(d, 10);
        let todo: Vec<(usize, Option<u32>, usize)> = self
            .anomalies
            .iter()
            .filter(|a| a.date == d)
            .filter_map(|a| match (a.what, a.merchant) {
                (Injected::VolumeSurge, _) => Some((a.bank, None, per_bank[a.bank] * 3 / 2)),
                (Injected::MerchantSurge, Some(m)) => Some((
                    a.bank,
                    Some(m),
                    per_merchant.get(&m).copied().unwrap_or(0).max(10) * 3,
                )),
                _ => None,
            })
            .collect();
        let mut n = 0;
        for (bank, merchant, extra) in todo {
            for _ in 0..extra {
                n += 1;
                let m = merchant.unwrap_or_else(|| self.pick_merchant(bank, &mut r));
                let case = if self.world.payout[m as usize] {
                    Case::Batch
                } else {
                    Case::Exact
                };
                let mut t = self.txn(
                    &mut r,
                    format!("TX-{dc}-A{n:08}"),
                    bank,
                    m,
                    date,
                    TxnStatus::Approved,
                    case,
                    0,
                )?;
                t.fee_minor = self.fee(bank, m, t.conv_minor)?;
                self.push(t, &mut r);
            }
        }
        Ok(())
    }

    /// Every date's transactions, in date order (a refund's original comes first).
    pub(super) fn payments(&mut self, dates: &[BusinessDate]) -> Result<()> {
        for (di, date) in dates.iter().enumerate() {
            self.date_start.push(self.day.txns.len());
            self.payments_of(di, *date)?;
        }
        self.date_start.push(self.day.txns.len());
        Ok(())
    }

    fn payments_of(&mut self, di: usize, date: BusinessDate) -> Result<()> {
        let (w, k) = (self.world, self.knobs);
        let d = date.date();
        let dc = compact(date);
        let mut r = self.rng_for(d, 1);
        let n = (self.transactions * day_factor(d) / 100).max(1);
        let share = |bp: u32| n * bp as usize / 10_000;
        let (n_refunds, n_declined, n_pending) =
            (share(k.refund), share(k.declined), share(k.ledger_pending));
        let n_base = n.saturating_sub(n_refunds + n_declined + n_pending).max(1);
        let cases: [(u32, Case); 7] = [
            (k.missing_at_bank, Case::MissingAtBank),
            (k.amount_diff, Case::AmountDiff),
            (k.fee_variance, Case::FeeVariance),
            (k.duplicate_line, Case::DuplicateLine),
            (k.composite, Case::Composite),
            (k.split, Case::Split),
            (k.late_settlement, Case::LateSettlement),
        ];
        let next_day = BusinessDate::from_date(d + Days::new(1))?;
        // Injected anomalies (knob `anomalies`) draw from streams of their own.
        let mut drops = self.rng_for(d, 11);
        let mut per_bank = vec![0usize; w.banks.len()];
        let mut per_merchant: std::collections::HashMap<u32, usize> =
            std::collections::HashMap::new();
        for i in 0..n_base {
            let bank = r.weighted(&w.bank_weights);
            let merchant = self.pick_merchant(bank, &mut r);
            let payout = w.payout[merchant as usize];
            let mut x = r.below(10_000) as u32;
            let mut case = Case::Exact;
            for (bp, c) in cases {
                if x < bp {
                    case = c;
                    break;
                }
                x -= bp;
            }
            if payout {
                case = Case::Batch;
            }
            let cross = if payout { 0 } else { k.cross_currency };
            let id = format!("TX-{dc}-{:09}", i + 1);
            let mut t = self.txn(
                &mut r,
                id,
                bank,
                merchant,
                date,
                TxnStatus::Approved,
                case,
                cross,
            )?;
            if t.case == Case::Split
                && (t.currency != w.banks[bank].currency
                    || t.conv_minor < 2 * (self.tol.amount_minor_units + 1))
            {
                t.case = Case::Exact;
            }
            if matches!(t.case, Case::MissingAtBank | Case::LateSettlement)
                && self.window_spans_missed_day(bank, d)
            {
                t.case = Case::Exact;
            }
            if r.chance(k.ledger_late) && t.case == Case::Exact {
                t.case = Case::LedgerLate;
                t.ledger_date = next_day;
            }
            // A merchant with two acquirers: the merchant file names the next bank, this one
            // settles the payment (by id, the next business day, so within both windows).
            let second = t.case == Case::Exact
                && !payout
                && w.banks.len() > 1
                && r.chance(k.second_acquirer)
                && !self.window_spans_missed_day(bank, d);
            if second {
                t.merchant = w.bank_merchants[(bank + 1) % w.banks.len()][0];
            }
            t.fee_minor = self.fee(bank, t.merchant, t.conv_minor)?;
            let dropped = anomalies::of(&self.anomalies, bank, d)
                .is_some_and(|a| a.what == Injected::VolumeDrop)
                && drops.chance(anomalies::DROP_SHARE);
            if dropped {
                continue;
            }
            per_bank[bank] += 1;
            *per_merchant.entry(t.merchant).or_default() += 1;
            self.push(t, &mut r);
            if second && let Some(p) = self.plans.last_mut() {
                p.lag = p.lag.min(1);
            }
        }
        self.surges(d, &per_bank, &per_merchant)?;
        // Refunds of payments of the days before, at most their amount.
        let from = self.date_start[di.saturating_sub(REFUND_DAYS)];
        let to = self.date_start[di];
        for i in 0..n_refunds {
            if from == to {
                break;
            }
            // Refunds of a second acquirer's payments are left out (their lag could outlast
            // the merchant file's bank window).
            let Some(orig) = self.draw_original(&mut r, from, to, |t| {
                t.status == TxnStatus::Approved && w.merchant_bank[t.merchant as usize] == t.bank
            }) else {
                continue;
            };
            let o = &self.day.txns[orig];
            let (bank, merchant, currency, amount, user, ledger) = (
                o.bank,
                o.merchant,
                o.currency,
                o.amount_minor,
                o.user,
                o.ledger_date,
            );
            let id = format!("TX-{dc}-R{:08}", i + 1);
            let mut t = self.txn(
                &mut r,
                id,
                bank,
                merchant,
                date,
                TxnStatus::Refunded,
                Case::Refund,
                0,
            )?;
            t.currency = currency;
            t.amount_minor = r.range(1, amount.max(1));
            t.conv_minor = convert(w, t.amount_minor, currency, w.banks[bank].currency, date)?;
            t.original = Some(orig as u32);
            t.user = user;
            // A refund never reaches the ledger before its payment.
            t.ledger_date = t.ledger_date.max(ledger);
            self.push(t, &mut r);
        }
        // Declined and pending payments: in the ledger, never expected at the bank.
        for (count, status, tag) in [
            (n_declined, TxnStatus::Declined, 'D'),
            (n_pending, TxnStatus::Pending, 'P'),
        ] {
            for i in 0..count {
                let bank = r.weighted(&w.bank_weights);
                let mut merchant = self.pick_merchant(bank, &mut r);
                if w.payout[merchant as usize] {
                    // Payout merchants' open payments stay what their payouts pay.
                    merchant = w.bank_merchants[bank][0];
                }
                let id = format!("TX-{dc}-{tag}{:08}", i + 1);
                let mut t = self.txn(
                    &mut r,
                    id,
                    bank,
                    merchant,
                    date,
                    status,
                    Case::NotExpected,
                    k.cross_currency,
                )?;
                t.fee_minor = self.fee(bank, merchant, t.conv_minor)?;
                self.push(t, &mut r);
            }
        }
        self.chargebacks(di, date, share(k.chargeback))?;
        if self.day.txns.len() > u32::MAX as usize / 2 {
            return Err(Error::InvalidConfig {
                name: "--transactions".into(),
                reason: "too many transactions over the days".into(),
            });
        }
        Ok(())
    }

    /// A transaction of `from..to` that `ok` accepts, drawn at random (16 tries), for a
    /// refund or chargeback to point at.
    fn draw_original(
        &self,
        r: &mut Rng,
        from: usize,
        to: usize,
        ok: impl Fn(&Txn) -> bool,
    ) -> Option<usize> {
        (0..16)
            .map(|_| from + r.below((to - from) as u64) as usize)
            .find(|o| ok(&self.day.txns[*o]))
    }

    /// Chargebacks of `date`: disputes of payments of up to [`CHARGEBACK_DAYS`] days before,
    /// each a CHARGEBACK transaction of the ledger (its own id, the payment as its original,
    /// the whole amount) that the bank books as a negative CHARGEBACK line naming it, after
    /// its lag. Payout merchants' payments and a second acquirer's are not disputed here.
    fn chargebacks(&mut self, di: usize, date: BusinessDate, n: usize) -> Result<()> {
        let w = self.world;
        let (from, to) = (
            self.date_start[di.saturating_sub(CHARGEBACK_DAYS)],
            self.date_start[di],
        );
        // Its own stream: the days' other draws stay as they were without chargebacks.
        let mut r = self.rng_for(date.date(), 7);
        let dc = compact(date);
        for i in 0..n {
            if from == to {
                break;
            }
            let Some(orig) = self.draw_original(&mut r, from, to, |t| {
                t.status == TxnStatus::Approved
                    && t.original.is_none()
                    && !w.payout[t.merchant as usize]
                    && w.merchant_bank[t.merchant as usize] == t.bank
            }) else {
                continue;
            };
            let o = &self.day.txns[orig];
            let (bank, merchant, currency, amount, user) =
                (o.bank, o.merchant, o.currency, o.amount_minor, o.user);
            let id = format!("TX-{dc}-C{:08}", i + 1);
            let mut t = self.txn(
                &mut r,
                id,
                bank,
                merchant,
                date,
                TxnStatus::Chargeback,
                Case::Chargeback,
                0,
            )?;
            t.currency = currency;
            t.amount_minor = amount;
            t.conv_minor = convert(w, amount, currency, w.banks[bank].currency, date)?;
            t.original = Some(orig as u32);
            t.user = user;
            t.fee_minor = self.fee(bank, merchant, t.conv_minor)?;
            self.push(t, &mut r);
        }
        Ok(())
    }

    /// Whether a payment of `date` to `bank` could be due while the bank misses a delivery:
    /// its window (and the business day after it) reaches the missed day or the day after.
    /// Whether its window then runs on is for the engine to say, so such a payment is never
    /// left unsettled or settled late.
    fn window_spans_missed_day(&self, bank: usize, date: NaiveDate) -> bool {
        let Some((b, missed)) = self.bank_days.missed else {
            return false;
        };
        let due = self.bank_days.expected_by(bank, date);
        b == bank
            && date <= missed + Days::new(1)
            && self.bank_days.add_business_days(bank, due, 1) >= missed
    }
}
