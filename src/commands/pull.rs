//! `stablebuild pull IMAGE -o PATH`: pin when missing, then export an OCI layout or a
//! docker archive. While a server holds the store, the pin goes through it and the export
//! reads the store's blob files (immutable once written) directly.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use super::{Backend, Need, UsageError, backend, parse_refs, print_json, progress, snapshotter};
use crate::cli::{ExportFormat, PullArgs};
use crate::config::Config;
use crate::export;
use crate::reference::Reference;
use crate::store::{Blobs, Store, TagRecord};

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
    let source = pin_for_export(config, &r, args.jobs).await?;
    let (record, blobs) = (&source.record, &source.blobs);
    let (format_name, platforms) = match format {
        ExportFormat::Oci => {
            export::write_layout(blobs, &r, record, args.platform.as_deref(), &args.output)
                .with_context(|| format!("exporting {r} to {}", args.output.display()))?;
            let platforms = match &args.platform {
                Some(p) => vec![p.clone()],
                None => record.platforms.clone(),
            };
            ("oci", platforms)
        }
        ExportFormat::DockerArchive => {
            let wanted = args.platform.clone().unwrap_or_else(export::host_platform);
            let platform = export::write_archive(blobs, &r, record, &wanted, &args.output)
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
        pinned_now: source.pinned_now,
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

/// What an export reads: the record and the blobs of a pinned image.
struct Source {
    record: TagRecord,
    blobs: Blobs,
    pinned_now: bool,
    /// Held while exporting, when this process opened the store.
    _store: Option<Arc<Store>>,
}

/// Pin `r` here, or through the server that holds the store on this machine.
async fn pin_for_export(config: &Config, r: &Reference, jobs: u16) -> anyhow::Result<Source> {
    if config.server.is_some() {
        return Err(UsageError(
            "pull exports from the store on this machine and cannot use --server; \
             copy from the mirror instead (skopeo copy docker://MIRROR/IMAGE ...)"
                .into(),
        )
        .into());
    }
    match backend(config, Need::Export)? {
        Backend::Local(store) => {
            let snap = snapshotter(config, store.clone(), jobs)?;
            let bars = progress::for_stderr();
            let outcome = snap.pin(r, bars.as_ref()).await?;
            drop(bars);
            Ok(Source {
                record: outcome.record,
                blobs: store.blobs().clone(),
                pinned_now: !outcome.already_pinned,
                _store: Some(store),
            })
        }
        Backend::Remote(remote) => {
            let bars = progress::for_stderr();
            let pinned = remote.record(&r.to_string(), bars.as_ref()).await?;
            drop(bars);
            Ok(Source {
                record: pinned.record,
                blobs: Blobs::read_only(&config.store, "held by the server"),
                pinned_now: !pinned.pin.already_pinned,
                _store: None,
            })
        }
    }
}
