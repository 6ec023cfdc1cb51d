//! Splicing replacements into text, every other byte kept.

use std::ops::Range;

/// `text` with each `(span, replacement)` applied. The spans must not overlap and must lie
/// on character boundaries inside `text`; they may come in any order.
///
/// # Panics
/// When two spans overlap or one lies outside `text`: a caller bug, not bad input.
pub fn apply(text: &str, edits: &[(Range<usize>, String)]) -> String {
    let mut order: Vec<&(Range<usize>, String)> = edits.iter().collect();
    order.sort_by_key(|(span, _)| (span.start, span.end));
    let mut out = String::with_capacity(text.len() + 80 * edits.len());
    let mut at = 0;
    for (span, replacement) in order {
        assert!(
            at <= span.start && span.start <= span.end,
            "edit {span:?} overlaps an earlier one (which ends at {at})"
        );
        out.push_str(&text[at..span.start]);
        out.push_str(replacement);
        at = span.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(span: Range<usize>, s: &str) -> (Range<usize>, String) {
        (span, s.to_owned())
    }

    #[test]
    fn edits_apply_in_any_order_and_keep_the_rest() {
        let text = "FROM a\r\n# c\r\nFROM b AS x\r\n";
        let edits = [edit(18..19, "b:1@d"), edit(5..6, "a:2@d")];
        assert_eq!(
            apply(text, &edits),
            "FROM a:2@d\r\n# c\r\nFROM b:1@d AS x\r\n"
        );
    }

    #[test]
    fn no_edits_and_empty_spans() {
        assert_eq!(apply("abc", &[]), "abc");
        assert_eq!(apply("abc", &[edit(3..3, "d"), edit(0..0, ">")]), ">abcd");
    }

    #[test]
    #[should_panic(expected = "overlaps")]
    fn overlapping_edits_are_a_bug() {
        apply("abcdef", &[edit(0..3, "x"), edit(2..4, "y")]);
    }
}
