//! Pair counters: how many baskets hold each pair of items (or each transition from one
//! item to another).

use std::collections::HashMap;

use crate::member::FastBuildHasher;

/// Counts of item pairs among `k` items: a dense array when small, a hash map otherwise.
/// `ordered` counts (i, j) and (j, i) apart; unordered ones take i < j.
pub(super) enum PairCounts {
    Dense {
        k: usize,
        ordered: bool,
        cells: Vec<u64>,
    },
    Sparse {
        cells: HashMap<u64, u64, FastBuildHasher>,
    },
}

impl PairCounts {
    /// Dense when it takes at most `dense_max` cells.
    pub(super) fn new(k: usize, ordered: bool, dense_max: usize) -> Self {
        let cells = if ordered {
            k.checked_mul(k)
        } else {
            k.checked_mul(k.saturating_sub(1)).map(|c| c / 2)
        };
        match cells {
            Some(cells) if cells <= dense_max => PairCounts::Dense {
                k,
                ordered,
                cells: vec![0; cells],
            },
            _ => PairCounts::Sparse {
                cells: HashMap::default(),
            },
        }
    }

    /// Row-major cell of (i, j); for unordered counts the upper triangle without the
    /// diagonal, i < j.
    #[inline]
    fn cell(k: usize, ordered: bool, i: usize, j: usize) -> usize {
        if ordered {
            i * k + j
        } else {
            i * (2 * k - i - 1) / 2 + (j - i - 1)
        }
    }

    #[inline]
    pub(super) fn add(&mut self, i: u32, j: u32) {
        match self {
            PairCounts::Dense { k, ordered, cells } => {
                let cell = Self::cell(*k, *ordered, i as usize, j as usize);
                if let Some(c) = cells.get_mut(cell) {
                    *c += 1;
                }
            }
            PairCounts::Sparse { cells, .. } => {
                *cells
                    .entry((u64::from(i) << 32) | u64::from(j))
                    .or_default() += 1;
            }
        }
    }

    /// Every (i, j, count) with count > 0.
    pub(super) fn into_counts(self) -> Vec<(u32, u32, u64)> {
        match self {
            PairCounts::Dense { k, ordered, cells } => {
                let mut out = Vec::new();
                for i in 0..k {
                    let from = if ordered { 0 } else { i + 1 };
                    for j in from..k {
                        let count = cells
                            .get(Self::cell(k, ordered, i, j))
                            .copied()
                            .unwrap_or(0);
                        if count > 0 {
                            out.push((i as u32, j as u32, count));
                        }
                    }
                }
                out
            }
            PairCounts::Sparse { cells } => cells
                .into_iter()
                .map(|(key, count)| ((key >> 32) as u32, key as u32, count))
                .collect(),
        }
    }
}
