//! `stablebuild pull IMAGE -o PATH`: pin when missing, then export an OCI layout or a
//! docker archive. While a server holds the store, the pin goes through it and the export
//! reads the store's blob files (immutable once written) directly.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use super::{Backend, Need, UsageError, backend, parse_refs, progress};
use crate::cli::{ExportFormat, PullArgs};
use crate::config::Config;
use crate::export::{self, Sink};
use crate::reference::Reference;
use crate::store::{Blobs, Hold, Store, TagRecord};

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
    let output = output(&args.output, args.format, std::io::stdout().is_terminal())?;
    let source = pin_for_export(config, &r, args.jobs).await?;
    let (record, blobs) = (&source.record, &source.blobs);
    let context = || format!("exporting {r} to {}", args.output.display());
    let (format_name, platforms) = match &output {
        Output::Layout(path) => {
            export::write_layout(blobs, &r, record, args.platform.as_deref(), path)
                .with_context(context)?;
            let platforms = match &args.platform {
                Some(p) => vec![p.clone()],
                None => record.platforms.clone(),
            };
            ("oci", platforms)
        }
        Output::Archive(sink) => {
            let wanted = args.platform.clone().unwrap_or_else(export::host_platform);
            let platform =
                export::write_archive(blobs, &r, record, &wanted, sink).with_context(context)?;
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
    // With `-o -` the archive is the result on stdout; the summary goes to stderr.
    let to_stderr = output == Output::Archive(Sink::Stdout);
    let text = match config.json {
        true => serde_json::to_string_pretty(&pulled).expect("results serialise"),
        false => format!(
            "{}  {}  {} ({}, {})",
            pulled.reference,
            pulled.digest,
            pulled.path,
            pulled.format,
            pulled.platforms.join(",")
        ),
    };
    match to_stderr {
        true => eprintln!("{text}"),
        false => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// What `-o PATH` (and `--format`) ask for.
#[derive(Debug, PartialEq, Eq)]
enum Output {
    Layout(PathBuf),
    Archive(Sink),
}

const FORMS: &str = "a directory (OCI image layout), NAME.tar or NAME.tar.gz / NAME.tgz \
    (docker archive), or - (a docker archive on stdout); --format oci takes any path as a \
    directory";

/// `-o -` is a docker archive on stdout (never a terminal); `.tar`, `.tar.gz` and `.tgz`
/// are docker archives; an existing directory, or a name without a dot-extension (a dot
/// followed by a digit does not count: `ubuntu-22.04`), is an OCI layout; any other
/// extension is a mistake worth naming. `--format` decides where given.
fn output(
    path: &Path,
    format: Option<ExportFormat>,
    stdout_is_terminal: bool,
) -> Result<Output, UsageError> {
    let name = path.to_string_lossy();
    if name == "-" {
        if format == Some(ExportFormat::Oci) {
            return Err(UsageError(
                "an OCI layout is a directory and cannot go to stdout; -o - writes a docker archive"
                    .into(),
            ));
        }
        if stdout_is_terminal {
            return Err(UsageError(
                "refusing to write an archive to a terminal; redirect it: -o - > image.tar".into(),
            ));
        }
        return Ok(Output::Archive(Sink::Stdout));
    }
    let gzip = name.ends_with(".tar.gz") || name.ends_with(".tgz");
    let archive = gzip || name.ends_with(".tar");
    let file = |gzip| {
        let path = path.to_path_buf();
        Output::Archive(Sink::File { path, gzip })
    };
    let is_dir = || {
        Err(UsageError(format!(
            "{name} is a directory; a docker archive is a file"
        )))
    };
    match format {
        Some(ExportFormat::Oci) => Ok(Output::Layout(path.to_path_buf())),
        Some(ExportFormat::DockerArchive) if path.is_dir() => is_dir(),
        Some(ExportFormat::DockerArchive) => Ok(file(gzip)),
        None if archive && path.is_dir() => is_dir(),
        None if archive => Ok(file(gzip)),
        None if path.is_dir() || !has_extension(path) => Ok(Output::Layout(path.to_path_buf())),
        None => Err(UsageError(format!(
            "{name}: not a known output form; use {FORMS}"
        ))),
    }
}

/// A dot-extension that starts with a letter (`x.zip`, `x.tar.zst`; not `ubuntu-22.04`,
/// not `.hidden`).
fn has_extension(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    match name.rsplit_once('.') {
        Some((stem, ext)) => !stem.is_empty() && ext.starts_with(|c: char| c.is_ascii_alphabetic()),
        None => false,
    }
}

/// What an export reads: the record and the blobs of a pinned image.
struct Source {
    record: TagRecord,
    blobs: Blobs,
    pinned_now: bool,
    /// Held while exporting, when this process opened the store.
    _store: Option<Arc<Store>>,
    /// A bounded cache keeps the exported blobs until the export is done.
    _hold: Option<Hold>,
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
    match backend(config, Need::Export).await? {
        Backend::Remote(remote) => {
            let bars = progress::for_stderr();
            let pinned = remote.record(&r.to_string(), bars.as_ref()).await?;
            drop(bars);
            Ok(Source {
                record: pinned.record,
                blobs: Blobs::read_only(&config.store, "held by the server"),
                pinned_now: !pinned.pin.already_pinned,
                _store: None,
                _hold: None,
            })
        }
        here => {
            let snap = here.snapshotter(config, jobs)?;
            let store = snap.store().clone();
            let bars = progress::for_stderr();
            let outcome = snap.pin(r, &super::cli_origin(), bars.as_ref()).await?;
            // A shared store's blobs come into this cache, where the export reads them
            // (kept there until it is done, whatever the cache's bound).
            let hold = store.blobs().hold(outcome.record.digests().cloned());
            snap.materialize(r, &outcome.record, bars.as_ref()).await?;
            drop(bars);
            Ok(Source {
                record: outcome.record,
                blobs: store.blobs().clone(),
                pinned_now: !outcome.already_pinned,
                _store: Some(store),
                _hold: hold,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(path: &str, format: Option<ExportFormat>) -> Result<Output, String> {
        output(Path::new(path), format, false).map_err(|e| e.0)
    }

    fn file(path: &str, gzip: bool) -> Output {
        let path = PathBuf::from(path);
        Output::Archive(Sink::File { path, gzip })
    }

    #[test]
    fn output_forms_follow_the_path_and_the_format() {
        let layout = |p: &str| Output::Layout(PathBuf::from(p));
        assert_eq!(form("out", None), Ok(layout("out")));
        assert_eq!(form("./ubuntu-22.04", None), Ok(layout("./ubuntu-22.04")));
        assert_eq!(form("x.tar", None), Ok(file("x.tar", false)));
        assert_eq!(form("x.tar.gz", None), Ok(file("x.tar.gz", true)));
        assert_eq!(form("x.tgz", None), Ok(file("x.tgz", true)));
        assert_eq!(form("-", None), Ok(Output::Archive(Sink::Stdout)));
        let archive = Some(ExportFormat::DockerArchive);
        assert_eq!(form("img", archive), Ok(file("img", false)));
        assert_eq!(form("x.zip", Some(ExportFormat::Oci)), Ok(layout("x.zip")));
        for bad in ["x.zip", "x.tar.zst", "image.oci"] {
            let err = form(bad, None).unwrap_err();
            assert!(err.contains("NAME.tar.gz") && err.contains(bad), "{err}");
        }
        assert!(
            form("-", Some(ExportFormat::Oci))
                .unwrap_err()
                .contains("stdout")
        );
        let tty = output(Path::new("-"), None, true).unwrap_err().0;
        assert!(tty.contains("terminal"), "{tty}");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert!(form(d, archive).unwrap_err().contains("is a directory"));
    }
}
