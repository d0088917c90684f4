//! The shapes of the purchases endpoints: the purchase and its lines, the receipt with the
//! rules that fired, refunds, attaching an anonymous purchase.

use jiff::Timestamp;
use patron_engine::model::{Purchase, PurchaseLine, PurchaseReceipt, RefundReceipt, RuleAward};
use patron_engine::{PurchaseLineRequest, PurchaseRequest, RefundLineRequest, RefundRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dto::members::{BalanceOut, TierOut};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseLineBody {
    pub sku: String,
    pub category: String,
    /// A decimal as text (`"2"`, `"0.75"`), so no precision is lost in JSON.
    pub quantity: String,
    /// The unit price in minor units of the currency (cents).
    pub unit_price_minor: i64,
    /// A discount on the whole line, in minor units.
    #[serde(default)]
    pub discount_minor: i64,
}

/// A purchase at a till or a web shop. Posted once per `document_id`: posting the same
/// document again answers the stored receipt.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    /// The shop's own id of the receipt.
    pub document_id: String,
    /// Absent: an anonymous purchase (attach it to a member later).
    pub member_id: Option<String>,
    pub store_id: String,
    /// pos | web | phone | app
    pub channel: String,
    /// When it happened at the till (RFC 3339); defaults to now.
    pub occurred_at: Option<Timestamp>,
    /// ISO 4217; must be the program's currency.
    pub currency: String,
    pub lines: Vec<PurchaseLineBody>,
}

impl From<PurchaseBody> for PurchaseRequest {
    fn from(body: PurchaseBody) -> Self {
        let PurchaseBody {
            document_id,
            member_id,
            store_id,
            channel,
            occurred_at,
            currency,
            lines,
        } = body;
        PurchaseRequest {
            document_id,
            member_id,
            store_id,
            channel,
            occurred_at,
            currency,
            lines: lines
                .into_iter()
                .map(|line| {
                    let PurchaseLineBody {
                        sku,
                        category,
                        quantity,
                        unit_price_minor,
                        discount_minor,
                    } = line;
                    PurchaseLineRequest {
                        sku,
                        category,
                        quantity,
                        unit_price_minor,
                        discount_minor,
                    }
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLineBody {
    /// The purchase line (1-based).
    pub line_no: i64,
    /// A decimal as text.
    pub quantity: String,
}

/// Returns goods. Applied once per `document_id`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// The shop's id of the return document.
    pub document_id: String,
    /// Absent: everything that remains of the purchase.
    pub lines: Option<Vec<RefundLineBody>>,
    pub occurred_at: Option<Timestamp>,
}

impl From<RefundBody> for RefundRequest {
    fn from(body: RefundBody) -> Self {
        let RefundBody {
            document_id,
            lines,
            occurred_at,
        } = body;
        RefundRequest {
            document_id,
            lines: lines.map(|lines| {
                lines
                    .into_iter()
                    .map(|RefundLineBody { line_no, quantity }| RefundLineRequest {
                        line_no,
                        quantity,
                    })
                    .collect()
            }),
            occurred_at,
        }
    }
}

/// Gives an anonymous purchase to a member, who earns for it then.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    pub member_id: String,
}

/// What a posted purchase earned.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseReceiptOut {
    pub purchase_id: String,
    pub document_id: String,
    pub member_id: Option<String>,
    /// Points earned: `base_points` plus the points of every rule in `rules`.
    pub points: i64,
    /// The program's base earning (eligible amount × rate × the tier multiplier).
    pub base_points: i64,
    /// The earning rules that fired, in the order they ran, each with its points and its
    /// name in the member's language (for the "you earned..." lines of a receipt).
    pub rules: Vec<RuleAwardOut>,
    /// none (anonymous, or nothing earned) | pending | posted | voided
    pub points_state: String,
    /// When pending points post, once the return window closes.
    pub pending_until: Option<Timestamp>,
    /// The member's balance after the purchase (null in a dry run).
    pub balance: Option<BalanceOut>,
    /// The member's tier after the purchase (null in a dry run).
    pub tier: Option<TierOut>,
}

/// One earning rule that fired.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleAwardOut {
    /// The rule's id in the program.
    pub rule_id: String,
    /// The rule's name in the member's language (else the club's default language).
    pub name: String,
    /// Points this rule gave.
    pub points: i64,
}

impl From<RuleAward> for RuleAwardOut {
    fn from(award: RuleAward) -> Self {
        let RuleAward {
            rule_id,
            name,
            points,
        } = award;
        RuleAwardOut {
            rule_id,
            name,
            points,
        }
    }
}

impl From<PurchaseReceipt> for PurchaseReceiptOut {
    fn from(receipt: PurchaseReceipt) -> Self {
        let PurchaseReceipt {
            purchase_id,
            document_id,
            member_id,
            points,
            base_points,
            rules,
            points_state,
            pending_until,
            balance,
            tier,
        } = receipt;
        PurchaseReceiptOut {
            purchase_id,
            document_id,
            member_id,
            points,
            base_points,
            rules: rules.into_iter().map(RuleAwardOut::from).collect(),
            points_state,
            pending_until,
            balance: balance.map(BalanceOut::from),
            tier: tier.map(TierOut::from),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseLineOut {
    pub line_no: i64,
    pub sku: String,
    pub category: String,
    /// A decimal as text.
    pub quantity: String,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    /// Whether the line earns points.
    pub eligible: bool,
    /// How much of the quantity was returned, a decimal as text.
    pub refunded_quantity: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseOut {
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
    /// none | pending | posted | voided
    pub earn_state: String,
    pub pending_until: Option<Timestamp>,
    pub refunded_minor: i64,
    /// Points of the purchase that were posted to the member.
    pub settled_points: i64,
    pub clawed_back_points: i64,
    pub lines: Vec<PurchaseLineOut>,
    /// The rules that fired, with their points, in the member's language (the receipt's
    /// lines, as the purchase answered them).
    pub rules: Vec<RuleAwardOut>,
}

impl From<Purchase> for PurchaseOut {
    fn from(purchase: Purchase) -> Self {
        let Purchase {
            id,
            document_id,
            store_id,
            channel,
            member_id,
            occurred_at,
            currency,
            total_minor,
            eligible_minor,
            points,
            earn_state,
            pending_until,
            refunded_minor,
            settled_points,
            clawed_back_points,
            lines,
            refunded_quantities,
        } = purchase;
        let lines = lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                let PurchaseLine {
                    line_no,
                    sku,
                    category,
                    quantity,
                    unit_price_minor,
                    discount_minor,
                    total_minor,
                    eligible,
                } = line;
                PurchaseLineOut {
                    line_no,
                    sku,
                    category,
                    quantity,
                    unit_price_minor,
                    discount_minor,
                    total_minor,
                    eligible,
                    refunded_quantity: refunded_quantities
                        .get(index)
                        .cloned()
                        .unwrap_or_else(|| "0".to_string()),
                }
            })
            .collect();
        PurchaseOut {
            id,
            document_id,
            store_id,
            channel,
            member_id,
            occurred_at,
            currency,
            total_minor,
            eligible_minor,
            points,
            earn_state,
            pending_until,
            refunded_minor,
            settled_points,
            clawed_back_points,
            lines,
            rules: Vec::new(),
        }
    }
}

/// What a refund did.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundReceiptOut {
    pub refund_id: String,
    pub purchase_id: String,
    pub document_id: String,
    pub amount_minor: i64,
    /// Posted points taken back.
    pub clawed_back_points: i64,
    /// Pending points that will not post.
    pub reduced_pending_points: i64,
    /// Points the return policy let the member keep.
    pub forgiven_points: i64,
    pub balance: Option<BalanceOut>,
}

impl From<RefundReceipt> for RefundReceiptOut {
    fn from(receipt: RefundReceipt) -> Self {
        let RefundReceipt {
            refund_id,
            purchase_id,
            document_id,
            amount_minor,
            clawed_back_points,
            reduced_pending_points,
            forgiven_points,
            balance,
        } = receipt;
        RefundReceiptOut {
            refund_id,
            purchase_id,
            document_id,
            amount_minor,
            clawed_back_points,
            reduced_pending_points,
            forgiven_points,
            balance: balance.map(BalanceOut::from),
        }
    }
}
