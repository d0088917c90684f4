//! Whether a storage failure means "the database cannot be reached or is saturated right now"
//! (the HTTP layer answers 503 with `Retry-After`) rather than a fault (500).

use crate::StoreError;

impl StoreError {
    /// The pool timed out or closed, the connection failed, or a unit of work kept
    /// conflicting: transient, nothing was stored, the call can be retried.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Conflict(_) | StoreError::ProgramChanged { .. } => true,
            StoreError::Database(error) => {
                matches!(
                    error,
                    sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
                ) || self.is_retryable()
            }
            _ => false,
        }
    }
}
