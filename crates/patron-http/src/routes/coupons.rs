//! Coupons at the till and in the web shop: look one up, validate it for a member and a cart,
//! redeem it, and release a redemption when an order is cancelled.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use patron_engine::model::CouponUse;

use crate::dto::coupons::{
    CouponCheckOut, CouponOut, CouponReceiptOut, CouponReleaseBody, CouponUseBody,
};
use crate::extract::{Auth, IdempotencyKey, OptionalJsonBody, PathParam, PosRead, PosWrite};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::{Reply, json_response, mutate};
use crate::state::AppState;

/// Get a coupon
#[utoipa::path(
    get, path = "/v1/coupons/{code}", tag = "coupons", operation_id = "get_coupon",
    params(("code" = String, Path, description = "The code, with or without dashes")),
    responses(
        (status = 200, description = "The coupon", body = CouponOut),
        (status = 404, description = "`coupon_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_coupon_code`: a typo the check character catches", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<PosRead>,
    PathParam(code): PathParam,
) -> Result<Response, Problem> {
    let coupon = state.engine().coupon(&auth.tenant, &code).await?;
    Ok(json_response(
        StatusCode::OK,
        &CouponOut::from(coupon),
        false,
        None,
    ))
}

/// Validate a coupon
///
/// Whether the code is good now for this member and cart, and what it gives (the discount on
/// the cart when it is money). Changes nothing; a code that cannot be used answers 200 with
/// `valid: false` and the reason.
#[utoipa::path(
    post, path = "/v1/coupons/{code}/validate", tag = "coupons", operation_id = "validate_coupon",
    params(("code" = String, Path, description = "The code, with or without dashes")),
    request_body(content = CouponUseBody, description = "Optional: the member and the cart"),
    responses(
        (status = 200, description = "The verdict", body = CouponCheckOut),
        (status = 404, description = "`coupon_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_coupon_code`, `invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn validate(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    // Validating changes nothing, so the key is not stored; a malformed one is still refused,
    // as on every POST.
    _key: IdempotencyKey,
    PathParam(code): PathParam,
    OptionalJsonBody(body): OptionalJsonBody<CouponUseBody>,
) -> Result<Response, Problem> {
    let usage = CouponUse::from(body);
    let check = state
        .engine()
        .validate_coupon(&auth.tenant, &code, &usage)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &CouponCheckOut::from(check),
        false,
        None,
    ))
}

/// Redeem a coupon
///
/// Marks the coupon used for this order. Refused when it is used up, expired, someone else's,
/// or over its promotion's limits or budget. Idempotent by `Idempotency-Key`.
#[utoipa::path(
    post, path = "/v1/coupons/{code}/redeem", tag = "coupons", operation_id = "redeem_coupon",
    params(("code" = String, Path, description = "The code, with or without dashes")),
    request_body(content = CouponUseBody, description = "Optional: the member, the order and the cart"),
    responses(
        (status = 200, description = "Redeemed", body = CouponReceiptOut),
        (status = 404, description = "`coupon_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`coupon_used`, `coupon_expired`, `coupon_limit_reached`, `promotion_budget_exhausted`, `member_exited` (the coupon's member left the club)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_coupon_code`, `coupon_not_for_member`, `invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(code): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJsonBody(body): OptionalJsonBody<CouponUseBody>,
) -> Result<Response, Problem> {
    let usage = CouponUse::from(body);
    let engine = state.engine();
    mutate::<_, CouponReceiptOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(None),
        engine.redeem_coupon(&auth.tenant, &code, &usage, key.as_deref()),
    )
    .await
}

/// Release a coupon redemption
///
/// Undoes the coupon's latest redemption (of `order_id`, when given), e.g. when the order is
/// cancelled: the coupon can be used again and the promotion gets the use back.
#[utoipa::path(
    post, path = "/v1/coupons/{code}/release", tag = "coupons", operation_id = "release_coupon",
    params(("code" = String, Path, description = "The code, with or without dashes")),
    request_body(content = CouponReleaseBody, description = "Optional: the order"),
    responses(
        (status = 200, description = "Released", body = CouponReceiptOut),
        (status = 404, description = "`coupon_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`coupon_not_redeemed`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_coupon_code`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn release(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(code): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJsonBody(body): OptionalJsonBody<CouponReleaseBody>,
) -> Result<Response, Problem> {
    let engine = state.engine();
    mutate::<_, CouponReceiptOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(None),
        engine.release_coupon(
            &auth.tenant,
            &code,
            body.order_id.as_deref(),
            key.as_deref(),
        ),
    )
    .await
}
