//! (being written: program helper)
