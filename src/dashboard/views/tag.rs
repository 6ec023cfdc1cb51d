//! The tag page (`/tags/<reference>`): the root digest and media type, every platform's
//! manifest with its config and layers, the annotations, the lines to copy, the tag's
//! history, and for a signed-in viewer the "Evict" button (which asks first).

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::{Frame, Section, Viewer, bytes, layout, tag_href, time};
use crate::ops::{HistoryEntry, Inspection, Node};
use crate::registry::Pulls;

/// What a user copies to use the tag through this mirror.
pub struct CopyLines {
    pub pull: String,
    /// `FROM` locked to the root (index) digest: the same bytes on every platform.
    pub from: String,
    /// Docker's daemon.json, for Docker Hub images only.
    pub mirrors: Option<String>,
}

pub struct TagPage<'a> {
    pub inspection: &'a Inspection,
    pub platforms: &'a [String],
    pub size: u64,
    /// Each manifest's own annotations, by manifest digest.
    pub annotations: &'a BTreeMap<String, Vec<(String, String)>>,
    pub lines: &'a CopyLines,
    pub history: &'a [HistoryEntry],
    pub pulls: Pulls,
}

pub fn render(viewer: &Viewer, p: &TagPage) -> Markup {
    let i = p.inspection;
    let body = html! {
        h1 { (i.reference) }
        dl.facts {
            dt { "Root digest" } dd { code #root-digest { (i.root.digest) } }
            dt { "Media type" } dd { code { (i.root.media_type) } }
            dt { "Platforms" } dd { (p.platforms.join(", ")) }
            dt { "Size" } dd { (bytes(p.size)) }
            dt { "Pinned at" } dd { (i.pinned_at) }
            dt { "Pulls served" } dd { (p.pulls.count) " (last " (time(p.pulls.last)) ")" }
        }
        (annotations(p.annotations.get(&i.root.digest)))
        @if viewer.signed_in() {
            (evict_button(&i.reference))
        }
        (copy_lines(p.lines))
        h2 { "Platforms" }
        @for m in manifests(&i.root) {
            (platform(m, p.annotations.get(&m.digest)))
        }
        (history(p.history))
    };
    layout(Frame::new(&i.reference, Section::Other), viewer, body)
}

/// The platform manifests: an index's children, or the root itself.
fn manifests(root: &Node) -> Vec<&Node> {
    match root.kind.as_str() {
        "index" => root.children.iter().filter(|c| c.kind != "index").collect(),
        _ => vec![root],
    }
}

/// Asks first: the confirmation page has the form that evicts.
fn evict_button(reference: &str) -> Markup {
    html! {
        form.actions method="get" action="/evict" {
            input type="hidden" name="ref" value=(reference);
            button.danger type="submit" { "Evict" }
        }
    }
}

fn copy_lines(lines: &CopyLines) -> Markup {
    let rows = [
        ("copy-pull", "Pull through this mirror", Some(&lines.pull)),
        (
            "copy-from",
            "Dockerfile FROM, locked to the index digest",
            Some(&lines.from),
        ),
        (
            "copy-mirrors",
            "Docker daemon.json (Docker Hub images)",
            lines.mirrors.as_ref(),
        ),
    ];
    html! {
        section aria-labelledby="use-title" {
            h2 #use-title { "Use it" }
            @for (id, label, line) in rows {
                @if let Some(line) = line {
                    div.copy {
                        label for=(id) { (label) }
                        input #(id) type="text" readonly value=(line);
                        button type="button" data-copy=(id) { "Copy" }
                    }
                }
            }
        }
    }
}

fn platform(m: &Node, notes: Option<&Vec<(String, String)>>) -> Markup {
    let name = m.platform.as_deref().unwrap_or("single manifest");
    html! {
        section.platform data-platform=(name) data-digest=(m.digest) {
            h3 { (name) }
            p { "Manifest " code { (m.digest) } " · " code { (m.media_type) } " · " (size(m.size)) }
            (annotations(notes))
            div.table-wrap {
                table {
                    caption.visually-hidden { "Blobs of " (name) }
                    thead { tr {
                        th scope="col" { "Kind" } th scope="col" { "Digest" }
                        th scope="col" { "Media type" } th scope="col" { "Size" }
                    } }
                    tbody {
                        @for b in &m.children {
                            tr data-blob=(b.digest) {
                                td { (b.kind) @if !b.stored { " (missing)" } }
                                td { code { (b.digest) } }
                                td { code { (b.media_type) } }
                                td.num { (size(b.size)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn size(n: Option<u64>) -> String {
    n.map(bytes).unwrap_or_else(|| "unknown".into())
}

fn annotations(notes: Option<&Vec<(String, String)>>) -> Markup {
    html! {
        @if let Some(notes) = notes.filter(|n| !n.is_empty()) {
            dl.annotations {
                @for (k, v) in notes {
                    dt { code { (k) } } dd { (v) }
                }
            }
        }
    }
}

fn history(entries: &[HistoryEntry]) -> Markup {
    html! {
        section aria-labelledby="history-title" {
            h2 #history-title { "History" }
            @if entries.is_empty() {
                p { "The journal has no entry for this tag." }
            } @else {
                div.table-wrap { table #history {
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Action" }
                        th scope="col" { "Digest" } th scope="col" { "By" }
                    } }
                    tbody {
                        @for e in entries {
                            tr {
                                td { (e.time) } td { (e.action) } td { code { (e.digest) } }
                                td { @if let Some(o) = &e.origin { (o.to_string()) } @else { "—" } }
                            }
                        }
                    }
                } }
            }
        }
    }
}

/// The confirmation step of an evict.
pub fn confirm_evict(viewer: &Viewer, reference: &str, csrf: &str) -> Markup {
    let body = html! {
        h1 { "Evict " (reference) "?" }
        p {
            "The mirror forgets this tag: the next pull fetches it from the upstream again, "
            "and may get other bytes if the tag has moved. Blobs stay until garbage collection."
        }
        form.actions method="post" action="/evict" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="ref" value=(reference);
            button.danger type="submit" { "Evict" }
            " "
            a href=(tag_href(reference)) { "Cancel" }
        }
    };
    layout(Frame::new("Evict", Section::Other), viewer, body)
}
