//! The rewards catalog as one member sees it, and redemptions of a reward (on the same route
//! as points redemptions: a body with `reward_id` redeems a reward).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use patron_domain::program::Locale;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::dto::points::{RedeemBody, RedemptionOut};
use crate::dto::rewards::{RewardOut, RewardPage, RewardRedeemBody, RewardRedemptionOut};
use crate::extract::{Auth, IdempotencyKey, JsonBody, PathParam, PosRead, PosWrite, QueryParams};
use crate::json::{self, Node};
use crate::problem::{Code, Problem, ProblemDocument};
use crate::routes::{Reply, json_response, mutate, points};
use crate::state::AppState;

/// The catalog parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RewardQuery {
    /// The member to decide for: their price, and why they cannot have a reward now.
    member_id: Option<String>,
    /// fa | he | en: the language of names (default: the member's, else the program's).
    locale: Option<String>,
}

/// List rewards
///
/// The program's rewards catalog. With `member_id`: the member's price (by tier) and, for each
/// reward, whether they can have it now and every reason why not.
#[utoipa::path(
    get, path = "/v1/rewards", tag = "rewards", operation_id = "list_rewards",
    params(RewardQuery),
    responses(
        (status = 200, description = "The catalog, one page", body = RewardPage),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`no_program`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<PosRead>,
    QueryParams(query): QueryParams<RewardQuery>,
) -> Result<Response, Problem> {
    let locale = match query.locale.as_deref() {
        Some(code) => Some(Locale::from_code(code).ok_or_else(|| {
            Problem::new(Code::InvalidParameter, "locale must be fa, he or en").with_field("locale")
        })?),
        None => None,
    };
    let entries = state
        .engine()
        .rewards_catalog(&auth.tenant, query.member_id.as_deref(), locale)
        .await?;
    let page = RewardPage {
        data: entries.into_iter().map(RewardOut::from).collect(),
        next_cursor: None,
    };
    Ok(json_response(StatusCode::OK, &page, false, None))
}

/// A points redemption or a reward redemption (documentation only).
#[allow(dead_code)] // The schema of the body; the handler reads either form by itself.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RedemptionBody {
    Points(RedeemBody),
    Reward(RewardRedeemBody),
}

/// What a redemption answers: a points redemption, or a reward redemption with its coupon.
#[allow(dead_code)] // The schema of the answer; each form is answered by its own type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RedemptionResult {
    Points(Box<RedemptionOut>),
    Reward(Box<RewardRedemptionOut>),
}

/// Redeem points or a reward
///
/// With `points`: spends points at once, or with `hold: true` reserves them at checkout, to
/// capture or release later (an uncaptured hold is released by itself after `hold_minutes`).
/// With `reward_id` (and nothing else): redeems a reward of the catalog in one step: checks
/// that the member can have it, debits its price, counts its stock and issues its coupon.
#[utoipa::path(
    post, path = "/v1/members/{id}/redemptions", tag = "points", operation_id = "redeem_points",
    params(("id" = String, Path, description = "The member id")),
    request_body = RedemptionBody,
    responses(
        (status = 201, description = "Redeemed or held; for a reward, the coupon issued", body = RedemptionResult,
            headers(("Location" = String, description = "The redemption (points redemptions)"))),
        (status = 404, description = "`member_not_found`, `reward_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_points`, `reward_unavailable` (each reason in `errors`), `invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(member_id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<Node>,
) -> Result<Response, Problem> {
    if !body.has_member("reward_id") {
        let body: RedeemBody = json::body_from_node(&body)?;
        return points::redeem(
            State(state),
            auth,
            PathParam(member_id),
            IdempotencyKey(key),
            JsonBody(body),
        )
        .await;
    }
    let body: RewardRedeemBody = json::body_from_node(&body)?;
    let engine = state.engine();
    mutate::<_, RewardRedemptionOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(Some("redeem"), |_| None),
        engine.redeem_reward(&auth.tenant, &member_id, &body.reward_id, key.as_deref()),
    )
    .await
}
