//! What redeeming a reward gives: the coupon's benefit, from the reward's kind and the points
//! it cost.

use crate::rewards::{DiscountValue, Reward, RewardKind};

/// What a coupon gives. `kind`: discount, free_product, points_to_cash, soft_benefit,
/// partner_voucher; the other fields as the kind needs them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Benefit {
    pub kind: &'static str,
    /// A fixed amount off (discounts, points-to-cash), in minor units.
    pub amount_minor: Option<i64>,
    /// A percentage off, as normalized decimal text.
    pub percent: Option<String>,
    /// The most a percent discount takes off, in minor units.
    pub cap_minor: Option<i64>,
    /// The free product.
    pub sku: Option<String>,
    /// The soft benefit's code (birthday_gift, priority_service, event_invite, other).
    pub benefit: Option<&'static str>,
}

/// The benefit a reward gives for `points` spent, in a currency of `minor_unit` decimals.
/// Points-to-cash: `points / points_per_unit` major units, rounded down to the minor unit.
pub fn benefit_of(reward: &Reward, points: i64, minor_unit: u32) -> Benefit {
    match &reward.kind {
        RewardKind::Discount(DiscountValue::Amount { minor }) => Benefit {
            kind: "discount",
            amount_minor: Some(*minor),
            ..Benefit::default()
        },
        RewardKind::Discount(DiscountValue::Percent { percent, cap_minor }) => Benefit {
            kind: "discount",
            percent: Some(percent.normalize().to_string()),
            cap_minor: *cap_minor,
            ..Benefit::default()
        },
        RewardKind::FreeProduct { sku } => Benefit {
            kind: "free_product",
            sku: Some(sku.clone()),
            ..Benefit::default()
        },
        RewardKind::PointsToCash { points_per_unit } => {
            let scale = 10_i64.checked_pow(minor_unit).unwrap_or(1);
            Benefit {
                kind: "points_to_cash",
                amount_minor: Some(points.saturating_mul(scale) / (*points_per_unit).max(1)),
                ..Benefit::default()
            }
        }
        RewardKind::Soft { benefit } => Benefit {
            kind: "soft_benefit",
            benefit: Some(benefit.code()),
            ..Benefit::default()
        },
        RewardKind::PartnerVoucher { .. } => Benefit {
            kind: "partner_voucher",
            ..Benefit::default()
        },
    }
}
