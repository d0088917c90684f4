//! Promotions (admin): public codes generated in bulk, with budgets and limits per period and
//! per member; and partner code pools for `partner_voucher` rewards.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use patron_engine::rewards::PromotionRequest;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::coupons::CouponOut;
use crate::dto::promotions::{
    CodeBatchOut, CouponPage, GenerateCodesBody, PartnerCodesBody, PartnerCodesOut, PromotionBody,
    PromotionOut,
};
use crate::extract::{Admin, Auth, IdempotencyKey, JsonBody, PathParam, QueryParams};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::{Reply, decode_cursor, encode_cursor, json_response, mutate, page_size};
use crate::state::AppState;

const CODE_CURSOR: &str = "codes";

fn promotion_location(promotion: &PromotionOut) -> Option<String> {
    Some(format!("/v1/promotions/{}", promotion.id))
}

/// Create a promotion
///
/// A promotion states what its codes give, its budget (redemptions or money), its limits per
/// period and per member, how often one code may be used, and when it runs. Codes are added
/// with `POST /v1/promotions/{id}/codes`.
#[utoipa::path(
    post, path = "/v1/promotions", tag = "promotions", operation_id = "create_promotion",
    request_body = PromotionBody,
    responses(
        (status = 201, description = "Created", body = PromotionOut,
            headers(("Location" = String, description = "The promotion"))),
        (status = 409, description = "`duplicate`: the id is taken; `no_program`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<PromotionBody>,
) -> Result<Response, Problem> {
    let request = PromotionRequest::from(body);
    let engine = state.engine();
    mutate::<_, PromotionOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(None, promotion_location),
        engine.create_promotion(&auth.tenant, &request, key.as_deref()),
    )
    .await
}

/// Get a promotion
///
/// With its counts: codes, redemptions (not released) and the discount given.
#[utoipa::path(
    get, path = "/v1/promotions/{id}", tag = "promotions", operation_id = "get_promotion",
    params(("id" = String, Path, description = "The promotion id")),
    responses(
        (status = 200, description = "The promotion", body = PromotionOut),
        (status = 404, description = "`promotion_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let promotion = state.engine().promotion(&auth.tenant, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &PromotionOut::from(promotion),
        false,
        None,
    ))
}

/// Generate promotion codes
///
/// Generates `count` public codes (readable, with a check character) in the promotion's
/// prefix. With `return_codes: true` (at most 1000) the answer lists them; otherwise list
/// them a page at a time with `GET /v1/promotions/{id}/codes`.
#[utoipa::path(
    post, path = "/v1/promotions/{id}/codes", tag = "promotions", operation_id = "generate_promotion_codes",
    params(("id" = String, Path, description = "The promotion id")),
    request_body = GenerateCodesBody,
    responses(
        (status = 201, description = "Generated", body = CodeBatchOut),
        (status = 404, description = "`promotion_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn generate(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<GenerateCodesBody>,
) -> Result<Response, Problem> {
    let engine = state.engine();
    mutate::<_, CodeBatchOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(None, |_| None),
        engine.generate_promotion_codes(
            &auth.tenant,
            &id,
            body.count,
            body.return_codes,
            key.as_deref(),
        ),
    )
    .await
}

/// Page parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CodeQuery {
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size (capped by the server's maximum).
    limit: Option<u32>,
}

/// List promotion codes
#[utoipa::path(
    get, path = "/v1/promotions/{id}/codes", tag = "promotions", operation_id = "list_promotion_codes",
    params(("id" = String, Path, description = "The promotion id"), CodeQuery),
    responses(
        (status = 200, description = "A page of codes", body = CouponPage),
        (status = 400, description = "`invalid_cursor`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`promotion_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn codes(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(id): PathParam,
    QueryParams(query): QueryParams<CodeQuery>,
) -> Result<Response, Problem> {
    let after = query
        .cursor
        .as_deref()
        .map(|cursor| decode_cursor(CODE_CURSOR, cursor))
        .transpose()?;
    let limit = page_size(&state, query.limit);
    let mut rows = state
        .engine()
        .promotion_codes(&auth.tenant, &id, after.as_deref(), limit + 1)
        .await?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| {
            rows.last()
                .map(|(code, _)| encode_cursor(CODE_CURSOR, code))
        })
        .flatten();
    let page = CouponPage {
        data: rows.into_iter().map(|(_, c)| CouponOut::from(c)).collect(),
        next_cursor,
    };
    Ok(json_response(StatusCode::OK, &page, false, None))
}

/// Upload partner codes
///
/// Adds a partner's codes to a pool; a `partner_voucher` reward with `pool = "..."` hands
/// them out one per redemption. Codes already in the pool are skipped.
#[utoipa::path(
    post, path = "/v1/partner-pools/{pool}/codes", tag = "promotions", operation_id = "import_partner_codes",
    params(("pool" = String, Path, description = "The pool, as a partner_voucher reward names it")),
    request_body = PartnerCodesBody,
    responses(
        (status = 201, description = "Uploaded", body = PartnerCodesOut),
        (status = 422, description = "`invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn import_partner_codes(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(pool): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<PartnerCodesBody>,
) -> Result<Response, Problem> {
    let engine = state.engine();
    let _in_flight = state.claim_in_flight(auth.tenant.id, key.as_deref())?;
    let outcome = engine
        .import_partner_codes(&auth.tenant, &pool, &body.codes, key.as_deref())
        .await?;
    let out = PartnerCodesOut {
        pool,
        added: outcome.value,
    };
    Ok(json_response(
        StatusCode::CREATED,
        &out,
        outcome.replayed,
        None,
    ))
}
