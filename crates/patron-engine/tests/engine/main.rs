//! The engine's contract tests: every test runs on SQLite and on PostgreSQL (when
//! `PATRON_TEST_POSTGRES_URL` is set; required in CI). One test binary for the crate.
// A test target is always built with cfg(test); saying so lets clippy.toml's test
// allowances (unwrap, expect, panic) cover the helpers too, not only the #[test] functions.
#![cfg(test)]

mod support;

mod concurrency;
mod erasure;
mod idempotency;
mod ids;
mod import;
mod jobs;
mod ledger;
mod limits;
mod members;
mod metrics;
mod migrations;
mod program_changes;
mod properties;
mod referrals;
mod rejections;
mod rewards;
mod rules;
mod schema_parity;
mod segments;
mod smoke;
mod stats;
mod tiers;
mod tls;
mod writer;
