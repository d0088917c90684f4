//! Success metrics against the club's targets, and customer lifetime value (read-only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use patron_domain::metrics::PeriodLength;
use patron_engine::EngineError;
use patron_engine::metrics::MetricsRequest;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::metrics::{ClvFitOut, ClvModelOut, MemberClvOut, MetricsOut};
use crate::extract::{Auth, PathParam, QueryParams, Read};
use crate::ids::{ClubIds, Present};
use crate::problem::{Code, Problem, ProblemDocument};
use crate::routes::json_response;
use crate::state::AppState;

/// The success-metrics parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// day | week | month (default month). Weeks start on Monday; days, weeks and months are
    /// the club's, in its time zone.
    period: Option<String>,
    /// First day of the range, YYYY-MM-DD (the report starts with the period containing it).
    /// Default: 11 months, 11 weeks or 29 days before `to`, so 12 months, 12 weeks or 30 days.
    from: Option<String>,
    /// Last day of the range, YYYY-MM-DD, inclusive; default today in the club's time zone.
    /// At most 400 periods.
    to: Option<String>,
    /// Narrow revenue, active members and churn to the purchases of one store.
    store: Option<String>,
}

fn date(field: &str, text: &str) -> Result<jiff::civil::Date, Problem> {
    text.parse().map_err(|_| {
        Problem::new(
            Code::InvalidParameter,
            format!("`{field}` must be a date written YYYY-MM-DD, found {text:?}"),
        )
        .with_field(field)
    })
}

/// Success metrics
///
/// Per day, week or month in the club's time zone: identified revenue %, coupon redemption %
/// (per campaign too), churn %, active members %, enrollments, points liability with the
/// period's points roll-forward, and breakage, each next to the program's `[targets]` and
/// whether it meets it. Definitions: docs/ANALYTICS.md, "Success metrics".
#[utoipa::path(
    get, path = "/v1/analytics/metrics", tag = "analytics", operation_id = "get_metrics",
    params(MetricsQuery),
    responses(
        (status = 200, description = "The metrics of each period", body = MetricsOut),
        (status = 400, description = "`invalid_parameter`: an unknown period, a malformed date, `to` before `from`, more than 400 periods", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`no_program`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(
    State(state): State<AppState>,
    auth: Auth<Read>,
    QueryParams(query): QueryParams<MetricsQuery>,
) -> Result<Response, Problem> {
    let period = match query.period.as_deref() {
        None => PeriodLength::Month,
        Some(word) => PeriodLength::parse(word).ok_or_else(|| {
            Problem::new(
                Code::InvalidParameter,
                format!("`period` must be one of day, week, month; found {word:?}"),
            )
            .with_field("period")
        })?,
    };
    let from = query.from.as_deref().map(|t| date("from", t)).transpose()?;
    let to = query.to.as_deref().map(|t| date("to", t)).transpose()?;
    let (from, to) = state
        .engine()
        .default_metrics_range(&auth.tenant, period, from, to)
        .await
        .map_err(Problem::from)?;
    let request = MetricsRequest {
        period,
        from,
        to,
        store_id: query.store,
    };
    let report = state
        .engine()
        .success_metrics(&auth.tenant, &request)
        .await
        .map_err(|error| match error {
            // Every invalid input here is a query parameter.
            EngineError::Invalid { field, message } => {
                Problem::new(Code::InvalidParameter, format!("`{field}`: {message}"))
                    .with_field(field)
            }
            other => Problem::from(other),
        })?;
    Ok(json_response(
        StatusCode::OK,
        &MetricsOut::from(report),
        false,
        None,
    ))
}

/// Lifetime-value models
///
/// The latest fit of the BG/NBD and Gamma-Gamma models by the weekly `clv` job: parameters,
/// standard errors and log-likelihoods, and the settings it ran with. `fit` is null until the
/// job has run once (`patron jobs run-now clv`).
#[utoipa::path(
    get, path = "/v1/analytics/clv", tag = "analytics", operation_id = "get_clv_model",
    responses(
        (status = 200, description = "The latest fit", body = ClvModelOut),
    )
)]
pub async fn clv_model(
    State(state): State<AppState>,
    auth: Auth<Read>,
) -> Result<Response, Problem> {
    let run = state.engine().latest_clv(&auth.tenant).await?;
    Ok(json_response(
        StatusCode::OK,
        &ClvModelOut {
            fit: run.map(|run| ClvFitOut::present(run, &ClubIds::new(&auth.tenant.id_key))),
        },
        false,
        None,
    ))
}

/// A member's lifetime value
///
/// From the latest fit of the `clv` job: P(alive), expected purchases in the horizon,
/// expected spend per purchase and CLV. `clv` is null until a fit includes the member.
#[utoipa::path(
    get, path = "/v1/members/{id}/clv", tag = "members", operation_id = "get_member_clv",
    params(("id" = String, Path, description = "The member id")),
    responses(
        (status = 200, description = "The member's lifetime value", body = MemberClvOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn member_clv(
    State(state): State<AppState>,
    auth: Auth<Read>,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let clv = state.engine().member_clv(&auth.tenant, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &MemberClvOut::new(id, clv, &ClubIds::new(&auth.tenant.id_key)),
        false,
        None,
    ))
}
