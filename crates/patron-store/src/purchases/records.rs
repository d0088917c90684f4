//! The records of purchases and refunds: what comes in, what is stored, what a refund answers.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::wallet::Balance;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseLine {
    pub line_no: i64,
    pub sku: String,
    pub category: String,
    /// A decimal, as text (`"2"`, `"0.75"`).
    pub quantity: String,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    /// Whether the line earns points (the program can exclude SKUs and categories).
    pub eligible: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPurchase {
    pub id: String,
    pub document_id: String,
    pub store_id: String,
    pub channel: String,
    pub member_id: Option<String>,
    pub occurred_at: Timestamp,
    pub currency: String,
    pub total_minor: i64,
    pub eligible_minor: i64,
    pub lines: Vec<PurchaseLine>,
    pub request_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub id: String,
    pub document_id: String,
    pub store_id: String,
    pub channel: String,
    pub member_id: Option<String>,
    pub occurred_at: Timestamp,
    pub currency: String,
    pub total_minor: i64,
    pub eligible_minor: i64,
    pub points: i64,
    pub earn_state: String,
    pub pending_until: Option<Timestamp>,
    pub refunded_minor: i64,
    pub settled_points: i64,
    pub clawed_back_points: i64,
    pub lines: Vec<PurchaseLine>,
    pub refunded_quantities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    pub line_no: i64,
    /// A decimal, as text.
    pub quantity: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub id: String,
    pub purchase_id: String,
    pub document_id: String,
    /// None: everything that remains of the purchase.
    pub lines: Option<Vec<RefundLine>>,
    pub occurred_at: Timestamp,
    pub request_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub refund_id: String,
    pub purchase_id: String,
    pub document_id: String,
    pub amount_minor: i64,
    pub clawed_back_points: i64,
    pub reduced_pending_points: i64,
    pub forgiven_points: i64,
    pub balance: Option<Balance>,
}
