//! Purchases: post one (anonymous or a member's), read it, refund it, attach it to a member.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use patron_engine::{PurchaseRequest, RefundRequest};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::purchases::{
    AttachBody, PurchaseBody, PurchaseOut, PurchaseReceiptOut, RefundBody, RefundReceiptOut,
    RuleAwardOut,
};
use crate::extract::{Auth, IdempotencyKey, JsonBody, PathParam, PosRead, PosWrite, QueryParams};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::{Reply, json_response, mutate};
use crate::state::AppState;

fn purchase_location(receipt: &PurchaseReceiptOut) -> Option<String> {
    Some(format!("/v1/purchases/{}", receipt.purchase_id))
}

/// The parameters of posting a purchase.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PurchaseQuery {
    /// `true`: answer the receipt this purchase would get now (points, rules, state) without
    /// storing anything (a cart preview). No Idempotency-Key is claimed; 200 instead of 201.
    dry_run: Option<bool>,
}

/// Post a purchase
///
/// Earns points for the member (the program's base earning plus every earning rule that
/// fires; pending until the return window closes, when the program has one) and answers how
/// many, which rules gave them, until when, and the new balance. A purchase is posted once
/// per `document_id`: the same document again answers the stored receipt; the same document
/// with other content is refused. With `?dry_run=true` nothing is stored: the answer (200)
/// is the receipt the purchase would get now, without balance or tier.
#[utoipa::path(
    post, path = "/v1/purchases", tag = "purchases", operation_id = "post_purchase",
    params(PurchaseQuery),
    request_body = PurchaseBody,
    responses(
        (status = 200, description = "A dry run: what the purchase would earn; nothing was stored", body = PurchaseReceiptOut),
        (status = 201, description = "Posted (or the stored receipt of this document)", body = PurchaseReceiptOut,
            headers(("Location" = String, description = "The purchase"))),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`document_conflict`, `member_exited`, `no_program`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`, `wrong_currency`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn post(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    QueryParams(query): QueryParams<PurchaseQuery>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<PurchaseBody>,
) -> Result<Response, Problem> {
    let request = PurchaseRequest::from(body);
    let engine = state.engine();
    if query.dry_run == Some(true) {
        let receipt = engine.preview_purchase(&auth.tenant, &request).await?;
        return Ok(json_response(
            StatusCode::OK,
            &PurchaseReceiptOut::from(receipt),
            false,
            None,
        ));
    }
    mutate::<_, PurchaseReceiptOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(Some("purchase"), purchase_location),
        engine.post_purchase(&auth.tenant, &request, key.as_deref()),
    )
    .await
}

/// Get a purchase
#[utoipa::path(
    get, path = "/v1/purchases/{id}", tag = "purchases", operation_id = "get_purchase",
    params(("id" = String, Path, description = "The purchase id")),
    responses(
        (status = 200, description = "The purchase with its lines and the rules that fired", body = PurchaseOut),
        (status = 404, description = "`purchase_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<PosRead>,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let engine = state.engine();
    let purchase = engine.purchase(&auth.tenant, &id).await?;
    let rules = engine.purchase_rules(&auth.tenant, &id).await?;
    let mut out = PurchaseOut::from(purchase);
    out.rules = rules.into_iter().map(RuleAwardOut::from).collect();
    Ok(json_response(StatusCode::OK, &out, false, None))
}

/// Refund a purchase
///
/// Returns lines (or everything that remains) and claws back points in proportion, under
/// the program's return policy. Applied once per `document_id`.
#[utoipa::path(
    post, path = "/v1/purchases/{id}/refunds", tag = "purchases", operation_id = "refund_purchase",
    params(("id" = String, Path, description = "The purchase id")),
    request_body = RefundBody,
    responses(
        (status = 201, description = "Refunded (or the stored answer of this return document)", body = RefundReceiptOut),
        (status = 404, description = "`purchase_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`document_conflict`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`refund_too_large`, `insufficient_points`, `invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn refund(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<RefundBody>,
) -> Result<Response, Problem> {
    let request = RefundRequest::from(body);
    let engine = state.engine();
    mutate::<_, RefundReceiptOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(Some("refund"), |_| None),
        engine.refund(&auth.tenant, &id, &request, key.as_deref()),
    )
    .await
}

/// Attach an anonymous purchase to a member
///
/// The member earns for it now, as if they had shown their card at the till.
#[utoipa::path(
    post, path = "/v1/purchases/{id}/attach", tag = "purchases", operation_id = "attach_purchase",
    params(("id" = String, Path, description = "The purchase id")),
    request_body = AttachBody,
    responses(
        (status = 200, description = "Attached", body = PurchaseReceiptOut),
        (status = 404, description = "`purchase_not_found`, `member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`already_attached`, `member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn attach(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<AttachBody>,
) -> Result<Response, Problem> {
    let engine = state.engine();
    mutate::<_, PurchaseReceiptOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(Some("attach")),
        engine.attach_purchase(&auth.tenant, &id, &body.member_id, key.as_deref()),
    )
    .await
}
