//! `stablebuild gc [--dry-run] [--grace D]`: remove blobs no tag or pending pin reaches (on a
//! shared store, only those older than the grace period, and stale multipart uploads).

use std::process::ExitCode;

use super::{Backend, Need, backend, count, human_size, print_json, snapshotter};
use crate::cli::GcArgs;
use crate::config::Config;
use crate::ops;

pub async fn run(config: &Config, args: GcArgs) -> anyhow::Result<ExitCode> {
    let need = match args.dry_run {
        true => Need::Read,
        false => Need::Write { create: false },
    };
    let report = match backend(config, need).await? {
        Backend::Local(store) => ops::gc(&snapshotter(config, store, 1)?, args.dry_run).await?,
        Backend::Shared { shared, .. } => {
            ops::shared::gc(&shared, args.dry_run, args.grace.as_secs()).await?
        }
        Backend::Remote(remote) => remote.gc(args.dry_run, args.grace.as_secs()).await?,
    };
    if config.json {
        print_json(&report);
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        println!(
            "{verb} {} ({}); kept {}",
            count(report.removed.len(), "blob", "blobs"),
            human_size(report.freed_bytes),
            report.kept
        );
    }
    Ok(ExitCode::SUCCESS)
}
