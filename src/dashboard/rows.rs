//! The cached-tags table as data: one row per pinned tag, filtered by a substring of the
//! name, sorted by a column, cut into pages. Pure: the page handler gathers the records and
//! the pull counts, this decides what one page shows.
//! Must not touch: HTML, the store.

use std::collections::HashMap;

use serde::Deserialize;

use crate::registry::Pulls;
use crate::store::TagRecord;

/// Rows on one page.
pub const PAGE_SIZE: usize = 50;

/// One pinned tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub reference: String,
    pub digest: String,
    pub platforms: Vec<String>,
    pub size: u64,
    /// Unix seconds.
    pub pinned_at: u64,
    pub pulls: Pulls,
}

impl Row {
    pub fn new(record: &TagRecord, pulls: Pulls) -> Row {
        Row {
            reference: record.key.clone(),
            digest: record.digest.to_string(),
            platforms: record.platforms.clone(),
            size: record.size,
            pinned_at: record.pinned_at,
            pulls,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    #[default]
    Name,
    Pinned,
    Size,
    Pulls,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Name, Sort::Pinned, Sort::Size, Sort::Pulls];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Pinned => "pinned",
            Sort::Size => "size",
            Sort::Pulls => "pulls",
        }
    }

    /// The direction a click on the column's header starts with: names A→Z, the rest
    /// largest or newest first.
    pub fn first_dir(self) -> Dir {
        match self {
            Sort::Name => Dir::Asc,
            _ => Dir::Desc,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    Asc,
    Desc,
}

impl Dir {
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }

    pub fn flip(self) -> Dir {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }
}

/// What the page asks for (the query string of `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Query {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub sort: Sort,
    pub dir: Option<Dir>,
    /// 1-based.
    pub page: Option<usize>,
    /// A pin this browser started from the form (its progress is shown).
    pub pinning: Option<String>,
}

impl Query {
    pub fn dir(&self) -> Dir {
        self.dir.unwrap_or(self.sort.first_dir())
    }
}

/// One page of rows.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<Row>,
    /// Rows matching the filter, on all pages.
    pub matching: usize,
    /// 1-based; at most `pages`.
    pub number: usize,
    pub pages: usize,
}

/// The rows `query` asks for, with their pull counts from `pulls` (by reference). Only the
/// page's rows are copied.
pub fn select(rows: &[Row], pulls: &HashMap<String, Pulls>, query: &Query) -> Page {
    let needle = query.q.trim();
    let mut hits: Vec<(&Row, Pulls)> = rows
        .iter()
        .filter(|r| needle.is_empty() || r.reference.contains(needle))
        .map(|r| (r, pulls.get(&r.reference).copied().unwrap_or(r.pulls)))
        .collect();
    let by_name = |a: &Row, b: &Row| a.reference.cmp(&b.reference);
    hits.sort_by(|(a, pa), (b, pb)| {
        let primary = match query.sort {
            Sort::Name => by_name(a, b),
            Sort::Pinned => a.pinned_at.cmp(&b.pinned_at),
            Sort::Size => a.size.cmp(&b.size),
            Sort::Pulls => pa.count.cmp(&pb.count),
        };
        let primary = match query.dir() {
            Dir::Asc => primary,
            Dir::Desc => primary.reverse(),
        };
        primary.then_with(|| by_name(a, b))
    });
    let matching = hits.len();
    let pages = matching.div_ceil(PAGE_SIZE).max(1);
    let number = query.page.unwrap_or(1).clamp(1, pages);
    let rows = hits
        .into_iter()
        .skip((number - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|(r, pulls)| Row { pulls, ..r.clone() })
        .collect();
    Page {
        rows,
        matching,
        number,
        pages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, size: u64, pinned_at: u64, pulls: u64) -> Row {
        Row {
            reference: format!("docker.io/library/{name}"),
            digest: String::new(),
            platforms: vec![],
            size,
            pinned_at,
            pulls: Pulls {
                count: pulls,
                last: 0,
            },
        }
    }

    fn names(page: &Page) -> Vec<&str> {
        page.rows
            .iter()
            .map(|r| r.reference.trim_start_matches("docker.io/library/"))
            .collect()
    }

    fn rows() -> Vec<Row> {
        vec![
            row("b:1", 30, 2, 0),
            row("a:1", 10, 3, 5),
            row("c:1", 20, 1, 1),
        ]
    }

    #[test]
    fn rows_sort_by_each_column() {
        let q = |sort, dir| Query {
            sort,
            dir,
            ..Query::default()
        };
        let page = select(&rows(), &HashMap::new(), &Query::default());
        assert_eq!(names(&page), ["a:1", "b:1", "c:1"]);
        let page = select(&rows(), &HashMap::new(), &q(Sort::Name, Some(Dir::Desc)));
        assert_eq!(names(&page), ["c:1", "b:1", "a:1"]);
        assert_eq!(
            names(&select(&rows(), &HashMap::new(), &q(Sort::Size, None))),
            ["b:1", "c:1", "a:1"]
        );
        let page = select(&rows(), &HashMap::new(), &q(Sort::Pinned, Some(Dir::Asc)));
        assert_eq!(names(&page), ["c:1", "b:1", "a:1"]);
        assert_eq!(
            names(&select(&rows(), &HashMap::new(), &q(Sort::Pulls, None))),
            ["a:1", "c:1", "b:1"]
        );
    }

    #[test]
    fn pull_counts_come_from_the_map() {
        let pulls = HashMap::from([(
            "docker.io/library/c:1".to_string(),
            Pulls { count: 10, last: 1 },
        )]);
        let q = Query {
            sort: Sort::Pulls,
            ..Query::default()
        };
        let page = select(&rows(), &pulls, &q);
        assert_eq!(names(&page), ["c:1", "a:1", "b:1"]);
        assert_eq!(page.rows[0].pulls.count, 10);
    }

    #[test]
    fn the_filter_keeps_names_containing_it() {
        let q = Query {
            q: " b:".into(),
            ..Query::default()
        };
        let page = select(&rows(), &HashMap::new(), &q);
        assert_eq!(names(&page), ["b:1"]);
        assert_eq!(page.matching, 1);
    }

    #[test]
    fn pages_hold_page_size_rows_and_clamp() {
        let many: Vec<Row> = (0..120)
            .map(|i| row(&format!("r{i:03}:1"), 0, 0, 0))
            .collect();
        let q = |page| Query {
            page: Some(page),
            ..Query::default()
        };
        let first = select(&many, &HashMap::new(), &q(1));
        assert_eq!(
            (first.rows.len(), first.pages, first.matching),
            (50, 3, 120)
        );
        let last = select(&many, &HashMap::new(), &q(9));
        assert_eq!((last.number, last.rows.len()), (3, 20));
        assert_eq!(names(&last)[0], "r100:1");
        assert_eq!(select(&many, &HashMap::new(), &q(0)).number, 1);
        assert_eq!(select(&[], &HashMap::new(), &Query::default()).pages, 1);
    }
}
