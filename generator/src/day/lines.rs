//! The statement lines of a generated day: one or more per transaction by its case, the
//! orphans, the late file, the declined payments the stream alone sees, and their numbering.

use std::collections::BTreeMap;

use recon_shared::Result;
use recon_shared::ids::BusinessDate;
use recon_shared::reconcile::group::{GroupSearch, pool_limit};
use recon_shared::records::{RecordType, TxnStatus};

use super::{Builder, Case, Line, Txn, compact, draw_amount};

/// A merchant's payout candidates and the engine's group search over them.
struct GroupPool {
    search: GroupSearch,
    members: Vec<usize>,
}

impl GroupPool {
    /// Whether `group` is the only set of candidates whose amounts and fees add up to its
    /// payout exactly: otherwise the payout is ambiguous and no engine could tell which.
    fn unique(&self, txns: &[Txn], group: &[usize]) -> bool {
        let target = group.iter().fold((0, 0), |s, t| {
            (s.0 + txns[*t].conv_minor, s.1 + txns[*t].fee_minor)
        });
        let fits = self.search.fits(target, (0, 0), 0, 2);
        let own = group
            .iter()
            .filter_map(|t| self.members.iter().position(|m| m == t))
            .fold(0u128, |m, i| m | 1 << i);
        fits == [own]
    }
}

impl Builder<'_> {
    fn push_line(&mut self, line: Line) -> u32 {
        let idx = self.day.lines.len() as u32;
        for o in &line.owners {
            self.day.txns[*o as usize].lines.push(idx);
        }
        self.day.lines.push(line);
        idx
    }

    fn line_for(
        &mut self,
        t: usize,
        amount_minor: i64,
        fee_minor: i64,
        record_type: RecordType,
        with_id: bool,
        case: Case,
    ) -> Result<Line> {
        let tx = &self.day.txns[t];
        let bank = &self.world.banks[tx.bank];
        let sign = if matches!(record_type, RecordType::Refund | RecordType::Chargeback) {
            -1
        } else {
            1
        };
        let mut original = None;
        let mut canonical = sign * amount_minor;
        if tx.currency != bank.currency
            && bank.style.posts_original_currency()
            && !matches!(case, Case::Split)
        {
            // The bank sends the transaction currency; the normalizer converts it.
            let orig_minor = if amount_minor == tx.conv_minor {
                tx.amount_minor
            } else {
                // Posted amount differs: express it in the original currency.
                self.convert(amount_minor, bank.currency, tx.currency, tx.business_date)?
            };
            canonical = self.convert(
                sign * orig_minor,
                tx.currency,
                bank.currency,
                tx.business_date,
            )?;
            original = Some((sign * orig_minor, tx.currency));
        }
        let reference = match record_type {
            RecordType::Refund => format!("REFUND {}", tx.id),
            RecordType::Chargeback => format!("CHARGEBACK {}", tx.id),
            _ if self.rng.chance(500) => format!(
                "INV {}, ORDER {}",
                self.rng.range(1000, 99999),
                self.rng.range(10, 99)
            ),
            _ => format!("CARD SETTLEMENT {}", self.rng.range(100_000, 999_999)),
        };
        Ok(Line {
            bank: tx.bank,
            business_date: tx.business_date,
            posting_date: tx.business_date,
            seq: 0,
            statement_id: String::new(),
            txn_ref: with_id.then(|| tx.id.clone()),
            merchant: Some(tx.merchant),
            amount_minor: canonical,
            fee_minor,
            record_type,
            reference,
            original,
            dup_record: self.rng.chance(self.knobs.exact_duplicate_record),
            case,
            owners: vec![t as u32],
            truth: None,
            posted_secs: self.rng.range(8 * 3600, 20 * 3600) as u32,
        })
    }

    pub(super) fn make_lines(&mut self) -> Result<()> {
        let mut batches: BTreeMap<(usize, u32), Vec<usize>> = BTreeMap::new();
        for t in 0..self.day.txns.len() {
            let (case, conv, fee) = {
                let x = &self.day.txns[t];
                (x.case, x.conv_minor, x.fee_minor)
            };
            match case {
                Case::MissingAtBank => {}
                Case::Exact | Case::LateFile => {
                    let l = self.line_for(t, conv, fee, RecordType::Settlement, true, case)?;
                    self.push_line(l);
                }
                Case::Composite => {
                    let mut l = self.line_for(t, conv, fee, RecordType::Settlement, false, case)?;
                    l.reference = format!("POS {}", self.rng.range(100_000, 999_999));
                    self.push_line(l);
                }
                Case::AmountDiff => {
                    let tol = self.day.tolerances.amount_minor_units;
                    let mut delta = (conv / 20).max(2 * tol + 1);
                    let mut l;
                    loop {
                        let posted = (conv - delta).max(0);
                        l = self.line_for(t, posted, fee, RecordType::Settlement, true, case)?;
                        if (l.amount_minor - conv).abs() > tol || delta >= conv {
                            break;
                        }
                        delta *= 2;
                    }
                    self.push_line(l);
                }
                Case::FeeVariance => {
                    let tol = self.day.tolerances.fee_minor_units;
                    let delta = self.rng.range(tol + 1, tol + 60);
                    let charged = if fee > delta && self.rng.chance(5000) {
                        fee - delta
                    } else {
                        fee + delta
                    };
                    let l = self.line_for(t, conv, charged, RecordType::Settlement, true, case)?;
                    self.push_line(l);
                }
                Case::DuplicateLine => {
                    for _ in 0..2 {
                        let l = self.line_for(t, conv, fee, RecordType::Settlement, true, case)?;
                        self.push_line(l);
                    }
                }
                Case::Split => {
                    let parts = (self.rng.range(2, 4)).min(conv);
                    let mut left = conv;
                    for p in 0..parts {
                        let amount = if p == parts - 1 {
                            left
                        } else {
                            self.rng.range(1, left - (parts - p - 1))
                        };
                        left -= amount;
                        let mut l = self.line_for(
                            t,
                            amount,
                            if p == 0 { fee } else { 0 },
                            RecordType::Settlement,
                            true,
                            case,
                        )?;
                        l.reference = format!("PARTIAL {}/{parts}", p + 1);
                        self.push_line(l);
                    }
                }
                Case::Batch => {
                    let x = &self.day.txns[t];
                    batches.entry((x.bank, x.merchant)).or_default().push(t);
                }
                Case::Chargeback => {
                    let l = self.line_for(t, conv, fee, RecordType::Settlement, true, case)?;
                    self.push_line(l);
                    let l = self.line_for(t, conv, 0, RecordType::Chargeback, true, case)?;
                    self.push_line(l);
                }
                Case::Refund => {
                    let l = self.line_for(t, conv, 0, RecordType::Refund, true, case)?;
                    self.push_line(l);
                }
                // Cases of the multi-day world only (`crate::span`).
                Case::OrphanNoId
                | Case::OrphanUnknownId
                | Case::LedgerLate
                | Case::LateSettlement
                | Case::NotExpected => {}
            }
        }
        // Batched payouts: groups of 2..=5 of one merchant's batch transactions.
        let map = self.candidates();
        for ((bank, merchant), members) in batches {
            let pool = self.group_pool(bank, merchant);
            let mut rest = members.as_slice();
            while !rest.is_empty() {
                let size = (self.rng.range(2, 5) as usize).min(rest.len());
                let (group, tail) = rest.split_at(size);
                rest = tail;
                let total: i64 = group.iter().map(|t| self.day.txns[*t].conv_minor).sum();
                let fees: i64 = group.iter().map(|t| self.day.txns[*t].fee_minor).sum();
                if group.len() < 2
                    || self.collides(&map, (bank, merchant), total, false)
                    || !pool
                        .as_ref()
                        .is_some_and(|p| p.unique(&self.day.txns, group))
                {
                    for t in group {
                        self.day.txns[*t].case = Case::Exact;
                        let (conv, fee) =
                            (self.day.txns[*t].conv_minor, self.day.txns[*t].fee_minor);
                        let l = self.line_for(
                            *t,
                            conv,
                            fee,
                            RecordType::Settlement,
                            true,
                            Case::Exact,
                        )?;
                        self.push_line(l);
                    }
                    continue;
                }
                let mut l = self.line_for(
                    group[0],
                    total,
                    fees,
                    RecordType::Settlement,
                    false,
                    Case::Batch,
                )?;
                l.owners = group.iter().map(|t| *t as u32).collect();
                l.original = None;
                l.amount_minor = total;
                l.reference = format!("PAYOUT {} TXNS", group.len());
                self.push_line(l);
            }
        }
        Ok(())
    }

    /// The many-to-one search over what the engine could take for a payout of `merchant`: every
    /// candidate transaction (missing at the bank, composite, batch) of its bank and day. None
    /// when they are more than one search covers, as the engine would not see them all.
    fn group_pool(&self, bank: usize, merchant: u32) -> Option<GroupPool> {
        let tol = &self.day.tolerances;
        let members: Vec<usize> = (0..self.day.txns.len())
            .filter(|t| {
                let x = &self.day.txns[*t];
                x.bank == bank
                    && x.merchant == merchant
                    && x.business_date == self.world.date
                    && matches!(x.case, Case::MissingAtBank | Case::Composite | Case::Batch)
            })
            .collect();
        if members.len() > pool_limit(tol.max_group_candidates, tol.max_group_size) {
            return None;
        }
        let items: Vec<(i64, i64)> = members
            .iter()
            .map(|t| (self.day.txns[*t].conv_minor, self.day.txns[*t].fee_minor))
            .collect();
        Some(GroupPool {
            search: GroupSearch::new(&items, tol.max_group_size),
            members,
        })
    }

    /// Lines with no transaction behind them, so that about `line_match` of lines match.
    pub(super) fn make_orphans(&mut self) -> Result<()> {
        let matched = self.day.lines.len() as u64;
        let share = u64::from(self.knobs.line_match);
        let orphans = (matched * (10_000 - share) / share) as usize;
        let map = self.candidates();
        let dc = compact(self.world.date);
        for i in 0..orphans {
            let bank = self.rng.weighted(&self.world.bank_weights);
            let currency = self.world.banks[bank].currency;
            let merchant = self.pick_merchant(bank);
            let unknown_id = self.rng.chance(5000);
            let mut amount = draw_amount(&mut self.rng, currency).max(1);
            while !unknown_id && self.collides(&map, (bank, merchant), amount, false) {
                amount += 7 * self.day.tolerances.amount_minor_units + 1;
            }
            let record_type = if self.rng.chance(300) {
                RecordType::Adjustment
            } else {
                RecordType::Settlement
            };
            let line = Line {
                bank,
                business_date: self.world.date,
                posting_date: self.world.date,
                seq: 0,
                statement_id: String::new(),
                txn_ref: unknown_id.then(|| format!("TX-{dc}-X{:08}", i + 1)),
                merchant: (!unknown_id || self.rng.chance(5000)).then_some(merchant),
                amount_minor: amount,
                fee_minor: 0,
                record_type,
                reference: format!("UNALLOCATED {}", self.rng.range(10_000, 99_999)),
                original: None,
                dup_record: false,
                case: if unknown_id {
                    Case::OrphanUnknownId
                } else {
                    Case::OrphanNoId
                },
                owners: Vec::new(),
                truth: None,
                posted_secs: self.rng.range(8 * 3600, 20 * 3600) as u32,
            };
            self.push_line(line);
        }
        Ok(())
    }

    /// A small file for the previous business day that arrived after its close.
    pub(super) fn make_late_file(&mut self) -> Result<()> {
        let prev = self.world.date.pred()?;
        let n = (self.day.txns.len() * self.knobs.late_file as usize / 10_000).max(3);
        let dc = compact(prev);
        for i in 0..n {
            let merchant = self.pick_merchant(0);
            let mut t = self.new_txn(
                format!("TX-{dc}-L{:08}", i + 1),
                0,
                merchant,
                prev,
                TxnStatus::Approved,
                Case::LateFile,
                0,
            )?;
            t.fee_minor = self.fee(0, merchant, t.conv_minor)?;
            let (conv, fee) = (t.conv_minor, t.fee_minor);
            self.day.txns.push(t);
            let idx = self.day.txns.len() - 1;
            let l = self.line_for(idx, conv, fee, RecordType::Settlement, true, Case::LateFile)?;
            self.push_line(l);
        }
        Ok(())
    }

    pub(super) fn make_declined(&mut self) -> Result<()> {
        let n = self.day.txns.len() * self.knobs.declined as usize / 10_000;
        let dc = compact(self.world.date);
        for i in 0..n {
            let bank = self.rng.weighted(&self.world.bank_weights);
            let merchant = self.pick_merchant(bank);
            let t = self.new_txn(
                format!("TX-{dc}-D{:08}", i + 1),
                bank,
                merchant,
                self.world.date,
                TxnStatus::Declined,
                Case::Exact,
                0,
            )?;
            self.day.declined.push(t);
        }
        Ok(())
    }

    /// Shuffles each bank's lines and numbers them: statement ids in file order.
    pub(super) fn number_lines(&mut self) {
        let mut per_bank: BTreeMap<(BusinessDate, usize), Vec<u32>> = BTreeMap::new();
        for (i, l) in self.day.lines.iter().enumerate() {
            per_bank
                .entry((l.business_date, l.bank))
                .or_default()
                .push(i as u32);
        }
        for ((date, bank), mut idx) in per_bank {
            for i in (1..idx.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                idx.swap(i, j);
            }
            let prefix = format!("{}-{}", self.world.banks[bank].id, compact(date));
            for (seq, i) in idx.into_iter().enumerate() {
                let l = &mut self.day.lines[i as usize];
                l.seq = seq as u32 + 1;
                l.statement_id = format!("{prefix}-{:08}", seq + 1);
            }
        }
    }
}
