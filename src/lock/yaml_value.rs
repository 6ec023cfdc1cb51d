//! The value on one YAML line: after a `key:` or a `- ` list marker, to the end of the
//! line. Plain, `'single'` and `"double"` quoted scalars with an optional `# comment`; and
//! what this scanner does not read (block scalars, flow collections, anchors, aliases,
//! tags, escapes), named so the caller can say why it left a value alone.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    /// Nothing, or only a comment.
    Empty,
    /// A scalar complete on this line: the byte range of its text in the line, quotes
    /// excluded (the text is the value: no escapes).
    Scalar(Range<usize>),
    /// `|` or `>`: the value is the more-indented lines that follow.
    Block,
    /// A quoted scalar this line does not close: it continues on the next lines.
    Open(char),
    /// Something else; what it is.
    Other(&'static str),
}

/// The value of `line` starting at byte `at` (spaces before it allowed).
pub(super) fn parse(line: &str, at: usize) -> Value {
    let start = at + (line.len() - at - line[at..].trim_start().len());
    let rest = &line[start..];
    match rest.chars().next() {
        None | Some('#') => Value::Empty,
        Some('|' | '>') => Value::Block,
        Some(q @ ('"' | '\'')) => quoted(line, start, q),
        Some('{' | '[') => Value::Other("a flow collection"),
        Some('&') => Value::Other("an anchor (&)"),
        Some('*') => Value::Other("an alias (*)"),
        Some('!') => Value::Other("a tag (!)"),
        Some(_) => Value::Scalar(start..start + plain_len(rest)),
    }
}

/// A plain scalar's length: up to a ` #` comment, trailing spaces excluded.
fn plain_len(rest: &str) -> usize {
    let end = rest
        .char_indices()
        .find(|&(i, c)| c == '#' && rest[..i].ends_with([' ', '\t']))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].trim_end().len()
}

/// A quoted scalar starting with quote `q` at byte `start`.
fn quoted(line: &str, start: usize, q: char) -> Value {
    let inner = start + 1;
    let Some(len) = closing(&line[inner..], q) else {
        return Value::Open(q);
    };
    let text = &line[inner..inner + len];
    let after = line[inner + len + 1..].trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return Value::Other("text after the closing quote");
    }
    let escaped = match q {
        '"' => text.contains('\\'),
        _ => text.contains('\''),
    };
    match escaped {
        true => Value::Other("a quoted value with escapes"),
        false => Value::Scalar(inner..inner + len),
    }
}

/// Where quote `q` closes in `s` (the text after the opening quote): a `"` not escaped by
/// `\`, or a `'` not doubled.
pub(super) fn closing(s: &str, q: char) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (q, b[i]) {
            ('"', b'\\') => i += 1,
            ('"', b'"') => return Some(i),
            ('\'', b'\'') if b.get(i + 1) == Some(&b'\'') => i += 1,
            ('\'', b'\'') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar text of `line` from byte `at`, or the `Value` when it is not one.
    fn text(line: &str, at: usize) -> Result<&str, Value> {
        match parse(line, at) {
            Value::Scalar(r) => Ok(&line[r]),
            other => Err(other),
        }
    }

    #[test]
    fn scalars_plain_and_quoted_with_comments() {
        let cases = [
            ("image: nginx:1.25", "nginx:1.25"),
            ("image:   nginx:1.25   ", "nginx:1.25"),
            ("image: nginx:1.25 # pinned later", "nginx:1.25"),
            ("image: nginx:1.25\t# tab", "nginx:1.25"),
            ("image: a#b", "a#b"),
            ("image: 'nginx:1.25' # c", "nginx:1.25"),
            ("image: \"nginx:1.25\"", "nginx:1.25"),
            ("image: \"a # b\"", "a # b"),
        ];
        for (line, want) in cases {
            assert_eq!(text(line, 6), Ok(want), "{line}");
        }
    }

    #[test]
    fn what_is_not_a_plain_or_quoted_scalar() {
        let cases = [
            ("image:", Value::Empty),
            ("image:   # later", Value::Empty),
            ("image: |", Value::Block),
            ("image: >-", Value::Block),
            ("image: \"abc", Value::Open('"')),
            ("image: 'it''s", Value::Open('\'')),
            ("image: {name: x}", Value::Other("a flow collection")),
            ("image: [x]", Value::Other("a flow collection")),
            ("image: &img x:1", Value::Other("an anchor (&)")),
            ("image: *img", Value::Other("an alias (*)")),
            ("image: !!str x:1", Value::Other("a tag (!)")),
            (
                "image: \"x:1\" y",
                Value::Other("text after the closing quote"),
            ),
            (
                "image: \"x\\t:1\"",
                Value::Other("a quoted value with escapes"),
            ),
            (
                "image: 'it''s'",
                Value::Other("a quoted value with escapes"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line, 6), want, "{line}");
        }
    }

    #[test]
    fn closing_quotes_skip_escapes() {
        assert_eq!(closing(r#"a\"b" c"#, '"'), Some(4));
        assert_eq!(closing("a''b' c", '\''), Some(4));
        assert_eq!(closing(r#"a\\"#, '"'), None);
        assert_eq!(closing("", '\''), None);
    }
}
