//! How much memory training may take: `--memory-limit` sizes, the machine's memory, and what
//! reading a file into memory costs.

use crate::pipeline::prepare::TrainRequest;
use crate::tabular::encoding::Scaling;

/// The least memory limit accepted: below it the program itself (its code, a chunk of the
/// file and a network) does not fit, and a run would take more than the limit says.
pub const MIN_MEMORY_LIMIT: u64 = 16 << 20;

/// A `--memory-limit`: a size ([`parse_size`]) of at least [`MIN_MEMORY_LIMIT`].
pub fn parse_limit(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if bytes < MIN_MEMORY_LIMIT {
        return Err(format!(
            "'{text}' is less than 16M, the least the program itself needs; give 16M or \
             more, e.g. 256M or 2G"
        ));
    }
    Ok(bytes)
}

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

/// The memory this process may have: the least of the machine's memory, its control
/// group's limit (`memory.max`, or `memory.limit_in_bytes` of cgroup v1), and what its
/// address-space limit (`ulimit -v`, `RLIMIT_AS`) leaves beyond what it already maps.
/// `None` where none of them can be read.
pub fn available_memory() -> Option<u64> {
    [total_memory(), cgroup_limit(), address_space_left()]
        .into_iter()
        .flatten()
        .min()
}

/// The default `--memory-limit`: half of [`available_memory`] (the rest is for the system,
/// other programs, and what the estimates leave out), or 4 GiB where it cannot be read.
pub fn default_limit() -> u64 {
    available_memory().map_or(4 << 30, |m| m / 2)
}

/// The memory limit of this process's control group, if it has one.
fn cgroup_limit() -> Option<u64> {
    // The group's path: "0::/user.slice/…" (v2) or "N:memory:/…" (v1).
    let groups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = |v2: bool| {
        groups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let wanted = if v2 {
                controllers.is_empty()
            } else {
                controllers.split(',').any(|c| c == "memory")
            };
            wanted.then(|| path.to_string())
        })
    };
    let read = |file: String| -> Option<u64> {
        let text = std::fs::read_to_string(file).ok()?;
        // "max" (v2) or a huge number (v1) is no limit.
        text.trim().parse().ok().filter(|&n: &u64| n < 1 << 60)
    };
    let v2 = path(true).unwrap_or_default();
    let v1 = path(false).unwrap_or_default();
    [
        format!("/sys/fs/cgroup{v2}/memory.max"),
        "/sys/fs/cgroup/memory.max".to_string(),
        format!("/sys/fs/cgroup/memory{v1}/memory.limit_in_bytes"),
        "/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string(),
    ]
    .into_iter()
    .filter_map(read)
    .min()
}

/// What the address-space limit (`ulimit -v`) leaves: the limit less the address space
/// already mapped (`VmSize`), if there is a limit.
fn address_space_left() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` into the valid struct it is given.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
        if !ok || limit.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mapped = (status.lines())
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024);
        Some(limit.rlim_cur.saturating_sub(mapped))
    }
    #[cfg(not(unix))]
    None
}

/// Refuses, before reading it, a file whose scoring with a model of `encoding` would need
/// more memory than `limit` (see [`scoring_estimate`]): for the commands that hold a whole
/// file in memory (importance, explain). `copies` counts the extra copies of the encoded
/// inputs the command makes (importance shuffles one).
pub fn check_scoring_fits(
    path: &std::path::Path,
    encoding: &crate::tabular::encoding::Encoding,
    copies: u64,
    limit: u64,
) -> crate::error::Result<()> {
    let factor = scoring_factor(encoding) * (1 + copies);
    check_fits(
        path,
        |bytes| in_memory_estimate(bytes, factor),
        limit,
        false,
    )
}

/// [`check_scoring_fits`] for a command that trains on the whole file in memory as
/// `request` asks ([`training_estimate`]; lr-find), under `limit`, given by
/// `--memory-limit` when `given`.
pub fn check_training_fits(
    request: &TrainRequest,
    limit: u64,
    given: bool,
) -> crate::error::Result<()> {
    check_fits(
        &request.data,
        |bytes| training_estimate(bytes, request),
        limit,
        given,
    )
}

/// Refuses the regular file at `path` if `estimate` of its size exceeds `limit` (from
/// `--memory-limit` when `given`); pipes and devices are not refused (their size is
/// unknown).
fn check_fits(
    path: &std::path::Path,
    estimate: impl Fn(u64) -> u64,
    limit: u64,
    given: bool,
) -> crate::error::Result<()> {
    let Some(bytes) = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
    else {
        return Ok(());
    };
    let need = estimate(bytes);
    if need <= limit {
        return Ok(());
    }
    let (whose, more) = if given {
        ("that --memory-limit allows", "raise --memory-limit")
    } else {
        (
            "this command may use (half of the memory available to it: the machine's, its \
             control group's limit, or ulimit -v)",
            "give the process more memory",
        )
    };
    Err(crate::error::Error::data(
        crate::error::Location {
            path: path.to_path_buf(),
            line: None,
            column: None,
        },
        format!(
            "holding this file of {} in memory would take about {}, more than the {} {whose}",
            format_size(bytes),
            format_size(need),
            format_size(limit)
        ),
        format!(
            "use a sample of the rows (head -n 100001 file.csv > sample.csv keeps the header \
             and 100,000 rows), or {more}"
        )
        .as_str(),
    ))
}

/// About how much memory holding a CSV file of `file_bytes` in memory takes: the file
/// itself and its parsed columns, each roughly as large as the file for numeric data, the
/// encoded input matrix, `encoded` times the file's size (see [`encoded_factor`]), and the
/// program itself. Measured peak resident memory on numeric files was 2.4 to 2.9 times the
/// file's size with numbers standardised alone (BENCHMARKS.md); on a 15.7 MB file of 20
/// numeric columns, 2.5 times, 6.5 times with the quantile bins, and 9.8 times with the bins
/// and a 3-fold ensemble.
pub fn in_memory_estimate(file_bytes: u64, encoded: u64) -> u64 {
    const PROGRAM: u64 = 32 << 20;
    file_bytes
        .saturating_mul(2 + encoded)
        .saturating_add(PROGRAM)
}

/// The encoded input matrix's size in file sizes, for [`in_memory_estimate`]: about once
/// with numbers standardised alone (4 bytes per number, against about as many characters of
/// text), about 5 times with quantile bins (up to 9 inputs per number).
pub fn encoded_factor(bins: bool) -> u64 {
    if bins { 5 } else { 1 }
}

/// [`encoded_factor`] for training as `request` asks: the bins if its scaling makes them.
pub fn training_factor(request: &TrainRequest) -> u64 {
    encoded_factor(request.scaling == Scaling::Piecewise)
}

/// [`encoded_factor`] for scoring with a model of `encoding`: the bins if it has them.
pub fn scoring_factor(encoding: &crate::tabular::encoding::Encoding) -> u64 {
    encoded_factor(
        (encoding.features.iter())
            .any(|f| matches!(f, crate::tabular::encoding::Feature::Piecewise { .. })),
    )
}

/// [`in_memory_estimate`] for training as `request` asks; a k-fold ensemble holds one more
/// copy of the inputs (each network's training and validation rows, taken from them).
pub fn training_estimate(file_bytes: u64, request: &TrainRequest) -> u64 {
    let copies = if request.config.folds >= 2 { 2 } else { 1 };
    in_memory_estimate(file_bytes, training_factor(request) * copies)
}

/// [`in_memory_estimate`] for scoring a file with a model of `encoding`.
pub fn scoring_estimate(file_bytes: u64, encoding: &crate::tabular::encoding::Encoding) -> u64 {
    in_memory_estimate(file_bytes, scoring_factor(encoding))
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
    fn the_estimate_grows_with_the_file_its_encoding_and_folds() {
        assert_eq!(in_memory_estimate(0, 1), 32 << 20);
        assert_eq!(in_memory_estimate(1 << 30, 1), (3 << 30) + (32 << 20));
        assert_eq!(in_memory_estimate(u64::MAX, 5), u64::MAX);
        // Numbers standardised alone, one network: the file three times over.
        let mut request = TrainRequest::new("big.csv");
        request.scaling = Scaling::Standard;
        request.config.folds = 0;
        let gib = 1u64 << 30;
        assert_eq!(training_estimate(gib, &request), 3 * gib + (32 << 20));
        // Quantile bins: 7 times; and with the default 3 folds' copy of the inputs, 12.
        request.scaling = Scaling::Piecewise;
        assert_eq!(training_estimate(gib, &request), 7 * gib + (32 << 20));
        request.config.folds = 3;
        assert_eq!(training_estimate(gib, &request), 12 * gib + (32 << 20));
        assert_eq!(
            training_estimate(gib, &TrainRequest::new("big.csv")),
            12 * gib + (32 << 20)
        );
    }
}
