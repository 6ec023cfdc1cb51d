//! Runs `stablebuild serve` on a free loopback port against a private store.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use super::cli::Sb;

pub struct Server {
    child: Child,
    pub addr: String,
    /// `http`, or `https` when serving with --tls-cert.
    scheme: &'static str,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Start serving `sb`'s store; `extra` are more serve flags (e.g. `--allow`).
    pub async fn start(sb: &Sb, extra: &[&str]) -> Server {
        Server::start_via(sb, &[], extra).await
    }

    /// `start` over TLS with `ca`'s chain and key.
    pub async fn start_tls(sb: &Sb, ca: &super::tls::TestCa, extra: &[&str]) -> Server {
        let (chain, key) = (ca.chain(), ca.key());
        let mut args = vec!["--tls-cert", chain.to_str().unwrap()];
        args.extend(["--tls-key", key.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let srv = Server::start(sb, &args).await;
        assert!(srv.url().starts_with("https://127.0.0.1:"), "{}", srv.url());
        srv
    }

    /// `start` through a wrapper command (see `Sb::command_via`).
    pub async fn start_via(sb: &Sb, wrapper: &[&str], extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Server::spawn(sb.command_via(wrapper, &args)).await
    }

    /// Run `command` (a `stablebuild serve`) until it says where it listens.
    pub async fn spawn(mut command: tokio::process::Command) -> Server {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stablebuild serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let (scheme, addr) = loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
                .await
                .expect("serve printed its address in time")
                .unwrap()
                .unwrap_or_else(|| panic!("serve exited: {}", log.lock().unwrap()));
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(addr) = line.strip_prefix("listening on http://") {
                break ("http", addr.trim().to_string());
            }
            if let Some(addr) = line.strip_prefix("listening on https://") {
                break ("https", addr.trim().to_string());
            }
        };
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Server {
            child,
            addr,
            scheme,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The server's process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// The value of a counter or gauge (its first series) in the server's `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let resp = reqwest::get(format!("{}/metrics", self.url()))
            .await
            .unwrap();
        let metrics = resp.text().await.unwrap();
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
            .unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until a pull-through of `image` (a `list` filter) has pinned it completely: the
    /// manifest is answered before the blobs are all stored.
    pub async fn wait_pinned(&self, sb: &Sb, image: &str) -> serde_json::Value {
        for _ in 0..300 {
            let listed = sb.run(&["--json", "list", image]).await.ok().json();
            let done = listed.as_array().and_then(|a| {
                a.iter()
                    .find(|e| e["complete"] == true && !e["pinned_at"].is_null())
            });
            if let Some(entry) = done {
                return entry.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{image} was not pinned within 30 s; log:\n{}", self.log());
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running") as i32;
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        self.child.wait().await.unwrap()
    }
}
