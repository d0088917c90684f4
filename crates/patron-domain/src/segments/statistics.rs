//! What `member.statistics` holds in a segment condition, and one member's values of it.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::rules::FactValue;

/// `member.statistics.top_categories_180d` looks at the club's this many top categories...
pub const TOP_CATEGORIES: usize = 5;
/// ...over this many days before the evaluation (also the window of `purchases_180d`).
pub const WINDOW_DAYS: i64 = 180;

/// What `member.statistics` holds in a segment condition, with its CEL type.
pub const STATISTICS: [(&str, &str); 13] = [
    ("purchases", "int"),
    ("purchase_days", "int"),
    ("spend", "double"),
    ("average_spend", "double"),
    ("first_purchase_at", "timestamp or null"),
    ("last_purchase_at", "timestamp or null"),
    ("days_since_last_purchase", "int or null"),
    ("median_gap_days", "double or null"),
    ("purchases_180d", "int"),
    ("top_categories_180d", "int"),
    ("rfv_r", "int or null"),
    ("rfv_f", "int or null"),
    ("rfv_m", "int or null"),
];

/// One member's statistics as a segment evaluation sees them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SegmentStatistics {
    /// Counted purchases (not fully refunded).
    pub purchases: i64,
    pub purchase_days: i64,
    pub spend_minor: i64,
    pub first_purchase_at: Option<Timestamp>,
    pub last_purchase_at: Option<Timestamp>,
    /// Day number (days since 1970-01-01, club time zone) of the last counted purchase.
    pub last_purchase_day: Option<i64>,
    /// The median of the gaps (days) between consecutive purchase days; [`median_gap_days`].
    pub median_gap_days: Option<f64>,
    /// Counted purchases in the [`WINDOW_DAYS`] before the evaluation day.
    pub purchases_180d: i64,
    /// How many of the club's top [`TOP_CATEGORIES`] categories of the window the member
    /// bought in it.
    pub top_categories_180d: i64,
    /// The member's (R, F, M) scores in the RFV run the evaluation uses.
    pub rfv: Option<(u8, u8, u8)>,
}

impl SegmentStatistics {
    /// `member.statistics` as of day `today` (club time zone), amounts in major units.
    pub fn facts(&self, today: i64, minor_unit: u32) -> BTreeMap<String, FactValue> {
        let scale = 10f64.powi(i32::try_from(minor_unit).unwrap_or(0));
        let spend = self.spend_minor as f64 / scale;
        let average = if self.purchases > 0 {
            self.spend_minor as f64 / self.purchases as f64 / scale
        } else {
            0.0
        };
        let optional_ts = |t: Option<Timestamp>| t.map_or(FactValue::Null, FactValue::Timestamp);
        let optional_int = |v: Option<i64>| v.map_or(FactValue::Null, FactValue::Int);
        let score =
            |pick: fn((u8, u8, u8)) -> u8| optional_int(self.rfv.map(|s| i64::from(pick(s))));
        BTreeMap::from([
            ("purchases".into(), FactValue::Int(self.purchases)),
            ("purchase_days".into(), FactValue::Int(self.purchase_days)),
            ("spend".into(), FactValue::Double(spend)),
            ("average_spend".into(), FactValue::Double(average)),
            (
                "first_purchase_at".into(),
                optional_ts(self.first_purchase_at),
            ),
            (
                "last_purchase_at".into(),
                optional_ts(self.last_purchase_at),
            ),
            (
                "days_since_last_purchase".into(),
                optional_int(self.last_purchase_day.map(|day| today - day)),
            ),
            (
                "median_gap_days".into(),
                self.median_gap_days
                    .map_or(FactValue::Null, FactValue::Double),
            ),
            ("purchases_180d".into(), FactValue::Int(self.purchases_180d)),
            (
                "top_categories_180d".into(),
                FactValue::Int(self.top_categories_180d),
            ),
            ("rfv_r".into(), score(|s| s.0)),
            ("rfv_f".into(), score(|s| s.1)),
            ("rfv_m".into(), score(|s| s.2)),
        ])
    }
}

/// The median gap in days between consecutive purchase days (`days` sorted ascending and
/// distinct); `None` with fewer than two days. An even number of gaps averages the middle two.
pub fn median_gap_days(days: &[i64]) -> Option<f64> {
    let mut gaps: Vec<i64> = days.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let middle = gaps.len() / 2;
    Some(if gaps.len() % 2 == 1 {
        gaps[middle] as f64
    } else {
        (gaps[middle - 1] + gaps[middle]) as f64 / 2.0
    })
}
