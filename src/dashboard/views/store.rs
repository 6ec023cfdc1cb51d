//! The store page (`/store`): what the store holds, how well the cache does its job, what
//! the upstreams answered (requests, failures, rate-limit budgets), the pins in flight with
//! live progress, and for a signed-in viewer the "Garbage-collect" button.

use maud::{Markup, html};

use super::{Frame, PinView, Section, Viewer, bytes, in_flight, layout};
use crate::registry::Counts;
use crate::upstream::RateBudget;

pub struct StorePage<'a> {
    /// Where the store is: a directory, or `s3://bucket/prefix` (with the cache's directory).
    pub location: String,
    pub tags: usize,
    /// Distinct manifests and blobs the pinned tags reach, and their bytes.
    pub blobs: usize,
    pub size: u64,
    pub counts: Counts,
    pub upstream_requests: u64,
    pub upstream_failures: u64,
    pub budgets: &'a [(String, RateBudget)],
    pub pins: &'a [PinView],
    pub waiting: &'a [String],
}

pub fn render(viewer: &Viewer, p: &StorePage) -> Markup {
    let c = &p.counts;
    let body = html! {
        h1 { "Store" }
        dl.facts #store-facts {
            dt { "Location" } dd { code { (p.location) } }
            dt { "Tags" } dd #stat-tags { (p.tags) }
            dt { "Blobs" } dd #stat-blobs { (p.blobs) " (manifests, configs and layers the tags reach)" }
            dt { "Total size" } dd #stat-size { (bytes(p.size)) }
        }
        h2 { "Cache" }
        dl.facts #cache-facts {
            dt { "Manifest hit ratio" } dd #ratio-manifests { (ratio(c.manifest_hits, c.manifest_misses)) }
            dt { "Blob hit ratio" } dd #ratio-blobs { (ratio(c.blob_hits, c.blob_misses)) }
            dt { "Bytes served" } dd #stat-served { (bytes(c.bytes)) }
            dt { "Requests" } dd { (c.requests) " (" (c.errors) " answered with an error)" }
        }
        h2 { "Upstreams" }
        dl.facts {
            dt { "Requests sent upstream" } dd #stat-upstream { (p.upstream_requests) }
            dt { "Failed after retries" } dd #stat-failures { (p.upstream_failures) }
        }
        (budgets(p.budgets))
        (in_flight(p.pins, p.waiting))
        @if let Some(csrf) = &viewer.csrf {
            form.actions method="post" action="/gc" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Garbage-collect" }
                " removes blobs no pinned tag reaches."
            }
        }
    };
    layout(Frame::new("Store", Section::Store), viewer, body)
}

/// "97.5% (39 of 40)", or "no requests yet".
fn ratio(hits: u64, misses: u64) -> String {
    match hits + misses {
        0 => "no requests yet".into(),
        all => format!("{:.1}% ({hits} of {all})", hits as f64 * 100.0 / all as f64),
    }
}

fn budgets(budgets: &[(String, RateBudget)]) -> Markup {
    html! {
        @if budgets.is_empty() {
            p { "No upstream has reported a rate limit." }
        } @else {
            table #budgets {
                caption { "Last rate-limit budget seen" }
                thead { tr { th scope="col" { "Registry" } th scope="col" { "Remaining" } th scope="col" { "Limit" } } }
                tbody {
                    @for (registry, b) in budgets {
                        tr {
                            th scope="row" { (registry) }
                            td.num { (b.remaining) }
                            td.num { @if let Some(l) = b.limit { (l) } @else { "—" } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ratios() {
        assert_eq!(super::ratio(0, 0), "no requests yet");
        assert_eq!(super::ratio(39, 1), "97.5% (39 of 40)");
    }
}
