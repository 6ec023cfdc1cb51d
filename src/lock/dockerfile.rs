//! Sites in a Dockerfile, from `crate::dockerfile`'s image uses: the reference as written,
//! or the default of the global ARG that `FROM $ARG` uses.
//!
//! A use is a site only when rewriting its text provably changes that image alone: the text
//! holds no variable, no quote or escape (it spells exactly the image the build uses), and
//! no line continuation splits it; an ARG default is a site only when every image use that
//! mentions the ARG is exactly `$ARG` taking that default and no `ARG`/`ENV` value is
//! derived from it. Everything else is `Skipped`. (A `RUN` or `LABEL` mentioning the ARG
//! does see the locked value: the same image, pinned.)

use std::ops::Range;

use crate::dockerfile::{self, ArgDefault, ImageUse, Target, UseKind};
use crate::reference::Reference;

use super::{LockError, Plan, Platform, Site, SiteKind, Skipped, line_at};

pub(super) fn plan(text: &str, platform: &Platform) -> Result<Plan, LockError> {
    let file = dockerfile::parse(text, platform)?;
    let mut plan = Plan::default();
    for u in &file.uses {
        match site(text, u, &file.uses) {
            Ok(site) if plan.sites.iter().any(|s| s.span == site.span) => {}
            Ok(site) => plan.sites.push(site),
            Err(why) => plan.skipped.push(Skipped {
                line: u.line,
                raw: u.raw.clone(),
                why,
            }),
        }
    }
    Ok(plan)
}

/// The site of one use, or why it has none.
fn site(text: &str, u: &ImageUse, uses: &[ImageUse]) -> Result<Site, String> {
    let image = match &u.target {
        Target::Image(image) => image,
        Target::Stage(name) => return Err(format!("the build stage {name}, not an image")),
        Target::Scratch => return Err("scratch, the empty image".to_owned()),
        Target::Unresolved(why) => return Err(why.clone()),
    };
    if let Err(e) = Reference::parse(image) {
        return Err(format!("not a valid image reference: {e}"));
    }
    let (span, what) = match &u.arg {
        Some(arg) => arg_span(text, arg, uses)?,
        None => (use_span(u)?, kind(u.kind)),
    };
    let span = trimmed(text, span);
    let written = text[span.clone()].to_owned();
    let image = image.trim();
    if written != image {
        return Err(format!(
            "written with quotes or escapes ({written}) that spell {image}; write it plainly"
        ));
    }
    let line = line_at(text, span.start);
    let image = image.to_owned();
    Ok(Site {
        line,
        span,
        written,
        image,
        what,
    })
}

fn kind(kind: UseKind) -> SiteKind {
    match kind {
        UseKind::From => SiteKind::From,
        UseKind::CopyFrom => SiteKind::CopyFrom,
        UseKind::MountFrom => SiteKind::MountFrom,
    }
}

/// The span of a reference written out: no variables, one piece, outer quotes excluded.
fn use_span(u: &ImageUse) -> Result<Range<usize>, String> {
    if u.raw.contains('$') {
        return Err(format!(
            "built from variables ({}); give it a global ARG default or write it out",
            u.raw
        ));
    }
    let Some(span) = u.span.clone() else {
        return Err("split by a line continuation; join it onto one line".to_owned());
    };
    Ok(unquoted(&u.raw, span))
}

/// `span` without the whitespace at either end of its text: words split at spaces and tabs
/// only, so a `\x0b`, `\x0c` or lone `\r` can cling to a reference, which
/// `Reference::parse` trims (as `str::trim` does) and the locked form must not keep inside.
fn trimmed(text: &str, span: Range<usize>) -> Range<usize> {
    let s = &text[span.clone()];
    let start = span.start + (s.len() - s.trim_start().len());
    let end = span.end - (s.len() - s.trim_end().len());
    start..end.max(start)
}

/// `span` without the quotes around all of `raw`, if it is quoted.
fn unquoted(raw: &str, span: Range<usize>) -> Range<usize> {
    let b = raw.as_bytes();
    let quoted = b.len() >= 2 && matches!(b[0], b'"' | b'\'') && b[b.len() - 1] == b[0];
    match quoted {
        true => span.start + 1..span.end - 1,
        false => span,
    }
}

/// The span of the global ARG default a `$NAME` use takes, if rewriting it is safe.
fn arg_span(
    text: &str,
    arg: &ArgDefault,
    uses: &[ImageUse],
) -> Result<(Range<usize>, SiteKind), String> {
    let name = &arg.name;
    let Some(span) = arg.value_span.clone() else {
        let why = format!("ARG {name}'s default is split by a line continuation; join it");
        return Err(why);
    };
    let default = &text[span.clone()];
    if default.contains('$') {
        return Err(format!(
            "ARG {name}'s default ({default}) is built from variables; write it out"
        ));
    }
    let takes_it = |u: &ImageUse| {
        matches!(u.target, Target::Image(_))
            && u.arg
                .as_ref()
                .is_some_and(|a| a.value_span == Some(span.clone()))
    };
    if let Some(other) = uses.iter().find(|u| mentions(&u.raw, name) && !takes_it(u)) {
        return Err(format!(
            "ARG {name} (line {}) is also used by {} on line {}, which pinning its \
             default would change; write the references out",
            arg.line, other.raw, other.line
        ));
    }
    if let Some(line) = derived(text, name) {
        return Err(format!(
            "ARG {name} (line {}) is used in the value on line {line}, which pinning its \
             default would change; write the references out",
            arg.line
        ));
    }
    let name = name.clone();
    Ok((span, SiteKind::ArgDefault { name }))
}

/// The first line where an `ARG` or `ENV` value mentions variable `name`: a value derived
/// from it (`ARG SLIM=${BASE}-slim`). A line scan: a continuation line is not seen.
fn derived(text: &str, name: &str) -> Option<usize> {
    text.lines().enumerate().find_map(|(i, line)| {
        let line = line.trim_start();
        let keyword = line.split_whitespace().next().unwrap_or("");
        let sets = keyword.eq_ignore_ascii_case("ARG") || keyword.eq_ignore_ascii_case("ENV");
        (sets && mentions(line, name)).then_some(i + 1)
    })
}

/// True when `raw` mentions variable `name` (`$name`, `${name}`, `${name:-…}`).
fn mentions(raw: &str, name: &str) -> bool {
    raw.match_indices('$').any(|(at, _)| {
        let rest = &raw[at + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end] == name
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Digest;

    fn amd64() -> Platform {
        Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
        }
    }

    fn planned(text: &str) -> Plan {
        plan(text, &amd64()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    /// The one skip of `text`; its why contains each of `words`.
    #[track_caller]
    fn skipped(text: &str, words: &[&str]) -> Skipped {
        let p = planned(text);
        assert!(p.sites.is_empty(), "{p:?}");
        let [s] = &p.skipped[..] else {
            panic!("expected one skip: {p:?}")
        };
        for w in words {
            assert!(s.why.contains(w), "{:?} should mention {w:?}", s.why);
        }
        s.clone()
    }

    #[test]
    fn references_written_out_are_sites_at_their_text() {
        let text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n\
                    FROM \"alpine:3.19\"\n\
                    COPY --from=nginx:1.25 /a /b\n\
                    RUN --mount=type=cache,from='busybox:1',target=/x true\n";
        let p = planned(text);
        let got: Vec<_> = p
            .sites
            .iter()
            .map(|s| (s.line, &text[s.span.clone()], &s.what))
            .collect();
        let want = [
            (1, "golang:1.22", &SiteKind::From),
            (2, "alpine:3.19", &SiteKind::From),
            (3, "nginx:1.25", &SiteKind::CopyFrom),
            (4, "busybox:1", &SiteKind::MountFrom),
        ];
        assert_eq!(got, want);
        assert!(p.sites.iter().all(|s| s.written == s.image));
        assert!(p.skipped.is_empty(), "{p:?}");
    }

    #[test]
    fn one_site_for_a_global_arg_default_however_many_uses() {
        let text = "ARG BASE=\"ubuntu:20.04\"\nFROM ${BASE}\nFROM $BASE AS two\nARG BASE\nCOPY --from=$BASE / /\n";
        let p = planned(text);
        assert!(p.skipped.is_empty(), "{p:?}");
        let [s] = &p.sites[..] else { panic!("{p:?}") };
        assert_eq!(
            (s.line, s.span.clone(), s.written.as_str()),
            (1, 10..22, "ubuntu:20.04")
        );
        assert_eq!(
            s.what,
            SiteKind::ArgDefault {
                name: "BASE".into()
            }
        );
    }

    #[test]
    fn stages_scratch_and_unresolved_uses_are_skipped() {
        let p = planned(
            "FROM a:1 AS build\nFROM scratch\nCOPY --from=build / /\nCOPY --from=0 / /\nFROM ${X}\n",
        );
        let whys: Vec<_> = p.skipped.iter().map(|s| (s.line, s.why.as_str())).collect();
        assert_eq!(whys[0], (2, "scratch, the empty image"));
        assert_eq!(whys[1], (3, "the build stage build, not an image"));
        assert_eq!(whys[2], (4, "the build stage 0, not an image"));
        assert_eq!(whys[3].0, 5);
        assert!(whys[3].1.contains('X'), "{whys:?}");
        assert_eq!(p.sites.len(), 1);
    }

    #[test]
    fn variables_continuations_and_escapes_are_skipped() {
        let s = skipped(
            "ARG VER=1\nFROM tiny:${VER}\n",
            &["built from variables (tiny:${VER})", "global ARG"],
        );
        assert_eq!((s.line, s.raw.as_str()), (2, "tiny:${VER}"));
        skipped("FROM ubu\\\nntu:1\n", &["line continuation"]);
        skipped(
            "ARG B=ubu\\\nntu:1\nFROM $B\n",
            &["ARG B's default", "line continuation"],
        );
        skipped(
            "ARG V=1\nARG B=x:$V\nFROM $B\n",
            &["ARG B's default (x:$V)", "variables"],
        );
        skipped("FROM ubu\"ntu\":1\n", &["quotes or escapes", "ubuntu:1"]);
        skipped("FROM Ubuntu:1\n", &["not a valid image reference"]);
    }

    #[test]
    fn an_arg_default_other_uses_depend_on_is_left_alone() {
        let text = "ARG B=debian:12\nFROM $B\nFROM ${B}-slim\n";
        let p = planned(text);
        assert!(p.sites.is_empty(), "{p:?}");
        assert!(
            p.skipped[0]
                .why
                .contains("also used by ${B}-slim on line 3"),
            "{p:?}"
        );
        assert!(p.skipped[1].why.contains("built from variables"), "{p:?}");
        // A stage named like the default: rewriting it would break the stage reference.
        let p = planned("ARG B=build\nFROM $B AS build\nFROM a:1\nCOPY --from=$B / /\n");
        assert_eq!(p.sites.len(), 1, "{p:?}");
        assert!(
            p.skipped[0].why.contains("also used by $B on line 4"),
            "{p:?}"
        );
        // A value derived from the ARG would change with it.
        let p = planned("ARG B=debian:12\nARG S=${B}-slim\nFROM $B\nFROM ${S}\n");
        assert!(p.sites.is_empty(), "{p:?}");
        assert!(
            p.skipped[0].why.contains("used in the value on line 2"),
            "{p:?}"
        );
        let p = planned("ARG B=debian:12\nFROM $B\nenv X=\"on $B\"\n");
        assert!(p.skipped[0].why.contains("line 3"), "{p:?}");
        // Another variable with a longer name is not a mention.
        assert_eq!(
            planned("ARG B=a:1\nARG BB=b:1\nFROM $B\nFROM ${BB}\n")
                .sites
                .len(),
            2
        );
    }

    #[test]
    fn whitespace_around_a_reference_is_kept_out_of_its_site() {
        // Lexer words split at spaces and tabs only, but Reference::parse trims all
        // whitespace: a \x0b, \x0c or lone \r after the image was once inside the span,
        // and locking wrote `a\x0b:latest@sha256:…`, which is no reference.
        let root = Digest::from_sha256([7; 32]);
        let cases = [
            (
                "FROM b:1\nCOPY --from=a\x0b /x /y\n",
                "COPY --from=a:latest@",
                "\x0b /x",
            ),
            (
                "FROM b:1\nCOPY --from=a\r /x /y\n",
                "COPY --from=a:latest@",
                "\r /x",
            ),
            (
                "FROM b:1\nCOPY --from=\x0ba /x /y\n",
                "--from=\x0ba:latest@",
                " /x",
            ),
            ("FROM a\x0c AS x\n", "FROM a:latest@", "\x0c AS x"),
            ("ARG B=a\x0b C=1\nFROM $B\n", "ARG B=a:latest@", "\x0b C=1"),
        ];
        for (text, before, after) in cases {
            let p = planned(text);
            assert!(p.skipped.is_empty(), "{text:?}: {p:?}");
            let edits: Vec<_> = p
                .sites
                .iter()
                .map(|s| s.edit(&root, None).unwrap())
                .collect();
            let locked = super::super::apply(text, &edits);
            assert!(
                locked.contains(&format!("{before}{root}{after}")),
                "{locked:?}"
            );
            for s in &planned(&locked).sites {
                let r = Reference::parse(&s.written).unwrap_or_else(|e| panic!("{locked:?}: {e}"));
                assert_eq!(r.digest(), Some(&root), "{locked:?}");
            }
        }
    }

    #[test]
    fn parse_errors_name_the_line() {
        let err = plan("FROM a:1\nFROM\n", &amd64()).unwrap_err();
        assert!(err.to_string().starts_with("line 2: "), "{err}");
    }

    #[test]
    fn mentions_reads_whole_names() {
        assert!(mentions("${B}", "B"));
        assert!(mentions("x:${B:-1}", "B"));
        assert!(mentions("$B-slim", "B"));
        assert!(!mentions("$BB", "B"));
        assert!(!mentions("B", "B"));
    }
}
