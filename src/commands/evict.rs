//! `stablebuild evict IMAGE...`: drop tag records so the next pin fetches the tags again.
//! Evicting something not pinned is not an error (scripts can evict then pin); the output
//! says it was not pinned.

use std::process::ExitCode;

use serde::Serialize;

use super::{open_store, parse_refs, print_json};
use crate::cli::EvictArgs;
use crate::config::Config;

#[derive(Serialize)]
struct Evicted {
    reference: String,
    /// The digest it was pinned at; None when it was not pinned.
    digest: Option<String>,
}

pub fn run(config: &Config, args: EvictArgs) -> anyhow::Result<ExitCode> {
    let refs = parse_refs(&args.images)?;
    let store = open_store(config)?;
    let mut out = Vec::new();
    for r in &refs {
        let old = store.evict(&r.key())?;
        out.push(Evicted {
            reference: r.key(),
            digest: old.map(|o| o.digest.to_string()),
        });
    }
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
