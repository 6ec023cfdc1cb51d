//! The command line, as clap derive structs only: no logic here. The names are a contract
//! that users' scripts rely on (see DESIGN.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stablebuild",
    version,
    about = "An immutable pull-through mirror for container registries",
    long_about = "Snapshot image tags (index, every platform, every config and layer) into a \
content-addressed store the first time they are asked for, and serve exactly those bytes \
from then on, without asking the upstream again."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Read settings from this TOML file: its keys are the long flags of serve and the global
    /// flags (listen = "0.0.0.0:5000", allow = ["docker.io", "ghcr.io"], store = "s3://…");
    /// flags and environment variables win over it. There is no default file; `stablebuild
    /// config` shows the settings in effect and where each came from
    #[arg(long, global = true, env = "STABLEBUILD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The store: a directory, or a bucket on S3-compatible storage shared by any number of
    /// processes (s3://BUCKET[/PREFIX]; endpoint and credentials from the AWS_* variables)
    /// [default: $XDG_DATA_HOME/stablebuild or ~/.local/share/stablebuild]
    #[arg(
        long,
        global = true,
        env = "STABLEBUILD_STORE",
        value_name = "DIR|s3://BUCKET[/PREFIX]"
    )]
    pub store: Option<String>,

    /// With an s3:// store: this process's cache of it (verified blobs, the records seen)
    /// [default: $XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX] or under ~/.cache]
    #[arg(long, global = true, env = "STABLEBUILD_CACHE", value_name = "DIR")]
    pub cache: Option<PathBuf>,

    /// With an s3:// store: the most the cache's blobs may take, e.g. 50GiB, 800M or 40%
    /// (of the cache's filesystem); the least recently used leave first [default: 25%]
    #[arg(
        long,
        global = true,
        env = "STABLEBUILD_CACHE_SIZE",
        value_name = "SIZE",
        value_parser = crate::config::parse_cache_size
    )]
    pub cache_size: Option<crate::config::CacheSize>,

    /// Reach a registry at another endpoint, e.g. docker.io=http://127.0.0.1:5001 (repeatable;
    /// the variable takes a comma-separated list)
    #[arg(
        long,
        global = true,
        env = "STABLEBUILD_UPSTREAM",
        value_name = "REGISTRY=URL",
        value_delimiter = ','
    )]
    pub upstream: Vec<String>,

    /// Reach this registry without verifying its certificate, or over plain http when it does
    /// not speak TLS, as Docker does (repeatable; localhost, 127.0.0.0/8 and ::1 always are)
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "STABLEBUILD_INSECURE_REGISTRY",
        value_name = "HOST[:PORT]",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,

    /// Trust the CA certificates in this PEM file for upstream registries, besides the
    /// system's roots (which honour SSL_CERT_FILE and SSL_CERT_DIR) (repeatable)
    #[arg(
        long,
        global = true,
        env = "STABLEBUILD_UPSTREAM_CA",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub upstream_ca: Vec<PathBuf>,

    /// Log in to this registry with the USER:TOKEN on the first line of FILE, e.g.
    /// docker.io=/etc/stablebuild/hub (repeatable); otherwise credentials come from Docker's
    /// config.json ($DOCKER_CONFIG or ~/.docker: auths, credHelpers, credsStore). Only used
    /// when the registry asks for them
    #[arg(
        long,
        global = true,
        env = "STABLEBUILD_UPSTREAM_AUTH",
        value_name = "REGISTRY=FILE",
        value_delimiter = ','
    )]
    pub upstream_auth: Vec<String>,

    /// Mirror these repositories although anonymous users cannot pull them, e.g.
    /// docker.io/acme/* (repeatable; * matches any characters, / included). Without it, a
    /// repository that only the credentials reach is refused
    #[arg(
        long,
        global = true,
        env = "STABLEBUILD_ALLOW_PRIVATE",
        value_name = "REGISTRY/REPO-GLOB",
        value_delimiter = ','
    )]
    pub allow_private: Vec<String>,

    /// Run pin, list, evict, gc, verify, history and drift through this stablebuild server
    /// (default: the server holding --store, if one is running)
    #[arg(long, global = true, env = "STABLEBUILD_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// The server's admin token, for --server
    #[arg(
        long,
        global = true,
        env = "STABLEBUILD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Print results as one JSON document
    #[arg(long, global = true)]
    pub json: bool,

    /// Fail at once when another stablebuild process holds the store, instead of waiting
    #[arg(long, global = true)]
    pub no_wait: bool,

    /// More log output on stderr (-v: info, rate-limit budgets; -vv: debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot tags into the store (all platforms, all blobs); pinned tags are not fetched again
    Pin(PinArgs),
    /// Export an image from the store (pinning it first when missing)
    Pull(PullArgs),
    /// Show what is pinned
    List(ListArgs),
    /// Drop tags' snapshots so that the next pin fetches them again
    Evict(EvictArgs),
    /// Remove blobs that no pinned tag reaches
    Gc(GcArgs),
    /// Re-hash every blob and report missing or corrupt ones (exit 1 if any)
    Verify(VerifyArgs),
    /// Serve the store as a read-only Registry v2 mirror, pinning on a miss
    Serve(ServeArgs),
    /// Show a pinned snapshot as a tree: index, platform manifests, configs and layers (from
    /// the store only)
    Inspect(InspectArgs),
    /// Copy a local store's pinned tags, verified, into a bucket (resumable; nothing is
    /// fetched from the upstream)
    Migrate(MigrateArgs),
    /// Every pin and evict the store has seen, oldest first, with time, digest and origin
    History(HistoryArgs),
    /// Pin what Dockerfiles and YAML files use and rewrite each reference in place to
    /// NAME:TAG@sha256:ROOT (the index digest: every platform)
    Lock(LockArgs),
    /// Compare every pinned tag with the upstream, HEAD requests only: same, moved, gone or
    /// error (the store is not changed)
    Drift(DriftArgs),
    /// Tags of IMAGE's repository that share its digest, most specific first (HEAD requests
    /// only)
    Twins(TwinsArgs),
    /// Print every global and serve setting in effect and where it came from: a flag, the
    /// environment, the config file (--config) or the default (secrets show as <set>)
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Dockerfiles, Containerfiles, Compose or Kubernetes YAML (*.yml, *.yaml) [default:
    /// ./Dockerfile]
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write references as pulled through this mirror: HOST[:PORT]/library/ubuntu:20.04@…
    #[arg(long, value_name = "HOST[:PORT]")]
    pub mirror: Option<String>,

    /// Print the change as a unified diff and write no file (references are still pinned)
    #[arg(long, conflicts_with = "check")]
    pub diff: bool,

    /// Change nothing (pin nothing, write nothing): exit 1 with the diff when a reference is
    /// not locked, or is locked to another digest than the store's pin
    #[arg(long)]
    pub check: bool,

    /// Write each unlocked tag's most specific twin (`twins`) instead: ubuntu:20.04 →
    /// ubuntu:focal-20230801@sha256:…
    #[arg(long, conflicts_with = "check")]
    pub dated: bool,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// Only references containing this text
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,

    /// Exit 1 when a tag moved, is gone, or could not be checked
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct TwinsArgs {
    /// An image reference; its pinned digest when pinned, else the upstream's current one
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only references containing this text
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The shared store to copy into: s3://BUCKET[/PREFIX] (the AWS_* variables reach it)
    #[arg(long, value_name = "s3://BUCKET[/PREFIX]")]
    pub to: String,

    /// Blobs uploaded in parallel
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A pinned image reference (a digest matches any tag pinned at that digest)
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// Image references, e.g. ubuntu:focal-20230801, ghcr.io/org/app:1.2, ubuntu@sha256:…
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Read references from a file: one per line (# comments), or the FROM lines of a Dockerfile
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Blobs downloaded in parallel
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Pin each image's most specific twin instead (ubuntu:20.04 → ubuntu:focal-20230801; see
    /// `twins`), saying so on stderr
    #[arg(long)]
    pub dated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// An OCI image layout directory
    Oci,
    /// A tarball that `docker load` and `podman load` accept (one platform)
    DockerArchive,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image reference
    #[arg(value_name = "IMAGE")]
    pub image: String,

    /// Where to write: a directory (OCI layout), NAME.tar or NAME.tar.gz/.tgz (docker archive),
    /// or - (a docker archive on stdout)
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,

    /// Output format [default: docker-archive for a PATH ending in .tar, else oci]
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,

    /// Only this platform, e.g. linux/arm64 or linux/arm/v7 [docker-archive default: the host's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Blobs downloaded in parallel when the image has to be pinned first
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only references containing this text
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvictArgs {
    /// Image references to evict
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only report what would be removed
    #[arg(long)]
    pub dry_run: bool,

    /// On a shared store: keep unreached blobs younger than this (a pin in flight in another
    /// process may not have recorded them yet), and abort multipart uploads older than it
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Rebuild the index from the journal and remove corrupt blobs (pin fetches them again)
    #[arg(long)]
    pub repair: bool,
}

/// The clap command, for completions and man pages.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The environment variables the flags read (`STABLEBUILD_STORE`, …).
pub fn env_names() -> Vec<std::ffi::OsString> {
    let cmd = command();
    let subs = cmd.get_subcommands().flat_map(|s| s.get_arguments());
    let mut names: Vec<_> = cmd
        .get_arguments()
        .chain(subs)
        .filter_map(|a| a.get_env().map(|e| e.to_os_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (use 0.0.0.0:5000 for all interfaces)
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,

    /// A registry clients may reach through the mirror (repeatable) [default: docker.io,
    /// ghcr.io, quay.io, registry.k8s.io, gcr.io, public.ecr.aws, nvcr.io]
    #[arg(long = "allow", value_name = "REGISTRY")]
    pub allow: Vec<String>,

    /// Token for the admin API (pin, list, evict, gc, verify over HTTP) [default: random,
    /// written to the store's server.json for local commands]
    #[arg(
        long,
        env = "STABLEBUILD_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Blobs downloaded in parallel per pull-through pin
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Serve what is pinned and never write the store (misses answer 503); works on a store
    /// this process may not write
    #[arg(long)]
    pub read_only: bool,

    /// With an s3:// store: how often the records this replica has cached are checked
    /// against the bucket (an evict anywhere is honoured within this)
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub refresh: std::time::Duration,

    /// With an s3:// store: answer blob GETs with a 307 to a presigned URL of the bucket's
    /// object, so that clients read the bucket directly
    #[arg(long)]
    pub redirect: bool,

    /// Run `drift` on the store this often (e.g. 10m) and export the result in /metrics
    /// [default: off]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub drift_every: Option<std::time::Duration>,

    /// Serve over TLS with this certificate chain (PEM: the server's certificate first, then
    /// intermediates), HTTP/1.1 and HTTP/2; re-read on SIGHUP
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1); re-read on SIGHUP
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Only clients with a user and password of this htpasswd file (bcrypt entries, as made
    /// by `htpasswd -B`) may pull; others get 401 [default: anyone may pull]
    #[arg(long, value_name = "htpasswd:FILE", value_parser = parse_pull_auth)]
    pub pull_auth: Option<PathBuf>,

    /// Only clients presenting one of the tokens in this file (`LABEL TOKEN` lines) as a
    /// Bearer token or as a Basic password may pull; with --pull-auth, either is accepted
    #[arg(long, value_name = "FILE")]
    pub pull_token: Option<PathBuf>,

    /// The web dashboard at /: read-only pages for anyone (public), only after signing in
    /// with the admin token (private), or none (off); evict, pin and gc always need sign-in
    #[arg(long, value_enum, default_value_t = DashboardMode::Public, value_name = "MODE")]
    pub dashboard: DashboardMode,
}

/// `htpasswd:FILE` → FILE.
fn parse_pull_auth(s: &str) -> Result<PathBuf, String> {
    match s.strip_prefix("htpasswd:") {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(format!("{s:?}: expected htpasswd:FILE")),
    }
}

/// Who may see the dashboard's pages (`serve --dashboard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DashboardMode {
    Public,
    Private,
    Off,
}
