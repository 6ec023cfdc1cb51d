//! `stablebuild pin IMAGE... [-f FILE]`: one result line per image (or one JSON document);
//! every image is tried, and the exit code is 1 if any failed. Works on the store, or
//! through the server holding it.

use std::process::ExitCode;

use anyhow::Context;

use super::{
    Backend, Need, UsageError, backend, count, human_size, parse_refs, print_json, progress,
};
use crate::cli::PinArgs;
use crate::config::Config;
use crate::ops::{self, PinLine};
use crate::platform::Platform;
use crate::reference::Reference;

pub async fn run(config: &Config, args: PinArgs) -> anyhow::Result<ExitCode> {
    let mut items = args.images.clone();
    for file in &args.files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let refs = crate::reflist::parse(&text, &Platform::host())
            .map_err(|e| UsageError(format!("{}:{}", file.display(), located(&e))))?;
        items.extend(refs);
    }
    if items.is_empty() {
        return Err(UsageError("pin needs at least one IMAGE or -f FILE".into()).into());
    }
    let mut refs = parse_refs(&items)?;
    let store = backend(config, Need::Write { create: true }).await?;
    if args.dated {
        refs = dated(config, &store, refs).await?;
        items = refs.iter().map(|r| r.to_string()).collect();
    }
    let bars = progress::for_stderr();
    let report = match store {
        Backend::Remote(remote) => remote.pin(&items, bars.as_ref()).await?,
        here => {
            let snap = here.snapshotter(config, args.jobs)?;
            ops::pin_all(&snap, &refs, &super::cli_origin(), bars.as_ref()).await
        }
    };
    drop(bars);
    if config.json {
        print_json(&report);
    } else {
        report.pinned().for_each(print_line);
    }
    for failure in report.failed() {
        eprintln!("error: {}", failure.error);
    }
    Ok(if report.failed().next().is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `pin --dated`: each reference replaced by its most specific twin, saying so on stderr
/// ("docker.io/library/ubuntu:20.04 → docker.io/library/ubuntu:focal-20230801").
async fn dated(
    config: &Config,
    store: &Backend,
    refs: Vec<Reference>,
) -> anyhow::Result<Vec<Reference>> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let report = super::twins::resolve(config, Some(store), &r).await?;
        let twin = match report.most_specific() {
            Some(t) if !t.image => Reference::parse(&t.reference)?,
            _ => r,
        };
        if twin.to_string() != report.image {
            eprintln!("{} → {twin}", report.image);
        }
        out.push(twin);
    }
    Ok(out)
}

/// "3: FROM …" for an error about line 3 ("FILE:3: …", as compilers write it), else " …".
fn located(e: &crate::reflist::ReflistError) -> String {
    let shown = e.to_string();
    match shown.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((n, rest)) if n.parse::<usize>().is_ok() => format!("{n}: {rest}"),
        _ => format!(" {shown}"),
    }
}

fn print_line(l: &PinLine) {
    let state = match (l.already_pinned, l.repaired) {
        (false, _) => "pinned".to_string(),
        (true, 0) => "already pinned".to_string(),
        (true, n) => format!(
            "already pinned, {} fetched again",
            count(n, "missing blob", "missing blobs")
        ),
    };
    println!(
        "{}  {}  {}  {}  {state}",
        l.reference,
        l.digest,
        l.platforms.join(","),
        human_size(l.size)
    );
}
