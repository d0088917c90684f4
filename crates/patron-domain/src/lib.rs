//! Patron's pure domain core.
//!
//! Everything here is deterministic arithmetic and validation over values: points, lots,
//! clawback, expiry instants, tier qualification, the program model and its validation, earning
//! rules (CEL conditions compiled once, evaluated purely), coupon codes, and the hygiene of
//! what people type (`text`: identifiers, names, numbers in any digits; `phone`).
//! Architecture invariant: this crate performs no I/O, spawns no tasks, knows no SQL and no
//! HTTP. Time is always passed in (`jiff::Timestamp`), never read from a clock. Parsing a
//! program from TOML text is allowed (it is a pure function of a string).

pub mod calendar;
pub mod card;
pub mod clawback;
pub mod contact;
pub mod coupon;
pub mod earning;
pub mod expiry;
pub mod limits;
pub mod lots;
pub mod metrics;
pub mod phone;
pub mod posting;
pub mod program;
pub mod purchase;
pub mod rewards;
pub mod rules;
pub mod segments;
pub mod shared;
pub mod text;
pub mod tier;

pub use jiff;
pub use rand;
pub use rust_decimal;
