//! Instructions → stages and image uses: `FROM`, `COPY --from`, `RUN --mount=from=`, and
//! the `ARG`/`ENV` instructions that give their variables values.
//! Must not touch: text layout (`lex`) or word syntax (`expand`).

use std::ops::Range;

use super::expand::{self, ExpandError, Expanded, is_name_char, is_name_start};
use super::lex::{self, Instruction, Lexer};
use super::scope::{Lookup, Scope, Value};
use super::{ArgDefault, Dockerfile, DockerfileError, ImageUse, Platform, Stage, Target, UseKind};

pub(super) fn walk(text: &str, platform: &Platform) -> Result<Dockerfile, DockerfileError> {
    let mut lexer = Lexer::new(text);
    let mut walker = Walker {
        escape: lexer.escape(),
        global: Scope::global(platform),
        stages: Vec::new(),
        out: Dockerfile::default(),
    };
    lexer.try_for_each(|i| walker.instruction(&i?))?;
    Ok(walker.out)
}

struct Walker {
    escape: char,
    global: Scope,
    /// Each stage's scope so far; the last is the current stage's.
    stages: Vec<Scope>,
    out: Dockerfile,
}

impl Walker {
    fn instruction(&mut self, i: &Instruction) -> Result<(), DockerfileError> {
        match i.keyword.as_str() {
            "FROM" => self.from(i),
            "ARG" => self.arg(i),
            _ if self.stages.is_empty() => Err(DockerfileError::BeforeFrom {
                line: i.line,
                keyword: i.keyword.clone(),
            }),
            "ENV" => self.env(i),
            "COPY" => self.copy(i),
            "RUN" => self.run(i),
            _ => Ok(()),
        }
    }

    /// The current stage's scope, or the global one before the first FROM.
    fn lookup(&self, in_stage: bool) -> Lookup<'_> {
        match self.stages.last().filter(|_| in_stage) {
            Some(scope) => Lookup {
                scope,
                global: Some(&self.global),
            },
            None => Lookup {
                scope: &self.global,
                global: None,
            },
        }
    }

    fn expand(
        &self,
        i: &Instruction,
        word: Range<usize>,
        in_stage: bool,
    ) -> Result<Expanded, DockerfileError> {
        let word = i.str(word);
        expand::expand(word, self.escape, &self.lookup(in_stage))
            .map_err(|e| expand_error(e, i.line, word))
    }

    /// `FROM [--platform=P] IMAGE [AS NAME]`, expanded with the global scope only.
    fn from(&mut self, i: &Instruction) -> Result<(), DockerfileError> {
        let words = i.words(self.escape);
        let (flags, first) = lex::flags(&i.text.text, &words);
        for value in flags.iter().filter(|f| is_flag(i, f, "platform")) {
            if let Some(value) = value.value.clone() {
                self.expand(i, value, false)?;
            }
        }
        let (image, name) = from_args(i, &words[first..])?;
        if let Some(name) = name.as_ref().filter(|n| self.stage_index(n).is_some()) {
            let name = name.clone();
            return Err(DockerfileError::DuplicateStage { line: i.line, name });
        }
        let expanded = self.expand(i, image.clone(), false)?;
        let stages = self.out.stages.len();
        let (target, parent) = self.target(i.str(image.clone()), expanded, stages, false);
        self.push_use(i, UseKind::From, image, target, false);
        let scope = parent.map_or_else(Scope::default, |p| self.stages[p].clone());
        self.stages.push(scope);
        let line = i.line;
        self.out.stages.push(Stage { name, line });
        Ok(())
    }

    /// `COPY [--flags] --from=X ...`, expanded with the stage scope.
    fn copy(&mut self, i: &Instruction) -> Result<(), DockerfileError> {
        let words = i.words(self.escape);
        let (flags, _) = lex::flags(&i.text.text, &words);
        for flag in flags.iter().filter(|f| is_flag(i, f, "from")) {
            if let Some(value) = flag.value.clone() {
                self.stage_use(i, UseKind::CopyFrom, value)?;
            }
        }
        Ok(())
    }

    /// `RUN --mount=type=...,from=X,... ...`, expanded with the stage scope.
    fn run(&mut self, i: &Instruction) -> Result<(), DockerfileError> {
        let words = i.words(self.escape);
        let (flags, _) = lex::flags(&i.text.text, &words);
        for flag in flags.iter().filter(|f| is_flag(i, f, "mount")) {
            let Some(value) = flag.value.clone() else {
                continue;
            };
            for from in mount_from(&i.text.text, value) {
                self.stage_use(i, UseKind::MountFrom, from)?;
            }
        }
        Ok(())
    }

    /// A `--from` inside a stage: an earlier stage by name or index, or an image.
    fn stage_use(
        &mut self,
        i: &Instruction,
        kind: UseKind,
        word: Range<usize>,
    ) -> Result<(), DockerfileError> {
        let expanded = self.expand(i, word.clone(), true)?;
        let current = self.out.stages.len() - 1;
        let (target, _) = self.target(i.str(word.clone()), expanded, current, true);
        self.push_use(i, kind, word, target, true);
        Ok(())
    }

    /// What an expanded word names, given the `earlier` stages before this use; and the
    /// index of the stage it names.
    fn target(
        &self,
        raw: &str,
        expanded: Expanded,
        earlier: usize,
        by_index: bool,
    ) -> (Target, Option<usize>) {
        let value = match expanded {
            Expanded::Known(value) => value,
            Expanded::Unknown(why) => return (Target::Unresolved(why), None),
        };
        if value.is_empty() {
            let why = format!("{raw} expands to an empty string");
            return (Target::Unresolved(why), None);
        }
        let by_name = self.stage_index(&value).filter(|&n| n < earlier);
        let by_number = by_index && value.bytes().all(|b| b.is_ascii_digit());
        let by_number = value
            .parse::<usize>()
            .ok()
            .filter(|&n| by_number && n < earlier);
        if let Some(n) = by_name {
            (Target::Stage(value.to_ascii_lowercase()), Some(n))
        } else if let Some(n) = by_number {
            (Target::Stage(n.to_string()), Some(n))
        } else if value.eq_ignore_ascii_case("scratch") {
            (Target::Scratch, None)
        } else {
            (Target::Image(value), None)
        }
    }

    fn stage_index(&self, name: &str) -> Option<usize> {
        let named = |s: &Stage| {
            s.name
                .as_ref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        };
        self.out.stages.iter().position(named)
    }

    fn push_use(
        &mut self,
        i: &Instruction,
        kind: UseKind,
        word: Range<usize>,
        target: Target,
        in_stage: bool,
    ) {
        let raw = i.str(word.clone()).to_owned();
        let lookup = self.lookup(in_stage);
        let arg = single_variable(&raw).and_then(|name| lookup.scope.arg_default(name));
        self.out.uses.push(ImageUse {
            line: i.line,
            kind,
            span: i.text.span(word),
            raw,
            target,
            arg,
        });
    }

    /// `ARG NAME[=default] ...`, each value expanded with the ARGs before it.
    fn arg(&mut self, i: &Instruction) -> Result<(), DockerfileError> {
        let in_stage = !self.stages.is_empty();
        for (name, value) in name_values(i, &i.words(self.escape), "ARG")? {
            let name = i.str(name).to_owned();
            let expanded = match value.clone() {
                Some(word) => Some(self.expand(i, word, in_stage)?),
                None => None,
            };
            let expanded = expanded.map(|e| value_of(e, &name, i.line));
            match self.stages.last_mut() {
                Some(scope) => scope.stage_arg(&name, expanded, &self.global),
                None => {
                    let value_span = value
                        .and_then(|v| i.text.span(inside_quotes(&i.text.text, v, &['"', '\''])));
                    let line = i.line;
                    let decl = ArgDefault {
                        name,
                        line,
                        value_span,
                    };
                    self.global.global_arg(decl, expanded);
                }
            }
        }
        Ok(())
    }

    /// `ENV K=V ...` or the legacy `ENV K V`; all values are expanded with the scope from
    /// before the instruction (as Docker documents: `ENV abc=bye def=$abc` takes the old abc).
    fn env(&mut self, i: &Instruction) -> Result<(), DockerfileError> {
        let words = i.words(self.escape);
        let pairs = match words.first() {
            Some(key) if !i.str(key.clone()).contains('=') => match words.get(1) {
                Some(value) => vec![(key.clone(), Some(value.start..i.args.end))],
                None => vec![(key.clone(), None)],
            },
            _ => name_values(i, &words, "ENV")?,
        };
        let mut values = Vec::new();
        for (name, value) in pairs {
            let Some(value) = value else {
                return Err(name_value(i, "ENV", name));
            };
            let name = i.str(name);
            let expanded = self.expand(i, value, true)?;
            values.push((name, value_of(expanded, name, i.line)));
        }
        let scope = self.stages.last_mut().expect("ENV comes after a FROM");
        for (name, value) in values {
            scope.env(name, value);
        }
        Ok(())
    }
}

/// `IMAGE [AS NAME]`: the image word and the stage name, lowercased.
fn from_args(
    i: &Instruction,
    words: &[Range<usize>],
) -> Result<(Range<usize>, Option<String>), DockerfileError> {
    match words {
        [] => Err(DockerfileError::MissingImage { line: i.line }),
        [image] => Ok((image.clone(), None)),
        [image, as_, name] if i.str(as_.clone()).eq_ignore_ascii_case("as") => {
            let name = i.str(name.clone()).to_ascii_lowercase();
            Ok((image.clone(), Some(name)))
        }
        _ => {
            let args = i.str(i.args.clone()).to_owned();
            Err(DockerfileError::FromSyntax { line: i.line, args })
        }
    }
}

/// A `NAME[=value]` word as (name, value) ranges.
type NameValue = (Range<usize>, Option<Range<usize>>);

/// `NAME[=value]` words as (name, value) ranges.
fn name_values(
    i: &Instruction,
    words: &[Range<usize>],
    keyword: &str,
) -> Result<Vec<NameValue>, DockerfileError> {
    if words.is_empty() {
        let keyword = keyword.to_owned();
        return Err(DockerfileError::MissingArguments {
            line: i.line,
            keyword,
        });
    }
    let pair = |w: &Range<usize>| match i.str(w.clone()).find('=') {
        Some(0) => Err(name_value(i, keyword, w.clone())),
        Some(eq) => Ok((w.start..w.start + eq, Some(w.start + eq + 1..w.end))),
        None => Ok((w.clone(), None)),
    };
    words.iter().map(pair).collect()
}

fn name_value(i: &Instruction, keyword: &str, word: Range<usize>) -> DockerfileError {
    DockerfileError::NameValue {
        line: i.line,
        keyword: keyword.to_owned(),
        word: i.str(word).to_owned(),
    }
}

/// An ARG or ENV value as the scope keeps it.
fn value_of(expanded: Expanded, name: &str, line: usize) -> Value {
    match expanded {
        Expanded::Known(value) => Value::Known(value),
        Expanded::Unknown(why) => {
            Value::Unknown(format!("{name} on line {line} has no known value: {why}"))
        }
    }
}

/// `word` without the quotes around all of it, if it is one string quoted with one of
/// `quotes`.
fn inside_quotes(text: &str, word: Range<usize>, quotes: &[char]) -> Range<usize> {
    let w = &text[word.clone()];
    let quoted = w.len() >= 2 && w.starts_with(quotes) && w.ends_with(&w[..1]);
    match quoted {
        true => word.start + 1..word.end - 1,
        false => word,
    }
}

/// The `from=` values of a `--mount` flag's comma-separated `key=value` fields (the whole
/// value may be quoted; a field may be double-quoted, CSV style).
fn mount_from(text: &str, value: Range<usize>) -> Vec<Range<usize>> {
    let value = inside_quotes(text, value, &['"', '\'']);
    let mut fields = Vec::new();
    let (mut start, mut quoted) = (value.start, false);
    for (at, c) in text[value.clone()].char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                fields.push(start..value.start + at);
                start = value.start + at + 1;
            }
            _ => {}
        }
    }
    fields.push(start..value.end);
    fields
        .into_iter()
        .map(|f| inside_quotes(text, f, &['"']))
        .filter_map(|f| {
            let eq = text[f.clone()].find('=')?;
            let key = text[f.start..f.start + eq].trim();
            key.eq_ignore_ascii_case("from")
                .then_some(f.start + eq + 1..f.end)
        })
        .collect()
}

fn is_flag(i: &Instruction, flag: &lex::Flag, name: &str) -> bool {
    i.str(flag.name.clone()).eq_ignore_ascii_case(name)
}

fn expand_error(error: ExpandError, line: usize, word: &str) -> DockerfileError {
    let word = word.to_owned();
    match error {
        ExpandError::UnterminatedBrace => DockerfileError::UnterminatedBrace { line, word },
        ExpandError::UnterminatedQuote(quote) => {
            DockerfileError::UnterminatedQuote { line, quote, word }
        }
        ExpandError::BadSubstitution(text) => DockerfileError::BadSubstitution { line, text, word },
    }
}

/// The name of the one variable `raw` is (`$X`, `${X}`, either inside double quotes).
fn single_variable(raw: &str) -> Option<&str> {
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let var = inner.strip_prefix('$')?;
    let name = match var.strip_prefix('{') {
        Some(braced) => braced.strip_suffix('}')?,
        None => var,
    };
    let valid = name.starts_with(is_name_start) && name.chars().all(is_name_char);
    valid.then_some(name)
}
