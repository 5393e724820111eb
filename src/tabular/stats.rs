//! What the cells of a column say about it, gathered so that pieces merge: a table in
//! memory, each chunk of a streamed file and each process's share of a file all give
//! [`ColumnStats`], and merging them gives those of the whole file, bit for bit, in any
//! order. [`crate::tabular::encoding::Encoding::fit`] learns the encoding from them, the one way for
//! every mode.
//!
//! Counts, category counts and [`Moments`] merge by addition. The order statistics (the
//! median that fills a gap, the quantiles that cut bins) do not: each mode finds them
//! after the counts, exactly ([`OrderStats`](crate::tabular::median::OrderStats) over passes and
//! processes, or by sorting in memory), and writes them into [`Order`].

use std::collections::BTreeMap;

use num_bigint::BigInt;
use num_traits::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::data::cell::parse_date;
use crate::data::{Column, Table};

/// Count, mean and deviation of `f32` numbers, summed exactly: each number is an integer
/// times a power of two, and the integers are added per power (in `i128`, which 2⁶⁴
/// numbers cannot overflow). So the sums do not depend on the order the numbers came in,
/// and a file read whole, in chunks or by several processes gives the same mean and
/// deviation to the last bit. The deviation comes from `n·Σx² − (Σx)²`, computed exactly,
/// so no cancellation loses it even for values far from zero (timestamps, 1e30).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    n: u64,
    /// `Σ ±m` for the numbers `±m·2^(k−150)`, at index `k` (empty until the first number).
    sum: Vec<i128>,
    /// `Σ m²` for the same numbers: their squares are `m²·2^(2k−300)`.
    squares: Vec<i128>,
}

/// Powers `k` of [`Moments`]: 1 to 254, the exponents of finite `f32`s.
const POWERS: usize = 255;

impl Moments {
    /// The moments of `values`, leaving out `NaN` (a missing cell).
    pub fn of(values: impl Iterator<Item = f32>) -> Moments {
        let mut m = Moments::default();
        values.for_each(|v| m.add(v));
        m
    }

    /// Counts one more number; `NaN` (a missing cell) and infinities are left out.
    pub fn add(&mut self, v: f32) {
        if !v.is_finite() {
            return;
        }
        if self.sum.is_empty() {
            self.sum = vec![0; POWERS];
            self.squares = vec![0; POWERS];
        }
        let bits = v.to_bits();
        let exponent = ((bits >> 23) & 0xff) as usize;
        // Subnormals have no implicit bit and the exponent of the smallest normals.
        let implicit = if exponent > 0 { 1 << 23 } else { 0 };
        let m = ((bits & 0x7f_ffff) | implicit) as i128;
        let k = exponent.max(1);
        self.sum[k] += if v < 0.0 { -m } else { m };
        self.squares[k] += m * m;
        self.n += 1;
    }

    /// Adds the numbers counted by `other`.
    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other.clone();
            return;
        }
        for k in 0..POWERS {
            self.sum[k] += other.sum[k];
            self.squares[k] += other.squares[k];
        }
        self.n += other.n;
    }

    /// How many numbers were counted.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean and (population, as scikit-learn's `StandardScaler`) standard deviation in
    /// `f64`. No numbers give `(0, 1)`; a constant column, or a spread far below the
    /// values' own rounding, gets deviation 1, so that it standardises to zeros.
    pub fn mean_std(&self) -> (f64, f64) {
        if self.n == 0 {
            return (0.0, 1.0);
        }
        // Σx·2¹⁵⁰ and Σx²·2³⁰⁰, exact.
        let (mut sum, mut squares) = (BigInt::from(0), BigInt::from(0));
        for k in 1..POWERS {
            sum += BigInt::from(self.sum[k]) << k;
            squares += BigInt::from(self.squares[k]) << (2 * k);
        }
        let n = self.n as f64;
        let mean = to_f64(&sum) / n * 2f64.powi(-150);
        // n²·variance·2³⁰⁰, exact and never negative.
        let spread = BigInt::from(self.n) * squares - &sum * &sum;
        let std = (to_f64(&spread) / (n * n) * 2f64.powi(-300)).sqrt();
        if std <= mean.abs() * 1e-12 || !std.is_finite() {
            (mean, 1.0)
        } else {
            (mean, std)
        }
    }
}

fn to_f64(x: &BigInt) -> f64 {
    x.to_f64()
        .expect("a BigInt always converts to f64 (at worst to infinity)")
}

/// The order statistics of a numeric column's training values that the encoding needs,
/// found once the counts are known (see the module's documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The median (`--missing impute`): `None` without training values.
    pub median: Option<f32>,
    /// The values at the ranks of [`crate::tabular::encoding::bin_ranks`] (piecewise scaling).
    pub quantiles: Vec<f32>,
    /// Median and scale of [`crate::tabular::encoding::median_scale`] (robust scaling, in memory).
    pub robust: Option<(f64, f64)>,
}

/// What the cells of a column say, over the rows kept (those a missing-value policy did
/// not leave out) and the training rows among them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// The column's name.
    pub name: String,
    /// Its cells.
    pub cells: Cells,
}

/// [`ColumnStats`] by the kind of column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cells {
    /// A numeric column.
    Numbers {
        /// The numbers of the training rows.
        moments: Moments,
        /// Missing cells in the rows kept.
        missing: u64,
        /// Whether every number in the rows kept is an integer.
        integer: bool,
        /// For the target: the distinct numbers in the rows kept (their
        /// [`key`](crate::tabular::median::key)s), up to [`MAX_DISTINCT`] and one more, each
        /// with how often the training rows hold it (the class counts).
        distinct: Option<BTreeMap<u32, u64>>,
        /// Filled in after the counts.
        order: Order,
    },
    /// A column read as text.
    Text {
        /// Every category in the rows kept, with how often the training rows hold it.
        categories: BTreeMap<String, u64>,
        /// Cells present in the rows kept.
        present: u64,
        /// Missing cells in the rows kept.
        missing: u64,
        /// The first text in the rows kept: its line in the file and its value.
        first: Option<(usize, String)>,
        /// Cells present in the rows kept that are dates
        /// ([`parse_date`](crate::data::cell::parse_date)).
        #[serde(default)]
        dates: u64,
        /// The first present cell in the rows kept that is not a date: its line and value.
        #[serde(default)]
        not_date: Option<(usize, String)>,
    },
}

/// Most distinct numbers [`Cells::Numbers::distinct`] keeps for a target column: more
/// classes than this cannot be trained.
pub const MAX_DISTINCT: usize = 1 << 16;

impl ColumnStats {
    /// Empty statistics for `column` (`target`: whether it is the target column).
    pub fn new(column: &Column, target: bool) -> ColumnStats {
        let cells = match column {
            Column::Text { .. } => Cells::Text {
                categories: BTreeMap::new(),
                present: 0,
                missing: 0,
                first: None,
                dates: 0,
                not_date: None,
            },
            Column::Numeric { .. } | Column::Invalid { .. } => Cells::Numbers {
                moments: Moments::default(),
                missing: 0,
                integer: true,
                distinct: target.then(BTreeMap::new),
                order: Order::default(),
            },
        };
        ColumnStats {
            name: column.name().to_string(),
            cells,
        }
    }

    /// Counts `column`'s cells in the rows `kept` and `train` (row numbers of its table;
    /// `train` among `kept`), `line` giving a row's line in the file.
    pub fn add(
        &mut self,
        column: &Column,
        kept: &[usize],
        train: &[usize],
        line: impl Fn(usize) -> usize,
    ) {
        match column {
            Column::Numeric { values, .. } => self.add_numbers(values, kept, train),
            Column::Text {
                codes, categories, ..
            } => self.add_text(codes, categories, kept, train, line),
            Column::Invalid { .. } => unreachable!("statistics of an invalid column"),
        }
    }

    /// [`ColumnStats::add`] of a numeric column's `values`.
    fn add_numbers(&mut self, values: &[f32], kept: &[usize], train: &[usize]) {
        let Cells::Numbers {
            moments,
            missing,
            integer,
            distinct,
            ..
        } = &mut self.cells
        else {
            unreachable!("statistics of a column of another kind")
        };
        train.iter().for_each(|&r| moments.add(values[r]));
        // 0 and -0 are one class, as they are one number.
        let key = |v: f32| crate::tabular::median::key(if v == 0.0 { 0.0 } else { v });
        for &r in kept {
            let v = values[r];
            if v.is_nan() {
                *missing += 1;
                continue;
            }
            *integer &= v.fract() == 0.0;
            if let Some(d) = distinct.as_mut().filter(|d| d.len() <= MAX_DISTINCT) {
                d.entry(key(v)).or_insert(0);
            }
        }
        if let Some(d) = distinct.as_mut() {
            for &r in train.iter().filter(|&&r| !values[r].is_nan()) {
                if let Some(n) = d.get_mut(&key(values[r])) {
                    *n += 1;
                }
            }
        }
    }

    /// [`ColumnStats::add`] of a text column's `codes` into its `categories`.
    fn add_text(
        &mut self,
        codes: &[u32],
        categories: &[String],
        kept: &[usize],
        train: &[usize],
        line: impl Fn(usize) -> usize,
    ) {
        let Cells::Text {
            categories: counts,
            present,
            missing,
            first,
            dates,
            not_date,
        } = &mut self.cells
        else {
            unreachable!("statistics of a column of another kind")
        };
        let mut used = vec![None::<u64>; categories.len()];
        // Whether each category is a date, found once.
        let mut is_date = vec![None::<bool>; categories.len()];
        for &r in kept {
            match codes[r] {
                Column::MISSING => *missing += 1,
                c => {
                    let text = &categories[c as usize];
                    used[c as usize].get_or_insert(0);
                    *present += 1;
                    if first.as_ref().is_none_or(|(l, _)| line(r) < *l) {
                        *first = Some((line(r), text.clone()));
                    }
                    if *is_date[c as usize].get_or_insert_with(|| parse_date(text).is_some()) {
                        *dates += 1;
                    } else if not_date.as_ref().is_none_or(|(l, _)| line(r) < *l) {
                        *not_date = Some((line(r), text.clone()));
                    }
                }
            }
        }
        for &r in train.iter().filter(|&&r| codes[r] != Column::MISSING) {
            *used[codes[r] as usize].get_or_insert(0) += 1;
        }
        for (category, n) in categories.iter().zip(used) {
            if let Some(n) = n {
                *counts.entry(category.clone()).or_default() += n;
            }
        }
    }

    /// Adds what `other` counted of the same column elsewhere (another chunk or process).
    pub fn merge(&mut self, other: &ColumnStats) {
        match (&mut self.cells, &other.cells) {
            (
                Cells::Numbers {
                    moments,
                    missing,
                    integer,
                    distinct,
                    ..
                },
                Cells::Numbers {
                    moments: m,
                    missing: n,
                    integer: i,
                    distinct: d,
                    ..
                },
            ) => {
                moments.merge(m);
                *missing += n;
                *integer &= i;
                if let (Some(mine), Some(theirs)) = (distinct.as_mut(), d) {
                    for (&key, &n) in theirs {
                        if mine.len() > MAX_DISTINCT && !mine.contains_key(&key) {
                            continue;
                        }
                        *mine.entry(key).or_default() += n;
                    }
                }
            }
            (
                Cells::Text {
                    categories,
                    present,
                    missing,
                    first,
                    dates,
                    not_date,
                },
                Cells::Text {
                    categories: c,
                    present: p,
                    missing: n,
                    first: f,
                    dates: d,
                    not_date: nd,
                },
            ) => {
                for (category, count) in c {
                    *categories.entry(category.clone()).or_default() += count;
                }
                *present += p;
                *missing += n;
                *dates += d;
                for (mine, theirs) in [(first, f), (not_date, nd)] {
                    if let Some((line, _)) = theirs
                        && mine.as_ref().is_none_or(|(l, _)| line < l)
                    {
                        *mine = theirs.clone();
                    }
                }
            }
            _ => unreachable!("every part reads a column as the same kind"),
        }
    }

    /// Missing cells in the rows kept.
    pub fn missing(&self) -> u64 {
        match &self.cells {
            Cells::Numbers { missing, .. } | Cells::Text { missing, .. } => *missing,
        }
    }
}

/// The statistics of every column of `table` over its rows `kept` and `train` (see
/// [`ColumnStats::add`]); `line` maps a row to its line in the file.
pub fn table_stats(
    table: &Table,
    target: &str,
    kept: &[usize],
    train: &[usize],
    line: impl Fn(usize) -> usize + Copy,
) -> Vec<ColumnStats> {
    (table.columns().iter())
        .map(|column| {
            let mut stats = ColumnStats::new(column, column.name() == target);
            stats.add(column, kept, train, line);
            stats
        })
        .collect()
}

/// Merges every part's statistics, column by column.
pub fn merge_all(parts: impl IntoIterator<Item = Vec<ColumnStats>>) -> Vec<ColumnStats> {
    let mut whole: Vec<ColumnStats> = Vec::new();
    for part in parts {
        if whole.is_empty() {
            whole = part;
        } else {
            for (mine, other) in whole.iter_mut().zip(&part) {
                mine.merge(other);
            }
        }
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn moments_are_the_mean_and_population_deviation() {
        // numpy: x = [1, 2, 3, 4]; x.mean(), x.std() -> 2.5, 1.118033988749895
        let (mean, std) = Moments::of([1.0, 2.0, 3.0, 4.0].into_iter()).mean_std();
        assert_eq!(mean, 2.5);
        assert!(close(std, 1.118033988749895), "{std}");
        // Negative numbers, fractions and a subnormal: x = [-0.5, 0.25, 1e-45]
        // x.mean() = -0.0833333..., x.std() = 0.3118047822311618
        let (mean, std) = Moments::of([-0.5, 0.25, 1e-45].into_iter()).mean_std();
        assert!(close(mean, -0.08333333333333333), "{mean}");
        assert!(close(std, 0.3118047822311618), "{std}");
    }

    #[test]
    fn constant_and_empty_columns_get_deviation_one() {
        assert_eq!(Moments::of([7.0; 5].into_iter()).mean_std(), (7.0, 1.0));
        assert_eq!(Moments::of(std::iter::empty()).mean_std(), (0.0, 1.0));
        assert_eq!(Moments::of([f32::NAN].into_iter()).count(), 0);
    }

    #[test]
    fn far_from_zero_the_spread_is_kept() {
        // Unix timestamps 256 s apart: mean 1.7e9 + 384, deviation √81920.
        let t = 1_700_000_000f32; // exactly representable: 1700000000 = 2^8 · 6640625
        let x = [t, t + 256.0, t + 512.0, t + 768.0];
        let (mean, std) = Moments::of(x.into_iter()).mean_std();
        assert_eq!(mean, 1_700_000_384.0);
        assert!(close(std, 286.216_701_119_973), "{std}");
        // Near the top of f32: 3e38 and -3e38 average to 0 with deviation 3e38.
        let (mean, std) = Moments::of([3e38f32, -3e38].into_iter()).mean_std();
        assert_eq!(mean, 0.0);
        assert!(close(std, 3e38f32 as f64), "{std}");
    }

    #[test]
    fn merged_moments_equal_those_of_all_numbers_to_the_bit() {
        let values: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f32 * 0.37 - 150.0)
            .collect();
        let whole = Moments::of(values.iter().copied());
        for split in [1, 7, 333, 999] {
            let mut merged = Moments::of(values[split..].iter().copied());
            merged.merge(&Moments::of(values[..split].iter().copied()));
            assert_eq!(merged, whole);
            assert_eq!(merged.mean_std(), whole.mean_std());
        }
    }

    fn numeric_table() -> Table {
        let text = "x,y\n3,a\n,b\n1,a\n2.5,c\n";
        Table::from_bytes(
            std::path::Path::new("t.csv"),
            text.as_bytes(),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn table_statistics_count_kept_and_training_rows() {
        let table = numeric_table();
        let stats = table_stats(&table, "y", &[0, 1, 2, 3], &[0, 1, 3], |r| r + 2);
        match &stats[0].cells {
            Cells::Numbers {
                moments,
                missing,
                integer,
                distinct,
                ..
            } => {
                assert_eq!(moments.count(), 2); // 3 and 2.5; row 1 is missing
                assert_eq!(moments.mean_std().0, 2.75);
                assert_eq!(*missing, 1);
                assert!(!integer); // 2.5
                assert!(distinct.is_none()); // not the target
            }
            other => panic!("{other:?}"),
        }
        match &stats[1].cells {
            Cells::Text {
                categories,
                present,
                missing,
                first,
                dates,
                not_date,
            } => {
                assert_eq!((*dates, not_date), (0, first));
                let want: BTreeMap<String, u64> =
                    [("a".into(), 1), ("b".into(), 1), ("c".into(), 1)].into();
                assert_eq!(categories, &want); // row 2's 'a' is kept, not training
                assert_eq!((*present, *missing), (4, 0));
                assert_eq!(first, &Some((2, "a".to_string())));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn statistics_of_parts_merge_into_those_of_the_whole() {
        let table = numeric_table();
        let whole = table_stats(&table, "x", &[0, 1, 2, 3], &[0, 2, 3], |r| r + 2);
        let parts = [(vec![2, 3], vec![2, 3]), (vec![0, 1], vec![0])]
            .map(|(kept, train)| table_stats(&table, "x", &kept, &train, |r| r + 2));
        assert_eq!(merge_all(parts), whole);
    }
}
