//! The shapes of health and readiness.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthOut {
    /// Always `ok`: the process answers.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyOut {
    /// `ready`, or `not_ready` with status 503.
    pub status: String,
    pub database: bool,
    pub migrations_current: bool,
}
