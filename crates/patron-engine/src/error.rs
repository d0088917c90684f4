//! The errors of a use case, in the terms a caller can act on.

use patron_domain::program::Diagnostic;
use patron_store::{Rejection, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed: nothing was written and nothing was stored.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// The program text does not validate.
    #[error("the program has {} error(s)", .0.len())]
    Program(Vec<Diagnostic>),
    /// A business rejection (stored under the idempotency key, and replayed).
    #[error(transparent)]
    Rejected(Rejection),
    /// The stored rejection of an earlier identical request, answered again (the HTTP layer
    /// marks it `Idempotent-Replayed: true`, as it marks a replayed success).
    #[error(transparent)]
    ReplayedRejection(Rejection),
    #[error("tenant {0:?} not found")]
    TenantNotFound(String),
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyMismatch { key: String },
    /// Storage or infrastructure: nothing was stored, the call may be retried.
    #[error(transparent)]
    Store(StoreError),
}

impl EngineError {
    /// The business rejection, whether answered now or replayed.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            EngineError::Rejected(rejection) | EngineError::ReplayedRejection(rejection) => {
                Some(rejection)
            }
            _ => None,
        }
    }

    /// This error as the store's, for an engine check that runs inside a unit of work (a
    /// merge under the member's lock): an invalid value stays invalid (nothing written,
    /// nothing stored) and comes back out of the store as [`EngineError::Invalid`].
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            EngineError::Invalid { field, message } => StoreError::Invalid { field, message },
            EngineError::Store(error) => error,
            EngineError::Rejected(rejection) | EngineError::ReplayedRejection(rejection) => {
                StoreError::Rejected(rejection)
            }
            EngineError::IdempotencyMismatch { key } => StoreError::IdempotencyMismatch { key },
            other @ (EngineError::Program(_) | EngineError::TenantNotFound(_)) => {
                StoreError::Corrupt(format!("an engine check in a unit of work failed: {other}"))
            }
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Rejected(rejection) => EngineError::Rejected(rejection),
            StoreError::IdempotencyMismatch { key } => EngineError::IdempotencyMismatch { key },
            StoreError::Invalid { field, message } => EngineError::Invalid { field, message },
            other => EngineError::Store(other),
        }
    }
}

impl From<Rejection> for EngineError {
    fn from(rejection: Rejection) -> Self {
        EngineError::Rejected(rejection)
    }
}
