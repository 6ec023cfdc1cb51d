//! The subcommands: one file each, `run(ctx, args)`. All printing happens here (results on
//! stdout, diagnostics on stderr); errors carry context for the user via anyhow.
//! Must not touch: store files or the network except through the library modules.

mod evict;
mod gc;
mod list;
mod pin;
mod progress;
mod pull;
mod serve;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::reference::Reference;
use crate::remote::Remote;
use crate::snapshot::Snapshotter;
use crate::store::{Store, StoreError, read_server_info};
use crate::upstream::{RetryPolicy, Upstreams};

/// A mistake in how the command was called: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::resolve(&cli.global).map_err(|e| UsageError(e.to_string()))?;
    match cli.command {
        Command::Pin(args) => pin::run(&config, args).await,
        Command::Pull(args) => pull::run(&config, args).await,
        Command::List(args) => list::run(&config, args).await,
        Command::Evict(args) => evict::run(&config, args).await,
        Command::Gc(args) => gc::run(&config, args).await,
        Command::Verify(args) => verify::run(&config, args).await,
        Command::Serve(args) => serve::run(&config, args).await,
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
}

/// `--server` wins; else the store, or the running server that holds it.
pub(crate) fn backend(config: &Config) -> anyhow::Result<Backend> {
    if let Some(url) = &config.server {
        return Ok(Backend::Remote(Remote::new(url, config.token.clone())));
    }
    match Store::open(&config.store) {
        Ok(store) => Ok(Backend::Local(Arc::new(store))),
        Err(StoreError::Locked { .. }) if read_server_info(&config.store).is_some() => {
            let info = read_server_info(&config.store).expect("checked above");
            tracing::info!(
                "the store is held by server pid {}; going through {}",
                info.pid,
                info.url
            );
            Ok(Backend::Remote(Remote::new(&info.url, Some(info.token))))
        }
        Err(e) => {
            Err(e).with_context(|| format!("opening the store at {}", config.store.display()))
        }
    }
}

pub(crate) fn open_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let store = Store::open(&config.store)
        .with_context(|| format!("opening the store at {}", config.store.display()))?;
    Ok(Arc::new(store))
}

pub(crate) fn snapshotter(
    config: &Config,
    store: Arc<Store>,
    jobs: u16,
) -> anyhow::Result<Snapshotter> {
    let upstreams = Upstreams::new(config.upstreams.clone(), RetryPolicy::default())
        .map_err(|e| UsageError(e.to_string()))?;
    Ok(Snapshotter::new(store, Arc::new(upstreams), jobs as usize))
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
