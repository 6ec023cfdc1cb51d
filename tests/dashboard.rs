//! The dashboard in a real browser (headless Chromium through ChromeDriver) against a
//! `serve` on a store pinned from the real registry: the cached-tags page (rows, search,
//! sort, pulls), the tag page (platform digests as the store holds them, the lines to copy,
//! annotations as text), the store page, signing in, evict, pin with live progress, gc; and
//! with plain HTTP, that forged or stale POSTs change nothing and the access modes hold.
//! Every page's network log is checked for requests to other origins, and each test saves
//! screenshots under target/dashboard-screenshots/.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::cli::Sb;
use common::faulty::{self, Fault, Faulty};
use common::fixtures;
use common::registry::Registry;
use common::server::Server;
use fantoccini::Locator;
use serde_json::Value;

const TOKEN: &str = "dashboard-test-token";
const WAIT: Duration = Duration::from_secs(20);

/// A registry with four fixture images, all pinned, and a server on the store.
struct Mirror {
    reg: Registry,
    sb: Sb,
    srv: Server,
    pushed: Vec<fixtures::Pushed>,
}

impl Mirror {
    async fn start(extra: &[&str]) -> Mirror {
        let reg = Registry::start().await;
        let url = reg.url();
        let (multi, dockerlist, single, many) = tokio::join!(
            fixtures::push_multi(&url, 0),
            fixtures::push_dockerlist(&url),
            fixtures::push_single(&url),
            fixtures::push_many(&url),
        );
        let sb = Sb::new(&url);
        sb.run(&["pin", "multi:1", "dockerlist:1", "single:1", "many:1"])
            .await
            .ok();
        let mut args = vec!["--admin-token", TOKEN];
        args.extend_from_slice(extra);
        let srv = Server::start(&sb, &args).await;
        let pushed = vec![multi, dockerlist, single, many];
        Mirror {
            reg,
            sb,
            srv,
            pushed,
        }
    }

    async fn list(&self) -> Vec<Value> {
        let listed = self.sb.run(&["--json", "list"]).await.ok().json();
        listed.as_array().expect("list --json is an array").clone()
    }
}

fn full(repo: &str) -> String {
    format!("docker.io/{repo}:1")
}

/// The `data-ref` of every cached-tag row, in page order.
async fn rows(b: &Browser) -> Vec<String> {
    let found = b.client().find_all(Locator::Css("tr[data-ref]")).await;
    let mut out = Vec::new();
    for row in found.expect("rows") {
        out.push(row.attr("data-ref").await.expect("attr").expect("data-ref"));
    }
    out
}

/// Open `path` on the mirror and wait until `css` is on the page.
async fn open(b: &Browser, srv: &Server, path: &str, css: &str) {
    b.client()
        .goto(&format!("{}{path}", srv.url()))
        .await
        .expect("goto");
    b.wait_for(css, WAIT).await;
}

/// Wait until the browser's URL contains `part` (a form was submitted and answered).
async fn wait_url(b: &Browser, part: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let url = b.client().current_url().await.expect("url").to_string();
        if url.contains(part) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still at {url}, not {part}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The button whose text is `label`.
async fn click_button(b: &Browser, label: &str) {
    let xpath = format!("//button[normalize-space()='{label}']");
    let button = wait_xpath(b, &xpath).await;
    button.click().await.expect("click");
}

async fn wait_xpath(b: &Browser, xpath: &str) -> fantoccini::elements::Element {
    let wait = b.client().wait().at_most(WAIT);
    wait.for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("no element {xpath}: {e}"))
}

/// Every request the browser sent since the last look went to the mirror.
async fn assert_only_mirror(b: &Browser, srv: &Server, page: &str) {
    let urls = b.network_urls().await;
    let origin = format!("{}/", srv.url());
    assert!(!urls.is_empty(), "{page}: the log saw no request");
    let foreign: Vec<_> = urls.iter().filter(|u| !u.starts_with(&origin)).collect();
    assert!(
        foreign.is_empty(),
        "{page} asked other origins: {foreign:?}"
    );
}

async fn sign_in(b: &Browser, srv: &Server, token: &str) {
    open(b, srv, "/sign-in", "form.sign-in").await;
    let label = "//label[normalize-space()='Admin token']/following::input[1]";
    let field = wait_xpath(b, label).await;
    assert_eq!(
        field.attr("type").await.unwrap().as_deref(),
        Some("password")
    );
    field.send_keys(token).await.expect("type the token");
    click_button(b, "Sign in").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cached_tags_page_lists_searches_and_sorts_every_pinned_tag() {
    let m = Mirror::start(&[]).await;
    let b = Browser::start().await;
    open(&b, &m.srv, "/", "table#tags").await;
    let listed = m.list().await;
    let mut names: Vec<String> = listed
        .iter()
        .map(|e| e["image"].as_str().unwrap().into())
        .collect();
    names.sort();
    assert_eq!(rows(&b).await, names, "every pinned tag, by name");
    assert_only_mirror(&b, &m.srv, "/").await;
    b.screenshot("tags").await;

    let search = b.wait_for("input[type=search]", WAIT).await;
    search.send_keys("multi").await.unwrap();
    click_button(&b, "Search").await;
    wait_url(&b, "q=multi").await;
    assert_eq!(rows(&b).await, [full("library/multi")]);
    b.screenshot("tags-search").await;

    // One pull of single:1 through the mirror; sorting by pulls puts it first.
    let pulled = reqwest::get(format!("{}/v2/library/single/manifests/1", m.srv.url())).await;
    assert_eq!(pulled.unwrap().status().as_u16(), 200);
    open(&b, &m.srv, "/", "table#tags").await;
    b.client()
        .find(Locator::Css("a[data-sort=pulls]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_url(&b, "sort=pulls").await;
    assert_eq!(rows(&b).await[0], full("library/single"));
    let pulls = "tr[data-ref='docker.io/library/single:1'] td:nth-of-type(6)";
    assert_eq!(b.wait_for(pulls, WAIT).await.text().await.unwrap(), "1");

    b.client()
        .find(Locator::Css("a[data-sort=size]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_url(&b, "sort=size").await;
    let mut by_size: Vec<(u64, String)> = listed
        .iter()
        .map(|e| {
            (
                e["size"].as_u64().unwrap(),
                e["image"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by_size.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let want: Vec<String> = by_size.into_iter().map(|(_, n)| n).collect();
    assert_eq!(rows(&b).await, want, "largest first");
    assert_only_mirror(&b, &m.srv, "/?sort=size").await;
    b.screenshot("tags-by-size").await;

    b.client().set_window_size(390, 844).await.unwrap();
    open(&b, &m.srv, "/", "table#tags").await;
    b.screenshot("tags-phone").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tag_page_shows_the_platforms_the_store_holds_and_the_lines_to_copy() {
    let m = Mirror::start(&[]).await;
    let multi = &m.pushed[0];
    let b = Browser::start().await;
    open(
        &b,
        &m.srv,
        "/tags/docker.io/library/multi:1",
        "section.platform",
    )
    .await;
    assert_only_mirror(&b, &m.srv, "/tags/…").await;

    let inspected =
        m.sb.run(&["--json", "inspect", "multi:1"])
            .await
            .ok()
            .json();
    let root = &inspected["root"];
    let mut want: Vec<String> = root["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["digest"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    let mut shown = Vec::new();
    for s in b
        .client()
        .find_all(Locator::Css("section.platform"))
        .await
        .unwrap()
    {
        shown.push(s.attr("data-digest").await.unwrap().unwrap());
    }
    shown.sort();
    assert_eq!(shown, want, "every platform manifest the store holds");
    assert_eq!(multi.manifests.len(), want.len());
    let root_digest = b.client().find(Locator::Css("#root-digest")).await.unwrap();
    assert_eq!(root_digest.text().await.unwrap(), multi.digest);
    let blobs = b
        .client()
        .find_all(Locator::Css("tr[data-blob]"))
        .await
        .unwrap();
    assert!(
        blobs.len() >= multi.blobs.len(),
        "configs and layers of each platform"
    );

    let from = b.client().find(Locator::Css("#copy-from")).await.unwrap();
    let from = from.prop("value").await.unwrap().unwrap();
    assert_eq!(
        from,
        format!("FROM {}/library/multi:1@{}", m.srv.addr, multi.digest)
    );
    let pull = b.client().find(Locator::Css("#copy-pull")).await.unwrap();
    let pull = pull.prop("value").await.unwrap().unwrap();
    assert_eq!(pull, format!("docker pull {}/library/multi:1", m.srv.addr));
    let copy = b.wait_for("button[data-copy=copy-from]", WAIT).await;
    copy.click().await.unwrap();
    b.wait_text("button[data-copy=copy-from]", "Copied", WAIT)
        .await;
    b.wait_text("#history td", "pin", WAIT).await;
    b.screenshot("tag").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_the_pages_evict_and_garbage_collect() {
    let m = Mirror::start(&[]).await;
    let b = Browser::start().await;
    sign_in(&b, &m.srv, "not-the-token").await;
    b.wait_text("p.error", "not accepted", WAIT).await;
    b.screenshot("sign-in-refused").await;
    sign_in(&b, &m.srv, TOKEN).await;
    b.wait_text("nav button", "Sign out", WAIT).await;
    assert_only_mirror(&b, &m.srv, "/sign-in").await;

    let multi = full("library/multi");
    open(
        &b,
        &m.srv,
        "/tags/docker.io/library/multi:1",
        "section.platform",
    )
    .await;
    click_button(&b, "Evict").await;
    b.wait_text("h1", "Evict docker.io/library/multi:1?", WAIT)
        .await;
    b.screenshot("evict-confirm").await;
    click_button(&b, "Evict").await;
    b.wait_text("p.notice", "Evicted docker.io/library/multi:1", WAIT)
        .await;
    assert!(!rows(&b).await.contains(&multi));
    b.screenshot("evicted").await;
    let listed = m.list().await;
    assert!(
        listed.iter().all(|e| e["image"] != multi.as_str()),
        "{listed:?}"
    );

    let path = "/v2/library/multi/manifests/1";
    let before = m.reg.count_requests("GET", path);
    let pulled = reqwest::get(format!("{}{path}", m.srv.url()))
        .await
        .unwrap();
    assert_eq!(pulled.status().as_u16(), 200);
    assert!(
        m.reg.count_requests("GET", path) > before,
        "fetched again after the evict"
    );

    // Evict single (whose blobs nothing else reaches); gc from the store page removes them.
    open(
        &b,
        &m.srv,
        "/evict?ref=docker.io/library/single:1",
        "form.actions",
    )
    .await;
    click_button(&b, "Evict").await;
    b.wait_text("p.notice", "Evicted docker.io/library/single:1", WAIT)
        .await;
    open(&b, &m.srv, "/store", "dl#store-facts").await;
    let tags = b.client().find(Locator::Css("#stat-tags")).await.unwrap();
    assert_eq!(tags.text().await.unwrap(), m.list().await.len().to_string());
    click_button(&b, "Garbage-collect").await;
    let notice = b
        .wait_text("p.notice", "Garbage collection removed", WAIT)
        .await;
    let text = notice.text().await.unwrap();
    let removed: usize = text.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(removed > 0, "{text}");
    assert_only_mirror(&b, &m.srv, "/store").await;
    b.screenshot("store-after-gc").await;
    let verified = m.sb.run(&["verify"]).await;
    assert_eq!(verified.code, 0, "{}", verified.stdout);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_form_shows_progress_then_the_new_row() {
    let up = Faulty::start().await;
    let layer = up.layer_digests()[0].clone();
    let wait = Duration::from_secs(3);
    up.push_fault(
        &up.blob_path(&layer),
        Fault::Pause {
            after: 64 << 10,
            wait,
        },
    );
    let sb = Sb::new(&up.url());
    let srv = Server::start(&sb, &["--admin-token", TOKEN]).await;
    let b = Browser::start().await;
    sign_in(&b, &srv, TOKEN).await;
    let field = b.wait_for("#pin-reference", WAIT).await;
    field.send_keys("faulty:1").await.unwrap();
    click_button(&b, "Pin").await;
    let reference = format!("docker.io/{}:{}", faulty::REPOSITORY, faulty::TAG);
    let row = format!("tr[data-pin='{reference}'] .progress-text");
    b.wait_text(&row, " blobs", WAIT).await;
    b.screenshot("pin-progress").await;
    b.wait_for(&format!("tr[data-ref='{reference}']"), WAIT)
        .await;
    b.wait_text(
        "p.notice",
        &format!("Pinned {reference} at {}", up.index_digest()),
        WAIT,
    )
    .await;
    assert_only_mirror(&b, &srv, "/?pinning=…").await;
    b.screenshot("pinned").await;
    let listed = sb.run(&["--json", "list"]).await.ok().json();
    assert_eq!(listed[0]["image"], reference.as_str());
    assert_eq!(listed[0]["complete"], true);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_in_an_annotation_renders_as_text() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let (bytes, media_type) =
        fixtures::fetch_manifest_bytes(&reg.url(), &single.repo, &single.tag).await;
    let mut manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let hostile =
        r#"<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2"><b>bold</b>"#;
    manifest["annotations"] =
        serde_json::json!({ "org.opencontainers.image.description": hostile });
    let url = format!("{}/v2/{}/manifests/html", reg.url(), single.repo);
    let put = reqwest::Client::new()
        .put(&url)
        .header("content-type", media_type)
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201, "PUT {url}");
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "single:html"]).await.ok();
    let srv = Server::start(&sb, &[]).await;
    let b = Browser::start().await;
    open(
        &b,
        &srv,
        "/tags/docker.io/library/single:html",
        "dl.annotations",
    )
    .await;
    let dd = b
        .client()
        .find(Locator::Css("dl.annotations dd"))
        .await
        .unwrap();
    assert_eq!(dd.text().await.unwrap(), hostile, "shown as text");
    let script = "return [document.querySelectorAll('dl.annotations *:not(dt):not(dd):not(code)').length, window.pwned === undefined]";
    let checked = b.client().execute(script, vec![]).await.unwrap();
    assert_eq!(
        checked,
        serde_json::json!([0, true]),
        "no element made of it, nothing ran"
    );
    assert_only_mirror(&b, &srv, "/tags/…:html").await;
    b.screenshot("annotation-as-text").await;
    b.close().await;
}

fn evict(csrf: &str) -> [(&str, &str); 2] {
    [("ref", "docker.io/library/single:1"), ("csrf", csrf)]
}

const FORM: &str = "application/x-www-form-urlencoded";

/// `k=v&…`, percent-encoded as a browser sends a form.
fn encode_form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let pairs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    pairs.join("&")
}

/// A client that keeps cookies by hand and never follows redirects.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sign in over HTTP: the session cookie (`name=value`) and the page's CSRF token.
async fn session(srv: &Server) -> (String, String) {
    let resp = http()
        .post(format!("{}/sign-in", srv.url()))
        .header("content-type", FORM)
        .body(encode_form(&[("token", TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = http()
        .get(format!("{}/", srv.url()))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token");
    let csrf = page[at + 19..].split('"').next().unwrap().to_string();
    (cookie, csrf)
}

async fn post(
    srv: &Server,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> u16 {
    let mut req = http()
        .post(format!("{}{path}", srv.url()))
        .header("cookie", cookie)
        .header("content-type", FORM)
        .body(encode_form(form));
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_without_a_live_session_and_its_csrf_token_change_nothing() {
    let m = Mirror::start(&[]).await;
    let single = full("library/single");
    let pinned = |listed: &[Value]| listed.iter().any(|e| e["image"] == single.as_str());
    let (cookie, csrf) = session(&m.srv).await;
    let csrf = csrf.as_str();
    let own = m.srv.url();

    let refused = [
        post(
            &m.srv,
            "/evict",
            &cookie,
            &[("ref", "docker.io/library/single:1")],
            None,
        )
        .await,
        post(&m.srv, "/evict", &cookie, &evict("0123456789abcdef"), None).await,
        post(&m.srv, "/evict", "", &evict(csrf), None).await,
        post(
            &m.srv,
            "/evict",
            &cookie,
            &evict(csrf),
            Some("http://evil.example"),
        )
        .await,
        post(&m.srv, "/gc", &cookie, &[], None).await,
        post(&m.srv, "/pin", &cookie, &[("reference", "single:2")], None).await,
    ];
    assert_eq!(
        refused, [403; 6],
        "no token, wrong token, no session, other origin"
    );
    assert!(pinned(&m.list().await), "the tag stays");

    assert_eq!(
        post(&m.srv, "/sign-out", &cookie, &[("csrf", csrf)], Some(&own)).await,
        303
    );
    assert_eq!(
        post(&m.srv, "/evict", &cookie, &evict(csrf), None).await,
        403,
        "stale session"
    );
    assert!(pinned(&m.list().await), "the tag stays");

    let wrong = http()
        .post(format!("{}/sign-in", m.srv.url()))
        .header("content-type", FORM)
        .body(encode_form(&[("token", "guess")]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
    assert!(
        wrong.headers().get("set-cookie").is_none(),
        "no session for a wrong token"
    );
    let body = wrong.text().await.unwrap();
    assert!(body.contains("not accepted") && !body.contains(TOKEN));

    // A browser that was never signed in submits an evict form: the page says why not.
    let b = Browser::start().await;
    open(&b, &m.srv, "/", "table#tags").await;
    let forge = "const f = document.createElement('form'); f.method = 'post'; \
                 f.action = '/evict'; const i = document.createElement('input'); \
                 i.name = 'ref'; i.value = 'docker.io/library/single:1'; f.append(i); \
                 document.body.append(f); f.submit();";
    b.client().execute(forge, vec![]).await.unwrap();
    b.wait_text("h1", "Forbidden", WAIT).await;
    b.wait_text("p.error", "sign in again", WAIT).await;
    assert_only_mirror(&b, &m.srv, "POST /evict").await;
    b.screenshot("forged-post-refused").await;
    b.close().await;
    assert!(pinned(&m.list().await), "the tag stays");

    let (cookie, csrf) = session(&m.srv).await;
    let form = [
        ("ref", "docker.io/library/single:1"),
        ("csrf", csrf.as_str()),
    ];
    assert_eq!(
        post(&m.srv, "/evict", &cookie, &form, Some(&own)).await,
        303,
        "a real one works"
    );
    assert!(!pinned(&m.list().await), "evicted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_dashboard_asks_for_the_token_and_an_off_one_serves_no_page() {
    let m = Mirror::start(&["--dashboard", "private"]).await;
    for path in [
        "/",
        "/store",
        "/tags/docker.io/library/single:1",
        "/progress.json",
    ] {
        let resp = http()
            .get(format!("{}{path}", m.srv.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 303, "{path}");
        assert_eq!(resp.headers()["location"], "/sign-in", "{path}");
    }
    let b = Browser::start().await;
    b.client().goto(&m.srv.url()).await.unwrap();
    b.wait_for("form.sign-in", WAIT).await;
    wait_url(&b, "/sign-in").await;
    assert_only_mirror(&b, &m.srv, "/ (private)").await;
    b.screenshot("private-sign-in").await;
    b.close().await;

    let (cookie, _) = session(&m.srv).await;
    let page = http()
        .get(format!("{}/", m.srv.url()))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-ref=\"docker.io/library/single:1\"")
    );

    let off = Server::start(&Sb::new(&m.reg.url()), &["--dashboard", "off"]).await;
    let root = http().get(format!("{}/", off.url())).send().await.unwrap();
    assert_eq!(root.status().as_u16(), 404);
    let base = http()
        .get(format!("{}/v2/", off.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(base.status().as_u16(), 200, "the registry still answers");

    let public = Server::start(&Sb::new(&m.reg.url()), &[]).await;
    let page = http()
        .get(format!("{}/", public.url()))
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Sign in") && !page.contains("action=\"/pin\""),
        "read-only when public"
    );
}
