//! Spending and moving points: redemptions (immediate, or held at checkout then captured or
//! released), admin adjustments, and transfers between members.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use patron_engine::{AdjustRequest, RedeemRequest, TransferRequest};

use crate::dto::points::{
    AdjustBody, AdjustmentOut, CaptureBody, RedeemBody, RedemptionOut, RewardCancellationOut,
    TransferBody, TransferOut,
};
use crate::extract::{
    Admin, Auth, IdempotencyKey, JsonBody, OptionalJsonBody, PathParam, PosRead, PosWrite,
};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::{Reply, json_response, mutate};
use crate::state::AppState;

fn redemption_location(redemption: &RedemptionOut) -> Option<String> {
    Some(format!("/v1/redemptions/{}", redemption.id))
}

/// Redeem points
///
/// Spends points at once, or with `hold: true` reserves them at checkout, to capture or
/// release later (an uncaptured hold is released by itself after `hold_minutes`).
#[utoipa::path(
    post, path = "/v1/members/{id}/redemptions", tag = "points", operation_id = "redeem_points",
    params(("id" = String, Path, description = "The member id")),
    request_body = RedeemBody,
    responses(
        (status = 201, description = "Redeemed or held", body = RedemptionOut,
            headers(("Location" = String, description = "The redemption"))),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_points`, `invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(member_id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<RedeemBody>,
) -> Result<Response, Problem> {
    let request = RedeemRequest::from(body);
    let engine = state.engine();
    let posting = if request.hold { "hold" } else { "redeem" };
    mutate::<_, RedemptionOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(Some(posting), redemption_location),
        engine.redeem(&auth.tenant, &member_id, &request, key.as_deref()),
    )
    .await
}

/// Get a redemption
#[utoipa::path(
    get, path = "/v1/redemptions/{id}", tag = "points", operation_id = "get_redemption",
    params(("id" = String, Path, description = "The redemption id")),
    responses(
        (status = 200, description = "The redemption", body = RedemptionOut),
        (status = 404, description = "`redemption_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn get_redemption(
    State(state): State<AppState>,
    auth: Auth<PosRead>,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let redemption = state.engine().redemption(&auth.tenant, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &RedemptionOut::from(redemption),
        false,
        None,
    ))
}

/// Capture a hold
///
/// Spends the held points: all of them, or `points` of them (the rest is released).
#[utoipa::path(
    post, path = "/v1/redemptions/{id}/capture", tag = "points", operation_id = "capture_redemption",
    params(("id" = String, Path, description = "The redemption id")),
    request_body(content = CaptureBody, description = "Optional: an empty body captures the whole hold"),
    responses(
        (status = 200, description = "Captured", body = RedemptionOut),
        (status = 404, description = "`redemption_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`redemption_resolved`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`capture_too_large`, `invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn capture(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJsonBody(body): OptionalJsonBody<CaptureBody>,
) -> Result<Response, Problem> {
    let engine = state.engine();
    mutate::<_, RedemptionOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(Some("capture")),
        engine.capture(&auth.tenant, &id, body.points, key.as_deref()),
    )
    .await
}

/// Release a hold
///
/// Gives the held points back to the member.
#[utoipa::path(
    post, path = "/v1/redemptions/{id}/release", tag = "points", operation_id = "release_redemption",
    params(("id" = String, Path, description = "The redemption id")),
    responses(
        (status = 200, description = "Released", body = RedemptionOut),
        (status = 404, description = "`redemption_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`redemption_resolved`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn release(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, Problem> {
    let engine = state.engine();
    mutate::<_, RedemptionOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(Some("release")),
        engine.release(&auth.tenant, &id, key.as_deref()),
    )
    .await
}

/// Cancel a reward redemption
///
/// For a reward redeemed by mistake or refused by the member: while its coupon is unused,
/// voids the coupon, gives the points back to the lots they came from (original expiry) and
/// returns the unit of stock; the redemption no longer counts against the reward's limit.
/// Once the coupon was used it is refused with `coupon_used`; once the member has left the
/// club, with `member_exited` (no points go back to a closed account).
#[utoipa::path(
    post, path = "/v1/redemptions/{id}/cancel", tag = "points", operation_id = "cancel_reward_redemption",
    params(("id" = String, Path, description = "The reward redemption id (`rrd_...`)")),
    responses(
        (status = 200, description = "Cancelled", body = RewardCancellationOut),
        (status = 404, description = "`redemption_not_found`: no reward redemption with this id", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`coupon_used`: the coupon was redeemed; `redemption_resolved`: cancelled already; `member_exited`: the member has left the club", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn cancel_reward(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, Problem> {
    let engine = state.engine();
    mutate::<_, RewardCancellationOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(Some("reward_cancel")),
        engine.cancel_reward_redemption(&auth.tenant, &id, key.as_deref()),
    )
    .await
}

/// Adjust points (admin)
///
/// An audited correction: positive credits (with an expiry lot), negative debits (never
/// below zero). A reason is required.
#[utoipa::path(
    post, path = "/v1/members/{id}/adjustments", tag = "points", operation_id = "adjust_points",
    params(("id" = String, Path, description = "The member id")),
    request_body = AdjustBody,
    responses(
        (status = 201, description = "Adjusted", body = AdjustmentOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_points`, `invalid_value` (zero points, no reason)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn adjust(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(member_id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<AdjustBody>,
) -> Result<Response, Problem> {
    let request = AdjustRequest::from(body);
    let engine = state.engine();
    let actor = auth.actor();
    mutate::<_, AdjustmentOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(Some("adjust"), |_| None),
        engine.adjust(&auth.tenant, &member_id, &request, &actor, key.as_deref()),
    )
    .await
}

/// Transfer points to another member
///
/// The points keep their expiry dates.
#[utoipa::path(
    post, path = "/v1/members/{id}/transfers", tag = "points", operation_id = "transfer_points",
    params(("id" = String, Path, description = "The sending member's id")),
    request_body = TransferBody,
    responses(
        (status = 201, description = "Transferred", body = TransferOut),
        (status = 404, description = "`member_not_found` (sender or receiver)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_points`, `transfer_to_self`, `invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn transfer(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(member_id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<TransferBody>,
) -> Result<Response, Problem> {
    let request = TransferRequest::from(body);
    let engine = state.engine();
    mutate::<_, TransferOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(Some("transfer"), |_| None),
        engine.transfer(&auth.tenant, &member_id, &request, key.as_deref()),
    )
    .await
}
