//! `patron migrate`: bring the database schema up to date and say what was done.

use std::process::ExitCode;

use crate::settings::Settings;
use crate::store::{connect_and_migrate, redact};

pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let shown = redact(&settings.database_url);
    let (engine, applied) = connect_and_migrate(&settings.database_url).await?;
    if applied.is_empty() {
        println!("{shown}: already up to date, nothing to apply");
    } else {
        for name in &applied {
            println!("{shown}: applied {name}");
        }
        println!(
            "{shown}: {} migration{} applied",
            applied.len(),
            if applied.len() == 1 { "" } else { "s" }
        );
    }
    engine.close().await;
    Ok(ExitCode::SUCCESS)
}
