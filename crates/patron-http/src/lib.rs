//! Patron's HTTP face: the `/v1` JSON API, `/openapi.json` (OpenAPI 3.1, generated from the
//! handlers with utoipa), the `/docs` reference page, `/healthz`, `/readyz` and `/metrics`.
//!
//! Each handler authenticates the caller's API key (the key's tenant confines every query:
//! another club's ids are simply not found), checks the key's scope, parses the body strictly,
//! calls one engine use case, and answers JSON, or an RFC 9457 problem document. The
//! conventions are in docs/API-DESIGN.md.
//!
//! Architecture invariant: this is the only crate that knows HTTP; it knows no SQL, and it
//! decides nothing about points: the engine does.

pub mod bounds;
mod connection;
mod docs;
mod dto;
mod extract;
pub mod ids;
mod json;
mod limits;
mod metrics;
mod middleware;
mod problem;
mod routes;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use patron_engine::Engine;
use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use problem::Code;

use crate::routes::{
    cards, coupons, events, members, ops, points, program, promotions, purchases, rewards,
};
use crate::state::AppState;

/// The largest page any list answers, whatever the configuration says.
pub const PAGE_SIZE_CEILING: u32 = 500;

/// How the server runs. Every limit is explicit (TIGER_STYLE: a limit on everything).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request body accepted (413 beyond it).
    pub body_limit_bytes: usize,
    /// Requests per second per API key (a bucket of one second's worth); 0: no limit.
    pub rate_limit_per_key_per_second: u32,
    /// Requests per second per client address on `/v1`; 0: no limit. Behind a reverse proxy
    /// every request comes from the proxy's address: set this to 0 there and limit at the
    /// proxy.
    pub rate_limit_per_ip_per_second: u32,
    /// Largest page a list answers (at most [`PAGE_SIZE_CEILING`]).
    pub page_size_max: u32,
    /// Page size when the request names none.
    pub page_size_default: u32,
    /// A request still running after this answers 503 (`unavailable`).
    pub request_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            // A purchase of 1,000 lines (the engine's maximum) is about 150 KiB of JSON.
            body_limit_bytes: 1024 * 1024,
            rate_limit_per_key_per_second: 1000,
            rate_limit_per_ip_per_second: 2000,
            page_size_max: 100,
            page_size_default: 50,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerConfig {
    pub(crate) fn effective_page_size_max(&self) -> u32 {
        self.page_size_max.clamp(1, PAGE_SIZE_CEILING)
    }
}

const API_DESCRIPTION: &str = "The loyalty ledger of a club: members, purchases that earn points, \
redemptions, adjustments, transfers, and the program that sets the rules.\n\n\
Authenticate every `/v1` call with `Authorization: Bearer <key>`; a key belongs to one club \
and has a scope: `admin` (everything), `pos` (enrollment, look-up, purchases, refunds, \
redemptions) or `read` (GET only). Bodies are JSON and unknown fields are refused. Send an \
`Idempotency-Key` with every POST: a retry answers the stored response with \
`Idempotent-Replayed: true`. Lists answer `{\"data\": [...], \"next_cursor\": ...}`; pass \
`next_cursor` back as `?cursor=` until it is null. Errors are RFC 9457 problem documents with \
a stable `code`.";

#[derive(OpenApi)]
#[openapi(
    info(title = "Patron API", version = "1", description = "The loyalty ledger of a club."),
    tags(
        (name = "members", description = "Enrollment, look-up, profile changes, leaving; balances and ledgers."),
        (name = "purchases", description = "Purchases earn points; refunds claw them back in proportion."),
        (name = "events", description = "Custom events that the program's event rules reward."),
        (name = "points", description = "Redemptions (immediate or held at checkout), adjustments and transfers."),
        (name = "program", description = "The club's rules, as TOML."),
        (name = "rewards", description = "The rewards catalog as a member sees it; redeeming a reward is a redemption with `reward_id`."),
        (name = "coupons", description = "Coupons at the till and in the web shop: validate, redeem, release."),
        (name = "promotions", description = "Promotions with codes generated in bulk, budgets and limits; partner code pools."),
        (name = "cards", description = "Membership cards."),
        (name = "analytics", description = "Knowing the members: RFV grid, segments and their members, basket analysis, metrics."),
        (name = "operations", description = "Health, readiness and metrics, without authentication."),
    ),
    components(schemas(problem::ProblemDocument, problem::ProblemItem))
)]
struct ApiDoc;

/// Which scopes may call each operation: the reference page shows it, and the HTTP tests
/// check the handlers enforce exactly this.
pub const OPERATION_SCOPES: &[(&str, &str)] = &[
    ("enroll_member", "admin, pos"),
    (
        "list_members",
        "admin, read; pos only with a look-up filter",
    ),
    ("get_member", "admin, pos, read"),
    ("update_member", "admin"),
    ("exit_member", "admin"),
    ("set_member_referrer", "admin, pos"),
    ("get_balance", "admin, pos, read"),
    ("set_member_tier", "admin"),
    ("remove_member_tier", "admin"),
    ("get_ledger", "admin, read"),
    ("post_purchase", "admin, pos"),
    ("get_purchase", "admin, pos, read"),
    ("refund_purchase", "admin, pos"),
    ("attach_purchase", "admin, pos"),
    ("post_event", "admin, pos"),
    ("redeem_points", "admin, pos"),
    ("get_redemption", "admin, pos, read"),
    ("capture_redemption", "admin, pos"),
    ("release_redemption", "admin, pos"),
    ("cancel_reward_redemption", "admin, pos"),
    ("adjust_points", "admin"),
    ("transfer_points", "admin"),
    ("get_program", "admin, read"),
    ("put_program", "admin"),
    ("replace_card", "admin"),
    ("list_rewards", "admin, pos, read"),
    ("get_coupon", "admin, pos, read"),
    ("validate_coupon", "admin, pos"),
    ("redeem_coupon", "admin, pos"),
    ("release_coupon", "admin, pos"),
    ("create_promotion", "admin"),
    ("get_promotion", "admin"),
    ("generate_promotion_codes", "admin"),
    ("list_promotion_codes", "admin"),
    ("import_partner_codes", "admin"),
    ("get_metrics", "admin, read"),
    ("get_clv_model", "admin, read"),
    ("get_member_clv", "admin, read"),
    ("get_rfv", "admin, read"),
    ("get_baskets", "admin, read"),
    ("list_segments", "admin, read"),
    ("list_segment_members", "admin, read"),
];

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(members::enroll, members::list))
        .routes(routes!(members::get, members::update))
        .routes(routes!(members::exit))
        .routes(routes!(members::set_referrer))
        .routes(routes!(members::balance))
        .routes(routes!(routes::tiers::set, routes::tiers::remove))
        .routes(routes!(members::ledger))
        .routes(routes!(points::adjust))
        .routes(routes!(points::transfer))
        .routes(routes!(rewards::redeem))
        .routes(routes!(rewards::list))
        .routes(routes!(coupons::get))
        .routes(routes!(coupons::validate))
        .routes(routes!(coupons::redeem))
        .routes(routes!(coupons::release))
        .routes(routes!(promotions::create))
        .routes(routes!(promotions::get))
        .routes(routes!(promotions::generate, promotions::codes))
        .routes(routes!(promotions::import_partner_codes))
        .routes(routes!(points::get_redemption))
        .routes(routes!(points::capture))
        .routes(routes!(points::release))
        .routes(routes!(points::cancel_reward))
        .routes(routes!(purchases::post))
        .routes(routes!(purchases::get))
        .routes(routes!(purchases::refund))
        .routes(routes!(purchases::attach))
        .routes(routes!(events::post))
        .routes(routes!(program::get, program::put))
        .routes(routes!(cards::replace))
        .routes(routes!(routes::metrics::metrics))
        .routes(routes!(routes::metrics::clv_model))
        .routes(routes!(routes::metrics::member_clv))
        .routes(routes!(routes::analytics::rfv))
        .routes(routes!(routes::analytics::baskets))
        .routes(routes!(routes::segments::list))
        .routes(routes!(routes::segments::members))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            problem::PROBLEM_CONTENT_TYPE: {
                "schema": { "$ref": "#/components/schemas/Problem" }
            }
        }
    })
}

/// Adds what every `/v1` operation shares, so the handlers' annotations only say what is
/// particular to them: bearer security, the scopes, the Idempotency-Key header and the replay
/// marker on writes, and the common error responses.
fn apply_conventions(document: &mut Value) {
    if let Some(info) = document.get_mut("info") {
        info["description"] = json!(API_DESCRIPTION);
    }
    document["components"]["securitySchemes"] = json!({
        "api_key": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`ptk_...`), created with `patron keys create`."
        }
    });
    // Responses always carry every field (`null` when there is no value): say so, so that
    // clients may rely on it and the contract test checks it.
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if !(name.ends_with("Out") || name.ends_with("Page")) {
                continue;
            }
            let fields: Vec<Value> = schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|properties| properties.keys().cloned().map(Value::String).collect())
                .unwrap_or_default();
            schema["required"] = Value::Array(fields);
        }
    }
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !path.starts_with("/v1/") {
                operation["security"] = json!([]);
                continue;
            }
            operation["security"] = json!([{ "api_key": [] }]);
            let id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some((_, scopes)) = OPERATION_SCOPES.iter().find(|(op, _)| *op == id) {
                let description = operation
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let scope_line = format!("Scopes: {scopes}.");
                operation["description"] = json!(if description.is_empty() {
                    scope_line
                } else {
                    format!("{description}\n\n{scope_line}")
                });
            }
            let writes = matches!(method.as_str(), "post" | "patch" | "put");
            // A PUT or DELETE that runs through `mutate` takes a key too (the program's PUT is
            // idempotent by its text).
            let idempotent = matches!(method.as_str(), "post" | "patch")
                || matches!(id.as_str(), "set_member_tier" | "remove_member_tier");
            if idempotent {
                let parameters = operation
                    .as_object_mut()
                    .map(|op| op.entry("parameters").or_insert_with(|| json!([])));
                if let Some(Value::Array(parameters)) = parameters {
                    parameters.push(json!({
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": false,
                        "description": "Makes the call safe to retry: the same key with the same request answers the stored response (with `Idempotent-Replayed: true`) and has no new effect; with another request it is refused (422). Keys are kept at least 24 hours, per club.",
                        "schema": { "type": "string", "minLength": 1, "maxLength": 255 }
                    }));
                }
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            if idempotent {
                for (status, response) in responses.iter_mut() {
                    if status.starts_with('2') {
                        response["headers"]["Idempotent-Replayed"] = json!({
                            "description": "`true` when this is the stored response of an earlier identical request",
                            "schema": { "type": "string", "enum": ["true"] }
                        });
                    }
                }
            }
            let mut common: Vec<(&str, &str)> = vec![
                (
                    "400",
                    "`malformed_body`, `unknown_field`, `missing_field`, `invalid_type`, `invalid_parameter`, `invalid_idempotency_key`, `malformed_request`",
                ),
                (
                    "401",
                    "`unauthenticated`: no key, or an unknown or revoked one",
                ),
                ("403", "`insufficient_scope`"),
                ("414", "`uri_too_long`: the path and query are over 64 KiB"),
                ("429", "`rate_limited`: see `Retry-After`"),
                (
                    "431",
                    "`headers_too_large`: over 100 header fields, or about 400 KiB of them",
                ),
                ("500", "`internal_error`"),
                ("503", "`unavailable`: see `Retry-After`"),
            ];
            if writes {
                common.push(("413", "`body_too_large`"));
                common.push(("415", "`unsupported_media_type`"));
            }
            if idempotent {
                common.push((
                    "409",
                    "`idempotency_key_in_flight`: the same key is still running",
                ));
                common.push((
                    "422",
                    "`idempotency_key_reused`: the key was used for another request",
                ));
            }
            for (status, description) in common {
                match responses.get_mut(status) {
                    Some(existing) => {
                        let before = existing
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        existing["description"] = json!(format!("{before}; {description}"));
                    }
                    None => {
                        responses.insert(status.to_string(), problem_response(description));
                    }
                }
            }
        }
    }
}

/// The OpenAPI document, as JSON.
pub(crate) fn openapi_document() -> Value {
    let (_, api) = api_router().split_for_parts();
    let mut document = serde_json::to_value(&api).unwrap_or(Value::Null);
    apply_conventions(&mut document);
    bounds::apply(&mut document);
    document
}

/// The OpenAPI 3.1 document of the API, pretty-printed.
pub fn openapi_json() -> String {
    let mut text = serde_json::to_string_pretty(&openapi_document()).unwrap_or_default();
    text.push('\n');
    text
}

/// The whole application: `/v1`, the documents, and the operations endpoints. [`serve_on`]
/// serves it with the client's address (without it the per-address rate limit cannot apply
/// and is skipped; `into_make_service_with_connect_info::<SocketAddr>()` gives it too) and
/// with hyper's own error answers turned into problem documents (`connection`).
pub fn router(engine: Engine, config: &ServerConfig) -> Router {
    let state = AppState::new(engine, config);
    let (api, _) = api_router().split_for_parts();
    api.route("/openapi.json", get(ops::openapi))
        .route("/docs", get(ops::docs))
        .route("/problems/{code}", get(ops::problem_type))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::track,
        ))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .with_state(state)
}

/// Binds `config.listen` and serves until `shutdown` completes; requests in flight then
/// finish before this returns.
pub async fn serve(
    engine: Engine,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    serve_on(listener, engine, config, shutdown).await
}

/// Serves on a listener already bound (tests bind `127.0.0.1:0` and read the port first).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    engine: Engine,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let app = router(engine, &config);
    tracing::info!(%address, "serving the API");
    axum::serve(
        connection::ProblemListener::new(listener),
        app.into_make_service_with_connect_info::<connection::ClientAddress>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
