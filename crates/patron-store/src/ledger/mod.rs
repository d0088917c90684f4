//! The points ledger, as docs/LEDGER.md states it: accounts with four totals, append-only
//! transfers, two-phase (pending) transfers that resolve once, and expiry lots consumed
//! soonest-expiry first.
//!
//! These functions run inside a unit of work, on wallets the caller has locked with
//! [`lock_wallets`]. They assert their preconditions (a debit never takes more than the
//! spendable balance unless the code may go negative) and keep the stored totals and lot
//! remainders equal to what the transfers imply; `verify` recomputes both.
//!
//! `records` holds the ledger's types, `wallets` the accounts, `transfers` the postings and
//! lots, `pending` the two-phase transfers, `expiry` the expiry of due lots.

mod expiry;
mod pending;
mod records;
mod transfers;
mod wallets;

pub(crate) use expiry::*;
pub(crate) use pending::*;
pub use records::*;
pub(crate) use transfers::*;
pub(crate) use wallets::*;
