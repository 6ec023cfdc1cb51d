//! `stablebuild evict IMAGE...`: drop tag records so the next pin fetches the tags again.
//! Evicting something not pinned is not an error (scripts can evict then pin); the output
//! says it was not pinned. On a shared store the bucket's record goes (every replica stops
//! serving it within its refresh interval).

use std::process::ExitCode;

use super::{Backend, Need, backend, parse_refs, print_json};
use crate::cli::EvictArgs;
use crate::config::Config;
use crate::ops;

pub async fn run(config: &Config, args: EvictArgs) -> anyhow::Result<ExitCode> {
    let refs = parse_refs(&args.images)?;
    let out = match backend(config, Need::Write { create: false }).await? {
        Backend::Remote(remote) => remote.evict(&args.images).await?,
        here => ops::evict(&here.snapshotter(config, 1)?, &refs, &super::cli_origin()).await?,
    };
    if config.json {
        print_json(&out);
        return Ok(ExitCode::SUCCESS);
    }
    for e in &out {
        match &e.digest {
            Some(d) => println!("{}  {d}  evicted", e.reference),
            None => println!("{}  -  not pinned", e.reference),
        }
    }
    Ok(ExitCode::SUCCESS)
}
