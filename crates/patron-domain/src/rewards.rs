//! The rewards catalog (`[[rewards]]` in the program) and the one decision about it: can this
//! member have this reward now, and if not, why not.
//!
//! A reward costs points (one price, or a price per tier), may have a stock (counted by the
//! store), a limit per member (per day/week/month/year or lifetime), an availability window,
//! and eligibility by tier and by segment. Redeeming one issues a coupon: a code of the
//! reward's [`crate::coupon::CodeFormat`], or, for a partner voucher, the next unused code of
//! the partner's uploaded pool. [`eligibility`] is pure: the store gathers the facts under the
//! member's wallet lock and the reward's stock lock, and asks it.

use jiff::Timestamp;
use jiff::civil::Weekday;
use rust_decimal::Decimal;

use crate::coupon::{CodeError, CodeFormat};
use crate::rules::limit::{LimitPer, LimitPeriod, RuleLimit, limit_period};
use crate::shared::Localized;

/// What a discount takes off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscountValue {
    /// A fixed amount, in minor currency units.
    Amount { minor: i64 },
    /// A percentage of the cart (0 < percent ≤ 100), at most `cap_minor` when set.
    Percent {
        percent: Decimal,
        cap_minor: Option<i64>,
    },
}

impl DiscountValue {
    /// The discount on a cart of `cart_minor` (never more than the cart).
    pub fn on_cart(&self, cart_minor: i64) -> i64 {
        let cart = cart_minor.max(0);
        match self {
            DiscountValue::Amount { minor } => (*minor).min(cart),
            DiscountValue::Percent { percent, cap_minor } => {
                let raw = (Decimal::from(cart) * *percent / Decimal::from(100)).floor();
                let raw = i64::try_from(raw).unwrap_or(i64::MAX);
                cap_minor.map_or(raw, |cap| raw.min(cap)).min(cart)
            }
        }
    }
}

/// The kinds of soft benefit: things the member gets that are not money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoftBenefit {
    BirthdayGift,
    PriorityService,
    EventInvite,
    Other,
}

impl SoftBenefit {
    /// Every soft benefit with its word (the program's `benefit = "..."`, a coupon's
    /// `benefit.benefit`).
    pub const CODES: &'static [(&'static str, SoftBenefit)] = &[
        ("birthday_gift", SoftBenefit::BirthdayGift),
        ("priority_service", SoftBenefit::PriorityService),
        ("event_invite", SoftBenefit::EventInvite),
        ("other", SoftBenefit::Other),
    ];

    /// The words alone, in the same order (the API documents them).
    pub const WORDS: &'static [&'static str] =
        &["birthday_gift", "priority_service", "event_invite", "other"];

    /// The benefit's word.
    pub fn code(self) -> &'static str {
        match self {
            SoftBenefit::BirthdayGift => "birthday_gift",
            SoftBenefit::PriorityService => "priority_service",
            SoftBenefit::EventInvite => "event_invite",
            SoftBenefit::Other => "other",
        }
    }
}

/// What a reward gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardKind {
    Discount(DiscountValue),
    /// One unit of a product, free.
    FreeProduct {
        sku: String,
    },
    /// Points spent at checkout as money: `points_per_unit` points buy one major currency
    /// unit. The coupon is worth `price / points_per_unit` units.
    PointsToCash {
        points_per_unit: i64,
    },
    /// Not money: a birthday gift, priority service, an event invitation.
    Soft {
        benefit: SoftBenefit,
    },
    /// A code from a partner's pool, uploaded in advance (`pool` names it).
    PartnerVoucher {
        pool: String,
    },
}

impl RewardKind {
    /// The kind without its settings.
    pub fn code_kind(&self) -> RewardKindCode {
        match self {
            RewardKind::Discount(_) => RewardKindCode::Discount,
            RewardKind::FreeProduct { .. } => RewardKindCode::FreeProduct,
            RewardKind::PointsToCash { .. } => RewardKindCode::PointsToCash,
            RewardKind::Soft { .. } => RewardKindCode::SoftBenefit,
            RewardKind::PartnerVoucher { .. } => RewardKindCode::PartnerVoucher,
        }
    }

    /// The stable word of the kind, as written in the program.
    pub fn code(&self) -> &'static str {
        self.code_kind().code()
    }
}

/// The kind of a reward without its settings, and the one table of the words that name the
/// kinds: in the program file (`kind = "discount"`), in the database (`coupons.kind`) and in the
/// API (a coupon's `benefit.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RewardKindCode {
    Discount,
    FreeProduct,
    PointsToCash,
    SoftBenefit,
    PartnerVoucher,
}

impl RewardKindCode {
    /// Every kind with its word, in the order the documentation lists them.
    pub const CODES: &'static [(&'static str, RewardKindCode)] = &[
        ("discount", RewardKindCode::Discount),
        ("free_product", RewardKindCode::FreeProduct),
        ("points_to_cash", RewardKindCode::PointsToCash),
        ("soft_benefit", RewardKindCode::SoftBenefit),
        ("partner_voucher", RewardKindCode::PartnerVoucher),
    ];

    /// The kind's word.
    pub fn code(self) -> &'static str {
        match self {
            RewardKindCode::Discount => "discount",
            RewardKindCode::FreeProduct => "free_product",
            RewardKindCode::PointsToCash => "points_to_cash",
            RewardKindCode::SoftBenefit => "soft_benefit",
            RewardKindCode::PartnerVoucher => "partner_voucher",
        }
    }

    /// The kind this exact word names, if any.
    pub fn from_code(code: &str) -> Option<RewardKindCode> {
        RewardKindCode::CODES
            .iter()
            .find(|(word, _)| *word == code)
            .map(|(_, kind)| *kind)
    }
}

/// A price for members of one tier, overriding the reward's price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierPrice {
    pub tier: String,
    pub points: i64,
}

/// How the coupons of a reward look and how long they last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponSettings {
    pub prefix: String,
    /// Days a coupon stays valid after it is issued; `None`: until used.
    pub valid_days: Option<u32>,
}

impl CouponSettings {
    /// The code format: the prefix, 8 random characters in groups of 4.
    pub fn format(&self) -> Result<CodeFormat, CodeError> {
        CodeFormat::new(&self.prefix, 8, 4)
    }
}

/// One entry of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    /// `[a-z0-9_]+`, unique in the program.
    pub id: String,
    pub names: Localized,
    pub descriptions: Localized,
    pub kind: RewardKind,
    /// Points it costs (0: free).
    pub points: i64,
    pub tier_prices: Vec<TierPrice>,
    /// Units there are in all; `None`: unlimited. Partner vouchers are limited by their pool.
    pub stock: Option<i64>,
    /// How often one member may have it.
    pub limit: Option<RuleLimit>,
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Tier codes that may have it; empty: every tier.
    pub tiers: Vec<String>,
    /// Segment codes, one of which the member must be in; empty: everyone.
    pub segments: Vec<String>,
    pub coupon: CouponSettings,
}

/// Why a member cannot have a reward now. Stable snake_case codes for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    NotInTier,
    NotInSegment,
    OutOfWindow,
    OutOfStock,
    LimitReached,
    InsufficientPoints,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::NotInTier => "not_in_tier",
            Reason::NotInSegment => "not_in_segment",
            Reason::OutOfWindow => "out_of_window",
            Reason::OutOfStock => "out_of_stock",
            Reason::LimitReached => "limit_reached",
            Reason::InsufficientPoints => "insufficient_points",
        }
    }
}

/// What is known about the member and the reward at the moment of deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub tier: &'a str,
    /// The member's segments, when known; `None` skips the segment check.
    pub segments: Option<&'a [String]>,
    /// Spendable points.
    pub available_points: i64,
    /// How many times the member had this reward in the current limit period.
    pub redeemed_in_period: i64,
    /// Units left (`None`: unlimited).
    pub stock_left: Option<i64>,
    pub now: Timestamp,
}

/// The decision: the price this member pays, and every reason they cannot have it (empty:
/// they can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub points: i64,
    pub reasons: Vec<Reason>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.reasons.is_empty()
    }
}

impl Reward {
    /// The price for a member of `tier`.
    pub fn price_for(&self, tier: &str) -> i64 {
        self.tier_prices
            .iter()
            .find(|price| price.tier == tier)
            .map_or(self.points, |price| price.points)
    }

    /// Whether `at` is inside the availability window (`from` inclusive, `until` exclusive).
    pub fn available_at(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|from| at >= from) && self.until.is_none_or(|until| at < until)
    }

    /// The period the member limit counts over at `at` (lifetime when there is no limit).
    pub fn limit_period(&self, at: Timestamp, cal: &crate::calendar::Calendar) -> LimitPeriod {
        let limit = self.limit.unwrap_or(RuleLimit {
            count: u32::MAX,
            per: LimitPer::Lifetime,
            week_start: Weekday::Monday,
        });
        limit_period(&limit, at, cal)
    }
}

/// Can this member have this reward now, and if not, why not. All reasons are listed, in a
/// fixed order, so a catalog page can explain each.
pub fn eligibility(reward: &Reward, facts: &Facts<'_>) -> Decision {
    let points = reward.price_for(facts.tier);
    let mut reasons = Vec::new();
    if !reward.tiers.is_empty() && !reward.tiers.iter().any(|tier| tier == facts.tier) {
        reasons.push(Reason::NotInTier);
    }
    if let Some(segments) = facts.segments
        && !reward.segments.is_empty()
        && !reward
            .segments
            .iter()
            .any(|wanted| segments.contains(wanted))
    {
        reasons.push(Reason::NotInSegment);
    }
    if !reward.available_at(facts.now) {
        reasons.push(Reason::OutOfWindow);
    }
    if facts.stock_left.is_some_and(|left| left <= 0) {
        reasons.push(Reason::OutOfStock);
    }
    if let Some(limit) = &reward.limit
        && facts.redeemed_in_period >= i64::from(limit.count)
    {
        reasons.push(Reason::LimitReached);
    }
    if facts.available_points < points {
        reasons.push(Reason::InsufficientPoints);
    }
    Decision { points, reasons }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_soft_benefit_words_are_the_codes_words() {
        let words: Vec<&str> = SoftBenefit::CODES.iter().map(|(word, _)| *word).collect();
        assert_eq!(words, SoftBenefit::WORDS);
    }

    #[test]
    fn every_reward_kind_code_reads_back_as_its_kind() {
        for (word, kind) in RewardKindCode::CODES {
            assert_eq!(kind.code(), *word);
            assert_eq!(RewardKindCode::from_code(word), Some(*kind));
        }
        assert_eq!(RewardKindCode::CODES.len(), 5);
        for (word, benefit) in SoftBenefit::CODES {
            assert_eq!(benefit.code(), *word);
        }
        assert_eq!(RewardKindCode::from_code("Discount"), None);
        assert_eq!(reward().kind.code(), "free_product");
    }

    fn reward() -> Reward {
        Reward {
            id: "free_latte".into(),
            names: Localized {
                en: Some("Free latte".into()),
                ..Localized::default()
            },
            descriptions: Localized::default(),
            kind: RewardKind::FreeProduct {
                sku: "LATTE".into(),
            },
            points: 100,
            tier_prices: vec![TierPrice {
                tier: "gold".into(),
                points: 80,
            }],
            stock: Some(5),
            limit: Some(RuleLimit {
                count: 1,
                per: LimitPer::Day,
                week_start: Weekday::Monday,
            }),
            from: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            until: Some("2027-01-01T00:00:00Z".parse().unwrap()),
            tiers: vec!["regular".into(), "gold".into()],
            segments: vec!["champions".into()],
            coupon: CouponSettings {
                prefix: "R".into(),
                valid_days: None,
            },
        }
    }

    fn facts(tier: &str) -> Facts<'_> {
        Facts {
            tier,
            segments: None,
            available_points: 1_000,
            redeemed_in_period: 0,
            stock_left: Some(5),
            now: "2026-03-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn an_eligible_member_pays_the_tier_price() {
        let decision = eligibility(&reward(), &facts("gold"));
        assert!(decision.allowed());
        assert_eq!(decision.points, 80);
        assert_eq!(eligibility(&reward(), &facts("regular")).points, 100);
    }

    #[test]
    fn every_reason_is_listed() {
        let segments = vec!["at_risk".to_owned()];
        let decision = eligibility(
            &reward(),
            &Facts {
                tier: "reserve",
                segments: Some(&segments),
                available_points: 10,
                redeemed_in_period: 1,
                stock_left: Some(0),
                now: "2027-02-01T00:00:00Z".parse().unwrap(),
            },
        );
        let codes: Vec<&str> = decision.reasons.iter().map(|r| r.code()).collect();
        assert_eq!(
            codes,
            [
                "not_in_tier",
                "not_in_segment",
                "out_of_window",
                "out_of_stock",
                "limit_reached",
                "insufficient_points"
            ]
        );
    }

    #[test]
    fn percent_discounts_are_capped_and_never_exceed_the_cart() {
        let value = DiscountValue::Percent {
            percent: Decimal::from(20),
            cap_minor: Some(500),
        };
        assert_eq!(value.on_cart(1_000), 200);
        assert_eq!(value.on_cart(10_000), 500);
        assert_eq!(DiscountValue::Amount { minor: 700 }.on_cart(300), 300);
    }

    const CLUB: &str = "[club]\nname = \"C\"\ndefault_locale = \"en\"\ncurrency = \"USD\"\n\
        time_zone = \"UTC\"\n\n[earning]\npoints_per_unit = \"1\"\n\n[expiry]\npolicy = \"never\"\n\n\
        [returns]\npolicy = \"within_balance\"\n\n[exit]\npolicy = \"forfeit\"\n\n";

    fn problems(rewards: &str) -> Vec<String> {
        let source = format!("{CLUB}{rewards}");
        match crate::program::parse_program(&source) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => diagnostics
                .iter()
                .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
                .collect(),
        }
    }

    #[test]
    fn the_catalog_parses_every_kind() {
        let source = format!(
            "{CLUB}[[rewards]]\nid = \"off\"\nname = \"10% off\"\nkind = \"discount\"\n\
             percent = 10\ncap = \"5.00\"\npoints = 50\nlimit = {{ count = 1, per = \"month\" }}\n\
             from = 2026-01-01\nuntil = 2026-02-01\n\n\
             [[rewards]]\nid = \"cash\"\nname = \"Cash\"\nkind = \"points_to_cash\"\n\
             points_per_unit = 100\npoints = 500\n\n\
             [[rewards]]\nid = \"gift\"\nname = {{ en = \"Gift\" }}\nkind = \"soft_benefit\"\n\
             benefit = \"birthday_gift\"\npoints = 0\nsegments = [\"champions\"]\n\n\
             [[rewards]]\nid = \"movie\"\nname = \"Movie\"\nkind = \"partner_voucher\"\n\
             pool = \"cinema\"\npoints = 300\n"
        );
        let program = crate::program::parse_program(&source).unwrap();
        assert_eq!(program.rewards.len(), 4);
        let off = program.reward("off").unwrap();
        assert_eq!(
            off.kind,
            RewardKind::Discount(DiscountValue::Percent {
                percent: Decimal::from(10),
                cap_minor: Some(500)
            })
        );
        assert_eq!(off.limit.map(|l| l.per), Some(LimitPer::Month));
        assert!(off.available_at("2026-01-15T00:00:00Z".parse().unwrap()));
        assert!(off.available_at("2026-02-01T23:00:00Z".parse().unwrap()));
        assert!(!off.available_at("2026-02-02T00:00:00Z".parse().unwrap()));
        assert_eq!(program.reward("gift").unwrap().segments, ["champions"]);
    }

    #[test]
    fn catalog_mistakes_are_reported_at_their_place() {
        let found = problems(
            "[[rewards]]\nid = \"a\"\nname = \"A\"\nkind = \"free_product\"\nsku = \"X\"\n\
             points = 1\ntiers = [\"gold\"]\namount = \"1.00\"\n\n\
             [[rewards]]\nid = \"a\"\nname = \"B\"\nkind = \"discount\"\npoints = -1\n\
             coupon_prefix = \"OIL\"\n",
        );
        let joined = found.join("\n");
        assert!(joined.contains("unknown tier \"gold\""), "{joined}");
        assert!(
            joined.contains("does not apply to a reward of kind \"free_product\""),
            "{joined}"
        );
        assert!(joined.contains("reward id \"a\" is used twice"), "{joined}");
        assert!(joined.contains("needs `amount` or `percent`"), "{joined}");
        assert!(joined.contains("coupon_prefix"), "{joined}");
        assert!(found.iter().all(|line| line.starts_with(char::is_numeric)));
    }
}
