//! A member's manual tier floor (admin): set it, or end it.

use axum::extract::State;
use axum::response::Response;
use patron_engine::tiers::TierFloorRequest;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::tiers::{TierFloorBody, TierFloorReceiptOut};
use crate::extract::{Admin, Auth, IdempotencyKey, JsonBody, PathParam, QueryParams};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::{Reply, mutate};
use crate::state::AppState;

/// Set a member's tier floor (admin)
///
/// The member is at least `tier` until `until` (for good without it): raised to it at once if
/// their tier is lower, never moved below it while it holds; a higher tier they earn still
/// applies. When it ends, the program's downgrade policy applies, no sooner than `until` plus
/// the grace days. Setting it again replaces it. Audited with the key, the time and `reason`.
#[utoipa::path(
    put, path = "/v1/members/{id}/tier", tag = "members", operation_id = "set_member_tier",
    params(("id" = String, Path, description = "The member id")),
    request_body = TierFloorBody,
    responses(
        (status = 200, description = "The floor is set", body = TierFloorReceiptOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`: an unknown `tier`, no `reason`, an `until` not in the future", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn set(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(member_id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<TierFloorBody>,
) -> Result<Response, Problem> {
    let request = TierFloorRequest::from(body);
    let engine = state.engine();
    let actor = auth.actor();
    mutate::<_, TierFloorReceiptOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(None),
        engine.set_tier_floor(&auth.tenant, &member_id, &request, &actor, key.as_deref()),
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EndFloorQuery {
    /// Why, for the audit log (1 to 500 characters).
    reason: Option<String>,
}

/// Remove a member's tier floor (admin)
///
/// Ends the floor now; the program's downgrade policy applies from now, with its grace days.
/// Removing when there is no floor changes nothing (and answers the same).
#[utoipa::path(
    delete, path = "/v1/members/{id}/tier", tag = "members", operation_id = "remove_member_tier",
    params(("id" = String, Path, description = "The member id"), EndFloorQuery),
    responses(
        (status = 200, description = "No floor holds any more", body = TierFloorReceiptOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`: a `reason` too long", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(member_id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    QueryParams(query): QueryParams<EndFloorQuery>,
) -> Result<Response, Problem> {
    let engine = state.engine();
    let actor = auth.actor();
    mutate::<_, TierFloorReceiptOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(None),
        engine.end_tier_floor(
            &auth.tenant,
            &member_id,
            query.reason.as_deref(),
            &actor,
            key.as_deref(),
        ),
    )
    .await
}
