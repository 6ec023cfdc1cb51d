//! Unified diffs, as `diff -u` and `git diff` print them (so `patch -p1` applies them):
//! `--- a/LABEL` / `+++ b/LABEL`, `@@ -l,n +l,n @@` hunks with 3 lines of context, and
//! `\ No newline at end of file` after a last line without one. Lines are compared with
//! their line endings (a CRLF line is printed with its `\r`). Myers' algorithm, on the
//! lines between the common head and tail.

const CONTEXT: usize = 3;

/// One line of an edit script: indexes into the old and new lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same(usize, usize),
    Delete(usize),
    Insert(usize),
}

/// The unified diff from `old` to `new`; `""` when they are equal.
pub fn unified_diff(old_label: &str, new_label: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = script(&a, &b);
    let mut out = format!("--- a/{old_label}\n+++ b/{new_label}\n");
    for hunk in hunks(&ops) {
        write_hunk(&mut out, &ops[hunk], &a, &b);
    }
    out
}

/// The edit script from `a` to `b`, each change's deletions before its insertions.
fn script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut ops: Vec<Op> = (0..head).map(|i| Op::Same(i, i)).collect();
    let middle = myers(&a[head..a.len() - tail], &b[head..b.len() - tail]);
    ops.extend(middle.into_iter().map(|op| match op {
        Op::Same(i, j) => Op::Same(head + i, head + j),
        Op::Delete(i) => Op::Delete(head + i),
        Op::Insert(j) => Op::Insert(head + j),
    }));
    ops.extend((0..tail).map(|k| Op::Same(a.len() - tail + k, b.len() - tail + k)));
    deletions_first(&mut ops);
    ops
}

/// Myers' shortest edit script: the furthest-reaching path per diagonal, kept per step
/// and walked back from the end.
fn myers(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let off = n + m + 1;
    let mut v = vec![0isize; 2 * off as usize + 1];
    let mut trace = Vec::new();
    'search: for d in 0..=n + m {
        trace.push(v.clone());
        for k in (-d..=d).step_by(2) {
            let i = (k + off) as usize;
            let mut x = match k == -d || (k != d && v[i - 1] < v[i + 1]) {
                true => v[i + 1],
                false => v[i - 1] + 1,
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                (x, y) = (x + 1, y + 1);
            }
            v[i] = x;
            if x >= n && y >= m {
                break 'search;
            }
        }
    }
    backtrack(&trace, n, m, off)
}

fn backtrack(trace: &[Vec<isize>], n: isize, m: isize, off: isize) -> Vec<Op> {
    let (mut x, mut y) = (n, m);
    let mut ops = Vec::new();
    for (d, v) in trace.iter().enumerate().rev() {
        let (d, k) = (d as isize, x - y);
        let i = (k + off) as usize;
        let prev_k = match k == -d || (k != d && v[i - 1] < v[i + 1]) {
            true => k + 1,
            false => k - 1,
        };
        let prev_x = v[(prev_k + off) as usize];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            (x, y) = (x - 1, y - 1);
            ops.push(Op::Same(x as usize, y as usize));
        }
        if d > 0 {
            ops.push(match x == prev_x {
                true => Op::Insert(prev_y as usize),
                false => Op::Delete(prev_x as usize),
            });
        }
        (x, y) = (prev_x, prev_y);
    }
    ops.reverse();
    ops
}

/// Within each run of changes, deletions come before insertions (as `diff -u` prints).
fn deletions_first(ops: &mut [Op]) {
    for run in ops.split_mut(|op| matches!(op, Op::Same(..))) {
        run.sort_by_key(|op| match *op {
            Op::Delete(i) => (0, i),
            Op::Insert(j) => (1, j),
            Op::Same(..) => unreachable!("runs hold changes only"),
        });
    }
}

/// The op ranges of the hunks: changes with `CONTEXT` lines around them, merged when
/// their contexts touch.
fn hunks(ops: &[Op]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for (at, _) in ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(..)))
    {
        let start = at.saturating_sub(CONTEXT);
        let end = (at + 1 + CONTEXT).min(ops.len());
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = end,
            _ => out.push(start..end),
        }
    }
    out
}

fn write_hunk(out: &mut String, ops: &[Op], a: &[&str], b: &[&str]) {
    let old_at = ops.iter().find_map(|op| match *op {
        Op::Same(i, _) | Op::Delete(i) => Some(i),
        Op::Insert(_) => None,
    });
    let new_at = ops.iter().find_map(|op| match *op {
        Op::Same(_, j) | Op::Insert(j) => Some(j),
        Op::Delete(_) => None,
    });
    let old_n = ops.iter().filter(|op| !matches!(op, Op::Insert(_))).count();
    let new_n = ops.iter().filter(|op| !matches!(op, Op::Delete(_))).count();
    // With context around every change, a side has no line in a hunk only when it is
    // empty: the hunk then starts at line 0 of that side.
    let old_start = old_at.unwrap_or(0);
    let new_start = new_at.unwrap_or(0);
    out.push_str(&format!(
        "@@ -{} +{} @@\n",
        range(old_start, old_n),
        range(new_start, new_n)
    ));
    for op in ops {
        let (mark, line) = match *op {
            Op::Same(i, _) => (' ', a[i]),
            Op::Delete(i) => ('-', a[i]),
            Op::Insert(j) => ('+', b[j]),
        };
        out.push(mark);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

/// `start,count` from a 0-based start, `start` alone for one line, `0,0` for none.
fn range(start: usize, count: usize) -> String {
    match count {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        _ => format!("{},{count}", start + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("l{i}\n")).collect()
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified_diff("x", "x", "a\nb\n", "a\nb\n"), "");
        assert_eq!(unified_diff("x", "x", "", ""), "");
    }

    #[test]
    fn one_change_with_three_lines_of_context() {
        let old = numbered(10);
        let new = old.replace("l5\n", "L5\n");
        let want = "--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+L5\n l6\n l7\n l8\n";
        assert_eq!(unified_diff("f", "f", &old, &new), want);
    }

    #[test]
    fn near_changes_share_a_hunk_and_far_ones_do_not() {
        let old = numbered(20);
        let new = old
            .replace("l2\n", "L2\n")
            .replace("l8\n", "L8\n")
            .replace("l19\n", "L19\n");
        let want = "--- a/Dockerfile\n+++ b/Dockerfile\n\
                    @@ -1,11 +1,11 @@\n l1\n-l2\n+L2\n l3\n l4\n l5\n l6\n l7\n-l8\n+L8\n l9\n l10\n l11\n\
                    @@ -16,5 +16,5 @@\n l16\n l17\n l18\n-l19\n+L19\n l20\n";
        assert_eq!(unified_diff("Dockerfile", "Dockerfile", &old, &new), want);
    }

    #[test]
    fn seven_equal_lines_split_hunks() {
        let old = numbered(9);
        let new = old.replace("l1\n", "L1\n").replace("l9\n", "L9\n");
        let got = unified_diff("f", "f", &old, &new);
        assert_eq!(got.matches("@@ -").count(), 2, "{got}");
        let new = numbered(8).replace("l1\n", "L1\n").replace("l8\n", "L8\n");
        let got = unified_diff("f", "f", &numbered(8), &new);
        assert_eq!(got.matches("@@ -").count(), 1, "{got}");
    }

    #[test]
    fn insertions_deletions_and_single_line_ranges() {
        let want = "--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\n+x\n b\n";
        assert_eq!(unified_diff("f", "f", "a\nb\n", "a\nx\nb\n"), want);
        let want = "--- a/f\n+++ b/f\n@@ -1,3 +1,2 @@\n a\n-x\n b\n";
        assert_eq!(unified_diff("f", "f", "a\nx\nb\n", "a\nb\n"), want);
        let want = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(unified_diff("f", "f", "a\n", "b\n"), want);
        let want = "--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+a\n+b\n";
        assert_eq!(unified_diff("f", "f", "", "a\nb\n"), want);
        let want = "--- a/f\n+++ b/f\n@@ -1 +0,0 @@\n-a\n";
        assert_eq!(unified_diff("f", "f", "a\n", ""), want);
        let want = "--- a/f\n+++ b/f\n@@ -1,3 +1,4 @@\n-a\n-b\n+x\n+y\n c\n+d\n";
        assert_eq!(unified_diff("f", "f", "a\nb\nc\n", "x\ny\nc\nd\n"), want);
    }

    #[test]
    fn missing_final_newlines_are_marked() {
        let want = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n";
        assert_eq!(unified_diff("f", "f", "a\nb", "a\nc"), want);
        let want = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n";
        assert_eq!(unified_diff("f", "f", "a\nb", "a\nb\n"), want);
    }

    #[test]
    fn crlf_lines_keep_their_carriage_returns() {
        let want = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-FROM a\r\n+FROM a:1@x\r\n RUN b\r\n";
        assert_eq!(
            unified_diff("f", "f", "FROM a\r\nRUN b\r\n", "FROM a:1@x\r\nRUN b\r\n"),
            want
        );
    }

    #[test]
    fn gnu_patch_applies_the_diff_when_installed() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let old = format!("{}no newline", numbered(30)).replace("l7\n", "l7\r\n");
        let new = old
            .replace("l3\n", "L3\n")
            .replace("l7\r\n", "L7\r\n")
            .replace("l25\n", "")
            .replace("no newline", "changed");
        let diff = unified_diff("sub/f", "sub/f", &old, &new);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), &old).unwrap();
        let child = std::process::Command::new("patch")
            .args(["-p1", "--quiet", "--binary"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else { return }; // no patch here: the format tests suffice
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(diff.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "{diff}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/f")).unwrap(),
            new
        );
    }
}
