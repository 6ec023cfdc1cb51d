//! `registry::paths`: a request path's route spells the path back, and every name it
//! resolves to is a valid reference name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stablebuild::reference::{Reference, validate_repository};
use stablebuild::registry::paths::{self, DEFAULT_ALLOWED, Route};
use stablebuild_fuzz::text;

fuzz_target!(|data: &[u8]| {
    let Some(input) = text(data) else { return };
    // `path?ns` lets the input choose containerd's `?ns=` registry too.
    let (path, ns) = match input.split_once('?') {
        Some((path, ns)) => (path, Some(ns)),
        None => (input, None),
    };
    let Ok(route) = paths::route(path) else {
        return;
    };
    let Some(name) = spells(&route, path) else {
        return;
    };
    let allowed: Vec<String> = DEFAULT_ALLOWED.iter().map(|s| s.to_string()).collect();
    let Ok(named) = paths::resolve(name, ns, &allowed) else {
        return;
    };
    let (registry, repo) = (named.registry(), named.repository());
    assert!(
        allowed.iter().any(|a| a == registry),
        "{registry} is not allowed"
    );
    validate_repository(repo).unwrap_or_else(|e| panic!("{name:?} → {repo:?}: {e}"));
    let spelled = format!("{registry}/{repo}:latest");
    let r = Reference::parse(&spelled).unwrap_or_else(|e| panic!("{spelled:?}: {e}"));
    assert_eq!((r.registry(), r.repository()), (registry, repo));
    if let Route::Manifest { reference, .. } = &route {
        manifest_reference_round_trips(&named, reference);
    }
});

/// Asserts that `route` is what `path` says, and returns the repository name it carries.
fn spells<'a>(route: &Route<'a>, path: &str) -> Option<&'a str> {
    let (spelled, name) = match route {
        Route::Base => (String::from("/v2/"), None),
        Route::Catalog => (String::from("/v2/_catalog"), None),
        Route::Upload => {
            assert!(path.contains("/blobs/uploads"), "{path:?}");
            return None;
        }
        Route::Manifest { name, reference } => {
            (format!("/v2/{name}/manifests/{reference}"), Some(name))
        }
        Route::Blob { name, digest } => (format!("/v2/{name}/blobs/{digest}"), Some(name)),
        Route::Tags { name } => (format!("/v2/{name}/tags/list"), Some(name)),
    };
    let path = if path == "/v2" { "/v2/" } else { path };
    assert_eq!(spelled, path, "{route:?}");
    name.copied()
}

/// A manifest reference the route names comes back from the parsed reference unchanged.
fn manifest_reference_round_trips(named: &Reference, reference: &str) {
    let Ok(r) = paths::manifest_reference(named, reference) else {
        return;
    };
    assert_eq!(r.manifest_ref(), reference);
    let shown = r.to_string();
    assert_eq!(Reference::parse(&shown).as_ref(), Ok(&r), "{shown:?}");
}
