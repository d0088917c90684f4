//! Extractors whose every failure is a problem document: the caller's key and scope, JSON
//! bodies (objects where the operation reads objects, unknown fields refused: `json`), path
//! and query parameters, and the Idempotency-Key.
//!
//! Authorization is declared in each handler's signature (`Auth<PosWrite>`), and checked while
//! extracting, before the body is read: a key without the scope gets 403 whatever it sent.

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use patron_engine::keys::Scope;
use patron_engine::model::{ApiKey, Tenant};
use serde::de::DeserializeOwned;

use crate::json;
use crate::problem::{Code, Problem};
use crate::state::AppState;

/// What an operation requires of the caller's scope.
pub trait Access: Send + Sync + 'static {
    /// Whether a key of `scope` may call the operation.
    fn allows(scope: Scope) -> bool;
    /// For the reference page and error details.
    const DESCRIPTION: &'static str;
}

/// Reads that the till may make too (member look-up, balance, a purchase, a redemption).
#[derive(Debug)]
pub struct PosRead;
/// Reads for `read` and `admin` keys only (lists, ledgers, the program).
#[derive(Debug)]
pub struct Read;
/// Writes a till or web shop makes: enrollment, purchases, refunds, redemptions.
#[derive(Debug)]
pub struct PosWrite;
/// Everything else: adjustments, transfers, profile changes, exits, cards, the program.
#[derive(Debug)]
pub struct Admin;

impl Access for PosRead {
    fn allows(_scope: Scope) -> bool {
        true
    }
    const DESCRIPTION: &'static str = "admin, pos or read";
}

impl Access for Read {
    fn allows(scope: Scope) -> bool {
        matches!(scope, Scope::Admin | Scope::Read)
    }
    const DESCRIPTION: &'static str = "admin or read";
}

impl Access for PosWrite {
    fn allows(scope: Scope) -> bool {
        matches!(scope, Scope::Admin | Scope::Pos)
    }
    const DESCRIPTION: &'static str = "admin or pos";
}

impl Access for Admin {
    fn allows(scope: Scope) -> bool {
        matches!(scope, Scope::Admin)
    }
    const DESCRIPTION: &'static str = "admin";
}

/// The authenticated caller: its key, the one tenant the key works in, and its scope.
#[derive(Debug)]
pub struct Auth<A: Access> {
    pub key: ApiKey,
    pub tenant: Tenant,
    pub scope: Scope,
    access: PhantomData<A>,
}

impl<A: Access> Auth<A> {
    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        format!("api_key:{} ({})", self.key.id, self.key.name)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|secret| !secret.is_empty())
}

impl<A: Access> FromRequestParts<AppState> for Auth<A> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Some(secret) = bearer(&parts.headers) else {
            return Err(Problem::new(
                Code::Unauthenticated,
                "send the API key as `Authorization: Bearer <key>`",
            ));
        };
        let Some((key, tenant, scope)) = state.engine().authenticate(secret).await? else {
            return Err(Problem::new(
                Code::Unauthenticated,
                "the API key is unknown or revoked",
            ));
        };
        state.limit_key(key.id)?;
        if !A::allows(scope) {
            return Err(Problem::new(
                Code::InsufficientScope,
                format!(
                    "a {} key cannot do this; it needs a key with scope {}",
                    scope.as_str(),
                    A::DESCRIPTION
                ),
            ));
        }
        Ok(Auth {
            key,
            tenant,
            scope,
            access: PhantomData,
        })
    }
}

/// The `Idempotency-Key` header, if sent.
#[derive(Debug)]
pub struct IdempotencyKey(pub Option<String>);

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        match parts.headers.get(IDEMPOTENCY_KEY) {
            None => Ok(IdempotencyKey(None)),
            Some(value) => match value.to_str() {
                // Checked here, not only by the use cases that store it: a key the API
                // refuses is refused on every operation that declares the header.
                Ok(text) => patron_domain::text::check_identifier(
                    text,
                    patron_domain::text::IDEMPOTENCY_KEY_CHARS_MAX,
                )
                .map(|()| IdempotencyKey(Some(text.to_string())))
                .map_err(|e| {
                    Problem::new(Code::InvalidIdempotencyKey, format!("Idempotency-Key {e}"))
                        .with_field("Idempotency-Key")
                }),
                Err(_) => Err(Problem::new(
                    Code::InvalidIdempotencyKey,
                    "the Idempotency-Key header must be printable ASCII",
                )
                .with_field("Idempotency-Key")),
            },
        }
    }
}

/// One path parameter, percent-decoded.
#[derive(Debug)]
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParam(value))
            .map_err(|rejection| Problem::new(Code::InvalidParameter, rejection.body_text()))
    }
}

/// Query parameters; unknown ones are refused, and every failure names the parameter
/// (`json::query`).
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        json::query(parts.uri.query().unwrap_or_default()).map(QueryParams)
    }
}

/// Reads the whole body under the server's limit (413 beyond it).
async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Problem> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    Code::BodyTooLarge,
                    "the request body is larger than this server accepts",
                )
            } else {
                Problem::new(Code::MalformedBody, rejection.body_text())
            }
        })
}

fn content_type(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

/// A JSON request body (`Content-Type: application/json`, or none).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        check_json_content_type(&request)?;
        let bytes = body_bytes(request, state).await?;
        json::body(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be left out entirely (an empty body is the default value).
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        check_json_content_type(&request)?;
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        json::body(&bytes).map(OptionalJsonBody)
    }
}

fn check_json_content_type(request: &Request) -> Result<(), Problem> {
    match content_type(request) {
        Some(media_type) if !is_json(&media_type) => Err(Problem::new(
            Code::UnsupportedMediaType,
            format!("send JSON with `Content-Type: application/json`, not {media_type}"),
        )),
        _ => Ok(()),
    }
}

/// A text body: the program's TOML (`application/toml`, `text/plain`, or no content type).
#[derive(Debug)]
pub struct TomlBody(pub String);

impl<S: Send + Sync> FromRequest<S> for TomlBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match content_type(&request) {
            Some(media_type)
                if !matches!(
                    media_type.as_str(),
                    "application/toml" | "text/plain" | "text/x-toml"
                ) =>
            {
                return Err(Problem::new(
                    Code::UnsupportedMediaType,
                    format!(
                        "send the program text with `Content-Type: application/toml`, not {media_type}"
                    ),
                ));
            }
            _ => {}
        }
        let bytes = body_bytes(request, state).await?;
        String::from_utf8(bytes.to_vec())
            .map(TomlBody)
            .map_err(|_| Problem::new(Code::MalformedBody, "the program text is not UTF-8"))
    }
}
