//! The HTTP API over real sockets, on SQLite and on PostgreSQL (when
//! `PATRON_TEST_POSTGRES_URL` is set; required in CI). Every response the tests receive is
//! checked against `/openapi.json`, and every error against RFC 9457 (see `support`).
//! One test binary for the crate.
// A test target is always built with cfg(test); saying so lets clippy.toml's test
// allowances (unwrap, expect, panic) cover the helpers too, not only the #[test] functions.
#![cfg(test)]

#[path = "api/support.rs"]
mod support;

#[path = "api/analytics.rs"]
mod analytics;
#[path = "api/auth.rs"]
mod auth;
#[path = "api/bodies.rs"]
mod bodies;
#[path = "api/bounds.rs"]
mod bounds;
#[path = "api/documents.rs"]
mod documents;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/hostile.rs"]
mod hostile;
#[path = "api/hygiene.rs"]
mod hygiene;
#[path = "api/idempotency.rs"]
mod idempotency;
#[path = "api/ids.rs"]
mod ids;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/members.rs"]
mod members;
#[path = "api/metrics.rs"]
mod metrics;
#[path = "api/numbers.rs"]
mod numbers;
#[path = "api/points.rs"]
mod points;
#[path = "api/program.rs"]
mod program;
#[path = "api/purchases.rs"]
mod purchases;
#[path = "api/referrals.rs"]
mod referrals;
#[path = "api/rewards.rs"]
mod rewards;
#[path = "api/rules.rs"]
mod rules;
#[path = "api/tiers.rs"]
mod tiers;
