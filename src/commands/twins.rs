//! `stablebuild twins IMAGE`: the tags of IMAGE's repository that share its digest, most
//! specific first, one full reference a line (IMAGE's own marked), or one JSON document.
//! IMAGE's digest is the pinned one when the store (or the server holding it) has it, else
//! the upstream's current one. Also what `pin --dated` uses to pick the twin it pins.

use std::process::ExitCode;

use anyhow::Context;

use super::{Backend, Need, backend, parse_refs, print_json, upstreams};
use crate::cli::TwinsArgs;
use crate::config::Config;
use crate::ops::twins::{self, DigestSource, TwinsReport};
use crate::reference::{Digest, Reference};
use crate::store::StoreError;

pub async fn run(config: &Config, args: TwinsArgs) -> anyhow::Result<ExitCode> {
    let image = parse_refs(std::slice::from_ref(&args.image))?.remove(0);
    let store = match backend(config, Need::Read).await {
        Ok(b) => Some(b),
        // No store yet: nothing is pinned, the upstream says.
        Err(e) if matches!(e.downcast_ref(), Some(StoreError::NoStore { .. })) => None,
        Err(e) => return Err(e),
    };
    let report = resolve(config, store.as_ref(), &image).await?;
    if config.json {
        print_json(&report);
    } else {
        for t in &report.twins {
            let mark = if t.image { "  (IMAGE)" } else { "" };
            println!("{}{mark}", t.reference);
        }
    }
    let source = match report.source {
        DigestSource::Pinned => "its pinned digest",
        DigestSource::Upstream => "its digest upstream",
    };
    eprintln!(
        "{} of {} share {source} {} ({} tags checked)",
        super::count(report.twins.len(), "tag", "tags"),
        image.name(),
        report.digest,
        report.tags_checked
    );
    for u in &report.unchecked {
        eprintln!("warning: {}: {}", u.tag, u.error);
    }
    Ok(ExitCode::SUCCESS)
}

/// IMAGE's twins, with the digest `store` pinned it at (when given and pinned there).
pub(crate) async fn resolve(
    config: &Config,
    store: Option<&Backend>,
    image: &Reference,
) -> anyhow::Result<TwinsReport> {
    let pinned = match store {
        Some(b) => pinned_digest(b, image).await?,
        None => None,
    };
    twins::twins(&*upstreams(config)?, image, pinned)
        .await
        .with_context(|| format!("finding the twins of {image}"))
}

/// The digest `image` is pinned at, if it is.
async fn pinned_digest(store: &Backend, image: &Reference) -> anyhow::Result<Option<Digest>> {
    let key = image.key();
    let digest = match store {
        Backend::Local(store) => store.tag(&key)?.map(|r| r.digest),
        Backend::Shared { shared, .. } => shared.record(&key).await?.map(|r| r.digest),
        Backend::Remote(remote) => match remote
            .list(Some(&key))
            .await?
            .into_iter()
            .find(|e| e.image == key)
        {
            Some(e) if e.pinned_at.is_some() => Some(Digest::parse(&e.digest)?),
            _ => None,
        },
    };
    Ok(digest)
}
