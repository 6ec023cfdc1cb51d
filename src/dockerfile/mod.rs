//! Dockerfiles (and Containerfiles): every image a build uses, found the way BuildKit finds
//! it.
//!
//! Owns: reading Dockerfile text into its stages and the images its `FROM`, `COPY --from`
//! and `RUN --mount=...,from=` name, with build-time variables resolved by BuildKit's rules
//! (parser directives, line continuations, heredocs, `$VAR` / `${VAR:-word}` expansion,
//! global and stage `ARG` scopes, `ENV`, the automatic platform ARGs), and where each
//! reference and global ARG default sits in the original text (byte spans), so a rewriter
//! can replace it in place.
//! Pure: no files, no network.
//! Must not touch: the file system or the network (the caller reads the file), validating
//! references (`crate::reference` does, on `Target::Image`), or deciding what an
//! unresolvable use means (the caller does).
//!
//! Layout: `lex` (text → logical instructions), `expand` (one word's variables), `scope`
//! (which variables hold what, where), `walk` (instructions → stages and image uses).

mod expand;
mod lex;
mod scope;
mod walk;

#[cfg(test)]
mod tests;

use std::ops::Range;

pub use crate::platform::Platform;

/// What a Dockerfile builds from: its image uses in order of appearance, and its stages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dockerfile {
    pub uses: Vec<ImageUse>,
    pub stages: Vec<Stage>,
}

/// A build stage, started by a `FROM`. Its index in `Dockerfile::stages` is its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    /// 1-based line of its `FROM`.
    pub line: usize,
}

/// One place the build names an image (or a stage, or scratch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// 1-based physical line where the instruction starts.
    pub line: usize,
    pub kind: UseKind,
    /// The word exactly as written (continuations joined), e.g. `tiny:${VER}`.
    pub raw: String,
    /// Byte range of `raw` in the input; `None` if a line continuation splits it.
    pub span: Option<Range<usize>>,
    pub target: Target,
    /// When `raw` is exactly one variable (`$X` or `${X}`, optionally inside double quotes)
    /// whose value is the default of a *global* ARG (one before the first FROM): that ARG,
    /// so a rewriter can change its default instead.
    pub arg: Option<ArgDefault>,
}

/// A global `ARG NAME=default` declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDefault {
    pub name: String,
    /// 1-based line of the `ARG` instruction.
    pub line: usize,
    /// Byte range of the default as written, surrounding quotes excluded; `None` if a line
    /// continuation splits it.
    pub value_span: Option<Range<usize>>,
}

/// Which instruction names the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseKind {
    /// `FROM image`.
    From,
    /// `COPY --from=image`.
    CopyFrom,
    /// `RUN --mount=...,from=image`.
    MountFrom,
}

/// What a use refers to once its variables are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The expanded image reference, not validated (the caller parses it).
    Image(String),
    /// An earlier build stage: its name (lowercased) or its index (`"0"`).
    Stage(String),
    /// The empty image.
    Scratch,
    /// The reference cannot be known without build arguments; why, and how to fix it.
    Unresolved(String),
}

/// Text that is not a Dockerfile. Unresolvable variables are not errors (they are
/// `Target::Unresolved`); these are. Each names the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerfileError {
    #[error("line {line}: heredoc <<{terminator} is never closed by a line {terminator:?}")]
    UnterminatedHeredoc { line: usize, terminator: String },
    #[error("line {line}: FROM names no image")]
    MissingImage { line: usize },
    #[error("line {line}: FROM takes an image and an optional `AS name`, not {args:?}")]
    FromSyntax { line: usize, args: String },
    #[error("line {line}: {keyword} needs at least one argument")]
    MissingArguments { line: usize, keyword: String },
    #[error("line {line}: {keyword} expects name=value, not {word:?}")]
    NameValue {
        line: usize,
        keyword: String,
        word: String,
    },
    #[error("line {line}: unterminated ${{ in {word:?}")]
    UnterminatedBrace { line: usize, word: String },
    #[error("line {line}: unterminated {quote} quote in {word:?}")]
    UnterminatedQuote {
        line: usize,
        quote: char,
        word: String,
    },
    #[error("line {line}: bad substitution {text:?} in {word:?}")]
    BadSubstitution {
        line: usize,
        text: String,
        word: String,
    },
    #[error("line {line}: the escape directive takes \\ or `, not {value:?}")]
    BadEscape { line: usize, value: String },
    #[error("line {line}: the {name} directive appears twice")]
    RepeatedDirective { line: usize, name: String },
    #[error("line {line}: an earlier stage is already named {name:?}")]
    DuplicateStage { line: usize, name: String },
    #[error("line {line}: {keyword} before the first FROM (only ARG may come before it)")]
    BeforeFrom { line: usize, keyword: String },
}

impl DockerfileError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> usize {
        match self {
            Self::UnterminatedHeredoc { line, .. }
            | Self::MissingImage { line }
            | Self::FromSyntax { line, .. }
            | Self::MissingArguments { line, .. }
            | Self::NameValue { line, .. }
            | Self::UnterminatedBrace { line, .. }
            | Self::UnterminatedQuote { line, .. }
            | Self::BadSubstitution { line, .. }
            | Self::BadEscape { line, .. }
            | Self::RepeatedDirective { line, .. }
            | Self::DuplicateStage { line, .. }
            | Self::BeforeFrom { line, .. } => *line,
        }
    }
}

/// The stages and image uses of a Dockerfile, with variables expanded for `platform`.
pub fn parse(text: &str, platform: &Platform) -> Result<Dockerfile, DockerfileError> {
    walk::walk(text, platform)
}

/// True when some instruction's keyword is `FROM` (comments, directives, continuations and
/// heredoc bodies handled): a Dockerfile rather than a plain list of references.
pub fn looks_like_dockerfile(text: &str) -> bool {
    lex::Lexer::new(text).any(|i| matches!(i, Ok(i) if i.keyword == "FROM"))
}
