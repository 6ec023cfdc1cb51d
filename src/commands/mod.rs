//! The subcommands: one file each, `run(ctx, args)`. All printing happens here (results on
//! stdout, diagnostics on stderr); errors carry context for the user via anyhow.
//! Must not touch: store files or the network except through the library modules.

mod config;
mod drift;
mod evict;
mod gc;
mod history;
mod inspect;
mod list;
mod lock;
mod migrate;
mod origin;
mod pin;
mod progress;
mod pull;
mod serve;
mod twins;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::ops::ListEntry;
use crate::reference::Reference;
use crate::remote::Remote;
use crate::settings::Settings;
use crate::shared::{self, Shared};
use crate::snapshot::{Snapshotter, Tier};
use crate::store::{
    Contended, Holder, Mode, Opening, ServerInfo, Store, StoreError, read_server_info,
};
use crate::upstream::{
    AllowPrivate, Credentials, Options, RetryPolicy, Upstreams, docker_config_dir,
};

pub(crate) use origin::cli_origin;

/// A mistake in how the command was called: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Run the command; `settings` says where each setting came from (for `config`).
pub async fn run(cli: Cli, settings: &Settings) -> anyhow::Result<ExitCode> {
    if let Command::Config(args) = cli.command {
        // Shown even when the settings would not resolve: that is when they are looked at.
        return config::run(&cli.global, settings, args);
    }
    let config = Config::resolve(&cli.global).map_err(|e| UsageError(e.to_string()))?;
    match cli.command {
        Command::Pin(args) => pin::run(&config, args).await,
        Command::Pull(args) => pull::run(&config, args).await,
        Command::List(args) => list::run(&config, args).await,
        Command::Evict(args) => evict::run(&config, args).await,
        Command::Gc(args) => gc::run(&config, args).await,
        Command::Verify(args) => verify::run(&config, args).await,
        Command::Serve(args) => serve::run(&config, args).await,
        Command::Inspect(args) => inspect::run(&config, args).await,
        Command::Migrate(args) => migrate::run(&config, args).await,
        Command::History(args) => history::run(&config, args).await,
        Command::Lock(args) => lock::run(&config, args).await,
        Command::Drift(args) => drift::run(&config, args).await,
        Command::Twins(args) => twins::run(&config, args).await,
        Command::Config(_) => unreachable!("handled above"),
    }
}

/// Parse references given by the user; a bad one is a usage error naming it.
pub(crate) fn parse_refs(items: &[String]) -> Result<Vec<Reference>, UsageError> {
    items
        .iter()
        .map(|s| Reference::parse(s).map_err(|e| UsageError(e.to_string())))
        .collect()
}

/// Where a command's work happens: on the store itself, or through the server that holds it.
pub(crate) enum Backend {
    Local(Arc<Store>),
    Remote(Remote),
    /// A shared store: the bucket, and this process's cache of it.
    Shared {
        cache: Arc<Store>,
        shared: Arc<Shared>,
    },
}

impl Backend {
    /// `list` of the store of record, wherever it is: this store, the server's, the bucket.
    pub(crate) async fn list(&self, filter: Option<&str>) -> anyhow::Result<Vec<ListEntry>> {
        Ok(match self {
            Backend::Local(store) => crate::ops::list(store, filter)?,
            Backend::Remote(remote) => remote.list(filter).await?,
            Backend::Shared { shared, .. } => crate::ops::shared::list(shared, filter).await?,
        })
    }

    /// The snapshotter working on this process's store: the local one, or the bucket with
    /// its cache. Through a server there is none (its own does the work).
    pub(crate) fn snapshotter(&self, config: &Config, jobs: u16) -> anyhow::Result<Snapshotter> {
        match self {
            Backend::Local(store) => snapshotter(config, store.clone(), jobs),
            Backend::Shared { cache, shared } => {
                shared_snapshotter(config, cache.clone(), shared.clone(), jobs)
            }
            Backend::Remote(remote) => anyhow::bail!(
                "internal: a command meant for the server at {} ran here",
                remote.url()
            ),
        }
    }
}

/// What a command needs of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Reads only (list, verify, inspect, gc --dry-run): there must be a store; one this
    /// process may not write is opened read-only.
    Read,
    /// Changes it (evict, gc, verify --repair; pin and serve with `create`).
    Write { create: bool },
    /// pull: pins when the image is missing (creating the store), else only reads.
    Export,
}

impl Need {
    /// How to open the local store for this need; a shared store's cache is always this
    /// process's to write, and made when missing.
    fn opening(self, cache_limit: Option<u64>, contended: Contended) -> Opening {
        let (mode, create) = match self {
            _ if cache_limit.is_some() => (Mode::ReadWrite, true),
            Need::Read => (Mode::Auto, false),
            Need::Write { create } => (Mode::ReadWrite, create),
            Need::Export => (Mode::Auto, true),
        };
        Opening {
            mode,
            create,
            contended,
            cache_limit,
        }
    }
}

/// `--server` wins; else the store (a bucket with this process's cache of it, or a local
/// directory), or the running server that holds the store (or the cache).
pub(crate) async fn backend(config: &Config, need: Need) -> anyhow::Result<Backend> {
    if let Some(url) = &config.server {
        return Ok(Backend::Remote(Remote::new(url, config.token.clone())));
    }
    let shared = match &config.shared {
        Some(location) => Some(connect(location).await?),
        None => None,
    };
    let limit = shared
        .as_ref()
        .map(|_| config.cache_size.bytes(&config.store));
    let open = |c: Contended<'_>| Store::open_with(&config.store, need.opening(limit, c));
    match (open_or_wait(config, open)?, shared) {
        (Opened::Store(cache), Some(shared)) => Ok(Backend::Shared { cache, shared }),
        (Opened::Store(store), None) => Ok(Backend::Local(store)),
        (Opened::Server(info), _) => {
            tracing::info!(
                "the store is held by server pid {}; going through {}",
                info.pid,
                info.url
            );
            Ok(Backend::Remote(Remote::local(&info.url, info.token)))
        }
    }
}

pub(crate) enum Opened {
    Store(Arc<Store>),
    /// A `serve` process holds the store.
    Server(ServerInfo),
}

/// Open the store with `open`. When another process holds it: the server that holds it,
/// else wait for it (saying once who holds it), or fail with --no-wait.
pub(crate) fn open_or_wait(
    config: &Config,
    open: impl Fn(Contended) -> Result<Store, StoreError>,
) -> anyhow::Result<Opened> {
    let context = || format!("opening the store at {}", config.store.display());
    let store = match open(Contended::Fail) {
        Err(StoreError::Locked { holder, path }) => {
            let server = read_server_info(&config.store)
                .filter(|s| holder.as_ref().is_none_or(|h| h.pid == s.pid));
            if let Some(info) = server {
                return Ok(Opened::Server(info));
            }
            if config.no_wait {
                return Err(StoreError::Locked { holder, path }).with_context(context);
            }
            let notify = |h: Option<&Holder>| match h {
                Some(h) => eprintln!("Blocking: waiting for the store lock held by {h}"),
                None => eprintln!("Blocking: waiting for the store lock"),
            };
            tokio::task::block_in_place(|| open(Contended::Wait(&notify)))
        }
        other => other,
    };
    let store = match store {
        Err(e @ StoreError::NoStore { .. }) => return Err(e.into()), // it names the path
        other => other.with_context(context)?,
    };
    match (store.created(), &config.shared) {
        (true, None) => eprintln!("created a new store at {}", config.store.display()),
        (true, Some(bucket)) => tracing::info!(
            "created a new cache of {bucket} at {}",
            config.store.display()
        ),
        (false, _) => {}
    }
    if let Some(reason) = store.read_only() {
        tracing::info!("the store is open read-only: {reason}");
    }
    Ok(Opened::Store(Arc::new(store)))
}

pub(crate) fn snapshotter(
    config: &Config,
    store: Arc<Store>,
    jobs: u16,
) -> anyhow::Result<Snapshotter> {
    Ok(Snapshotter::new(store, upstreams(config)?, jobs as usize))
}

/// The upstream clients that `--upstream` and `--insecure-registry` describe.
pub(crate) fn upstreams(config: &Config) -> anyhow::Result<Arc<Upstreams>> {
    let usage = |e: &dyn std::fmt::Display| UsageError(e.to_string());
    let credentials = Credentials::load(&config.upstream_auth, docker_config_dir().as_deref())
        .map_err(|e| usage(&e))?;
    let upstreams = Upstreams::new(Options {
        overrides: config.upstreams.clone(),
        insecure: config.insecure.clone(),
        ca_files: config.upstream_ca.clone(),
        retry: RetryPolicy::default(),
        credentials,
        allow_private: AllowPrivate::parse(&config.allow_private).map_err(|e| usage(&e))?,
    })
    .map_err(|e| usage(&e))?;
    Ok(Arc::new(upstreams))
}

/// A snapshotter whose store of record is `shared`, caching in `cache`.
pub(crate) fn shared_snapshotter(
    config: &Config,
    cache: Arc<Store>,
    shared: Arc<Shared>,
    jobs: u16,
) -> anyhow::Result<Snapshotter> {
    Ok(snapshotter(config, cache, jobs)?.with_tier(Tier::bucket(shared)))
}

/// The bucket of a shared store, checked to answer (one listing): a missing bucket, wrong
/// credentials or an unreachable endpoint fail here, named.
pub(crate) async fn connect(location: &shared::Location) -> anyhow::Result<Arc<Shared>> {
    let shared = Shared::connect(location)?;
    shared.check().await?;
    Ok(Arc::new(shared))
}

pub(crate) fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("results serialise")
    );
}

/// "1 blob", "0 blobs": a count with the noun that agrees with it.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        _ => format!("{n} {many}"),
    }
}

/// 1536 → "1.5 KiB".
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(0, "blob", "blobs"), "0 blobs");
        assert_eq!(count(1, "blob", "blobs"), "1 blob");
        assert_eq!(count(2, "entry", "entries"), "2 entries");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(crate::ops::timestamp(0), "1970-01-01T00:00:00Z");
    }
}
