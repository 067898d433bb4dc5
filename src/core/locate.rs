//! Where a value sits in a JSON text: the line and column of the member a JSON pointer names,
//! so a code-scanning alert points at the right line of the lockfile however it is formatted.

use jsonc_parser::ast::Value as Ast;
use jsonc_parser::common::Ranged;

/// A place in a text: 1-based line, 1-based column counted in Unicode code points (SARIF's
/// `unicodeCodePoints` column kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A parsed JSON text that can answer where its members are.
pub struct Located<'a> {
    text: &'a str,
    root: Option<Ast<'a>>,
    /// Byte offset where each line starts: a position is a binary search, not a rescan.
    line_starts: Vec<usize>,
}

/// Strict JSON: no comments, no trailing commas (a lockfile never has them).
const STRICT: jsonc_parser::ParseOptions = jsonc_parser::ParseOptions {
    allow_comments: false,
    allow_loose_object_property_names: false,
    allow_trailing_commas: false,
    allow_missing_commas: false,
    allow_single_quoted_strings: false,
    allow_hexadecimal_numbers: false,
    allow_unary_plus_numbers: false,
};

impl<'a> Located<'a> {
    /// Parses `text`; a text that is not JSON locates nothing (every lookup answers `None`).
    pub fn new(text: &'a str) -> Located<'a> {
        let root = jsonc_parser::parse_to_ast(text, &Default::default(), &STRICT)
            .ok()
            .and_then(|r| r.value);
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Located {
            text,
            root,
            line_starts,
        }
    }

    /// The position of the deepest member of `tokens` (a JSON pointer, unescaped) that exists,
    /// and how many tokens it matched: a member's position is where its key starts; with no
    /// token matched, where the document starts.
    pub fn find(&self, tokens: &[&str]) -> Option<(Position, usize)> {
        let mut value = self.root.as_ref()?;
        let mut at = value.range().start;
        let mut depth = 0;
        for token in tokens {
            let next = match value {
                Ast::Object(object) => object
                    .properties
                    .iter()
                    .find(|p| p.name.as_str() == *token)
                    .map(|p| (p.range.start, &p.value)),
                Ast::Array(array) => token
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| array.elements.get(i))
                    .map(|v| (v.range().start, v)),
                _ => None,
            };
            let Some((start, child)) = next else { break };
            at = start;
            value = child;
            depth += 1;
        }
        Some((self.position(at), depth))
    }

    fn position(&self, offset: usize) -> Position {
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        Position {
            line: line.max(1),
            column: self
                .text
                .get(start..offset)
                .map_or(0, |s| s.chars().count())
                + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "{\n  \"servers\": {\n    \"a/b\": {\n      \"tools\": {\n        \"échо\": {\"digest\": \"x\", \"list\": [1, {\"k\": 2}]}\n      }\n    }\n  }\n}\n";

    #[test]
    fn finds_members_by_line_and_code_point_column() {
        let located = Located::new(TEXT);
        let (pos, depth) = located.find(&["servers", "a/b", "tools", "échо"]).unwrap();
        assert_eq!((pos, depth), (Position { line: 5, column: 9 }, 4));
        let (pos, _) = located
            .find(&["servers", "a/b", "tools", "échо", "digest"])
            .unwrap();
        // "échо" is 4 code points but 6 bytes (é and the Cyrillic о are two bytes each):
        // counted in bytes, the column would be 20.
        assert_eq!(
            pos,
            Position {
                line: 5,
                column: 18
            }
        );
        let (pos, depth) = located
            .find(&["servers", "a/b", "tools", "échо", "list", "1", "k"])
            .unwrap();
        assert_eq!((pos.line, depth), (5, 7));
    }

    #[test]
    fn a_missing_member_falls_back_to_its_deepest_ancestor() {
        let located = Located::new(TEXT);
        let (pos, depth) = located.find(&["servers", "a/b", "prompts", "x"]).unwrap();
        assert_eq!((pos, depth), (Position { line: 3, column: 5 }, 2));
        let (pos, depth) = located.find(&[]).unwrap();
        assert_eq!((pos, depth), (Position { line: 1, column: 1 }, 0));
        assert!(Located::new("{not json").find(&["servers"]).is_none());
    }

    proptest::proptest! {
        /// The indexed position is the one counted from the start of the text.
        #[test]
        fn positions_match_a_count_from_the_start(text in "[a\\né\"{}]{0,200}", pick in 0usize..400) {
            let located = Located::new(&text);
            let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
            let offset = boundaries[pick % boundaries.len()];
            let before = &text[..offset];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let expected = Position {
                line: before.matches('\n').count() + 1,
                column: before[line_start..].chars().count() + 1,
            };
            proptest::prop_assert_eq!(located.position(offset), expected);
        }
    }

    #[test]
    fn pointer_tokens_unescape() {
        use crate::core::json::pointer_tokens;
        assert_eq!(pointer_tokens("/a~1b/c~0d"), vec!["a/b", "c~d"]);
        assert!(pointer_tokens("").is_empty());
        assert_eq!(pointer_tokens("/"), vec![""]);
    }
}
