//! The shapes of the events endpoint: a custom event and what it earned.

use jiff::Timestamp;
use patron_engine::EventRequest;
use patron_engine::model::EventReceipt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::members::BalanceOut;
use crate::dto::purchases::RuleAwardOut;

/// A custom event that happened to a member: the program's `event` rules of its `type`
/// decide what it earns.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    pub member_id: String,
    /// The event type, as the program's rules name it (`review_written`): 1 to 64
    /// characters of `a-z`, `0-9`, `_`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339); defaults to now. Rule windows and limit periods use it.
    pub occurred_at: Option<Timestamp>,
    /// What the rules read as `event.properties` (at most 100).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: serde_json::Map<String, serde_json::Value>,
}

impl From<EventBody> for EventRequest {
    fn from(body: EventBody) -> Self {
        let EventBody {
            member_id,
            event_type,
            occurred_at,
            properties,
        } = body;
        EventRequest {
            member_id,
            event_type,
            occurred_at,
            properties,
        }
    }
}

/// What a recorded event earned.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventReceiptOut {
    pub event_id: String,
    pub member_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: Timestamp,
    /// Points credited (posted at once): the sum of `rules`.
    pub points: i64,
    /// The event rules that fired, with their points, in the member's language.
    pub rules: Vec<RuleAwardOut>,
    /// The member's balance after the event.
    pub balance: BalanceOut,
}

impl From<EventReceipt> for EventReceiptOut {
    fn from(receipt: EventReceipt) -> Self {
        let EventReceipt {
            event_id,
            member_id,
            event_type,
            occurred_at,
            points,
            rules,
            balance,
        } = receipt;
        EventReceiptOut {
            event_id,
            member_id,
            event_type,
            occurred_at,
            points,
            rules: rules.into_iter().map(RuleAwardOut::from).collect(),
            balance: BalanceOut::from(balance),
        }
    }
}
