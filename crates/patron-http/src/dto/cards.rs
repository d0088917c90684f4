//! The shapes of the cards endpoints: replacing a physical card.

use patron_engine::model::CardReplacement;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Replaces a lost or damaged card.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceCardBody {
    /// A pre-printed card to bind instead; absent: a new virtual card is issued.
    pub replacement: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardReplacementOut {
    pub member_id: String,
    /// The number now blocked.
    pub old_number: String,
    /// The member's new card.
    pub new_number: String,
}

impl From<CardReplacement> for CardReplacementOut {
    fn from(replacement: CardReplacement) -> Self {
        let CardReplacement {
            member_id,
            old_number,
            new_number,
        } = replacement;
        CardReplacementOut {
            member_id,
            old_number,
            new_number,
        }
    }
}
