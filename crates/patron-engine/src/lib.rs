//! Patron's use cases.
//!
//! The engine validates requests with `patron-domain`, decides what a purchase, an event or
//! an enrollment earns by the program's rules ([`rules`]: evaluated inside the store's unit
//! of work, under the member's wallet lock), and hands the store one atomic unit of work per
//! call. It owns the clock ([`Clock`]) and the cache of parsed programs.
//! It knows neither SQL nor HTTP; JSON appears only as the canonical form hashed for
//! idempotency and the storage form of stored responses.
//!
//! It is the one face the API and the CLI call (and next the console and the portal): the
//! use cases live in one module each (`members`, `purchases`, `points`, `events`, `program`,
//! `admin` for the operator's tools, and the public [`rewards`], [`tiers`], [`segments`],
//! [`metrics`], [`jobs`], [`keys`], [`queries`], [`import`]), and the records they answer
//! with are named through [`model`], so no crate above depends on `patron-store`.

mod admin;
pub mod clock;
pub mod error;
mod events;
pub mod import;
pub mod jobs;
pub mod keys;
mod members;
pub mod metrics;
pub mod model;
mod points;
mod profile;
mod program;
mod purchases;
pub mod queries;
pub mod requests;
pub mod rewards;
pub mod rules;
pub mod segments;
pub mod tiers;

/// The store's test databases (SQLite, and PostgreSQL when `PATRON_TEST_POSTGRES_URL` is set)
/// and the few storage names tests reach for, so that the tests of the crates above the engine
/// need no dependency on `patron-store` either.
pub mod testing {
    pub use patron_store::Backend;
    pub use patron_store::jobs::{ClaimScope, NewJob};
    pub use patron_store::testing::*;
}

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use patron_domain::program::Program;
use patron_domain::rules::RuleFailure;
use patron_domain::text;
use patron_store::Store;
use patron_store::idempotency::{Claim, Idempotent};
use patron_store::tenants::TenantId;
use sha2::{Digest, Sha256};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::EngineError;
pub use points::JobReport;
pub use requests::*;
pub use rules::RuleFailureObserver;

/// Redemption holds that name no expiry are released after this long.
pub const HOLD_DEFAULT_MINUTES: i64 = 30;
/// The longest a hold may last.
pub const HOLD_MAX_MINUTES: i64 = 7 * 24 * 60;

/// A parsed program and its version.
#[derive(Debug, Clone)]
pub struct LoadedProgram {
    pub version: i64,
    pub program: Arc<Program>,
}

#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    rule_failures: Option<Arc<dyn RuleFailureObserver>>,
    programs: Arc<Mutex<HashMap<TenantId, LoadedProgram>>>,
}

/// A result that may be a stored replay.
pub type Outcome<T> = Result<Replayable<T>, EngineError>;

/// The answer of an idempotent call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayable<T> {
    pub value: T,
    pub replayed: bool,
}

fn unwrap_idempotent<T>(result: Idempotent<T>) -> Outcome<T> {
    match result.outcome {
        Ok(value) => Ok(Replayable {
            value,
            replayed: result.replayed,
        }),
        Err(rejection) if result.replayed => Err(EngineError::ReplayedRejection(rejection)),
        Err(rejection) => Err(EngineError::Rejected(rejection)),
    }
}

/// sha256 of the canonical JSON of a request: the fingerprint an idempotency key is bound to.
pub fn request_hash<T: serde::Serialize>(
    operation: &str,
    request: &T,
) -> Result<String, EngineError> {
    let body =
        serde_json::to_vec(request).map_err(|e| EngineError::invalid("request", e.to_string()))?;
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(&body);
    Ok(hex::encode(hasher.finalize()))
}

/// The id of a new row (`mem_...`, `pur_...`): the prefix and a version 7 UUID whose bits
/// below the millisecond are all random. `Uuid::now_v7` fills them from a counter the whole
/// process shares, which would number the rows every club makes within a millisecond
/// (docs/API-DESIGN.md, "Ids").
pub fn new_id(prefix: &str) -> String {
    let uuid = uuid::Uuid::new_v7(uuid::Timestamp::now(uuid::NoContext));
    format!("{prefix}_{}", uuid.simple())
}

fn claims(key: Option<&str>, operation: &str, hash: &str) -> Vec<Claim> {
    key.map(|k| vec![Claim::new(format!("client:{k}"), operation, hash)])
        .unwrap_or_default()
}

/// One operation's points within the program's `[limits] points_max`.
fn check_points(program: &Program, points: i64) -> Result<(), EngineError> {
    program
        .limits
        .check_points(points)
        .map_err(|e| EngineError::invalid("points", e.to_string()))
}

/// A purchase's, refund's or event's time within the program's window around now.
fn check_time(program: &Program, at: Timestamp, now: Timestamp) -> Result<(), EngineError> {
    program
        .limits
        .check_time(at, now)
        .map_err(|e| EngineError::invalid("occurred_at", e.to_string()))
}

fn validate_idempotency_key(key: Option<&str>) -> Result<(), EngineError> {
    match key {
        Some(key) => text::check_identifier(key, text::IDEMPOTENCY_KEY_CHARS_MAX)
            .map_err(|e| EngineError::invalid("Idempotency-Key", e.to_string())),
        None => Ok(()),
    }
}

impl Engine {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Engine {
        Engine {
            store,
            clock,
            rule_failures: None,
            programs: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Tells `observer` about every rule skipped because its expression failed at run time
    /// (the HTTP layer counts them in `/metrics`).
    pub fn with_rule_failure_observer(mut self, observer: Arc<dyn RuleFailureObserver>) -> Engine {
        self.rule_failures = Some(observer);
        self
    }

    /// Logs and reports rules that failed at run time; they were skipped, nothing else.
    fn report_rule_failures(&self, failures: Vec<RuleFailure>) {
        for failure in failures {
            let part = match failure.part {
                patron_domain::rules::RulePart::When => "when",
                patron_domain::rules::RulePart::Amount => "amount",
            };
            let error = failure.error.to_string();
            tracing::warn!(rule = %failure.rule_id, part, %error, "earning rule failed at run time and was skipped");
            if let Some(observer) = &self.rule_failures {
                observer.rule_failed(&failure.rule_id, &error);
            }
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
