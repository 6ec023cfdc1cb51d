//! The config file (`--config FILE` / `STABLEBUILD_CONFIG`, TOML) and where each setting
//! came from. Its keys are the long flags of `serve` and the global flags, found by looking
//! at the clap command, so a new flag is a new key with no change here. A value from the
//! file becomes its flag's default before the command line is parsed again, so clap's own
//! order holds: flags > environment > file > built-in defaults.
//! Must not touch: the store, the network, or what a setting means (that is `config.rs`
//! and the commands).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use toml::de::{DeTable, DeValue};

use crate::cli::Cli;

/// The subcommand whose flags a file may set besides the global ones.
const SERVE: &str = "serve";
/// The global flag naming the file: a setting, but not one a file may hold.
const CONFIG: &str = "config";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The command line itself is wrong (or asks for --help): clap says so.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error("config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {} line {line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "config {} line {line}: unknown key {key:?} (keys are the long flags of serve and \
         the global flags: {})",
        path.display(),
        keys.join(", ")
    )]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
        keys: Vec<String>,
    },
    #[error("config {} line {line}: {key}: {message}", path.display())]
    Value {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    /// Each value was fine alone, yet the command line with them was not.
    #[error("config {}: {message}", path.display())]
    Rejected { path: PathBuf, message: String },
}

/// Which command a setting is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Serve,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(String),
    File { path: PathBuf, line: usize },
    Default,
    Unset,
}

/// A setting's effective value, as the user would write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Unset,
    /// A secret that is set; its value is never shown.
    Secret,
    Flag(bool),
    Count(u8),
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The long flag, which is also the file's key.
    pub key: String,
    pub scope: Scope,
    pub value: Value,
    pub source: Source,
}

/// The parsed command line with the file merged in, and what is needed to say where each
/// setting came from.
#[derive(Debug)]
pub struct Settings {
    /// The command as defined, whose order of flags the report keeps.
    defined: Command,
    /// The command with the file's values as defaults.
    command: Command,
    matches: ArgMatches,
    file: Option<File>,
}

/// The file that was read: its path, and the line of each key it set.
#[derive(Debug)]
struct File {
    path: PathBuf,
    lines: BTreeMap<String, usize>,
}

/// Parse `argv` (program name first) with the config file merged in.
pub fn load(argv: Vec<OsString>) -> Result<(Cli, Settings), SettingsError> {
    let settings = load_with(crate::cli::command(), argv)?;
    Ok((Cli::from_arg_matches(&settings.matches)?, settings))
}

fn load_with(command: Command, argv: Vec<OsString>) -> Result<Settings, SettingsError> {
    let first = command.clone().try_get_matches_from(&argv)?;
    let Some(path) = first.get_one::<PathBuf>(CONFIG).cloned() else {
        return Ok(Settings {
            defined: command.clone(),
            command,
            matches: first,
            file: None,
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| SettingsError::Read {
        path: path.clone(),
        source,
    })?;
    let (merged, lines) = merge(command.clone(), &path, &text)?;
    let matches =
        merged
            .clone()
            .try_get_matches_from(&argv)
            .map_err(|e| SettingsError::Rejected {
                path: path.clone(),
                message: first_line(&e),
            })?;
    Ok(Settings {
        defined: command,
        command: merged,
        matches,
        file: Some(File { path, lines }),
    })
}

/// `command` with each of the file's values as its flag's default, and each key's line.
fn merge(
    mut command: Command,
    path: &Path,
    text: &str,
) -> Result<(Command, BTreeMap<String, usize>), SettingsError> {
    let table = DeTable::parse(text).map_err(|e| SettingsError::Syntax {
        path: path.to_path_buf(),
        line: line_of(text, e.span().map_or(0, |s| s.start)),
        message: e.message().trim().to_string(),
    })?;
    let mut entries: Vec<_> = table.get_ref().iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut lines = BTreeMap::new();
    for (key, value) in entries {
        let line = line_of(text, key.span().start);
        let key = key.get_ref().to_string();
        let Some((scope, arg)) = find_key(&command, &key) else {
            let keys = file_keys(&command)
                .map(|(_, a)| long(a).to_string())
                .collect();
            return Err(SettingsError::UnknownKey {
                path: path.to_path_buf(),
                line,
                key,
                keys,
            });
        };
        let values =
            file_values(&arg, value.get_ref()).map_err(|message| SettingsError::Value {
                path: path.to_path_buf(),
                line,
                key: key.clone(),
                message,
            })?;
        command = set_default(command, scope, &arg, values);
        lines.insert(key, line);
    }
    Ok((command, lines))
}

/// Every setting: the global flags, then `serve`'s, each by its long name.
fn setting_args(command: &Command) -> impl Iterator<Item = (Scope, &Arg)> {
    let globals = command.get_arguments().map(|a| (Scope::Global, a));
    let serve = command
        .find_subcommand(SERVE)
        .into_iter()
        .flat_map(|s| s.get_arguments())
        .map(|a| (Scope::Serve, a));
    globals.chain(serve).filter(|(_, a)| {
        a.get_long().is_some()
            && matches!(
                a.get_action(),
                ArgAction::Set
                    | ArgAction::Append
                    | ArgAction::SetTrue
                    | ArgAction::SetFalse
                    | ArgAction::Count
            )
    })
}

/// The settings a file may hold: all but the one naming the file.
fn file_keys(command: &Command) -> impl Iterator<Item = (Scope, &Arg)> {
    setting_args(command).filter(|(_, a)| a.get_id() != CONFIG)
}

fn find_key(command: &Command, key: &str) -> Option<(Scope, Arg)> {
    file_keys(command)
        .find(|(_, a)| a.get_long() == Some(key))
        .map(|(scope, a)| (scope, a.clone()))
}

fn long(arg: &Arg) -> &str {
    arg.get_long().unwrap_or_default()
}

/// The file's value as the flag's values (the words after `--key=`), checked by the flag's
/// own parser; the message says what is wrong with it.
fn file_values(arg: &Arg, value: &DeValue) -> Result<Vec<String>, String> {
    let values = match (arg.get_action(), value) {
        (ArgAction::SetTrue | ArgAction::SetFalse, DeValue::Boolean(b)) => vec![b.to_string()],
        (ArgAction::SetTrue | ArgAction::SetFalse, other) => {
            return Err(format!("expected true or false, found {}", kind(other)));
        }
        (ArgAction::Count, DeValue::Integer(i)) => {
            match u8::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => vec![n.to_string()],
                Err(_) => return Err(format!("expected a count from 0 to 255, found {i}")),
            }
        }
        (ArgAction::Count, other) => {
            return Err(format!("expected a count such as 2, found {}", kind(other)));
        }
        (ArgAction::Append, DeValue::Array(items)) => items
            .iter()
            .map(|v| scalar(v.get_ref()))
            .collect::<Result<_, _>>()?,
        (_, other) => vec![scalar(other)?],
    };
    if matches!(arg.get_action(), ArgAction::Set | ArgAction::Append) {
        check(arg, &values)?;
    }
    Ok(values)
}

/// A string or a number as the text a flag would be given.
fn scalar(value: &DeValue) -> Result<String, String> {
    match value {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .map(|n| n.to_string())
            .map_err(|_| format!("{i} is too large")),
        DeValue::Float(f) => Ok(f.as_str().to_string()),
        other => Err(format!(
            "expected a string or a number, found {}",
            kind(other)
        )),
    }
}

fn kind(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Parse `values` as `--key=VALUE` alone, with the flag's value parser: the error names the
/// file's key, not a flag the user never typed.
fn check(arg: &Arg, values: &[String]) -> Result<(), String> {
    let mut probe = Arg::new(arg.get_id().clone())
        .long(long(arg).to_string())
        .action(arg.get_action().clone())
        .value_parser(arg.get_value_parser().clone());
    if let Some(n) = arg.get_num_args() {
        probe = probe.num_args(n);
    }
    if let Some(d) = arg.get_value_delimiter() {
        probe = probe.value_delimiter(d);
    }
    let command = Command::new(CONFIG).no_binary_name(true).arg(probe);
    for value in values {
        let word = format!("--{}={value}", long(arg));
        if let Err(e) = command.clone().try_get_matches_from([word]) {
            return Err(format!("{value:?}: {}", reason(&e)));
        }
    }
    Ok(())
}

/// What a value parser said, without clap's framing about a flag.
fn reason(e: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    match e.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) => format!("expected one of {}", valid.join(", ")),
        _ => first_line(e),
    }
}

fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.trim_start_matches("error: ").to_string()
}

fn set_default(command: Command, scope: Scope, arg: &Arg, values: Vec<String>) -> Command {
    let id = arg.get_id().clone();
    // Never shown in --help, where a secret from the file would be printed.
    let set = |a: Arg| a.default_values(values).hide_default_value(true);
    match scope {
        Scope::Global => command.mut_arg(id, set),
        Scope::Serve => command.mut_subcommand(SERVE, |s| s.mut_arg(id, set)),
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Settings {
    /// Every global and `serve` setting with its effective value and where it came from.
    /// `serve`'s are as `serve` would see them when run now (environment, file, defaults).
    pub fn report(&self) -> Result<Vec<Setting>, clap::Error> {
        let serve = match self.matches.subcommand_matches(SERVE) {
            Some(m) => m.clone(),
            None => match self.command.find_subcommand(SERVE) {
                Some(s) => s.clone().try_get_matches_from([SERVE])?,
                None => ArgMatches::default(),
            },
        };
        let settings = setting_args(&self.defined).map(|(scope, arg)| {
            let matches = match scope {
                Scope::Global => &self.matches,
                Scope::Serve => &serve,
            };
            self.setting(scope, arg, matches)
        });
        Ok(settings.collect())
    }

    fn setting(&self, scope: Scope, arg: &Arg, matches: &ArgMatches) -> Setting {
        let id = arg.get_id().as_str();
        let key = long(arg).to_string();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => {
                let name = arg.get_env().unwrap_or_default();
                Source::Env(name.to_string_lossy().into_owned())
            }
            Some(ValueSource::DefaultValue) => match self.file_line(&key) {
                Some((path, line)) => Source::File { path, line },
                None => Source::Default,
            },
            _ => Source::Unset,
        };
        let value = match &source {
            Source::Unset => Value::Unset,
            _ if arg.is_hide_env_values_set() => Value::Secret,
            _ => value(arg, matches),
        };
        Setting {
            key,
            scope,
            value,
            source,
        }
    }

    fn file_line(&self, key: &str) -> Option<(PathBuf, usize)> {
        let file = self.file.as_ref()?;
        let line = *file.lines.get(key)?;
        Some((file.path.clone(), line))
    }
}

fn value(arg: &Arg, matches: &ArgMatches) -> Value {
    let id = arg.get_id().as_str();
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => Value::Flag(matches.get_flag(id)),
        ArgAction::Count => Value::Count(matches.get_count(id)),
        action => {
            let raw = matches.get_raw(id).into_iter().flatten();
            let mut values: Vec<String> = raw.map(|v| v.to_string_lossy().into_owned()).collect();
            match (action, values.len()) {
                (ArgAction::Append, _) | (_, 2..) => Value::Many(values),
                (_, 0) => Value::Unset,
                _ => Value::One(values.remove(0)),
            }
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => write!(f, "flag"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::File { path, line } => write!(f, "file {}:{line}", path.display()),
            Source::Default => write!(f, "default"),
            Source::Unset => write!(f, "unset"),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Global => "all",
            Scope::Serve => "serve",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command shaped like stablebuild's: global flags, `serve` and another subcommand.
    fn command() -> Command {
        let global = |a: Arg| a.global(true);
        Command::new("sb")
            .arg(global(
                Arg::new(CONFIG)
                    .long(CONFIG)
                    .value_parser(clap::value_parser!(PathBuf)),
            ))
            .arg(global(Arg::new("store").long("store")))
            .arg(global(
                Arg::new("json").long("json").action(ArgAction::SetTrue),
            ))
            .arg(global(
                Arg::new("verbose")
                    .short('v')
                    .long("verbose")
                    .action(ArgAction::Count),
            ))
            .subcommand(
                Command::new(SERVE)
                    .arg(
                        Arg::new("listen")
                            .long("listen")
                            .env("STABLEBUILD_SETTINGS_TEST_LISTEN")
                            .default_value("127.0.0.1:5000")
                            .value_parser(clap::value_parser!(std::net::SocketAddr)),
                    )
                    .arg(Arg::new("allow").long("allow").action(ArgAction::Append))
                    .arg(Arg::new("jobs").long("jobs").default_value("4"))
                    .arg(
                        Arg::new("admin-token")
                            .long("admin-token")
                            .hide_env_values(true),
                    ),
            )
            .subcommand(Command::new("pin").arg(Arg::new("image")))
    }

    /// `load_with` on a file holding `text`, with `args` after the program name; the path
    /// the file had (it is gone once read).
    fn load_file(text: &str, args: &[&str]) -> (Result<Settings, SettingsError>, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sb.toml");
        std::fs::write(&path, text).unwrap();
        let mut argv = vec![
            "sb".into(),
            "--config".into(),
            path.clone().into_os_string(),
        ];
        argv.extend(args.iter().map(OsString::from));
        (load_with(command(), argv), path)
    }

    fn sources(settings: &Settings) -> BTreeMap<String, (Value, Source)> {
        let report = settings.report().unwrap();
        report
            .into_iter()
            .map(|s| (s.key, (s.value, s.source)))
            .collect()
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file_which_beats_defaults() {
        let text =
            "store = \"/from/file\"\nlisten = \"127.0.0.1:1\"\n\nallow = [\"a.io\", \"b.io\"]\n";
        // SAFETY: nextest runs each test in a process of its own, and no other test reads
        // this variable.
        unsafe { std::env::set_var("STABLEBUILD_SETTINGS_TEST_LISTEN", "127.0.0.1:2") };
        let (settings, path) = load_file(text, &["serve", "--allow", "c.io"]);
        let settings = settings.unwrap();
        let serve = settings.matches.subcommand_matches(SERVE).unwrap();
        let addr = serve.get_one::<std::net::SocketAddr>("listen").unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:2");
        let allow: Vec<_> = serve.get_many::<String>("allow").unwrap().collect();
        assert_eq!(allow, ["c.io"]);
        let s = sources(&settings);
        let file = |line| Source::File {
            path: path.clone(),
            line,
        };
        assert_eq!(s["store"], (Value::One("/from/file".into()), file(1)));
        let env = Source::Env("STABLEBUILD_SETTINGS_TEST_LISTEN".into());
        assert_eq!(s["listen"], (Value::One("127.0.0.1:2".into()), env));
        assert_eq!(s["allow"], (Value::Many(vec!["c.io".into()]), Source::Flag));
        assert_eq!(s["jobs"], (Value::One("4".into()), Source::Default));
        assert_eq!(s["admin-token"], (Value::Unset, Source::Unset));
        assert_eq!(s["config"].1, Source::Flag);
    }

    #[test]
    fn file_values_fill_in_what_the_command_line_leaves_out() {
        let text = "verbose = 2\njson = true\nadmin-token = \"s3cret\"\nallow = [\"a.io\"]\n";
        let (settings, path) = load_file(text, &["serve"]);
        let settings = settings.unwrap();
        assert_eq!(settings.matches.get_count("verbose"), 2);
        assert!(settings.matches.get_flag("json"));
        let serve = settings.matches.subcommand_matches(SERVE).unwrap();
        assert_eq!(serve.get_one::<String>("admin-token").unwrap(), "s3cret");
        let s = sources(&settings);
        let file = |line| Source::File {
            path: path.clone(),
            line,
        };
        assert_eq!(s["admin-token"], (Value::Secret, file(3)));
        assert_eq!(s["allow"], (Value::Many(vec!["a.io".into()]), file(4)));
        // A flag on the command line wins over the file's count.
        let (settings, _) = load_file(text, &["-v", "pin", "x"]);
        assert_eq!(settings.unwrap().matches.get_count("verbose"), 1);
    }

    #[test]
    fn serve_keys_leave_other_commands_alone_and_global_keys_reach_them() {
        let (settings, _) = load_file("store = \"/s\"\nlisten = \"127.0.0.1:9\"\n", &["pin", "x"]);
        let settings = settings.unwrap();
        assert_eq!(settings.matches.get_one::<String>("store").unwrap(), "/s");
        let (name, pin) = settings.matches.subcommand().unwrap();
        assert_eq!(name, "pin");
        assert_eq!(pin.get_one::<String>("store").unwrap(), "/s");
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line_and_the_keys_there_are() {
        let (err, _) = load_file("# settings\nstore = \"/s\"\n\nlisen = \"x\"\n", &["pin"]);
        match err.unwrap_err() {
            SettingsError::UnknownKey {
                line, key, keys, ..
            } => {
                assert_eq!((line, key.as_str()), (4, "lisen"));
                assert!(keys.contains(&"listen".to_string()), "{keys:?}");
                assert!(keys.contains(&"store".to_string()), "{keys:?}");
                assert!(!keys.iter().any(|k| k == CONFIG || k == "help"), "{keys:?}");
            }
            other => panic!("{other}"),
        }
        let (err, _) = load_file("[serve]\nlisten = \"x\"\n", &["pin"]);
        let message = err.unwrap_err().to_string();
        assert!(
            message.contains("line 1: unknown key \"serve\""),
            "{message}"
        );
    }

    #[test]
    fn wrong_types_and_bad_values_name_the_key_and_line() {
        let cases = [
            (
                "json = \"yes\"",
                "json",
                "expected true or false, found a string",
            ),
            ("verbose = true", "verbose", "expected a count"),
            ("verbose = 300", "verbose", "from 0 to 255"),
            ("store = [\"a\"]", "store", "found an array"),
            ("allow = [\"a\", {}]", "allow", "found a table"),
            ("store = false", "store", "found a boolean"),
            (
                "listen = \"nope\"",
                "listen",
                "\"nope\": invalid socket address",
            ),
        ];
        for (text, key, needle) in cases {
            let (err, path) = load_file(&format!("\n{text}\n"), &["serve"]);
            match err.unwrap_err() {
                SettingsError::Value {
                    line,
                    key: k,
                    message,
                    path: p,
                } => {
                    assert_eq!((line, k.as_str(), &p), (2, key, &path), "{text}");
                    assert!(message.contains(needle), "{text}: {message}");
                }
                other => panic!("{text}: {other}"),
            }
        }
    }

    #[test]
    fn syntax_errors_and_missing_files_are_reported() {
        let (err, _) = load_file("store = \"/s\"\nlisten = \n", &["pin"]);
        match err.unwrap_err() {
            SettingsError::Syntax { line, .. } => assert_eq!(line, 2),
            other => panic!("{other}"),
        }
        let argv = ["sb", "--config", "/nonexistent/sb.toml", "pin"].map(OsString::from);
        let err = load_with(command(), argv.to_vec()).unwrap_err();
        assert!(matches!(err, SettingsError::Read { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/sb.toml"), "{err}");
    }

    #[test]
    fn the_real_command_has_every_long_flag_of_serve_and_the_globals_as_keys() {
        let command = crate::cli::command();
        let keys: Vec<_> = file_keys(&command).map(|(s, a)| (s, long(a))).collect();
        assert!(keys.contains(&(Scope::Global, "store")), "{keys:?}");
        assert!(
            keys.contains(&(Scope::Global, "insecure-registry")),
            "{keys:?}"
        );
        assert!(keys.contains(&(Scope::Serve, "listen")), "{keys:?}");
        assert!(keys.contains(&(Scope::Serve, "admin-token")), "{keys:?}");
        for not in [CONFIG, "help", "version"] {
            assert!(!keys.iter().any(|(_, k)| *k == not), "{not} in {keys:?}");
        }
    }
}
