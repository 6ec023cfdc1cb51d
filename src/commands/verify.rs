//! `stablebuild verify [--repair]`: re-hash every blob; exit 1 when any is corrupt or a
//! pinned tag reaches a blob the store lacks. `--repair` rebuilds the index from the journal
//! (setting aside an index that no longer opens) and removes corrupt blobs, so that `pin`
//! can fetch them again by digest.

use std::process::ExitCode;

use super::{Backend, Need, Opened, backend, count, human_size, open_or_wait, print_json};
use crate::cli::VerifyArgs;
use crate::config::Config;
use crate::ops::{self, VerifyOutcome};
use crate::store::{Contended, Store};

pub async fn run(config: &Config, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // A shared store's repair is the bucket's: `verify` below does it.
    let local = config.server.is_none() && config.shared.is_none();
    let repaired = match args.repair && local {
        true => local_repair(config)?,
        false => None,
    };
    let outcome = match repaired {
        Some(outcome) => outcome,
        None => match backend(config, Need::Read).await? {
            Backend::Local(store) => ops::verify(&store, args.repair)?,
            Backend::Remote(remote) => remote.verify(args.repair).await?,
            Backend::Shared { shared, .. } => ops::shared::verify(&shared, args.repair).await?,
        },
    };
    if config.json {
        print_json(&outcome);
    } else {
        print(&outcome, args.repair);
    }
    Ok(if outcome.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Repair opens the store even when its index does not open; None when a running server
/// holds the store (it repairs its own).
fn local_repair(config: &Config) -> anyhow::Result<Option<VerifyOutcome>> {
    match open_or_wait(config, |c: Contended<'_>| {
        Store::open_for_repair(&config.store, c)
    })? {
        Opened::Store(store) => Ok(Some(ops::verify(&store, true)?)),
        Opened::Server(_) => Ok(None),
    }
}

fn print(outcome: &VerifyOutcome, repair: bool) {
    let report = &outcome.report;
    if let Some(n) = outcome.rebuilt {
        eprintln!(
            "rebuilt the index from {}",
            count(n, "journal entry", "journal entries")
        );
    }
    for d in &report.corrupt {
        let what = if repair { "removed" } else { "found" };
        println!("corrupt  {d}  ({what})");
    }
    for (key, d) in &report.missing {
        println!("missing  {d}  (reached by {key})");
    }
    println!(
        "checked {} ({}): {} corrupt, {} missing",
        count(report.checked, "blob", "blobs"),
        human_size(report.bytes),
        report.corrupt.len(),
        report.missing.len()
    );
    if !report.missing.is_empty() {
        println!("run `stablebuild pin` on the references above to fetch the missing blobs again");
    }
    if let Some(b) = &outcome.journal_break {
        println!(
            "journal broken at line {}: {} (the history was changed after it was written)",
            b.line, b.reason
        );
    }
}
