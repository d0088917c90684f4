//! RFM (recency, frequency, monetary value; "RFV" in some club literature) per member as of
//! a date, scored 1-5 with SQL's `NTILE(5)` semantics, and the R x F grid of named segments.
//!
//! Definitions (`docs/ANALYTICS.md`): `recency_days` = as-of date − last purchase date;
//! `frequency` = number of purchases; `monetary` = their total, in integer minor units so
//! sums and ties are exact. Each score sorts the members, worst first, with member id
//! ascending as the tie-breaker, and cuts the order into 5 buckets whose sizes differ by at
//! most one (the first `n mod 5` one larger): R by recency descending, F by frequency
//! ascending, M by monetary ascending. 5 is best on every axis.

use crate::date::Day;

/// The number of score buckets.
pub const SCORE_BUCKETS: usize = 5;

/// What one member did up to the as-of date, accumulated purchase by purchase.
///
/// 24 bytes, so a map of millions of members stays small in the cache: the total is kept
/// as a wrapping `i64` plus a count of wraps, which together are the exact `i128` sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmTotals {
    last: Day,
    /// How many times `amount_low` wrapped past ±2⁶³ (signed).
    amount_carry: i32,
    purchases: u64,
    amount_low: i64,
}

impl Default for RfmTotals {
    fn default() -> Self {
        RfmTotals {
            last: Day(i32::MIN),
            amount_carry: 0,
            purchases: 0,
            amount_low: 0,
        }
    }
}

impl RfmTotals {
    /// Totals with these values (for tests and for totals kept elsewhere).
    pub fn new(last: Day, purchases: u64, amount_minor: i128) -> RfmTotals {
        // The low 64 bits, reinterpreted as signed, plus whole multiples of 2^64.
        let low = amount_minor as i64;
        let carry = ((amount_minor - i128::from(low)) >> 64) as i32;
        RfmTotals {
            last,
            amount_carry: carry,
            purchases,
            amount_low: low,
        }
    }

    /// The latest purchase day seen (`Day(i32::MIN)` before the first).
    pub fn last(&self) -> Day {
        self.last
    }

    /// Purchases seen.
    pub fn purchases(&self) -> u64 {
        self.purchases
    }

    /// Their exact total, in minor units.
    pub fn amount_minor(&self) -> i128 {
        (i128::from(self.amount_carry) << 64) + i128::from(self.amount_low)
    }

    #[inline]
    fn add_amount(&mut self, amount_minor: i64) {
        let (sum, wrapped) = self.amount_low.overflowing_add(amount_minor);
        self.amount_low = sum;
        if wrapped {
            self.amount_carry += if amount_minor < 0 { -1 } else { 1 };
        }
    }

    /// Counts one purchase.
    #[inline]
    pub fn add(&mut self, day: Day, amount_minor: i64) {
        if day > self.last {
            self.last = day;
        }
        self.purchases += 1;
        self.add_amount(amount_minor);
    }

    /// Adds the purchases another reader counted for the same member.
    pub fn merge(&mut self, other: RfmTotals) {
        self.last = self.last.max(other.last);
        self.purchases += other.purchases;
        self.add_amount(other.amount_low);
        self.amount_carry += other.amount_carry;
    }
}

/// One member's RFM values and scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RfmScore {
    /// Days from the last purchase to the as-of date.
    pub recency_days: i64,
    /// Number of purchases.
    pub frequency: u64,
    /// Total amount in minor units.
    pub monetary_minor: i128,
    /// Recency score, 1 (longest ago) to 5 (most recent).
    pub r: u8,
    /// Frequency score, 1 (fewest) to 5 (most).
    pub f: u8,
    /// Monetary score, 1 (lowest) to 5 (highest).
    pub m: u8,
}

/// The 1-based `NTILE(buckets)` of the member at `position` (0-based) of `n` sorted
/// members: bucket sizes differ by at most one, the first `n mod buckets` are one larger.
pub fn ntile(n: usize, buckets: usize, position: usize) -> usize {
    debug_assert!(position < n && buckets > 0);
    let base = n / buckets;
    let larger = n % buckets;
    let in_larger = larger * (base + 1);
    if position < in_larger {
        position / (base + 1) + 1
    } else {
        // base > 0 here: when base == 0 every position is in the larger buckets.
        larger + (position - in_larger) / base.max(1) + 1
    }
}

/// Writes the NTILE bucket of each member into `out`, given the members in score order
/// (worst first).
fn assign(order: impl ExactSizeIterator<Item = u32>, out: &mut [u8]) {
    let n = order.len();
    for (position, member) in order.enumerate() {
        // ntile() is at most SCORE_BUCKETS, so it fits a u8.
        out[member as usize] = ntile(n, SCORE_BUCKETS, position) as u8;
    }
}

/// Order-preserving map of an `i64` onto a `u64`, so signed keys sort as plain integers.
#[inline]
fn ordered(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

/// Scores members given in member-id order (`totals[i]` is the i-th smallest id: the
/// position is the tie-breaker). Members without purchases get recency from
/// `Day(i32::MIN)`, so callers pass only members with at least one purchase.
///
/// The three sorts are independent; they run on up to three threads when there are enough
/// members for it to pay.
pub fn score(totals: &[RfmTotals], as_of: Day) -> Vec<RfmScore> {
    let n = totals.len();
    assert!(u32::try_from(n).is_ok(), "at most 2^32 members");
    let mut r = vec![0u8; n];
    let mut f = vec![0u8; n];
    let mut m = vec![0u8; n];
    let recency: Vec<i64> = totals.iter().map(|t| as_of.days_since(t.last)).collect();
    let monetary: Vec<i128> = totals.iter().map(RfmTotals::amount_minor).collect();
    let score_r = |out: &mut [u8]| {
        // Recency descending: the largest recency is worst and sorts first.
        let mut keys: Vec<(u64, u32)> = recency
            .iter()
            .enumerate()
            .map(|(i, &d)| (!ordered(d), i as u32))
            .collect();
        keys.sort_unstable();
        assign(keys.into_iter().map(|(_, i)| i), out);
    };
    let score_f = |out: &mut [u8]| {
        let mut keys: Vec<(u64, u32)> = totals
            .iter()
            .enumerate()
            .map(|(i, t)| (t.purchases, i as u32))
            .collect();
        keys.sort_unstable();
        assign(keys.into_iter().map(|(_, i)| i), out);
    };
    let score_m = |out: &mut [u8]| {
        let mut keys: Vec<(i128, u32)> = monetary
            .iter()
            .enumerate()
            .map(|(i, &m)| (m, i as u32))
            .collect();
        keys.sort_unstable();
        assign(keys.into_iter().map(|(_, i)| i), out);
    };
    if n >= 200_000 {
        std::thread::scope(|scope| {
            scope.spawn(|| score_r(&mut r));
            scope.spawn(|| score_f(&mut f));
            score_m(&mut m);
        });
    } else {
        score_r(&mut r);
        score_f(&mut f);
        score_m(&mut m);
    }
    (0..n)
        .map(|i| RfmScore {
            recency_days: recency[i],
            frequency: totals[i].purchases,
            monetary_minor: monetary[i],
            r: r[i],
            f: f[i],
            m: m[i],
        })
        .collect()
}

/// Named segments on the R x F grid: a name for every (R, F) pair of scores. The program
/// may rename segments or replace the grid; [`SegmentMap::default`] is the practitioners'
/// grid from `docs/ANALYTICS.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMap {
    /// The distinct segment names.
    names: Vec<String>,
    /// `grid[r - 1][f - 1]` indexes `names`.
    grid: [[usize; SCORE_BUCKETS]; SCORE_BUCKETS],
}

/// Why a segment map was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentMapError {
    /// A score outside 1-5.
    ScoreOutOfRange(u8),
    /// A row of the grid has other than five names, or there are other than five rows.
    Shape,
    /// An empty name.
    EmptyName,
}

impl std::fmt::Display for SegmentMapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentMapError::ScoreOutOfRange(s) => write!(f, "score {s} is not in 1-5"),
            SegmentMapError::Shape => {
                f.write_str("the grid needs 5 rows (R = 5 first) of 5 names (F = 1 first)")
            }
            SegmentMapError::EmptyName => f.write_str("a segment name is empty"),
        }
    }
}

impl std::error::Error for SegmentMapError {}

impl Default for SegmentMap {
    /// The default grid (rows R = 5 down to 1, columns F = 1 to 5).
    fn default() -> Self {
        const CHAMPIONS: &str = "Champions";
        const LOYAL: &str = "Loyal Customers";
        const POTENTIAL: &str = "Potential Loyalists";
        const NEW: &str = "New Customers";
        const PROMISING: &str = "Promising";
        const ATTENTION: &str = "Need Attention";
        const SLEEP: &str = "About To Sleep";
        const RISK: &str = "At Risk";
        const CANT_LOSE: &str = "Can't Lose Them";
        const HIBERNATING: &str = "Hibernating";
        let rows: [[&str; 5]; 5] = [
            [NEW, POTENTIAL, POTENTIAL, CHAMPIONS, CHAMPIONS],
            [PROMISING, POTENTIAL, POTENTIAL, LOYAL, LOYAL],
            [SLEEP, SLEEP, ATTENTION, LOYAL, LOYAL],
            [HIBERNATING, HIBERNATING, RISK, RISK, CANT_LOSE],
            [HIBERNATING, HIBERNATING, RISK, RISK, CANT_LOSE],
        ];
        match SegmentMap::from_rows(&rows) {
            Ok(map) => map,
            // The constant grid above has the right shape and no empty names.
            Err(_) => unreachable!("the default grid is valid"),
        }
    }
}

impl SegmentMap {
    /// A grid from rows R = 5, 4, 3, 2, 1 (as the table is printed), each with the names
    /// for F = 1 to 5. Equal names are one segment.
    pub fn from_rows<T: AsRef<str>>(rows: &[[T; 5]]) -> Result<SegmentMap, SegmentMapError> {
        if rows.len() != SCORE_BUCKETS {
            return Err(SegmentMapError::Shape);
        }
        let mut names: Vec<String> = Vec::new();
        let mut grid = [[0usize; SCORE_BUCKETS]; SCORE_BUCKETS];
        for (row_index, row) in rows.iter().enumerate() {
            let r = SCORE_BUCKETS - row_index; // first row is R = 5
            for (f_index, name) in row.iter().enumerate() {
                let name = name.as_ref().trim();
                if name.is_empty() {
                    return Err(SegmentMapError::EmptyName);
                }
                let index = match names.iter().position(|n| n == name) {
                    Some(i) => i,
                    None => {
                        names.push(name.to_string());
                        names.len() - 1
                    }
                };
                grid[r - 1][f_index] = index;
            }
        }
        Ok(SegmentMap { names, grid })
    }

    fn cell(r: u8, f: u8) -> Result<(usize, usize), SegmentMapError> {
        let check = |s: u8| {
            if (1..=SCORE_BUCKETS as u8).contains(&s) {
                Ok(usize::from(s) - 1)
            } else {
                Err(SegmentMapError::ScoreOutOfRange(s))
            }
        };
        Ok((check(r)?, check(f)?))
    }

    /// The segment of a member with scores `r` and `f` (both 1-5; out-of-range scores are
    /// clamped).
    pub fn segment(&self, r: u8, f: u8) -> &str {
        let r = usize::from(r.clamp(1, SCORE_BUCKETS as u8)) - 1;
        let f = usize::from(f.clamp(1, SCORE_BUCKETS as u8)) - 1;
        &self.names[self.grid[r][f]]
    }

    /// Renames every cell called `from` to `to` (a club's own word for "Champions").
    /// Returns false when no segment is called `from`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<bool, SegmentMapError> {
        let to = to.trim();
        if to.is_empty() {
            return Err(SegmentMapError::EmptyName);
        }
        let Some(index) = self.names.iter().position(|n| n == from) else {
            return Ok(false);
        };
        match self.names.iter().position(|n| n == to) {
            // Renaming onto an existing name merges the two segments.
            Some(existing) if existing != index => {
                for row in &mut self.grid {
                    for cell in row.iter_mut() {
                        if *cell == index {
                            *cell = existing;
                        }
                    }
                }
            }
            _ => self.names[index] = to.to_string(),
        }
        Ok(true)
    }

    /// Puts the cell (r, f) in segment `name` (new or existing).
    pub fn set(&mut self, r: u8, f: u8, name: &str) -> Result<(), SegmentMapError> {
        let (r, f) = Self::cell(r, f)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(SegmentMapError::EmptyName);
        }
        let index = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
        };
        self.grid[r][f] = index;
        Ok(())
    }

    /// The segment names in use, each once, in first-appearance order (R = 5 row first).
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in (0..SCORE_BUCKETS).rev() {
            for f in 0..SCORE_BUCKETS {
                let name = self.names[self.grid[r][f]].as_str();
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::{MemberId, MemberMap};
    use proptest::prelude::*;

    fn totals(last: i32, purchases: u64, amount: i128) -> RfmTotals {
        RfmTotals::new(Day(last), purchases, amount)
    }

    #[test]
    fn totals_are_exact_beyond_64_bits() {
        let mut t = RfmTotals::default();
        for _ in 0..4 {
            t.add(Day(1), i64::MAX);
        }
        t.add(Day(2), -5);
        assert_eq!(t.amount_minor(), 4 * i128::from(i64::MAX) - 5);
        let mut down = RfmTotals::default();
        for _ in 0..3 {
            down.add(Day(1), i64::MIN);
        }
        assert_eq!(down.amount_minor(), 3 * i128::from(i64::MIN));
        let mut merged = t;
        merged.merge(down);
        assert_eq!(
            merged.amount_minor(),
            4 * i128::from(i64::MAX) - 5 + 3 * i128::from(i64::MIN)
        );
        assert_eq!(merged.purchases(), 8);
        assert_eq!(merged.last(), Day(2));
        for value in [
            0i128,
            -1,
            i128::from(i64::MAX) * 7,
            i128::from(i64::MIN) * 3 - 11,
        ] {
            assert_eq!(RfmTotals::new(Day(0), 1, value).amount_minor(), value);
        }
        assert_eq!(std::mem::size_of::<RfmTotals>(), 24);
    }

    #[test]
    fn ntile_sizes_differ_by_at_most_one_and_larger_buckets_come_first() {
        for n in 1..60 {
            let mut sizes = [0usize; 5];
            for p in 0..n {
                sizes[ntile(n, 5, p) - 1] += 1;
            }
            for (i, &size) in sizes.iter().enumerate() {
                let expected = n / 5 + usize::from(i < n % 5);
                assert_eq!(size, expected, "n={n} bucket={}", i + 1);
            }
        }
        // n = 7: sizes 2, 2, 1, 1, 1, as SQL's NTILE(5) does.
        let buckets: Vec<usize> = (0..7).map(|p| ntile(7, 5, p)).collect();
        assert_eq!(buckets, [1, 1, 2, 2, 3, 4, 5]);
        // Fewer members than buckets: 1, 2, 3.
        let buckets: Vec<usize> = (0..3).map(|p| ntile(3, 5, p)).collect();
        assert_eq!(buckets, [1, 2, 3]);
    }

    #[test]
    fn no_members_no_scores() {
        assert!(score(&[], Day(100)).is_empty());
    }

    #[test]
    fn a_single_member_is_in_the_first_bucket() {
        let scores = score(&[totals(90, 3, 1500)], Day(100));
        assert_eq!(
            scores,
            [RfmScore {
                recency_days: 10,
                frequency: 3,
                monetary_minor: 1500,
                r: 1,
                f: 1,
                m: 1
            }]
        );
    }

    #[test]
    fn ten_equal_members_are_split_by_member_id() {
        // All tied: the id order alone decides, two per bucket.
        let all = vec![totals(50, 2, 700); 10];
        let scores = score(&all, Day(60));
        let r: Vec<u8> = scores.iter().map(|s| s.r).collect();
        assert_eq!(r, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        assert!(scores.iter().all(|s| s.r == s.f && s.f == s.m));
    }

    #[test]
    fn quintiles_with_ties_follow_value_then_id() {
        // Recency: members 0 and 1 bought most recently (tied), 4 longest ago.
        let all = [
            totals(99, 1, 100),
            totals(99, 5, 100),
            totals(90, 5, 300),
            totals(80, 2, -50),
            totals(10, 9, 200),
        ];
        let s = score(&all, Day(100));
        let r: Vec<u8> = s.iter().map(|s| s.r).collect();
        let f: Vec<u8> = s.iter().map(|s| s.f).collect();
        let m: Vec<u8> = s.iter().map(|s| s.m).collect();
        assert_eq!(r, [4, 5, 3, 2, 1]);
        assert_eq!(f, [1, 3, 4, 2, 5]);
        assert_eq!(m, [2, 3, 5, 1, 4]);
        assert_eq!(s[4].recency_days, 90);
    }

    #[test]
    fn the_default_grid_names_the_corners() {
        let map = SegmentMap::default();
        assert_eq!(map.segment(5, 5), "Champions");
        assert_eq!(map.segment(5, 1), "New Customers");
        assert_eq!(map.segment(1, 5), "Can't Lose Them");
        assert_eq!(map.segment(1, 1), "Hibernating");
        assert_eq!(map.segment(3, 3), "Need Attention");
        assert_eq!(map.segment(4, 1), "Promising");
        assert_eq!(map.names().len(), 10);
    }

    #[test]
    fn a_program_can_rename_and_replace_segments() {
        let mut map = SegmentMap::default();
        assert_eq!(map.rename("Champions", "Gold Circle"), Ok(true));
        assert_eq!(map.segment(5, 4), "Gold Circle");
        assert_eq!(map.rename("Nobody", "x"), Ok(false));
        map.set(3, 3, "Loyal Customers").unwrap();
        assert_eq!(map.segment(3, 3), "Loyal Customers");
        assert!(!map.names().contains(&"Need Attention"));
        assert_eq!(map.set(6, 1, "x"), Err(SegmentMapError::ScoreOutOfRange(6)));
        let flat = SegmentMap::from_rows(&[["all"; 5]; 5]).unwrap();
        assert_eq!(flat.segment(2, 4), "all");
        assert_eq!(
            SegmentMap::from_rows(&[["all"; 5]; 4]),
            Err(SegmentMapError::Shape)
        );
    }

    fn bucket_sizes(scores: impl Iterator<Item = u8>, n: usize) -> bool {
        let mut sizes = [0usize; 5];
        for s in scores {
            sizes[usize::from(s) - 1] += 1;
        }
        sizes
            .iter()
            .enumerate()
            .all(|(i, &size)| size == n / 5 + usize::from(i < n % 5))
    }

    proptest! {
        #[test]
        fn scores_do_not_depend_on_the_order_rows_arrive_in(
            rows in prop::collection::vec((0u64..40, 0i32..30, -500i64..5000), 1..300),
            seed in any::<u64>(),
        ) {
            let build = |rows: &[(u64, i32, i64)]| {
                let mut map: MemberMap<RfmTotals> = MemberMap::new();
                for &(id, day, amount) in rows {
                    // Mix number and text ids.
                    if id % 3 == 0 {
                        map.text(&format!("M{id}")).add(Day(day), amount);
                    } else {
                        map.number(id).add(Day(day), amount);
                    }
                }
                let members = map.into_sorted();
                let totals: Vec<RfmTotals> = members.iter().map(|(_, t)| *t).collect();
                let scores = score(&totals, Day(30));
                members.into_iter().map(|(id, _)| id).zip(scores).collect::<Vec<(MemberId, RfmScore)>>()
            };
            let first = build(&rows);
            // A deterministic shuffle of the same rows.
            let mut shuffled = rows.clone();
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(&first, &build(&shuffled));
            let n = first.len();
            prop_assert!(bucket_sizes(first.iter().map(|(_, s)| s.r), n));
            prop_assert!(bucket_sizes(first.iter().map(|(_, s)| s.f), n));
            prop_assert!(bucket_sizes(first.iter().map(|(_, s)| s.m), n));
            // Better values never get a lower score.
            for (_, a) in &first {
                for (_, b) in &first {
                    if a.recency_days < b.recency_days { prop_assert!(a.r >= b.r); }
                    if a.frequency > b.frequency { prop_assert!(a.f >= b.f); }
                    if a.monetary_minor > b.monetary_minor { prop_assert!(a.m >= b.m); }
                }
            }
        }
    }
}
