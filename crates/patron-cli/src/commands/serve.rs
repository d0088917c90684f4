//! `patron serve`: the HTTP API over the configured database, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use patron_engine::Engine;

use crate::settings::Settings;
use crate::store::{open, redact};

const AFTER_HELP: &str = "\
The address comes from --listen, else PATRON_LISTEN, else `listen` in the --config file,
else 127.0.0.1:8080. The limits (body size, rate limits, page size) come from PATRON_*
variables or the settings file: docs/CONFIG.md lists them all. Ctrl-C or SIGTERM stops the
server gracefully: requests in flight finish first.

Examples:
  patron --db sqlite://patron-demo/patron.db serve
  PATRON_LISTEN=0.0.0.0:8080 patron --db postgres://patron@localhost/patron serve";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR", env = "PATRON_LISTEN")]
    pub listen: Option<SocketAddr>,
}

pub async fn run(settings: &Settings, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let engine = open(settings).await?;
    let config = settings.server_config(args.listen);
    let listener = bind(config.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(%address, database = %redact(&settings.database_url), "listening");
    eprintln!("listening on http://{address}");
    serve_until_signal(listener, engine, config).await?;
    Ok(ExitCode::SUCCESS)
}

/// Binds the address, naming it in the error.
pub(crate) async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// Serves on `listener` until Ctrl-C or SIGTERM, letting requests in flight finish.
pub(crate) async fn serve_until_signal(
    listener: tokio::net::TcpListener,
    engine: Engine,
    config: patron_http::ServerConfig,
) -> anyhow::Result<()> {
    let store = engine.store().clone();
    patron_http::serve_on(listener, engine, config, shutdown_signal())
        .await
        .context("the HTTP server stopped")?;
    store.close().await;
    eprintln!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: letting requests in flight finish");
}
