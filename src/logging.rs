//! Diagnostics on stderr: stablebuild's own events at the level `-v`/`-vv` ask for, every
//! dependency at `warn` unless `RUST_LOG` names it.
//!
//! `RUST_LOG` keeps its usual syntax; a bare level in it (`RUST_LOG=debug`) applies to
//! stablebuild only, so it shows upstream requests, retries and cache decisions rather than
//! sled's and hyper's internals; `RUST_LOG=sled=debug` still shows sled's.
//! Must not touch: stdout (results only) or anything but the subscriber.

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The filter directives for a verbosity (0: warnings, 1: info, 2+: debug) and `RUST_LOG`.
pub fn directives(verbose: u8, rust_log: Option<&str>) -> String {
    let mut own = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    }
    .to_string();
    let mut named = Vec::new();
    for d in rust_log.unwrap_or("").split(',').map(str::trim) {
        match d {
            "" => {}
            d if LEVELS.contains(&d.to_ascii_lowercase().as_str()) => own = d.to_string(),
            d => named.push(d.to_string()),
        }
    }
    let mut out = format!("warn,stablebuild={own}");
    for d in named {
        out.push(',');
        out.push_str(&d);
    }
    out
}

/// Install the subscriber. Targets are shown once debug output is on, where events of
/// several crates may be mixed.
pub fn init(verbose: u8) {
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let spec = directives(verbose, rust_log.as_deref());
    let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        let shown = rust_log.as_deref().unwrap_or_default();
        eprintln!("warning: RUST_LOG={shown}: {e}; using the default");
        tracing_subscriber::EnvFilter::new(directives(verbose, None))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .with_target(verbose >= 2 || rust_log.is_some())
        .init();
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn verbosity_is_stablebuilds_own_and_dependencies_stay_at_warn() {
        assert_eq!(directives(0, None), "warn,stablebuild=warn");
        assert_eq!(directives(1, None), "warn,stablebuild=info");
        assert_eq!(directives(2, None), "warn,stablebuild=debug");
        assert_eq!(directives(5, None), "warn,stablebuild=debug");
    }

    #[test]
    fn rust_log_levels_apply_to_stablebuild_and_named_targets_are_kept() {
        assert_eq!(directives(0, Some("debug")), "warn,stablebuild=debug");
        assert_eq!(directives(2, Some("INFO")), "warn,stablebuild=INFO");
        assert_eq!(
            directives(0, Some("sled=debug, hyper=trace")),
            "warn,stablebuild=warn,sled=debug,hyper=trace"
        );
        assert_eq!(
            directives(1, Some("trace,stablebuild::upstream=debug")),
            "warn,stablebuild=trace,stablebuild::upstream=debug"
        );
    }
}
