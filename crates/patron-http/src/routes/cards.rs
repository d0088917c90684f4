//! Cards: replacing a lost or damaged one.

use axum::extract::State;
use axum::response::Response;

use crate::dto::cards::{CardReplacementOut, ReplaceCardBody};
use crate::extract::{Admin, Auth, IdempotencyKey, OptionalJsonBody, PathParam};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::{Reply, mutate};
use crate::state::AppState;

/// Replace a card
///
/// Blocks the card and binds a new one to the same member: the pre-printed `replacement`, or
/// a new virtual card. The balance lives on the member, so it follows.
#[utoipa::path(
    post, path = "/v1/cards/{number}/replace", tag = "cards", operation_id = "replace_card",
    params(("number" = String, Path, description = "The card number (spaces and dashes are ignored)")),
    request_body(content = ReplaceCardBody, description = "Optional: an empty body issues a virtual card"),
    responses(
        (status = 200, description = "Replaced", body = CardReplacementOut),
        (status = 404, description = "`card_not_found` (the card, or the replacement)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`card_unavailable`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`: the replacement's check digit", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(number): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJsonBody(body): OptionalJsonBody<ReplaceCardBody>,
) -> Result<Response, Problem> {
    let engine = state.engine();
    let actor = auth.actor();
    mutate::<_, CardReplacementOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(None),
        engine.replace_card(
            &auth.tenant,
            &number,
            body.replacement.as_deref(),
            &actor,
            key.as_deref(),
        ),
    )
    .await
}
