//! The dashboard's HTML, from compiled-in templates (maud: every interpolated value is
//! HTML-escaped, so names, annotations and User-Agents from upstreams and clients render as
//! text). One file per page; this one holds the frame every page shares and small formats.
//! Must not touch: the store or the request (pages get plain data from the handlers).

pub mod forms;
pub mod store;
pub mod tag;
pub mod tags;

use maud::{DOCTYPE, Markup, html};

use crate::snapshot::PinView;

/// Who is looking: signed in (with the session's CSRF token for the forms) or not.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub csrf: Option<String>,
    /// A notice from the last action (shown once).
    pub notice: Option<String>,
}

impl Viewer {
    pub fn signed_in(&self) -> bool {
        self.csrf.is_some()
    }
}

/// Which page of the navigation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Tags,
    Store,
    Other,
}

/// What the frame around a page's body says.
pub struct Frame<'a> {
    pub title: &'a str,
    pub section: Section,
    /// Reload the page every 2 s (for a browser without script, while a pin runs).
    pub refresh: bool,
}

impl Frame<'_> {
    pub fn new(title: &str, section: Section) -> Frame<'_> {
        Frame {
            title,
            section,
            refresh: false,
        }
    }
}

/// The frame of every page: head, navigation, the notice, then `body`.
pub fn layout(frame: Frame, viewer: &Viewer, body: Markup) -> Markup {
    let (title, section) = (frame.title, frame.section);
    let current = |s: Section| if s == section { Some("page") } else { None };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if frame.refresh {
                    noscript { meta http-equiv="refresh" content="2"; }
                }
                title { (title) " · stablebuild" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header {
                    nav aria-label="Main" {
                        a.brand href="/" { "stablebuild" }
                        a href="/" aria-current=[current(Section::Tags)] { "Cached tags" }
                        a href="/store" aria-current=[current(Section::Store)] { "Store" }
                        span.spacer {}
                        (session_control(viewer))
                    }
                }
                main {
                    @if let Some(notice) = &viewer.notice {
                        p.notice role="status" { (notice) }
                    }
                    (body)
                }
            }
        }
    }
}

fn session_control(viewer: &Viewer) -> Markup {
    html! {
        @if let Some(csrf) = &viewer.csrf {
            form.inline method="post" action="/sign-out" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
        } @else {
            a href="/sign-in" { "Sign in" }
        }
    }
}

/// The pins in flight, with live progress (app.js polls /progress.json; without script,
/// the numbers are those of when the page was made).
pub fn in_flight(pins: &[PinView], waiting: &[String]) -> Markup {
    html! {
        section #in-flight aria-labelledby="in-flight-title" data-live="1" {
            h2 #in-flight-title { "Pins in flight" }
            p.empty hidden[!(pins.is_empty() && waiting.is_empty())] { "None right now." }
            table hidden[pins.is_empty() && waiting.is_empty()] {
                thead { tr { th scope="col" { "Reference" } th scope="col" { "Progress" } } }
                tbody {
                    @for p in pins {
                        tr data-pin=(p.reference) {
                            td { (p.reference) }
                            td {
                                progress value=(p.bytes_done) max=(p.bytes_total.max(1)) {}
                                " " span.progress-text { (progress_text(p)) }
                            }
                        }
                    }
                    @for r in waiting {
                        tr data-pin=(r) {
                            td { (r) }
                            td { progress {} " " span.progress-text { "starting…" } }
                        }
                    }
                }
            }
        }
    }
}

/// "12.0 MiB of 64.0 MiB, 1 of 3 blobs".
pub fn progress_text(p: &PinView) -> String {
    match p.bytes_total {
        0 => "reading manifests…".to_string(),
        total => format!(
            "{} of {}, {} of {} blobs",
            bytes(p.bytes_done),
            bytes(total),
            p.blobs_done,
            p.blobs_total
        ),
    }
}

/// Bytes in binary units, one decimal: "1.5 MiB" (as the commands print them).
pub fn bytes(n: u64) -> String {
    crate::commands::human_size(n)
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> &str {
    let end = digest.find(':').map_or(0, |i| i + 1) + 12;
    digest.get(..end).unwrap_or(digest)
}

/// Unix seconds as RFC 3339 (UTC); "never" for 0.
pub fn time(secs: u64) -> String {
    match secs {
        0 => "never".to_string(),
        s => crate::ops::timestamp(s),
    }
}

/// `s` percent-encoded for a URL path or query (unreserved characters, `/`, `:` and `@`
/// kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b':'
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The link to a tag's page.
pub fn tag_href(reference: &str) -> String {
    format!("/tags/{}", encode(reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(256 << 20), "256.0 MiB");
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digest(&d), "sha256:abababababab");
        assert_eq!(short_digest("short"), "short");
        assert_eq!(encode("docker.io/a b&c=d"), "docker.io/a%20b%26c%3Dd");
        assert_eq!(time(0), "never");
    }

    #[test]
    fn text_from_upstreams_is_escaped() {
        let viewer = Viewer {
            notice: Some("<script>alert(1)</script>".into()),
            ..Viewer::default()
        };
        let frame = Frame::new("<b>", Section::Other);
        let page = layout(frame, &viewer, html! {}).into_string();
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("<title>&lt;b&gt; · stablebuild</title>"));
    }
}
