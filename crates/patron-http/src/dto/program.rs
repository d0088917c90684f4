//! The shapes of the program endpoints.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

/// The club's current program.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramOut {
    pub version: i64,
    /// The TOML text, exactly as applied.
    pub source: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// The result of applying a program.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramAppliedOut {
    pub version: i64,
    /// False when the text was the same as the current version.
    pub changed: bool,
}
