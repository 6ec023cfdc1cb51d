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
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if serving {
        // Fair to many connections: a connection woken by the network waits in the worker's
        // local queue (256 tasks), and the oldest half spills into the global queue when it
        // is full. With 1,000 keep-alive connections on one core (bench/scale.sh): interval
        // 31 (tokio's default) gave p99 ~900 ms; 2 gives p99 55-70 ms, latencies spread from
        // 0 to ~90 ms; 1 (the global queue first on every tick) gave p99 20-30 ms at up to
        // 64k requests/s in most runs, but in others some connections waited 2-9 s: the
        // local queue is served only when the global one is empty. The accept loops run
        // outside tokio's budget so that the local queue never holds them (sendfile.rs).
        runtime.global_queue_interval(2);
        // Request lines wait for company under load; a worker with nothing to do writes them.
        runtime.on_thread_park(stablebuild::registry::request_log::flush);
    }
    let runtime = runtime.build().expect("tokio runtime");
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
