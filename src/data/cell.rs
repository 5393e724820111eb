//! What a CSV cell means, defined once: the reader, `mlp predict` and both exports (the
//! ONNX graph's patterns and the Rust file's `cell` function are generated from the
//! constants here) read a cell the same way.
//!
//! * Whitespace ([`WHITESPACE`]) at either end of a cell is not part of it: `" a "` is `a`.
//! * A cell that is then empty or one of [`MISSING_TOKENS`] (ignoring ASCII case) is
//!   missing.
//! * Any other cell is its trimmed text, and matches a category with exactly that text.

/// The characters trimmed from both ends of a cell: Unicode `White_Space`, what
/// [`char::is_whitespace`] and [`str::trim`] (so the `csv` crate's `Trim::All`) remove.
pub const WHITESPACE: [char; 25] = [
    '\t', '\n', '\u{0B}', '\u{0C}', '\r', ' ', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}',
    '\u{2001}', '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}',
    '\u{2009}', '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}',
];

/// The texts of a missing cell besides the empty one, compared ignoring ASCII case.
pub const MISSING_TOKENS: [&str; 5] = ["?", "NA", "N/A", "NaN", "null"];

/// A cell without the whitespace at its ends.
pub fn trim(raw: &str) -> &str {
    raw.trim_matches(WHITESPACE)
}

/// Whether a cell (already trimmed) means "no value".
pub fn is_missing_token(cell: &str) -> bool {
    cell.is_empty() || MISSING_TOKENS.iter().any(|t| cell.eq_ignore_ascii_case(t))
}

/// A cell's text as `mlp` reads it: trimmed, or `None` for a missing cell.
pub fn cell(raw: &str) -> Option<&str> {
    let text = trim(raw);
    (!is_missing_token(text)).then_some(text)
}

/// Whether some cell reads as `category` (one with whitespace at its ends, or one that is
/// a missing token, never does).
pub fn is_possible_category(category: &str) -> bool {
    cell(category) == Some(category)
}

/// An RE2 pattern (as ONNX `RegexFullMatch` takes it) that fully matches exactly the cells
/// that read as `category`, or `None` if no cell does ([`is_possible_category`]).
pub fn category_pattern(category: &str) -> Option<String> {
    is_possible_category(category).then(|| {
        let ws = whitespace_class();
        format!("{ws}*{}{ws}*", re2_literal(category, false))
    })
}

/// An RE2 pattern that fully matches exactly the missing cells: whitespace, or one of
/// [`MISSING_TOKENS`] in any ASCII case between whitespace.
pub fn missing_pattern() -> String {
    let ws = whitespace_class();
    let tokens: Vec<String> = MISSING_TOKENS
        .iter()
        .map(|t| re2_literal(t, true))
        .collect();
    format!("{ws}*(?:{})?{ws}*", tokens.join("|"))
}

/// `[...]` of [`WHITESPACE`], each as `\x{..}`.
fn whitespace_class() -> String {
    let chars: String = WHITESPACE
        .iter()
        .map(|&c| format!("\\x{{{:X}}}", c as u32))
        .collect();
    format!("[{chars}]")
}

/// `text` as an RE2 pattern that matches it literally; with `any_ascii_case`, ASCII
/// letters match in either case (`[nN]`), as [`str::eq_ignore_ascii_case`] compares.
fn re2_literal(text: &str, any_ascii_case: bool) -> String {
    let mut pattern = String::new();
    for c in text.chars() {
        if any_ascii_case && c.is_ascii_alphabetic() {
            let (lower, upper) = (c.to_ascii_lowercase(), c.to_ascii_uppercase());
            pattern.push_str(&format!("[{lower}{upper}]"));
        } else if c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii() {
            pattern.push(c);
        } else {
            // Punctuation, spaces and control characters, by code.
            pattern.push_str(&format!("\\x{{{:X}}}", c as u32));
        }
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_what_str_trim_removes() {
        let listed = |c: char| WHITESPACE.contains(&c);
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "U+{:04X}", c as u32);
        }
        // Not White_Space, so kept: zero-width space and the Mongolian vowel separator.
        assert_eq!(trim("\u{200B}a\u{180E}"), "\u{200B}a\u{180E}");
        assert_eq!(trim("\u{A0}\t a b\u{3000}\r\n"), "a b");
    }

    #[test]
    fn missing_tokens_in_any_ascii_case_and_padded_are_missing() {
        for raw in [
            "", "  ", "\t", "?", "na", "NA", " Na ", "n/a", "N/A", "nan", "NAN",
        ] {
            assert_eq!(cell(raw), None, "{raw:?}");
        }
        for raw in ["null", "NULL", "Null", "\u{A0}nUlL\u{A0}"] {
            assert_eq!(cell(raw), None, "{raw:?}");
        }
        assert_eq!(cell(" a "), Some("a"));
        assert_eq!(cell("old town\t"), Some("old town"));
        assert_eq!(cell("N A"), Some("N A"));
        assert_eq!(cell("??"), Some("??"));
        assert_eq!(cell("nulls"), Some("nulls"));
        assert!(is_possible_category("a b"));
        assert!(!is_possible_category(" a") && !is_possible_category("NA"));
    }

    #[test]
    fn patterns_are_built_from_the_constants() {
        let ws = "[\\x{9}\\x{A}\\x{B}\\x{C}\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}\
                  \\x{2001}\\x{2002}\\x{2003}\\x{2004}\\x{2005}\\x{2006}\\x{2007}\\x{2008}\
                  \\x{2009}\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}]";
        assert_eq!(
            category_pattern("old town.").unwrap(),
            format!("{ws}*old\\x{{20}}town\\x{{2E}}{ws}*")
        );
        assert_eq!(category_pattern("é_1").unwrap(), format!("{ws}*é_1{ws}*"));
        assert_eq!(category_pattern(" a"), None);
        assert_eq!(
            missing_pattern(),
            format!(
                "{ws}*(?:\\x{{3F}}|[nN][aA]|[nN]\\x{{2F}}[aA]|[nN][aA][nN]|[nN][uU][lL][lL])?{ws}*"
            )
        );
    }
}
