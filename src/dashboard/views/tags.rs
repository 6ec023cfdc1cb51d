//! The cached-tags page (`/`): the search box, the sortable table of pinned tags (each row
//! `data-ref="<full reference>"`), pages, and for a signed-in viewer the "Pin" form.

use maud::{Markup, html};

use super::{
    Frame, Section, Viewer, bytes, encode, in_flight, layout, short_digest, tag_href, time,
};
use crate::dashboard::rows::{Dir, Page, Query, Sort};
use crate::snapshot::PinView;

pub struct TagsPage<'a> {
    pub page: &'a Page,
    pub query: &'a Query,
    /// Blobs missing from the store, for each row of the page.
    pub missing: &'a [usize],
    pub pins: &'a [PinView],
    /// Pins this dashboard started that the snapshotter does not list yet.
    pub waiting: &'a [String],
    /// The pin from the form is still running: reload until it ends (without script).
    pub refresh: bool,
}

pub fn render(viewer: &Viewer, p: &TagsPage) -> Markup {
    let body = html! {
        h1 { "Cached tags" }
        @if let Some(csrf) = &viewer.csrf {
            (pin_form(csrf))
        }
        @if !p.pins.is_empty() || !p.waiting.is_empty() {
            (in_flight(p.pins, p.waiting))
        }
        (search(p.query))
        (table(p))
        (pager(p.page, p.query))
    };
    let frame = Frame {
        refresh: p.refresh,
        ..Frame::new("Cached tags", Section::Tags)
    };
    layout(frame, viewer, body)
}

fn pin_form(csrf: &str) -> Markup {
    html! {
        form.pin method="post" action="/pin" {
            input type="hidden" name="csrf" value=(csrf);
            label for="pin-reference" { "Image to pin" }
            input #pin-reference type="text" name="reference" required
                placeholder="docker.io/library/ubuntu:24.04" autocomplete="off";
            button type="submit" { "Pin" }
        }
    }
}

fn search(q: &Query) -> Markup {
    html! {
        form.search method="get" action="/" role="search" {
            label for="q" { "Filter by name" }
            input #q type="search" name="q" value=(q.q);
            input type="hidden" name="sort" value=(q.sort.as_str());
            input type="hidden" name="dir" value=(q.dir().as_str());
            button type="submit" { "Search" }
        }
    }
}

fn table(p: &TagsPage) -> Markup {
    let page = p.page;
    let first = (page.number - 1) * crate::dashboard::rows::PAGE_SIZE;
    html! {
        p #count {
            @if page.matching == 0 && p.query.q.trim().is_empty() { "Nothing is pinned yet: pull an image through this mirror, or pin one." }
            @else if page.matching == 0 { "No pinned tag matches." }
            @else { "Showing " (first + 1) "–" (first + page.rows.len()) " of " (page.matching) " tags" }
        }
        div.table-wrap {
            table #tags {
                caption.visually-hidden { "Pinned tags" }
                thead { tr {
                    (header("Image", Sort::Name, p.query))
                    th scope="col" { "Digest" }
                    th scope="col" { "Platforms" }
                    (header("Size", Sort::Size, p.query))
                    (header("Pinned at", Sort::Pinned, p.query))
                    th scope="col" { "Complete" }
                    (header("Pulls", Sort::Pulls, p.query))
                    th scope="col" { "Last pulled" }
                } }
                tbody {
                    @for (row, missing) in page.rows.iter().zip(p.missing) {
                        tr data-ref=(row.reference) {
                            th scope="row" { a href=(tag_href(&row.reference)) { (row.reference) } }
                            td { code title=(row.digest) { (short_digest(&row.digest)) } }
                            td { (row.platforms.join(", ")) }
                            td.num data-bytes=(row.size) { (bytes(row.size)) }
                            td { (time(row.pinned_at)) }
                            td { @if *missing == 0 { "yes" } @else { "no (" (missing) " blobs missing)" } }
                            td.num { (row.pulls.count) }
                            td { (time(row.pulls.last)) }
                        }
                    }
                }
            }
        }
    }
}

/// A sortable column's header: a link that sorts by it (the other way when it is the sort).
fn header(label: &str, sort: Sort, q: &Query) -> Markup {
    let active = q.sort == sort;
    let dir = if active {
        q.dir().flip()
    } else {
        sort.first_dir()
    };
    let aria = active.then(|| match q.dir() {
        Dir::Asc => "ascending",
        Dir::Desc => "descending",
    });
    let href = link(q, sort, dir, 1);
    html! {
        th scope="col" aria-sort=[aria] {
            a href=(href) data-sort=(sort.as_str()) { (label) @if let Some(a) = aria { " " span aria-hidden="true" { @if a == "ascending" { "▲" } @else { "▼" } } } }
        }
    }
}

fn link(q: &Query, sort: Sort, dir: Dir, page: usize) -> String {
    format!(
        "/?q={}&sort={}&dir={}&page={page}",
        encode(&q.q),
        sort.as_str(),
        dir.as_str()
    )
}

fn pager(page: &Page, q: &Query) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if page.number > 1 {
                a rel="prev" href=(link(q, q.sort, q.dir(), page.number - 1)) { "Previous" }
            }
            span { "Page " (page.number) " of " (page.pages) }
            @if page.number < page.pages {
                a rel="next" href=(link(q, q.sort, q.dir(), page.number + 1)) { "Next" }
            }
        }
    }
}
