//! Patron's member analytics: who the members are by what they did, and what they are worth.
//!
//! - [`rfm`]: recency, frequency and monetary value per member as of a date, scored 1-5 with
//!   `NTILE(5)` semantics and named by an R x F segment map (`docs/ANALYTICS.md`).
//! - [`bgnbd`] and [`gamma_gamma`]: the BG/NBD model of repeat purchasing (Fader, Hardie &
//!   Lee 2005) and the Gamma-Gamma model of spend per purchase (Fader & Hardie), fitted by
//!   maximum likelihood, and the per-member predictions built on them ([`clv`]).
//! - [`basket`]: frequent pairs of categories and SKUs (support, confidence, lift) and the
//!   category members buy next.
//! - [`summary`]: a member's purchase days turned into the (x, t_x, T) summary the models use.
//! - [`date`], [`amount`], [`member`]: the small value types and byte parsers the file
//!   readers share, so a 10-million-line file is parsed without a `String` per line.
//!
//! Architecture invariant: this crate performs no I/O, spawns no tasks, knows no SQL and no
//! JSON. Dates are plain day numbers, amounts integer minor units; callers read files and
//! clocks. Everything is deterministic: the same input gives the same bits out.

// Index loops over 3-4 parameters read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

pub mod amount;
pub mod basket;
pub mod bgnbd;
pub mod clv;
pub mod date;
pub mod gamma_gamma;
pub mod member;
pub mod optimize;
pub mod rfm;
pub mod special;
pub mod summary;
