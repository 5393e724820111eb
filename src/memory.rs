//! How much memory training may take: `--memory-limit` sizes, the machine's memory, and what
//! reading a file into memory costs.

/// Parses a size as people write it: plain bytes (`1000000`), or a number with a unit `K`,
/// `M`, `G` or `T` (powers of 1024, optionally followed by `B` or `iB`, any case):
/// `256M`, `2G`, `1.5GiB`.
///
/// The error says what was wrong and shows accepted forms (for `--memory-limit`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    const FORMS: &str = "write bytes or a number with K, M, G or T, e.g. 256M or 2G";
    let t = text.trim();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let value: f64 = match number.parse() {
        Ok(v) if !number.is_empty() => v,
        _ => return Err(format!("'{text}' is not a size; {FORMS}")),
    };
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit '{}'; {FORMS}",
                unit.trim()
            ));
        }
    };
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!(
            "'{text}' is not a usable amount of memory; {FORMS}"
        ));
    }
    Ok(bytes as u64)
}

/// A size for people: `256 MiB`, `1.5 GiB`, `812 KiB`, `17 B`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`), if it can be read.
pub fn total_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The default `--memory-limit`: half the machine's memory (the rest is for the system and
/// other programs), or 4 GiB where the machine's memory cannot be read.
pub fn default_limit() -> u64 {
    total_memory().map_or(4 << 30, |m| m / 2)
}

/// About how much memory `mlp train` needs to hold a CSV file of `file_bytes` in memory:
/// the file itself, its parsed columns and the encoded input matrix, each roughly as large
/// as the file for numeric data (measured on numeric files: peak resident memory was
/// 2.4 to 2.9 times the file size, see BENCHMARKS.md), plus the program itself.
pub fn in_memory_estimate(file_bytes: u64) -> u64 {
    const PROGRAM: u64 = 32 << 20;
    file_bytes.saturating_mul(3).saturating_add(PROGRAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_size("1000000"), Ok(1_000_000));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1.5GB"), Ok(3 << 29));
        assert_eq!(parse_size(" 64 MB "), Ok(64 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
    }

    #[test]
    fn malformed_sizes_say_what_is_accepted() {
        for (bad, want) in [
            ("", "'' is not a size"),
            ("G", "'G' is not a size"),
            ("-5M", "'-5M' is not a size"),
            ("1.2.3G", "'1.2.3G' is not a size"),
            ("256X", "'256X' has an unknown unit 'X'"),
            ("2 gigs", "'2 gigs' has an unknown unit 'gigs'"),
            ("0", "'0' is not a usable amount of memory"),
            (
                "99999999999T",
                "'99999999999T' is not a usable amount of memory",
            ),
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.starts_with(want), "{bad}: {e}");
            assert!(e.ends_with("e.g. 256M or 2G"), "{e}");
        }
    }

    #[test]
    fn sizes_print_for_people() {
        assert_eq!(format_size(17), "17 B");
        assert_eq!(format_size(256 << 20), "256 MiB");
        assert_eq!(format_size(3 << 29), "1.5 GiB");
        assert_eq!(format_size(1_000_000), "977 KiB");
        assert_eq!(format_size(20_000), "19.5 KiB");
    }

    #[test]
    fn the_estimate_grows_with_the_file() {
        assert_eq!(in_memory_estimate(0), 32 << 20);
        assert_eq!(in_memory_estimate(1 << 30), (3 << 30) + (32 << 20));
        assert_eq!(in_memory_estimate(u64::MAX), u64::MAX);
    }
}
