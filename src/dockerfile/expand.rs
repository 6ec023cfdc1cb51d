//! One word's build-time variables, expanded as BuildKit does: `$NAME`, `${NAME}`,
//! `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`, `${NAME:?message}`,
//! `${NAME?message}`; single quotes keep text literal, double quotes allow expansion, the
//! escape character makes the next character literal, and quotes are removed.
//! Must not touch: which variable holds what (`scope` answers through `Vars`).

/// What a variable holds, as far as the Dockerfile tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Var<'a> {
    Set(&'a str),
    /// Set, to a value that needs a variable without one (why).
    Unknown(&'a str),
    /// Undeclared or declared without a value (why, and the fix).
    Unset(String),
}

/// The variables a word is expanded with.
pub(super) trait Vars {
    fn get(&self, name: &str) -> Var<'_>;
}

/// A word's value, or why it cannot be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expanded {
    Known(String),
    Unknown(String),
}

/// A word that no build could expand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExpandError {
    UnterminatedBrace,
    UnterminatedQuote(char),
    /// The `${...}` text.
    BadSubstitution(String),
}

/// Expands `word`; an unknowable part makes the whole `Unknown` (with the first reason).
pub(super) fn expand(word: &str, escape: char, vars: &dyn Vars) -> Result<Expanded, ExpandError> {
    let mut expander = Expander {
        src: word,
        pos: 0,
        escape,
        vars,
    };
    let piece = expander.word(None)?;
    Ok(match piece.missing {
        None => Expanded::Known(piece.text),
        Some(why) => Expanded::Unknown(why),
    })
}

/// `[A-Za-z_]`, the first character of a variable name.
pub(super) fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// `[A-Za-z0-9_]`, the other characters of a variable name.
pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Part of a result: its text so far, and the first reason it cannot be known.
#[derive(Debug, Default)]
struct Piece {
    text: String,
    missing: Option<String>,
}

impl Piece {
    fn literal(text: &str) -> Piece {
        Piece {
            text: text.to_owned(),
            missing: None,
        }
    }

    fn missing(why: String) -> Piece {
        Piece {
            text: String::new(),
            missing: Some(why),
        }
    }

    fn add(&mut self, other: Piece) {
        self.text.push_str(&other.text);
        if self.missing.is_none() {
            self.missing = other.missing;
        }
    }

    fn of(var: Var<'_>) -> Piece {
        match var {
            Var::Set(value) => Piece::literal(value),
            Var::Unknown(why) => Piece::missing(why.to_owned()),
            Var::Unset(why) => Piece::missing(why),
        }
    }
}

struct Expander<'a> {
    src: &'a str,
    pos: usize,
    escape: char,
    vars: &'a dyn Vars,
}

impl<'a> Expander<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Up to the end, or past an unquoted, unescaped `stop`.
    fn word(&mut self, stop: Option<char>) -> Result<Piece, ExpandError> {
        let mut piece = Piece::default();
        loop {
            let at = self.pos;
            let Some(c) = self.bump() else {
                return match stop {
                    Some(_) => Err(ExpandError::UnterminatedBrace),
                    None => Ok(piece),
                };
            };
            match c {
                _ if Some(c) == stop => return Ok(piece),
                '\'' => piece.text.push_str(self.single_quoted()?),
                '"' => piece.add(self.double_quoted()?),
                '$' => piece.add(self.dollar(at)?),
                _ if c == self.escape => piece.text.extend(self.bump()),
                _ => piece.text.push(c),
            }
        }
    }

    fn single_quoted(&mut self) -> Result<&'a str, ExpandError> {
        let rest = &self.src[self.pos..];
        let len = rest
            .find('\'')
            .ok_or(ExpandError::UnterminatedQuote('\''))?;
        self.pos += len + 1;
        Ok(&rest[..len])
    }

    /// Inside `"`: the escape character escapes only `"`, `$` and itself.
    fn double_quoted(&mut self) -> Result<Piece, ExpandError> {
        let mut piece = Piece::default();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(ExpandError::UnterminatedQuote('"')),
                Some('"') => return Ok(piece),
                Some('$') => piece.add(self.dollar(at)?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.bump();
                        piece.text.push(n);
                    }
                    _ => piece.text.push(c),
                },
                Some(c) => piece.text.push(c),
            }
        }
    }

    /// After a `$` at `start`.
    fn dollar(&mut self, start: usize) -> Result<Piece, ExpandError> {
        match self.peek() {
            Some('{') => {
                self.bump();
                self.braced(start)
            }
            Some(c) if is_name_start(c) => {
                let name = self.name();
                Ok(Piece::of(self.vars.get(name)))
            }
            _ => Ok(Piece::literal("$")),
        }
    }

    fn name(&mut self) -> &'a str {
        let rest = &self.src[self.pos..];
        if !rest.starts_with(is_name_start) {
            return "";
        }
        let len = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// After `${` (the `$` at `start`).
    fn braced(&mut self, start: usize) -> Result<Piece, ExpandError> {
        let name = self.name();
        let op = self.bump();
        if name.is_empty() && op.is_some() {
            return Err(self.bad(start));
        }
        match op {
            None => Err(ExpandError::UnterminatedBrace),
            Some('}') => Ok(Piece::of(self.vars.get(name))),
            Some(':') => match self.bump() {
                Some(op @ ('-' | '+' | '?')) => self.modifier(name, op, true, start),
                None => Err(ExpandError::UnterminatedBrace),
                Some(_) => Err(self.bad(start)),
            },
            Some(op @ ('-' | '+' | '?')) => self.modifier(name, op, false, start),
            Some('#' | '%' | '/') => {
                self.word(Some('}'))?;
                let text = &self.src[start..self.pos];
                Ok(Piece::missing(format!(
                    "{text}: pattern substitutions are not evaluated here"
                )))
            }
            Some(_) => Err(self.bad(start)),
        }
    }

    fn bad(&self, start: usize) -> ExpandError {
        let rest = &self.src[start..];
        let end = rest.find('}').map_or(rest.len(), |i| i + 1);
        ExpandError::BadSubstitution(rest[..end].to_owned())
    }

    /// `${name:-word}` and the like: with `colon`, an empty value counts as unset.
    fn modifier(
        &mut self,
        name: &str,
        op: char,
        colon: bool,
        start: usize,
    ) -> Result<Piece, ExpandError> {
        let word = self.word(Some('}'))?;
        let var = self.vars.get(name);
        let set = match &var {
            Var::Set(value) => !(colon && value.is_empty()),
            Var::Unknown(_) if colon => return Ok(Piece::of(var)),
            Var::Unknown(_) => true,
            Var::Unset(_) => false,
        };
        Ok(match (op, set) {
            ('-' | '?', true) => Piece::of(var),
            ('-', false) | ('+', true) => word,
            ('+', false) => Piece::default(),
            _ => {
                let text = &self.src[start..self.pos];
                let message = match (word.text.is_empty(), colon) {
                    (false, _) => word.text,
                    (true, true) => format!("{name} must be set and not empty"),
                    (true, false) => format!("{name} must be set"),
                };
                Piece::missing(format!("{text}: {message}"))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Map(HashMap<&'static str, &'static str>);

    impl Vars for Map {
        fn get(&self, name: &str) -> Var<'_> {
            match self.0.get(name) {
                Some(v) if v.starts_with('!') => Var::Unknown(v),
                Some(v) => Var::Set(v),
                None => Var::Unset(format!("{name} unset")),
            }
        }
    }

    fn vars() -> Map {
        Map(HashMap::from([
            ("V", "1"),
            ("VER", "1.0"),
            ("EMPTY", ""),
            ("LATER", "!LATER is unknown"),
        ]))
    }

    fn run(word: &str) -> Result<Expanded, ExpandError> {
        expand(word, '\\', &vars())
    }

    fn known(s: &str) -> Result<Expanded, ExpandError> {
        Ok(Expanded::Known(s.to_owned()))
    }

    fn unknown(s: &str) -> Result<Expanded, ExpandError> {
        Ok(Expanded::Unknown(s.to_owned()))
    }

    #[test]
    fn expansion_table() {
        let cases = [
            ("tiny:$VER", known("tiny:1.0")),
            ("tiny:$V", known("tiny:1")),
            ("tiny:${V}ER", known("tiny:1ER")),
            ("$VER$V", known("1.01")),
            ("${EMPTY}x", known("x")),
            ("${EMPTY:-d}", known("d")),
            ("${EMPTY-d}", known("")),
            ("${NONE:-d}", known("d")),
            ("${NONE-d}", known("d")),
            ("${V:-d}", known("1")),
            ("${V:+alt}", known("alt")),
            ("${V+alt}", known("alt")),
            ("${EMPTY:+alt}", known("")),
            ("${EMPTY+alt}", known("alt")),
            ("${NONE:+alt}", known("")),
            ("${NONE+$NONE}", known("")),
            ("${NONE:-$VER-${V}}", known("1.0-1")),
            ("${NONE:-${NONE:-deep}}", known("deep")),
            ("${V:?msg}", known("1")),
            ("${EMPTY?msg}", known("")),
            ("$NONE", unknown("NONE unset")),
            ("a${NONE}b", unknown("NONE unset")),
            ("${NONE:?msg}", unknown("${NONE:?msg}: msg")),
            (
                "${EMPTY:?}",
                unknown("${EMPTY:?}: EMPTY must be set and not empty"),
            ),
            ("${NONE?}", unknown("${NONE?}: NONE must be set")),
            ("${LATER}", unknown("!LATER is unknown")),
            ("${LATER:-d}", unknown("!LATER is unknown")),
            ("${LATER+set}", known("set")),
            (
                "${V%%.*}",
                unknown("${V%%.*}: pattern substitutions are not evaluated here"),
            ),
        ];
        for (word, want) in cases {
            assert_eq!(run(word), want, "{word:?}");
        }
    }

    #[test]
    fn quotes_escapes_and_literal_dollars() {
        let cases = [
            (r#""$VER""#, known("1.0")),
            ("'$VER'", known("$VER")),
            (r"\$VER", known("$VER")),
            (r#""\$VER""#, known("$VER")),
            (r#""a\b""#, known(r"a\b")),
            (r#""a\"b""#, known(r#"a"b"#)),
            (r"a\b", known("ab")),
            ("a$", known("a$")),
            ("$1x", known("$1x")),
            ("a$-b", known("a$-b")),
            ("${NONE:-'}'}", known("}")),
            (r#"${NONE:-"a b"}"#, known("a b")),
            (r"${NONE:-\}}", known("}")),
        ];
        for (word, want) in cases {
            assert_eq!(run(word), want, "{word:?}");
        }
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(expand(r"`$V\x", '`', &vars()), known(r"$V\x"));
        assert_eq!(expand(r#""`"""#, '`', &vars()), known("\""));
    }

    #[test]
    fn malformed_words() {
        let cases = [
            ("${VER", ExpandError::UnterminatedBrace),
            ("${VER:-x", ExpandError::UnterminatedBrace),
            ("${", ExpandError::UnterminatedBrace),
            ("\"abc", ExpandError::UnterminatedQuote('"')),
            ("'abc", ExpandError::UnterminatedQuote('\'')),
            ("${}", ExpandError::BadSubstitution("${}".into())),
            ("${1}", ExpandError::BadSubstitution("${1}".into())),
            ("${V:x}", ExpandError::BadSubstitution("${V:x}".into())),
            ("${V x}", ExpandError::BadSubstitution("${V x}".into())),
        ];
        for (word, want) in cases {
            assert_eq!(run(word), Err(want), "{word:?}");
        }
    }
}
