//! `stablebuild serve`: run the registry mirror until SIGTERM or Ctrl-C. While it runs, the
//! store's `server.json` tells local commands where to send their work.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use super::{Opened, UsageError, open_or_wait, shared_snapshotter, snapshotter};
use crate::cli::{DashboardMode, ServeArgs};
use crate::config::Config;
use crate::dashboard::{Access, Dashboard};
use crate::registry::pull_auth::PullAuth;
use crate::registry::tls::Tls;
use crate::registry::{self, AppState, Workers, paths};
use crate::shared::{Location, Shared};
use crate::snapshot::Snapshotter;
use crate::store::{
    Contended, Mode, Opening, ServerInfo, Store, remove_server_info, write_server_info,
};

pub async fn run(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Files named by flags are read before the store is opened: a bad one changes nothing.
    let pull_auth = PullAuth::load(args.pull_auth.as_deref(), args.pull_token.as_deref())
        .context("reading the pull credentials")?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(Tls::load(cert, key)?)),
        (None, None) => None,
        // clap says so for flags; a config file's keys reach here unchecked.
        _ => return Err(UsageError("--tls-cert and --tls-key go together".into()).into()),
    };
    let shared = match &config.shared {
        Some(location) => Some(bucket(location, &args).await?),
        None if args.redirect => {
            return Err(
                UsageError("--redirect needs a shared store (--store s3://…)".into()).into(),
            );
        }
        None => None,
    };
    let mode = match args.read_only {
        true => Mode::ReadOnly,
        false => Mode::ReadWrite,
    };
    let open = |contended: Contended<'_>| {
        let opening = Opening {
            mode,
            create: true,
            contended,
            cache_limit: shared
                .as_ref()
                .map(|_| config.cache_size.bytes(&config.store)),
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
    let snap = Arc::new(match &shared {
        Some(shared) => shared_snapshotter(config, store, shared.clone(), args.jobs)?,
        None => snapshotter(config, store, args.jobs)?,
    });
    if shared.is_some() {
        tokio::spawn(refresh(snap.clone(), args.refresh));
    }
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
    // Installed before the address is printed: from then on SIGHUP reloads, never kills.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("installing the SIGHUP handler")?;
    tokio::spawn(reload_on_hangup(hangups, tls.clone()));
    // Before the address is printed and server.json written: nothing to undo if it fails.
    // Pull-throughs that requests start run on the workers; they stop after those finish.
    let workers = Workers::per_cpu().context("starting the connection workers")?;
    tracing::debug!("connections run on {} worker threads", workers.count());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let admin_token = match args.admin_token {
        Some(t) => t,
        None => crate::secret::random_token().context("making an admin token")?,
    };
    let local = match addr.ip().is_unspecified() {
        true => format!("{scheme}://127.0.0.1:{}", addr.port()),
        false => format!("{scheme}://{addr}"),
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
    eprintln!("listening on {scheme}://{addr}");
    let state = AppState::new(snap.clone(), allowed, admin_token)
        .with_redirect(args.redirect)
        .with_pull_auth(pull_auth);
    let state = Arc::new(state);
    if let Some(every) = args.drift_every {
        tokio::spawn(registry::watch_drift(state.clone(), every));
    }
    let location = match &config.shared {
        Some(l) => format!("{l} (cache {})", config.store.display()),
        None => config.store.display().to_string(),
    };
    let pages = dashboard(&state, args.dashboard, &location, tls.is_some());
    let served = registry::serve(listener, tls, state, pages, &workers, shutdown_signal()).await;
    finish_pulls(&snap).await;
    drop(workers);
    if !read_only {
        remove_server_info(&config.store);
    }
    served?;
    info!("shut down");
    Ok(ExitCode::SUCCESS)
}

/// The dashboard's routes (none with `--dashboard off`).
/// Over TLS its session cookie is marked `Secure`.
fn dashboard(
    state: &Arc<AppState>,
    mode: DashboardMode,
    location: &str,
    tls: bool,
) -> axum::Router {
    let access = match mode {
        DashboardMode::Off => return axum::Router::new(),
        DashboardMode::Public => Access::Public,
        DashboardMode::Private => Access::Private,
    };
    let dash = Dashboard::new(state.clone(), access, location.to_string()).secure(tls);
    crate::dashboard::router(Arc::new(dash))
}

/// The bucket of a shared store. A replica starts even when the bucket does not answer now
/// (it serves what its cache holds, and 503 for the rest, until the bucket is back).
async fn bucket(location: &Location, args: &ServeArgs) -> anyhow::Result<Arc<Shared>> {
    if args.read_only {
        return Err(UsageError("--read-only applies to a local store, not s3://".into()).into());
    }
    let shared = Shared::connect(location)?;
    match shared.check().await {
        Ok(()) => info!("store {location} at {}", shared.endpoint()),
        Err(e) if e.is_unreachable() => warn!("{e}; serving from the cache until it answers"),
        Err(e) => return Err(e.into()),
    }
    Ok(Arc::new(shared))
}

/// Keep the cached records in line with the bucket (an evict on any replica is honoured
/// here within `every`), first at start; while the bucket is unreachable, the cache keeps
/// serving.
async fn refresh(snap: Arc<Snapshotter>, every: std::time::Duration) {
    let mut failing = false;
    loop {
        match snap.tier().refresh(snap.store()).await {
            Ok(done) => {
                if failing {
                    info!("the bucket answers again");
                }
                failing = false;
                if done.evicted + done.replaced + done.added > 0 {
                    info!(
                        "refresh: {} evicted, {} pinned again and {} pinned elsewhere",
                        done.evicted, done.replaced, done.added
                    );
                }
            }
            Err(e) if !failing => {
                warn!("refresh: {e}");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(every).await;
    }
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

/// SIGHUP: read the TLS certificate and key again (new connections use them; open ones keep
/// theirs). A reload that fails keeps the previous pair and says why.
async fn reload_on_hangup(mut hangups: tokio::signal::unix::Signal, tls: Option<Arc<Tls>>) {
    while hangups.recv().await.is_some() {
        match &tls {
            Some(tls) => match tls.reload() {
                Ok(()) => info!("SIGHUP: reloaded {}", tls.cert_path().display()),
                Err(e) => warn!("SIGHUP: keeping the previous certificate: {e}"),
            },
            None => info!("SIGHUP: nothing to reload (no --tls-cert)"),
        }
    }
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
