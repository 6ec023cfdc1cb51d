//! The listing endpoints: `GET /v2/_catalog` (repositories with pinned tags) and
//! `GET /v2/<name>/tags/list` (a repository's pinned tags), both paginated as the
//! distribution spec says: `n` caps the count, `last` starts after that entry, and a
//! `Link: <…>; rel="next"` header says where the next page starts.
//! Owns: which names are listed and how pages are cut. The lists come from the tag records
//! only: the mirror lists what it has pinned, never what the upstream has (on a shared
//! store, the cache's index, which holds every record the bucket held at the replica's
//! last refresh and what it pinned since).
//! Must not touch: the upstream.

use std::sync::Arc;

use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::errors::RegistryError;
use super::paths::PathError;
use crate::reference::Reference;

type Result<T> = std::result::Result<T, RegistryError>;

/// What a listing request asks for: at most `n` entries after `last`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub n: Option<usize>,
    pub last: Option<String>,
}

impl Page {
    /// `n` and `last` from a query string; `n` that is not a number is a client error.
    pub fn from_query(query: Option<&str>) -> std::result::Result<Page, PathError> {
        let mut page = Page::default();
        for (k, v) in query
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
        {
            match k {
                "n" => {
                    let n = v.parse().map_err(|_| {
                        PathError::Page(format!("n={v}: the page size must be a whole number"))
                    })?;
                    page.n = Some(n);
                }
                "last" => page.last = Some(percent_decode(v)),
                _ => {}
            }
        }
        Ok(page)
    }

    /// The entries of this page from a sorted, deduplicated list, and the `last` of the next
    /// page when more follow.
    pub fn cut(&self, sorted: Vec<String>) -> (Vec<String>, Option<String>) {
        let after: Vec<String> = match &self.last {
            Some(last) => sorted.into_iter().filter(|e| e > last).collect(),
            None => sorted,
        };
        match self.n {
            Some(n) if n < after.len() => {
                let page: Vec<String> = after.into_iter().take(n).collect();
                let next = page.last().cloned();
                (page, next)
            }
            _ => (after, None),
        }
    }
}

/// `%2F` and friends in a `last` value (clients escape the `/` of repository names).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A page as JSON, with the `Link` to the next one when there is one.
fn paged(uri: &Uri, page: &Page, body: serde_json::Value, next: Option<String>) -> Response {
    let mut resp = axum::Json(body).into_response();
    if let (Some(last), Some(n)) = (next, page.n) {
        let link = format!("<{}?last={last}&n={n}>; rel=\"next\"", uri.path());
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

/// The name a mirror client uses for a repository: docker.io's without the registry (mirror
/// mode), any other registry's prefixed with its host.
fn client_name(r: &Reference) -> String {
    match r.registry() {
        "docker.io" => r.repository().to_string(),
        other => format!("{other}/{}", r.repository()),
    }
}

pub fn catalog(state: &Arc<AppState>, uri: &Uri) -> Result<Response> {
    let page = Page::from_query(uri.query())?;
    let mut names: Vec<String> = state
        .snap
        .store()
        .tag_keys("")?
        .iter()
        .filter_map(|key| Reference::parse(key).ok())
        .map(|r| client_name(&r))
        .collect();
    names.sort();
    names.dedup();
    let (names, next) = page.cut(names);
    let body = serde_json::json!({ "repositories": names });
    Ok(paged(uri, &page, body, next))
}

/// The pinned tags of one repository (`name` as the client wrote it).
pub fn tags(
    state: &Arc<AppState>,
    uri: &Uri,
    registry: &str,
    repo: &str,
    name: &str,
) -> Result<Response> {
    let page = Page::from_query(uri.query())?;
    let prefix = format!("{registry}/{repo}:");
    // Keys come sorted; a key by digest (`…@sha256:…`) has no `:` right after the name.
    let tags: Vec<String> = state
        .snap
        .store()
        .tag_keys(&prefix)?
        .into_iter()
        .filter_map(|key| key.strip_prefix(&prefix).map(str::to_string))
        .collect();
    if tags.is_empty() {
        return Err(RegistryError::NameUnknown(name.to_string()));
    }
    let (tags, next) = page.cut(tags);
    let body = serde_json::json!({ "name": name, "tags": tags });
    Ok(paged(uri, &page, body, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages_start_after_last_and_stop_at_n() {
        let all = list(&["a", "b", "c", "d"]);
        let page = |q: &str| Page::from_query(Some(q)).unwrap();
        assert_eq!(page("").cut(all.clone()), (all.clone(), None));
        assert_eq!(
            page("n=2").cut(all.clone()),
            (list(&["a", "b"]), Some("b".into()))
        );
        assert_eq!(
            page("n=2&last=b").cut(all.clone()),
            (list(&["c", "d"]), None)
        );
        assert_eq!(page("last=c").cut(all.clone()), (list(&["d"]), None));
        assert_eq!(page("n=0").cut(all.clone()), (vec![], None));
        assert_eq!(page("n=9").cut(all.clone()), (all.clone(), None));
        assert_eq!(page("last=library%2Fb").last.as_deref(), Some("library/b"));
    }

    #[test]
    fn a_page_size_that_is_not_a_number_is_refused() {
        let err = Page::from_query(Some("n=ten")).unwrap_err();
        assert!(err.to_string().contains("n=ten"), "{err}");
    }
}
