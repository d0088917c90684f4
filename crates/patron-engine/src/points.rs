//! Points: the balance, redemptions and their holds, adjustments, transfers, and the
//! time-driven ledger work (pending points, expiry, stale holds).

use jiff::SignedDuration;
use patron_domain::text;
use patron_store::redemptions::{
    AdjustmentReceipt, Balance, NewRedemption, Redemption, TransferReceipt,
};
use patron_store::tenants::Tenant;

use crate::{
    AdjustRequest, Engine, EngineError, HOLD_DEFAULT_MINUTES, HOLD_MAX_MINUTES, Outcome,
    RedeemRequest, TransferRequest, check_points, claims, new_id, request_hash, unwrap_idempotent,
    validate_idempotency_key,
};

impl Engine {
    pub async fn balance(&self, tenant: &Tenant, member_id: &str) -> Result<Balance, EngineError> {
        Ok(self.store.balance(tenant.id, member_id, self.now()).await?)
    }

    pub async fn redeem(
        &self,
        tenant: &Tenant,
        member_id: &str,
        request: &RedeemRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<Redemption> {
        validate_idempotency_key(idempotency_key)?;
        if request.points <= 0 {
            return Err(EngineError::invalid("points", "must be greater than zero"));
        }
        let description = request
            .description
            .as_deref()
            .map(|d| text::check_free_text(d, text::DESCRIPTION_CHARS_MAX, text::Lines::One))
            .transpose()
            .map_err(|e| EngineError::invalid("description", e.to_string()))?
            .map(str::to_string);
        let minutes = request.hold_minutes.unwrap_or(HOLD_DEFAULT_MINUTES);
        if request.hold && !(1..=HOLD_MAX_MINUTES).contains(&minutes) {
            return Err(EngineError::invalid(
                "hold_minutes",
                format!("must be 1 to {HOLD_MAX_MINUTES}"),
            ));
        }
        let program = self.program(tenant).await?.program;
        check_points(&program, request.points)?;
        let hash = request_hash("points.redeem", &(member_id, request))?;
        let claims = claims(idempotency_key, "points.redeem", &hash);
        let now = self.now();
        let new = NewRedemption {
            id: new_id("red"),
            member_id: member_id.to_string(),
            points: request.points,
            hold: request.hold,
            hold_expires_at: request.hold.then(|| {
                now.checked_add(SignedDuration::from_mins(minutes))
                    .unwrap_or(now)
            }),
            description,
        };
        unwrap_idempotent(
            self.store
                .redeem(tenant.id, &program, &new, &claims, now)
                .await?,
        )
    }

    pub async fn capture(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
        points: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Outcome<Redemption> {
        validate_idempotency_key(idempotency_key)?;
        if points.is_some_and(|p| p <= 0) {
            return Err(EngineError::invalid(
                "points",
                "must be greater than zero; release the hold instead",
            ));
        }
        let program = self.program(tenant).await?.program;
        if let Some(points) = points {
            check_points(&program, points)?;
        }
        let hash = request_hash("redemption.capture", &(redemption_id, points))?;
        let claims = claims(idempotency_key, "redemption.capture", &hash);
        unwrap_idempotent(
            self.store
                .capture_redemption(
                    tenant.id,
                    &program,
                    redemption_id,
                    points,
                    &claims,
                    self.now(),
                )
                .await?,
        )
    }

    pub async fn release(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<Redemption> {
        validate_idempotency_key(idempotency_key)?;
        let program = self.program(tenant).await?.program;
        let hash = request_hash("redemption.release", &redemption_id)?;
        let claims = claims(idempotency_key, "redemption.release", &hash);
        unwrap_idempotent(
            self.store
                .release_redemption(tenant.id, &program, redemption_id, &claims, self.now())
                .await?,
        )
    }

    pub async fn reverse_redemption(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<Redemption> {
        validate_idempotency_key(idempotency_key)?;
        let hash = request_hash("redemption.reverse", &redemption_id)?;
        let claims = claims(idempotency_key, "redemption.reverse", &hash);
        unwrap_idempotent(
            self.store
                .reverse_redemption(tenant.id, redemption_id, &claims, self.now())
                .await?,
        )
    }

    /// Cancels a reward redemption while its coupon is unused: the coupon is voided, the
    /// points come back to the lots they came from, the unit of stock is returned.
    pub async fn cancel_reward_redemption(
        &self,
        tenant: &Tenant,
        redemption_id: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<patron_store::reward_cancel::RewardCancellation> {
        validate_idempotency_key(idempotency_key)?;
        let hash = request_hash("rewards.cancel", &redemption_id)?;
        let claims = claims(idempotency_key, "rewards.cancel", &hash);
        unwrap_idempotent(
            self.store
                .cancel_reward_redemption(tenant.id, redemption_id, &claims, self.now())
                .await?,
        )
    }

    pub async fn adjust(
        &self,
        tenant: &Tenant,
        member_id: &str,
        request: &AdjustRequest,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Outcome<AdjustmentReceipt> {
        validate_idempotency_key(idempotency_key)?;
        if request.points == 0 {
            return Err(EngineError::invalid("points", "must not be zero"));
        }
        let reason =
            text::check_free_text(&request.reason, text::REASON_CHARS_MAX, text::Lines::One)
                .map_err(|e| {
                    EngineError::invalid("reason", format!("an adjustment's reason {e}"))
                })?;
        let program = self.program(tenant).await?.program;
        check_points(&program, request.points)?;
        let hash = request_hash("points.adjust", &(member_id, request))?;
        let claims = claims(idempotency_key, "points.adjust", &hash);
        unwrap_idempotent(
            self.store
                .adjust(
                    tenant.id,
                    &program,
                    member_id,
                    &new_id("adj"),
                    request.points,
                    reason,
                    actor,
                    &claims,
                    self.now(),
                )
                .await?,
        )
    }

    pub async fn transfer(
        &self,
        tenant: &Tenant,
        from_member: &str,
        request: &TransferRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<TransferReceipt> {
        validate_idempotency_key(idempotency_key)?;
        if request.points <= 0 {
            return Err(EngineError::invalid("points", "must be greater than zero"));
        }
        let program = self.program(tenant).await?.program;
        check_points(&program, request.points)?;
        let hash = request_hash("points.transfer", &(from_member, request))?;
        let claims = claims(idempotency_key, "points.transfer", &hash);
        unwrap_idempotent(
            self.store
                .transfer_points(
                    tenant.id,
                    &program,
                    &new_id("trf"),
                    from_member,
                    &request.to_member_id,
                    request.points,
                    &claims,
                    self.now(),
                )
                .await?,
        )
    }

    /// Runs the time-driven ledger work due now: pending points whose return window closed
    /// are posted, due lots expire, stale holds are released. Safe to run repeatedly.
    pub async fn run_due_jobs(&self, tenant: &Tenant) -> Result<JobReport, EngineError> {
        let program = self.program(tenant).await?.program;
        let now = self.now();
        let mut report = JobReport::default();
        loop {
            let activated = self
                .store
                .activate_due_pending(tenant.id, &program, now, 1000)
                .await?;
            report.pending_posted += activated;
            if activated < 1000 {
                break;
            }
        }
        let (expired, released) = self
            .store
            .run_expiry(tenant.id, &program, now, 100_000)
            .await?;
        report.points_expired = expired;
        report.holds_released = released;
        Ok(report)
    }
}

/// What [`Engine::run_due_jobs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobReport {
    pub pending_posted: u64,
    pub points_expired: i64,
    pub holds_released: i64,
}
