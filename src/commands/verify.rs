//! `stablebuild verify [--repair]`: re-hash every blob; exit 1 when any is corrupt or a
//! pinned tag reaches a blob the store lacks. `--repair` rebuilds the index from the journal
//! and removes corrupt blobs, so that `pin` can fetch them again by digest.

use std::process::ExitCode;

use anyhow::Context;

use super::{human_size, print_json};
use crate::cli::VerifyArgs;
use crate::config::Config;
use crate::store::Store;

pub fn run(config: &Config, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let dir = &config.store;
    let opened = if args.repair {
        Store::open_for_repair(dir)
    } else {
        Store::open(dir)
    };
    let store = opened.with_context(|| format!("opening the store at {}", dir.display()))?;
    if args.repair {
        let n = store.rebuild_index()?;
        eprintln!("rebuilt the index from {n} journal entries");
    }
    let report = store.verify(args.repair)?;
    if config.json {
        print_json(&report);
    } else {
        for d in &report.corrupt {
            let what = if args.repair { "removed" } else { "found" };
            println!("corrupt  {d}  ({what})");
        }
        for (key, d) in &report.missing {
            println!("missing  {d}  (reached by {key})");
        }
        println!(
            "checked {} blobs ({}): {} corrupt, {} missing",
            report.checked,
            human_size(report.bytes),
            report.corrupt.len(),
            report.missing.len()
        );
        if !report.missing.is_empty() {
            println!("run `stablebuild pin` on the references above to fetch missing blobs again");
        }
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
