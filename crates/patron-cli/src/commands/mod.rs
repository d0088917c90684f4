//! One module per top-level command. Each exposes its clap arguments and a `run` function
//! that returns the exit code.

pub mod analyze;
pub mod cards;
pub mod demo;
pub mod jobs;
pub mod keys;
pub mod ledger;
pub mod members;
pub mod migrate;
pub mod program;
pub mod serve;
pub mod stats;
pub mod tenants;

use std::path::Path;

use anyhow::Context;

/// Reads a text file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
