//! Operations endpoints: liveness, readiness, metrics, the OpenAPI document, the reference
//! page, problem-type links, and the answers for unknown routes and methods.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::dto::ops::{HealthOut, ReadyOut};
use crate::extract::PathParam;
use crate::problem::{Code, Problem};
use crate::routes::json_response;
use crate::state::AppState;

/// Liveness
///
/// The process is up and answering. Checks nothing else.
#[utoipa::path(
    get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Up", body = HealthOut))
)]
pub async fn healthz() -> Response {
    json_response(
        StatusCode::OK,
        &HealthOut {
            status: "ok".into(),
        },
        false,
        None,
    )
}

/// Readiness
///
/// The database answers and every migration is applied; otherwise 503, and a load
/// balancer should send traffic elsewhere.
#[utoipa::path(
    get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = ReadyOut),
        (status = 503, description = "Not ready", body = ReadyOut),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (database, migrations_current) = match state.engine().ready().await {
        Ok(current) => (true, current),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (false, false)
        }
    };
    let ready = database && migrations_current;
    let body = ReadyOut {
        status: if ready { "ready" } else { "not_ready" }.into(),
        database,
        migrations_current,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body, false, None)
}

/// Prometheus metrics
///
/// Requests by route template and status, latency by route, ledger postings, job queue depth,
/// PostgreSQL's purchase paths, in the OpenMetrics text format.
#[utoipa::path(
    get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Metrics", body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    // The job gauges are read now; if the database does not answer, the scrape still gets
    // every other metric (and the gauges keep their last value), and the log says why.
    match state.engine().job_queue().await {
        Ok(queue) => state.metrics().set_job_queue(queue.due, queue.failed),
        Err(error) => tracing::warn!(%error, "/metrics: the job queue could not be read"),
    }
    state
        .metrics()
        .set_purchase_paths(state.engine().purchase_paths());
    match state.metrics().render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            text,
        )
            .into_response(),
        Err(_) => Problem::internal().into_response(),
    }
}

/// The OpenAPI 3.1 document of this API.
pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi_json().to_string(),
    )
        .into_response()
}

/// The API reference page.
pub async fn docs(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        state.docs_html().to_string(),
    )
        .into_response()
}

/// A problem type's URI leads to its entry on the reference page.
pub async fn problem_type(PathParam(code): PathParam) -> Response {
    match Code::parse(&code) {
        Some(code) => {
            let target = format!("/docs#problem-{}", code.as_str());
            match HeaderValue::from_str(&target) {
                Ok(location) => {
                    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
                }
                Err(_) => Problem::internal().into_response(),
            }
        }
        None => not_found().await.into_response(),
    }
}

pub async fn not_found() -> Problem {
    Problem::new(
        Code::NotFound,
        "no such route; the API reference is at /docs",
    )
}

pub async fn method_not_allowed() -> Problem {
    Problem::new(
        Code::MethodNotAllowed,
        "this route does not take this method; see /docs",
    )
}
