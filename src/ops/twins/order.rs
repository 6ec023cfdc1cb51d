//! The order of `twins`: most specific first. Pure; no I/O.
//!
//! The rule, applied in turn until two tags differ:
//! 1. a tag with a date in it comes first: eight digits that read as a date
//!    (`focal-20230801`, `20230801`) or `YYYY-MM-DD` / `YYYY.MM.DD` (`2023-08-01`);
//! 2. then more version components: the longest run of dot-separated numbers counts
//!    (`1.2.3` before `1.2` before `1`; `3.12-slim` has two); floating names with no digit
//!    (`latest`, `stable`, `focal`) have none and come last;
//! 3. then the longer tag;
//! 4. then alphabetically.
//!
//! Must not touch: anything but the strings it is given.

use std::cmp::{Ordering, Reverse};

/// Sort `tags` most specific first.
pub fn most_specific_first(tags: &mut [String]) {
    tags.sort_by(|a, b| compare(a, b));
}

/// `a` before `b` when `a` is the more specific tag.
pub fn compare(a: &str, b: &str) -> Ordering {
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

fn key(tag: &str) -> (Reverse<bool>, Reverse<usize>, Reverse<usize>) {
    (
        Reverse(has_date(tag)),
        Reverse(version_components(tag)),
        Reverse(tag.len()),
    )
}

/// A date in the tag: exactly eight digits in a row that read as YYYYMMDD, or YYYY-MM-DD /
/// YYYY.MM.DD.
pub fn has_date(tag: &str) -> bool {
    let runs = digit_runs(tag);
    if runs.iter().any(|(_, run)| run.len() == 8 && is_date(run)) {
        return true;
    }
    let bytes = tag.as_bytes();
    runs.windows(3).any(|w| {
        let [(y_at, y), (m_at, m), (d_at, d)] = w else {
            return false;
        };
        let sep = bytes[y_at + y.len()];
        let joined = *m_at == y_at + y.len() + 1
            && *d_at == m_at + m.len() + 1
            && bytes[m_at + m.len()] == sep
            && (sep == b'-' || sep == b'.');
        joined && y.len() == 4 && m.len() == 2 && d.len() == 2 && is_date(&format!("{y}{m}{d}"))
    })
}

/// "20230801": a year 1970–2099, a month and a day that can exist.
fn is_date(yyyymmdd: &str) -> bool {
    let n = |r: std::ops::Range<usize>| yyyymmdd[r].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (n(0..4), n(4..6), n(6..8));
    (1970..2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// The most numbers joined by dots in a row: `1.2.3` → 3, `v20.04-slim` → 2, `latest` → 0.
pub fn version_components(tag: &str) -> usize {
    let bytes = tag.as_bytes();
    let runs = digit_runs(tag);
    let (mut best, mut chain) = (0, 0);
    for (i, (at, _)) in runs.iter().enumerate() {
        let follows = i > 0 && {
            let (prev_at, prev) = runs[i - 1];
            *at == prev_at + prev.len() + 1 && bytes[prev_at + prev.len()] == b'.'
        };
        chain = if follows { chain + 1 } else { 1 };
        best = best.max(chain);
    }
    best
}

/// Every maximal run of ASCII digits, with where it starts.
fn digit_runs(tag: &str) -> Vec<(usize, &str)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in tag.char_indices().chain([(tag.len(), ' ')]) {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, &tag[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_found_in_their_three_spellings() {
        let table = [
            ("focal-20230801", true),
            ("20230801", true),
            ("2023-08-01", true),
            ("jammy-2023.08.01", true),
            ("1.2.3", false),
            ("20.04", false),
            ("123456789", false),  // nine digits: not a date
            ("20231301", false),   // month 13
            ("2023-08.01", false), // mixed separators
            ("latest", false),
        ];
        for (tag, want) in table {
            assert_eq!(has_date(tag), want, "{tag}");
        }
    }

    #[test]
    fn version_components_count_the_longest_dotted_run() {
        let table = [
            ("1.2.3", 3),
            ("1.2", 2),
            ("1", 1),
            ("v20.04-slim", 2),
            ("3.12.1-alpine3.19", 3),
            ("latest", 0),
            ("focal", 0),
            ("1..2", 1),
        ];
        for (tag, want) in table {
            assert_eq!(version_components(tag), want, "{tag}");
        }
    }

    #[test]
    fn the_most_specific_tag_comes_first() {
        let table: [(&[&str], &[&str]); 4] = [
            (
                &["focal", "20.04", "focal-20230801"],
                &["focal-20230801", "20.04", "focal"],
            ),
            (
                &["1", "latest", "1.2", "1.2.3"],
                &["1.2.3", "1.2", "1", "latest"],
            ),
            // Ties on components: longer first, then alphabetical.
            (
                &["stable", "3.12", "3.12-slim", "latest", "3.11"],
                &["3.12-slim", "3.11", "3.12", "latest", "stable"],
            ),
            (
                &["2023-08-01", "1.2.3.4", "20230801"],
                &["2023-08-01", "20230801", "1.2.3.4"],
            ),
        ];
        for (given, want) in table {
            let mut tags: Vec<String> = given.iter().map(|s| s.to_string()).collect();
            most_specific_first(&mut tags);
            assert_eq!(tags, want, "{given:?}");
        }
    }
}
