//! `stablebuild history [FILTER]`: every pin and evict the store has seen, oldest first —
//! time, action, reference, digest and origin — as a table or JSON.

use std::process::ExitCode;

use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::{Backend, Need, backend, print_json};
use crate::cli::HistoryArgs;
use crate::config::Config;
use crate::ops::{self, HistoryEntry};

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "TIME")]
    time: String,
    #[tabled(rename = "ACTION")]
    action: String,
    #[tabled(rename = "IMAGE")]
    image: String,
    #[tabled(rename = "DIGEST")]
    digest: String,
    #[tabled(rename = "ORIGIN")]
    origin: String,
}

pub async fn run(config: &Config, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let filter = args.filter.as_deref();
    let entries = match backend(config, Need::Read).await? {
        Backend::Local(store) => ops::history(&store, filter)?,
        Backend::Remote(remote) => remote.history(filter).await?,
        Backend::Shared { shared, .. } => ops::shared_history(&shared, filter).await?,
    };
    if config.json {
        print_json(&entries);
    } else {
        let mut table = Table::new(entries.iter().map(row));
        table.with(Style::blank());
        println!("{table}");
    }
    if entries.is_empty() {
        match filter {
            Some(f) => eprintln!("no pin or evict of a reference matching {f:?}"),
            None => eprintln!("nothing has been pinned or evicted in this store"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(e: &HistoryEntry) -> Row {
    Row {
        time: e.time.clone(),
        action: e.action.clone(),
        image: e.reference.clone(),
        digest: e.digest.get(..19).unwrap_or(&e.digest).to_string(),
        origin: e
            .origin
            .as_ref()
            .map_or_else(|| "-".to_string(), |o| o.to_string()),
    }
}
