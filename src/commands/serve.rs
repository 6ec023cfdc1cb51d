//! `stablebuild serve`: run the registry mirror until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use super::{open_store, snapshotter};
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::registry::{self, AppState, paths};

pub async fn run(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let snap = Arc::new(snapshotter(config, store, args.jobs)?);
    let mut allowed: Vec<String> = if args.allow.is_empty() {
        paths::DEFAULT_ALLOWED
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.allow.iter().map(|a| a.to_ascii_lowercase()).collect()
    };
    // A registry the operator pointed elsewhere with --upstream is reachable too.
    allowed.extend(config.upstreams.keys().cloned());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    info!(
        "serving {} on http://{addr} (upstreams allowed: {})",
        config.store.display(),
        allowed.join(", ")
    );
    eprintln!("listening on http://{addr}");
    let state = Arc::new(AppState { snap, allowed });
    registry::serve(listener, state, shutdown_signal()).await?;
    info!("shut down");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
