//! The RFV grid: the (R, F) cell of a 5 x 5 grid names a member's segment (`docs/ANALYTICS.md`,
//! "RFV / RFM"), as a segment *code* with the club's localized names for it.

use std::collections::BTreeMap;

use crate::shared::{Locale, Localized};

/// The number of score buckets (and rows and columns of the grid).
pub const SCORES: usize = 5;

/// The default segments: code and English name, in the order the grid first shows them.
pub const DEFAULT_SEGMENTS: [(&str, &str); 10] = [
    ("new_customers", "New Customers"),
    ("potential_loyalists", "Potential Loyalists"),
    ("champions", "Champions"),
    ("promising", "Promising"),
    ("loyal_customers", "Loyal Customers"),
    ("about_to_sleep", "About To Sleep"),
    ("need_attention", "Need Attention"),
    ("hibernating", "Hibernating"),
    ("at_risk", "At Risk"),
    ("cant_lose_them", "Can't Lose Them"),
];

/// The practitioners' grid (`docs/ANALYTICS.md`): rows R = 5 down to 1, columns F = 1 to 5.
pub const DEFAULT_GRID: [[&str; SCORES]; SCORES] = [
    [
        "new_customers",
        "potential_loyalists",
        "potential_loyalists",
        "champions",
        "champions",
    ],
    [
        "promising",
        "potential_loyalists",
        "potential_loyalists",
        "loyal_customers",
        "loyal_customers",
    ],
    [
        "about_to_sleep",
        "about_to_sleep",
        "need_attention",
        "loyal_customers",
        "loyal_customers",
    ],
    [
        "hibernating",
        "hibernating",
        "at_risk",
        "at_risk",
        "cant_lose_them",
    ],
    [
        "hibernating",
        "hibernating",
        "at_risk",
        "at_risk",
        "cant_lose_them",
    ],
];

/// The RFV grid of segment codes and the names the club gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfvSegments {
    /// Rows R = 5, 4, 3, 2, 1 (as the table is printed), each with the codes for F = 1 to 5.
    pub grid: [[String; SCORES]; SCORES],
    /// Names by code: the club's (`[rfv.names]`) over the English defaults.
    pub names: BTreeMap<String, Localized>,
}

impl Default for RfvSegments {
    fn default() -> Self {
        let grid = DEFAULT_GRID.map(|row| row.map(str::to_owned));
        let names = DEFAULT_SEGMENTS
            .iter()
            .map(|(code, name)| {
                (
                    (*code).to_owned(),
                    Localized {
                        en: Some((*name).to_owned()),
                        ..Localized::default()
                    },
                )
            })
            .collect();
        RfvSegments { grid, names }
    }
}

impl RfvSegments {
    /// The segment code of the cell (r, f); scores outside 1-5 are clamped.
    pub fn code(&self, r: u8, f: u8) -> &str {
        let row = SCORES - usize::from(r.clamp(1, SCORES as u8));
        let column = usize::from(f.clamp(1, SCORES as u8)) - 1;
        &self.grid[row][column]
    }

    /// Every code of the grid once, in first-appearance order (R = 5 row first).
    pub fn codes(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = Vec::new();
        for row in &self.grid {
            for code in row {
                if !codes.contains(&code.as_str()) {
                    codes.push(code);
                }
            }
        }
        codes
    }

    /// Whether `code` is a segment of the grid.
    pub fn contains(&self, code: &str) -> bool {
        self.grid.iter().flatten().any(|c| c == code)
    }

    /// The name to show for a code: in `locale`, else `fallback`, else any, else the code.
    pub fn name(&self, code: &str, locale: Locale, fallback: Locale) -> String {
        match self.names.get(code).map(|n| n.resolve(locale, fallback)) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => code.to_owned(),
        }
    }
}
