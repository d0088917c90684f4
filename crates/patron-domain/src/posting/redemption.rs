//! What redeeming a reward does: whether the member may have it (`rewards::eligibility`), the
//! points it costs them, and the coupon it gives (its benefit, from the reward's kind and the
//! points, and until when it is valid).

use jiff::{SignedDuration, Timestamp};

use crate::rewards::{self, DiscountValue, Facts, Reason, Reward, RewardKind};

/// A redemption decided: the points to debit (none for a free reward), and the coupon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionPlan {
    pub points: i64,
    pub benefit: Benefit,
    /// `None`: valid until used.
    pub coupon_expires_at: Option<Timestamp>,
}

/// Decides a redemption of `reward` on what the store read under the wallet's and the stock's
/// locks (`facts`), in a currency of `minor_unit` decimals; the reasons refuse it.
pub fn plan_redemption(
    reward: &Reward,
    facts: &Facts<'_>,
    minor_unit: u32,
) -> Result<RedemptionPlan, Vec<Reason>> {
    let decision = rewards::eligibility(reward, facts);
    if !decision.allowed() {
        return Err(decision.reasons);
    }
    let coupon_expires_at = reward.coupon.valid_days.and_then(|days| {
        facts
            .now
            .checked_add(SignedDuration::from_hours(i64::from(days) * 24))
            .ok()
    });
    Ok(RedemptionPlan {
        points: decision.points,
        benefit: benefit_of(reward, decision.points, minor_unit),
        coupon_expires_at,
    })
}

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
