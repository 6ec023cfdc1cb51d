//! `twins`: the tags of IMAGE's repository that name the same digest as IMAGE, most
//! specific first (`order.rs`), as data. The repository's tags come from the paginated tags
//! API and each is compared with one HEAD (no pull is spent); no manifest is fetched.
//! Must not touch: the store (the caller says which digest IMAGE is pinned at, if any).

mod order;

pub use order::{compare, has_date, most_specific_first, version_components};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::reference::{Digest, Reference};
use crate::upstream::{RetryPolicy, UpstreamError, Upstreams};

/// HEAD requests in flight at once.
pub const TWINS_CONCURRENCY: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum TwinsError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{0} is not pinned and not found upstream")]
    NotFound(String),
}

/// Where IMAGE's digest came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestSource {
    /// The store's record of IMAGE.
    Pinned,
    /// A HEAD of IMAGE upstream (or the digest IMAGE names).
    Upstream,
}

/// One tag sharing IMAGE's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Twin {
    pub tag: String,
    /// The full reference, e.g. `docker.io/library/ubuntu:focal-20230801`.
    pub reference: String,
    /// This is IMAGE's own tag.
    pub image: bool,
}

/// A tag that could not be compared, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unchecked {
    pub tag: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinsReport {
    pub image: String,
    pub digest: String,
    pub source: DigestSource,
    /// Tags the repository lists.
    pub tags_checked: usize,
    /// Most specific first; IMAGE's own tag always among them.
    pub twins: Vec<Twin>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<Unchecked>,
}

impl TwinsReport {
    /// The most specific twin (IMAGE itself when none is more specific).
    pub fn most_specific(&self) -> Option<&Twin> {
        self.twins.first()
    }
}

/// IMAGE's twins; `pinned` is the digest the store pinned IMAGE at, if it did.
pub async fn twins(
    upstreams: &Upstreams,
    image: &Reference,
    pinned: Option<Digest>,
) -> Result<TwinsReport, TwinsError> {
    let upstream = upstreams.get(image.registry());
    let (repo, retry) = (image.repository(), RetryPolicy::lookup());
    let (digest, source) = match (pinned, image.digest()) {
        (Some(d), _) => (d, DigestSource::Pinned),
        (None, Some(d)) => (d.clone(), DigestSource::Upstream),
        (None, None) => match upstream
            .head_manifest(repo, &image.manifest_ref(), &retry)
            .await?
        {
            Some(d) => (d, DigestSource::Upstream),
            None => return Err(TwinsError::NotFound(image.to_string())),
        },
    };
    let own = image.tag().map(str::to_string);
    let listed = upstream.tags(repo, &Default::default()).await?;
    let tags_checked = listed.len();
    let others = listed.into_iter().filter(|t| Some(t) != own.as_ref());
    let heads = futures_util::stream::iter(others)
        .map(|tag| {
            let upstream = upstream.clone();
            let retry = &retry;
            async move {
                let current = upstream.head_manifest(repo, &tag, retry).await;
                (tag, current)
            }
        })
        .buffer_unordered(TWINS_CONCURRENCY);
    let mut tags: Vec<String> = own.iter().cloned().collect();
    let mut unchecked = Vec::new();
    let results: Vec<_> = heads.collect().await;
    for (tag, current) in results {
        match current {
            Ok(Some(d)) if d == digest => tags.push(tag),
            Ok(_) => {}
            Err(e) => unchecked.push(Unchecked {
                tag,
                error: e.to_string(),
            }),
        }
    }
    most_specific_first(&mut tags);
    unchecked.sort_by(|a, b| a.tag.cmp(&b.tag));
    let twins = tags
        .into_iter()
        .map(|tag| Twin {
            reference: format!("{}:{tag}", image.name()),
            image: Some(&tag) == own.as_ref(),
            tag,
        })
        .collect();
    Ok(TwinsReport {
        image: image.to_string(),
        digest: digest.to_string(),
        source,
        tags_checked,
        twins,
        unchecked,
    })
}
