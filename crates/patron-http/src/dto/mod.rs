//! The JSON shapes of the API: request bodies and responses, with their OpenAPI schemas, one
//! file per file of `routes/` (the shapes a few routes share live with the route that owns them:
//! `BalanceOut` with the members, `BenefitOut` with the coupons).
//!
//! They mirror the engine's request types and records on purpose: the API is a contract of its
//! own, and each conversion names every field (struct literals and full destructuring), so a
//! field added to the engine or the store fails to compile here until someone decides whether
//! the API shows it.

pub mod analytics;
pub mod cards;
pub mod coupons;
pub mod events;
pub mod members;
pub mod metrics;
pub mod ops;
pub mod points;
pub mod program;
pub mod promotions;
pub mod purchases;
pub mod rewards;
pub mod segments;
pub mod tiers;
