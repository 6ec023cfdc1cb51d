//! Registry v2 request paths → what is asked for, and repository names → which upstream.
//!
//! Owns: the URL grammar (`/v2/`, `/v2/<name>/manifests/<ref>`, `/v2/<name>/blobs/<digest>`,
//! `/v2/<name>/tags/list`, upload paths) and the name rules: mirror mode (`library/ubuntu`
//! means docker.io), prefix mode (`ubuntu`), a registry host as first path component
//! (`ghcr.io/org/app`), containerd's `?ns=` parameter, and the allow-list.
//! Must not touch: anything but strings (pure; unit-tested here).

use crate::reference::{self, Digest, Reference, ReferenceError};

/// What a request path names (its parts borrowed from the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Base,
    Manifest {
        name: &'a str,
        reference: &'a str,
    },
    Blob {
        name: &'a str,
        digest: &'a str,
    },
    Tags {
        name: &'a str,
    },
    /// `/v2/_catalog`: the repositories that have pinned tags.
    Catalog,
    /// Upload endpoints: the mirror is read-only.
    Upload,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no such endpoint: {0}")]
    Unknown(String),
    #[error("{0}")]
    Name(ReferenceError),
    #[error("{0}")]
    Digest(ReferenceError),
    #[error("registry {0} is not in this mirror's allow-list")]
    Denied(String),
    /// A manifest reference that is neither a digest nor a valid tag: no such manifest
    /// (the repository name itself is fine, so this is not NAME_INVALID).
    #[error("manifest unknown: {0}")]
    Tag(ReferenceError),
    #[error("{0}")]
    Page(String),
}

/// Parse the path of a request (without the query string).
pub fn route(path: &str) -> Result<Route<'_>, PathError> {
    let rest = path
        .strip_prefix("/v2")
        .ok_or_else(|| PathError::Unknown(path.into()))?;
    if rest.is_empty() || rest == "/" {
        return Ok(Route::Base);
    }
    let rest = rest
        .strip_prefix('/')
        .ok_or_else(|| PathError::Unknown(path.into()))?;
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags { name });
    }
    if rest.contains("/blobs/uploads") {
        return Ok(Route::Upload);
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Ok(Route::Manifest { name, reference });
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Ok(Route::Blob { name, digest });
    }
    Err(PathError::Unknown(path.into()))
}

/// The upstream registry and repository a request name means, as a reference to the
/// repository's `latest` (`manifest_reference` sets what a request names in it).
pub fn resolve(name: &str, ns: Option<&str>, allowed: &[String]) -> Result<Reference, PathError> {
    let (first, rest) = name.split_once('/').unwrap_or((name, ""));
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    let (registry, repo) = match (is_host && !rest.is_empty(), ns) {
        (true, _) => (first.to_ascii_lowercase(), rest),
        (false, Some(ns)) if !ns.is_empty() => (ns.to_ascii_lowercase(), name),
        _ => ("docker.io".to_string(), name),
    };
    let registry = reference::canonical_registry(registry);
    if !allowed.contains(&registry) {
        return Err(PathError::Denied(registry));
    }
    // Normalise through the reference rules (library/ prefix, validation).
    Reference::new(&registry, repo, None, None).map_err(PathError::Name)
}

/// A manifest reference, a tag or a digest, in the repository `name` (from `resolve`).
pub fn manifest_reference(name: &Reference, reference: &str) -> Result<Reference, PathError> {
    if reference.contains(':') {
        let digest = Digest::parse(reference).map_err(PathError::Digest)?;
        return Ok(name.with_digest(digest));
    }
    name.with_tag(reference).map_err(PathError::Tag)
}

/// The registries reachable when the operator names none.
pub const DEFAULT_ALLOWED: [&str; 7] = [
    "docker.io",
    "ghcr.io",
    "quay.io",
    "registry.k8s.io",
    "gcr.io",
    "public.ecr.aws",
    "nvcr.io",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        DEFAULT_ALLOWED.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn routes_parse() {
        let cases = [
            ("/v2/", Route::Base),
            ("/v2", Route::Base),
            (
                "/v2/library/ubuntu/manifests/20.04",
                Route::Manifest {
                    name: "library/ubuntu",
                    reference: "20.04",
                },
            ),
            (
                "/v2/ghcr.io/o/a/blobs/sha256:ab",
                Route::Blob {
                    name: "ghcr.io/o/a",
                    digest: "sha256:ab",
                },
            ),
            ("/v2/ubuntu/tags/list", Route::Tags { name: "ubuntu" }),
            ("/v2/ubuntu/blobs/uploads/", Route::Upload),
            ("/v2/_catalog", Route::Catalog),
            ("/v2/ubuntu/blobs/uploads/123", Route::Upload),
        ];
        for (path, want) in cases {
            assert_eq!(route(path).unwrap(), want, "{path}");
        }
        assert!(matches!(route("/v1/x"), Err(PathError::Unknown(_))));
        assert!(matches!(route("/v2/x/other"), Err(PathError::Unknown(_))));
    }

    #[test]
    fn names_resolve_by_mode() {
        let a = allowed();
        let cases = [
            ("library/ubuntu", None, ("docker.io", "library/ubuntu")),
            ("ubuntu", None, ("docker.io", "library/ubuntu")),
            ("ghcr.io/org/app", None, ("ghcr.io", "org/app")),
            ("org/app", Some("ghcr.io"), ("ghcr.io", "org/app")),
            ("library/x", Some("docker.io"), ("docker.io", "library/x")),
            (
                "docker.io/library/x",
                Some("docker.io"),
                ("docker.io", "library/x"),
            ),
            ("index.docker.io/x", None, ("docker.io", "library/x")),
        ];
        for (name, ns, (reg, repo)) in cases {
            let got = resolve(name, ns, &a).unwrap();
            assert_eq!(
                (got.registry(), got.repository()),
                (reg, repo),
                "{name} {ns:?}"
            );
        }
    }

    #[test]
    fn hosts_outside_the_allow_list_are_denied() {
        let err = resolve("evil.example.com/x", None, &allowed()).unwrap_err();
        assert_eq!(err, PathError::Denied("evil.example.com".into()));
        let err = resolve("x", Some("127.0.0.1:80"), &allowed()).unwrap_err();
        assert_eq!(err, PathError::Denied("127.0.0.1:80".into()));
    }

    #[test]
    fn bad_names_and_digests_are_told_apart() {
        assert!(matches!(
            resolve("Library/X", None, &allowed()),
            Err(PathError::Name(_))
        ));
        assert!(matches!(
            resolve("a/../b", None, &allowed()),
            Err(PathError::Name(_))
        ));
        let x = resolve("library/x", None, &allowed()).unwrap();
        assert!(matches!(
            manifest_reference(&x, "sha256:zz"),
            Err(PathError::Digest(_))
        ));
        assert!(matches!(
            manifest_reference(&x, "-tag"),
            Err(PathError::Tag(_))
        ));
        assert!(matches!(
            manifest_reference(&x, ".INVALID_MANIFEST_NAME"),
            Err(PathError::Tag(_))
        ));
        assert_eq!(
            manifest_reference(&x, "1").unwrap().key(),
            "docker.io/library/x:1"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let by_digest = manifest_reference(&x, &d).unwrap();
        assert_eq!(by_digest.key(), format!("docker.io/library/x@{d}"));
        assert_eq!(by_digest.tag(), None);
    }
}
