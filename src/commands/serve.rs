//! `stablebuild serve`: run the registry mirror until SIGTERM or Ctrl-C. While it runs, the
//! store's `server.json` tells local commands where to send their work.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use super::{Opened, open_or_wait, snapshotter};
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::registry::{self, AppState, paths};
use crate::snapshot::Snapshotter;
use crate::store::{
    Contended, Mode, Opening, ServerInfo, Store, remove_server_info, write_server_info,
};

pub async fn run(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mode = match args.read_only {
        true => Mode::ReadOnly,
        false => Mode::ReadWrite,
    };
    let open = |contended: Contended<'_>| {
        let opening = Opening {
            mode,
            create: true,
            contended,
        };
        Store::open_with(&config.store, opening)
    };
    let store = match open_or_wait(config, open)? {
        Opened::Store(store) => store,
        Opened::Server(info) => anyhow::bail!(
            "the store at {} is already served by pid {} at {}",
            config.store.display(),
            info.pid,
            info.url
        ),
    };
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
    allowed.sort();
    allowed.dedup();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let admin_token = match args.admin_token {
        Some(t) => t,
        None => random_token().context("making an admin token")?,
    };
    let local = match addr.ip().is_unspecified() {
        true => format!("http://127.0.0.1:{}", addr.port()),
        false => format!("http://{addr}"),
    };
    let info = ServerInfo {
        url: local,
        token: admin_token.clone(),
        pid: std::process::id(),
    };
    // A read-only server changes nothing: local commands open the store themselves.
    let read_only = snap.store().read_only().is_some();
    if !read_only {
        write_server_info(&config.store, &info)?;
    }
    info!(
        "serving {} (upstreams allowed: {})",
        config.store.display(),
        allowed.join(", ")
    );
    eprintln!("listening on http://{addr}");
    let state = Arc::new(AppState::new(snap.clone(), allowed, admin_token));
    let served = registry::serve(listener, state, shutdown_signal()).await;
    finish_pulls(&snap).await;
    if !read_only {
        remove_server_info(&config.store);
    }
    served?;
    info!("shut down");
    Ok(ExitCode::SUCCESS)
}

/// Let pull-throughs still downloading (their clients may be gone) finish, for a while;
/// one cut short resumes on the next request for it.
async fn finish_pulls(snap: &Snapshotter) {
    let wait = std::time::Duration::from_secs(10);
    if tokio::time::timeout(wait, snap.exclusive(|_| ()))
        .await
        .is_err()
    {
        info!("pulls still in flight after {wait:?}; they resume on the next request");
    }
}

/// 128 random bits, hex.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
