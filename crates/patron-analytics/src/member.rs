//! Member ids as files carry them, and a map from member to per-member state built for
//! tens of millions of lookups: whole-number ids take a fast path (a `u64` key, no
//! allocation), anything else is kept as text.
//!
//! Order of ids (the tie-breaker of every score): whole numbers first, by value; then text
//! ids by their bytes. So `2 < 10 < A-7 < B-1`, whatever order the rows came in.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// A member id: a whole number (digits, no leading zero, fits `u64`) or any other text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemberId {
    /// An id written as a plain whole number.
    Number(u64),
    /// Any other id, kept byte for byte.
    Text(Box<str>),
}

impl MemberId {
    /// The id of `text`: [`MemberId::Number`] when it is a canonical whole number (`0`, `17`,
    /// not `017`), else [`MemberId::Text`].
    pub fn from_text(text: &str) -> MemberId {
        match canonical_number(text.as_bytes()) {
            Some(n) => MemberId::Number(n),
            None => MemberId::Text(text.into()),
        }
    }
}

/// `Some(n)` when `bytes` is a whole number written without leading zeros that fits a `u64`.
pub fn canonical_number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 || (bytes.len() > 1 && bytes[0] == b'0') {
        return None;
    }
    let mut n: u64 = 0;
    for &c in bytes {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

impl Ord for MemberId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (MemberId::Number(a), MemberId::Number(b)) => a.cmp(b),
            (MemberId::Number(_), MemberId::Text(_)) => Ordering::Less,
            (MemberId::Text(_), MemberId::Number(_)) => Ordering::Greater,
            (MemberId::Text(a), MemberId::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
        }
    }
}

impl PartialOrd for MemberId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberId::Number(n) => write!(f, "{n}"),
            MemberId::Text(t) => f.write_str(t),
        }
    }
}

/// A multiply-rotate hasher (in the spirit of Firefox's FxHash): a few cycles per word,
/// no protection against chosen keys, which is fine for a batch job over a file the
/// operator supplies. `finish` folds the high bits into the low ones: the hash table picks
/// buckets by the low bits, and after a multiply those depend only on the low bits of the
/// input, so names with a common prefix ("cat14", "cat15") would otherwise share buckets.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// The `BuildHasher` of [`FastHasher`].
pub type FastBuildHasher = BuildHasherDefault<FastHasher>;

/// Whole-number ids below this may live in the dense table.
const DENSE_IDS_MAX: usize = 1 << 24;
/// The dense table may be this many times longer than the members in it (and always at
/// least [`DENSE_SLACK_MIN`] long): sequential ids get a plain array, sparse ids a hash map.
const DENSE_SLACK: usize = 4;
const DENSE_SLACK_MIN: usize = 1 << 16;

/// Per-member state `S`, keyed by member id, filled row by row.
///
/// Three tables: small whole-number ids (the common case: members numbered 1, 2, 3, ...)
/// index a plain array, one memory access per row and no hashing; other whole numbers go
/// to a hash map on `u64`; text ids to a hash map on the text. Invariant: every id in
/// `numbers` is ≥ `dense.len()`, so the array and the map never hold the same member.
#[derive(Debug, Clone)]
pub struct MemberMap<S> {
    dense: Vec<S>,
    dense_seen: Vec<bool>,
    dense_count: usize,
    numbers: HashMap<u64, S, FastBuildHasher>,
    /// Text ids point into `text_states`, so a lookup of a known id allocates nothing.
    texts: HashMap<Box<str>, usize, FastBuildHasher>,
    text_states: Vec<S>,
}

impl<S> Default for MemberMap<S> {
    fn default() -> Self {
        MemberMap {
            dense: Vec::new(),
            dense_seen: Vec::new(),
            dense_count: 0,
            numbers: HashMap::default(),
            texts: HashMap::default(),
            text_states: Vec::new(),
        }
    }
}

impl<S: Default> MemberMap<S> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grows the dense table to hold `index` if that keeps it dense enough; moves the
    /// hashed members it now covers into it. Returns whether `index` is covered.
    #[cold]
    fn grow_dense(&mut self, index: usize) -> bool {
        if index >= DENSE_IDS_MAX {
            return false;
        }
        let members = self.dense_count + self.numbers.len() + 1;
        let allowed = (members * DENSE_SLACK).clamp(DENSE_SLACK_MIN, DENSE_IDS_MAX);
        if index >= allowed {
            return false;
        }
        let length = (index + 1).max(self.dense.len() * 2).min(allowed);
        self.dense.resize_with(length, S::default);
        self.dense_seen.resize(length, false);
        let moving: Vec<u64> = self
            .numbers
            .keys()
            .copied()
            .filter(|&id| (id as usize) < length)
            .collect();
        for id in moving {
            if let Some(state) = self.numbers.remove(&id) {
                self.dense[id as usize] = state;
                self.dense_seen[id as usize] = true;
                self.dense_count += 1;
            }
        }
        true
    }

    /// The state of the member with a whole-number id, created empty on first sight.
    #[inline]
    pub fn number(&mut self, id: u64) -> &mut S {
        let index = id as usize;
        if index < self.dense.len() || self.grow_dense(index) {
            if !self.dense_seen[index] {
                self.dense_seen[index] = true;
                self.dense_count += 1;
            }
            return &mut self.dense[index];
        }
        self.numbers.entry(id).or_default()
    }

    /// The state of the member whose id is `text`: a canonical whole number goes to the
    /// number path; other text is only allocated the first time it is seen.
    #[inline]
    pub fn text(&mut self, text: &str) -> &mut S {
        if let Some(n) = canonical_number(text.as_bytes()) {
            return self.number(n);
        }
        let index = match self.texts.get(text) {
            Some(&index) => index,
            None => {
                let index = self.text_states.len();
                self.texts.insert(text.into(), index);
                self.text_states.push(S::default());
                index
            }
        };
        &mut self.text_states[index]
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.dense_count + self.numbers.len() + self.texts.len()
    }

    /// True when no member has been seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts `state` in for member `id`, or combines it with the one there.
    fn absorb_number(&mut self, id: u64, state: S, combine: &mut impl FnMut(&mut S, S)) {
        let index = id as usize;
        if (index < self.dense.len() || self.grow_dense(index)) && !self.dense_seen[index] {
            self.dense_seen[index] = true;
            self.dense_count += 1;
            self.dense[index] = state;
            return;
        }
        if index < self.dense.len() {
            combine(&mut self.dense[index], state);
            return;
        }
        match self.numbers.get_mut(&id) {
            Some(mine) => combine(mine, state),
            None => {
                self.numbers.insert(id, state);
            }
        }
    }

    /// Moves every member of `other` in, combining the states of members present in both
    /// with `combine(mine, theirs)`. For merging the maps of threads that read parts of a
    /// file.
    pub fn merge(&mut self, other: MemberMap<S>, mut combine: impl FnMut(&mut S, S)) {
        for (index, (state, seen)) in other.dense.into_iter().zip(other.dense_seen).enumerate() {
            if seen {
                self.absorb_number(index as u64, state, &mut combine);
            }
        }
        for (id, state) in other.numbers {
            self.absorb_number(id, state, &mut combine);
        }
        let mut their_states: Vec<Option<S>> = other.text_states.into_iter().map(Some).collect();
        for (id, index) in other.texts {
            let Some(state) = their_states.get_mut(index).and_then(Option::take) else {
                continue;
            };
            match self.texts.get(&id) {
                Some(&mine) => combine(&mut self.text_states[mine], state),
                None => {
                    self.texts.insert(id, self.text_states.len());
                    self.text_states.push(state);
                }
            }
        }
    }

    /// Every member with its state, in member-id order (see the module docs).
    pub fn into_sorted(self) -> Vec<(MemberId, S)> {
        let mut out = Vec::with_capacity(self.len());
        // Dense ids are below every hashed number (the invariant), and already in order.
        for (index, (state, seen)) in self.dense.into_iter().zip(self.dense_seen).enumerate() {
            if seen {
                out.push((MemberId::Number(index as u64), state));
            }
        }
        let mut numbers: Vec<(u64, S)> = self.numbers.into_iter().collect();
        numbers.sort_unstable_by_key(|(id, _)| *id);
        out.extend(numbers.into_iter().map(|(id, s)| (MemberId::Number(id), s)));
        let mut texts: Vec<(Box<str>, usize)> = self.texts.into_iter().collect();
        texts.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
        let mut states: Vec<Option<S>> = self.text_states.into_iter().map(Some).collect();
        for (id, index) in texts {
            if let Some(state) = states.get_mut(index).and_then(Option::take) {
                out.push((MemberId::Text(id), state));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_hashed_ids_are_one_member_each_in_id_order() {
        let mut map: MemberMap<u64> = MemberMap::new();
        // A large id first (hashed), then small ones that make the array grow over it.
        let ids = [
            70_000u64,
            5,
            1 << 40,
            3,
            70_000,
            200_000,
            5,
            1 << 30,
            65_535,
            65_536,
        ];
        for id in ids {
            *map.number(id) += 1;
        }
        for id in 0..100_000 {
            *map.number(id) += 0;
        }
        assert_eq!(map.len(), 100_000 + 3);
        let sorted = map.into_sorted();
        assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0));
        let count = |id: u64| {
            sorted
                .iter()
                .find(|(m, _)| *m == MemberId::Number(id))
                .map(|(_, c)| *c)
        };
        assert_eq!(count(70_000), Some(2));
        assert_eq!(count(5), Some(2));
        assert_eq!(count(1 << 40), Some(1));
        assert_eq!(count(200_000), Some(1));
        assert_eq!(count(99_999), Some(0));
    }

    #[test]
    fn whole_numbers_sort_by_value_before_text() {
        let mut ids: Vec<MemberId> = ["B-1", "10", "A-7", "2", "017", "0"]
            .iter()
            .map(|t| MemberId::from_text(t))
            .collect();
        ids.sort();
        let shown: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["0", "2", "10", "017", "A-7", "B-1"]);
    }

    #[test]
    fn merging_combines_members_seen_by_both() {
        let mut a: MemberMap<u32> = MemberMap::new();
        *a.number(1) += 1;
        *a.text("x") += 1;
        let mut b: MemberMap<u32> = MemberMap::new();
        *b.number(1) += 10;
        *b.number(2) += 10;
        *b.text("x") += 10;
        *b.text("7") += 100;
        a.merge(b, |mine, theirs| *mine += theirs);
        let all = a.into_sorted();
        assert_eq!(
            all,
            vec![
                (MemberId::Number(1), 11),
                (MemberId::Number(2), 10),
                (MemberId::Number(7), 100),
                (MemberId::Text("x".into()), 11)
            ]
        );
    }
}
