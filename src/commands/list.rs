//! `stablebuild list [FILTER]`: what is pinned, as a table or JSON. Pins that were started
//! and not finished show as incomplete.

use std::process::ExitCode;

use serde::Serialize;
use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::{human_size, open_store, print_json, timestamp};
use crate::cli::ListArgs;
use crate::config::Config;
use crate::store::Store;

#[derive(Serialize)]
struct Entry {
    image: String,
    digest: String,
    media_type: String,
    platforms: Vec<String>,
    size: u64,
    pinned_at: Option<String>,
    complete: bool,
    missing_blobs: usize,
}

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

pub fn run(config: &Config, args: ListArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(config)?;
    let mut entries = entries(&store)?;
    if let Some(filter) = &args.filter {
        entries.retain(|e| e.image.contains(filter.as_str()));
    }
    if config.json {
        print_json(&entries);
    } else if !entries.is_empty() {
        let mut table = Table::new(entries.iter().map(row));
        table.with(Style::blank());
        println!("{table}");
    }
    Ok(ExitCode::SUCCESS)
}

fn entries(store: &Store) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for r in store.tags()? {
        let missing = store.missing(&r).len();
        out.push(Entry {
            image: r.key.clone(),
            digest: r.digest.to_string(),
            media_type: r.media_type.clone(),
            platforms: r.platforms.clone(),
            size: r.size,
            pinned_at: Some(timestamp(r.pinned_at)),
            complete: missing == 0,
            missing_blobs: missing,
        });
    }
    for p in store.pendings()? {
        if out.iter().any(|e| e.image == p.key) {
            continue;
        }
        out.push(Entry {
            image: p.key,
            digest: p.digest.to_string(),
            media_type: p.media_type,
            platforms: Vec::new(),
            size: 0,
            pinned_at: None,
            complete: false,
            missing_blobs: 0,
        });
    }
    out.sort_by(|a, b| a.image.cmp(&b.image));
    Ok(out)
}

fn row(e: &Entry) -> Row {
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
