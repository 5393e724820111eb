//! A streamed file's training rows in windows of a fixed number of rows: what every epoch
//! shuffles and trains on, one window at a time.
//!
//! The rows are read in file order, chunk after chunk ([`super::chunks`]), and a window
//! takes the next `shuffle_window` training rows wherever the chunks happen to end. So which
//! rows are shuffled together depends on the file and the settings alone, never on the size
//! of the chunks read (which follows `--memory-limit`): the same command trains the same
//! network on any machine.

use ndarray::{Array2, ArrayView2};

use super::scan::{ReadChunk, Scan, read_chunk};
use crate::data::chunks::Chunks;
use crate::error::Result;
use crate::pipeline::prepare::TrainRequest;
use crate::tabular::encoding::{Targets, Task};

/// Most rows encoded at a time, so that encoding adds little to the window itself.
pub(super) const ENCODE_ROWS: usize = 4096;

/// Bytes a row of a window takes in memory encoded, for a network of `inputs` inputs: 4 per
/// input, its target and the target's copy for the batches (a value of 4 bytes, or a class
/// index of 8), and its place in the shuffled order (8). A held row takes less.
pub fn encoded_row_bytes(inputs: usize, task: Task) -> usize {
    let target = match task {
        Task::Classification => 8,
        Task::Regression => 4,
    };
    4 * inputs + 2 * target + 8
}

/// Reads the training rows of one process's part of a file a window at a time.
pub(super) struct Windows<'a> {
    request: &'a TrainRequest,
    scan: &'a Scan,
    chunks: Chunks,
    /// The chunk being read, and how many of its training rows are taken.
    current: Option<(ReadChunk, usize)>,
    capacity: usize,
    /// The window's inputs, (rows, input width) row after row.
    x: Vec<f32>,
    classes: Vec<usize>,
    values: Vec<f32>,
    rows: usize,
}

impl<'a> Windows<'a> {
    /// Opens this process's part of the file of `request`, read in chunks of about
    /// `chunk_bytes`, for windows of `request.config.shuffle_window` rows.
    pub(super) fn open(
        request: &'a TrainRequest,
        scan: &'a Scan,
        chunk_bytes: usize,
    ) -> Result<Windows<'a>> {
        let chunks = scan.open(&request.data, chunk_bytes)?;
        // No more than the whole file's training rows, however large the window.
        let capacity = request.config.shuffle_window.min(scan.train_rows).max(1);
        let width = scan.encoding.input_width();
        let (classes, values) = match scan.task {
            Task::Classification => (capacity, 0),
            Task::Regression => (0, capacity),
        };
        Ok(Windows {
            request,
            scan,
            chunks,
            current: None,
            capacity,
            x: Vec::with_capacity(capacity * width),
            classes: Vec::with_capacity(classes),
            values: Vec::with_capacity(values),
            rows: 0,
        })
    }

    /// Replaces the window with the next training rows, as many as it holds or as are left;
    /// returns how many (0 at the end of the part).
    pub(super) fn next_window(&mut self) -> Result<usize> {
        self.x.clear();
        self.classes.clear();
        self.values.clear();
        self.rows = 0;
        while self.rows < self.capacity {
            let (read, taken) = match &mut self.current {
                Some((read, taken)) if *taken < read.train.len() => (read, taken),
                _ => match self.chunks.next_chunk()? {
                    Some(chunk) => {
                        let read = read_chunk(self.request, &self.scan.text_columns, chunk)?;
                        self.current = Some((read, 0));
                        continue;
                    }
                    None => {
                        self.current = None;
                        self.scan.end_pass(&self.request.data)?;
                        break;
                    }
                },
            };
            let n = (self.capacity - self.rows)
                .min(read.train.len() - *taken)
                .min(ENCODE_ROWS);
            let rows = &read.train[*taken..*taken + n];
            let locate = |e| read.chunk.locate(e);
            let encoding = &self.scan.encoding;
            let inputs = encoding.inputs(&read.table, rows).map_err(locate)?;
            self.x.extend(inputs.iter());
            match encoding.targets(&read.table, rows).map_err(locate)? {
                Targets::Classes(c) => self.classes.extend(c),
                Targets::Values(v) => self.values.extend(v.iter()),
            }
            *taken += n;
            self.rows += n;
        }
        Ok(self.rows)
    }

    /// The window's inputs, (rows, input width).
    pub(super) fn x(&self) -> ArrayView2<'_, f32> {
        let width = self.scan.encoding.input_width();
        ArrayView2::from_shape((self.rows, width), &self.x).expect("width inputs per row")
    }

    /// The window's targets (a copy: a few bytes per row).
    pub(super) fn targets(&self) -> Targets {
        match self.scan.task {
            Task::Classification => Targets::Classes(self.classes.clone()),
            Task::Regression => {
                let values = ndarray::Array1::from(self.values.clone());
                Targets::Values(values.into_shape_with_order((self.rows, 1)).unwrap())
            }
        }
    }
}

/// The first `max_rows` rows of this process's part of the file that validate
/// (`validation`) or train, encoded a few thousand at a time: (inputs, targets).
pub(super) fn first_rows(
    request: &TrainRequest,
    scan: &Scan,
    chunk_bytes: usize,
    validation: bool,
    max_rows: usize,
) -> Result<(Array2<f32>, Targets)> {
    let width = scan.encoding.input_width();
    let of = if validation {
        scan.validation_rows
    } else {
        scan.train_rows
    };
    let capacity = max_rows.min(of);
    let mut x: Vec<f32> = Vec::with_capacity(capacity * width);
    let mut classes = Vec::new();
    let mut values = Vec::new();
    let mut n = 0;
    let mut chunks = scan.open(&request.data, chunk_bytes)?;
    while n < max_rows
        && let Some(chunk) = chunks.next_chunk()?
    {
        let read = read_chunk(request, &scan.text_columns, chunk)?;
        let rows = if validation {
            &read.validation
        } else {
            &read.train
        };
        let rows = &rows[..rows.len().min(max_rows - n)];
        let locate = |e| read.chunk.locate(e);
        for part in rows.chunks(ENCODE_ROWS) {
            let inputs = scan.encoding.inputs(&read.table, part).map_err(locate)?;
            x.extend(inputs.iter());
            match scan.encoding.targets(&read.table, part).map_err(locate)? {
                Targets::Classes(c) => classes.extend(c),
                Targets::Values(v) => values.extend(v.iter()),
            }
        }
        n += rows.len();
    }
    scan.end_pass(&request.data)?;
    let y = match scan.task {
        Task::Classification => Targets::Classes(classes),
        Task::Regression => {
            Targets::Values(Array2::from_shape_vec((n, 1), values).expect("one value per row"))
        }
    };
    let x = Array2::from_shape_vec((n, width), x).expect("width inputs per row");
    Ok((x, y))
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::path::{Path, PathBuf};

    use crate::pipeline::{StreamBudget, TrainRequest, prepare_streamed_shared, train_streamed};
    use crate::train::Hooks;
    use crate::train::comm::threads::group;

    /// 6,000 rows of `a,b,c,y` (about 110 KiB), y a noisy function of the three.
    fn numbers(dir: &Path) -> PathBuf {
        let mut text = String::from("a,b,c,y\n");
        for i in 0..6_000u64 {
            let (a, b, c) = ((i * 37 % 101) as f32, (i * 53 % 89) as f32, (i % 7) as f32);
            let y = a * 0.5 - b * 0.25 + c * c + (i * 7919 % 13) as f32 * 0.1;
            writeln!(text, "{a},{b},{c},{y}").unwrap();
        }
        let path = dir.join("numbers.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The weights (as the model file writes them) trained by `ranks` processes (threads)
    /// streaming `path` in chunks of `chunk_bytes`, each rank's.
    fn trained(path: &Path, ranks: usize, chunk_bytes: usize) -> Vec<String> {
        let handles: Vec<_> = group(ranks)
            .into_iter()
            .map(|rank| {
                let path = path.to_path_buf();
                std::thread::spawn(move || {
                    let mut request = TrainRequest::new(&path);
                    let config = &mut request.config;
                    (config.hidden, config.epochs, config.batch_size) = (vec![8], 2, 16);
                    (config.folds, config.shuffle_window, config.held_rows) = (0, 700, 300);
                    let budget = StreamBudget {
                        chunk_bytes,
                        ..StreamBudget::within(64 << 20, 5)
                    };
                    let streamed = prepare_streamed_shared(&request, budget, &rank).unwrap();
                    assert_eq!(streamed.held.x.nrows(), 300 / ranks);
                    let hooks = Hooks {
                        comm: Some(&rank),
                        ..Hooks::default()
                    };
                    let trained = train_streamed(&request, &streamed, budget, hooks).unwrap();
                    serde_json::to_string(&trained.model.file.layers).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn the_network_does_not_depend_on_the_chunks_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = numbers(dir.path());
        for ranks in [1, 2] {
            // Chunks of 4 KiB (the smallest: dozens of them, each holding part of a
            // window) and of 1 MiB (the whole file at once).
            let small = trained(&path, ranks, 4 << 10);
            let large = trained(&path, ranks, 1 << 20);
            assert!(small == large, "{ranks} ranks: the networks differ");
            // The processes take the same steps, so hold the same weights.
            assert!(small.iter().all(|w| *w == small[0]), "{ranks} ranks");
        }
    }
}
