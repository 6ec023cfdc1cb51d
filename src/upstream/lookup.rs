//! Lookups that cost no pull: a tag's current digest from a `HEAD` by tag (the
//! `Docker-Content-Digest` header; Docker Hub does not count HEAD requests against its pull
//! limit), and a repository's tags from the paginated tags API (`GET /v2/<repo>/tags/list?n=N`,
//! following `Link: <…>; rel="next"` until there is none).
//! The page size is 1000 (`STABLEBUILD_TAGS_PAGE` sets another, for registries that refuse
//! large pages and for tests); a registry that ignores `n` answers everything at once.
//! Must not touch: manifest bodies (nothing here GETs a manifest) or files.

use reqwest::Method;
use serde::Deserialize;

use super::{Object, RetryPolicy, Upstream, UpstreamError, header_str};
use crate::reference::Digest;

/// Tags asked for per page of the tags API, unless `STABLEBUILD_TAGS_PAGE` says otherwise.
pub const TAGS_PAGE: usize = 1000;
/// Pages followed at most (a registry that links a page to itself must not loop forever).
const MAX_PAGES: usize = 10_000;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Upstream {
    /// The digest `repo:reference` has now, from a HEAD with the full manifest Accept list;
    /// None when the upstream answers 404 (the tag is gone).
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
        retry: &RetryPolicy,
    ) -> Result<Option<Digest>, UpstreamError> {
        let sep = if reference.contains(':') { '@' } else { ':' };
        let what = format!("manifest {repo}{sep}{reference}");
        let path = format!("/v2/{repo}/manifests/{reference}");
        let sent = self
            .send_with(Method::HEAD, &path, repo, &what, Object::Manifest, retry)
            .await;
        let resp = match sent {
            Err(UpstreamError::NotFound { .. }) => return Ok(None),
            other => other?,
        };
        let named = header_str(resp.headers(), "docker-content-digest")
            .ok_or_else(|| self.bad(&what, "HEAD answered without Docker-Content-Digest".into()))?;
        let digest = Digest::parse(named.trim())
            .map_err(|e| self.bad(&what, format!("Docker-Content-Digest {named:?}: {e}")))?;
        Ok(Some(digest))
    }

    /// Every tag of `repo`, in the order the registry lists them, page after page.
    pub async fn tags(
        &self,
        repo: &str,
        retry: &RetryPolicy,
    ) -> Result<Vec<String>, UpstreamError> {
        let what = format!("tags of {repo}");
        let mut path = format!("/v2/{repo}/tags/list?n={}", page_size());
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self
                .send_with(Method::GET, &path, repo, &what, Object::Tags, retry)
                .await?;
            let next = header_str(resp.headers(), "link").and_then(|l| next_link(&l));
            let bytes = resp.bytes().await.map_err(|e| self.transfer(&what, &e))?;
            let page: TagList = serde_json::from_slice(&bytes)
                .map_err(|e| self.bad(&what, format!("not a tag list: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) if next != path => path = next,
                _ => return Ok(tags),
            }
        }
        Ok(tags)
    }
}

fn page_size() -> usize {
    std::env::var("STABLEBUILD_TAGS_PAGE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(TAGS_PAGE)
}

/// The path and query of the `rel="next"` target of a `Link` header
/// (`</v2/x/tags/list?last=b&n=2>; rel="next"`); an absolute URL loses its origin, since
/// requests go to this client's endpoint.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.replace(' ', "").to_ascii_lowercase();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let path = match target.split_once("://") {
            Some((_, rest)) => &rest[rest.find('/')?..],
            None => target,
        };
        (is_next && path.starts_with('/')).then(|| path.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn next_links_are_read_from_link_headers() {
        let cases = [
            (
                "</v2/library/x/tags/list?last=b&n=2>; rel=\"next\"",
                Some("/v2/library/x/tags/list?last=b&n=2"),
            ),
            (
                "<https://r.example/v2/x/tags/list?n=100&last=z>; rel=\"next\"",
                Some("/v2/x/tags/list?n=100&last=z"),
            ),
            (
                "</v2/x/tags/list?last=a>; rel=next",
                Some("/v2/x/tags/list?last=a"),
            ),
            ("</v2/x/tags/list?last=a>; rel=\"prev\"", None),
            (
                "</v2/x/tags/list?last=a>; rel=\"prev\", </v2/x/tags/list?last=q>; rel=\"next\"",
                Some("/v2/x/tags/list?last=q"),
            ),
            ("garbage", None),
        ];
        for (header, want) in cases {
            assert_eq!(next_link(header).as_deref(), want, "{header}");
        }
    }
}
