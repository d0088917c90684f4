//! What every handler shares: the engine, the configuration, the rate limiters, the set of
//! idempotency keys in flight, the metrics, and the rendered reference documents.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use patron_engine::Engine;
use patron_engine::model::TenantId;

use crate::ServerConfig;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::problem::{Code, Problem};

#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    engine: Engine,
    config: ServerConfig,
    key_limiter: RateLimiter<i64>,
    address_limiter: RateLimiter<IpAddr>,
    in_flight: Mutex<HashSet<(TenantId, String)>>,
    metrics: Metrics,
    openapi_json: String,
    docs_html: String,
}

impl AppState {
    pub fn new(engine: Engine, config: &ServerConfig) -> AppState {
        let openapi = crate::openapi_document();
        let mut openapi_json = serde_json::to_string_pretty(&openapi).unwrap_or_default();
        openapi_json.push('\n');
        let docs_html = crate::docs::render(&openapi);
        let metrics = Metrics::new();
        let engine = engine.with_rule_failure_observer(Arc::new(metrics.rule_failure_counter()));
        AppState(Arc::new(Inner {
            engine,
            key_limiter: RateLimiter::new(config.rate_limit_per_key_per_second),
            address_limiter: RateLimiter::new(config.rate_limit_per_ip_per_second),
            config: config.clone(),
            in_flight: Mutex::new(HashSet::new()),
            metrics,
            openapi_json,
            docs_html,
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn openapi_json(&self) -> &str {
        &self.0.openapi_json
    }

    pub fn docs_html(&self) -> &str {
        &self.0.docs_html
    }

    pub fn limit_key(&self, key_id: i64) -> Result<(), Problem> {
        self.0.key_limiter.check(&key_id).map_err(|seconds| {
            Problem::new(Code::RateLimited, "this API key is over its rate limit")
                .with_retry_after(seconds)
        })
    }

    pub fn limit_address(&self, address: IpAddr) -> Result<(), Problem> {
        self.0.address_limiter.check(&address).map_err(|seconds| {
            Problem::new(
                Code::RateLimited,
                "this client address is over its rate limit",
            )
            .with_retry_after(seconds)
        })
    }

    /// Marks `(tenant, key)` as executing until the guard is dropped; a second request with
    /// the same key meanwhile gets 409. Within one process this answers concurrent retries
    /// at once; across processes the database serializes them (PostgreSQL blocks the second
    /// on the first's claim row, which then replays the stored response).
    pub fn claim_in_flight(
        &self,
        tenant: TenantId,
        key: Option<&str>,
    ) -> Result<Option<InFlight>, Problem> {
        let Some(key) = key else {
            return Ok(None);
        };
        let entry = (tenant, key.to_string());
        let mut set = match self.0.in_flight.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !set.insert(entry.clone()) {
            return Err(Problem::new(
                Code::IdempotencyKeyInFlight,
                "a request with this Idempotency-Key is still running; retry when it has finished",
            )
            .with_field("Idempotency-Key")
            .with_retry_after(1));
        }
        Ok(Some(InFlight {
            state: self.clone(),
            entry,
        }))
    }
}

/// Releases an in-flight idempotency key when the request ends, however it ends (a client
/// that disconnects drops the handler's future, and with it this guard).
#[derive(Debug)]
pub struct InFlight {
    state: AppState,
    entry: (TenantId, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut set = match self.state.0.in_flight.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        set.remove(&self.entry);
    }
}
