//! The shapes of the analytics endpoints: RFV cells and segments, baskets.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ids::RfvRunId;

/// One cell of the RFV grid.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RfvCellOut {
    /// Recency score, 1 (longest ago) to 5 (most recent).
    pub r: i64,
    /// Frequency score, 1 to 5.
    pub f: i64,
    /// The segment of the cell (its code) and its name in the requested language.
    pub segment: String,
    pub segment_name: String,
    pub members: i64,
    /// The members' total spend, minor units.
    pub value_minor: i64,
}

/// An RFV segment's totals in a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RfvSegmentOut {
    pub id: String,
    pub name: String,
    pub members: i64,
    pub value_minor: i64,
}

/// An RFV run: the 5 x 5 grid (R = 5 first, then F = 1 first) and the segment totals.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RfvOut {
    pub run_id: RfvRunId,
    /// The as-of date (club time zone), YYYY-MM-DD.
    pub as_of: String,
    /// Members scored (those with a counted purchase by the as-of date).
    pub members: i64,
    pub created_at: Timestamp,
    /// The language of the names.
    pub locale: String,
    pub cells: Vec<RfvCellOut>,
    pub segments: Vec<RfvSegmentOut>,
}

/// A frequent pair: A < B by name.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BasketPairOut {
    pub a: String,
    pub b: String,
    /// Baskets with both.
    pub baskets: u64,
    pub support: f64,
    pub confidence_a_to_b: f64,
    pub confidence_b_to_a: f64,
    pub lift: f64,
}

/// The category bought most often in a member's next basket after `category`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NextCategoryOut {
    pub category: String,
    pub next: String,
    pub count: u64,
    /// count / baskets with `category` followed by another basket of the member.
    pub share: f64,
}

/// Basket analysis over the member purchases since `since`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BasketsOut {
    pub since: Timestamp,
    /// category | sku
    pub level: String,
    pub min_support: f64,
    pub baskets: usize,
    pub members: usize,
    /// Frequent pairs, most baskets first.
    pub pairs: Vec<BasketPairOut>,
    /// Per category, the most common next category.
    pub next: Vec<NextCategoryOut>,
}
