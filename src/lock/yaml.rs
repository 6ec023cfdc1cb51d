//! Sites in YAML: the value of every `image:` key on its own line, list markers allowed
//! (Compose `services.*.image`, Kubernetes `containers[].image` and `initContainers`, pod
//! templates, multi-document files). The value may be plain or quoted (the site is the text
//! inside the quotes) and carry a `# comment`.
//!
//! Left alone, with why: empty values, block scalars, flow collections, anchors, aliases,
//! tags, escapes, whitespace inside quotes, Compose interpolation (`${TAG}`), templates
//! (`{{ }}`), values that are not references, an `image:` inside a flow mapping, and a
//! Compose service's `image:` next to its `build:` (there it names the image the build
//! produces).

use crate::reference::Reference;

use super::yaml_lines::{self, Line, Node};
use super::yaml_value::Value;
use super::{Plan, Site, SiteKind, Skipped};

pub(super) fn plan(text: &str) -> Plan {
    let lines = yaml_lines::lines(text);
    let mut plan = Plan::default();
    for (i, line) in lines.iter().enumerate() {
        let skip = |why: String| Skipped {
            line: line.no,
            raw: line.text.trim().to_owned(),
            why,
        };
        if !is_key(line, "image") {
            if in_flow(line) {
                plan.skipped.push(skip(
                    "an image: inside a flow mapping ({…}); write it in block style to lock it"
                        .to_owned(),
                ));
            }
            continue;
        }
        match site(&lines, i) {
            Ok(site) => plan.sites.push(site),
            Err(why) => plan.skipped.push(skip(why)),
        }
    }
    plan
}

/// The site of the `image:` entry `lines[i]`, or why it has none.
fn site(lines: &[Line<'_>], i: usize) -> Result<Site, String> {
    let line = &lines[i];
    let Node::Entry { value, .. } = &line.node else {
        unreachable!("is_key checked it is an entry")
    };
    let written = value_text(line.text, value)?;
    if let Err(e) = Reference::parse(written) {
        return Err(format!("not an image reference: {e}"));
    }
    if let Some(build) = sibling(lines, i, "build") {
        return Err(format!(
            "next to build: (line {build}), image: names the image the build produces"
        ));
    }
    let Value::Scalar(range) = value else {
        unreachable!("value_text checked it is a scalar")
    };
    Ok(Site {
        line: line.no,
        span: line.start + range.start..line.start + range.end,
        written: written.to_owned(),
        image: written.to_owned(),
        what: SiteKind::YamlImage,
    })
}

/// The scalar text of an `image:` value, or why it is left alone.
fn value_text<'a>(text: &'a str, value: &Value) -> Result<&'a str, String> {
    let after_key = &text[text.find(':').map_or(0, |c| c + 1)..];
    if after_key.contains("{{") {
        return Err("a template ({{ }}); lock the values it is rendered from".to_owned());
    }
    let written = match value {
        Value::Scalar(range) => &text[range.clone()],
        Value::Empty => {
            return Err("no value on its line (a nested mapping is left alone)".to_owned());
        }
        Value::Block => return Err("a block scalar (| or >)".to_owned()),
        Value::Open(_) => return Err("a quoted value that goes on over lines".to_owned()),
        Value::Other(what) => return Err(format!("{what}; write the reference out")),
    };
    if written.contains('$') {
        return Err(format!(
            "interpolated ({written}); the reference is only known when the file is used"
        ));
    }
    if matches!(written, "~" | "null" | "Null" | "NULL") {
        return Err("null".to_owned());
    }
    if written.trim() != written {
        return Err("whitespace inside the quotes; remove it to lock the value".to_owned());
    }
    Ok(written)
}

/// True when `line` is an entry whose key is `name`.
fn is_key(line: &Line<'_>, name: &str) -> bool {
    matches!(&line.node, Node::Entry { key: Some(k), .. } if &line.text[k.clone()] == name)
}

/// True when an entry line has `image:` right after a `{` or a `,`: inside a flow mapping.
fn in_flow(line: &Line<'_>) -> bool {
    let Node::Entry { key_col, .. } = line.node else {
        return false;
    };
    let text = &line.text[key_col..];
    text.contains('{')
        && text.match_indices("image").any(|(at, _)| {
            let before = text[..at].trim_end_matches([' ', '\t']);
            let after = text[at + 5..].trim_start_matches([' ', '\t']);
            before.ends_with(['{', ',']) && after.starts_with(':')
        })
}

/// The line number of the entry with key `name` in the same mapping as `lines[i]`.
fn sibling(lines: &[Line<'_>], i: usize, name: &str) -> Option<usize> {
    let (first, col) = entry_cols(&lines[i])?;
    // An entry after a `- ` marker starts its list item: nothing before it is a sibling.
    let before = if first < col {
        &lines[..0]
    } else {
        &lines[..i]
    };
    for line in before.iter().rev() {
        let Some((c, k)) = entry_cols(line) else {
            continue;
        };
        if k == col && is_key(line, name) {
            return Some(line.no);
        }
        if c < col || k < col {
            break;
        }
    }
    for line in &lines[i + 1..] {
        let Some((c, k)) = entry_cols(line) else {
            continue;
        };
        if c < col {
            break;
        }
        if k == col && is_key(line, name) {
            return Some(line.no);
        }
    }
    None
}

/// `(col, key_col)` of an entry; a document marker is an entry at column 0; other lines
/// have none.
fn entry_cols(line: &Line<'_>) -> Option<(usize, usize)> {
    match line.node {
        Node::Entry { col, key_col, .. } => Some((col, key_col)),
        Node::Document => Some((0, 0)),
        Node::Blank | Node::Text => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(text: &str) -> Vec<(usize, &str)> {
        let p = plan(text);
        assert!(p.skipped.is_empty(), "{p:?}");
        p.sites
            .iter()
            .map(|s| (s.line, &text[s.span.clone()]))
            .collect()
    }

    /// The one skip of `text`; its why contains `word`.
    #[track_caller]
    fn skipped(text: &str, word: &str) -> Skipped {
        let p = plan(text);
        assert!(p.sites.is_empty(), "{p:?}");
        let [s] = &p.skipped[..] else {
            panic!("expected one skip: {p:?}")
        };
        assert!(s.why.contains(word), "{:?} should mention {word:?}", s.why);
        s.clone()
    }

    #[test]
    fn image_keys_plain_quoted_in_lists_and_documents() {
        let text = "services:\n  web:\n    image: nginx:1.25 # web\n  db:\n    image: \"postgres:16\"\n---\nspec:\n  containers:\n  - name: a\n    image: 'ghcr.io/o/a:1'\n  - image: busybox\n";
        assert_eq!(
            sites(text),
            [
                (3, "nginx:1.25"),
                (5, "postgres:16"),
                (10, "ghcr.io/o/a:1"),
                (11, "busybox")
            ]
        );
    }

    #[test]
    fn crlf_spans_stop_before_the_carriage_return() {
        let text = "a:\r\n  image: x:1\r\n  b: 'y'\r\nimage: \"z:2\"\r\n";
        assert_eq!(sites(text), [(2, "x:1"), (4, "z:2")]);
    }

    #[test]
    fn block_scalars_and_comments_are_not_scanned() {
        let text = "# image: no:1\ndata:\n  script: |\n    image: fake\n  image: real:1\n";
        assert_eq!(sites(text), [(5, "real:1")]);
    }

    #[test]
    fn each_reason_to_leave_a_value_alone() {
        let cases = [
            (
                "image: ${REG}/app:${TAG}",
                "interpolated (${REG}/app:${TAG})",
            ),
            ("image: \"{{ .Values.image }}\"", "template"),
            ("image: {{ .Values.image }}", "template"),
            ("image:\n  repository: nginx", "no value on its line"),
            ("image: |\n  nginx:1", "block scalar"),
            ("image: \"nginx\n  :1\"", "over lines"),
            ("image: {repository: x}", "flow collection"),
            ("image: &img x:1", "anchor"),
            ("image: *img", "alias"),
            ("image: !!str x:1", "tag"),
            ("image: \"x\\u0031\"", "escapes"),
            ("image: ~", "null"),
            ("image: Not A Reference", "not an image reference"),
            ("- {name: a, image: x:1}", "flow mapping"),
            // Found by fuzzing: the lock wrote `"ghcr.io/o/a.3 :latest@…"`.
            ("image: \"ghcr.io/o/a.3 \"", "whitespace inside the quotes"),
            ("image: ' x:1'", "whitespace inside the quotes"),
        ];
        for (text, why) in cases {
            skipped(text, why);
        }
    }

    #[test]
    fn a_compose_image_next_to_build_is_what_the_build_produces() {
        let text = "services:\n  app:\n    build: .\n    image: me/app:dev\n  db:\n    image: postgres:16\n    build:\n      context: .\n  web:\n    image: nginx:1\n";
        let p = plan(text);
        let lines: Vec<_> = p.sites.iter().map(|s| s.line).collect();
        assert_eq!(lines, [10]);
        let skips: Vec<_> = p.skipped.iter().map(|s| (s.line, s.raw.as_str())).collect();
        assert_eq!(skips, [(4, "image: me/app:dev"), (6, "image: postgres:16")]);
        assert!(p.skipped[0].why.contains("build: (line 3)"), "{p:?}");
        // A build key in another list item or a nested mapping is not a sibling.
        let text = "- build: .\n- image: a:1\n  x:\n    build: .\n";
        assert_eq!(sites(text), [(2, "a:1")]);
    }
}
