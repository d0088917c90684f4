//! Rewards, coupons and promotions: the catalog as one member sees it, redeeming a reward
//! (which issues a coupon), validating, redeeming and releasing coupons at a till or web shop,
//! promotions with codes generated in bulk, and partner code pools.

use patron_domain::coupon::{self, CodeFormat};
use patron_domain::program::Locale;
use patron_domain::rewards::{self, Facts, Reward, RewardKindCode};
use patron_store::Rejection;
use patron_store::coupons::{
    CodeBatch, Coupon, CouponBenefit, CouponCheck, CouponReceipt, CouponUse, NewPromotion,
    PeriodLimit, Promotion, per_from_word,
};
use patron_store::rewards::{NewRewardRedemption, RewardRedemption};
use patron_store::tenants::Tenant;
use serde::{Deserialize, Serialize};

use crate::{
    Engine, EngineError, Outcome, claims, new_id, request_hash, unwrap_idempotent,
    validate_idempotency_key,
};

/// The most codes one bulk generation makes.
pub const CODES_PER_BATCH_MAX: i64 = 100_000;
/// The most codes a bulk generation returns in its answer (more: list them by cursor).
pub const CODES_RETURNED_MAX: i64 = 1_000;
/// The most partner codes one upload takes.
pub const PARTNER_CODES_PER_UPLOAD_MAX: usize = 100_000;
/// How many codes a reward redemption tries before giving up (collisions are very rare).
const CANDIDATE_CODES: usize = 8;

/// One reward of the catalog as a member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub reward: Reward,
    pub name: String,
    pub description: String,
    /// The price for this member (their tier's price), or the base price.
    pub points: i64,
    pub stock_left: Option<i64>,
    /// `None` without a member.
    pub eligible: Option<bool>,
    /// Reason codes (`not_in_tier`, `out_of_window`, `out_of_stock`, `limit_reached`,
    /// `insufficient_points`...).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionRequest {
    pub id: Option<String>,
    pub name: String,
    pub benefit: CouponBenefit,
    #[serde(default)]
    pub prefix: String,
    pub budget_redemptions: Option<i64>,
    pub budget_minor: Option<i64>,
    pub limit: Option<PeriodLimit>,
    pub member_limit: Option<PeriodLimit>,
    pub uses_per_code: Option<i64>,
    pub starts_at: Option<jiff::Timestamp>,
    pub ends_at: Option<jiff::Timestamp>,
}

/// The coupon benefit `reward` gives for `points` spent; a cash value is in units of
/// 10^-`minor_unit` of the currency (the catalog, which states no currency, passes 0).
pub fn benefit_of(reward: &Reward, points: i64, minor_unit: u32) -> CouponBenefit {
    patron_domain::posting::benefit_of(reward, points, minor_unit).into()
}

/// The canonical forms a typed code may stand for, or why it cannot be a code: a code of
/// ours must pass the check character; a partner code is looked up as typed (normalized).
pub fn code_candidates(input: &str) -> (Vec<String>, Option<Rejection>) {
    match coupon::validate(input) {
        Ok(canonical) => (vec![canonical], None),
        Err(error) => {
            let normalized = coupon::normalize(input);
            let rejection = Rejection::InvalidCouponCode {
                coupon: input.to_string(),
                reason: error.to_string(),
            };
            let plausible = !normalized.is_empty()
                && normalized.len() <= 64
                && normalized.chars().all(|c| c.is_ascii_alphanumeric());
            (
                if plausible {
                    vec![normalized]
                } else {
                    Vec::new()
                },
                Some(rejection),
            )
        }
    }
}

/// The periods a promotion's limits count in (`per`).
pub const LIMIT_PERIOD_WORDS: &[&str] = &["day", "week", "month", "year", "lifetime"];

/// The kinds of benefit a promotion's codes give.
pub const PROMOTION_BENEFIT_KINDS: &[&str] = &["discount", "free_product", "soft_benefit"];

fn check_limit(field: &str, limit: Option<&PeriodLimit>) -> Result<(), EngineError> {
    if let Some(limit) = limit {
        if !LIMIT_PERIOD_WORDS.contains(&limit.per.as_str()) {
            return Err(EngineError::invalid(
                format!("{field}.per"),
                format!("must be one of {}", LIMIT_PERIOD_WORDS.join(", ")),
            ));
        }
        if limit.count < 1 {
            return Err(EngineError::invalid(
                format!("{field}.count"),
                "must be at least 1",
            ));
        }
        per_from_word(&limit.per).map_err(|_| {
            EngineError::invalid(
                format!("{field}.per"),
                "must be day, week, month, year or lifetime",
            )
        })?;
    }
    Ok(())
}

/// The benefit as stored: checked, its percent (if any) read in any digits and written in
/// ASCII, since the store reads it back with a plain decimal parser.
/// A discount's percent, read in any digits: above 0 and at most 100.
fn read_percent(percent: &str) -> Result<patron_domain::rust_decimal::Decimal, EngineError> {
    use patron_domain::rust_decimal::Decimal;
    match patron_domain::text::number::parse_decimal(percent) {
        Ok(p) if p > Decimal::ZERO && p <= Decimal::from(100) => Ok(p),
        Ok(_) => Err(EngineError::invalid(
            "benefit.percent",
            "must be a number above 0 and at most 100",
        )),
        Err(e) => Err(EngineError::invalid("benefit.percent", e.to_string())),
    }
}

/// Every member a benefit carries is checked, whichever kind reads it: a value the kind does
/// not use is still refused when it is malformed, as the API's document says.
fn check_benefit_members(benefit: &CouponBenefit) -> Result<(), EngineError> {
    use patron_domain::limits::AMOUNT_MINOR_CEILING;
    for (field, value) in [
        ("amount_minor", benefit.amount_minor),
        ("cap_minor", benefit.cap_minor),
    ] {
        if value.is_some_and(|v| !(1..=AMOUNT_MINOR_CEILING).contains(&v)) {
            return Err(EngineError::invalid(
                format!("benefit.{field}"),
                format!("must be 1 to {AMOUNT_MINOR_CEILING}"),
            ));
        }
    }
    if let Some(sku) = &benefit.sku {
        patron_domain::text::check_identifier(sku, patron_domain::text::IDENTIFIER_CHARS_MAX)
            .map_err(|e| EngineError::invalid("benefit.sku", e.to_string()))?;
    }
    if let Some(word) = &benefit.benefit
        && !rewards::SoftBenefit::WORDS.contains(&word.as_str())
    {
        return Err(EngineError::invalid(
            "benefit.benefit",
            format!("must be one of {}", rewards::SoftBenefit::WORDS.join(", ")),
        ));
    }
    if let Some(percent) = &benefit.percent {
        read_percent(percent)?;
    }
    Ok(())
}

fn check_benefit(benefit: &CouponBenefit) -> Result<CouponBenefit, EngineError> {
    let invalid =
        |field: &str, message: &str| Err(EngineError::invalid(format!("benefit.{field}"), message));
    let ok = || Ok(benefit.clone());
    if !PROMOTION_BENEFIT_KINDS.contains(&benefit.kind.as_str()) {
        return invalid("kind", "must be discount, free_product or soft_benefit");
    }
    check_benefit_members(benefit)?;
    match RewardKindCode::from_code(&benefit.kind) {
        // The members are checked above: what is left is which of them the kind needs.
        Some(RewardKindCode::Discount) => match (&benefit.amount_minor, &benefit.percent) {
            (Some(_), None) => ok(),
            (None, Some(percent)) => Ok(CouponBenefit {
                percent: Some(read_percent(percent)?.normalize().to_string()),
                ..benefit.clone()
            }),
            _ => invalid(
                "amount_minor",
                "a discount has a positive amount_minor or a percent, not both",
            ),
        },
        Some(RewardKindCode::FreeProduct) if benefit.sku.is_some() => ok(),
        Some(RewardKindCode::FreeProduct) => invalid("sku", "a free product needs a sku"),
        Some(RewardKindCode::SoftBenefit) => ok(),
        _ => invalid("kind", "must be discount, free_product or soft_benefit"),
    }
}

impl Engine {
    /// Looks the code up; a code that fails its check character and is not a partner code is
    /// a typo, and says so.
    async fn resolve_code(&self, tenant: &Tenant, input: &str) -> Result<Vec<String>, EngineError> {
        let (candidates, rejection) = code_candidates(input);
        let Some(rejection) = rejection else {
            return Ok(candidates);
        };
        if candidates.is_empty() {
            return Err(rejection.into());
        }
        match self.store.coupon(tenant.id, &candidates, self.now()).await {
            Ok(_) => Ok(candidates),
            Err(patron_store::StoreError::Rejected(Rejection::CouponNotFound { .. })) => {
                Err(rejection.into())
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The catalog, in program order, in `locale`; for a member, with their price and every
    /// reason they cannot have each reward now.
    pub async fn rewards_catalog(
        &self,
        tenant: &Tenant,
        member_id: Option<&str>,
        locale: Option<Locale>,
    ) -> Result<Vec<CatalogEntry>, EngineError> {
        let program = self.program(tenant).await?.program;
        let now = self.now();
        let fallback = program.default_locale;
        let facts = match member_id {
            Some(member_id) => Some(
                self.store
                    .reward_counts(tenant.id, &program, member_id, now)
                    .await?,
            ),
            None => None,
        };
        // The member's current segments, when some reward is limited to segments.
        let member_segments = match member_id {
            Some(member_id) if program.rewards.iter().any(|r| !r.segments.is_empty()) => {
                Some(self.store.member_segments(tenant.id, member_id).await?)
            }
            _ => None,
        };
        let locale = locale
            .or_else(|| {
                facts
                    .as_ref()
                    .and_then(|(member, _, _)| member.profile.locale.as_deref())
                    .and_then(Locale::from_code)
            })
            .unwrap_or(fallback);
        let mut entries = Vec::new();
        for reward in &program.rewards {
            let name = reward.names.resolve(locale, fallback).to_string();
            let description = reward.descriptions.resolve(locale, fallback).to_string();
            let entry = match &facts {
                Some((member, balance, counts)) => {
                    let counted = counts.get(&reward.id);
                    let stock_left = counted.and_then(|c| c.stock_left);
                    let decision = rewards::eligibility(
                        reward,
                        &Facts {
                            tier: &member.tier,
                            segments: member_segments.as_deref(),
                            available_points: balance.available,
                            redeemed_in_period: counted.map_or(0, |c| c.redeemed_in_period),
                            stock_left,
                            now,
                        },
                    );
                    CatalogEntry {
                        reward: reward.clone(),
                        name,
                        description,
                        points: decision.points,
                        stock_left,
                        eligible: Some(decision.allowed()),
                        reasons: decision.reasons.iter().map(|r| r.code().into()).collect(),
                    }
                }
                None => CatalogEntry {
                    reward: reward.clone(),
                    name,
                    description,
                    points: reward.points,
                    stock_left: None,
                    eligible: None,
                    reasons: if reward.available_at(now) {
                        Vec::new()
                    } else {
                        vec![rewards::Reason::OutOfWindow.code().into()]
                    },
                },
            };
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Redeems a reward for a member: eligibility, points, stock and the coupon in one unit of
    /// work, idempotent by key.
    pub async fn redeem_reward(
        &self,
        tenant: &Tenant,
        member_id: &str,
        reward_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<RewardRedemption> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let Some(reward) = program.reward(reward_id) else {
            return Err(Rejection::RewardNotFound {
                reward_id: reward_id.to_string(),
            }
            .into());
        };
        let format = reward
            .coupon
            .format()
            .map_err(|e| EngineError::invalid("reward_id", e.to_string()))?;
        let candidate_codes = {
            let mut random = patron_domain::rand::rng();
            (0..CANDIDATE_CODES)
                .map(|_| {
                    let display = format.generate(&mut random);
                    (coupon::normalize(&display), display)
                })
                .collect()
        };
        let hash = request_hash("rewards.redeem", &(member_id, reward_id))?;
        let claims = claims(idempotency_key, "rewards.redeem", &hash);
        // The member's segments, read before the unit of work (they change nightly, with
        // the segments job): only when the reward is limited to segments.
        let segments = if reward.segments.is_empty() {
            None
        } else {
            Some(self.store.member_segments(tenant.id, member_id).await?)
        };
        let new = NewRewardRedemption {
            id: new_id("rrd"),
            member_id: member_id.to_string(),
            reward_id: reward_id.to_string(),
            candidate_codes,
            segments,
        };
        unwrap_idempotent(
            self.store
                .redeem_reward(tenant.id, &program, &new, &claims, self.now())
                .await?,
        )
    }

    pub async fn coupon(&self, tenant: &Tenant, code: &str) -> Result<Coupon, EngineError> {
        let codes = self.resolve_code(tenant, code).await?;
        Ok(self.store.coupon(tenant.id, &codes, self.now()).await?)
    }

    /// Whether a code is good for this member and cart now, and what it gives.
    pub async fn validate_coupon(
        &self,
        tenant: &Tenant,
        code: &str,
        usage: &CouponUse,
    ) -> Result<CouponCheck, EngineError> {
        check_usage(usage)?;
        let codes = self.resolve_code(tenant, code).await?;
        let program = self.program(tenant).await?.program;
        Ok(self
            .store
            .validate_coupon(tenant.id, &program, &codes, usage, self.now())
            .await?)
    }

    /// Marks a coupon used; refused when used up, expired, someone else's, or over a limit or
    /// budget.
    pub async fn redeem_coupon(
        &self,
        tenant: &Tenant,
        code: &str,
        usage: &CouponUse,
        idempotency_key: Option<&str>,
    ) -> Outcome<CouponReceipt> {
        validate_idempotency_key(idempotency_key)?;
        check_usage(usage)?;
        let codes = self.resolve_code(tenant, code).await?;
        let program = self.program(tenant).await?.program;
        let hash = request_hash("coupons.redeem", &(&codes, usage))?;
        let claims = claims(idempotency_key, "coupons.redeem", &hash);
        unwrap_idempotent(
            self.store
                .redeem_coupon(tenant.id, &program, &codes, usage, &claims, self.now())
                .await?,
        )
    }

    /// Undoes a coupon's latest redemption (of `order_id`, when given).
    pub async fn release_coupon(
        &self,
        tenant: &Tenant,
        code: &str,
        order_id: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Outcome<CouponReceipt> {
        validate_idempotency_key(idempotency_key)?;
        if let Some(id) = order_id {
            crate::requests::check_text("order_id", id)?;
        }
        let codes = self.resolve_code(tenant, code).await?;
        let hash = request_hash("coupons.release", &(&codes, order_id))?;
        let claims = claims(idempotency_key, "coupons.release", &hash);
        unwrap_idempotent(
            self.store
                .release_coupon(tenant.id, &codes, order_id, &claims, self.now())
                .await?,
        )
    }

    pub async fn create_promotion(
        &self,
        tenant: &Tenant,
        request: &PromotionRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<Promotion> {
        validate_idempotency_key(idempotency_key)?;
        patron_domain::text::check_name(&request.name)
            .map_err(|e| EngineError::invalid("name", e.to_string()))?;
        if let Some(id) = &request.id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(EngineError::invalid(
                "id",
                "use 1 to 64 letters, digits, '-' or '_'",
            ));
        }
        CodeFormat::new(&request.prefix, 8, 4)
            .map_err(|e| EngineError::invalid("prefix", e.to_string()))?;
        let benefit = check_benefit(&request.benefit)?;
        check_limit("limit", request.limit.as_ref())?;
        check_limit("member_limit", request.member_limit.as_ref())?;
        for (field, value) in [
            ("budget_redemptions", request.budget_redemptions),
            ("budget_minor", request.budget_minor),
            ("uses_per_code", request.uses_per_code),
        ] {
            if value.is_some_and(|v| v < 1) {
                return Err(EngineError::invalid(field, "must be at least 1"));
            }
        }
        if let (Some(starts), Some(ends)) = (request.starts_at, request.ends_at)
            && ends <= starts
        {
            return Err(EngineError::invalid("ends_at", "must be after starts_at"));
        }
        // The club must have a program (for its time zone, which the limits count in).
        self.program(tenant).await?;
        let hash = request_hash("promotions.create", request)?;
        let claims = claims(idempotency_key, "promotions.create", &hash);
        let new = NewPromotion {
            id: request.id.clone().unwrap_or_else(|| new_id("promo")),
            name: request.name.clone(),
            benefit,
            prefix: coupon::normalize(&request.prefix),
            budget_redemptions: request.budget_redemptions,
            budget_minor: request.budget_minor,
            limit: request.limit.clone(),
            member_limit: request.member_limit.clone(),
            uses_per_code: request.uses_per_code,
            starts_at: request.starts_at,
            ends_at: request.ends_at,
        };
        let result = self
            .store
            .create_promotion(tenant.id, &new, &claims, self.now())
            .await;
        match result {
            Err(error) if error.is_unique_violation() => {
                Err(EngineError::Rejected(Rejection::Duplicate {
                    field: "id".into(),
                    value: new.id,
                }))
            }
            other => unwrap_idempotent(other?),
        }
    }

    pub async fn promotion(&self, tenant: &Tenant, id: &str) -> Result<Promotion, EngineError> {
        Ok(self.store.promotion(tenant.id, id, self.now()).await?)
    }

    /// Generates `count` public codes for a promotion, in its prefix's format.
    pub async fn generate_promotion_codes(
        &self,
        tenant: &Tenant,
        promotion_id: &str,
        count: i64,
        return_codes: bool,
        idempotency_key: Option<&str>,
    ) -> Outcome<CodeBatch> {
        validate_idempotency_key(idempotency_key)?;
        if !(1..=CODES_PER_BATCH_MAX).contains(&count) {
            return Err(EngineError::invalid(
                "count",
                format!("must be 1 to {CODES_PER_BATCH_MAX}"),
            ));
        }
        if return_codes && count > CODES_RETURNED_MAX {
            return Err(EngineError::invalid(
                "return_codes",
                format!(
                    "at most {CODES_RETURNED_MAX} codes are returned; list larger batches with GET .../codes"
                ),
            ));
        }
        let promotion = self.promotion(tenant, promotion_id).await?;
        let format = CodeFormat::new(&promotion.prefix, 8, 4)
            .map_err(|e| EngineError::invalid("prefix", e.to_string()))?;
        let hash = request_hash("promotions.codes", &(promotion_id, count, return_codes))?;
        let claims = claims(idempotency_key, "promotions.codes", &hash);
        let codes = coupon::generate_batch(
            &format,
            usize::try_from(count).unwrap_or(0),
            &mut patron_domain::rand::rng(),
        )
        .map_err(|e| EngineError::invalid("count", e.to_string()))?
        .into_iter()
        .map(|display| (coupon::normalize(&display), display))
        .collect::<Vec<_>>();
        unwrap_idempotent(
            self.store
                .add_promotion_codes(
                    tenant.id,
                    promotion_id,
                    &codes,
                    return_codes,
                    &claims,
                    self.now(),
                )
                .await?,
        )
    }

    /// A page of a promotion's codes: `(cursor position, coupon)`.
    pub async fn promotion_codes(
        &self,
        tenant: &Tenant,
        promotion_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, Coupon)>, EngineError> {
        Ok(self
            .store
            .promotion_codes(tenant.id, promotion_id, after, limit, self.now())
            .await?)
    }

    /// Uploads a partner's codes into a pool (a `partner_voucher` reward names it).
    pub async fn import_partner_codes(
        &self,
        tenant: &Tenant,
        pool: &str,
        codes: &[String],
        idempotency_key: Option<&str>,
    ) -> Outcome<i64> {
        validate_idempotency_key(idempotency_key)?;
        if codes.is_empty() || codes.len() > PARTNER_CODES_PER_UPLOAD_MAX {
            return Err(EngineError::invalid(
                "codes",
                format!("send 1 to {PARTNER_CODES_PER_UPLOAD_MAX} codes"),
            ));
        }
        let mut normalized = Vec::with_capacity(codes.len());
        for (index, code) in codes.iter().enumerate() {
            let code = coupon::normalize(code);
            if code.is_empty()
                || code.len() > 64
                || !code.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(EngineError::invalid(
                    format!("codes[{index}]"),
                    "a partner code is 1 to 64 letters and digits (dashes and spaces are ignored)",
                ));
            }
            normalized.push(code);
        }
        let hash = request_hash("partner.codes", &(pool, &normalized))?;
        let claims = claims(idempotency_key, "partner.codes", &hash);
        unwrap_idempotent(
            self.store
                .import_partner_codes(tenant.id, pool, &normalized, &claims, self.now())
                .await?,
        )
    }
}

fn check_usage(usage: &CouponUse) -> Result<(), EngineError> {
    use patron_domain::limits::AMOUNT_MINOR_CEILING;
    if usage
        .cart_minor
        .is_some_and(|cart| !(0..=AMOUNT_MINOR_CEILING).contains(&cart))
    {
        return Err(EngineError::invalid(
            "cart_total_minor",
            format!("must be 0 to {AMOUNT_MINOR_CEILING}"),
        ));
    }
    if let Some(member) = usage.member_id.as_deref() {
        crate::requests::check_text("member_id", member)?;
    }
    match usage.order_id.as_deref() {
        Some(id) => crate::requests::check_text("order_id", id),
        None => Ok(()),
    }
}
