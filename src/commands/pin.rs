//! `stablebuild pin IMAGE... [-f FILE]`: one result line per image (or one JSON document);
//! every image is tried, and the exit code is 1 if any failed.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::{UsageError, human_size, open_store, parse_refs, print_json, progress, snapshotter};
use crate::cli::PinArgs;
use crate::config::Config;
use crate::snapshot::PinOutcome;

#[derive(Serialize)]
struct Line {
    reference: String,
    digest: String,
    media_type: String,
    platforms: Vec<String>,
    size: u64,
    already_pinned: bool,
    repaired: usize,
}

impl From<&PinOutcome> for Line {
    fn from(o: &PinOutcome) -> Line {
        Line {
            reference: o.reference.clone(),
            digest: o.record.digest.to_string(),
            media_type: o.record.media_type.clone(),
            platforms: o.record.platforms.clone(),
            size: o.record.size,
            already_pinned: o.already_pinned,
            repaired: o.repaired,
        }
    }
}

pub async fn run(config: &Config, args: PinArgs) -> anyhow::Result<ExitCode> {
    let mut items = args.images.clone();
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        items.extend(crate::reflist::parse(&text));
    }
    if items.is_empty() {
        return Err(UsageError("pin needs at least one IMAGE or -f FILE".into()).into());
    }
    let refs = parse_refs(&items)?;
    let store = open_store(config)?;
    let snap = snapshotter(config, store, args.jobs)?;
    let bars = progress::for_stderr();
    let (mut lines, mut failed) = (Vec::new(), false);
    for r in &refs {
        match snap.pin(r, bars.as_ref()).await {
            Ok(outcome) => {
                let line = Line::from(&outcome);
                if !config.json {
                    print_line(&line);
                }
                lines.push(line);
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    drop(bars);
    if config.json {
        print_json(&lines);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_line(l: &Line) {
    let state = match (l.already_pinned, l.repaired) {
        (false, _) => "pinned".to_string(),
        (true, 0) => "already pinned".to_string(),
        (true, n) => format!("already pinned, {n} missing blobs fetched again"),
    };
    println!(
        "{}  {}  {}  {}  {state}",
        l.reference,
        l.digest,
        l.platforms.join(","),
        human_size(l.size)
    );
}
