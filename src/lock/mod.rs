//! Locking files in place: where a Dockerfile or a YAML file names images, what each
//! reference becomes once pinned (`NAME:TAG@sha256:ROOT`), the new text, and its diff.
//!
//! Owns: finding the rewrite sites (`plan`), the locked spelling of one reference
//! (`locked_form`), splicing replacements into the text while keeping every other byte
//! (`apply`: comments, spacing, quoting, CRLF line endings), and the unified diff of a
//! change (`unified_diff`).
//! Pure: strings in, strings out.
//! Must not touch: files, the network or the store (the `lock` command reads and writes
//! files and pins each `Site::image` to its root digest), or the Dockerfile grammar
//! (`crate::dockerfile` owns it; this module reads its `ImageUse`s).
//!
//! Layout: `dockerfile` (sites from the parser's image uses), `yaml_lines` and
//! `yaml_value` (a line scanner for YAML, no YAML crate), `yaml` (sites in YAML), `form`
//! (the locked spelling), `edit` (`apply`), `diff` (unified diff).

mod diff;
mod dockerfile;
mod edit;
mod form;
mod yaml;
mod yaml_lines;
mod yaml_value;

#[cfg(test)]
mod golden;

use std::ops::Range;
use std::path::Path;

use crate::dockerfile::DockerfileError;
pub use crate::platform::Platform;
use crate::reference::{Digest, ReferenceError};

pub use diff::unified_diff;
pub use edit::apply;
pub use form::{locked_form, retagged, upstream_of};

/// How a file names its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A Dockerfile or Containerfile: `FROM`, `COPY --from`, `RUN --mount=from=`.
    Dockerfile,
    /// Compose, Kubernetes and other YAML: `image:` keys.
    Yaml,
}

/// `*.yml` and `*.yaml` (any case) are YAML; everything else is read as a Dockerfile.
pub fn kind_of(path: &Path) -> FileKind {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext.eq_ignore_ascii_case("yml") || ext.eq_ignore_ascii_case("yaml") {
        true => FileKind::Yaml,
        false => FileKind::Dockerfile,
    }
}

/// One place to rewrite: `text[span] == written`, and the build pulls `image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// 1-based line of `span`'s start.
    pub line: usize,
    /// The bytes to replace (never a quote, never a `\r`).
    pub span: Range<usize>,
    /// The text at `span`, exactly.
    pub written: String,
    /// The reference the build uses, variables expanded: what to pin. It equals `written`
    /// (sites whose text would not spell their image are skipped instead).
    pub image: String,
    pub what: SiteKind,
}

impl Site {
    /// The edit that locks this site to `root`: for `apply`.
    pub fn edit(
        &self,
        root: &Digest,
        mirror: Option<&str>,
    ) -> Result<(Range<usize>, String), LockError> {
        Ok((self.span.clone(), locked_form(&self.written, root, mirror)?))
    }
}

/// What kind of text a site is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteKind {
    /// The image of a `FROM`.
    From,
    /// The image of a `COPY --from=`.
    CopyFrom,
    /// The image of a `RUN --mount=...,from=`.
    MountFrom,
    /// The default of a global `ARG` that `FROM $NAME` (or `--from=$NAME`) uses; one site
    /// however many uses share it.
    ArgDefault { name: String },
    /// The value of a YAML `image:` key.
    YamlImage,
}

/// A reference left alone, and why (for a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line.
    pub line: usize,
    /// The text as written: the reference word (Dockerfile) or the trimmed line (YAML).
    pub raw: String,
    pub why: String,
}

/// What locking a file would rewrite and what it leaves alone, in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub sites: Vec<Site>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Not a Dockerfile; the message names the line.
    #[error("{0}")]
    Dockerfile(#[from] DockerfileError),
    #[error("{text:?} is not an image reference: {source}")]
    Reference {
        text: String,
        source: ReferenceError,
    },
    #[error("mirror {mirror:?}: {why}")]
    Mirror { mirror: String, why: String },
    #[error("{text:?} cannot be named through mirror {mirror}: {why}")]
    Unmirrorable {
        text: String,
        mirror: String,
        why: String,
    },
}

/// Where `text` names images: the sites to rewrite and the references left alone.
pub fn plan(text: &str, kind: FileKind, platform: &Platform) -> Result<Plan, LockError> {
    match kind {
        FileKind::Dockerfile => dockerfile::plan(text, platform),
        FileKind::Yaml => Ok(yaml::plan(text)),
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_by_extension_any_case_else_dockerfile() {
        let cases = [
            ("compose.yml", FileKind::Yaml),
            ("k8s/deploy.YAML", FileKind::Yaml),
            ("a.Yml", FileKind::Yaml),
            ("Dockerfile", FileKind::Dockerfile),
            ("Containerfile.dev", FileKind::Dockerfile),
            ("build.dockerfile", FileKind::Dockerfile),
            ("yaml", FileKind::Dockerfile),
        ];
        for (path, want) in cases {
            assert_eq!(kind_of(Path::new(path)), want, "{path}");
        }
    }

    #[test]
    fn lines_count_from_one() {
        let text = "a\nb\r\nc";
        assert_eq!(line_at(text, 0), 1);
        assert_eq!(line_at(text, 2), 2);
        assert_eq!(line_at(text, 5), 3);
    }
}
