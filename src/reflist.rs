//! Reference lists for `pin -f`: a plain list (one reference per line, `#` comments) or a
//! Dockerfile (the images its `FROM` lines start from, skipping `scratch` and build stages,
//! with global `ARG` defaults substituted).
//! Must not touch: files (the caller reads them) or the network.

/// The image references named by a file's text, in order, each once.
pub fn parse(text: &str) -> Vec<String> {
    let lines = logical_lines(text);
    let is_dockerfile = lines.iter().any(|l| keyword(l).as_deref() == Some("FROM"));
    let mut out = if is_dockerfile {
        from_images(&lines)
    } else {
        lines.into_iter().map(|l| l.trim().to_string()).collect()
    };
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| !r.is_empty() && seen.insert(r.clone()));
    out
}

/// Lines without comments and blank lines, with Dockerfile `\` continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.retain(|l| !l.trim().is_empty());
    out
}

fn keyword(line: &str) -> Option<String> {
    line.split_whitespace()
        .next()
        .map(|w| w.to_ascii_uppercase())
}

fn from_images(lines: &[String]) -> Vec<String> {
    let mut args: Vec<(String, String)> = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let mut seen_from = false;
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        match keyword(line).as_deref() {
            Some("ARG") if !seen_from => {
                if let Some((k, v)) = words.get(1).and_then(|a| a.split_once('=')) {
                    args.push((k.to_string(), v.trim_matches('"').to_string()));
                }
            }
            Some("FROM") => {
                seen_from = true;
                let rest: Vec<&str> = words[1..]
                    .iter()
                    .copied()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let Some(image) = rest.first().map(|i| substitute(i, &args)) else {
                    continue;
                };
                let is_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(&image));
                if !is_stage && image != "scratch" && !image.contains('$') {
                    out.push(image);
                }
                if rest.len() >= 3 && rest[1].eq_ignore_ascii_case("AS") {
                    stages.push(rest[2].to_string());
                }
            }
            _ => {}
        }
    }
    out
}

/// `${NAME}` and `$NAME` from global ARG defaults; unknown ones are left as they are.
fn substitute(word: &str, args: &[(String, String)]) -> String {
    let mut s = word.to_string();
    for (k, v) in args {
        s = s
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("${k}"), v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn plain_lists_skip_comments_and_duplicates() {
        let text = "# base images\nubuntu:20.04\n\n  alpine:3.19  \nubuntu:20.04\n";
        assert_eq!(parse(text), vec!["ubuntu:20.04", "alpine:3.19"]);
    }

    #[test]
    fn dockerfiles_give_their_from_images() {
        let text = "ARG BASE=debian:12\n\
            FROM --platform=$BUILDPLATFORM golang:1.22 AS build\n\
            RUN make\n\
            FROM build AS test\n\
            FROM scratch\n\
            from ${BASE}\n\
            COPY --from=build /x /x\n\
            FROM $UNKNOWN\n";
        assert_eq!(parse(text), vec!["golang:1.22", "debian:12"]);
    }

    #[test]
    fn continuation_lines_are_joined() {
        let text = "FROM \\\n  ubuntu:22.04\nRUN echo\n";
        assert_eq!(parse(text), vec!["ubuntu:22.04"]);
    }
}
