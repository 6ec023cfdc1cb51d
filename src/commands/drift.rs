//! `stablebuild drift [FILTER] [--exit-code]`: one line per pinned tag — `same`, `moved`
//! (pinned → current digest), `gone` (404 upstream) or `error` (the cause) — then the counts;
//! or one JSON document. HEAD requests only; the store is never changed. Exit 0 whatever
//! drifted, unless `--exit-code`: then 1 when anything moved, is gone or could not be
//! checked (an unknown state is not a clean bill).

use std::process::ExitCode;

use super::{Backend, Need, backend, print_json, upstreams};
use crate::cli::DriftArgs;
use crate::config::Config;
use crate::ops::{self, DriftEntry, DriftReport, DriftState};

pub async fn run(config: &Config, args: DriftArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.as_deref();
    let report = match backend(config, Need::Read).await? {
        Backend::Local(store) => ops::drift(&store, &*upstreams(config)?, filter).await?,
        Backend::Remote(remote) => remote.drift(filter).await?,
        Backend::Shared { shared, .. } => {
            ops::shared_drift(&shared, &*upstreams(config)?, filter).await?
        }
    };
    if config.json {
        print_json(&report);
    } else {
        report.entries.iter().for_each(print_line);
        println!("{}", summary(&report));
    }
    if let (true, Some(f)) = (report.entries.is_empty(), filter) {
        eprintln!("no tag pinned by tag matches {f:?}");
    }
    Ok(match args.exit_code && report.drifted() {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    })
}

fn print_line(e: &DriftEntry) {
    let detail = match (e.state, &e.current, &e.error) {
        (DriftState::Moved, Some(current), _) => format!("{} → {current}", e.pinned),
        (DriftState::Error, _, Some(error)) => error.clone(),
        _ => e.pinned.clone(),
    };
    println!("{:<5}  {}  {detail}", e.state.as_str(), e.reference);
}

/// "3 same, 1 moved, 1 gone, 0 errors"
fn summary(report: &DriftReport) -> String {
    format!(
        "{} same, {} moved, {} gone, {}",
        report.count(DriftState::Same),
        report.count(DriftState::Moved),
        report.count(DriftState::Gone),
        super::count(report.count(DriftState::Error), "error", "errors")
    )
}
