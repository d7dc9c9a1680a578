//! The one correct outcome of every generated transaction and line (`truth/`), decided from
//! the case each was built as.

use recon_shared::records::{MatchRule, MismatchType, ReconciledStatus, RecordType};

use super::{Case, Day, Line, Truth};
use crate::world::World;

/// Sets the truth of every transaction and line of `day` from its case: the outcome of the
/// match its lines make (the multi-day world decides at which close it happens).
pub(crate) fn assign_truth(world: &World, day: &mut Day) {
    let matched = |rule, counterparts, discrepancy| Truth {
        status: ReconciledStatus::Matched,
        mismatch: MismatchType::None,
        rule,
        counterparts,
        discrepancy: Some(discrepancy),
        fee_variance: Some(0),
    };
    for (ti, t) in day.txns.iter_mut().enumerate() {
        let lines: Vec<&Line> = t.lines.iter().map(|l| &day.lines[*l as usize]).collect();
        let sum: i64 = lines.iter().map(|l| l.amount_minor).sum();
        let fees: i64 = lines.iter().map(|l| l.fee_minor).sum();
        let signed = if t.case == Case::Refund {
            -t.conv_minor
        } else {
            t.conv_minor
        };
        let (truth, line_truth): (Truth, Vec<(u32, Truth)>) = match t.case {
            // Settled after the last day of a multi-day world: no line, nothing matched.
            _ if t.lines.is_empty() && t.case != Case::NotExpected => {
                (Truth::unmatched(MismatchType::MissingAtBank), vec![])
            }
            Case::MissingAtBank => (Truth::unmatched(MismatchType::MissingAtBank), vec![]),
            Case::NotExpected => (Truth::unmatched(MismatchType::None), vec![]),
            Case::Exact
            | Case::LateFile
            | Case::LedgerLate
            | Case::LateSettlement
            | Case::Refund
            | Case::Composite
            | Case::Split => {
                let rule = match t.case {
                    Case::Composite => MatchRule::Composite,
                    Case::Split => MatchRule::OneToMany,
                    _ => MatchRule::ExactId,
                };
                let truth = matched(rule, t.lines.clone(), sum - signed);
                mirrored(truth, &t.lines, ti)
            }
            Case::AmountDiff => {
                let mismatch = if t.currency == world.banks[t.bank].currency {
                    MismatchType::Amount
                } else {
                    MismatchType::Currency
                };
                let truth = Truth {
                    status: ReconciledStatus::PartialMatch,
                    mismatch,
                    rule: MatchRule::ExactId,
                    counterparts: t.lines.clone(),
                    discrepancy: Some(sum - signed),
                    fee_variance: Some(fees - t.fee_minor),
                };
                mirrored(truth, &t.lines, ti)
            }
            Case::FeeVariance => {
                let truth = Truth {
                    status: ReconciledStatus::Matched,
                    mismatch: MismatchType::Fee,
                    rule: MatchRule::ExactId,
                    counterparts: t.lines.clone(),
                    discrepancy: Some(0),
                    fee_variance: Some(fees - t.fee_minor),
                };
                mirrored(truth, &t.lines, ti)
            }
            Case::DuplicateLine => {
                let mut ls = t.lines.clone();
                ls.sort_by_key(|l| day.lines[*l as usize].seq);
                let first = ls[0];
                let truth = matched(MatchRule::ExactId, vec![first], 0);
                let mut lt = vec![(first, matched(MatchRule::ExactId, vec![ti as u32], 0))];
                for dup in &ls[1..] {
                    lt.push((
                        *dup,
                        Truth {
                            status: ReconciledStatus::Duplicate,
                            mismatch: MismatchType::Duplicate,
                            rule: MatchRule::ExactId,
                            counterparts: vec![ti as u32],
                            discrepancy: None,
                            fee_variance: None,
                        },
                    ));
                }
                (truth, lt)
            }
            Case::Batch => {
                // The line's truth is set once, below, from all its owners.
                (matched(MatchRule::ManyToOne, t.lines.clone(), 0), vec![])
            }
            Case::Chargeback => {
                // Settlement lines book +amount, chargeback lines -amount.
                let booked: i64 = lines
                    .iter()
                    .map(|l| match l.record_type {
                        RecordType::Chargeback => -t.conv_minor,
                        _ => t.conv_minor,
                    })
                    .sum();
                let truth = Truth {
                    status: ReconciledStatus::Disputed,
                    mismatch: MismatchType::Chargeback,
                    rule: MatchRule::ExactId,
                    counterparts: t.lines.clone(),
                    discrepancy: Some(sum - booked),
                    fee_variance: Some(fees - t.fee_minor),
                };
                mirrored(truth, &t.lines, ti)
            }
            Case::OrphanNoId | Case::OrphanUnknownId => {
                (Truth::unmatched(MismatchType::MissingAtBank), vec![])
            }
        };
        t.truth = Some(truth);
        for (l, lt) in line_truth {
            day.lines[l as usize].truth = Some(lt);
        }
    }
    for l in &mut day.lines {
        match l.case {
            Case::OrphanNoId | Case::OrphanUnknownId => {
                l.truth = Some(Truth::unmatched(MismatchType::MissingInternal))
            }
            Case::Batch => {
                let expected: i64 = l
                    .owners
                    .iter()
                    .map(|o| day.txns[*o as usize].conv_minor)
                    .sum();
                l.truth = Some(matched(
                    MatchRule::ManyToOne,
                    l.owners.clone(),
                    l.amount_minor - expected,
                ));
            }
            _ => {}
        }
    }
}

/// A transaction's truth and, for each of its `lines`, the same truth seen from the line: its
/// counterpart is the transaction `ti`.
fn mirrored(truth: Truth, lines: &[u32], ti: usize) -> (Truth, Vec<(u32, Truth)>) {
    let seen_from_line = lines
        .iter()
        .map(|l| {
            (
                *l,
                Truth {
                    counterparts: vec![ti as u32],
                    ..truth.clone()
                },
            )
        })
        .collect();
    (truth, seen_from_line)
}
