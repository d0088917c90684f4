//! Analytics: the RFV grid of a run, and basket analysis over the purchase lines.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use jiff::{Timestamp, ToSpan};
use patron_domain::program::Locale;
use patron_engine::segments::BasketLevel as Level;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::analytics::{
    BasketPairOut, BasketsOut, NextCategoryOut, RfvCellOut, RfvOut, RfvSegmentOut,
};
use crate::extract::{Auth, QueryParams, Read};
use crate::ids::{ClubIds, IdKind};
use crate::problem::{Code, Problem, ProblemDocument};
use crate::routes::json_response;
use crate::state::AppState;

/// The pairs a basket analysis answers at most.
const PAIRS_MAX: u32 = 500;

/// `fa`, `he` or `en`; absent: the program's default language.
pub(crate) fn locale_param(code: Option<&str>) -> Result<Option<Locale>, Problem> {
    match code {
        Some(code) => Locale::from_code(code).map(Some).ok_or_else(|| {
            Problem::new(Code::InvalidParameter, "locale must be fa, he or en").with_field("locale")
        }),
        None => Ok(None),
    }
}

/// The RFV parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RfvQuery {
    /// A run id, `run_id` of an earlier answer (default: the latest run by as-of date).
    run: Option<String>,
    /// A club-local date, YYYY-MM-DD: the grid as it stood then, from the run with the
    /// latest as-of date on or before it (runs are kept). Not with `run`.
    as_of: Option<String>,
    /// fa | he | en: the language of segment names (default: the program's).
    locale: Option<String>,
}

/// RFV grid
///
/// The members and their value in each cell of the 5 x 5 recency x frequency grid of an RFV
/// run, with each cell's segment, and the totals per segment (docs/ANALYTICS.md). Runs are
/// made by the nightly `segments` job (or `patron jobs run-now segments`) as of their day and
/// kept: `as_of` reads the grid as it stood on an earlier date.
#[utoipa::path(
    get, path = "/v1/analytics/rfv", tag = "analytics", operation_id = "get_rfv",
    params(RfvQuery),
    responses(
        (status = 200, description = "The run's grid and segments", body = RfvOut),
        (status = 400, description = "`invalid_parameter`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`no_rfv_run`: no run yet, no such run, or none as of the date", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`no_program`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn rfv(
    State(state): State<AppState>,
    auth: Auth<Read>,
    QueryParams(query): QueryParams<RfvQuery>,
) -> Result<Response, Problem> {
    let locale = locale_param(query.locale.as_deref())?;
    let as_of = match query.as_of.as_deref() {
        None => None,
        Some(_) if query.run.is_some() => {
            return Err(Problem::new(
                Code::InvalidParameter,
                "give run or as_of, not both: a run has its own as-of date",
            )
            .with_field("as_of"));
        }
        Some(text) => Some(text.parse::<jiff::civil::Date>().map_err(|_| {
            Problem::new(
                Code::InvalidParameter,
                format!("as_of must be a date YYYY-MM-DD, not {text:?}"),
            )
            .with_field("as_of")
        })?),
    };
    let engine = state.engine();
    let program = engine.program(&auth.tenant).await?.program;
    let locale = locale.unwrap_or(program.default_locale);
    let name = |code: &str| program.rfv.name(code, locale, program.default_locale);
    let ids = ClubIds::new(&auth.tenant.id_key);
    let missing = || {
        let detail = match (&query.run, as_of) {
            (Some(run), _) => format!("there is no RFV run {run}"),
            (None, Some(date)) => format!(
                "there is no RFV run as of {date} or earlier: runs are made by the segments job, nightly or with `patron jobs run-now segments`"
            ),
            (None, None) => "there is no RFV run yet: run the segments job (nightly, or now with `patron jobs run-now segments`)".to_owned(),
        };
        Problem::new(Code::NoRfvRun, detail)
    };
    // An id that does not decode, or was made for another club, is as unknown as any other.
    let run = match query.run.as_deref() {
        Some(text) => Some(ids.decode(IdKind::RfvRun, text).ok_or_else(missing)?),
        None => None,
    };
    let report = match as_of {
        Some(date) => engine.rfv_report_as_of(&auth.tenant, date).await?,
        None => engine.rfv_report(&auth.tenant, run).await?,
    };
    let Some(report) = report else {
        return Err(missing());
    };
    let out = RfvOut {
        run_id: ids.rfv_run(report.run.id),
        as_of: report.run.as_of.clone(),
        members: report.run.members,
        created_at: report.run.created_at,
        locale: locale.code().to_owned(),
        cells: report
            .cells
            .iter()
            .map(|cell| {
                let code = program.rfv.code(
                    u8::try_from(cell.r).unwrap_or(1),
                    u8::try_from(cell.f).unwrap_or(1),
                );
                RfvCellOut {
                    r: cell.r,
                    f: cell.f,
                    segment: code.to_owned(),
                    segment_name: name(code),
                    members: cell.members,
                    value_minor: cell.monetary_minor,
                }
            })
            .collect(),
        segments: report
            .segments
            .iter()
            .map(|(code, members, value)| RfvSegmentOut {
                id: code.clone(),
                name: name(code),
                members: *members,
                value_minor: *value,
            })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &out, false, None))
}

/// The basket parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BasketQuery {
    /// The window's start: an RFC 3339 instant, or a date (YYYY-MM-DD, club time zone).
    /// Default: 365 days ago.
    since: Option<String>,
    /// Pairs in at least this share of baskets, above 0 and at most 1 (default 0.01).
    min_support: Option<f64>,
    /// category (default) | sku
    level: Option<String>,
    /// At most this many pairs (default 50, at most 500).
    limit: Option<u32>,
}

/// Basket analysis
///
/// Frequent pairs of categories (or SKUs) bought together in member purchases since `since`,
/// with support, confidence and lift, and for each category the category members most often
/// buy in their next purchase.
#[utoipa::path(
    get, path = "/v1/analytics/baskets", tag = "analytics", operation_id = "get_baskets",
    params(BasketQuery),
    responses(
        (status = 200, description = "Pairs and next categories", body = BasketsOut),
        (status = 400, description = "`invalid_parameter`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`no_program`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn baskets(
    State(state): State<AppState>,
    auth: Auth<Read>,
    QueryParams(query): QueryParams<BasketQuery>,
) -> Result<Response, Problem> {
    let level = match query.level.as_deref() {
        None | Some("category") => Level::Category,
        Some("sku") => Level::Sku,
        Some(_) => {
            return Err(
                Problem::new(Code::InvalidParameter, "level must be category or sku")
                    .with_field("level"),
            );
        }
    };
    let min_support = query.min_support.unwrap_or(0.01);
    if !(min_support > 0.0 && min_support <= 1.0) {
        return Err(Problem::new(
            Code::InvalidParameter,
            "min_support must be above 0 and at most 1",
        )
        .with_field("min_support"));
    }
    let limit = query.limit.unwrap_or(50).clamp(1, PAIRS_MAX);
    let engine = state.engine();
    let now = engine.now();
    let since = match query.since.as_deref() {
        None => now
            .checked_sub((365 * 24).hours())
            .unwrap_or(Timestamp::UNIX_EPOCH),
        Some(text) => {
            let invalid = || {
                Problem::new(
                    Code::InvalidParameter,
                    "since must be an RFC 3339 instant or a date YYYY-MM-DD",
                )
                .with_field("since")
            };
            match text.parse::<Timestamp>() {
                Ok(at) => at,
                Err(_) => {
                    let date: jiff::civil::Date = text.parse().map_err(|_| invalid())?;
                    let program = engine.program(&auth.tenant).await?.program;
                    date.to_zoned(program.tz())
                        .map_err(|_| invalid())?
                        .timestamp()
                }
            }
        }
    };
    let report = engine
        .baskets(&auth.tenant, since, min_support, level, limit as usize)
        .await?;
    let out = BasketsOut {
        since: report.since,
        level: report.level.as_str().to_owned(),
        min_support: report.min_support,
        baskets: report.baskets,
        members: report.members,
        pairs: report
            .pairs
            .into_iter()
            .map(|pair| BasketPairOut {
                a: pair.a,
                b: pair.b,
                baskets: pair.baskets_with_both,
                support: pair.support,
                confidence_a_to_b: pair.confidence_a_to_b,
                confidence_b_to_a: pair.confidence_b_to_a,
                lift: pair.lift,
            })
            .collect(),
        next: report
            .next
            .into_iter()
            .map(|next| NextCategoryOut {
                category: next.category,
                next: next.next,
                count: next.count,
                share: next.share,
            })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &out, false, None))
}
