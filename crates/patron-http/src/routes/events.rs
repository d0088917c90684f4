//! Custom events: something a member did that the program's `event` rules reward.

use axum::extract::State;
use axum::response::Response;
use patron_engine::EventRequest;

use crate::dto::events::{EventBody, EventReceiptOut};
use crate::extract::{Auth, IdempotencyKey, JsonBody, PosWrite};
use crate::problem::{Problem, ProblemDocument};
use crate::routes::{Reply, mutate};
use crate::state::AppState;

/// Record an event
///
/// Stores a custom event of a member (a review written, a survey answered, an app
/// installed...) and credits what the program's `event` rules of its `type` give, within
/// their limits: posted at once, with the program's expiry. An event no rule rewards is
/// stored with 0 points. Send an `Idempotency-Key`: a retry with it has one effect.
#[utoipa::path(
    post, path = "/v1/events", tag = "events", operation_id = "post_event",
    request_body = EventBody,
    responses(
        (status = 201, description = "Recorded (or the stored answer of this Idempotency-Key)", body = EventReceiptOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`member_exited`, `no_program`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn post(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<EventBody>,
) -> Result<Response, Problem> {
    let request = EventRequest::from(body);
    let engine = state.engine();
    mutate::<_, EventReceiptOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(Some("event"), |_| None),
        engine.post_event(&auth.tenant, &request, key.as_deref()),
    )
    .await
}
