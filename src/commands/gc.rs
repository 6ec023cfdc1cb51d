//! `stablebuild gc [--dry-run]`: remove blobs no tag or pending pin reaches.

use std::process::ExitCode;

use super::{human_size, open_store, print_json, snapshotter};
use crate::cli::GcArgs;
use crate::config::Config;

pub async fn run(config: &Config, args: GcArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let snap = snapshotter(config, store, 1)?;
    let report = snap.exclusive(|s| s.gc(args.dry_run)).await?;
    if config.json {
        print_json(&report);
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        println!(
            "{verb} {} blobs ({}); kept {}",
            report.removed.len(),
            human_size(report.freed_bytes),
            report.kept
        );
    }
    Ok(ExitCode::SUCCESS)
}
