//! `stablebuild lock [FILE...] [--mirror HOST[:PORT]] [--diff] [--check] [--dated]`: pin what each file
//! uses and rewrite every reference in place to `NAME:TAG@sha256:ROOT`, every other byte
//! kept (`crate::lock` finds the sites and spells the result; this file reads, pins and
//! writes).
//!
//! Choices: a reference already locked (`…@sha256:D`) is never changed: it is verified — its
//! tag pinned at D, or D pinned by digest (pinned now when it is not) — and a tag pinned at
//! another digest is named in a warning (`--check`: exit 1). `--diff` pins like `lock` and
//! writes no file; `--check` pins nothing and writes nothing: digests come from the store
//! alone, so a reference that is not pinned fails the check. Files are replaced atomically
//! (temp file + rename, permissions kept). References left alone (stages, scratch,
//! references built from variables) are named on stderr.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::{Backend, Need, UsageError, backend, count, progress};
use crate::cli::LockArgs;
use crate::config::Config;
use crate::lock::{self, Plan, Site};
use crate::ops::{self, PinResult};
use crate::platform::Platform;
use crate::reference::{Digest, Reference};

/// One file, read and planned.
struct File {
    path: PathBuf,
    text: String,
    plan: Plan,
}

/// What a site becomes: its reference (as pinned: the upstream's, even when written under
/// the mirror) and the digest it is locked to.
struct Target {
    reference: Reference,
    /// The digest the file already names, when it is locked.
    written: Option<Digest>,
    /// `--dated`: the twin tag written instead of the file's.
    dated: Option<String>,
}

pub async fn run(config: &Config, args: LockArgs) -> anyhow::Result<ExitCode> {
    let paths = match args.files.is_empty() {
        true => vec![PathBuf::from("Dockerfile")],
        false => args.files.clone(),
    };
    let files: Vec<File> = paths.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
    let mut targets = HashMap::new();
    for f in &files {
        for site in &f.plan.sites {
            targets.insert(site.image.clone(), target(f, site, args.mirror.as_deref())?);
        }
    }
    let need = match args.check {
        true => Need::Read,
        false => Need::Write { create: true },
    };
    let here = backend(config, need).await?;
    if args.dated {
        date_targets(config, &here, &mut targets).await?;
    }
    let mut pins = pinned(&here).await?;
    let mut failed = false;
    if !args.check {
        failed = pin_missing(config, &here, &targets, &mut pins).await?;
    }
    let mut dirty = failed;
    for f in &files {
        warn_skipped(f);
        let outcome = relock(f, &targets, &pins, args.mirror.as_deref())?;
        dirty |= outcome.problems > 0;
        let diff = lock::unified_diff(&label(&f.path), &label(&f.path), &f.text, &outcome.text);
        if args.check || args.diff {
            print!("{diff}");
            dirty |= args.check && !diff.is_empty();
        } else if outcome.text != f.text {
            write_atomically(&f.path, &outcome.text)?;
        }
        summarize(f, &outcome, args.check || args.diff);
    }
    Ok(match (dirty, args.check || failed) {
        (true, true) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

fn read(path: &Path) -> anyhow::Result<File> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "cannot read {}: {e} (lock takes Dockerfiles, Containerfiles and *.yml/*.yaml files)",
            path.display()
        ))
    })?;
    let plan = lock::plan(&text, lock::kind_of(path), &Platform::host())
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    Ok(File {
        path: path.to_path_buf(),
        text,
        plan,
    })
}

/// The reference a site pins (through the mirror's name, the upstream's).
fn target(f: &File, site: &Site, mirror: Option<&str>) -> Result<Target, UsageError> {
    let bad = |e: String| UsageError(format!("{}:{}: {e}", f.path.display(), site.line));
    let upstream = match mirror {
        Some(m) => lock::upstream_of(&site.image, m).map_err(|e| bad(e.to_string()))?,
        None => None,
    };
    let text = upstream.as_deref().unwrap_or(&site.image);
    let reference = Reference::parse(text).map_err(|e| bad(e.to_string()))?;
    Ok(Target {
        written: reference.digest().cloned(),
        reference,
        dated: None,
    })
}

/// `--dated`: each unlocked target becomes its most specific twin (said on stderr).
async fn date_targets(
    config: &Config,
    here: &Backend,
    targets: &mut HashMap<String, Target>,
) -> anyhow::Result<()> {
    for t in targets.values_mut().filter(|t| t.written.is_none()) {
        let report = super::twins::resolve(config, Some(here), &t.reference).await?;
        let Some(twin) = report.most_specific().filter(|t| !t.image) else {
            continue;
        };
        let twin_ref = Reference::parse(&twin.reference)?;
        eprintln!("{} → {twin_ref}", t.reference);
        t.dated = twin_ref.tag().map(str::to_string);
        t.reference = twin_ref;
    }
    Ok(())
}

/// Every complete record's key and digest, from the store of record (or the server).
async fn pinned(here: &Backend) -> anyhow::Result<HashMap<String, Digest>> {
    let entries = here.list(None).await?;
    let mut out = HashMap::new();
    for e in entries.into_iter().filter(|e| e.pinned_at.is_some()) {
        let digest = Digest::parse(&e.digest).context("a listed digest")?;
        out.insert(e.image, digest);
    }
    Ok(out)
}

/// The tag key of a reference (`name:tag`, also for a locked one).
fn tag_key(r: &Reference) -> String {
    let tag = r.tag().unwrap_or("latest");
    format!("{}:{tag}", r.name())
}

/// Is the target pinned as the file needs it? Its tag (unlocked), or its written digest.
fn satisfied(t: &Target, pins: &HashMap<String, Digest>) -> bool {
    match &t.written {
        None => pins.contains_key(&tag_key(&t.reference)),
        Some(d) => {
            pins.get(&tag_key(&t.reference)) == Some(d) || pins.contains_key(&t.reference.key())
        }
    }
}

/// Pin every target the store lacks (tags by tag, locked references by digest); record the
/// results in `pins`. True when a pin failed (its error is printed).
async fn pin_missing(
    config: &Config,
    here: &Backend,
    targets: &HashMap<String, Target>,
    pins: &mut HashMap<String, Digest>,
) -> anyhow::Result<bool> {
    let mut wanted: Vec<Reference> = targets
        .values()
        .filter(|t| !satisfied(t, pins))
        .map(|t| t.reference.clone())
        .collect();
    wanted.sort_by_key(|r| r.key());
    wanted.dedup_by_key(|r| r.key());
    if wanted.is_empty() {
        return Ok(false);
    }
    let bars = progress::for_stderr();
    let report = match here {
        Backend::Remote(remote) => {
            let items: Vec<String> = wanted.iter().map(|r| r.to_string()).collect();
            remote.pin(&items, bars.as_ref()).await?
        }
        _ => {
            let snap = here.snapshotter(config, 4)?;
            ops::pin_all(&snap, &wanted, &super::cli_origin(), bars.as_ref()).await
        }
    };
    drop(bars);
    let mut failed = false;
    for (r, result) in wanted.iter().zip(&report.results) {
        match result {
            PinResult::Pinned(line) => {
                pins.insert(
                    r.key(),
                    Digest::parse(&line.digest).context("a pinned digest")?,
                );
            }
            PinResult::Failed(f) => {
                eprintln!("error: {}", f.error);
                failed = true;
            }
        }
    }
    Ok(failed)
}

/// A file's new text, and how many references could not be locked as the store says.
struct Relocked {
    text: String,
    locked: usize,
    already: usize,
    problems: usize,
}

fn relock(
    f: &File,
    targets: &HashMap<String, Target>,
    pins: &HashMap<String, Digest>,
    mirror: Option<&str>,
) -> anyhow::Result<Relocked> {
    let mut edits = Vec::new();
    let (mut locked, mut already, mut problems) = (0, 0, 0);
    for site in &f.plan.sites {
        let t = &targets[&site.image];
        let at = format!("{}:{}", f.path.display(), site.line);
        let root = match &t.written {
            Some(d) => {
                already += 1;
                problems += usize::from(!check_locked(&at, t, d, pins));
                d.clone()
            }
            None => match pins.get(&tag_key(&t.reference)) {
                Some(d) => {
                    locked += 1;
                    d.clone()
                }
                None => {
                    eprintln!("{at}: {} is not pinned; left as it is", site.image);
                    problems += 1;
                    continue;
                }
            },
        };
        let edit = match &t.dated {
            Some(tag) => lock::locked_form(&lock::retagged(&site.written, tag), &root, mirror)
                .map(|text| (site.span.clone(), text)),
            None => site.edit(&root, mirror),
        };
        edits.push(edit.map_err(|e| UsageError(format!("{at}: {e}")))?);
    }
    Ok(Relocked {
        text: lock::apply(&f.text, &edits),
        locked,
        already,
        problems,
    })
}

/// A locked reference agrees with the store: its tag is pinned at its digest, or (tag not
/// pinned) its digest is. Says what is wrong otherwise.
fn check_locked(at: &str, t: &Target, d: &Digest, pins: &HashMap<String, Digest>) -> bool {
    let tag = tag_key(&t.reference);
    match pins.get(&tag) {
        Some(p) if p == d => true,
        Some(p) => {
            eprintln!(
                "{at}: locked to {d}, but the store pins {tag} at {p}; left as written \
                 (evict {tag} to pin it again, or lock the file to the store's digest by \
                 removing @{d})"
            );
            false
        }
        None if pins.contains_key(&t.reference.key()) => true,
        None => {
            eprintln!("{at}: {d} is not pinned (run lock without --check to pin it)");
            false
        }
    }
}

fn warn_skipped(f: &File) {
    for s in &f.plan.skipped {
        eprintln!(
            "{}:{}: left alone: {}: {}",
            f.path.display(),
            s.line,
            s.raw,
            s.why
        );
    }
}

fn summarize(f: &File, o: &Relocked, dry: bool) {
    let verb = if dry { "would lock" } else { "locked" };
    eprintln!(
        "{}: {verb} {}, {} already locked{}",
        f.path.display(),
        count(o.locked, "reference", "references"),
        o.already,
        match o.problems {
            0 => String::new(),
            n => format!(
                ", {} not as the store pins",
                count(n, "reference", "references")
            ),
        }
    );
}

/// "a/Dockerfile" as a diff names it (relative paths as given, for `patch -p1`).
fn label(path: &Path) -> String {
    path.display().to_string()
}

/// Replace `path` with `text`: a temp file beside it, same permissions, fsync'd, renamed.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.stablebuild-lock.{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let perms = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions();
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.set_permissions(perms)?;
            f.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("replacing {}", path.display()));
    }
    Ok(())
}
