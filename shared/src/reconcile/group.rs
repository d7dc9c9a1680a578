//! The many-to-one group search: which 2..=`max_size` of a merchant's unmatched transactions
//! a payout line pays.
//!
//! A meet-in-the-middle over the pool: every sub-sum of 1..=⌈max_size/2⌉ members is tabled
//! once, sorted by amount, and a group is a pair of table entries — its first ⌊k/2⌋ members
//! (by pool position) and the rest — whose amounts and fees add up. The search is complete
//! over the pool: it finds every fitting group, not the first one a bounded depth-first walk
//! happens to reach, so a payout whose members are anywhere in the pool is found, and two
//! groups fitting one payout are seen as two. The work is bounded by the table's size
//! ([`MAX_HALF_SUMS`]): a larger pool is cut to its first [`pool_limit`] members.

use std::cmp::Reverse;

/// Most sub-sums one table may hold: bounds the memory and the work per merchant and line.
pub const MAX_HALF_SUMS: usize = 300_000;

/// Most members a table can index (a group is a bit set of pool positions).
pub const MAX_POOL: usize = 128;

/// Most fitting groups one search collects before choosing among them.
const MAX_FITS: usize = 64;

/// How many of `wanted` pool members a search with groups of up to `max_size` covers: at most
/// [`MAX_POOL`], and no more than keep the table within [`MAX_HALF_SUMS`] sub-sums.
pub fn pool_limit(wanted: usize, max_size: usize) -> usize {
    let half = max_size.div_ceil(2);
    let mut n = wanted.min(MAX_POOL);
    while n > 0 && half_sums(n, half) > MAX_HALF_SUMS {
        n -= 1;
    }
    n
}

/// Σ C(n, k) for k in 1..=half (saturating).
fn half_sums(n: usize, half: usize) -> usize {
    let (mut total, mut c) = (0usize, 1usize);
    for k in 1..=half.min(n) {
        c = c.saturating_mul(n + 1 - k) / k;
        total = total.saturating_add(c);
    }
    total
}

/// One tabled sub-sum: its members as bits of pool positions, and the lowest and highest.
#[derive(Debug, Clone, Copy)]
struct Half {
    amount: i64,
    fee: i64,
    members: u128,
    first: u8,
    last: u8,
}

/// The sub-sum tables of one pool of `(amount, fee)` items, in minor units.
#[derive(Debug)]
pub struct GroupSearch {
    max_size: usize,
    len: usize,
    /// `halves[s - 1]`: every sub-sum of `s` members, sorted by amount.
    halves: Vec<Vec<Half>>,
    /// Bounds for a quick refusal: the two smallest amounts and fees, the largest
    /// `max_size` amounts.
    least_two: (i64, i64),
    most: i64,
}

impl GroupSearch {
    /// Tables the first [`pool_limit`] items (positive amounts) for groups of 2..=`max_size`.
    pub fn new(items: &[(i64, i64)], max_size: usize) -> Self {
        let items = &items[..pool_limit(items.len(), max_size)];
        let half = max_size.div_ceil(2);
        let mut halves: Vec<Vec<Half>> = vec![Vec::new(); half];
        let mut stack: Vec<usize> = Vec::with_capacity(half);
        // Depth-first over ascending position lists of up to `half` members.
        fn walk(
            items: &[(i64, i64)],
            start: usize,
            sum: (i64, i64),
            members: u128,
            stack: &mut Vec<usize>,
            halves: &mut [Vec<Half>],
        ) {
            for i in start..items.len() {
                let s = (sum.0 + items[i].0, sum.1 + items[i].1);
                let m = members | 1u128 << i;
                stack.push(i);
                halves[stack.len() - 1].push(Half {
                    amount: s.0,
                    fee: s.1,
                    members: m,
                    first: stack[0] as u8,
                    last: i as u8,
                });
                if stack.len() < halves.len() {
                    walk(items, i + 1, s, m, stack, halves);
                }
                stack.pop();
            }
        }
        if half > 0 {
            walk(items, 0, (0, 0), 0, &mut stack, &mut halves);
        }
        for h in &mut halves {
            h.sort_unstable_by_key(|x| (x.amount, x.fee, x.members));
        }
        let mut amounts: Vec<i64> = items.iter().map(|i| i.0).collect();
        amounts.sort_unstable();
        let mut fees: Vec<i64> = items.iter().map(|i| i.1).collect();
        fees.sort_unstable();
        let least_two = if items.len() >= 2 {
            (amounts[0] + amounts[1], fees[0] + fees[1])
        } else {
            (i64::MAX, i64::MAX)
        };
        let most = amounts.iter().rev().take(max_size).sum();
        GroupSearch {
            max_size,
            len: items.len(),
            halves,
            least_two,
            most,
        }
    }

    /// How many items the tables cover (the first ones given).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tables cover no item.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Groups of 2..=`max_size` members, none in `excluded`, whose amounts add up to
    /// `target.0` within `tol.0` and whose fees to `target.1` within `tol.1`: at most
    /// `limit` of them, each a bit set of pool positions, in a fixed order.
    pub fn fits(
        &self,
        target: (i64, i64),
        tol: (i64, i64),
        excluded: u128,
        limit: usize,
    ) -> Vec<u128> {
        let mut out = Vec::new();
        if limit == 0
            || self.len < 2
            || self.max_size < 2
            || target.0 + tol.0 < self.least_two.0
            || target.1 + tol.1 < self.least_two.1
            || target.0 - tol.0 > self.most
        {
            return out;
        }
        let half = self.halves.len();
        // A group of k members is its first a = ⌊k/2⌋ (table `a`) and its last b = k - a
        // (table `b`, b ∈ {a, a+1}), every one of the first before every one of the last:
        // each group is seen exactly once.
        for a in 1..=self.max_size / 2 {
            for b in [a, a + 1] {
                if b > half || a + b > self.max_size {
                    continue;
                }
                let lasts = &self.halves[b - 1];
                for x in &self.halves[a - 1] {
                    if x.members & excluded != 0 {
                        continue;
                    }
                    let lo = target.0 - tol.0 - x.amount;
                    let hi = target.0 + tol.0 - x.amount;
                    let from = lasts.partition_point(|y| y.amount < lo);
                    for y in lasts[from..].iter().take_while(|y| y.amount <= hi) {
                        if y.first > x.last
                            && y.members & excluded == 0
                            && (x.fee + y.fee - target.1).abs() <= tol.1
                        {
                            out.push(x.members | y.members);
                            if out.len() >= limit {
                                return out;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The best group for a payout, if any: the closest amount, then fee, then the fewest
    /// members, then the earliest in the pool (the pool is in event-time order, so the oldest
    /// unpaid payments go first). Chosen among the first fits found, so bounded.
    pub fn best(
        &self,
        items: &[(i64, i64)],
        target: (i64, i64),
        tol: (i64, i64),
        excluded: u128,
    ) -> Option<u128> {
        self.fits(target, tol, excluded, MAX_FITS)
            .into_iter()
            .min_by_key(|m| {
                let (amount, fee) =
                    members(*m).fold((0, 0), |s, i| (s.0 + items[i].0, s.1 + items[i].1));
                (
                    (amount - target.0).abs(),
                    (fee - target.1).abs(),
                    m.count_ones(),
                    // The lowest differing position set = the earlier list of positions.
                    Reverse(m.reverse_bits()),
                )
            })
    }
}

/// The pool positions of a group, ascending.
pub fn members(group: u128) -> impl Iterator<Item = usize> {
    (0..MAX_POOL).filter(move |i| group >> i & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(m: u128) -> Vec<usize> {
        members(m).collect()
    }

    #[test]
    fn every_fitting_group_is_found_once_and_the_best_chosen() {
        let items = [(500, 5), (300, 3), (200, 2), (100, 1)];
        let s = GroupSearch::new(&items, 6);
        let mut all: Vec<Vec<usize>> = s
            .fits((600, 6), (0, 0), 0, 10)
            .into_iter()
            .map(list)
            .collect();
        all.sort();
        assert_eq!(
            all,
            vec![vec![0, 3], vec![1, 2, 3]],
            "500+100 and 300+200+100"
        );
        assert_eq!(
            s.best(&items, (600, 6), (0, 0), 0).map(list),
            Some(vec![0, 3]),
            "fewer members first"
        );
        assert_eq!(
            s.best(&items, (1100, 11), (0, 0), 0).map(list),
            Some(vec![0, 1, 2, 3])
        );
        assert_eq!(
            GroupSearch::new(&items, 3).best(&items, (1100, 11), (0, 0), 0),
            None
        );
        assert_eq!(
            s.best(&items, (500, 5), (0, 0), 1 << 1 | 1 << 2).map(list),
            None,
            "300 and 200 are taken; a single member is not a group"
        );
        assert_eq!(
            GroupSearch::new(&[(500, 5), (300, 3), (201, 2)], 6)
                .best(&[(500, 5), (300, 3), (201, 2)], (801, 8), (1, 0), 0)
                .map(list),
            Some(vec![0, 1]),
            "the exact amount before the one within tolerance"
        );
        assert!(
            s.fits((600, 0), (0, 0), 0, 10).is_empty(),
            "fees must add up"
        );
        let many: Vec<(i64, i64)> = (0..40).map(|i| (1_000_003 + i * 7, 1)).collect();
        assert!(
            GroupSearch::new(&many, 6)
                .fits((1, 0), (0, 0), 0, 1)
                .is_empty()
        );
    }

    #[test]
    fn a_group_anywhere_in_a_large_pool_is_found_and_ties_go_to_the_earliest() {
        // 100 candidates with distinct, unrelated amounts; the payout is members 3, 57, 98.
        let items: Vec<(i64, i64)> = (0..100i64)
            .map(|i| (10_000 + i * 1_009 + i * i * 13, 30 + i))
            .collect();
        let target = [3, 57, 98]
            .iter()
            .fold((0, 0), |s, i| (s.0 + items[*i].0, s.1 + items[*i].1));
        let s = GroupSearch::new(&items, 6);
        assert_eq!(s.len(), 100);
        let fits = s.fits(target, (0, 0), 0, 10);
        assert_eq!(
            fits.iter().map(|m| list(*m)).collect::<Vec<_>>(),
            vec![vec![3, 57, 98]]
        );
        // Two equal pools side by side: the earlier copy wins.
        let twice = [(100, 1), (200, 2), (100, 1), (200, 2)];
        let s = GroupSearch::new(&twice, 6);
        assert_eq!(s.fits((300, 3), (0, 0), 0, 10).len(), 4);
        assert_eq!(
            s.best(&twice, (300, 3), (0, 0), 0).map(list),
            Some(vec![0, 1])
        );
    }

    #[test]
    fn the_table_stays_bounded() {
        assert_eq!(pool_limit(24, 6), 24);
        assert_eq!(
            pool_limit(1000, 6),
            121,
            "C(121,1..=3) is the last within the bound"
        );
        assert!(half_sums(pool_limit(1000, 6), 3) <= MAX_HALF_SUMS);
        assert!(half_sums(pool_limit(1000, 10), 5) <= MAX_HALF_SUMS);
        assert_eq!(pool_limit(1000, 2), MAX_POOL);
        let big: Vec<(i64, i64)> = (0..500).map(|i| (100 + i, 1)).collect();
        assert_eq!(GroupSearch::new(&big, 6).len(), 121);
    }
}
