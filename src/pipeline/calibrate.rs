//! After training, what the held-out rows say about the model's errors (see
//! [`crate::tabular::calibration`]): every row of a k-fold ensemble is scored by the network
//! that did not train on it; one network is scored on its validation rows.
//!
//! For classes the temperature is fitted on each held-out row's *own network's* outputs,
//! and the model applies it the same way: it divides every network's outputs by `T` and
//! averages the networks' softmax probabilities (`predict`, `eval`, the ONNX and Rust
//! exports alike). For values, the residuals are the held-out predictions' `|y − ŷ|` in the
//! target's units, and an interval is the model's (ensemble's) prediction ± their conformal
//! quantile. Each network's held-out predictions come from the epoch the other half of its
//! held-out rows chose ([`HalfSelected`]), so that no residual is flattered by early
//! stopping.

use ndarray::{Array2, ArrayView2, s};

use crate::nn::sequential::Sequential;
use crate::tabular::calibration::{Calibration, Residuals};
use crate::tabular::encoding::{Encoding, Targets};
use crate::train::comm::Communicator;
use crate::train::{CalibrationMethod, IntervalMethod, TrainConfig};

/// Rows through a network at a time.
const CHUNK: usize = 512;

/// The temperature or residuals of one network (`network`, which did not train on them)
/// on `prepared`'s validation rows, with those of every other process of `comm`: from the
/// outputs `halves` kept, if it watched the training ([`HalfSelected`]), else the network's.
pub fn on_validation(
    network: &mut Sequential,
    prepared: &crate::pipeline::prepare::Prepared,
    config: &TrainConfig,
    (halves, comm): (Option<HalfSelected>, Option<&dyn Communicator>),
) -> (Calibration, Option<Residuals>) {
    let outputs = match halves {
        Some(halves) => halves.into_outputs(network),
        None => raw_outputs(network, prepared.x_val.view()),
    };
    held_out_over(config, &prepared.encoding, outputs, &prepared.y_val, comm)
}

/// [`held_out`] over the held-out rows of every process of `comm` (each holds its share of
/// them): their outputs and targets gathered in rank order, so that every process fits the
/// same temperature or residuals as one process holding all the rows would.
pub fn held_out_over(
    config: &TrainConfig,
    encoding: &Encoding,
    outputs: Array2<f32>,
    y: &Targets,
    comm: Option<&dyn Communicator>,
) -> (Calibration, Option<Residuals>) {
    let Some(comm) = comm.filter(|c| c.size() > 1) else {
        return held_out(config, encoding, outputs.view(), y, None);
    };
    let width = outputs.ncols();
    let gather = |values: Vec<f32>| -> Vec<f32> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        (comm.all_gather(&bytes).concat().chunks_exact(4))
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let all = gather(outputs.iter().copied().collect());
    let rows = all.len() / width.max(1);
    let outputs = Array2::from_shape_vec((rows, width), all).expect("whole rows of outputs");
    let y = match y {
        // Class indices are small: exact in f32.
        Targets::Classes(c) => Targets::Classes(
            gather(c.iter().map(|&k| k as f32).collect())
                .into_iter()
                .map(|k| k as usize)
                .collect(),
        ),
        Targets::Values(v) => {
            let cols = v.ncols();
            let all = gather(v.iter().copied().collect());
            Targets::Values(
                Array2::from_shape_vec((all.len() / cols.max(1), cols), all)
                    .expect("whole rows of targets"),
            )
        }
    };
    held_out(config, encoding, outputs.view(), &y, None)
}

/// The raw outputs of `network` (in inference mode) for every row of `x`: (rows, outputs).
pub fn raw_outputs(network: &mut Sequential, x: ArrayView2<f32>) -> Array2<f32> {
    network.set_training(false);
    let rows = x.nrows();
    let mut out: Option<Array2<f32>> = None;
    for start in (0..rows).step_by(CHUNK) {
        let end = (start + CHUNK).min(rows);
        let part = network.forward(x.slice(s![start..end, ..]));
        let all = out.get_or_insert_with(|| Array2::zeros((rows, part.ncols())));
        all.slice_mut(s![start..end, ..]).assign(&part);
    }
    out.unwrap_or_else(|| Array2::zeros((0, 0)))
}

/// Early stopping keeps the epoch whose held-out error is least, so at that epoch the
/// held-out rows' errors are a little smaller than a new row's: the rows chose the epoch.
/// This watches a network's held-out rows in two halves instead, and keeps each half's
/// outputs from the epoch the *other* half judged best, so that no row's residual comes
/// from an epoch it helped choose.
///
/// A row's half comes from a hash of its inputs ([`half_of`]), so it is the same whichever
/// process holds the row: with `comm`, the halves' errors are summed over every process's
/// rows, and every process chooses the same epochs one process holding all the rows would.
pub struct HalfSelected<'a> {
    x: ArrayView2<'a, f32>,
    y: ArrayView2<'a, f32>,
    /// Judge by absolute errors (`--metric mae`), else by squared ones.
    absolute: bool,
    /// Each row's half.
    half: Vec<usize>,
    /// The processes holding the other held-out rows.
    comm: Option<&'a dyn Communicator>,
    /// The least error of each half so far.
    best: [f64; 2],
    /// Each row's outputs from the epoch the other half judged best (while it has one).
    outputs: Array2<f32>,
    /// Whether each half has judged an epoch best.
    chosen: [bool; 2],
}

/// A row's half for [`HalfSelected`]: one bit of a hash of its inputs' bits (FNV-1a over
/// the 32-bit words, then a 64-bit finaliser), 0 or 1 about equally often.
pub fn half_of(row: ndarray::ArrayView1<f32>) -> usize {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in row {
        h = (h ^ u64::from(v.to_bits())).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h & 1) as usize
}

impl<'a> HalfSelected<'a> {
    /// Watches held-out inputs `x` with targets `y` (as the network outputs them), with
    /// those of every other process of `comm`.
    pub fn new(
        (x, y): (ArrayView2<'a, f32>, ArrayView2<'a, f32>),
        absolute: bool,
        comm: Option<&'a dyn Communicator>,
    ) -> Self {
        HalfSelected {
            x,
            y,
            absolute,
            half: x.rows().into_iter().map(half_of).collect(),
            comm,
            best: [f64::INFINITY; 2],
            outputs: Array2::zeros(y.raw_dim()),
            chosen: [false; 2],
        }
    }

    /// The outputs kept; `network`'s own for the rows of a half whose other half never
    /// judged an epoch (it has no rows, or no epoch finished).
    pub fn into_outputs(mut self, network: &mut Sequential) -> Array2<f32> {
        if !self.chosen.iter().all(|&c| c) {
            let own = raw_outputs(network, self.x);
            for (i, mut row) in self.outputs.rows_mut().into_iter().enumerate() {
                if !self.chosen[1 - self.half[i]] {
                    row.assign(&own.row(i));
                }
            }
        }
        self.outputs
    }
}

impl crate::train::Observer for HalfSelected<'_> {
    fn wants_held_out(&self) -> bool {
        true
    }

    /// Collective with `comm`: every process calls it once an epoch.
    fn held_out(&mut self, outputs: ArrayView2<f32>) {
        // Each half's summed error, then its rows.
        let mut sums = [0f64; 4];
        for (i, (o, t)) in outputs.rows().into_iter().zip(self.y.rows()).enumerate() {
            let e: f64 = (o.iter().zip(t))
                .map(|(&o, &t)| (o - t) as f64)
                .map(|d| if self.absolute { d.abs() } else { d * d })
                .sum();
            sums[self.half[i]] += e;
            sums[2 + self.half[i]] += 1.0;
        }
        if let Some(comm) = self.comm {
            comm.sum_f64(&mut sums);
        }
        for half in 0..2 {
            if sums[2 + half] > 0.0 && sums[half] < self.best[half] {
                self.best[half] = sums[half];
                self.chosen[half] = true;
                // The rows of the other half take this epoch's outputs.
                for (i, row) in outputs.rows().into_iter().enumerate() {
                    if self.half[i] != half {
                        self.outputs.row_mut(i).assign(&row);
                    }
                }
            }
        }
    }
}

/// Most training rows [`spread`] reads: evenly spaced ones beyond this.
const SPREAD_ROWS: usize = 4096;

/// How much an ensemble's `networks` disagree on the rows `x`, in the target's units: the
/// mean over the rows of the sample variance of the networks' predictions (each network
/// trained on some of the rows; at most [`SPREAD_ROWS`] of them, evenly spaced). 0 for
/// fewer than two networks or no rows.
pub fn spread(networks: &mut [Sequential], encoding: &Encoding, x: ArrayView2<f32>) -> f64 {
    let (k, rows) = (networks.len(), x.nrows());
    if k < 2 || rows == 0 {
        return 0.0;
    }
    let step = rows.div_ceil(SPREAD_ROWS);
    let picked: Vec<usize> = (0..rows).step_by(step).collect();
    let x = x.select(ndarray::Axis(0), &picked);
    let each: Vec<Vec<f64>> = (networks.iter_mut())
        .map(|n| encoding.values_from_outputs(raw_outputs(n, x.view()).view()))
        .collect();
    let variance = |r: usize| {
        let mean = each.iter().map(|v| v[r]).sum::<f64>() / k as f64;
        each.iter().map(|v| (v[r] - mean).powi(2)).sum::<f64>() / (k - 1) as f64
    };
    (0..picked.len()).map(variance).sum::<f64>() / picked.len() as f64
}

/// What the model file keeps of the held-out rows: the networks' raw `outputs` for them
/// (each row's from a network that did not train on it) and their targets `y`.
/// Classes get a temperature (with [`CalibrationMethod::Temperature`]); values, their
/// residuals, and with `networks` (each row's network, for an ensemble of two or more,
/// and the variance of the networks' predictions, [`spread`]) each network's own for CV+
/// ([`Residuals::of_folds`]), scaled to the ensemble by default
/// ([`Residuals::of_ensemble`]).
pub fn held_out(
    config: &TrainConfig,
    encoding: &Encoding,
    outputs: ArrayView2<f32>,
    y: &Targets,
    networks: Option<(&[usize], f64)>,
) -> (Calibration, Option<Residuals>) {
    match y {
        Targets::Classes(classes) => {
            let calibration = match config.calibration {
                CalibrationMethod::Temperature if !classes.is_empty() => {
                    Calibration::fit(outputs, classes)
                }
                _ => Calibration::default(),
            };
            (calibration, None)
        }
        Targets::Values(v) if v.nrows() > 0 => {
            let predicted = encoding.values_from_outputs(outputs);
            let truth = encoding.values_from_outputs(v.view());
            let residuals = predicted.iter().zip(&truth).map(|(p, t)| t - p);
            let residuals = match networks {
                Some((networks, variance))
                    if networks.iter().any(|&k| k > 0)
                        && config.intervals != IntervalMethod::Split =>
                {
                    let mut folds = vec![Vec::new(); 1 + networks.iter().max().unwrap_or(&0)];
                    for (r, &k) in residuals.zip(networks) {
                        folds[k].push(r);
                    }
                    match config.intervals {
                        IntervalMethod::Ensemble => Residuals::of_ensemble(folds, variance),
                        _ => Residuals::of_folds(folds),
                    }
                }
                _ => Residuals::new(residuals),
            };
            (Calibration::default(), Some(residuals))
        }
        Targets::Values(_) => (Calibration::default(), None),
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::{TrainRequest, prepare, train};
    use crate::tabular::calibration::log_loss;
    use crate::tabular::model::{Model, Predictions};
    use crate::train::TrainConfig;
    use crate::train::comm::Communicator;

    fn iris(config: TrainConfig) -> Model {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv");
        let mut request = TrainRequest::new(path);
        request.config = config;
        let prepared = prepare(&request).unwrap();
        train(&prepared, &request.config, None, &mut |_| {})
            .unwrap()
            .model
    }

    #[test]
    fn each_networks_residuals_are_those_of_the_rows_it_did_not_train_on() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/houses.csv");
        let mut request = TrainRequest::new(path);
        request.target = Some("price".into());
        // One epoch: the epoch each half of a fold's rows chooses for the other half
        // (`HalfSelected`) is the network's own.
        request.config = TrainConfig {
            hidden: vec![8],
            epochs: 1,
            ..TrainConfig::default()
        };
        let prepared = prepare(&request).unwrap();
        let mut model = train(&prepared, &request.config, None, &mut |_| {})
            .unwrap()
            .model;
        let residuals = model.file.residuals.clone().unwrap();
        assert_eq!((residuals.rows, residuals.folds.len()), (400, 3));
        // The rows of fold k, through network k (the first in `network`, then `ensemble`).
        let fold = crate::train::fold_rows(400, None, 3, request.config.seed);
        let truth = prepared
            .encoding
            .values_from_outputs(match &prepared.y_train {
                crate::tabular::encoding::Targets::Values(y) => y.view(),
                _ => unreachable!(),
            });
        let networks = std::iter::once(&mut model.network).chain(model.ensemble.iter_mut());
        for (k, network) in networks.enumerate() {
            let rows: Vec<usize> = (0..400).filter(|&r| fold[r] == k).collect();
            let x = prepared.x_train.select(ndarray::Axis(0), &rows);
            let outputs = super::raw_outputs(network, x.view());
            let predicted = prepared.encoding.values_from_outputs(outputs.view());
            let mut own: Vec<f64> = (rows.iter().zip(&predicted))
                .map(|(&r, p)| (truth[r] - p).abs())
                .collect();
            own.sort_by(f64::total_cmp);
            assert_eq!(residuals.folds[k].absolute, own, "network {k}");
        }
    }

    /// Keeps the validation outputs of every epoch.
    struct Recorder(Vec<ndarray::Array2<f32>>);

    impl crate::train::Observer for Recorder {
        fn wants_held_out(&self) -> bool {
            true
        }

        fn held_out(&mut self, outputs: ndarray::ArrayView2<f32>) {
            self.0.push(outputs.to_owned());
        }
    }

    /// Trains on the house prices with `folds` (a small network, 60 epochs at a rate high
    /// enough that the held-out loss wanders from epoch to epoch), the first network
    /// watched by a [`Recorder`]: the model, what it trained on, and every epoch's
    /// held-out outputs.
    fn houses_recorded(folds: usize) -> (Model, crate::pipeline::prepare::Prepared, Recorder) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/houses.csv");
        let mut request = TrainRequest::new(path);
        request.target = Some("price".into());
        request.config = TrainConfig {
            hidden: vec![8],
            epochs: 60,
            patience: 0,
            folds,
            learning_rate: 0.05,
            grow_batch: false,
            ..TrainConfig::default()
        };
        let prepared = prepare(&request).unwrap();
        let mut recorder = Recorder(Vec::new());
        let observer: &mut dyn crate::train::Observer = &mut recorder;
        let config = &request.config;
        let trained =
            crate::pipeline::train_observed(&prepared, config, None, &mut |_| {}, Some(observer))
                .unwrap();
        assert_eq!(recorder.0.len(), 60);
        (trained.model, prepared, recorder)
    }

    /// The sorted residuals of held-out rows `x`, `y` (targets as the network outputs
    /// them) when each half's rows take the outputs of the epoch (of `epochs`) the other
    /// half erred least at (the first such).
    fn half_selected(
        epochs: &[ndarray::Array2<f32>],
        x: ndarray::ArrayView2<f32>,
        y: ndarray::ArrayView2<f32>,
        encoding: &crate::tabular::encoding::Encoding,
    ) -> Vec<f64> {
        let half: Vec<usize> = x.rows().into_iter().map(super::half_of).collect();
        assert!(half.contains(&0) && half.contains(&1));
        let error = |e: usize, h: usize| -> f64 {
            (0..y.nrows())
                .filter(|&r| half[r] == h)
                .map(|r| ((epochs[e][[r, 0]] - y[[r, 0]]) as f64).powi(2))
                .sum()
        };
        let best = |h: usize| {
            (0..epochs.len()).fold(0, |b, e| if error(e, h) < error(b, h) { e } else { b })
        };
        let chosen = [best(0), best(1)];
        let outputs = ndarray::Array2::from_shape_fn(y.raw_dim(), |(r, c)| {
            epochs[chosen[1 - half[r]]][[r, c]]
        });
        let predicted = encoding.values_from_outputs(outputs.view());
        let truth = encoding.values_from_outputs(y);
        let mut residuals: Vec<f64> = (truth.iter().zip(&predicted))
            .map(|(t, p)| (t - p).abs())
            .collect();
        residuals.sort_by(f64::total_cmp);
        residuals
    }

    fn assert_close(stored: &[f64], want: &[f64]) {
        assert_eq!(stored.len(), want.len());
        for (a, b) in stored.iter().zip(want) {
            assert!((a - b).abs() <= 1e-9 * b.max(1.0), "{a} vs {b}");
        }
    }

    /// A k-fold network takes each held-out row's residual from the epoch the other half
    /// of its fold's rows chose: recomputed for the first network from its every epoch.
    #[test]
    fn fold_residuals_come_from_the_epoch_the_other_half_chose() {
        let (model, prepared, recorder) = houses_recorded(3);
        let crate::tabular::encoding::Targets::Values(y) = &prepared.y_train else {
            unreachable!()
        };
        let fold = crate::train::fold_rows(y.nrows(), None, 3, 0);
        let rows: Vec<usize> = (0..y.nrows()).filter(|&r| fold[r] == 0).collect();
        let x = prepared.x_train.select(ndarray::Axis(0), &rows);
        let y = y.select(ndarray::Axis(0), &rows);
        let want = half_selected(&recorder.0, x.view(), y.view(), &prepared.encoding);
        assert_close(&model.file.residuals.unwrap().folds[0].absolute, &want);
    }

    /// One network (`--folds 0`) takes each validation row's residual from the epoch the
    /// other half of the rows chose.
    #[test]
    fn one_networks_residuals_come_from_the_epoch_the_other_half_chose() {
        let (model, prepared, recorder) = houses_recorded(0);
        let crate::tabular::encoding::Targets::Values(y) = &prepared.y_val else {
            unreachable!()
        };
        let x = prepared.x_val.view();
        let want = half_selected(&recorder.0, x, y.view(), &prepared.encoding);
        assert_close(&model.file.residuals.unwrap().absolute, &want);
    }

    /// Inputs 0, 1, 2, 3, whose halves ([`super::half_of`]) are 0, 1, 0, 1.
    fn four_rows() -> ndarray::Array2<f32> {
        let x = ndarray::array![[0.0f32], [1.0], [2.0], [3.0]];
        let halves: Vec<usize> = x.rows().into_iter().map(super::half_of).collect();
        assert_eq!(halves, [0, 1, 0, 1]);
        x
    }

    /// Each half of the held-out rows takes its outputs from the epoch the other half
    /// judged best.
    #[test]
    fn each_half_keeps_the_outputs_of_the_epoch_the_other_half_chose() {
        use crate::train::Observer;
        let x = four_rows();
        let y = ndarray::array![[0.0f32], [0.0], [0.0], [0.0]];
        let mut halves = super::HalfSelected::new((x.view(), y.view()), false, None);
        // Rows 0 and 2 (half 0) are best at epoch 2, rows 1 and 3 (half 1) at epoch 1.
        let epochs = [
            ndarray::array![[3.0f32], [1.0], [3.0], [1.0]],
            ndarray::array![[1.0f32], [2.0], [1.0], [2.0]],
            ndarray::array![[2.0f32], [3.0], [2.0], [3.0]],
        ];
        for outputs in &epochs {
            halves.held_out(outputs.view());
        }
        let mut network = crate::nn::sequential::Sequential::new();
        let kept = halves.into_outputs(&mut network);
        // Half 0's rows from half 1's best epoch (1); half 1's from half 0's (2).
        assert_eq!(kept, ndarray::array![[3.0f32], [2.0], [3.0], [2.0]]);
    }

    /// Rows whose other half is empty keep the network's own outputs: no epoch was chosen
    /// for them.
    #[test]
    fn a_half_without_rows_leaves_the_other_its_own_outputs() {
        use crate::train::Observer;
        // Inputs 0, 2, 5 are all in half 0.
        let x = ndarray::array![[0.0f32], [2.0], [5.0]];
        assert!(x.rows().into_iter().all(|r| super::half_of(r) == 0));
        let y = ndarray::Array2::<f32>::zeros((3, 1));
        let mut halves = super::HalfSelected::new((x.view(), y.view()), false, None);
        halves.held_out(ndarray::array![[9.0f32], [9.0], [9.0]].view());
        // The network's own outputs: 2x + 1.
        let mut network = crate::nn::sequential::Sequential::new();
        let linear = crate::nn::layers::linear::Linear::from_weights(
            ndarray::array![[2.0f32]],
            ndarray::array![1.0f32],
        );
        network.push(Box::new(linear));
        let kept = halves.into_outputs(&mut network);
        assert_eq!(kept, ndarray::array![[1.0f32], [5.0], [11.0]]);
    }

    /// Processes holding parts of the rows choose the epochs one process holding all of
    /// them does, and keep the same outputs for their rows.
    #[test]
    fn halves_over_processes_choose_as_one_process() {
        use crate::train::Observer;
        let x = ndarray::Array2::from_shape_fn((9, 2), |(r, c)| (r * 3 + c) as f32 / 4.0);
        let y = ndarray::Array2::from_shape_fn((9, 1), |(r, _)| r as f32);
        // Five epochs of outputs, each row's error wandering.
        let epochs: Vec<ndarray::Array2<f32>> = (0..5)
            .map(|e| {
                ndarray::Array2::from_shape_fn((9, 1), |(r, _)| {
                    r as f32 + ((r * 7 + e * 3) % 5) as f32 - 2.0
                })
            })
            .collect();
        let run = |rows: std::ops::Range<usize>, comm: Option<&dyn Communicator>| {
            let (x, y) = (
                x.slice(ndarray::s![rows.clone(), ..]),
                y.slice(ndarray::s![rows.clone(), ..]),
            );
            let mut halves = super::HalfSelected::new((x, y), false, comm);
            for outputs in &epochs {
                halves.held_out(outputs.slice(ndarray::s![rows.clone(), ..]));
            }
            halves.into_outputs(&mut crate::nn::sequential::Sequential::new())
        };
        let one = run(0..9, None);
        let ranks = crate::train::comm::threads::group(2);
        let parts: Vec<ndarray::Array2<f32>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (ranks.iter().zip([0..4, 4..9]))
                .map(|(rank, rows)| scope.spawn(|| run(rows, Some(rank as &dyn Communicator))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        assert_eq!(ndarray::concatenate(ndarray::Axis(0), &views).unwrap(), one);
        // Not every row kept its last epoch's outputs: the halves chose.
        assert_ne!(one, epochs[4]);
    }

    /// By absolute errors (`--metric mae`) a half can choose another epoch than by squares.
    #[test]
    fn halves_judged_by_absolute_errors_choose_by_them() {
        use crate::train::Observer;
        let x = four_rows();
        let y = ndarray::array![[0.0f32], [0.0], [0.0], [0.0]];
        // Half 1 (rows 1, 3): epoch 1 errs 0 and 3 (squares 9, absolute 3), epoch 2 errs
        // 2 and 2 (squares 8, absolute 4). Half 0 is best at epoch 1 either way.
        let epochs = [
            ndarray::array![[0.0f32], [0.0], [0.0], [3.0]],
            ndarray::array![[5.0f32], [2.0], [5.0], [2.0]],
        ];
        for (absolute, want) in [(false, 5.0f32), (true, 0.0)] {
            let mut halves = super::HalfSelected::new((x.view(), y.view()), absolute, None);
            for outputs in &epochs {
                halves.held_out(outputs.view());
            }
            let kept = halves.into_outputs(&mut crate::nn::sequential::Sequential::new());
            assert_eq!(
                kept.column(0).to_vec(),
                [want, 0.0, want, 3.0],
                "{absolute}"
            );
        }
    }

    #[test]
    fn temperature_undoes_label_smoothing_on_the_out_of_fold_rows() {
        let config = TrainConfig {
            hidden: vec![32],
            epochs: 60,
            label_smoothing: 0.1,
            ..TrainConfig::default()
        };
        let model = iris(config.clone());
        let calibration = &model.file.calibration;
        let fitted = calibration.fitted.as_ref().unwrap();
        assert_eq!(fitted.rows, 150);
        // Smoothed labels make the networks underconfident: T < 1 sharpens them.
        assert!(calibration.temperature < 0.9, "{}", calibration.temperature);
        assert!(
            fitted.log_loss_after < 0.8 * fitted.log_loss_before,
            "{fitted:?}"
        );
        // No calibration: the same networks, T = 1.
        let none = iris(TrainConfig {
            calibration: crate::train::CalibrationMethod::None,
            ..config
        });
        assert!(none.file.calibration.is_identity());
        assert_eq!(none.file.layers, model.file.layers);
    }

    #[test]
    fn the_fitted_temperature_minimises_the_held_out_log_loss() {
        // Out-of-fold outputs of a one-network model's validation rows, recomputed here.
        let mut model = iris(TrainConfig {
            hidden: vec![16],
            epochs: 40,
            folds: 0,
            ..TrainConfig::default()
        });
        let t = model.file.calibration.temperature as f64;
        let fitted = model.file.calibration.fitted.clone().unwrap();
        assert_eq!(fitted.rows, 30);
        // Model::predict_encoded gives softmax(z / T): its log loss on all rows is finite,
        // and the temperature's neighbours do worse on the rows it was fitted on.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv");
        let mut request = TrainRequest::new(path);
        request.config = model.file.training.config.clone();
        let prepared = prepare(&request).unwrap();
        let z = super::raw_outputs(&mut model.network, prepared.x_val.view());
        let crate::tabular::encoding::Targets::Classes(y) = &prepared.y_val else {
            unreachable!()
        };
        let at = |t: f64| log_loss(z.view(), y, t);
        assert!((at(t) - fitted.log_loss_after).abs() < 1e-6);
        assert!((at(1.0) - fitted.log_loss_before).abs() < 1e-6);
        assert!(at(t) < at(t * 1.02) && at(t) < at(t / 1.02));
        let Predictions::Classes { probabilities, .. } =
            model.predict_encoded(prepared.x_val.view())
        else {
            unreachable!()
        };
        let mean: f64 = (probabilities.rows().into_iter().zip(y))
            .map(|(p, &c)| -(p[c] as f64).ln())
            .sum::<f64>()
            / y.len() as f64;
        assert!((mean - fitted.log_loss_after).abs() < 1e-5, "{mean}");
    }
}
