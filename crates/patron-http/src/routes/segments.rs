//! Segments: the RFV segments and rule segments of the program with their member counts,
//! and the members of one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::segments::{SegmentMemberOut, SegmentMemberPage, SegmentOut, SegmentPage};
use crate::extract::{Auth, PathParam, QueryParams, Read};
use crate::problem::{Code, Problem, ProblemDocument};
use crate::routes::analytics::locale_param;
use crate::routes::{decode_cursor, encode_cursor, json_response, page_size};
use crate::state::AppState;

const SEGMENT_MEMBER_CURSOR: &str = "segment_member";

/// The segment list parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SegmentQuery {
    /// fa | he | en: the language of names (default: the program's).
    locale: Option<String>,
}

/// List segments
///
/// The RFV segments (members in the latest run) and the rule segments (`[[segments]]`,
/// members as of their last evaluation), each with its member count, in program order.
#[utoipa::path(
    get, path = "/v1/segments", tag = "analytics", operation_id = "list_segments",
    params(SegmentQuery),
    responses(
        (status = 200, description = "Every segment", body = SegmentPage),
        (status = 400, description = "`invalid_parameter`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`no_program`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<Read>,
    QueryParams(query): QueryParams<SegmentQuery>,
) -> Result<Response, Problem> {
    let locale = locale_param(query.locale.as_deref())?;
    let engine = state.engine();
    let program = engine.program(&auth.tenant).await?.program;
    let locale = locale.unwrap_or(program.default_locale);
    let segments = engine.segments_overview(&auth.tenant).await?;
    let data = segments
        .into_iter()
        .map(|segment| {
            let name = if segment.kind == "rfv" {
                program
                    .rfv
                    .name(&segment.id, locale, program.default_locale)
            } else {
                program
                    .segments
                    .iter()
                    .find(|s| s.id == segment.id)
                    .map(|s| s.names.resolve(locale, program.default_locale).to_owned())
                    .unwrap_or_else(|| segment.id.clone())
            };
            SegmentOut {
                id: segment.id,
                kind: segment.kind.to_owned(),
                name,
                members: segment.members,
            }
        })
        .collect();
    let page = SegmentPage {
        data,
        next_cursor: None,
    };
    Ok(json_response(StatusCode::OK, &page, false, None))
}

/// The segment member page parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SegmentMemberQuery {
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size (default and maximum set by the server).
    limit: Option<u32>,
}

/// List a segment's members
///
/// The members of a segment in id order, a page at a time: for an RFV segment, those of the
/// latest run with their scores; for a rule segment, its current members with when they
/// entered.
#[utoipa::path(
    get, path = "/v1/segments/{id}/members", tag = "analytics", operation_id = "list_segment_members",
    params(("id" = String, Path, description = "The segment id"), SegmentMemberQuery),
    responses(
        (status = 200, description = "A page of members", body = SegmentMemberPage),
        (status = 400, description = "`invalid_cursor`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`segment_not_found`: the program has no such segment", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`no_program`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn members(
    State(state): State<AppState>,
    auth: Auth<Read>,
    PathParam(segment_id): PathParam,
    QueryParams(query): QueryParams<SegmentMemberQuery>,
) -> Result<Response, Problem> {
    let after = query
        .cursor
        .as_deref()
        .map(|cursor| decode_cursor(SEGMENT_MEMBER_CURSOR, cursor))
        .transpose()?;
    let limit = page_size(&state, query.limit);
    let Some(mut members) = state
        .engine()
        .segment_members(&auth.tenant, &segment_id, after.as_deref(), limit + 1)
        .await?
    else {
        return Err(Problem::new(
            Code::SegmentNotFound,
            format!("the program has no segment {segment_id:?}"),
        ));
    };
    let more = i64::try_from(members.len()).unwrap_or(i64::MAX) > limit;
    members.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| {
            members
                .last()
                .map(|m| encode_cursor(SEGMENT_MEMBER_CURSOR, &m.member_id))
        })
        .flatten();
    let page = SegmentMemberPage {
        data: members.into_iter().map(SegmentMemberOut::from).collect(),
        next_cursor,
    };
    Ok(json_response(StatusCode::OK, &page, false, None))
}
