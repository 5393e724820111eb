//! Exact medians of numbers that are not all in one place: spread over the processes of a
//! data-parallel run, or streamed from a file too large to hold.
//!
//! Radix selection on the bits of `f32`: the bits of a float, with the sign bit flipped
//! (and all bits flipped for negative numbers), sort as the numbers do ([`key`]). A first
//! pass over the numbers counts them by the top bits of their keys; the counts, summed
//! over every process, say which bucket holds the middle numbers and how many come before
//! it. Each further pass counts, among the numbers of that bucket only, the next bits,
//! until all 32 bits are known: the middle numbers themselves, exactly as sorting them all
//! would find them ([`crate::dataset::median`]). Memory is a count per bucket, whatever
//! the number of values; the bucket width (hence the number of passes) follows from the
//! memory allowed.

use crate::comm::Communicator;

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

/// The median of every column of numbers (missing ones, `NaN`, left out), found in passes
/// over the numbers: feed every number to [`Medians::add`], call [`Medians::end_pass`],
/// and again while [`Medians::done`] is false.
#[derive(Debug, Clone)]
pub struct Medians {
    columns: usize,
    /// Bits resolved per pass.
    bits: u32,
    /// Bits of the keys known so far.
    known: u32,
    /// How many numbers each column has (after the first pass).
    count: Vec<u64>,
    /// Per column, for the lower and the upper middle number: the known top bits of its key,
    /// and its rank among the numbers with those top bits.
    target: Vec<[(u32, u64); 2]>,
    /// Per column and middle number, a count per bucket of the next bits.
    counts: Vec<u64>,
}

impl Medians {
    /// Medians of `columns` columns, with counts taking at most about `max_bytes`.
    pub fn new(columns: usize, max_bytes: usize) -> Medians {
        let per_bucket = columns.max(1) * 2 * 8;
        let room = (max_bytes / per_bucket).max(16);
        let bits = (usize::BITS - 1 - room.leading_zeros()).clamp(4, 16);
        Medians {
            columns,
            bits,
            known: 0,
            count: vec![0; columns],
            target: vec![[(0, 0); 2]; columns],
            counts: vec![0; (columns * 2) << bits],
        }
    }

    /// Whether every median is known.
    pub fn done(&self) -> bool {
        self.known == 32
    }

    /// Bits resolved by the current pass.
    fn step(&self) -> u32 {
        self.bits.min(32 - self.known)
    }

    /// Counts number `v` of column `column` in this pass (`NaN` is left out).
    pub fn add(&mut self, column: usize, v: f32) {
        if v.is_nan() {
            return;
        }
        let k = key(v);
        let step = self.step();
        let bucket = ((k << self.known) >> (32 - step)) as usize;
        let base = (column * 2) << self.bits;
        if self.known == 0 {
            self.counts[base + bucket] += 1;
            return;
        }
        let top = k >> (32 - self.known);
        let [lower, upper] = self.target[column];
        if top == lower.0 {
            self.counts[base + bucket] += 1;
        }
        if top == upper.0 && upper.0 != lower.0 {
            self.counts[base + (1 << self.bits) + bucket] += 1;
        }
    }

    /// Ends a pass: sums the counts over the processes of `comm` (collective) and narrows
    /// every middle number down to the bucket holding it.
    pub fn end_pass(&mut self, comm: &dyn Communicator) {
        let step = self.step();
        let buckets = 1usize << step;
        let width = 1usize << self.bits;
        let mut sums: Vec<f64> = self.counts.iter().map(|&c| c as f64).collect();
        comm.sum_f64(&mut sums);
        for column in 0..self.columns {
            let base = column * 2 * width;
            let lower_counts = &sums[base..base + buckets];
            if self.known == 0 {
                let n = lower_counts.iter().sum::<f64>() as u64;
                self.count[column] = n;
                let ranks = [n.saturating_sub(1) / 2, n / 2];
                for (t, rank) in ranks.into_iter().enumerate() {
                    self.target[column][t] = (0, rank);
                }
            }
            let [lower, upper] = self.target[column];
            let same = lower.0 == upper.0;
            for (t, (top, rank)) in [lower, upper].into_iter().enumerate() {
                let counts = if t == 0 || same {
                    lower_counts
                } else {
                    &sums[base + width..base + width + buckets]
                };
                let (mut before, mut bucket) = (0u64, buckets - 1);
                for (b, &c) in counts.iter().enumerate() {
                    if before + c as u64 > rank {
                        bucket = b;
                        break;
                    }
                    before += c as u64;
                }
                let top = if self.known == 0 { 0 } else { top << step };
                self.target[column][t] = (top | bucket as u32, rank - before.min(rank));
            }
        }
        self.known += step;
        self.counts.iter_mut().for_each(|c| *c = 0);
    }

    /// The medians (once [`done`](Medians::done)): the middle number, or the mean of the
    /// two middle ones (in `f64`, then rounded) for an even count; `None` for a column
    /// without numbers.
    pub fn medians(&self) -> Vec<Option<f32>> {
        debug_assert!(self.done(), "medians before the last pass");
        (0..self.columns)
            .map(|c| {
                let n = self.count[c];
                let [lower, upper] = self.target[c];
                let (a, b) = (from_key(lower.0), from_key(upper.0));
                match n {
                    0 => None,
                    n if n % 2 == 1 => Some(a),
                    _ => Some(((a as f64 + b as f64) / 2.0) as f32),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comm::Solo;

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
            .map(|c| crate::dataset::median(c.iter().copied()))
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
        let want = crate::dataset::median(all.iter().copied());
        let handles: Vec<_> = crate::comm::threads::group(3)
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
}
