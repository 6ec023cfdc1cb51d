//! YAML text as lines, each classified enough to find `key: value` entries: comments and
//! blank lines, document markers, the lines inside block scalars (`key: |`) and multi-line
//! quoted scalars (text, never keys), and entries with their indentation, list markers,
//! key and value. Not a YAML parser: one line at a time, with the little state that block
//! and quoted scalars need.

use std::ops::Range;

use super::yaml_value::{self, Value};

/// One physical line; `text` excludes its `\n` or `\r\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line<'a> {
    /// 1-based.
    pub no: usize,
    /// Byte offset of the line in the file.
    pub start: usize,
    pub text: &'a str,
    pub node: Node,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    /// Blank, a comment or a directive.
    Blank,
    /// `---` or `...`.
    Document,
    /// Part of a block scalar or of a quoted scalar begun on an earlier line.
    Text,
    /// Content: `col` is where it starts (a `- ` marker counts), `key_col` where the entry
    /// starts after its list markers; `key` its key's range in the line, if it is `key:`.
    Entry {
        col: usize,
        key_col: usize,
        key: Option<Range<usize>>,
        value: Value,
    },
}

/// What earlier lines leave open.
enum State {
    Normal,
    /// Inside a block scalar: lines indented more than this, and blank lines.
    Block(usize),
    /// Inside a quoted scalar, until this quote closes.
    Quoted(char),
}

/// The lines of `text`, classified.
pub(super) fn lines(text: &str) -> Vec<Line<'_>> {
    let mut state = State::Normal;
    let mut out = Vec::new();
    let mut start = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let body = raw.strip_suffix('\n').unwrap_or(raw);
        let body = body.strip_suffix('\r').unwrap_or(body);
        let skip = if i == 0 && body.starts_with('\u{feff}') {
            3
        } else {
            0
        };
        let (node, next) = classify(&body[skip..], state);
        let node = shift(node, skip);
        let (text, no) = (body, i + 1);
        out.push(Line {
            no,
            start,
            text,
            node,
        });
        state = next;
        start += raw.len();
    }
    out
}

/// A node's columns moved right by `by` bytes (after a byte order mark).
fn shift(node: Node, by: usize) -> Node {
    match node {
        Node::Entry {
            col,
            key_col,
            key,
            value,
        } => Node::Entry {
            col: col + by,
            key_col: key_col + by,
            key: key.map(|k| k.start + by..k.end + by),
            value: match value {
                Value::Scalar(r) => Value::Scalar(r.start + by..r.end + by),
                v => v,
            },
        },
        other => other,
    }
}

/// One line's node, given the state earlier lines left, and the state after it.
fn classify(line: &str, state: State) -> (Node, State) {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let rest = line[indent..].trim_end();
    match state {
        State::Block(min) if rest.is_empty() || indent > min => {
            return (Node::Text, State::Block(min));
        }
        State::Quoted(q) => {
            return match yaml_value::closing(line, q) {
                Some(_) => (Node::Text, State::Normal),
                None => (Node::Text, State::Quoted(q)),
            };
        }
        _ => {}
    }
    if rest.is_empty() || rest.starts_with('#') || line.starts_with('%') {
        return (Node::Blank, State::Normal);
    }
    if is_marker(line, "---") || is_marker(line, "...") {
        return (Node::Document, State::Normal);
    }
    entry(line, indent)
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
}

/// An entry line starting at column `col`, and the state it leaves.
fn entry(line: &str, col: usize) -> (Node, State) {
    let mut key_col = col;
    let mut parent = col;
    while let Some(after) = line[key_col..].strip_prefix('-') {
        if !(after.is_empty() || after.starts_with([' ', '\t'])) {
            break;
        }
        parent = key_col;
        key_col = line.len() - after.trim_start().len();
    }
    let key = key(line, key_col);
    let value_at = key
        .as_ref()
        .map_or(key_col, |k| colon_after(line, k.end) + 1);
    let value = yaml_value::parse(line, value_at);
    let state = match (&value, &key) {
        (Value::Block, Some(_)) => State::Block(key_col),
        (Value::Block, None) => State::Block(parent),
        (Value::Open(q), _) => State::Quoted(*q),
        _ => State::Normal,
    };
    (
        Node::Entry {
            col,
            key_col,
            key,
            value,
        },
        state,
    )
}

/// The key of `key: value` at byte `at` (quotes excluded), if the line is one.
fn key(line: &str, at: usize) -> Option<Range<usize>> {
    let rest = &line[at..];
    if let Some(q) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) {
        let len = yaml_value::closing(&rest[1..], q)?;
        let after = &rest[1 + len + 1..];
        let colon = after.trim_start_matches([' ', '\t']).strip_prefix(':')?;
        return ends_key(colon).then_some(at + 1..at + 1 + len);
    }
    if rest.starts_with(['{', '[', '|', '>', '&', '*', '!', '?', '#', '%', '@', '`']) {
        return None;
    }
    let colon = rest
        .match_indices(':')
        .map(|(i, _)| i)
        .find(|&i| ends_key(&rest[i + 1..]))?;
    let key = rest[..colon].trim_end();
    (!key.contains(" #")).then_some(at..at + key.len())
}

/// A `:` ends a key when a space, a tab or the line's end follows it.
fn ends_key(after: &str) -> bool {
    after.is_empty() || after.starts_with([' ', '\t'])
}

/// The byte of the `:` after a key ending at `end` (past a closing quote and spaces).
fn colon_after(line: &str, end: usize) -> usize {
    end + line[end..]
        .find(':')
        .expect("a key is followed by its colon")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(text: &str) -> Vec<Node> {
        lines(text).into_iter().map(|l| l.node).collect()
    }

    fn keys(text: &str) -> Vec<(usize, &str)> {
        lines(text)
            .into_iter()
            .filter_map(|l| match &l.node {
                Node::Entry { key: Some(k), .. } => Some((l.no, &l.text[k.clone()])),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn entries_have_columns_keys_and_values() {
        let got = nodes("a:\n  - - image: x:1 # c\n  \"q k\" : 'v'\n  - plain\n");
        let want = [
            Node::Entry {
                col: 0,
                key_col: 0,
                key: Some(0..1),
                value: Value::Empty,
            },
            Node::Entry {
                col: 2,
                key_col: 6,
                key: Some(6..11),
                value: Value::Scalar(13..16),
            },
            Node::Entry {
                col: 2,
                key_col: 2,
                key: Some(3..6),
                value: Value::Scalar(11..12),
            },
            Node::Entry {
                col: 2,
                key_col: 4,
                key: None,
                value: Value::Scalar(4..9),
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn comments_markers_and_line_ends() {
        let text = "# c\r\n---\r\n  # indented\r\n\r\nk: v\r\n...\n%YAML 1.2\nk: v";
        let got: Vec<_> = lines(text)
            .into_iter()
            .map(|l| (l.no, l.start, l.text, l.node))
            .collect();
        assert_eq!(got[0], (1, 0, "# c", Node::Blank));
        assert_eq!(got[1], (2, 5, "---", Node::Document));
        assert_eq!(got[2].3, Node::Blank);
        assert_eq!(got[3].3, Node::Blank);
        assert_eq!(got[4].2, "k: v");
        assert_eq!(got[5].3, Node::Document);
        assert_eq!(got[6].3, Node::Blank);
        assert_eq!((got[7].0, got[7].2), (8, "k: v"));
    }

    #[test]
    fn block_scalars_hold_text_not_keys() {
        let text = "a: |\n  image: fake\n\n   b: c\nimage: real\n- |-\n  image: fake\n- x:\n    run: >\n      image: fake\n    image: real\n";
        assert_eq!(
            keys(text),
            [(1, "a"), (5, "image"), (8, "x"), (9, "run"), (11, "image")]
        );
    }

    #[test]
    fn quoted_scalars_over_lines_hold_text_not_keys() {
        let text =
            "a: \"one\n  image: fake\n  two\" \nimage: real\nb: 'it''s\n image: fake'\nc: d\n";
        assert_eq!(keys(text), [(1, "a"), (4, "image"), (5, "b"), (7, "c")]);
    }

    #[test]
    fn what_is_not_a_key() {
        let text = "- http://x\n- a:b\n- {image: x}\n- key # not: a key\n- ? complex\n";
        assert_eq!(keys(text), []);
        assert_eq!(keys("\u{feff}image: x\n"), [(1, "image")]);
        let [
            Line {
                node: Node::Entry { value, .. },
                ..
            },
        ] = &lines("\u{feff}image: x")[..]
        else {
            panic!()
        };
        assert_eq!(value, &Value::Scalar(10..11));
    }
}
