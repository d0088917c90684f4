//! Basket analysis: which categories (and SKUs) are bought together, and which category
//! members buy next.
//!
//! Definitions (`docs/ANALYTICS.md`, "Basket analysis"):
//!
//! - A **basket** is one purchase: all lines with the same (member, document). Its day is the
//!   earliest day of its lines. Its categories and its SKUs are **sets**: an item on several
//!   lines of one basket counts once.
//! - With `n` baskets, `count(A)` baskets containing A and `count(A,B)` containing both:
//!   `support(A,B) = count(A,B) / n`, `confidence(A→B) = count(A,B) / count(A)`,
//!   `lift(A,B) = count(A,B) · n / (count(A) · count(B))` (symmetric; 1 = independent).
//! - A pair is **frequent** when `support(A,B) ≥ min_support`. Since `count(A,B) ≤
//!   count(A)`, only items that are frequent on their own can be in a frequent pair (the
//!   apriori property), so pairs are only counted among those: rare SKUs cost nothing.
//! - **Next category**: a member's baskets in time order (day, then document id: whole
//!   numbers by value first, then text by bytes). For each basket followed by another one of
//!   the same member, every category A of the first and every category B of the following
//!   basket count one transition A → B (B may be A: a repeat). `from(A)` = baskets with A
//!   that have a following basket; `share(A→B) = count(A→B) / from(A)`. Shares of one A add
//!   up to more than 1 when next baskets hold several categories.
//! - Ties are deterministic: pairs by `count(A,B)` descending, then A, then B by name bytes
//!   (A < B within a pair); next categories by A, then count descending, then B.
//!
//! Memory: names are interned once (`u32` ids); each input line costs 12 bytes until
//! [`BasketLog::finish`], which turns them into flat per-basket item sets. Pair counts live
//! in a dense triangle when the frequent items are few (≤ 2,048 cells per side, about), else
//! in a hash map keyed by the id pair.

mod counts;
mod vocabulary;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::date::Day;
use crate::member::FastBuildHasher;
use counts::PairCounts;
pub use vocabulary::{Id, Vocabulary};
use vocabulary::{Key, key, translate};

/// The sku slot of a line without a SKU.
const NO_SKU: u32 = u32::MAX;
/// Pair counters with at most this many cells are a plain array (16 MiB of `u64`).
const DENSE_CELLS_MAX: usize = 1 << 21;

/// One basket's identity and day.
#[derive(Debug, Clone, Copy)]
struct BasketInfo {
    member: u32,
    document: Key,
    day: Day,
}

/// Purchase lines collected into baskets, line by line. One per reading thread, combined
/// with [`BasketLog::merge`], then [`BasketLog::finish`]ed into [`Baskets`].
#[derive(Debug, Default, Clone)]
pub struct BasketLog {
    categories: Vocabulary,
    skus: Vocabulary,
    member_texts: Vocabulary,
    document_texts: Vocabulary,
    members: HashMap<Key, u32, FastBuildHasher>,
    member_keys: Vec<Key>,
    index: HashMap<(u32, Key), u32, FastBuildHasher>,
    baskets: Vec<BasketInfo>,
    /// (basket, category, sku or [`NO_SKU`]) per line.
    lines: Vec<[u32; 3]>,
    /// The previous line's member and document and its basket: the lines of a purchase
    /// are usually adjacent, and then need no hash lookup.
    last: Option<(LastId, LastId, u32)>,
}

/// An [`Id`] kept from the previous line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LastId {
    Number(u64),
    Text(String),
}

impl LastId {
    fn is(&self, id: Id<'_>) -> bool {
        match (self, id) {
            (LastId::Number(a), Id::Number(b)) => *a == b,
            (LastId::Text(a), Id::Text(b)) => a == b,
            _ => false,
        }
    }

    fn set(&mut self, id: Id<'_>) {
        match (&mut *self, id) {
            (LastId::Text(text), Id::Text(t)) => {
                text.clear();
                text.push_str(t);
            }
            (_, Id::Text(t)) => *self = LastId::Text(t.to_string()),
            (_, Id::Number(n)) => *self = LastId::Number(n),
        }
    }
}

impl BasketLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lines added so far.
    pub fn lines(&self) -> usize {
        self.lines.len()
    }

    /// Baskets seen so far.
    pub fn baskets(&self) -> usize {
        self.baskets.len()
    }

    fn member(&mut self, key: Key) -> u32 {
        match self.members.entry(key) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let index = self.member_keys.len() as u32;
                e.insert(index);
                self.member_keys.push(key);
                index
            }
        }
    }

    fn basket(&mut self, member: u32, document: Key, day: Day) -> u32 {
        match self.index.entry((member, document)) {
            Entry::Occupied(e) => {
                let basket = *e.get();
                if let Some(info) = self.baskets.get_mut(basket as usize)
                    && day < info.day
                {
                    info.day = day;
                }
                basket
            }
            Entry::Vacant(e) => {
                let basket = self.baskets.len() as u32;
                e.insert(basket);
                self.baskets.push(BasketInfo {
                    member,
                    document,
                    day,
                });
                basket
            }
        }
    }

    /// Adds one purchase line: `category` (and `sku`, if any) bought by `member` on `day` in
    /// `document`.
    pub fn add_line(
        &mut self,
        member: Id<'_>,
        document: Id<'_>,
        day: Day,
        category: &str,
        sku: Option<&str>,
    ) {
        let basket = match &mut self.last {
            Some((last_member, last_document, basket))
                if last_member.is(member) && last_document.is(document) =>
            {
                let basket = *basket;
                if let Some(info) = self.baskets.get_mut(basket as usize)
                    && day < info.day
                {
                    info.day = day;
                }
                basket
            }
            _ => {
                let member_key = key(member, &mut self.member_texts);
                let member_index = self.member(member_key);
                let document_key = key(document, &mut self.document_texts);
                let basket = self.basket(member_index, document_key, day);
                match &mut self.last {
                    Some((last_member, last_document, last_basket)) => {
                        last_member.set(member);
                        last_document.set(document);
                        *last_basket = basket;
                    }
                    None => {
                        let mut last = (LastId::Number(0), LastId::Number(0), basket);
                        last.0.set(member);
                        last.1.set(document);
                        self.last = Some(last);
                    }
                }
                basket
            }
        };
        let category = self.categories.intern(category);
        let sku = sku.map_or(NO_SKU, |s| self.skus.intern(s));
        self.lines.push([basket, category, sku]);
    }

    /// Moves every line of `other` in (the log of another thread).
    pub fn merge(&mut self, other: BasketLog) {
        let categories = self.categories.absorb(other.categories);
        let skus = self.skus.absorb(other.skus);
        let member_texts = self.member_texts.absorb(other.member_texts);
        let document_texts = self.document_texts.absorb(other.document_texts);
        let members: Vec<u32> = other
            .member_keys
            .iter()
            .map(|&k| self.member(translate(k, &member_texts)))
            .collect();
        let baskets: Vec<u32> = other
            .baskets
            .iter()
            .map(|info| {
                let member = members.get(info.member as usize).copied().unwrap_or(0);
                self.basket(member, translate(info.document, &document_texts), info.day)
            })
            .collect();
        let remap = |table: &[u32], id: u32| table.get(id as usize).copied().unwrap_or(id);
        self.lines.reserve(other.lines.len());
        for [basket, category, sku] in other.lines {
            self.lines.push([
                remap(&baskets, basket),
                remap(&categories, category),
                if sku == NO_SKU {
                    NO_SKU
                } else {
                    remap(&skus, sku)
                },
            ]);
        }
    }

    /// The baskets as item sets, ready for analysis.
    pub fn finish(self) -> Baskets {
        let BasketLog {
            categories,
            skus,
            document_texts,
            baskets,
            mut lines,
            ..
        } = self;
        lines.sort_unstable();
        let mut category_sets = ItemSets::with_capacity(baskets.len(), lines.len());
        let mut sku_sets = ItemSets::with_capacity(baskets.len(), 0);
        let mut scratch: Vec<u32> = Vec::new();
        let mut rest = &lines[..];
        for basket in 0..baskets.len() as u32 {
            let end = rest
                .iter()
                .position(|l| l[0] != basket)
                .unwrap_or(rest.len());
            let (group, after) = rest.split_at(end);
            rest = after;
            // Sorted by category within the basket already.
            scratch.clear();
            scratch.extend(group.iter().map(|l| l[1]));
            scratch.dedup();
            category_sets.push(&scratch);
            scratch.clear();
            scratch.extend(group.iter().map(|l| l[2]).filter(|&s| s != NO_SKU));
            scratch.sort_unstable();
            scratch.dedup();
            sku_sets.push(&scratch);
        }
        drop(lines);
        Baskets {
            categories,
            skus,
            document_texts,
            baskets,
            category_sets,
            sku_sets,
        }
    }
}

/// Per-basket sorted, distinct item ids, flat: basket `i` is
/// `items[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone)]
struct ItemSets {
    offsets: Vec<usize>,
    items: Vec<u32>,
}

impl ItemSets {
    fn with_capacity(baskets: usize, items: usize) -> Self {
        let mut offsets = Vec::with_capacity(baskets + 1);
        offsets.push(0);
        ItemSets {
            offsets,
            items: Vec::with_capacity(items),
        }
    }

    fn push(&mut self, items: &[u32]) {
        self.items.extend_from_slice(items);
        self.offsets.push(self.items.len());
    }

    fn get(&self, basket: usize) -> &[u32] {
        match (self.offsets.get(basket), self.offsets.get(basket + 1)) {
            (Some(&start), Some(&end)) => &self.items[start..end],
            _ => &[],
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }
}

/// Which items a pair is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Product categories.
    Category,
    /// Stock-keeping units (products).
    Sku,
}

impl Level {
    /// `category` or `sku`, as the output files write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Category => "category",
            Level::Sku => "sku",
        }
    }
}

/// A frequent pair, A < B by name, with the counts its measures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The first item (smaller name).
    pub a: &'a str,
    /// The second item.
    pub b: &'a str,
    /// Baskets with both.
    pub both: u64,
    /// Baskets with A.
    pub with_a: u64,
    /// Baskets with B.
    pub with_b: u64,
    /// All baskets.
    pub baskets: u64,
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Pair<'_> {
    /// Share of baskets with both.
    pub fn support(&self) -> f64 {
        ratio(self.both, self.baskets)
    }

    /// Share of baskets with A that also have B.
    pub fn confidence_a_to_b(&self) -> f64 {
        ratio(self.both, self.with_a)
    }

    /// Share of baskets with B that also have A.
    pub fn confidence_b_to_a(&self) -> f64 {
        ratio(self.both, self.with_b)
    }

    /// support(A,B) / (support(A) · support(B)): 1 when independent, above 1 when bought
    /// together more than chance.
    pub fn lift(&self) -> f64 {
        let expected = self.with_a as f64 * self.with_b as f64;
        if expected == 0.0 {
            0.0
        } else {
            self.both as f64 * self.baskets as f64 / expected
        }
    }
}

/// The frequent pairs of one level and what was counted to find them.
#[derive(Debug, Clone)]
pub struct PairReport<'a> {
    /// Distinct items of the level.
    pub items: usize,
    /// Items whose own support meets the threshold (the only ones paired).
    pub frequent_items: usize,
    /// The threshold as a count: pairs in at least this many baskets.
    pub min_baskets: u64,
    /// Frequent pairs found, before `top`.
    pub frequent_pairs: usize,
    /// The pairs, best first (see the module docs), at most `top`.
    pub pairs: Vec<Pair<'a>>,
}

/// One "next category" transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next<'a> {
    /// The category bought first.
    pub category: &'a str,
    /// A category of the member's following basket.
    pub next: &'a str,
    /// Transitions A → B.
    pub count: u64,
    /// Baskets with A followed by another basket of the same member.
    pub from: u64,
}

impl Next<'_> {
    /// count / from.
    pub fn share(&self) -> f64 {
        ratio(self.count, self.from)
    }
}

/// The least count `c` with `c / baskets ≥ min_support` (at least 1), computed so that it
/// agrees with the support written in the output.
pub fn min_baskets(min_support: f64, baskets: u64) -> u64 {
    if baskets == 0 {
        return 1;
    }
    let n = baskets as f64;
    let guess = (min_support * n).ceil();
    let mut count = if guess.is_finite() && guess >= 1.0 {
        (guess as u64).min(baskets.saturating_add(1))
    } else {
        1
    };
    while count > 1 && (count - 1) as f64 / n >= min_support {
        count -= 1;
    }
    while count <= baskets && (count as f64 / n) < min_support {
        count += 1;
    }
    count
}

/// Baskets as item sets, with the names behind the ids.
#[derive(Debug, Clone)]
pub struct Baskets {
    categories: Vocabulary,
    skus: Vocabulary,
    document_texts: Vocabulary,
    baskets: Vec<BasketInfo>,
    category_sets: ItemSets,
    sku_sets: ItemSets,
}

impl Baskets {
    /// Number of baskets.
    pub fn len(&self) -> usize {
        self.baskets.len()
    }

    /// True without baskets.
    pub fn is_empty(&self) -> bool {
        self.baskets.is_empty()
    }

    /// Number of members.
    pub fn members(&self) -> usize {
        let mut members: Vec<u32> = self.baskets.iter().map(|b| b.member).collect();
        members.sort_unstable();
        members.dedup();
        members.len()
    }

    /// The names of a level's items.
    pub fn vocabulary(&self, level: Level) -> &Vocabulary {
        match level {
            Level::Category => &self.categories,
            Level::Sku => &self.skus,
        }
    }

    fn sets(&self, level: Level) -> &ItemSets {
        match level {
            Level::Category => &self.category_sets,
            Level::Sku => &self.sku_sets,
        }
    }

    /// Baskets containing each item of a level, indexed by item id.
    pub fn item_counts(&self, level: Level) -> Vec<u64> {
        let mut counts = vec![0u64; self.vocabulary(level).len()];
        for &item in &self.sets(level).items {
            if let Some(c) = counts.get_mut(item as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// The pairs of `level` with support ≥ `min_support`, best first, at most `top`.
    pub fn frequent_pairs(
        &self,
        level: Level,
        min_support: f64,
        top: Option<usize>,
    ) -> PairReport<'_> {
        self.frequent_pairs_with(level, min_support, top, DENSE_CELLS_MAX)
    }

    fn frequent_pairs_with(
        &self,
        level: Level,
        min_support: f64,
        top: Option<usize>,
        dense_max: usize,
    ) -> PairReport<'_> {
        let vocabulary = self.vocabulary(level);
        let sets = self.sets(level);
        let n = self.len() as u64;
        let min = min_baskets(min_support, n);
        let counts = self.item_counts(level);
        // The apriori pruning: only items frequent on their own, renumbered 0..k in id
        // order, so a basket's sorted ids stay sorted.
        let mut dense = vec![u32::MAX; counts.len()];
        let mut frequent: Vec<u32> = Vec::new();
        for (item, &count) in counts.iter().enumerate() {
            if count >= min {
                dense[item] = frequent.len() as u32;
                frequent.push(item as u32);
            }
        }
        let mut pair_counts = PairCounts::new(frequent.len(), false, dense_max);
        let mut scratch: Vec<u32> = Vec::new();
        for basket in 0..sets.len() {
            scratch.clear();
            scratch.extend(
                sets.get(basket)
                    .iter()
                    .map(|&item| dense[item as usize])
                    .filter(|&d| d != u32::MAX),
            );
            for (x, &i) in scratch.iter().enumerate() {
                for &j in &scratch[x + 1..] {
                    pair_counts.add(i, j);
                }
            }
        }
        let mut pairs: Vec<Pair<'_>> = pair_counts
            .into_counts()
            .into_iter()
            .filter(|&(_, _, both)| both >= min)
            .map(|(i, j, both)| {
                let (x, y) = (frequent[i as usize], frequent[j as usize]);
                let (x, y) = if vocabulary.name(x).as_bytes() <= vocabulary.name(y).as_bytes() {
                    (x, y)
                } else {
                    (y, x)
                };
                Pair {
                    a: vocabulary.name(x),
                    b: vocabulary.name(y),
                    both,
                    with_a: counts[x as usize],
                    with_b: counts[y as usize],
                    baskets: n,
                }
            })
            .collect();
        pairs.sort_unstable_by(|p, q| {
            q.both
                .cmp(&p.both)
                .then_with(|| p.a.as_bytes().cmp(q.a.as_bytes()))
                .then_with(|| p.b.as_bytes().cmp(q.b.as_bytes()))
        });
        let frequent_pairs = pairs.len();
        if let Some(top) = top {
            pairs.truncate(top);
        }
        PairReport {
            items: vocabulary.len(),
            frequent_items: frequent.len(),
            min_baskets: min,
            frequent_pairs,
            pairs,
        }
    }

    fn compare_documents(&self, x: Key, y: Key) -> Ordering {
        match (x, y) {
            (Key::Number(a), Key::Number(b)) => a.cmp(&b),
            (Key::Number(_), Key::Text(_)) => Ordering::Less,
            (Key::Text(_), Key::Number(_)) => Ordering::Greater,
            (Key::Text(a), Key::Text(b)) => self
                .document_texts
                .name(a)
                .as_bytes()
                .cmp(self.document_texts.name(b).as_bytes()),
        }
    }

    /// For each category A, the categories of the basket members buy next (see the module
    /// docs), at most `top` per A, ordered by A, then count descending, then name.
    pub fn next_categories(&self, top: Option<usize>) -> Vec<Next<'_>> {
        self.next_categories_with(top, DENSE_CELLS_MAX)
    }

    fn next_categories_with(&self, top: Option<usize>, dense_max: usize) -> Vec<Next<'_>> {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by(|&x, &y| {
            let (p, q) = (&self.baskets[x as usize], &self.baskets[y as usize]);
            p.member
                .cmp(&q.member)
                .then(p.day.cmp(&q.day))
                .then_with(|| self.compare_documents(p.document, q.document))
        });
        let k = self.categories.len();
        let mut from = vec![0u64; k];
        let mut counts = PairCounts::new(k, true, dense_max);
        for step in order.windows(2) {
            let (first, then) = (step[0] as usize, step[1] as usize);
            if self.baskets[first].member != self.baskets[then].member {
                continue;
            }
            let following = self.category_sets.get(then);
            for &a in self.category_sets.get(first) {
                from[a as usize] += 1;
                for &b in following {
                    counts.add(a, b);
                }
            }
        }
        let names = &self.categories;
        let mut next: Vec<Next<'_>> = counts
            .into_counts()
            .into_iter()
            .map(|(a, b, count)| Next {
                category: names.name(a),
                next: names.name(b),
                count,
                from: from[a as usize],
            })
            .collect();
        next.sort_unstable_by(|p, q| {
            p.category
                .as_bytes()
                .cmp(q.category.as_bytes())
                .then(q.count.cmp(&p.count))
                .then_with(|| p.next.as_bytes().cmp(q.next.as_bytes()))
        });
        if let Some(top) = top {
            let mut kept = 0usize;
            let mut current: Option<&str> = None;
            next.retain(|n| {
                if current != Some(n.category) {
                    current = Some(n.category);
                    kept = 0;
                }
                kept += 1;
                kept <= top
            });
        }
        next
    }
}

#[cfg(test)]
mod tests;
