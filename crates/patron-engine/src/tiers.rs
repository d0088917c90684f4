//! Tiers in full: a member's tier as the API shows it (name and benefits in the member's
//! language, the floor, the "will downgrade on" review) and the admin's manual tier floor.
//! The decisions are `patron_domain::tier::{target, review}`; the store counts and writes.

use jiff::Timestamp;
use jiff::civil::Date;
use patron_domain::program::{Locale, Program, TierBasis};
use patron_domain::tier::TierReview;
use patron_store::redemptions::Balance;
use patron_store::standing::{TierFloor, TierFloorReceipt, TierView};
use patron_store::tenants::Tenant;
use serde::{Deserialize, Serialize};

use crate::{
    Engine, EngineError, Outcome, claims, request_hash, unwrap_idempotent, validate_idempotency_key,
};

/// The longest reason a floor takes.
pub const REASON_CHARS_MAX: usize = patron_domain::text::REASON_CHARS_MAX;

/// `PUT /v1/members/{id}/tier`: the member is at least `tier` until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierFloorRequest {
    /// A tier code of the program.
    pub tier: String,
    /// An RFC 3339 instant, or a date (`2026-12-31`: the floor holds through that day in the
    /// club's time zone). Absent: for good.
    #[serde(default)]
    pub until: Option<String>,
    /// Why: required, 1 to 500 characters; kept in the audit log.
    pub reason: String,
}

/// One benefit of the member's tier, in their language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenefitView {
    pub kind: Option<String>,
    pub name: String,
}

/// The review, with the tier named in the member's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewView {
    pub review: TierReview,
    /// The club-local date of the nightly pass that applies it (the first at or after
    /// `review.at`; the pass runs at 00:05).
    pub date: Date,
    pub to_name: String,
    /// What `review.needed` counts: `points_earned`, `spend` (minor units) or `visits`.
    pub basis: &'static str,
}

/// A member's tier as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTier {
    pub view: TierView,
    /// The tier's name in the member's language.
    pub name: String,
    /// The tier's earning multiplier, as decimal text (`"1.5"`).
    pub multiplier: String,
    pub benefits: Vec<BenefitView>,
    pub review: Option<ReviewView>,
}

/// A member's balance and tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceView {
    pub balance: Balance,
    pub tier: MemberTier,
}

impl Engine {
    /// The member's balance and tier in full (the balance view).
    pub async fn balance_view(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<BalanceView, EngineError> {
        let balance = self.balance(tenant, member_id).await?;
        let tier = self.member_tier(tenant, member_id).await?;
        Ok(BalanceView { balance, tier })
    }

    /// The member's tier: progress, name and benefits in their language, floor, review.
    pub async fn member_tier(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<MemberTier, EngineError> {
        let program = self.program(tenant).await?.program;
        let view = self
            .store()
            .tier_view(tenant.id, &program, member_id, self.now())
            .await?;
        let locale = view
            .locale
            .as_deref()
            .and_then(Locale::from_code)
            .unwrap_or(program.default_locale);
        Ok(describe(&program, locale, view))
    }

    /// Sets the member's manual tier floor (admin): at least `tier` until `until`. Raises the
    /// member at once if their tier is lower; a higher computed tier still applies. Audited.
    pub async fn set_tier_floor(
        &self,
        tenant: &Tenant,
        member_id: &str,
        request: &TierFloorRequest,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<TierFloorReceipt> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        if program.tier(&request.tier).is_none() {
            let codes: Vec<&str> = program
                .tiers
                .levels
                .iter()
                .map(|tier| tier.code.as_str())
                .collect();
            return Err(EngineError::invalid(
                "tier",
                format!(
                    "{:?} is not a tier of the program; use one of {}",
                    request.tier,
                    codes.join(", ")
                ),
            ));
        }
        let reason = check_reason(&request.reason)?;
        let now = self.now();
        let until = request
            .until
            .as_deref()
            .map(|text| parse_until(text, &program))
            .transpose()?;
        if let Some(until) = until
            && until <= now
        {
            return Err(EngineError::invalid("until", "must be in the future"));
        }
        let hash = request_hash("member.tier_floor.set", &(member_id, request))?;
        let claims = claims(idempotency_key, "member.tier_floor.set", &hash);
        unwrap_idempotent(
            self.store()
                .set_tier_floor(
                    tenant.id,
                    &program,
                    member_id,
                    &request.tier,
                    until,
                    reason,
                    actor,
                    &claims,
                    now,
                )
                .await?,
        )
    }

    /// Ends the member's floor now (admin); the downgrade policy applies from now, grace
    /// included. Ending when there is none changes nothing. Audited when it ends one.
    pub async fn end_tier_floor(
        &self,
        tenant: &Tenant,
        member_id: &str,
        reason: Option<&str>,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<TierFloorReceipt> {
        validate_idempotency_key(idempotency_key)?;
        let reason = reason.map(check_reason).transpose()?;
        // Known tenant and program, like every call.
        self.program(tenant).await?;
        let hash = request_hash("member.tier_floor.end", &(member_id, reason))?;
        let claims = claims(idempotency_key, "member.tier_floor.end", &hash);
        unwrap_idempotent(
            self.store()
                .end_tier_floor(tenant.id, member_id, reason, actor, &claims, self.now())
                .await?,
        )
    }

    /// The member's floor row as stored (ended or not), for audits and tests.
    pub async fn tier_floor(
        &self,
        tenant: &Tenant,
        member_id: &str,
    ) -> Result<Option<TierFloor>, EngineError> {
        let program = self.program(tenant).await?.program;
        Ok(self
            .store()
            .tier_view(tenant.id, &program, member_id, self.now())
            .await?
            .floor)
    }
}

fn check_reason(reason: &str) -> Result<&str, EngineError> {
    patron_domain::text::check_free_text(reason, REASON_CHARS_MAX, patron_domain::text::Lines::One)
        .map_err(|e| EngineError::invalid("reason", format!("a tier floor's reason {e}")))
}

/// An RFC 3339 instant, or a date: the floor then holds through that day (until the next
/// midnight in the club's time zone).
fn parse_until(text: &str, program: &Program) -> Result<Timestamp, EngineError> {
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(instant);
    }
    let invalid = || {
        EngineError::invalid(
            "until",
            "must be an RFC 3339 instant (2026-12-31T22:00:00Z) or a date (2026-12-31)",
        )
    };
    let date: Date = text.parse().map_err(|_| invalid())?;
    date.tomorrow()
        .ok()
        .and_then(|next| next.to_zoned(program.tz()).ok())
        .map(|zoned| zoned.timestamp())
        .ok_or_else(invalid)
}

/// The day of the first nightly pass (00:05 club time) at or after `at`.
fn nightly_date(at: Timestamp, program: &Program) -> Date {
    let local = at.to_zoned(program.tz());
    let date = local.date();
    if local.time() <= jiff::civil::time(0, 5, 0, 0) {
        date
    } else {
        date.tomorrow().unwrap_or(date)
    }
}

fn describe(program: &Program, locale: Locale, view: TierView) -> MemberTier {
    let fallback = program.default_locale;
    let tier = program.tier(&view.status.code);
    let name_of = |code: &str| {
        program.tier(code).map_or_else(
            || code.to_string(),
            |tier| tier.names.resolve(locale, fallback).to_string(),
        )
    };
    let basis = match program.tiers.basis {
        TierBasis::PointsEarned => "points_earned",
        TierBasis::Spend => "spend",
        TierBasis::Visits => "visits",
    };
    let review = view.review.clone().map(|review| ReviewView {
        date: nightly_date(review.at, program),
        to_name: name_of(&review.to),
        basis,
        review,
    });
    MemberTier {
        name: name_of(&view.status.code),
        multiplier: tier.map_or_else(
            || "1".to_string(),
            |tier| tier.multiplier.normalize().to_string(),
        ),
        benefits: tier
            .map(|tier| {
                tier.benefits
                    .iter()
                    .map(|benefit| BenefitView {
                        kind: benefit.kind.clone(),
                        name: benefit.names.resolve(locale, fallback).to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        review,
        view,
    }
}
