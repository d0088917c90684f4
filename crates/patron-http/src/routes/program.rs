//! The club's program: read the current TOML, or apply a new one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use patron_engine::Engine;

use crate::dto::program::{ProgramAppliedOut, ProgramOut};
use crate::extract::{Admin, Auth, Read, TomlBody};
use crate::problem::{Code, Problem, ProblemDocument};
use crate::routes::json_response;
use crate::state::AppState;

/// Get the program
///
/// The current version, with its TOML text exactly as applied.
#[utoipa::path(
    get, path = "/v1/program", tag = "program", operation_id = "get_program",
    responses(
        (status = 200, description = "The current program", body = ProgramOut),
        (status = 404, description = "`program_not_found`: none applied yet", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn get(State(state): State<AppState>, auth: Auth<Read>) -> Result<Response, Problem> {
    let Some(program) = state.engine().current_program(&auth.tenant).await? else {
        return Err(Problem::new(
            Code::ProgramNotFound,
            "the club has no program yet: PUT /v1/program first",
        ));
    };
    let body = ProgramOut {
        version: program.version,
        source: program.source,
        created_at: program.created_at,
        created_by: program.created_by,
    };
    Ok(json_response(StatusCode::OK, &body, false, None))
}

/// Apply a program
///
/// The body is the program's TOML text (`Content-Type: application/toml` or `text/plain`),
/// validated like `patron program check`: every problem comes back in the problem's `errors`
/// with its line and column in the submitted text. A version that would reinterpret the
/// club's history is refused the same way, at the key: a new currency, minor unit, time zone
/// or calendar once the club has ledger history, or a removed tier that members hold without
/// `[tiers] replaced` (which moves them). Applying the same text again changes nothing
/// (`changed: false`).
#[utoipa::path(
    put, path = "/v1/program", tag = "program", operation_id = "put_program",
    request_body(content = String, description = "The program, as TOML", content_type = "application/toml"),
    responses(
        (status = 200, description = "Applied", body = ProgramAppliedOut),
        (status = 415, description = "`unsupported_media_type`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_program`: see `errors`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    TomlBody(source): TomlBody,
) -> Result<Response, Problem> {
    // Validate before anything is written, so an invalid text answers with every
    // diagnostic and no side effect.
    Engine::validate_program(&source)?;
    let (_, version, changed) = state
        .engine()
        .apply_program(&auth.tenant.name, &source, &auth.actor())
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &ProgramAppliedOut { version, changed },
        false,
        None,
    ))
}
