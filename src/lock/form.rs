//! The locked spelling of a reference: `NAME:TAG@sha256:ROOT`, the name as the user wrote
//! it, or the path a stablebuild mirror serves it under.
//!
//! Decisions: a reference without tag or digest (`ubuntu`) is locked as `ubuntu:latest@…`,
//! the tag Docker would pull, made explicit. A digest-only reference (`ubuntu@sha256:X`)
//! stays tagless: `ubuntu@sha256:ROOT`. An existing digest is replaced by the root.
//!
//! Through a mirror (`mirror:5000`), names follow `crate::registry::paths::resolve`:
//! Docker Hub images as `mirror:5000/library/ubuntu` (`mirror:5000/org/app` for others),
//! other registries as `mirror:5000/ghcr.io/org/app`. A reference already under the mirror
//! keeps its name.

use crate::reference::{Digest, Reference};

use super::LockError;

const DOCKER_HUB: &str = "docker.io";

/// `written` pinned to `root`, optionally renamed to the mirror's path for it.
pub fn locked_form(
    written: &str,
    root: &Digest,
    mirror: Option<&str>,
) -> Result<String, LockError> {
    let reference = parse(written)?;
    let pin = match reference.tag() {
        Some(tag) => format!(":{tag}@{root}"),
        None => format!("@{root}"),
    };
    let mirror = mirror.map(host).transpose()?;
    match mirror {
        Some(m) if reference.registry() != m => {
            let out = format!("{m}/{}{pin}", mirror_path(&reference));
            check_mirrored(written, &m, &out)?;
            Ok(out)
        }
        _ => Ok(format!("{}{pin}", written_name(written))),
    }
}

/// The upstream reference a reference under `mirror` stands for (`mirror:5000/library/x:1`
/// → `docker.io/library/x:1`), the inverse of the mirror form; `None` when `image` is not
/// under the mirror.
pub fn upstream_of(image: &str, mirror: &str) -> Result<Option<String>, LockError> {
    let m = host(mirror)?;
    let reference = parse(image)?;
    if reference.registry() != m {
        return Ok(None);
    }
    let path = reference.repository();
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    let upstream = match looks_like_host(first) && !rest.is_empty() {
        true => format!("{first}/{rest}"),
        false => format!("{DOCKER_HUB}/{path}"),
    };
    let pin = image.strip_prefix(written_name(image)).unwrap_or("");
    Ok(Some(format!("{upstream}{pin}")))
}

fn parse(text: &str) -> Result<Reference, LockError> {
    Reference::parse(text).map_err(|source| LockError::Reference {
        text: text.to_owned(),
        source,
    })
}

/// The name part of a reference as written: without `@digest` and without `:tag` (a `:`
/// after the last `/`).
/// `written` with its tag (and any digest) replaced by `tag`, the name as written:
/// `ubuntu:20.04` → `ubuntu:focal-20230801` (for `lock --dated`).
pub fn retagged(written: &str, tag: &str) -> String {
    format!("{}:{tag}", written_name(written))
}

fn written_name(written: &str) -> &str {
    let name = written.split_once('@').map_or(written, |(n, _)| n);
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].find(':') {
        Some(i) => &name[..last + i],
        None => name,
    }
}

/// The repository path under the mirror that means `r`'s registry and repository.
fn mirror_path(r: &Reference) -> String {
    let repo = r.repository();
    let first = repo.split('/').next().unwrap_or(repo);
    match r.registry() {
        // A Docker Hub path whose first component looks like a host would be read as one.
        DOCKER_HUB if !looks_like_host(first) => repo.to_owned(),
        registry => format!("{registry}/{repo}"),
    }
}

/// The mirror's `host[:port]`, lowercased; it must read as a registry host in a reference.
fn host(mirror: &str) -> Result<String, LockError> {
    let err = |why: &str| LockError::Mirror {
        mirror: mirror.to_owned(),
        why: why.to_owned(),
    };
    if mirror.contains(['/', '@']) || !looks_like_host(mirror) {
        return Err(err(
            "expected a registry host: with a dot or a port, or localhost (e.g. mirror:5000)",
        ));
    }
    let lower = mirror.to_ascii_lowercase();
    match Reference::parse(&format!("{lower}/x")) {
        Ok(r) if r.registry() == DOCKER_HUB => Err(err("it is Docker Hub, not a mirror")),
        Ok(_) => Ok(lower),
        Err(e) => Err(err(&e.to_string())),
    }
}

/// The mirrored spelling must itself be a reference to the mirror.
fn check_mirrored(written: &str, mirror: &str, out: &str) -> Result<(), LockError> {
    match Reference::parse(out) {
        Ok(r) if r.registry() == mirror => Ok(()),
        Ok(_) => unreachable!("{out} starts with the mirror host {mirror}"),
        Err(e) => Err(LockError::Unmirrorable {
            text: written.to_owned(),
            mirror: mirror.to_owned(),
            why: e.to_string(),
        }),
    }
}

fn looks_like_host(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::paths::{DEFAULT_ALLOWED, resolve};

    fn root() -> Digest {
        Digest::from_sha256([0xab; 32])
    }

    fn locked(written: &str, mirror: Option<&str>) -> String {
        locked_form(written, &root(), mirror).unwrap_or_else(|e| panic!("{written}: {e}"))
    }

    const R: &str = "sha256:abababababababababababababababababababababababababababababababab";

    #[test]
    fn the_name_stays_as_written_and_the_root_is_pinned() {
        let cases = [
            ("ubuntu:20.04", format!("ubuntu:20.04@{R}")),
            ("ubuntu", format!("ubuntu:latest@{R}")),
            (
                "docker.io/library/ubuntu",
                format!("docker.io/library/ubuntu:latest@{R}"),
            ),
            ("Index.Docker.IO/x:1", format!("Index.Docker.IO/x:1@{R}")),
            (
                "localhost:5000/a/b",
                format!("localhost:5000/a/b:latest@{R}"),
            ),
            ("ghcr.io/o/app:1.2", format!("ghcr.io/o/app:1.2@{R}")),
            (
                &format!("ubuntu@sha256:{}", "1".repeat(64)),
                format!("ubuntu@{R}"),
            ),
            (
                &format!("ubuntu:22.04@sha256:{}", "2".repeat(64)),
                format!("ubuntu:22.04@{R}"),
            ),
            (&format!("ubuntu:22.04@{R}"), format!("ubuntu:22.04@{R}")),
        ];
        for (written, want) in cases {
            assert_eq!(locked(written, None), want, "{written}");
        }
    }

    #[test]
    fn invalid_references_are_errors_naming_the_text() {
        for bad in ["Ubuntu:1", "a:b:c", "x@sha256:12", ""] {
            let err = locked_form(bad, &root(), None).unwrap_err();
            assert!(matches!(err, LockError::Reference { .. }), "{bad}: {err:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn through_a_mirror_names_take_the_path_the_mirror_serves() {
        let m = Some("mirror:5000");
        let cases = [
            (
                "ubuntu:20.04",
                format!("mirror:5000/library/ubuntu:20.04@{R}"),
            ),
            ("ubuntu", format!("mirror:5000/library/ubuntu:latest@{R}")),
            ("org/app:1", format!("mirror:5000/org/app:1@{R}")),
            (
                "docker.io/library/x:1",
                format!("mirror:5000/library/x:1@{R}"),
            ),
            (
                "ghcr.io/o/app:1.2",
                format!("mirror:5000/ghcr.io/o/app:1.2@{R}"),
            ),
            (
                "registry.k8s.io/pause:3.9",
                format!("mirror:5000/registry.k8s.io/pause:3.9@{R}"),
            ),
            (
                "docker.io/my.org/app:1",
                format!("mirror:5000/docker.io/my.org/app:1@{R}"),
            ),
            (
                &format!("x@sha256:{}", "1".repeat(64)),
                format!("mirror:5000/library/x@{R}"),
            ),
            // Already under the mirror: kept as written.
            (
                "mirror:5000/library/ubuntu:20.04",
                format!("mirror:5000/library/ubuntu:20.04@{R}"),
            ),
            (
                "MIRROR:5000/ubuntu:20.04",
                format!("MIRROR:5000/ubuntu:20.04@{R}"),
            ),
        ];
        for (written, want) in cases {
            assert_eq!(locked(written, m), want, "{written}");
        }
    }

    #[test]
    fn the_server_resolves_each_mirror_path_back_to_the_image() {
        let allowed: Vec<String> = DEFAULT_ALLOWED.iter().map(|s| s.to_string()).collect();
        for written in [
            "ubuntu:1",
            "org/app:1",
            "ghcr.io/o/a:1",
            "docker.io/my.org/app:1",
        ] {
            let out = locked(written, Some("mirror:5000"));
            let want = Reference::parse(written).unwrap();
            let got = Reference::parse(&out).unwrap();
            let named = resolve(got.repository(), None, &allowed).unwrap();
            assert_eq!(
                (named.registry(), named.repository()),
                (want.registry(), want.repository())
            );
            let up = upstream_of(&out, "mirror:5000").unwrap().unwrap();
            assert_eq!(up, format!("{}:1@{R}", want.name()), "{written}");
        }
        assert_eq!(upstream_of("ubuntu:1", "mirror:5000").unwrap(), None);
    }

    #[test]
    fn bad_mirrors_and_unmirrorable_names_are_errors() {
        for bad in [
            "mirror",
            "http://mirror:5000",
            "mirror:5000/x",
            "docker.io",
            "m:99999",
        ] {
            let err = locked_form("ubuntu", &root(), Some(bad)).unwrap_err();
            assert!(matches!(err, LockError::Mirror { .. }), "{bad}: {err:?}");
        }
        let err = locked_form("localhost:5000/a:1", &root(), Some("mirror:5000")).unwrap_err();
        assert!(matches!(err, LockError::Unmirrorable { .. }), "{err:?}");
    }
}
