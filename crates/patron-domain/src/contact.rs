//! (being written: ledger math helper)
