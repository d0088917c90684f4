//! Instants are stored as microseconds since the Unix epoch in BIGINT columns.

use jiff::Timestamp;

use crate::StoreError;

pub fn to_db(at: Timestamp) -> i64 {
    at.as_microsecond()
}

pub fn from_db(micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(micros)
        .map_err(|e| StoreError::Corrupt(format!("stored instant {micros} out of range: {e}")))
}

pub fn opt_from_db(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(from_db).transpose()
}
