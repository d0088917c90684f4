//! The layer every request passes through: the per-address rate limit on `/v1`, the request
//! timeout, the access log, and the request metrics (by route template, never by raw path,
//! so ids do not explode the label set).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::connection::ClientAddress;
use crate::problem::{Code, Problem};
use crate::state::AppState;

/// The route label of requests that matched no route.
const UNMATCHED_ROUTE: &str = "unmatched";

pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_string();
    let extensions = request.extensions();
    let address = extensions
        .get::<ConnectInfo<ClientAddress>>()
        .map(|ConnectInfo(ClientAddress(address))| address.ip())
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip())
        });
    let limited = match address {
        // Only the API is limited: probes and scrapers must always get through.
        Some(address) if request.uri().path().starts_with("/v1/") => {
            state.limit_address(address).err()
        }
        _ => None,
    };
    let response = match limited {
        Some(problem) => problem.into_response(),
        None => {
            let timeout = state.config().request_timeout;
            match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                // The handler's future is dropped: an open transaction rolls back, and an
                // idempotent call that did commit replays its stored response on retry.
                Err(_) => Problem::new(
                    Code::Unavailable,
                    format!("the request took longer than {} ms", timeout.as_millis()),
                )
                .with_retry_after(1)
                .into_response(),
            }
        }
    };
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state
        .metrics()
        .observe_request(&method, &route, status, seconds);
    tracing::info!(
        target: "patron_http::access",
        %method,
        %route,
        status,
        latency_ms = seconds * 1000.0,
        "request"
    );
    response
}
