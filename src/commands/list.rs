//! `stablebuild list [FILTER]`: what is pinned, as a table or JSON. Pins that were started
//! and not finished show as incomplete.

use std::process::ExitCode;

use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::{Need, backend, human_size, print_json};
use crate::cli::ListArgs;
use crate::config::Config;
use crate::ops::ListEntry;

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "IMAGE")]
    image: String,
    #[tabled(rename = "DIGEST")]
    digest: String,
    #[tabled(rename = "PLATFORMS")]
    platforms: String,
    #[tabled(rename = "SIZE")]
    size: String,
    #[tabled(rename = "PINNED AT")]
    pinned_at: String,
    #[tabled(rename = "COMPLETE")]
    complete: String,
}

pub async fn run(config: &Config, args: ListArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.as_deref();
    let entries = backend(config, Need::Read).await?.list(filter).await?;
    if config.json {
        print_json(&entries);
    } else {
        // The header even when nothing is pinned: scripts and eyes see the same columns.
        let mut table = Table::new(entries.iter().map(row));
        table.with(Style::blank());
        println!("{table}");
    }
    if let (true, Some(f)) = (entries.is_empty(), filter) {
        eprintln!("no pinned image matches {f:?}");
    }
    Ok(ExitCode::SUCCESS)
}

fn row(e: &ListEntry) -> Row {
    let short = e.digest.get(..19).unwrap_or(&e.digest).to_string();
    Row {
        image: e.image.clone(),
        digest: short,
        platforms: if e.platforms.is_empty() {
            "-".into()
        } else {
            e.platforms.join(",")
        },
        size: if e.complete {
            human_size(e.size)
        } else {
            "-".into()
        },
        pinned_at: e.pinned_at.clone().unwrap_or_else(|| "-".into()),
        complete: match (e.complete, e.pinned_at.is_some()) {
            (true, _) => "yes".into(),
            (false, true) => format!("no ({} missing)", e.missing_blobs),
            (false, false) => "no (interrupted)".into(),
        },
    }
}
