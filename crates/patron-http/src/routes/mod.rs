//! The handlers, one module per resource, and what they share: answering JSON, running an
//! idempotent call, and opaque cursors.

pub mod analytics;
pub mod cards;
pub mod coupons;
pub mod events;
pub mod members;
pub mod metrics;
pub mod ops;
pub mod points;
pub mod program;
pub mod promotions;
pub mod purchases;
pub mod rewards;
pub mod segments;
pub mod tiers;

use std::future::Future;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use patron_engine::Outcome;
use patron_engine::model::Tenant;
use serde::Serialize;

use crate::ids::{ClubIds, Present};
use crate::problem::{Code, IDEMPOTENT_REPLAYED, Problem};
use crate::state::AppState;

/// A JSON response with an optional `Location` and the replay marker.
pub fn json_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    replayed: bool,
    location: Option<String>,
) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "cannot serialize a response");
            return Problem::internal().into_response();
        }
    };
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    if let Some(location) = location
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// How a successful mutation answers.
pub struct Reply<D> {
    pub status: StatusCode,
    /// Counted in `patron_ledger_postings_total` when the call changed the ledger.
    pub posting: Option<&'static str>,
    pub location: fn(&D) -> Option<String>,
}

impl<D> Reply<D> {
    pub fn created(posting: Option<&'static str>, location: fn(&D) -> Option<String>) -> Self {
        Reply {
            status: StatusCode::CREATED,
            posting,
            location,
        }
    }

    pub fn ok(posting: Option<&'static str>) -> Self {
        Reply {
            status: StatusCode::OK,
            posting,
            location: |_| None,
        }
    }
}

/// Runs an idempotent engine call: refuses a key already in flight on this server (409),
/// answers replays with the stored result and `Idempotent-Replayed: true`, and counts ledger
/// postings that happened. The stored result keeps the store's integer keys and is presented
/// with the club's opaque ids on every answer, so a replay shows the same ids.
pub async fn mutate<T, D>(
    state: &AppState,
    tenant: &Tenant,
    key: Option<&str>,
    reply: Reply<D>,
    call: impl Future<Output = Outcome<T>>,
) -> Result<Response, Problem>
where
    D: Present<T> + Serialize,
{
    let _in_flight = state.claim_in_flight(tenant.id, key)?;
    let outcome = call.await?;
    if !outcome.replayed
        && let Some(operation) = reply.posting
    {
        state.metrics().ledger_posting(operation);
    }
    let body = D::present(outcome.value, &ClubIds::new(&tenant.id_key));
    let location = (reply.location)(&body);
    Ok(json_response(
        reply.status,
        &body,
        outcome.replayed,
        location,
    ))
}

/// Opaque cursors: a kind tag and a position, hex-encoded so clients treat them as tokens.
pub fn encode_cursor(kind: &str, position: &str) -> String {
    hex::encode(format!("{kind}:{position}"))
}

pub fn decode_cursor(kind: &str, cursor: &str) -> Result<String, Problem> {
    let invalid = || {
        Problem::new(
            Code::InvalidCursor,
            "the cursor is not one this list handed out; start again without it",
        )
        .with_field("cursor")
    };
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    match text.split_once(':') {
        Some((found, position)) if found == kind && !position.is_empty() => {
            Ok(position.to_string())
        }
        _ => Err(invalid()),
    }
}

/// The page size a list answers: `limit` if given, capped to the server's maximum.
pub fn page_size(state: &AppState, limit: Option<u32>) -> i64 {
    let config = state.config();
    let max = config.effective_page_size_max();
    i64::from(limit.unwrap_or(config.page_size_default).clamp(1, max))
}
