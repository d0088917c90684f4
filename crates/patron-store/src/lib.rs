//! scratch
pub fn x() {}
