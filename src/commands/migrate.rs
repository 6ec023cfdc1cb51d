//! `stablebuild --store DIR migrate --to s3://BUCKET[/PREFIX]`: copy the local store's
//! pinned tags into a bucket, one line per tag (`copied`, `already there`, `conflict`,
//! `incomplete`); exit 1 when any could not be copied. Run it again to resume.

use std::process::ExitCode;

use super::{Backend, Need, UsageError, backend, connect, count, human_size, print_json};
use crate::cli::MigrateArgs;
use crate::config::Config;
use crate::ops::migrate;
use crate::shared::Location;

pub async fn run(config: &Config, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let to = match Location::parse(&args.to) {
        Some(Ok(to)) => to,
        Some(Err(e)) => return Err(UsageError(format!("--to {e}")).into()),
        None => {
            return Err(
                UsageError(format!("--to {}: expected s3://BUCKET[/PREFIX]", args.to)).into(),
            );
        }
    };
    if config.shared.is_some() {
        return Err(
            UsageError("migrate copies a local store: --store must be a directory".into()).into(),
        );
    }
    let store = match backend(config, Need::Read).await? {
        Backend::Local(store) => store,
        _ => {
            return Err(UsageError(
                "the store is held by a running server; stop it to migrate (the copy reads the store's files)".into(),
            )
            .into());
        }
    };
    let shared = connect(&to).await?;
    let done = migrate::migrate(&store, &shared, args.jobs as usize).await?;
    if config.json {
        print_json(&done);
    } else {
        for m in &done {
            let detail = m
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            println!(
                "{}  {}  {}{detail} ({}, {})",
                m.reference,
                m.digest,
                m.state,
                count(m.uploaded_objects, "object uploaded", "objects uploaded"),
                human_size(m.uploaded_bytes)
            );
        }
    }
    Ok(match done.iter().any(|m| m.is_failure()) {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    })
}
