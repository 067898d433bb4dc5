//! Making untrusted text safe to show on a terminal.
//!
//! Server-supplied strings (names, descriptions, instructions, stderr) may carry escape
//! sequences that drive the terminal, bidirectional overrides that reorder what a reviewer
//! sees, or invisible characters. Before display every such character is shown escaped.

/// True for characters that must never reach a terminal raw.
pub fn is_hazardous(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}'              // zero-width no-break space
            | '\u{E0000}'..='\u{E007F}' // tag characters (invisible text)
        )
}

/// Escapes every character outside printable ASCII as `\u{XXXX}`: where look-alikes are the
/// point, a reader must see which letters are not the ones they seem.
pub fn escape_non_ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c.to_string()
            } else {
                format!("\\u{{{:04X}}}", c as u32)
            }
        })
        .collect()
}

/// Escapes hazardous characters: `\n`, `\t`, `\r`, `\e` for the common ones, `\u{XXXX}` for
/// the rest. A backslash is left alone: it is harmless to a terminal.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !is_hazardous(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            _ => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        }
    }
    out
}

/// The first line of `s` (up to a newline), escaped, cut to `max_chars` characters with an
/// ellipsis when longer. Used for one-line summaries of descriptions.
pub fn summary_line(s: &str, max_chars: usize) -> String {
    let first = s.trim_start().split(['\n', '\r']).next().unwrap_or("");
    let escaped = escape(first.trim_end());
    if escaped.chars().count() <= max_chars {
        let more = s.trim().contains(['\n', '\r']);
        if more && !escaped.is_empty() {
            return format!("{escaped} …");
        }
        return escaped;
    }
    let cut: String = escaped.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_terminal_controls() {
        assert_eq!(escape("a\u{1b}[31mred"), "a\\e[31mred");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("tab\there\r\n"), "tab\\there\\r\\n");
        assert_eq!(escape("bell\u{7}"), "bell\\u{0007}");
        assert_eq!(escape("c1\u{9b}"), "c1\\u{009b}");
        assert_eq!(escape("zw\u{200b}"), "zw\\u{200b}");
        assert_eq!(escape("plain — ünïcode ✓"), "plain — ünïcode ✓");
    }

    #[test]
    fn summarizes_first_line() {
        assert_eq!(summary_line("Hello world", 80), "Hello world");
        assert_eq!(summary_line("Hello\nmore text", 80), "Hello …");
        assert_eq!(summary_line("abcdefghij", 5), "abcd…");
        assert_eq!(
            summary_line("\u{1b}]0;pwned\u{7}", 80),
            "\\e]0;pwned\\u{0007}"
        );
        assert_eq!(summary_line("", 10), "");
    }
}
