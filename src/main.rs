//! The `stablebuild` binary: parse, set up logging, dispatch, map errors to exit codes
//! (0 success, 1 failure, 2 usage). No logic here.

use std::process::ExitCode;

use stablebuild::commands::{self, UsageError};
use stablebuild::settings::{self, SettingsError};

fn main() -> ExitCode {
    stablebuild::malloc::tune();
    forget_empty_env();
    let (cli, settings) = match settings::load(std::env::args_os().collect()) {
        Ok(loaded) => loaded,
        Err(SettingsError::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The server logs one line per request by default; the other commands only warnings.
    let serving = matches!(cli.command, stablebuild::cli::Command::Serve(_));
    stablebuild::logging::init(cli.global.verbose + u8::from(serving));
    // `serve` runs its connections on runtimes of their own (registry/workers.rs).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(commands::run(cli, &settings));
    stablebuild::registry::request_log::flush();
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `STABLEBUILD_STORE=` (empty) means unset, as for most tools, not "a value is required".
fn forget_empty_env() {
    for name in stablebuild::cli::env_names() {
        if std::env::var_os(&name).is_some_and(|v| v.is_empty()) {
            // SAFETY: called first thing in main, before the runtime or any other thread
            // exists, so nothing can read the environment concurrently.
            unsafe { std::env::remove_var(&name) };
        }
    }
}
