//! Pushes every fixture image (see `fixtures/README.md`) to a registry, for benchmarks and
//! manual tests: `cargo run --release --example load_fixtures -- http://127.0.0.1:PORT
//! [--big-size BYTES]`. Prints one line per image: `repo:tag digest total_size`.

#[allow(dead_code)]
#[path = "../tests/common/fixtures.rs"]
mod fixtures;

use std::process::ExitCode;

const USAGE: &str = "usage: load_fixtures REGISTRY_URL [--big-size BYTES]";

/// (registry URL, big image file size) from the command line.
fn parse_args() -> Result<(String, u64), String> {
    let mut url = None;
    let mut big_size = fixtures::DEFAULT_BIG_SIZE;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--big-size" => {
                let value = args.next().ok_or("--big-size needs a value")?;
                big_size = value
                    .parse()
                    .map_err(|e| format!("--big-size {value}: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}\n{USAGE}")),
        }
    }
    let url = url.ok_or(USAGE)?;
    Ok((url.trim_end_matches('/').to_string(), big_size))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (url, big_size) = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    for pushed in fixtures::push_all_sized(&url, big_size).await {
        println!(
            "{}:{} {} {}",
            pushed.repo, pushed.tag, pushed.digest, pushed.total_size
        );
    }
    ExitCode::SUCCESS
}
