//! Exact order statistics (medians, quantiles) of numbers that are not all in one place:
//! spread over the processes of a data-parallel run, or streamed from a file too large to
//! hold.
//!
//! Radix selection on the bits of `f32`: the bits of a float, with the sign bit flipped
//! (and all bits flipped for negative numbers), sort as the numbers do ([`key`]). A first
//! pass over the numbers counts them by the top bits of their keys; the counts, summed
//! over every process, say how many numbers there are, hence which ranks are wanted
//! (the two middle ones for a median), which bucket holds the number of each rank and how
//! many come before it. Each further pass counts, among the numbers of those buckets only,
//! the next bits, until all 32 bits are known: the numbers of those ranks themselves,
//! exactly as sorting them all would find them ([`crate::tabular::encoding::median`],
//! [`crate::tabular::encoding::quantile_edges`]). Memory is a count per bucket and rank, whatever
//! the number of values; the bucket width (hence the number of passes) follows from the
//! memory allowed.

use crate::train::comm::Communicator;

/// The key of `v` (not `NaN`): keys order as [`f32::total_cmp`] orders the numbers.
pub fn key(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

/// The number whose [`key`] is `k`.
pub fn from_key(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k })
}

/// The numbers of given ranks (0 for the smallest, in [`f32::total_cmp`] order) in every
/// column of numbers (missing ones, `NaN`, left out), found in passes over the numbers:
/// feed every number to [`OrderStats::add`], call [`OrderStats::end_pass`], and again
/// while [`OrderStats::done`] is false.
#[derive(Debug, Clone)]
pub struct OrderStats {
    columns: usize,
    /// Ranks wanted per column.
    slots: usize,
    /// The ranks wanted among `n` numbers (`slots` of them, each below `n`; any for 0).
    ranks: fn(u64) -> Vec<u64>,
    /// Bits resolved per pass.
    bits: u32,
    /// Bits of the keys known so far.
    known: u32,
    /// How many numbers each column has (after the first pass).
    count: Vec<u64>,
    /// Per column and rank wanted: the known top bits of the number's key, and its rank
    /// among the numbers with those top bits.
    target: Vec<(u32, u64)>,
    /// Per column and rank wanted: the first of its column's ranks whose number has the
    /// same known top bits, whose counts it shares.
    source: Vec<usize>,
    /// Per column and rank wanted, a count per bucket of the next bits.
    counts: Vec<u64>,
}

impl OrderStats {
    /// The numbers of ranks `ranks(n)` (`slots` of them) in each of `columns` columns of
    /// `n` numbers, with counts taking at most about `max_bytes` (at least 16 buckets per
    /// column and rank).
    pub fn new(
        columns: usize,
        slots: usize,
        ranks: fn(u64) -> Vec<u64>,
        max_bytes: usize,
    ) -> OrderStats {
        let per_bucket = columns.max(1) * slots.max(1) * 8;
        let room = (max_bytes / per_bucket).max(16);
        let bits = (usize::BITS - 1 - room.leading_zeros()).clamp(4, 16);
        OrderStats {
            columns,
            slots,
            ranks,
            bits,
            known: 0,
            count: vec![0; columns],
            target: vec![(0, 0); columns * slots],
            source: (0..columns * slots).map(|i| i - i % slots).collect(),
            counts: vec![0; (columns * slots) << bits],
        }
    }

    /// Whether every number wanted is known.
    pub fn done(&self) -> bool {
        self.known == 32
    }

    /// Bits resolved by the current pass.
    fn step(&self) -> u32 {
        self.bits.min(32 - self.known)
    }

    /// Counts number `v` of column `column` in this pass (`NaN` is left out; nothing once
    /// [`done`](OrderStats::done)).
    pub fn add(&mut self, column: usize, v: f32) {
        if v.is_nan() || self.done() {
            return;
        }
        let k = key(v);
        let step = self.step();
        let bucket = ((k << self.known) >> (32 - step)) as usize;
        let first = column * self.slots;
        if self.known == 0 {
            self.counts[(first << self.bits) + bucket] += 1;
            return;
        }
        let top = k >> (32 - self.known);
        for slot in first..first + self.slots {
            if self.source[slot] == slot && self.target[slot].0 == top {
                self.counts[(slot << self.bits) + bucket] += 1;
            }
        }
    }

    /// Ends a pass: sums the counts over the processes of `comm` (collective) and narrows
    /// every number wanted down to the bucket holding it.
    pub fn end_pass(&mut self, comm: &dyn Communicator) {
        let step = self.step();
        let buckets = 1usize << step;
        let width = 1usize << self.bits;
        let mut sums: Vec<f64> = self.counts.iter().map(|&c| c as f64).collect();
        comm.sum_f64(&mut sums);
        for column in 0..self.columns {
            let first = column * self.slots;
            if self.known == 0 {
                let n = sums[first * width..first * width + buckets]
                    .iter()
                    .sum::<f64>() as u64;
                self.count[column] = n;
                let ranks = if n == 0 {
                    vec![0; self.slots]
                } else {
                    (self.ranks)(n)
                };
                assert_eq!(ranks.len(), self.slots, "one rank per slot");
                for (slot, rank) in (first..).zip(ranks) {
                    debug_assert!(n == 0 || rank < n, "rank {rank} of {n} numbers");
                    self.target[slot] = (0, rank);
                }
            }
            for slot in first..first + self.slots {
                let (top, rank) = self.target[slot];
                let from = self.source[slot] * width;
                let (mut before, mut bucket) = (0u64, buckets - 1);
                for (b, &c) in sums[from..from + buckets].iter().enumerate() {
                    if before + c as u64 > rank {
                        bucket = b;
                        break;
                    }
                    before += c as u64;
                }
                let top = if self.known == 0 { 0 } else { top << step };
                self.target[slot] = (top | bucket as u32, rank - before.min(rank));
            }
            // Ranks whose numbers share their top bits share their counts next pass.
            for slot in first..first + self.slots {
                let top = self.target[slot].0;
                self.source[slot] = (first..slot)
                    .find(|&s| self.target[s].0 == top)
                    .unwrap_or(slot);
            }
        }
        self.known += step;
        self.counts.iter_mut().for_each(|c| *c = 0);
    }

    /// How many numbers column `column` has (after the first pass).
    pub fn count(&self, column: usize) -> u64 {
        self.count[column]
    }

    /// The numbers of the ranks wanted in column `column` (once
    /// [`done`](OrderStats::done)), in the order of the ranks; `None` for a column without
    /// numbers.
    pub fn values(&self, column: usize) -> Option<Vec<f32>> {
        debug_assert!(self.done(), "order statistics before the last pass");
        let first = column * self.slots;
        (self.count[column] > 0).then(|| {
            (self.target[first..first + self.slots].iter())
                .map(|&(k, _)| from_key(k))
                .collect()
        })
    }
}

/// The median of every column of numbers (missing ones, `NaN`, left out): the
/// [`OrderStats`] of the two middle ranks.
#[derive(Debug, Clone)]
pub struct Medians(OrderStats);

impl Medians {
    /// Medians of `columns` columns, with counts taking at most about `max_bytes`.
    pub fn new(columns: usize, max_bytes: usize) -> Medians {
        let middle = |n: u64| vec![(n - 1) / 2, n / 2];
        Medians(OrderStats::new(columns, 2, middle, max_bytes))
    }

    /// Whether every median is known.
    pub fn done(&self) -> bool {
        self.0.done()
    }

    /// Counts number `v` of column `column` in this pass (`NaN` is left out).
    pub fn add(&mut self, column: usize, v: f32) {
        self.0.add(column, v)
    }

    /// Ends a pass (collective): see [`OrderStats::end_pass`].
    pub fn end_pass(&mut self, comm: &dyn Communicator) {
        self.0.end_pass(comm)
    }

    /// The medians (once [`done`](Medians::done)): the middle number, or the mean of the
    /// two middle ones (in `f64`, then rounded) for an even count; `None` for a column
    /// without numbers.
    pub fn medians(&self) -> Vec<Option<f32>> {
        (0..self.0.columns)
            .map(|c| {
                let middle = self.0.values(c)?;
                let (a, b) = (middle[0], middle[1]);
                Some(if self.0.count(c) % 2 == 1 {
                    a
                } else {
                    ((a as f64 + b as f64) / 2.0) as f32
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::comm::Solo;

    #[test]
    fn keys_sort_as_the_numbers_do() {
        let mut values = vec![
            -f32::MAX,
            -1e10,
            -1.5,
            -1.0,
            -f32::MIN_POSITIVE,
            -0.0,
            0.0,
            1e-40,
            1.0,
            1.5,
            3e38,
            f32::INFINITY,
        ];
        let keys: Vec<u32> = values.iter().map(|&v| key(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        for v in values.drain(..) {
            assert_eq!(from_key(key(v)).to_bits(), v.to_bits());
        }
    }

    fn medians_of(columns: &[Vec<f32>], max_bytes: usize) -> (Vec<Option<f32>>, usize) {
        let mut m = Medians::new(columns.len(), max_bytes);
        let mut passes = 0;
        while !m.done() {
            for (c, values) in columns.iter().enumerate() {
                for &v in values {
                    m.add(c, v);
                }
            }
            m.end_pass(&Solo);
            passes += 1;
        }
        (m.medians(), passes)
    }

    #[test]
    fn medians_equal_those_of_sorting_in_any_number_of_passes() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f32 / (1u64 << 31) as f32
        };
        let columns = vec![
            (0..1001)
                .map(|_| next() * 200.0 - 100.0)
                .collect::<Vec<_>>(),
            (0..1000).map(|_| (next() * 4.0).floor()).collect(),
            vec![f32::NAN, 2.5, f32::NAN],
            vec![f32::NAN],
            vec![-0.0, 0.0],
            vec![1e-30, 3e38, -2.0, 7.0],
        ];
        let want: Vec<Option<f32>> = columns
            .iter()
            .map(|c| crate::tabular::encoding::median(c.iter().copied()))
            .collect();
        for (max_bytes, passes) in [(1 << 30, 2), (6 * 2 * 8 * 2048, 3), (0, 8)] {
            let (got, ran) = medians_of(&columns, max_bytes);
            assert_eq!(ran, passes);
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{max_bytes} bytes");
        }
        assert_eq!(want[2], Some(2.5));
        assert_eq!(want[5], Some(((1e-30f64 + 7.0) / 2.0) as f32));
    }

    #[test]
    fn medians_over_processes_are_those_of_all_their_numbers() {
        let all: Vec<f32> = (0..999).map(|i| ((i * 37) % 101) as f32 - 50.5).collect();
        let want = crate::tabular::encoding::median(all.iter().copied());
        let handles: Vec<_> = crate::train::comm::threads::group(3)
            .into_iter()
            .map(|c| {
                let mine: Vec<f32> = all.iter().copied().skip(c.rank()).step_by(3).collect();
                std::thread::spawn(move || {
                    let mut m = Medians::new(1, 4096);
                    while !m.done() {
                        mine.iter().for_each(|&v| m.add(0, v));
                        m.end_pass(&c);
                    }
                    m.medians()[0]
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), want);
        }
    }

    /// Ranks 18, 16, …, 2, 0 of `n` numbers (the last one for those past it): out of order,
    /// some repeated.
    fn spread_ranks(n: u64) -> Vec<u64> {
        (0..10).map(|i| (i * 2).min(n - 1)).rev().collect()
    }

    #[test]
    fn order_statistics_are_those_of_sorting_in_any_number_of_passes_and_processes() {
        let mut state = 11u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f32 / (1u64 << 31) as f32
        };
        let columns: Vec<Vec<f32>> = vec![
            (0..17).map(|_| next() * 2e6 - 1e6).collect(),
            (0..40).map(|_| (next() * 3.0).floor() - 1.0).collect(),
            vec![f32::NAN, 0.0, -0.0, f32::NAN, -1e-40, 1e-40],
            vec![f32::NAN; 3],
            vec![7.5],
            vec![
                f32::INFINITY,
                -3.0,
                f32::NEG_INFINITY,
                2.0,
                1e38,
                -1e38,
                0.5,
            ],
        ];
        // The numbers of those ranks after sorting, as bits (so -0.0 is not 0.0).
        let want: Vec<Option<Vec<u32>>> = (columns.iter())
            .map(|c| {
                let mut sorted: Vec<f32> = c.iter().copied().filter(|v| !v.is_nan()).collect();
                sorted.sort_by(f32::total_cmp);
                let n = sorted.len() as u64;
                (n > 0).then(|| {
                    (spread_ranks(n).iter())
                        .map(|&r| sorted[r as usize].to_bits())
                        .collect()
                })
            })
            .collect();
        assert_eq!(
            want[2],
            Some(vec![
                1e-40f32.to_bits(),
                1e-40f32.to_bits(),
                1e-40f32.to_bits(),
                1e-40f32.to_bits(),
                1e-40f32.to_bits(),
                1e-40f32.to_bits(),
                1e-40f32.to_bits(),
                1e-40f32.to_bits(),
                0f32.to_bits(),
                (-1e-40f32).to_bits(),
            ])
        );
        for (size, max_bytes, passes) in [(1, 1 << 30, 2), (2, 6 * 10 * 8 * 2048, 3), (3, 0, 8)] {
            let columns = columns.clone();
            let handles: Vec<_> = crate::train::comm::threads::group(size)
                .into_iter()
                .map(|c| {
                    // Process `r` holds every `size`-th number from the `r`-th.
                    let mine: Vec<Vec<f32>> = (columns.iter())
                        .map(|v| v.iter().copied().skip(c.rank()).step_by(size).collect())
                        .collect();
                    std::thread::spawn(move || {
                        let mut s = OrderStats::new(mine.len(), 10, spread_ranks, max_bytes);
                        let mut ran = 0;
                        while !s.done() {
                            for (column, values) in mine.iter().enumerate() {
                                values.iter().for_each(|&v| s.add(column, v));
                            }
                            s.end_pass(&c);
                            ran += 1;
                        }
                        let got: Vec<Option<Vec<u32>>> = (0..mine.len())
                            .map(|column| {
                                let values = s.values(column)?;
                                Some(values.iter().map(|v| v.to_bits()).collect())
                            })
                            .collect();
                        (got, ran, s.count(0))
                    })
                })
                .collect();
            for h in handles {
                let (got, ran, count) = h.join().unwrap();
                assert_eq!((ran, count), (passes, 17), "{size} processes");
                assert_eq!(got, want, "{size} processes, {max_bytes} bytes");
            }
        }
    }

    #[test]
    fn quantile_ranks_select_the_in_memory_bin_edges() {
        use crate::tabular::encoding::{BINS, bin_ranks, distinct_edges, quantile_edges};
        let columns: Vec<Vec<f32>> = vec![
            (0..1000)
                .map(|i| ((i * 7919) % 1000) as f32 * 0.37 - 80.0)
                .collect(),
            (0..1000).map(|i| (i % 2) as f32).collect(),
            (0..11).map(|i| (i * i) as f32).collect(),
            vec![f32::NAN, 3.0, 1.0, f32::NAN, 2.0, 2.0],
        ];
        let mut s = OrderStats::new(columns.len(), BINS + 1, bin_ranks, 1 << 12);
        while !s.done() {
            for (column, values) in columns.iter().enumerate() {
                values.iter().for_each(|&v| s.add(column, v));
            }
            s.end_pass(&Solo);
        }
        for (column, values) in columns.iter().enumerate() {
            let want = quantile_edges(values.iter().copied(), BINS);
            let selected = s.values(column).unwrap().into_iter().map(f64::from);
            assert_eq!(distinct_edges(selected), want, "column {column}");
        }
        // 11 squares: ranks round(t/8 · 10) = 0, 1, 3, 4, 5, 6, 8, 9, 10.
        assert_eq!(
            quantile_edges(columns[2].iter().copied(), BINS),
            [0.0, 1.0, 9.0, 16.0, 25.0, 36.0, 64.0, 81.0, 100.0]
        );
        assert!(quantile_edges(columns[1].iter().copied(), BINS).is_empty());
        assert_eq!(
            quantile_edges(columns[3].iter().copied(), BINS),
            [1.0, 2.0, 3.0]
        );
    }
}
