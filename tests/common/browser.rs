//! A real headless browser for the tests: Debian's Chromium, driven through ChromeDriver.
//!
//! This file owns [`Browser`]: one `chromedriver` on a free loopback port, in its own process
//! group with the Chromium it launches, and one WebDriver session on it (a fresh profile in a
//! temporary directory, a 1280x900 window, no first-run pages, no background networking).
//! Tests drive the page through [`Browser::client`] (fantoccini), read which URLs the browser
//! requested from ChromeDriver's performance log with [`Browser::network_urls`], and save
//! screenshots under `<target dir>/dashboard-screenshots/`. Dropping a [`Browser`] kills the
//! whole process group, so a panicking test leaves no browser behind.
//!
//! Navigation returns once the document is parsed (`pageLoadStrategy: eager`), not when every
//! subresource has loaded: a page that refers to a host that never answers does not hang the
//! test. Anything that appears later is waited for with [`Browser::wait_for`] or
//! [`Browser::wait_text`].

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::time::Instant;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long ChromeDriver may take to answer `GET /status` with `ready: true`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request of ours to ChromeDriver may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the wait helpers look again.
const POLL: Duration = Duration::from_millis(50);

/// A headless Chromium under ChromeDriver, with one WebDriver session open.
pub struct Browser {
    client: Client,
    /// `http://127.0.0.1:PORT/session/ID`, for the commands fantoccini has no call for.
    session_url: String,
    http: reqwest::Client,
    driver: Driver,
}

impl Browser {
    /// Starts ChromeDriver on a free loopback port, waits until it is ready, and opens a session.
    pub async fn start() -> Browser {
        let mut driver = Driver::spawn();
        let http = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build();
        let http = http.expect("browser: HTTP client");
        driver.wait_ready(&http).await;
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&driver.dir.path().join("profile")))
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("browser: new session: {e}\n{}", driver.log()));
        let id = client.session_id().await.expect("browser: session id");
        let id = id.expect("browser: no session id");
        let browser = Browser {
            session_url: format!("{}/session/{id}", driver.url),
            client,
            http,
            driver,
        };
        browser.network_urls().await; // what Chromium fetched while starting is not the test's
        browser
    }

    /// The WebDriver session: navigation, finding elements, clicks, typing, scripts, window size.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The URL of every request the browser sent (`Network.requestWillBeSent` in ChromeDriver's
    /// performance log, `data:` URLs and redirects included) since the previous call or since
    /// [`Browser::start`], in the order they were sent. Requests a page starts after it has
    /// loaded are only there once they have been sent: wait for their effect first.
    pub async fn network_urls(&self) -> Vec<String> {
        let entries = self.performance_log().await;
        entries
            .iter()
            .filter_map(|entry| serde_json::from_str::<Value>(entry["message"].as_str()?).ok())
            .filter(|message| message["message"]["method"] == "Network.requestWillBeSent")
            .filter_map(|message| {
                let url = &message["message"]["params"]["request"]["url"];
                url.as_str().map(str::to_owned)
            })
            .collect()
    }

    /// Saves a PNG of the viewport as `<target dir>/dashboard-screenshots/<name>.png`, where the
    /// target dir is `CARGO_TARGET_DIR` if set, else `target/` in the crate; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("browser: screenshot");
        let dir = target_dir().join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("browser: {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("browser: {}: {e}", path.display()));
        path
    }

    /// Waits up to `timeout` for an element matching the CSS selector `css`; panics if none came.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let wait = self.client.wait().at_most(timeout).every(POLL);
        wait.for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| {
                panic!("browser: no element matches {css:?} after {timeout:?}: {e}")
            })
    }

    /// Waits up to `timeout` for an element matching `css` whose text contains `substring`;
    /// panics with the texts last seen if none did.
    pub async fn wait_text(&self, css: &str, substring: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            let elements = self.client.find_all(Locator::Css(css)).await;
            for element in elements.unwrap_or_default() {
                match element.text().await {
                    Ok(text) if text.contains(substring) => return element,
                    Ok(text) => seen.push(text),
                    Err(_) => {} // replaced while being read: look again
                }
            }
            assert!(
                Instant::now() < deadline,
                "browser: no {css:?} contains {substring:?} after {timeout:?}; texts: {seen:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The process group of ChromeDriver and Chromium (ChromeDriver's pid).
    pub fn process_group(&self) -> u32 {
        self.driver.child.id()
    }

    /// Ends the WebDriver session (ChromeDriver closes Chromium), then stops ChromeDriver.
    pub async fn close(self) {
        let Browser { client, driver, .. } = self;
        client.close().await.expect("browser: close the session");
        drop(driver);
    }

    /// `POST /session/{id}/se/log {"type": "performance"}`: the entries logged since the last
    /// read, which ChromeDriver then forgets.
    async fn performance_log(&self) -> Vec<Value> {
        let request = self.http.post(format!("{}/se/log", self.session_url));
        let response = request.json(&json!({"type": "performance"})).send().await;
        let response = response.expect("browser: read the performance log");
        let body: Value = response
            .json()
            .await
            .expect("browser: performance log JSON");
        match body["value"].as_array() {
            Some(entries) => entries.clone(),
            None => panic!("browser: performance log: {body}"),
        }
    }
}

/// ChromeDriver on `url`, leader of a process group that also holds the Chromium it starts.
/// Dropping it kills the whole group.
struct Driver {
    child: Child,
    /// `http://127.0.0.1:PORT`
    url: String,
    /// The Chromium profile (`profile/`) and ChromeDriver's and Chromium's output
    /// (`chromedriver.log`).
    dir: TempDir,
}

impl Driver {
    /// Spawns ChromeDriver on a free loopback port, as the leader of a new process group.
    fn spawn() -> Driver {
        let dir = tempfile::tempdir().expect("browser: temporary directory");
        let out = File::create(dir.path().join("chromedriver.log")).expect("browser: log file");
        let err = out.try_clone().expect("browser: log file");
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("browser: {CHROMEDRIVER} (scripts/install-test-deps): {e}"));
        let url = format!("http://127.0.0.1:{port}");
        Driver { child, url, dir }
    }

    /// Polls `GET /status` until ChromeDriver says it is ready; panics if it exits, or after
    /// [`READY_TIMEOUT`].
    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("browser: chromedriver exited ({status})\n{}", self.log());
            }
            if let Ok(response) = http.get(format!("{}/status", self.url)).send().await {
                let body: Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return;
                }
            }
            tokio::time::sleep(POLL).await;
        }
        let url = &self.url;
        panic!(
            "browser: chromedriver at {url} not ready after {READY_TIMEOUT:?}\n{}",
            self.log()
        );
    }

    /// The end of `chromedriver.log`, for panic messages.
    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("chromedriver.log"));
        let log = log.unwrap_or_default();
        let from = log.len().saturating_sub(4000);
        let from = (from..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        format!("chromedriver.log (end):\n{}", &log[from..])
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: killpg only sends a signal, to the group this child leads (process_group(0)).
        unsafe { libc::killpg(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The session's capabilities: Debian's Chromium, headless, in a fresh profile, logging network
/// events. Chromium opens startup pages per `session.*` prefs (`about:blank`) rather than the
/// new-tab page, which for Debian's default search engine would reach out to DuckDuckGo.
fn capabilities(profile: &Path) -> serde_json::Map<String, Value> {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ];
    let mut args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "pageLoadStrategy": "eager",
        "timeouts": {"pageLoad": 30_000, "script": 10_000},
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": args,
            "prefs": {
                "session.restore_on_startup": 4,
                "session.startup_urls": ["about:blank"],
            },
        },
        "goog:loggingPrefs": {"performance": "ALL"},
    });
    match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("browser: bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("browser: local address")
        .port()
}

/// `CARGO_TARGET_DIR` if set, else `target/` in the crate.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}
