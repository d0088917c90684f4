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
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = (settings.jobs.interval_seconds > 0).then(|| {
        tokio::spawn(scheduler_loop(
            engine.clone(),
            settings.jobs.interval_seconds,
            settings.jobs.lease_seconds,
            stopped,
        ))
    });
    let served = serve_until_signal(listener, engine, config).await;
    let _ = stop.send(true);
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

/// The job scheduler of this process (docs/JOBS.md): every `interval_seconds`, ensure the
/// current jobs of every club exist (insert-if-absent by key), then claim and run due jobs
/// until none is left. Several processes on one database share the work: a claim is a row
/// lock with a lease, so no job runs twice, and a job whose process died is taken over when
/// its lease expires.
async fn scheduler_loop(
    engine: Engine,
    interval_seconds: u64,
    lease_seconds: u64,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let lease = jiff::SignedDuration::from_secs(i64::try_from(lease_seconds).unwrap_or(300));
    let worker = patron_engine::jobs::Worker::new(lease);
    tracing::info!(worker = %worker.id, interval_seconds, lease_seconds, "job scheduler started");
    eprintln!("jobs: worker {} every {interval_seconds}s", worker.id);
    let mut last_prune: Option<jiff::Timestamp> = None;
    loop {
        if let Err(error) = engine.ensure_jobs_all().await {
            tracing::warn!(%error, "cannot schedule jobs");
        }
        loop {
            if *stopped.borrow() {
                return;
            }
            match engine.work_once(&worker).await {
                Ok(Some(report)) => match &report.outcome {
                    Ok(summary) => {
                        tracing::info!(tenant = %report.tenant, job = %report.key, %summary, recorded = report.recorded, "job done")
                    }
                    Err(error) => {
                        tracing::warn!(tenant = %report.tenant, job = %report.key, %error, "job failed")
                    }
                },
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "cannot run jobs");
                    break;
                }
            }
        }
        let now = engine.now();
        if last_prune.is_none_or(|at| now.duration_since(at).as_hours() >= 24) {
            last_prune = Some(now);
            if let Ok(before) =
                now.checked_sub(jiff::SignedDuration::from_hours(24 * JOB_RETENTION_DAYS))
                && let Err(error) = engine.prune_jobs(before).await
            {
                tracing::warn!(%error, "cannot prune old jobs");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(interval_seconds)) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Finished jobs are kept this long (`patron jobs list` shows them), then deleted.
const JOB_RETENTION_DAYS: i64 = 30;

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
    let closing = engine.clone();
    patron_http::serve_on(listener, engine, config, shutdown_signal())
        .await
        .context("the HTTP server stopped")?;
    closing.close().await;
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
