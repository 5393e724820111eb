//! What a CSV cell means, defined once: the reader, `mlp predict` and both exports (the
//! ONNX graph's patterns and the Rust file's `cell` function are generated from the
//! constants here) read a cell the same way.
//!
//! * Whitespace ([`WHITESPACE`]) at either end of a cell is not part of it: `" a "` is `a`.
//! * A cell that is then empty or one of [`MISSING_TOKENS`] (ignoring ASCII case) is
//!   missing.
//! * Any other cell is its trimmed text, and matches a category with exactly that text.
//! * A cell whose text is an ISO 8601 date or date-time ([`parse_date`]) is also a
//!   [`DateTime`], from which a date column's features are computed.

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

/// An RE2 pattern that fully matches exactly the cells that read as a date
/// ([`parse_date`] of the trimmed cell): the calendar's month lengths and leap years
/// (divisible by 4, and by 400 if by 100) written out, as a regular expression can.
pub fn date_pattern() -> String {
    let ws = whitespace_class();
    let leap = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)";
    let date = format!(
        "(?:[0-9]{{4}}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)\
         |(?:0[13578]|1[02])-31)|{leap}-02-29)"
    );
    let hour = "(?:[01][0-9]|2[0-3])";
    let time = format!(
        "(?:[T ]{hour}:[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]+)?)?(?:Z|[+-]{hour}:[0-5][0-9])?)?"
    );
    format!("{ws}*{date}{time}{ws}*")
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

/// A date or date-time as a cell writes it: `YYYY-MM-DD`, optionally followed by `T` or a
/// space and `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff`, then optionally `Z` or an offset
/// `±HH:MM`. The calendar fields are the local ones, as written; the offset turns them
/// into an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateTime {
    /// Year, 0 to 9999.
    pub year: i32,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
    /// Seconds since local midnight (0 for a date alone), below 86 400.
    pub seconds: f64,
    /// Minutes the local time is ahead of UTC (`+02:00` is 120; none, or `Z`, is 0).
    pub offset_minutes: i32,
    /// Whether the cell holds a time of day (a date alone does not).
    pub has_time: bool,
}

/// The date or date-time a (trimmed) cell holds, or `None` if it holds something else,
/// including an impossible date (`2023-02-29`) or time (`24:00`, `12:60`).
pub fn parse_date(text: &str) -> Option<DateTime> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])? as i32;
    let (month, day) = (digits(&b[5..7])?, digits(&b[8..10])?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut date = DateTime {
        year,
        month,
        day,
        seconds: 0.0,
        offset_minutes: 0,
        has_time: false,
    };
    if b.len() == 10 {
        return Some(date);
    }
    if !matches!(b[10], b'T' | b' ') {
        return None;
    }
    let (seconds, rest) = time_of_day(&b[11..])?;
    date.seconds = seconds;
    date.has_time = true;
    date.offset_minutes = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = (h * 60 + m) as i32;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    Some(date)
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff` at the start of `b`: the seconds since midnight
/// and what follows.
fn time_of_day(b: &[u8]) -> Option<(f64, &[u8])> {
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let (hour, minute) = (digits(&b[0..2])?, digits(&b[3..5])?);
    if hour > 23 || minute > 59 {
        return None;
    }
    let mut seconds = (hour * 3600 + minute * 60) as f64;
    let mut rest = &b[5..];
    if let [b':', s1, s2, tail @ ..] = rest {
        let second = digits(&[*s1, *s2])?;
        if second > 59 {
            return None;
        }
        seconds += second as f64;
        rest = tail;
        if let [b'.', tail @ ..] = rest {
            let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            let fraction: f64 = std::str::from_utf8(&rest[..=n]).ok()?.parse().ok()?;
            seconds += fraction;
            rest = &tail[n..];
        }
    }
    Some((seconds, rest))
}

/// The number that ASCII digits `b` write, or `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<u32> {
    (b.iter()).try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u32)
    })
}

/// Whether `year` has a 29 February (Gregorian calendar, also before 1582).
pub fn is_leap_year(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1 to 12) of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `year-month-day` (negative before it), by Howard Hinnant's
/// `days_from_civil`: the year is counted from March, so that the leap day comes last.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = year as i64 - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let mp = (month as i64 + 9) % 12; // March is 0
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn dates_and_date_times_parse_with_their_fields() {
        let d = parse_date("2024-03-05").unwrap();
        assert_eq!((d.year, d.month, d.day, d.seconds), (2024, 3, 5, 0.0));
        assert!(!d.has_time);
        let t = parse_date("2024-03-05T23:30-05:00").unwrap();
        assert_eq!((t.day, t.seconds, t.offset_minutes), (5, 84_600.0, -300));
        assert!(t.has_time);
        let t = parse_date("1999-12-31 08:05:09.25+02:30").unwrap();
        assert_eq!((t.seconds, t.offset_minutes), (29_109.25, 150));
        assert_eq!(
            parse_date("2013-01-01T06:00:00Z").unwrap().seconds,
            21_600.0
        );
        // Leap days exist in leap years only: 2000 (by 400) yes, 1900 (by 100) no.
        assert!(parse_date("2024-02-29").is_some() && parse_date("2000-02-29").is_some());
        assert!(parse_date("2023-02-29").is_none() && parse_date("1900-02-29").is_none());
        for bad in [
            "2024-3-05",
            "24-03-05",
            "2024/03/05",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-03-05T",
            "2024-03-05T24:00",
            "2024-03-05T12:60",
            "2024-03-05T12:00:60",
            "2024-03-05T12:00:00.",
            "2024-03-05t12:00",
            "2024-03-05T12:00z",
            "2024-03-05T12:00+2",
            "2024-03-05T12:00+02:60",
            "2024-03-05  12:00",
            "2024-03-05x",
            "20240305",
            "+2024-03-05",
            "2024-03-05T1200",
            "２０２４-03-05",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_count_from_the_unix_epoch() {
        // Python: (date(y, m, d) - date(1970, 1, 1)).days
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 3, 5), 19_787);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(1, 1, 1), -719_162);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
        assert_eq!((days_in_month(2024, 2), days_in_month(2100, 2)), (29, 28));
    }
}
