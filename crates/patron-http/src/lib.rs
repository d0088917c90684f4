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
mod conventions;
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

/// The OpenAPI document, as JSON.
pub(crate) fn openapi_document() -> Value {
    let (_, api) = api_router().split_for_parts();
    let mut document = serde_json::to_value(&api).unwrap_or(Value::Null);
    conventions::apply(&mut document);
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
