//! Folding text for phrase matching, so that a finding phrase cannot be hidden by how it is
//! spelled: "ig\u{AD}nore previous instructions" (a soft hyphen), "ＩＧＮＯＲＥ" (fullwidth),
//! "іgnore" (a Cyrillic і) or "ignore\u{A0}previous" (a no-break space) all fold to the same
//! text as "ignore previous instructions".
//!
//! Each character of the original is folded on its own, in this order:
//! 1. dropped if it is default-ignorable (Unicode `Default_Ignorable_Code_Point`: soft hyphen,
//!    U+034F, Hangul fillers, variation selectors, zero-width and bidi controls, tags, …) or of
//!    general category `Cf` (format);
//! 2. dropped if it is whitespace (`char::is_whitespace`: no-break spaces, ideographic space,
//!    line separators, newlines, tabs) or U+2800 (Braille blank): phrases match however they
//!    are spaced. Collapsing runs of spaces to one would not do: the Hangul filler U+3164 is
//!    default-ignorable (dropped inside a word, "ig\u{3164}nore") yet shows as a blank (so it
//!    also stands for a space, "ignore\u{3164}previous"), and "i g n o r e" reads as "ignore"
//!    to a model; matching without spaces finds all three. The phrases are long enough that
//!    ignoring spaces adds no false positive on the real servers' texts (docs/benchmarks.md);
//! 3. otherwise NFKC, lowercase, UTS #39 confusable skeleton (`unicode-security`), lowercase
//!    again, and combining marks removed.
//!
//! Folding per character, not per string, is what lets every folded byte name the original
//! character it came from (a span found in the folded text maps back to a span of the
//! original). It differs from NFKC and skeleton of the whole string only in composing a letter
//! with a following combining mark, which the skeleton's own NFD undoes, and the marks are
//! removed anyway.
//!
//! Work and memory are linear in the text: at most a few dozen folded bytes per character, and
//! one origin offset per folded byte.

use std::sync::OnceLock;
use unicode_normalization::UnicodeNormalization;

/// Unicode `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt; the same table as the
/// one `unicode-security` filters with, which a test checks).
pub(crate) const DEFAULT_IGNORABLE: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{34f}', '\u{34f}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{115f}', '\u{1160}'),
    ('\u{17b4}', '\u{17b5}'),
    ('\u{180b}', '\u{180f}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{206f}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{fe00}', '\u{fe0f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{ffa0}', '\u{ffa0}'),
    ('\u{fff0}', '\u{fff8}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0000}', '\u{e0fff}'),
];

/// General category `Cf` (format) outside [`DEFAULT_IGNORABLE`] (UnicodeData.txt, Unicode
/// 16): Arabic and Syriac number marks, interlinear annotation, Egyptian format controls.
pub(crate) const FORMAT: &[(char, char)] = &[
    ('\u{600}', '\u{605}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
];

fn in_table(c: char, table: &[(char, char)]) -> bool {
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// True for characters folding drops: default-ignorable or format (`Cf`), and C0/C1 controls
/// other than whitespace (they are reported as hidden characters on their own).
pub fn is_ignorable(c: char) -> bool {
    (c.is_control() && !c.is_whitespace())
        || (!c.is_ascii() && (in_table(c, DEFAULT_IGNORABLE) || in_table(c, FORMAT)))
}

/// True for the spaces folding drops.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{2800}'
}

/// Text folded for phrase matching, with the original byte offset of the character each of
/// its bytes came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folded {
    pub text: String,
    origin: Vec<usize>,
}

impl Folded {
    /// The span of the original `source` (the text this was folded from) that the folded
    /// span `start..end` came from: from the start of the original character of its first byte
    /// to the end of the original character of its last byte. It covers every character that
    /// was dropped or collapsed inside the match, and always lies on character boundaries.
    pub fn original_span(&self, source: &str, start: usize, end: usize) -> (usize, usize) {
        let Some(&from) = self.origin.get(start) else {
            return (source.len(), source.len());
        };
        let last = end
            .checked_sub(1)
            .and_then(|i| self.origin.get(i))
            .copied()
            .unwrap_or(from);
        let to = source
            .get(last..)
            .and_then(|rest| rest.chars().next())
            .map_or(source.len(), |c| last + c.len_utf8());
        (from, to.max(from))
    }
}

/// The fold of one non-space, non-ignorable character (see the module comment).
fn fold_char(c: char, out: &mut String) {
    let lower: String = std::iter::once(c)
        .nfkc()
        .flat_map(char::to_lowercase)
        .collect();
    for s in unicode_security::skeleton(&lower).flat_map(char::to_lowercase) {
        if !unicode_normalization::char::is_combining_mark(s) {
            out.push(s);
        }
    }
}

/// The folds of the ASCII characters, computed once.
fn ascii_folds() -> &'static [String] {
    static FOLDS: OnceLock<Vec<String>> = OnceLock::new();
    FOLDS.get_or_init(|| {
        (0u8..128)
            .map(|b| {
                let mut s = String::new();
                fold_char(char::from(b), &mut s);
                s
            })
            .collect()
    })
}

/// Folds `text` (see the module comment).
pub fn fold(text: &str) -> Folded {
    let ascii = ascii_folds();
    let mut folded = Folded {
        text: String::with_capacity(text.len()),
        origin: Vec::with_capacity(text.len()),
    };
    let mut scratch = String::new();
    for (at, c) in text.char_indices() {
        if is_space(c) || is_ignorable(c) {
            continue;
        }
        scratch.clear();
        match ascii.get(c as usize) {
            Some(fold) if c.is_ascii() => scratch.push_str(fold),
            _ => fold_char(c, &mut scratch),
        }
        // NFKC can make spaces (U+FDFA); a confusable prototype could be ignorable.
        for f in scratch
            .chars()
            .filter(|f| !is_space(*f) && !is_ignorable(*f))
        {
            let before = folded.text.len();
            folded.text.push(f);
            folded
                .origin
                .extend(std::iter::repeat_n(at, folded.text.len() - before));
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disguised_spellings_fold_to_the_plain_phrase() {
        let plain = fold("ignore previous instructions").text;
        assert_eq!(plain, "ignorepreviousinstructions");
        assert_eq!(plain, fold("IGNORE  previous\n\tinstructions").text);
        assert_eq!(plain, fold("i g n o r e previous instructions").text);
        for disguised in [
            "ig\u{ad}nore previous instructions",
            "ig\u{34f}nore previous instructions",
            "ignore\u{3164}previous instructions",
            "ignore\u{3164} previous instructions",
            "ignore\u{fe0f} previous\u{e0100} instructions",
            "ignore\u{a0}previous\u{202f}instructions",
            "ｉｇｎｏｒｅ　ｐｒｅｖｉｏｕｓ　ｉｎｓｔｒｕｃｔｉｏｎｓ",
            "іgnоrе рrеvіоus іnstruсtіоns",
            "ÏGNORE PRÉVIOUS INSTRUCTIONS",
            "ignore\u{2800}previous\u{200b}instructions",
        ] {
            assert_eq!(fold(disguised).text, plain, "{disguised:?}");
        }
    }

    #[test]
    fn spans_map_back_to_the_original_characters() {
        let text = "ok ｉｇ\u{ad}ｎｏｒｅ\u{a0}\u{a0}x ﬁ";
        let folded = fold(text);
        let start = folded.text.find("ignore").unwrap();
        let (from, to) = folded.original_span(text, start, start + "ignore".len());
        assert_eq!(&text[from..to], "ｉｇ\u{ad}ｎｏｒｅ");
        // Dropped characters inside a match are in its span.
        let end = folded.text.find('x').unwrap() + 1;
        let (_, to) = folded.original_span(text, start, end);
        assert_eq!(&text[from..to], "ｉｇ\u{ad}ｎｏｒｅ\u{a0}\u{a0}x");
        // Part of a character that folds to several (a ligature) maps to all of it.
        let i = folded.text.rfind('i').unwrap();
        assert_eq!(
            folded.original_span(text, i, i + 1),
            (text.len() - 3, text.len())
        );
        assert_eq!(
            folded.original_span(text, 99, 100),
            (text.len(), text.len())
        );
    }

    #[test]
    fn the_ignorable_table_is_the_one_of_unicode_security() {
        // The skeleton drops default-ignorable characters (and nothing else): the two tables
        // agree wherever the skeleton of one character is empty.
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            let empty = unicode_security::skeleton(c.encode_utf8(&mut [0; 4]))
                .next()
                .is_none();
            assert_eq!(empty, in_table(c, DEFAULT_IGNORABLE), "U+{:04X}", c as u32);
        }
    }
}
