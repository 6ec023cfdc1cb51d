//! Dockerfile text → logical instructions: parser directives, comments, line continuations
//! and heredoc bodies, with every byte of an instruction mapped back to the input.
//! Must not touch: the meaning of instructions or variables (`walk`, `expand`).

use std::ops::Range;

use super::DockerfileError;

/// Parser directives BuildKit knows. An unknown one is a comment and ends the directives.
const DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

/// Instructions whose arguments may open heredocs.
const HEREDOC_KEYWORDS: [&str; 3] = ["RUN", "COPY", "ADD"];

/// Text built from pieces of the input, remembering where each byte came from.
#[derive(Debug, Default)]
pub(super) struct Logical {
    pub text: String,
    /// `offsets[i]`: the input offset of `text`'s byte `i`.
    offsets: Vec<usize>,
}

impl Logical {
    fn push(&mut self, piece: &str, at: usize) {
        self.text.push_str(piece);
        self.offsets.extend(at..at + piece.len());
    }

    /// The input range `range` of `text` came from, if it came from one unbroken run.
    pub fn span(&self, range: Range<usize>) -> Option<Range<usize>> {
        if range.is_empty() {
            let at = match range.start.checked_sub(1) {
                Some(before) => self.offsets[before] + 1,
                None => *self.offsets.first()?,
            };
            return Some(at..at);
        }
        let start = self.offsets[range.start];
        let end = self.offsets[range.end - 1] + 1;
        (end - start == range.len()).then_some(start..end)
    }
}

/// One instruction, continuations joined, comments inside it dropped.
#[derive(Debug)]
pub(super) struct Instruction {
    /// 1-based physical line of its first line.
    pub line: usize,
    /// Uppercased.
    pub keyword: String,
    pub text: Logical,
    /// Where the arguments (after the keyword) lie in `text`.
    pub args: Range<usize>,
}

impl Instruction {
    fn new(line: usize, text: Logical) -> Instruction {
        let end = text.text.find([' ', '\t']).unwrap_or(text.text.len());
        let rest = &text.text[end..];
        let start = end + (rest.len() - rest.trim_start().len());
        Instruction {
            line,
            keyword: text.text[..end].to_ascii_uppercase(),
            args: start..text.text.len(),
            text,
        }
    }

    /// The arguments' words (see `words`), as ranges of `text`.
    pub fn words(&self, escape: char) -> Vec<Range<usize>> {
        words(&self.text.text, self.args.clone(), escape)
    }

    pub fn str(&self, range: Range<usize>) -> &str {
        &self.text.text[range]
    }
}

/// Splits `text[range]` at whitespace outside quotes and not escaped. Never fails: an
/// unterminated quote runs to the end (`expand` reports it where it matters; a `RUN`
/// command's quotes are the shell's business).
pub(super) fn words(text: &str, range: Range<usize>, escape: char) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut chars = text[range.clone()].char_indices().peekable();
    let base = range.start;
    while let Some(&(start, _)) = chars.peek() {
        let mut quote = None;
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            }
            chars.next();
            end = i + c.len_utf8();
            if c == escape && quote != Some('\'') {
                if let Some((j, n)) = chars.next() {
                    end = j + n.len_utf8();
                }
            } else if quote == Some(c) {
                quote = None;
            } else if quote.is_none() && (c == '\'' || c == '"') {
                quote = Some(c);
            }
        }
        if end > start {
            out.push(base + start..base + end);
        }
        while chars.next_if(|&(_, c)| c == ' ' || c == '\t').is_some() {}
    }
    out
}

/// A `--name[=value]` flag word.
#[derive(Debug)]
pub(super) struct Flag {
    pub name: Range<usize>,
    pub value: Option<Range<usize>>,
}

/// The leading `--flag` words of `words`, and the index of the first word after them.
pub(super) fn flags(text: &str, words: &[Range<usize>]) -> (Vec<Flag>, usize) {
    let count = words
        .iter()
        .take_while(|w| text[(*w).clone()].starts_with("--"))
        .count();
    let flags = words[..count]
        .iter()
        .map(|w| match text[w.clone()].find('=') {
            Some(eq) => Flag {
                name: w.start + 2..w.start + eq,
                value: Some(w.start + eq + 1..w.end),
            },
            None => Flag {
                name: w.start + 2..w.end,
                value: None,
            },
        })
        .collect();
    (flags, count)
}

/// One physical line, without its line ending (`\n` or `\r\n`).
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    start: usize,
    text: &'a str,
    next: usize,
}

/// Yields the instructions of a Dockerfile in order. A directive error comes first, then
/// lexing goes on; an unterminated heredoc consumes the rest of the text.
pub(super) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    line: usize,
    escape: char,
    pending: Option<DockerfileError>,
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Lexer<'a> {
        let mut lexer = Lexer {
            input,
            pos: if input.starts_with('\u{feff}') { 3 } else { 0 },
            line: 0,
            escape: '\\',
            pending: None,
        };
        lexer.pending = lexer.directives().err();
        lexer
    }

    /// The escape character the directives chose.
    pub fn escape(&self) -> char {
        self.escape
    }

    fn peek_line(&self) -> Option<Line<'a>> {
        let rest = self.input.get(self.pos..).filter(|r| !r.is_empty())?;
        let (text, next) = match rest.find('\n') {
            Some(nl) => (&rest[..nl], self.pos + nl + 1),
            None => (rest, self.input.len()),
        };
        Some(Line {
            number: self.line + 1,
            start: self.pos,
            text: text.strip_suffix('\r').unwrap_or(text),
            next,
        })
    }

    fn next_line(&mut self) -> Option<Line<'a>> {
        let line = self.peek_line()?;
        self.pos = line.next;
        self.line = line.number;
        Some(line)
    }

    /// Reads the directive lines at the very top.
    fn directives(&mut self) -> Result<(), DockerfileError> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(line) = self.peek_line() {
            let Some((name, value)) = directive(line.text) else {
                return Ok(());
            };
            let name = name.to_ascii_lowercase();
            if !DIRECTIVES.contains(&name.as_str()) {
                return Ok(());
            }
            self.next_line();
            let number = line.number;
            if seen.contains(&name) {
                return Err(DockerfileError::RepeatedDirective { line: number, name });
            }
            if name == "escape" {
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(bad_escape(number, value)),
                };
            }
            seen.push(name);
        }
        Ok(())
    }

    /// The rest of an instruction whose first line is `first`: continuation lines joined,
    /// comment and blank lines among them skipped.
    fn logical(&mut self, first: &str, at: usize) -> Logical {
        let mut text = Logical::default();
        let mut more = self.append(&mut text, first, at);
        while more {
            let Some(line) = self.next_line() else { break };
            if is_blank_or_comment(line.text) {
                continue;
            }
            more = self.append(&mut text, line.text, line.start);
        }
        text
    }

    /// Adds one line; true when it ends in the escape character (the next line continues).
    fn append(&self, text: &mut Logical, line: &str, at: usize) -> bool {
        let line = line.trim_end();
        match line.strip_suffix(self.escape) {
            Some(head) => {
                text.push(head, at);
                true
            }
            None => {
                text.push(line, at);
                false
            }
        }
    }

    /// Skips the bodies of the heredocs `instruction` opens.
    fn heredocs(&mut self, instruction: &Instruction) -> Result<(), DockerfileError> {
        for heredoc in heredocs(instruction, self.escape) {
            loop {
                let Some(line) = self.next_line() else {
                    return Err(DockerfileError::UnterminatedHeredoc {
                        line: instruction.line,
                        terminator: heredoc.terminator,
                    });
                };
                let text = match heredoc.strip_tabs {
                    true => line.text.trim_start_matches('\t'),
                    false => line.text,
                };
                if text == heredoc.terminator {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Iterator for Lexer<'_> {
    type Item = Result<Instruction, DockerfileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.pending.take() {
            return Some(Err(error));
        }
        loop {
            let line = self.next_line()?;
            if is_blank_or_comment(line.text) {
                continue;
            }
            let first = line.text.trim_start();
            let at = line.start + (line.text.len() - first.len());
            let text = self.logical(first, at);
            if text.text.trim().is_empty() {
                continue;
            }
            let instruction = Instruction::new(line.number, text);
            return Some(self.heredocs(&instruction).map(|()| instruction));
        }
    }
}

fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim_start();
    line.is_empty() || line.starts_with('#')
}

fn bad_escape(line: usize, value: &str) -> DockerfileError {
    DockerfileError::BadEscape {
        line,
        value: value.to_owned(),
    }
}

/// `# name=value` (spaces allowed around each part) as (name, value).
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (name, rest) = rest.split_at(name_len);
    let value = rest.trim_start().strip_prefix('=')?.trim();
    let starts_alpha = name.starts_with(|c: char| c.is_ascii_alphabetic());
    (starts_alpha && !value.is_empty()).then_some((name, value))
}

/// A heredoc an instruction opens: `<<EOF`, `<<-EOF` (tabs stripped), `<<"EOF"`, `<<'EOF'`.
#[derive(Debug, PartialEq, Eq)]
struct Heredoc {
    terminator: String,
    strip_tabs: bool,
}

/// The heredocs of a `RUN`, `COPY` or `ADD` (also after `ONBUILD`), in order; none for the
/// JSON (exec) form.
fn heredocs(instruction: &Instruction, escape: char) -> Vec<Heredoc> {
    let mut words = instruction.words(escape);
    let mut keyword = instruction.keyword.clone();
    if keyword == "ONBUILD" && !words.is_empty() {
        keyword = instruction.str(words.remove(0)).to_ascii_uppercase();
    }
    if !HEREDOC_KEYWORDS.contains(&keyword.as_str()) {
        return Vec::new();
    }
    let text = &instruction.text.text;
    let (_, first) = flags(text, &words);
    let args = &words[first..];
    if let Some(w) = args.first()
        && serde_json::from_str::<Vec<String>>(&text[w.start..]).is_ok()
    {
        return Vec::new();
    }
    args.iter()
        .filter_map(|w| heredoc(&text[w.clone()], escape))
        .collect()
}

/// The heredoc a word opens, if it opens one.
fn heredoc(word: &str, escape: char) -> Option<Heredoc> {
    let rest = word.strip_prefix("<<")?;
    let (rest, strip_tabs) = match rest.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    if rest.contains('<') {
        return None;
    }
    let terminator: String = rest
        .chars()
        .filter(|&c| c != '"' && c != '\'' && c != escape)
        .collect();
    (!terminator.is_empty()).then_some(Heredoc {
        terminator,
        strip_tabs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        words(text, 0..text.len(), '\\')
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn words_split_outside_quotes_and_escapes() {
        let cases: [(&str, &[&str]); 6] = [
            ("a b\tc", &["a", "b", "c"]),
            ("  a  ", &["a"]),
            (r#"X="a b" Y='c d'"#, &[r#"X="a b""#, "Y='c d'"]),
            (r"a\ b c", &[r"a\ b", "c"]),
            (r#""a \" b" c"#, &[r#""a \" b""#, "c"]),
            (r#"open "quote here"#, &["open", r#""quote here"#]),
        ];
        for (text, want) in cases {
            assert_eq!(split(text), want, "{text:?}");
        }
    }

    #[test]
    fn directives_parse_with_spaces_and_any_case() {
        let cases = [
            ("# escape=`", Some(("escape", "`"))),
            ("#ESCAPE = `  ", Some(("ESCAPE", "`"))),
            (
                "# syntax=docker/dockerfile:1",
                Some(("syntax", "docker/dockerfile:1")),
            ),
            ("# just a comment", None),
            ("# name=", None),
            ("FROM x", None),
        ];
        for (line, want) in cases {
            assert_eq!(directive(line), want, "{line:?}");
        }
    }

    #[test]
    fn heredoc_words() {
        let h = |t: &str, s| {
            Some(Heredoc {
                terminator: t.to_owned(),
                strip_tabs: s,
            })
        };
        let cases = [
            ("<<EOF", h("EOF", false)),
            ("<<-EOT", h("EOT", true)),
            ("<<\"EOF\"", h("EOF", false)),
            ("<<'END'", h("END", false)),
            ("<<<here", None),
            ("<<", None),
            ("x<<EOF", None),
        ];
        for (word, want) in cases {
            assert_eq!(heredoc(word, '\\'), want, "{word:?}");
        }
    }

    #[test]
    fn spans_break_at_continuations() {
        let input = "FROM ab\\\ncd";
        let i = Lexer::new(input).next().unwrap().unwrap();
        assert_eq!(i.str(i.args.clone()), "abcd");
        assert_eq!(i.text.span(i.args.clone()), None);
        assert_eq!(i.text.span(i.args.start..i.args.start + 2), Some(5..7));
        assert_eq!(i.text.span(i.args.start + 2..i.args.end), Some(9..11));
    }
}
