//! `stablebuild pull IMAGE -o PATH`: pin when missing, then export an OCI layout or a
//! docker archive.

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::{UsageError, open_store, parse_refs, print_json, progress, snapshotter};
use crate::cli::{ExportFormat, PullArgs};
use crate::config::Config;
use crate::export;

#[derive(Serialize)]
struct Pulled {
    reference: String,
    digest: String,
    path: String,
    format: &'static str,
    platforms: Vec<String>,
    pinned_now: bool,
}

pub async fn run(config: &Config, args: PullArgs) -> anyhow::Result<ExitCode> {
    let r = parse_refs(std::slice::from_ref(&args.image))?.remove(0);
    let format = args.format.unwrap_or_else(|| {
        let tar = args.output.extension().is_some_and(|e| e == "tar");
        if tar {
            ExportFormat::DockerArchive
        } else {
            ExportFormat::Oci
        }
    });
    if format == ExportFormat::DockerArchive && args.output.is_dir() {
        return Err(UsageError(format!(
            "{} is a directory; a docker archive is a file",
            args.output.display()
        ))
        .into());
    }
    let store = open_store(config)?;
    let snap = snapshotter(config, store.clone(), args.jobs)?;
    let bars = progress::for_stderr();
    let outcome = snap.pin(&r, bars.as_ref()).await?;
    drop(bars);
    let record = &outcome.record;
    let (format_name, platforms) = match format {
        ExportFormat::Oci => {
            export::write_layout(&store, &r, record, args.platform.as_deref(), &args.output)
                .with_context(|| format!("exporting {r} to {}", args.output.display()))?;
            let platforms = match &args.platform {
                Some(p) => vec![p.clone()],
                None => record.platforms.clone(),
            };
            ("oci", platforms)
        }
        ExportFormat::DockerArchive => {
            let wanted = args.platform.clone().unwrap_or_else(export::host_platform);
            let platform = export::write_archive(&store, &r, record, &wanted, &args.output)
                .with_context(|| format!("exporting {r} to {}", args.output.display()))?;
            ("docker-archive", vec![platform])
        }
    };
    let pulled = Pulled {
        reference: r.to_string(),
        digest: record.digest.to_string(),
        path: args.output.display().to_string(),
        format: format_name,
        platforms,
        pinned_now: !outcome.already_pinned,
    };
    if config.json {
        print_json(&pulled);
    } else {
        println!(
            "{}  {}  {} ({}, {})",
            pulled.reference,
            pulled.digest,
            pulled.path,
            pulled.format,
            pulled.platforms.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}
