//! Reference lists for `pin -f`: a plain list (one reference per line, `#` comments) or a
//! Dockerfile/Containerfile (the images its `FROM`, `COPY --from` and `RUN --mount=from=`
//! name, resolved by `crate::dockerfile` as BuildKit resolves them for a default build on
//! this machine; build stages and `scratch` are not images).
//! Must not touch: files (the caller reads them) or the network.

use crate::dockerfile::{self, DockerfileError, Platform, Target, UseKind};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReflistError {
    #[error("{0}")]
    Dockerfile(#[from] DockerfileError),
    #[error("line {line}: {instruction} {raw}: {why}")]
    Unresolved {
        line: usize,
        instruction: &'static str,
        raw: String,
        why: String,
    },
    #[error("it names no image: it is empty or holds only comments")]
    Empty,
    #[error("it names no image to pin: its stages start only from scratch or from each other")]
    NoImage,
}

/// The image references a file's text names, in order, each once.
pub fn parse(text: &str, platform: &Platform) -> Result<Vec<String>, ReflistError> {
    let mut out = match dockerfile::looks_like_dockerfile(text) {
        true => images(text, platform)?,
        false => plain(text),
    };
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.clone()));
    if out.is_empty() {
        return Err(match dockerfile::looks_like_dockerfile(text) {
            true => ReflistError::NoImage,
            false => ReflistError::Empty,
        });
    }
    Ok(out)
}

fn plain(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Every image a Dockerfile's build pulls; a use that cannot be resolved without build
/// arguments is an error naming its line.
fn images(text: &str, platform: &Platform) -> Result<Vec<String>, ReflistError> {
    let file = dockerfile::parse(text, platform)?;
    let mut out = Vec::new();
    for u in file.uses {
        match u.target {
            Target::Image(image) => out.push(image),
            Target::Stage(_) | Target::Scratch => {}
            Target::Unresolved(why) => {
                return Err(ReflistError::Unresolved {
                    line: u.line,
                    instruction: match u.kind {
                        UseKind::From => "FROM",
                        UseKind::CopyFrom => "COPY --from",
                        UseKind::MountFrom => "RUN --mount from",
                    },
                    raw: u.raw,
                    why,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Result<Vec<String>, ReflistError> {
        let amd64 = Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
        };
        parse(text, &amd64)
    }

    #[test]
    fn plain_lists_skip_comments_and_duplicates() {
        let text = "# base images\nubuntu:20.04\n\n  alpine:3.19  \nubuntu:20.04\n";
        assert_eq!(refs(text).unwrap(), vec!["ubuntu:20.04", "alpine:3.19"]);
    }

    #[test]
    fn dockerfiles_give_every_image_their_build_pulls() {
        let text = "ARG BASE=debian:12\n\
            ARG V=1\n\
            ARG VER=1.0\n\
            FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n\
            RUN make\n\
            FROM build AS test\n\
            FROM scratch\n\
            from ${BASE}\n\
            ARG VER\n\
            ARG V=2\n\
            COPY --from=build /x /x\n\
            COPY --from=tiny:$VER /y /y\n\
            RUN --mount=type=bind,from=busybox:${V},target=/b true\n\
            FROM tiny-$TARGETARCH:1\n";
        assert_eq!(
            refs(text).unwrap(),
            vec![
                "golang:1.22",
                "debian:12",
                "tiny:1.0",
                "busybox:2",
                "tiny-amd64:1"
            ]
        );
    }

    #[test]
    fn an_unresolvable_image_is_an_error_naming_its_line() {
        let text = "FROM a:1\nRUN true\nFROM tiny:$VER\n";
        let err = refs(text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("line 3: FROM tiny:$VER: "), "{shown}");
        assert!(shown.contains("VER has no value"), "{shown}");
        let err = refs("FROM a:1\nARG X\nCOPY --from=$X / /\n").unwrap_err();
        assert!(
            err.to_string().starts_with("line 3: COPY --from $X: "),
            "{err}"
        );
    }

    #[test]
    fn files_without_images_say_so() {
        assert_eq!(refs(""), Err(ReflistError::Empty));
        assert_eq!(refs("# nothing yet\n\n"), Err(ReflistError::Empty));
        assert_eq!(refs("FROM scratch\nCOPY x /\n"), Err(ReflistError::NoImage));
        let err = refs("FROM\n").unwrap_err();
        assert!(err.to_string().starts_with("line 1: "), "{err}");
    }

    #[test]
    fn continuation_lines_are_joined() {
        let text = "FROM \\\n  ubuntu:22.04\nRUN echo\n";
        assert_eq!(refs(text).unwrap(), vec!["ubuntu:22.04"]);
    }
}
