//! `lock::plan` and `lock::apply` on every input, read both as a Dockerfile and as YAML:
//! each site is the reference it says, on character boundaries; every reference the lock
//! writes parses, pinned to its root; and locking the locked text changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stablebuild::lock::{self, FileKind, Plan};
use stablebuild::manifest;
use stablebuild::reference::{Digest, Reference};
use stablebuild_fuzz::{line_of, platform, spanned, text};

/// The mirror the mirrored lock names.
const MIRROR: &str = "mirror.example:5000";

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    for kind in [FileKind::Dockerfile, FileKind::Yaml] {
        let Ok(plan) = lock::plan(text, kind, &platform()) else {
            continue;
        };
        sites_are_their_text(text, &plan);
        let locked = lock_all(text, &plan, None).expect("locking without a mirror cannot fail");
        let again = lock::plan(&locked, kind, &platform())
            .unwrap_or_else(|e| panic!("the locked text {locked:?} no longer parses: {e}"));
        assert_eq!(again.sites.len(), plan.sites.len(), "{locked:?}");
        // Each site now names its root, which `root` takes: the same edits again.
        let relocked = lock_all(&locked, &again, None).expect("relocking cannot fail");
        assert_eq!(relocked, locked, "locking the locked text changed it");
        if let Some(mirrored) = lock_all(text, &plan, Some(MIRROR)) {
            lock::plan(&mirrored, kind, &platform()).expect("the mirrored text parses");
        }
    }
});

fn sites_are_their_text(text: &str, plan: &Plan) {
    for s in &plan.sites {
        assert_eq!(spanned(text, &s.span), s.written, "{s:?}");
        assert_eq!(s.written, s.image, "{s:?}");
        assert_eq!(line_of(text, s.span.start), s.line, "{s:?}");
        assert!(!s.written.contains(['"', '\'', '\r']), "{s:?}");
        Reference::parse(&s.written).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    }
}

/// The fake root of an image: its digest, or sha256 of its name and tag.
fn root(image: &str) -> Digest {
    let r = Reference::parse(image).unwrap_or_else(|e| panic!("{image:?}: {e}"));
    match r.digest() {
        Some(d) => d.clone(),
        None => manifest::sha256(r.key().as_bytes()),
    }
}

/// `text` with every site locked to its fake root (through `mirror`), each reference
/// written checked; `None` when a site cannot be named through the mirror.
fn lock_all(text: &str, plan: &Plan, mirror: Option<&str>) -> Option<String> {
    let mut edits = Vec::new();
    for s in &plan.sites {
        let root = root(&s.image);
        let (span, new) = s.edit(&root, mirror).ok()?;
        let r = Reference::parse(&new).unwrap_or_else(|e| panic!("{s:?} locked as {new:?}: {e}"));
        assert_eq!(r.digest(), Some(&root), "{new:?}");
        if let Some(m) = mirror {
            assert_eq!(r.registry(), m, "{new:?}");
            let upstream = lock::upstream_of(&new, m).expect("a mirrored form names the mirror");
            let upstream = Reference::parse(&upstream.expect("under the mirror")).unwrap();
            let written = Reference::parse(&s.written).unwrap();
            if written.registry() != m {
                assert_eq!(
                    upstream.name(),
                    written.name(),
                    "{new:?} stands for {written}"
                );
            }
        }
        edits.push((span, new));
    }
    Some(lock::apply(text, &edits))
}
