//! End-to-end tests of `parse` and `looks_like_dockerfile`.

use super::*;

fn amd64() -> Platform {
    Platform {
        os: "linux".into(),
        arch: "amd64".into(),
        variant: None,
    }
}

fn parsed(text: &str) -> Dockerfile {
    parse(text, &amd64()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn targets(text: &str) -> Vec<Target> {
    parsed(text).uses.into_iter().map(|u| u.target).collect()
}

fn image(s: &str) -> Target {
    Target::Image(s.into())
}

fn stage(s: &str) -> Target {
    Target::Stage(s.into())
}

/// Unresolved, and the reason contains every one of `words`.
#[track_caller]
fn assert_unresolved(target: &Target, words: &[&str]) {
    let Target::Unresolved(why) = target else {
        panic!("expected Unresolved, got {target:?}");
    };
    for word in words {
        assert!(why.contains(word), "{why:?} should mention {word:?}");
    }
}

/// Every use's span (when it has one) points at its raw word in `text`.
#[track_caller]
fn assert_spans(text: &str, file: &Dockerfile) {
    for u in &file.uses {
        let span = u.span.clone().unwrap_or_else(|| panic!("no span: {u:?}"));
        assert_eq!(&text[span], u.raw, "{u:?}");
    }
}

#[test]
fn from_images_table() {
    let cases: &[(&str, &[&str])] = &[
        // The old parser's prefix bug: $VER is never $V + "ER".
        ("ARG V=1\nARG VER=1.0\nFROM tiny:$VER\n", &["tiny:1.0"]),
        (
            "ARG V=1\nARG VER=1.0\nFROM tiny:${V}ER-$V\n",
            &["tiny:1ER-1"],
        ),
        // Defaults built from earlier ARGs, in later and in the same instructions.
        ("ARG A=1\nARG B=${A}.0\nFROM x:$B\n", &["x:1.0"]),
        ("ARG A=2 B=$A.1\nFROM x:$B\n", &["x:2.1"]),
        ("ARG A=1\nARG A=3\nFROM x:$A\n", &["x:3"]),
        ("ARG A=1\nARG A\nFROM x:$A\n", &["x:1"]),
        // Quotes in values and in FROM; escapes.
        ("ARG T=\"3.19\"\nFROM alpine:$T\n", &["alpine:3.19"]),
        ("ARG T='3.19'\nFROM alpine:$T\n", &["alpine:3.19"]),
        ("ARG V=1\nARG T='$V'\nFROM x:$T\n", &["x:$V"]),
        ("FROM \"alpine:3.19\"\n", &["alpine:3.19"]),
        ("ARG T=1\nFROM \"img:$T\"\n", &["img:1"]),
        ("ARG T=1\nFROM 'img:$T'\n", &["img:$T"]),
        ("ARG T=1\nFROM img:\\$T\n", &["img:$T"]),
        ("FROM a$-b\n", &["a$-b"]),
        // Keywords in any case, arguments keep theirs.
        ("ARG Tag=X\nfrom Img:$Tag\n", &["Img:X"]),
        // Leading whitespace and a BOM.
        ("\u{feff}  FROM\talpine\n", &["alpine"]),
    ];
    for (text, want) in cases {
        let want: Vec<Target> = want.iter().map(|s| image(s)).collect();
        assert_eq!(targets(text), want, "{text:?}");
    }
}

#[test]
fn modifiers_with_x_unset_empty_and_set() {
    let preludes = ["", "ARG X\n", "ARG X=\n", "ARG X=v\n"];
    // Each row: the word, then what it gives with each prelude (None: Unresolved).
    let rows: &[(&str, [Option<&str>; 4])] = &[
        ("i:${X}", [None, None, Some("i:"), Some("i:v")]),
        ("i:$X", [None, None, Some("i:"), Some("i:v")]),
        (
            "i:${X:-d}",
            [Some("i:d"), Some("i:d"), Some("i:d"), Some("i:v")],
        ),
        (
            "i:${X-d}",
            [Some("i:d"), Some("i:d"), Some("i:"), Some("i:v")],
        ),
        (
            "i:${X:+alt}",
            [Some("i:"), Some("i:"), Some("i:"), Some("i:alt")],
        ),
        (
            "i:${X+alt}",
            [Some("i:"), Some("i:"), Some("i:alt"), Some("i:alt")],
        ),
        ("i:${X:?msg}", [None, None, None, Some("i:v")]),
        ("i:${X?msg}", [None, None, Some("i:"), Some("i:v")]),
    ];
    for (word, wants) in rows {
        for (prelude, want) in preludes.iter().zip(wants) {
            let text = format!("{prelude}FROM {word}\n");
            let got = targets(&text).remove(0);
            match want {
                Some(want) => assert_eq!(got, image(want), "{text:?}"),
                None => assert_unresolved(&got, &["X"]),
            }
        }
    }
}

#[test]
fn unresolved_uses_name_the_variable_the_fix_and_the_line() {
    let text = "# syntax=docker/dockerfile:1\n\n# base\nFROM tiny:${VER}\n";
    let file = parsed(text);
    assert_eq!(file.uses[0].line, 4);
    assert_eq!(file.uses[0].raw, "tiny:${VER}");
    assert_unresolved(&file.uses[0].target, &["VER has no value", "ARG VER="]);

    let text = "FROM a\nFROM b:${X:?msg}\n";
    let target = &parsed(text).uses[1].target;
    assert_eq!(target, &Target::Unresolved("${X:?msg}: msg".into()));

    // A default that needs a variable without a value cannot be known either.
    let target = targets("ARG B=${A}-1\nFROM x:$B\n").remove(0);
    assert_unresolved(&target, &["B on line 1", "A has no value"]);
    // Pattern substitutions are valid BuildKit but not evaluated here.
    let target = targets("ARG V=1.2\nFROM x:${V%.*}\n").remove(0);
    assert_unresolved(&target, &["${V%.*}"]);
    // An empty result is not an image.
    let target = targets("ARG E=\nFROM $E\n").remove(0);
    assert_unresolved(&target, &["$E", "empty"]);
}

#[test]
fn global_args_reach_a_stage_only_when_redeclared() {
    let text = "ARG IMG=tools:1\n\
                FROM base\n\
                COPY --from=$IMG /a /b\n\
                ARG IMG\n\
                COPY --from=$IMG /a /b\n";
    let uses = parsed(text).uses;
    assert_eq!(uses[0].target, image("base"));
    assert_unresolved(&uses[1].target, &["IMG is a global ARG", "ARG IMG"]);
    assert_eq!(uses[2].target, image("tools:1"));
    assert_eq!(uses[2].line, 5);
    // FROM never sees stage ARGs, even of the stage before it.
    let text = "FROM base\nARG LOCAL=x\nFROM img:$LOCAL\n";
    assert_unresolved(&targets(text)[1], &["LOCAL"]);
}

#[test]
fn stage_args_in_copy_from_and_mount_from() {
    let text = "FROM base\n\
                ARG VER=2\n\
                COPY --chown=1:1 --from=tiny:$VER /a /b\n\
                RUN --network=none --mount=type=bind,from=tiny:${VER},target=/t \
                --mount=type=cache,target=/c --mount=type=bind,\"from=other:$VER\" \
                --mount=\"type=bind,FROM=q:$VER\" make\n";
    let file = parsed(text);
    let got: Vec<(UseKind, &str, &Target)> = file
        .uses
        .iter()
        .map(|u| (u.kind, u.raw.as_str(), &u.target))
        .collect();
    let want = [
        (UseKind::From, "base", &image("base")),
        (UseKind::CopyFrom, "tiny:$VER", &image("tiny:2")),
        (UseKind::MountFrom, "tiny:${VER}", &image("tiny:2")),
        (UseKind::MountFrom, "other:$VER", &image("other:2")),
        (UseKind::MountFrom, "q:$VER", &image("q:2")),
    ];
    assert_eq!(got, want);
    assert_eq!(file.uses[3].line, 4);
    assert_spans(text, &file);
}

#[test]
fn a_stage_from_a_stage_starts_with_its_args_and_env() {
    let text = "FROM base AS parent\n\
                ARG VER=3\n\
                ENV TOOL=tool\n\
                FROM parent AS child\n\
                COPY --from=$TOOL:$VER /a /b\n\
                FROM child\n\
                RUN --mount=from=$TOOL:$VER true\n\
                FROM base AS other\n\
                COPY --from=tiny:$VER /a /b\n";
    let got = targets(text);
    assert_eq!(got[1], stage("parent"));
    assert_eq!(got[2], image("tool:3"));
    assert_eq!(got[3], stage("child"));
    assert_eq!(got[4], image("tool:3"));
    assert_eq!(got[5], image("base"));
    assert_unresolved(&got[6], &["VER"]);
}

#[test]
fn automatic_platform_args() {
    let text = "FROM --platform=$BUILDPLATFORM img-$TARGETARCH:$TARGETOS\n\
                COPY --from=img-$TARGETARCH /a /b\n\
                ARG TARGETARCH\n\
                COPY --from=img-$TARGETARCH /a /b\n";
    let got = targets(text);
    assert_eq!(got[0], image("img-amd64:linux"));
    assert_unresolved(&got[1], &["TARGETARCH is automatic", "ARG TARGETARCH"]);
    assert_eq!(got[2], image("img-amd64"));

    // A user default overrides, and a stage redeclaring inherits the override.
    let text = "ARG TARGETARCH=riscv64\nFROM img-$TARGETARCH\nARG TARGETARCH\n\
                COPY --from=x-$TARGETARCH /a /b\n";
    assert_eq!(targets(text), [image("img-riscv64"), image("x-riscv64")]);

    let arm = Platform {
        os: "linux".into(),
        arch: "arm".into(),
        variant: Some("v7".into()),
    };
    let text = "FROM x:$TARGETPLATFORM-$BUILDVARIANT${TARGETVARIANT:+-}$TARGETVARIANT\n\
                FROM y${TARGETVARIANT:+-}$TARGETVARIANT\n";
    let file = parse(text, &arm).unwrap();
    assert_eq!(file.uses[0].target, image("x:linux/arm/v7-v7-v7"));
    assert_eq!(targets(text)[1], image("y"));
}

#[test]
fn stage_names_scratch_and_indices() {
    let text = "FROM golang:1.22 AS Build\n\
                FROM BUILD as test\n\
                COPY --from=build /a /b\n\
                COPY --from=0 /a /b\n\
                COPY --from=1 /a /b\n\
                COPY --from=scratch /a /b\n\
                FROM Scratch\n\
                FROM later\n\
                FROM alpine AS later\n\
                FROM later\n";
    let file = parsed(text);
    let got: Vec<Target> = file.uses.iter().map(|u| u.target.clone()).collect();
    let want = [
        image("golang:1.22"),
        stage("build"),
        stage("build"),
        stage("0"),
        image("1"), // the current stage is not an earlier one
        Target::Scratch,
        Target::Scratch,
        image("later"), // a stage defined after this FROM
        image("alpine"),
        stage("later"),
    ];
    assert_eq!(got, want);
    let names: Vec<Option<&str>> = file.stages.iter().map(|s| s.name.as_deref()).collect();
    let want = [Some("build"), Some("test"), None, None, Some("later"), None];
    assert_eq!(names, want);
    let lines: Vec<usize> = file.stages.iter().map(|s| s.line).collect();
    assert_eq!(lines, [1, 2, 7, 8, 9, 10]);
    // A stage name reached through a variable is still a stage.
    let text = "ARG B=build\nFROM a AS build\nFROM $B\n";
    assert_eq!(targets(text)[1], stage("build"));
}

#[test]
fn env_instructions() {
    let cases: &[(&str, &str)] = &[
        ("FROM b\nENV V=1\nCOPY --from=x:$V . .\n", "x:1"),
        ("FROM b\nENV V 1 2\nCOPY --from=\"x:$V\" . .\n", "x:1 2"),
        ("FROM b\nENV A=1 B=\"2\"\nCOPY --from=x:$A$B . .\n", "x:12"),
        // Docker's documented rule: values see the scope from before the instruction.
        (
            "FROM b\nENV abc=hello\nENV abc=bye def=$abc\nCOPY --from=x:$def . .\n",
            "x:hello",
        ),
        // ENV wins over an ARG of the same name, whatever the order.
        (
            "FROM b\nENV V=env\nARG V=arg\nCOPY --from=x:$V . .\n",
            "x:env",
        ),
        (
            "FROM b\nARG V=arg\nENV V=env\nCOPY --from=x:$V . .\n",
            "x:env",
        ),
        (
            "FROM b\nARG V=1\nENV W=${V}0\nCOPY --from=x:$W . .\n",
            "x:10",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(targets(text)[1], image(want), "{text:?}");
    }
}

#[test]
fn escape_directive_backtick() {
    let text = "# escape=`\n\
                ARG TAG=ltsc2022\n\
                FROM mcr.microsoft.com/windows/servercore:$TAG `\n\
                \x20 AS base\n\
                RUN dir c:\\\n\
                FROM other:`$TAG\n";
    let file = parsed(text);
    let got: Vec<(usize, &Target)> = file.uses.iter().map(|u| (u.line, &u.target)).collect();
    let want = [
        (3, &image("mcr.microsoft.com/windows/servercore:ltsc2022")),
        (6, &image("other:$TAG")),
    ];
    assert_eq!(got, want);
    assert_eq!(file.stages[0].name.as_deref(), Some("base"));
    assert_eq!(file.uses[1].raw, "other:`$TAG");
    assert_spans(text, &file);
}

#[test]
fn directives_only_at_the_very_top() {
    let cases: &[(&str, &[&str])] = &[
        // Applied: the backtick continues the line, the backslash is literal.
        ("# escape=`\nFROM a:`\n1\n", &["a:1"]),
        ("#ESCAPE = ` \nFROM a:`\n1\n", &["a:1"]),
        // After a blank line, a plain comment, an unknown directive or an instruction: a
        // comment.
        ("\n# escape=`\nFROM a:`\nFROM b\n", &["a:`", "b"]),
        ("# hi\n# escape=`\nFROM a:`\nFROM b\n", &["a:`", "b"]),
        ("# foo=bar\n# escape=`\nFROM a:`\nFROM b\n", &["a:`", "b"]),
        ("FROM a:`\n# escape=`\nFROM b\n", &["a:`", "b"]),
        // Known directives that change nothing here.
        (
            "# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a:\\\n1\n",
            &["a:1"],
        ),
    ];
    for (text, want) in cases {
        let want: Vec<Target> = want.iter().map(|s| image(s)).collect();
        assert_eq!(targets(text), want, "{text:?}");
    }
}

#[test]
fn continuations_skip_comment_and_blank_lines() {
    let text = "FROM \\\n# a comment\n\n   \n  alpine:3 \\\n  # another\n  AS base\nFROM base\n";
    let file = parsed(text);
    assert_eq!(file.uses[0].target, image("alpine:3"));
    assert_eq!(file.uses[0].line, 1);
    assert_eq!(file.stages[0].name.as_deref(), Some("base"));
    assert_eq!(file.uses[1].target, stage("base"));
    assert_eq!(file.uses[1].line, 8);
    assert_spans(text, &file);

    // A word split by a continuation has no span, but is still joined.
    let text = "ARG V=1\nFROM alp\\\nine:$V\n";
    let u = &parsed(text).uses[0];
    assert_eq!(
        (u.raw.as_str(), &u.target, &u.span),
        ("alpine:$V", &image("alpine:1"), &None)
    );
}

#[test]
fn heredoc_bodies_are_not_instructions() {
    let text = "FROM a\n\
                RUN <<EOF\n\
                FROM evil\n\
                EOF\n\
                RUN <<-EOT cat - <<\"EOF2\" && <<'EOF3' sh\n\
                \tFROM evil2\n\
                \tEOT\n\
                FROM evil3\n\
                EOF2\n\
                FROM evil4\n\
                EOF3\n\
                COPY --chmod=644 <<EOF /x\n\
                FROM evil5\n\
                EOF\n\
                ONBUILD RUN <<EOF\n\
                FROM evil6\n\
                EOF\n\
                RUN echo \"<<EOF\" '<<EOT'\n\
                RUN [\"sh\", \"-c\", \"<<EOF\"]\n\
                FROM b\n";
    let file = parsed(text);
    let got: Vec<(usize, &Target)> = file.uses.iter().map(|u| (u.line, &u.target)).collect();
    assert_eq!(got, [(1, &image("a")), (20, &image("b"))]);
    assert!(looks_like_dockerfile(text));
    assert!(!looks_like_dockerfile("RUN <<EOF\nFROM evil\nEOF\n"));
}

#[test]
fn unterminated_heredoc_is_an_error_at_its_line() {
    let cases = [
        ("FROM a\nRUN <<EOF\nFROM b\n", 2, "EOF"),
        ("FROM a\n\nCOPY <<A <<B /x\nA\nb\n", 3, "B"),
        // <<EOF (no dash) does not strip tabs from the terminator line.
        ("FROM a\nRUN <<EOF\n\tEOF\n", 2, "EOF"),
    ];
    for (text, line, terminator) in cases {
        let want = DockerfileError::UnterminatedHeredoc {
            line,
            terminator: terminator.into(),
        };
        assert_eq!(parse(text, &amd64()), Err(want), "{text:?}");
    }
}

#[test]
fn crlf_input_keeps_spans_on_the_raw_words() {
    let text = "ARG BASE=\"debian:12\"\r\nARG VER=1.0\r\n\r\nFROM ${BASE} AS b\r\n\
                FROM tiny:$VER\r\nCOPY --from=b \\\r\n  /a /b\r\nRUN <<EOF\r\nFROM evil\r\nEOF\r\n\
                FROM \"$BASE\"\r\n";
    let file = parsed(text);
    let got: Vec<(usize, &Target)> = file.uses.iter().map(|u| (u.line, &u.target)).collect();
    let want = [
        (4, &image("debian:12")),
        (5, &image("tiny:1.0")),
        (6, &stage("b")),
        (11, &image("debian:12")),
    ];
    assert_eq!(got, want);
    assert_spans(text, &file);
    let arg = file.uses[0]
        .arg
        .clone()
        .expect("FROM ${BASE} names its ARG");
    assert_eq!(&text[arg.value_span.unwrap()], "debian:12");
}

#[test]
fn single_variable_uses_name_their_global_arg() {
    let text = "ARG BASE=\"debian:12\"\n\
                ARG V='1'\n\
                ARG PLAIN=alpine:3 OTHER\n\
                FROM $BASE\n\
                FROM ${BASE}\n\
                FROM \"${PLAIN}\"\n\
                FROM x:$V\n\
                FROM ${BASE:-x}\n\
                FROM $TARGETARCH\n\
                ARG PLAIN\n\
                ARG LOCAL=y\n\
                COPY --from=$PLAIN /a /b\n\
                COPY --from=$LOCAL /a /b\n\
                FROM $OTHER\n";
    let file = parsed(text);
    let decl = |name: &str, line, value: &str| {
        let start = text.find(value).unwrap();
        Some(ArgDefault {
            name: name.into(),
            line,
            value_span: Some(start..start + value.len()),
        })
    };
    let base = decl("BASE", 1, "debian:12");
    let plain = decl("PLAIN", 3, "alpine:3");
    let got: Vec<Option<ArgDefault>> = file.uses.iter().map(|u| u.arg.clone()).collect();
    let want = [
        base.clone(),
        base,
        plain.clone(),
        None, // x:$V is more than the variable
        None, // a default, not one variable
        None, // automatic, not an ARG default
        plain,
        None, // a stage-local ARG
        None, // declared without a default
    ];
    assert_eq!(got, want);
    assert_eq!(
        &text[file.uses[2].arg.clone().unwrap().value_span.unwrap()],
        "alpine:3"
    );
}

#[test]
fn onbuild_and_other_instructions_name_no_images() {
    let text = "FROM a\n\
                ONBUILD COPY --from=evil /a /b\n\
                ADD --chown=1 https://example.com/x /x\n\
                WORKDIR /x\n\
                FUTURE --from=evil\n";
    assert_eq!(targets(text), [image("a")]);
}

#[test]
fn looks_like_dockerfile_table() {
    let cases = [
        ("ubuntu:20.04\nalpine:3.19\n", false),
        ("# images\nghcr.io/x/y@sha256:abc\n\n", false),
        ("", false),
        ("# FROM alpine\nalpine\n", false),
        ("RUN echo \\\nFROM x\n", false),
        ("ARG V=1\nFROM alpine:$V\n", true),
        ("  from alpine\n", true),
        ("# escape=`\nRUN a `\nb\nFrom x\n", true),
        ("FROM a\nRUN <<EOF\n", true),
    ];
    for (text, want) in cases {
        assert_eq!(looks_like_dockerfile(text), want, "{text:?}");
    }
}

#[test]
fn malformed_dockerfiles_are_errors_naming_the_line() {
    type Is = fn(&DockerfileError) -> bool;
    let cases: &[(&str, usize, Is)] = &[
        ("FROM a\n\nFROM\n", 3, |e| {
            matches!(e, DockerfileError::MissingImage { .. })
        }),
        ("FROM --platform=linux/amd64\n", 1, |e| {
            matches!(e, DockerfileError::MissingImage { .. })
        }),
        ("FROM a b\n", 1, |e| {
            matches!(e, DockerfileError::FromSyntax { .. })
        }),
        ("FROM a AS\n", 1, |e| {
            matches!(e, DockerfileError::FromSyntax { .. })
        }),
        (
            "ARG V=1\nFROM x:${V\n",
            2,
            |e| matches!(e, DockerfileError::UnterminatedBrace { word, .. } if word == "x:${V"),
        ),
        ("FROM a\nCOPY --from=\"x /a /b\n", 2, |e| {
            matches!(e, DockerfileError::UnterminatedQuote { quote: '"', .. })
        }),
        ("ARG X='a\nFROM a\n", 1, |e| {
            matches!(e, DockerfileError::UnterminatedQuote { quote: '\'', .. })
        }),
        (
            "FROM x:${1}\n",
            1,
            |e| matches!(e, DockerfileError::BadSubstitution { text, .. } if text == "${1}"),
        ),
        ("# escape=x\nFROM a\n", 1, |e| {
            matches!(e, DockerfileError::BadEscape { .. })
        }),
        (
            "# escape=`\n# Escape=\\\nFROM a\n",
            2,
            |e| matches!(e, DockerfileError::RepeatedDirective { name, .. } if name == "escape"),
        ),
        (
            "FROM a AS x\nFROM b AS X\n",
            2,
            |e| matches!(e, DockerfileError::DuplicateStage { name, .. } if name == "x"),
        ),
        ("ARG A=1\nRUN true\nFROM a\n", 2, |e| {
            matches!(e, DockerfileError::BeforeFrom { .. })
        }),
        ("ubuntu:20.04\n", 1, |e| {
            matches!(e, DockerfileError::BeforeFrom { .. })
        }),
        ("ARG\nFROM a\n", 1, |e| {
            matches!(e, DockerfileError::MissingArguments { .. })
        }),
        ("ARG =1\nFROM a\n", 1, |e| {
            matches!(e, DockerfileError::NameValue { .. })
        }),
        ("FROM a\nENV K\n", 2, |e| {
            matches!(e, DockerfileError::NameValue { .. })
        }),
        (
            "FROM a\nENV A=1 B\n",
            2,
            |e| matches!(e, DockerfileError::NameValue { word, .. } if word == "B"),
        ),
    ];
    for (text, line, is) in cases {
        let error = parse(text, &amd64()).expect_err(text);
        assert!(is(&error), "{text:?}: {error:?}");
        assert_eq!(error.line(), *line, "{text:?}: {error}");
        assert!(error.to_string().starts_with(&format!("line {line}: ")));
    }
}

#[test]
fn platform_display_and_host() {
    let arm = Platform {
        os: "linux".into(),
        arch: "arm".into(),
        variant: Some("v7".into()),
    };
    assert_eq!(arm.to_string(), "linux/arm/v7");
    assert_eq!(amd64().to_string(), "linux/amd64");
    let host = Platform::host();
    assert_eq!(host.os, "linux");
    assert!(
        !["x86_64", "aarch64"].contains(&host.arch.as_str()),
        "{host:?}"
    );
}
