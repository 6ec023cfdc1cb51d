//! A real upstream for tests: one CNCF distribution registry (`docker-registry` 2.8) per test.
//!
//! This file owns the registry's life cycle (config in a temp dir, a free loopback port, start,
//! stop, restart on the same port and storage, kill on drop) and reading its log, in particular
//! counting requests from the access log. It never touches the system service on port 5000.
//!
//! The access log is Apache "combined" format, one line per request, written when the request
//! completes (interleaved with logrus `time=… level=… msg=…` lines, which are ignored):
//!
//! ```text
//! 127.0.0.1 - - [28/Nov/2026:00:40:46 +0000] "GET /v2/library/x/blobs/sha256:ab… HTTP/1.1" 200 2 "" "curl/7.88.1"
//! ```

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The registry binary (Debian package `docker-registry`).
const BINARY: &str = "docker-registry";
/// How long `start` waits for `GET /v2/` to answer 200.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `restart` keeps retrying when the old port is not free yet.
const REBIND_TIMEOUT: Duration = Duration::from_secs(5);
/// Line the harness writes to the log before each start of the process.
const START_MARKER: &str = "--- harness: starting registry on";
/// Query marker of the barrier request `count_requests` sends; such lines are never counted.
const BARRIER_MARKER: &str = "stablebuild-harness-barrier";

/// A running (or stopped) registry with its own storage, config and log in a temp dir.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Basic authentication (distribution's htpasswd auth) is on.
    protected: bool,
}

impl Registry {
    /// Starts a registry on a free loopback port and waits until `GET /v2/` answers 200.
    pub async fn start() -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("stablebuild-registry-")
            .tempdir()
            .expect("create registry temp dir");
        std::fs::create_dir_all(dir.path().join("storage")).expect("create storage dir");
        let mut registry = Registry {
            child: None,
            port: 0,
            dir,
            protected: false,
        };
        for _ in 0..5 {
            registry.port = free_port();
            registry.write_config();
            if registry.spawn_and_wait().await {
                return registry;
            }
        }
        panic!("registry never got a free port\n{}", registry.log_tail(40));
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's storage root (filesystem driver), e.g. to corrupt a blob on purpose.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Restarts the registry with distribution's htpasswd auth: from now on every request
    /// needs Basic `user`:`password` (push what it should hold first).
    pub async fn protect(&mut self, user: &str, password: &str) {
        let htpasswd = self.dir.path().join("htpasswd");
        super::tools::htpasswd(&htpasswd, user, password);
        self.protected = true;
        self.write_config();
        self.restart().await;
    }

    /// Kills the process and waits for it; the storage and the log stay.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the registry again on the same port and storage (stopping it first if needed).
    pub async fn restart(&mut self) {
        self.stop().await;
        let deadline = Instant::now() + REBIND_TIMEOUT;
        while !self.spawn_and_wait().await {
            if Instant::now() > deadline {
                panic!(
                    "registry could not bind {} again\n{}",
                    self.host(),
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The whole log (registry stdout + stderr, all runs) so far.
    pub fn log(&self) -> String {
        let bytes = std::fs::read(self.log_path()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Counts access-log lines whose method is `method` and whose request path (query string
    /// excluded, `%3A` read as `:`) contains `path_contains`, over all runs of this registry.
    ///
    /// The registry logs a request after its handler returns, which for large blobs can be a
    /// moment after the client has read the last byte. So, while the registry runs, this first
    /// sends a barrier request and waits until that one is logged. Barrier lines never count.
    pub fn count_requests(&self, method: &str, path_contains: &str) -> usize {
        if self.child.is_some() {
            self.barrier();
        }
        self.log()
            .lines()
            .filter_map(parse_access_line)
            .filter(|(m, path, query)| {
                let path = path.replace("%3A", ":").replace("%3a", ":");
                *m == method && path.contains(path_contains) && !query.contains(BARRIER_MARKER)
            })
            .count()
    }

    /// `DELETE /v2/<repo>/manifests/<digest>`; asserts 202 Accepted.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) {
        let url = format!("{}/v2/{repo}/manifests/{digest}", self.url());
        let response = client()
            .delete(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DELETE {url}: {e}"));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status.as_u16(), 202, "DELETE {url}: {body}");
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn write_config(&self) {
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {}\n  secret: stablebuild-test-secret\n",
            self.storage_dir().display(),
            self.host()
        );
        if self.protected {
            let htpasswd = self.dir.path().join("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: stablebuild-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(self.config_path(), config).expect("write registry config");
    }

    /// Spawns the process and waits for readiness. Returns false if it exited because the port
    /// was taken; panics on any other failure.
    async fn spawn_and_wait(&mut self) -> bool {
        let log = open_log(&self.log_path());
        let _ = writeln!(&log, "{START_MARKER} {}", self.host());
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BINARY}: {e} (apt-get install docker-registry)"));
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> bool {
        let url = format!("{}/v2/", self.url());
        let http = client();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("child present");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                let tail = self.log_tail(40);
                if tail.contains("address already in use") {
                    return false;
                }
                panic!("registry exited with {status} before it was ready\n{tail}");
            }
            // "listening on" in this run's part of the log proves the port is ours, not
            // another test's registry that picked the same port.
            if self
                .current_run_log()
                .contains(&format!("listening on {}", self.host()))
                && let Ok(response) = http.get(&url).send().await
                && (response.status().as_u16() == 200
                    || (self.protected && response.status().as_u16() == 401))
            {
                return true;
            }
            if Instant::now() > deadline {
                panic!(
                    "registry not ready after {READY_TIMEOUT:?}\n{}",
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `GET /v2/?<marker>=N` over a plain socket and waits (1 s at most) for its log line.
    fn barrier(&self) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let query = format!("{BARRIER_MARKER}={n}");
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /v2/?{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host()
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return;
        }
        let _ = stream.read_to_end(&mut Vec::new());
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            let logged = self
                .log()
                .lines()
                .filter_map(parse_access_line)
                .any(|(_, _, q)| q == query);
            if logged {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The log written since the last start marker.
    fn current_run_log(&self) -> String {
        let log = self.log();
        match log.rfind(START_MARKER) {
            Some(i) => log[i..].to_string(),
            None => log,
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- registry {} log tail (test panicked):\n{}",
                self.host(),
                self.log_tail(30)
            );
        }
    }
}

/// A plain client: no proxy, no connection reuse across tests.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("build http client")
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read the port, drop the listener).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    assert_ne!(port, 5000, "port 5000 belongs to the system registry");
    port
}

fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Parses one access-log line into (method, path, query); None for any other line.
///
/// Format: `HOST - USER [DATE] "METHOD URI PROTO" STATUS SIZE "REFERER" "AGENT"`. The request is
/// the first double-quoted field after the `]` closing the date.
pub fn parse_access_line(line: &str) -> Option<(&str, &str, &str)> {
    if line.starts_with("time=") {
        return None;
    }
    let after_date = &line[line.find("] \"")? + 3..];
    let request = &after_date[..after_date.find('"')?];
    let mut parts = request.split(' ');
    let (method, uri, proto) = (parts.next()?, parts.next()?, parts.next()?);
    if !proto.starts_with("HTTP/") || parts.next().is_some() {
        return None;
    }
    Some(match uri.split_once('?') {
        Some((path, query)) => (method, path, query),
        None => (method, uri, ""),
    })
}
