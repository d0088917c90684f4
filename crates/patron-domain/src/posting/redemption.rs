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
            kind: reward.kind.code(),
            amount_minor: Some(*minor),
            ..Benefit::default()
        },
        RewardKind::Discount(DiscountValue::Percent { percent, cap_minor }) => Benefit {
            kind: reward.kind.code(),
            percent: Some(percent.normalize().to_string()),
            cap_minor: *cap_minor,
            ..Benefit::default()
        },
        RewardKind::FreeProduct { sku } => Benefit {
            kind: reward.kind.code(),
            sku: Some(sku.clone()),
            ..Benefit::default()
        },
        RewardKind::PointsToCash { points_per_unit } => {
            let scale = 10_i64.checked_pow(minor_unit).unwrap_or(1);
            Benefit {
                kind: reward.kind.code(),
                amount_minor: Some(points.saturating_mul(scale) / (*points_per_unit).max(1)),
                ..Benefit::default()
            }
        }
        RewardKind::Soft { benefit } => Benefit {
            kind: reward.kind.code(),
            benefit: Some(benefit.code()),
            ..Benefit::default()
        },
        RewardKind::PartnerVoucher { .. } => Benefit {
            kind: reward.kind.code(),
            ..Benefit::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewards::CouponSettings;
    use proptest::prelude::*;

    fn reward(kind: RewardKind, points: i64, valid_days: Option<u32>) -> Reward {
        Reward {
            id: "r".into(),
            names: Default::default(),
            descriptions: Default::default(),
            kind,
            points,
            tier_prices: Vec::new(),
            stock: None,
            limit: None,
            from: None,
            until: None,
            tiers: Vec::new(),
            segments: Vec::new(),
            coupon: CouponSettings {
                prefix: "R".into(),
                valid_days,
            },
        }
    }

    fn facts(available_points: i64) -> Facts<'static> {
        Facts {
            tier: "regular",
            segments: None,
            available_points,
            redeemed_in_period: 0,
            stock_left: None,
            now: Timestamp::from_second(1_000_000).unwrap(),
        }
    }

    #[test]
    fn a_redemption_prices_the_reward_and_dates_its_coupon() {
        let cash = reward(
            RewardKind::PointsToCash {
                points_per_unit: 100,
            },
            250,
            Some(2),
        );
        let plan = plan_redemption(&cash, &facts(1_000), 2).unwrap();
        assert_eq!(plan.points, 250);
        assert_eq!(plan.benefit.kind, "points_to_cash");
        assert_eq!(plan.benefit.amount_minor, Some(250));
        assert_eq!(
            plan.coupon_expires_at,
            Some(Timestamp::from_second(1_000_000 + 2 * 86_400).unwrap())
        );
        let gift = reward(
            RewardKind::FreeProduct {
                sku: "LATTE".into(),
            },
            0,
            None,
        );
        let plan = plan_redemption(&gift, &facts(0), 2).unwrap();
        assert_eq!((plan.points, plan.coupon_expires_at), (0, None));
        assert_eq!(plan.benefit.sku.as_deref(), Some("LATTE"));
    }

    #[test]
    fn a_redemption_the_member_cannot_pay_is_refused() {
        let cash = reward(
            RewardKind::PointsToCash {
                points_per_unit: 100,
            },
            250,
            None,
        );
        assert!(
            !plan_redemption(&cash, &facts(249), 2)
                .unwrap_err()
                .is_empty()
        );
    }

    proptest! {
        /// A redemption never costs more than the member can spend, and points-to-cash never
        /// gives more money than the points buy.
        #[test]
        fn a_redemption_costs_no_more_than_the_balance(
            price in 0i64..10_000,
            available in 0i64..10_000,
            per_unit in 1i64..1_000,
            minor_unit in 0u32..4,
        ) {
            let cash = reward(RewardKind::PointsToCash { points_per_unit: per_unit }, price, None);
            if let Ok(plan) = plan_redemption(&cash, &facts(available), minor_unit) {
                prop_assert!(plan.points <= available);
                let amount = plan.benefit.amount_minor.unwrap();
                let scale = 10i64.pow(minor_unit);
                prop_assert!(amount * per_unit <= price * scale);
            }
        }
    }
}
