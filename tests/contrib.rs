//! `contrib/`: the systemd unit and the container image's Dockerfile.
//!
//! The unit is read as systemd reads it (sections, `Key=value`, repeated keys) and must hold
//! the directives the README promises; `systemd-analyze verify` must accept it without a
//! warning (its ExecStart pointed at the built binary, which verify requires to exist), and
//! `systemd-analyze security` must rate it well. The Dockerfile cannot be built here (no
//! registry to pull its base images from), so it is read with stablebuild's own Dockerfile
//! parser (stages, `COPY --from`) and its final stage's instructions; then the built binary
//! runs with exactly the image's ENTRYPOINT and CMD (on a free port), and the image's
//! HEALTHCHECK command, run on this host, passes against it (and against one that wants pull
//! credentials, answering 401), fails once it is stopped, fails against a server answering
//! 403, 404 or 500, and sends `GET /v2/`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use stablebuild::dockerfile::{self, Platform, Target, UseKind};

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name)
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stablebuild")
}

// ------------------------------------------------------------------------------------------
// systemd
// ------------------------------------------------------------------------------------------

/// A unit file: section → key → every value assigned, in order (systemd.syntax(7): `#` and
/// `;` comments, a trailing backslash continues the line).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = None;
    for (_, line) in logical_lines(text, &['#', ';']) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_string());
            unit.entry(name.to_string()).or_default();
            continue;
        }
        let section = section
            .as_ref()
            .expect("an assignment before the first section");
        let (key, value) = line.split_once('=').expect("Key=value");
        unit.get_mut(section)
            .unwrap()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    unit
}

/// Logical lines with the 1-based line each starts on: comment lines (starting with one of
/// `comment`) and blank lines dropped, a trailing backslash joining the next line, as both
/// systemd and Docker read their files (contrib/Dockerfile uses no heredocs).
fn logical_lines(text: &str, comment: &[char]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with(comment) || (pending.is_none() && line.is_empty()) {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((n + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(body) => {
                joined.push_str(body);
                joined.push(' ');
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(line);
                out.push((start, joined));
            }
        }
    }
    assert!(pending.is_none(), "the file ends in a continuation");
    out
}

/// The one value of `key` in `section` (panics when unset or set more than once).
fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    match unit
        .get(section)
        .and_then(|s| s.get(key))
        .map(Vec::as_slice)
    {
        Some([value]) => value,
        other => panic!("[{section}] {key}= should be set once, is {other:?}"),
    }
}

fn values<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a [String] {
    unit.get(section)
        .and_then(|s| s.get(key))
        .map_or(&[], Vec::as_slice)
}

/// The words of the [Service] command `key` (set once), its program by absolute path.
fn command_line<'a>(unit: &'a Unit, key: &str) -> Vec<&'a str> {
    let words: Vec<&str> = one(unit, "Service", key).split_whitespace().collect();
    assert!(
        words[0].starts_with('/'),
        "{key}= names an absolute path: {words:?}"
    );
    words
}

/// systemd's boolean spellings.
fn truthy(value: &str) -> bool {
    matches!(value, "yes" | "true" | "on" | "1")
}

#[test]
fn unit_holds_the_promised_directives() {
    let unit = parse_unit(&std::fs::read_to_string(contrib("stablebuild.service")).unwrap());
    let service = "Service";

    let exec = command_line(&unit, "ExecStart");
    assert!(
        exec[0].ends_with("/stablebuild") && exec.get(1) == Some(&"serve"),
        "ExecStart runs stablebuild serve: {exec:?}"
    );

    // Its own user: dynamic, or a named one that is not root.
    let user = values(&unit, service, "User");
    let dynamic = values(&unit, service, "DynamicUser");
    assert!(
        dynamic.last().is_some_and(|v| truthy(v))
            || user.last().is_some_and(|u| u != "root" && u != "0"),
        "DynamicUser=yes or a User= that is not root"
    );

    // The store is the state directory.
    let state = one(&unit, service, "StateDirectory");
    assert_eq!(state, "stablebuild");
    let env: Vec<&str> = values(&unit, service, "Environment")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    assert!(
        env.contains(&"STABLEBUILD_STORE=/var/lib/stablebuild"),
        "Environment= sets the store to /var/lib/{state}: {env:?}"
    );

    assert_eq!(one(&unit, service, "ProtectSystem"), "strict");
    assert!(truthy(one(&unit, service, "NoNewPrivileges")));
    assert!(truthy(one(&unit, service, "MemoryDenyWriteExecute")));
    assert_eq!(one(&unit, service, "Restart"), "on-failure");
    assert_eq!(one(&unit, service, "CapabilityBoundingSet"), "");

    let reload = command_line(&unit, "ExecReload");
    assert!(
        reload[0].ends_with("/kill") && reload[1..] == ["-HUP", "$MAINPID"],
        "ExecReload sends SIGHUP: {reload:?}"
    );

    // Allowed system calls: the service set, plus mincore (in no group of systemd 252), which
    // the blob server calls to learn whether a blob is in the page cache.
    let allowed = values(&unit, service, "SystemCallFilter")
        .iter()
        .filter(|v| !v.starts_with('~'))
        .flat_map(|v| v.split_whitespace())
        .collect::<Vec<_>>();
    for call in ["@system-service", "mincore"] {
        assert!(allowed.contains(&call), "SystemCallFilter allows {call}");
    }

    let doc = one(&unit, "Unit", "Documentation");
    let page = doc
        .strip_prefix("man:")
        .and_then(|p| p.strip_suffix("(1)"))
        .expect("Documentation=man:PAGE(1)");
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("man/{page}.1"));
    assert!(man.is_file(), "{} exists", man.display());

    assert_eq!(one(&unit, "Install", "WantedBy"), "multi-user.target");
}

/// The unit with ExecStart pointing at the built binary, in a fresh directory (verify wants
/// ExecStart's file to exist and be executable).
fn unit_for_this_build(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(contrib("stablebuild.service")).unwrap();
    let mut rewritten = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.strip_prefix("ExecStart=") {
            Some(command) => {
                rewritten += 1;
                let (_, args) = command.split_once(' ').expect("ExecStart has arguments");
                format!("ExecStart={} {args}", bin())
            }
            None => line.to_string(),
        })
        .collect();
    assert_eq!(rewritten, 1, "one ExecStart line");
    let path = dir.join("stablebuild.service");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    // --man=no: whether the man page is installed on this host is not the unit's business
    // (unit_holds_the_promised_directives checks that it ships in man/).
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/install-test-deps)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Lines about this host's own units are not ours to judge.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("stablebuild.service") || l.contains(&*dir.path().to_string_lossy()))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

#[test]
fn systemd_analyze_security_rates_the_unit_ok() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let overall = stdout
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for stablebuild.service: "))
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no overall exposure in:\n{stdout}"));
    let score: f64 = overall.split_whitespace().next().unwrap().parse().unwrap();
    // 1.1 with systemd 252: what is left is the network a mirror needs (README).
    assert!(score <= 1.5, "exposure {overall}:\n{stdout}");
}

// ------------------------------------------------------------------------------------------
// Dockerfile
// ------------------------------------------------------------------------------------------

/// One instruction of the final stage: keyword (uppercase) and its arguments, continuation
/// lines joined.
struct Instr {
    keyword: String,
    args: String,
}

/// The instructions that start on 1-based `lines`.
fn instructions(text: &str, lines: std::ops::Range<usize>) -> Vec<Instr> {
    logical_lines(text, &['#'])
        .into_iter()
        .filter(|(start, _)| lines.contains(start))
        .map(|(_, full)| {
            let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
            Instr {
                keyword: keyword.to_ascii_uppercase(),
                args: args.trim().to_string(),
            }
        })
        .collect()
}

/// A JSON-array (exec form) argument list.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not exec form ({e}): {args}"))
}

/// What the test needs from contrib/Dockerfile, checked on the way.
struct Image {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
}

fn read_image() -> Image {
    let text = std::fs::read_to_string(contrib("Dockerfile")).unwrap();
    let parsed = dockerfile::parse(&text, &Platform::host()).expect("a Dockerfile");
    assert!(parsed.stages.len() >= 2, "multi-stage: {:?}", parsed.stages);
    let last = parsed.stages.last().unwrap();
    let bases: Vec<&Target> = parsed
        .uses
        .iter()
        .filter(|u| u.kind == UseKind::From)
        .map(|u| &u.target)
        .collect();
    assert!(
        matches!(bases.last(), Some(Target::Image(i)) if i.starts_with("debian:")),
        "the final stage runs on Debian: {bases:?}"
    );
    let builder = parsed.stages[0]
        .name
        .as_deref()
        .expect("the build stage is named");
    assert!(
        parsed.uses.iter().any(|u| u.kind == UseKind::CopyFrom
            && u.line > last.line
            && u.target == Target::Stage(builder.to_string())),
        "the final stage copies from {builder}: {:?}",
        parsed.uses
    );
    let build_stage = instructions(&text, parsed.stages[0].line..parsed.stages[1].line);
    assert!(
        build_stage
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked")),
        "the build stage runs cargo build --release --locked"
    );

    let instrs = instructions(&text, last.line..usize::MAX);
    let all = |keyword: &str| -> Vec<&str> {
        instrs
            .iter()
            .filter(|i| i.keyword == keyword)
            .map(|i| i.args.as_str())
            .collect()
    };
    let last_of = |keyword: &str| -> &str {
        all(keyword)
            .last()
            .copied()
            .unwrap_or_else(|| panic!("the final stage has no {keyword}"))
    };

    // A numeric, non-root USER (Kubernetes' runAsNonRoot can only check a number).
    let user = last_of("USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, ""));
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} is numeric"));
    assert_ne!(uid, 0, "USER {user} is not root");
    assert!(gid.is_empty() || gid.parse::<u32>().is_ok_and(|g| g != 0));

    // The store is the volume.
    let volumes: Vec<String> = all("VOLUME")
        .iter()
        .flat_map(|v| match v.starts_with('[') {
            true => exec_form(v),
            false => v.split_whitespace().map(String::from).collect(),
        })
        .collect();
    assert!(
        volumes.iter().any(|v| v == "/var/lib/stablebuild"),
        "{volumes:?}"
    );
    assert!(
        all("ENV").contains(&"STABLEBUILD_STORE=/var/lib/stablebuild"),
        "ENV STABLEBUILD_STORE names the volume"
    );
    assert_eq!(last_of("EXPOSE"), "5000");

    // HEALTHCHECK [OPTIONS] CMD ["…"]: exec form, so that it needs no shell of Docker's.
    let health = last_of("HEALTHCHECK");
    let (options, cmd) = health.split_once("CMD ").expect("HEALTHCHECK … CMD …");
    assert!(options.contains("--timeout="), "HEALTHCHECK sets --timeout");
    let healthcheck = exec_form(cmd.trim());
    assert!(
        healthcheck.iter().any(|a| a.contains("GET /v2/")),
        "{healthcheck:?}"
    );

    Image {
        entrypoint: exec_form(last_of("ENTRYPOINT")),
        cmd: exec_form(last_of("CMD")),
        healthcheck,
    }
}

#[test]
fn dockerfile_is_a_non_root_multi_stage_server_image() {
    let image = read_image();
    assert_eq!(image.entrypoint, ["stablebuild"]);
    assert_eq!(image.cmd, ["serve", "--listen", "0.0.0.0:5000"]);
}

/// `stablebuild serve` as the image runs it: ENTRYPOINT + CMD and `extra`, the store in a temp
/// dir (the image's ENV), the port free instead of 5000. Returns the child and the port it
/// bound.
fn serve_like_the_image(image: &Image, store: &Path, extra: &[&str]) -> (Child, u16) {
    assert_eq!(image.entrypoint, ["stablebuild"]);
    let args: Vec<String> = image
        .cmd
        .iter()
        .map(|a| match a.as_str() {
            "0.0.0.0:5000" => "0.0.0.0:0".to_string(),
            _ => a.clone(),
        })
        .collect();
    let mut child = Command::new(bin())
        .args(&args)
        .args(extra)
        .env("STABLEBUILD_STORE", store)
        .env_remove("STABLEBUILD_UPSTREAM")
        .env_remove("STABLEBUILD_SERVER")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stablebuild");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let port = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("serve exited:\n{log}"))
            .unwrap();
        log.push_str(&line);
        log.push('\n');
        if let Some(addr) = line.strip_prefix("listening on http://0.0.0.0:") {
            break addr.trim().parse().unwrap();
        }
    };
    // Keep reading, so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, port)
}

/// The image's HEALTHCHECK command aimed at `port` instead of the CMD's 5000; its exit
/// status.
fn health(image: &Image, port: u16) -> bool {
    let target = "/dev/tcp/127.0.0.1/5000";
    assert!(
        image.healthcheck.iter().any(|a| a.contains(target)),
        "the HEALTHCHECK asks the port CMD listens on: {:?}",
        image.healthcheck
    );
    let argv: Vec<String> = image
        .healthcheck
        .iter()
        .map(|a| a.replace(target, &format!("/dev/tcp/127.0.0.1/{port}")))
        .collect();
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .expect("run the HEALTHCHECK command");
    out.status.success()
}

#[test]
fn healthcheck_passes_against_the_image_command_and_fails_without_it() {
    let image = read_image();
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = serve_like_the_image(&image, &dir.path().join("store"), &[]);
    assert!(health(&image, port), "healthy while serve runs");
    stop_and_check_unhealthy(&image, server, port);
}

#[test]
fn healthcheck_passes_against_a_server_that_wants_pull_credentials() {
    let image = read_image();
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("pull-tokens");
    std::fs::write(&tokens, "farm 0123456789abcdef0123456789abcdef\n").unwrap();
    let extra = ["--pull-token", tokens.to_str().unwrap()];
    let (server, port) = serve_like_the_image(&image, &dir.path().join("store"), &extra);
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}/v2/"))
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "401",
        "/v2/ wants credentials"
    );
    assert!(
        health(&image, port),
        "healthy while serve runs, answering 401"
    );
    stop_and_check_unhealthy(&image, server, port);
}

/// SIGTERM `server`, which exits 0; the HEALTHCHECK fails from then on.
fn stop_and_check_unhealthy(image: &Image, mut server: Child, port: u16) {
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(server.wait().unwrap().success(), "serve exits 0 on SIGTERM");
    assert!(!health(image, port), "unhealthy once serve is gone");
}

#[test]
fn healthcheck_sends_get_v2_and_wants_200_or_401() {
    let image = read_image();
    for (status, healthy) in [
        ("200 OK", true),
        ("401 Unauthorized", true),
        ("404 Not Found", false),
        ("403 Forbidden", false),
        ("500 Oops", false),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf).unwrap() {
                    0 => break,
                    n => request.extend_from_slice(&buf[..n]),
                }
            }
            conn.write_all(answer.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        assert_eq!(health(&image, port), healthy, "answer {status}");
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /v2/ HTTP/1."),
            "the check asks GET /v2/: {request:?}"
        );
    }
}
