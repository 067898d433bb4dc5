//! A rewrite of a config as byte-range edits, and the unified diff that shows it to the user.
//!
//! The diff is built from the edits, not by comparing the two texts: comparing is quadratic in
//! the number of changed lines (20,000 wrapped entries took minutes), while each edit already
//! says where the change is. Lines inside one small hunk are still compared, so a wrapped entry
//! shows the lines that changed; a hunk too large to compare is shown whole.

/// One replaced byte range of a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Lines of context around each change.
const CONTEXT: usize = 2;
/// A hunk with more lines than this on either side is shown as removed and added, not
/// compared line by line (comparing is quadratic in its size).
const COMPARED_LINES: usize = 2_000;

/// `text` with `edits` (which do not overlap) applied, in one pass; the edits come back sorted.
pub fn apply(text: &str, edits: &mut [Edit]) -> String {
    edits.sort_by_key(|e| e.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for edit in edits.iter() {
        out.push_str(&text[at..edit.start]);
        out.push_str(&edit.text);
        at = edit.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The start of the line that holds byte `at`.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The end (after its newline) of the line that holds byte `at`: an edit ending at a line's
/// start may join its replacement to that line, so the line is part of the hunk.
fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}

/// Up to `n` whole lines before byte `at` (a line start).
fn lines_before(text: &str, at: usize, n: usize) -> usize {
    let mut start = at;
    for _ in 0..n {
        if start == 0 {
            break;
        }
        start = line_start(text, start - 1);
    }
    start
}

/// Up to `n` whole lines after byte `at` (a line start).
fn lines_after(text: &str, at: usize, n: usize) -> usize {
    let mut end = at;
    for _ in 0..n {
        if end >= text.len() {
            break;
        }
        end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
    }
    end
}

/// Whole lines of the old text that edits touch, and the edits inside them.
struct Region<'e> {
    start: usize,
    end: usize,
    edits: Vec<&'e Edit>,
}

impl Region<'_> {
    /// The region's lines as the rewrite leaves them.
    fn rewritten(&self, old: &str) -> String {
        let mut new = String::new();
        let mut at = self.start;
        for edit in &self.edits {
            new.push_str(&old[at..edit.start]);
            new.push_str(&edit.text);
            at = edit.end;
        }
        new.push_str(&old[at..self.end]);
        new
    }
}

/// The edits as regions of whole lines (edits that share a line share a region), grouped
/// into hunks (regions close enough for their contexts to meet).
fn hunks<'e>(old: &str, edits: &'e [Edit]) -> Vec<Vec<Region<'e>>> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| e.start);
    let mut regions: Vec<Region> = Vec::new();
    for edit in sorted {
        let (start, end) = (line_start(old, edit.start), line_end(old, edit.end));
        match regions.last_mut() {
            Some(last) if last.end > start => {
                last.end = last.end.max(end);
                last.edits.push(edit);
            }
            _ => regions.push(Region {
                start,
                end,
                edits: vec![edit],
            }),
        }
    }
    let mut hunks: Vec<Vec<Region>> = Vec::new();
    for region in regions {
        match hunks.last_mut().and_then(|h| h.last().map(|r| r.end)) {
            Some(end) if lines_after(old, end, 2 * CONTEXT) >= region.start => {
                if let Some(hunk) = hunks.last_mut() {
                    hunk.push(region);
                }
            }
            _ => hunks.push(vec![region]),
        }
    }
    hunks
}

/// A unified diff (two lines of context) of `old` rewritten by `edits`, labelled `label`;
/// empty when nothing changes. Linear in the size of the text.
pub fn unified_diff(old: &str, edits: &[Edit], label: &str) -> String {
    let mut out = String::new();
    let (mut old_line, mut counted_to, mut delta) = (1usize, 0usize, 0isize);
    for hunk in hunks(old, edits) {
        let (Some(first), Some(last)) = (hunk.first(), hunk.last()) else {
            continue;
        };
        let before = lines_before(old, first.start, CONTEXT);
        let after = lines_after(old, last.end, CONTEXT);
        old_line += old[counted_to..before].matches('\n').count();
        counted_to = before;
        let rewritten: Vec<String> = hunk.iter().map(|r| r.rewritten(old)).collect();
        let mut body = Vec::new();
        let mut at = before;
        for (region, new) in hunk.iter().zip(&rewritten) {
            push_lines(&mut body, ' ', &old[at..region.start]);
            compare(&mut body, &old[region.start..region.end], new);
            at = region.end;
        }
        push_lines(&mut body, ' ', &old[at..after]);
        if body.iter().all(|(tag, _)| *tag == ' ') {
            continue;
        }
        let removed = body.iter().filter(|(tag, _)| *tag != '+').count();
        let added = body.iter().filter(|(tag, _)| *tag != '-').count();
        if out.is_empty() {
            out.push_str(&format!("--- {label}\n+++ {label}\n"));
        }
        let new_line = old_line as isize + delta;
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(old_line, removed),
            range(new_line.max(0) as usize, added)
        ));
        for (tag, line) in body {
            out.push(tag);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
        delta += added as isize - removed as isize;
    }
    out
}

/// A hunk's range as unified diffs write it (`LINE,COUNT`, the line before when empty).
fn range(line: usize, count: usize) -> String {
    match count {
        0 => format!("{},0", line.saturating_sub(1)),
        1 => line.to_string(),
        n => format!("{line},{n}"),
    }
}

fn push_lines<'a>(body: &mut Vec<(char, &'a str)>, tag: char, text: &'a str) {
    body.extend(text.split_inclusive('\n').map(|line| (tag, line)));
}

/// The lines of one hunk, compared when it is small enough.
fn compare<'a>(body: &mut Vec<(char, &'a str)>, old: &'a str, new: &'a str) {
    let small = |t: &str| t.matches('\n').count() <= COMPARED_LINES;
    if !(small(old) && small(new)) {
        push_lines(body, '-', old);
        push_lines(body, '+', new);
        return;
    }
    let diff = similar::TextDiff::from_lines(old, new);
    for change in diff.iter_all_changes() {
        let tag = match change.tag() {
            similar::ChangeTag::Equal => ' ',
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
        };
        body.push((tag, change.value()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn edit(start: usize, end: usize, text: &str) -> Edit {
        Edit {
            start,
            end,
            text: text.into(),
        }
    }

    /// Applies a unified diff to `old` (the reverse of what produced it), so the test checks
    /// the diff says exactly what changed.
    fn patch(old: &str, diff: &str) -> String {
        let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
        let mut out = String::new();
        let mut next = 0usize;
        let mut lines = diff.lines().skip(2).peekable();
        while let Some(header) = lines.next() {
            let spec = header.trim_start_matches("@@ -");
            let first: usize = spec.split([',', ' ']).next().unwrap().parse().unwrap();
            let count = spec
                .split(' ')
                .next()
                .unwrap()
                .split(',')
                .nth(1)
                .map_or(1, |c| c.parse().unwrap());
            let start = if count == 0 { first } else { first - 1 };
            for line in &old_lines[next..start] {
                out.push_str(line);
            }
            next = start;
            while let Some(line) = lines.peek() {
                if line.starts_with("@@") {
                    break;
                }
                let line = lines.next().unwrap();
                let no_newline = lines.peek() == Some(&"\\ No newline at end of file");
                if no_newline {
                    lines.next();
                }
                let eol = if no_newline { "" } else { "\n" };
                match line.chars().next() {
                    Some(' ') => {
                        out.push_str(&line[1..]);
                        out.push_str(eol);
                        next += 1;
                    }
                    Some('-') => next += 1,
                    Some('+') => {
                        out.push_str(&line[1..]);
                        out.push_str(eol);
                    }
                    _ => panic!("unexpected line {line:?}"),
                }
            }
        }
        for line in &old_lines[next..] {
            out.push_str(line);
        }
        out
    }

    #[test]
    fn a_diff_shows_the_changed_lines_with_their_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
        let mut edits = vec![edit(2, 3, "B"), edit(22, 23, "L\nM")];
        let diff = unified_diff(old, &edits, "f");
        assert_eq!(
            diff,
            "--- f\n+++ f\n@@ -1,4 +1,4 @@\n a\n-b\n+B\n c\n d\n@@ -10,3 +10,4 @@\n j\n k\n-l\n+L\n+M\n"
        );
        assert_eq!(patch(old, &diff), apply(old, &mut edits));
        assert_eq!(unified_diff(old, &[], "f"), "");
    }

    #[test]
    fn edits_close_together_share_one_hunk_and_a_last_line_without_newline_is_marked() {
        let old = "a\nb\nc\nd\ne";
        let mut edits = vec![edit(0, 1, "A"), edit(8, 9, "E")];
        let diff = unified_diff(old, &edits, "f");
        assert_eq!(diff.matches("@@ -").count(), 1, "{diff}");
        assert!(
            diff.ends_with("-e\n\\ No newline at end of file\n+E\n\\ No newline at end of file\n"),
            "{diff}"
        );
        assert_eq!(patch(old, &diff), apply(old, &mut edits));
    }

    fn text_and_edits() -> impl Strategy<Value = (String, Vec<Edit>)> {
        proptest::collection::vec("[ab\n]{0,6}", 1..12).prop_flat_map(|pieces| {
            let n = pieces.len();
            (
                Just(pieces),
                proptest::collection::vec(proptest::option::of("[xy\n]{0,5}"), n),
            )
                .prop_map(|(pieces, replacements)| {
                    let mut text = String::new();
                    let mut edits = Vec::new();
                    for (piece, replacement) in pieces.iter().zip(replacements) {
                        let start = text.len();
                        text.push_str(piece);
                        if let Some(r) = replacement {
                            edits.push(edit(start, text.len(), &r));
                        }
                    }
                    (text, edits)
                })
        })
    }

    proptest! {
        /// The diff is exact: applied to the old text it gives the rewritten text, and it is
        /// empty only when the rewrite changes nothing.
        #[test]
        fn the_diff_applied_to_the_old_text_gives_the_new((old, mut edits) in text_and_edits()) {
            let diff = unified_diff(&old, &edits, "f");
            let new = apply(&old, &mut edits);
            prop_assert_eq!(patch(&old, &diff), new.clone());
            prop_assert_eq!(diff.is_empty(), old == new);
        }
    }
}
