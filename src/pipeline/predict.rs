//! `mlp predict` as a library call: a CSV file in, prediction CSV out.
//!
//! Plain files (no quotes, no blank lines, no missing cells, every value one the model
//! knows) are streamed: each line is split once, only the model's columns are parsed,
//! straight into a reused batch of network inputs, and each batch goes through the network
//! and out as CSV before the next is read. Nothing is allocated per row. Anything else
//! (and any row the model would refuse) sends the whole file to the general reader,
//! [`score_bytes`], which gives the same predictions or the located error message.

use std::io::Write;
use std::path::Path;

use ndarray::{Array2, ArrayViewMut2, s};

use crate::data::chunks::Chunks;
#[cfg(unix)]
use crate::data::chunks::for_each_lines_at;
use crate::data::{ReadOptions, Table, cell::cell, column_cells, header_names};
use crate::error::{Error, Result, Setting};
use crate::nn::loss::softmax_rows_tempered;
use crate::pipeline::{Scored, Truth, score_bytes_with};
use crate::tabular::calibration::Interval;
use crate::tabular::encoding::{
    Encoding, Feature, TargetEncoding, UnknownCategory, Unseen, bin_input,
};
use crate::tabular::model::{Model, Predictions};

/// Rows per batch through the network (as in [`Model::predict_encoded`], so that both
/// paths give the same bits).
const BATCH: usize = 512;

/// How predictions are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// A header line, then one line per row: the kept columns, `prediction`, and with
    /// `proba` one `prob_<label>` column per class.
    #[default]
    Csv,
    /// One JSON object per row: the kept columns (as strings), `"prediction"` (the label,
    /// or a number), and for a classifier always `"probabilities"`, label → probability.
    Jsonl,
}

/// What to write for every row.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// CSV or JSON lines.
    pub format: Format,
    /// One probability per class in CSV (JSON lines always have them).
    pub proba: bool,
    /// Input columns copied, as the file has them, in front of each row (CSV) or as keys
    /// (JSON lines), in this order.
    pub keep: Vec<String>,
    /// Regression: a prediction interval ([`Model::interval`]), its ends written as `lower`
    /// and `upper` after the prediction.
    pub interval: Option<Interval>,
}

/// Predictions written out.
#[derive(Debug, Default)]
pub struct Written {
    /// The output text.
    pub bytes: Vec<u8>,
    /// Rows predicted.
    pub rows: usize,
    /// Missing cells filled with the model's fill values.
    pub filled: usize,
    /// Unseen categories encoded with none of their column's inputs on.
    pub unseen: Unseen,
}

impl Written {
    fn append(&mut self, more: Written) {
        self.bytes.extend_from_slice(&more.bytes);
        self.rows += more.rows;
        self.filled += more.filled;
        self.unseen.add(&more.unseen);
    }
}

/// The prediction CSV for the CSV file `bytes` (`path` names it in messages), and the
/// number of rows. With `proba`, a classifier adds one `prob_<label>` column per class.
///
/// **Panics** if `proba` is set for a regression model (callers refuse that flag first).
pub fn predict_csv(
    model: &mut Model,
    path: &Path,
    bytes: &[u8],
    proba: bool,
) -> Result<(Vec<u8>, usize)> {
    let request = Request {
        proba,
        ..Request::default()
    };
    let written = predict_bytes(model, path, bytes, &request, UnknownCategory::Ignore, true)?;
    Ok((written.bytes, written.rows))
}

/// The predictions for the CSV text `bytes` (`path` names it in messages) as `request`
/// asks, with the CSV header line if `header`. Plain text takes the streamed path; anything
/// else the general reader, which fills missing cells, treats unseen categories as
/// `unknown` says, and names the cell it refuses.
///
/// A kept column that is not in the file is refused, naming the columns that are; so is
/// one whose name an output column has.
///
/// **Panics** if `request.proba` is set for a regression model writing CSV.
pub fn predict_bytes(
    model: &mut Model,
    path: &Path,
    bytes: &[u8],
    request: &Request,
    unknown: UnknownCategory,
    header: bool,
) -> Result<Written> {
    if !request.keep.is_empty() {
        check_keep(
            &header_names(path, bytes)?,
            path,
            request,
            &model.file.encoding,
        )?;
    }
    if let Some((bytes, rows)) = predict_streamed(model, path, bytes, request, header) {
        return Ok(Written {
            bytes,
            rows,
            ..Written::default()
        });
    }
    let scored = score_bytes_with(model, path, bytes, false, unknown)?;
    let kept = if request.keep.is_empty() {
        Vec::new()
    } else {
        column_cells(path, bytes, &request.keep)?
    };
    let target = &model.file.encoding.target;
    Ok(Written {
        bytes: write_predictions(target, &scored, request, &kept, header),
        rows: scored.rows,
        filled: scored.filled,
        unseen: scored.unseen,
    })
}

/// [`predict_bytes`] over a file or standard input read a chunk at a time: one chunk of
/// the input in memory, and the output. Errors name the line in the whole input.
pub fn predict_chunks(
    model: &mut Model,
    mut chunks: Chunks,
    request: &Request,
    unknown: UnknownCategory,
) -> Result<Written> {
    let path = chunks.path().to_path_buf();
    let mut all = Written::default();
    let mut first = true;
    while let Some(chunk) = chunks.next_chunk()? {
        // As a file read whole: no line longer than the reader's limit.
        crate::fsutil::check_line_lengths(&path, &chunk.bytes).map_err(|e| chunk.locate(e))?;
        let part = predict_bytes(model, &path, &chunk.bytes, request, unknown, first)
            .map_err(|e| chunk.locate(e))?;
        first = false;
        all.append(part);
    }
    if first {
        // No data rows: what the in-memory path says about the header alone.
        return predict_bytes(model, &path, chunks.header(), request, unknown, true);
    }
    Ok(all)
}

/// Refuses kept columns that are not among `headers`, or that an output column is named.
fn check_keep(
    headers: &[String],
    path: &Path,
    request: &Request,
    encoding: &Encoding,
) -> Result<()> {
    if let Some(name) = request.keep.iter().find(|n| !headers.contains(n)) {
        return Err(Error::config(
            Setting::Keep,
            name,
            format!("{} has no column '{name}'", path.display()),
            format!("its columns are: {}", headers.join(", ")),
        ));
    }
    let mut outputs = vec!["prediction".to_string()];
    if let TargetEncoding::Classes { labels, .. } = &encoding.target {
        match request.format {
            Format::Jsonl => outputs.push("probabilities".into()),
            Format::Csv if request.proba => {
                outputs.extend(labels.iter().map(|l| format!("prob_{l}")))
            }
            Format::Csv => {}
        }
    }
    if request.interval.is_some() {
        outputs.extend(["lower".to_string(), "upper".to_string()]);
    }
    if let Some(name) = request.keep.iter().find(|n| outputs.contains(n)) {
        return Err(Error::config(
            Setting::Keep,
            name,
            format!("'{name}' is the name of an output column"),
            "rename the column in the file, or leave it out of --keep",
        ));
    }
    Ok(())
}

/// The predictions of scored rows, as the streamed path writes them; `kept` holds
/// `request.keep.len()` cells a row.
///
/// **Panics** if `request.proba` is set for a regression model writing CSV.
pub fn write_predictions(
    target: &TargetEncoding,
    scored: &Scored,
    request: &Request,
    kept: &[String],
    header: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(scored.rows * 16);
    let writer = RowWriter::new(target, request, header, &mut out);
    let width = request.keep.len();
    let kept_row = |r: usize| kept[r * width..(r + 1) * width].iter().map(String::as_str);
    match &scored.predictions {
        Predictions::Classes {
            classes,
            probabilities,
        } => {
            for (r, (row, &class)) in probabilities.rows().into_iter().zip(classes).enumerate() {
                writer.start(kept_row(r), &mut out);
                writer.class(class, row.as_slice().expect("standard layout"), &mut out);
            }
        }
        Predictions::Values(values) => {
            for (r, &v) in values.iter().enumerate() {
                writer.start(kept_row(r), &mut out);
                let members = (scored.members.as_ref())
                    .map_or(&[][..], |m| m.row(r).to_slice().expect("standard layout"));
                writer.value(v, members, &mut out);
            }
        }
    }
    out
}

/// Writes prediction rows: labels quoted (CSV) or escaped (JSON) once up front, numbers
/// formatted straight into the output.
struct RowWriter {
    format: Format,
    /// Each class label as a CSV field, or as a JSON string.
    labels: Vec<Vec<u8>>,
    /// JSON lines: `"name":` for each kept column.
    keys: Vec<Vec<u8>>,
    proba: bool,
    /// The prediction interval, if one is written.
    interval: Option<Interval>,
}

impl RowWriter {
    /// Writes the header line (CSV, if `header`).
    fn new(
        target: &TargetEncoding,
        request: &Request,
        header: bool,
        out: &mut Vec<u8>,
    ) -> RowWriter {
        let jsonl = request.format == Format::Jsonl;
        let mut columns = request.keep.clone();
        columns.push("prediction".into());
        let labels: &[String] = match target {
            TargetEncoding::Classes { labels, .. } => labels,
            TargetEncoding::Values { .. } => {
                assert!(
                    !request.proba || jsonl,
                    "probabilities exist only for classifiers"
                );
                &[]
            }
        };
        if request.proba {
            columns.extend(labels.iter().map(|l| format!("prob_{l}")));
        }
        let interval = request.interval.clone().filter(|_| labels.is_empty());
        if interval.is_some() {
            columns.extend(["lower".to_string(), "upper".to_string()]);
        }
        if header && !jsonl {
            out.extend_from_slice(&csv_line(&columns));
        }
        let labels = labels
            .iter()
            .map(|l| {
                if jsonl {
                    json_string(l)
                } else {
                    let mut cell = csv_line(std::slice::from_ref(l));
                    cell.pop(); // the line end
                    cell
                }
            })
            .collect();
        let keys = (request.keep.iter())
            .map(|k| {
                let mut key = json_string(k);
                key.push(b':');
                key
            })
            .collect();
        RowWriter {
            format: request.format,
            labels,
            keys,
            proba: request.proba,
            interval,
        }
    }

    /// Starts a row with its kept cells.
    fn start<'a>(&self, kept: impl Iterator<Item = &'a str>, out: &mut Vec<u8>) {
        match self.format {
            Format::Csv => {
                for cell in kept {
                    csv_field(cell, out);
                    out.push(b',');
                }
            }
            Format::Jsonl => {
                out.push(b'{');
                for (key, cell) in self.keys.iter().zip(kept) {
                    out.extend_from_slice(key);
                    out.extend_from_slice(&json_string(cell));
                    out.push(b',');
                }
            }
        }
    }

    fn class(&self, class: usize, probabilities: &[f32], out: &mut Vec<u8>) {
        match self.format {
            Format::Csv => {
                out.extend_from_slice(&self.labels[class]);
                if self.proba {
                    for p in probabilities {
                        // Writing into a Vec cannot fail.
                        let _ = write!(out, ",{p:.6}");
                    }
                }
                out.push(b'\n');
            }
            Format::Jsonl => {
                out.extend_from_slice(b"\"prediction\":");
                out.extend_from_slice(&self.labels[class]);
                out.extend_from_slice(b",\"probabilities\":{");
                for (k, (label, p)) in self.labels.iter().zip(probabilities).enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(label);
                    let _ = write!(out, ":{p:.6}");
                }
                out.extend_from_slice(b"}}\n");
            }
        }
    }

    /// Writes the value `v` the model predicts, and its interval's ends from it and
    /// `members`, each network's value (a CV+ interval's; empty for one network).
    fn value(&self, v: f64, members: &[f64], out: &mut Vec<u8>) {
        let bounds = self.interval.as_ref().map(|i| i.bounds(v, members));
        // The shortest text that reads back as the same f32.
        let _ = match (self.format, bounds) {
            (Format::Csv, None) => writeln!(out, "{}", v as f32),
            (Format::Csv, Some((lower, upper))) => {
                writeln!(out, "{},{},{}", v as f32, lower as f32, upper as f32)
            }
            (Format::Jsonl, None) => writeln!(out, "\"prediction\":{}}}", v as f32),
            (Format::Jsonl, Some((lower, upper))) => writeln!(
                out,
                "\"prediction\":{},\"lower\":{},\"upper\":{}}}",
                v as f32, lower as f32, upper as f32
            ),
        };
    }
}

/// `text` as a JSON string, quoted and escaped.
fn json_string(text: &str) -> Vec<u8> {
    serde_json::to_vec(text).expect("a string is always JSON")
}

/// `text` as one CSV field (quoted when it holds a comma, a quote or a line end) into `out`.
fn csv_field(text: &str, out: &mut Vec<u8>) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// One CSV line of `fields`, quoted where a field needs it.
fn csv_line(fields: &[String]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields)
        .and_then(|_| w.flush().map_err(csv::Error::from))
        .expect("writing CSV into memory cannot fail");
    w.into_inner().expect("flushed above")
}

/// What to do with one column of the file.
enum Slot {
    /// Not a feature.
    Skip,
    /// A number, into input `at` (standardised a batch at a time), and for a
    /// [`Feature::Piecewise`] its quantile bins (`edges`) into the inputs after it.
    Number { at: usize, edges: Vec<f64> },
    /// A category one-hot encoded into inputs `at..at + categories.len()`.
    Category { at: usize, categories: Vec<String> },
}

/// The streamed path: the predictions and the number of rows, or `None` when the file
/// needs the general reader (quotes, blank lines, a missing cell to fill, a category the
/// model does not know, anything the general reader would refuse).
///
/// **Panics** if `request.proba` is set for a regression model writing CSV.
pub fn predict_streamed(
    model: &mut Model,
    path: &Path,
    bytes: &[u8],
    request: &Request,
    header: bool,
) -> Option<(Vec<u8>, usize)> {
    // The general reader refuses what is not UTF-8; so must this path.
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).as_bytes();
    let header_end = memchr::memchr(b'\n', text)?;
    let layout = Layout::of(&model.file.encoding, path, text, header_end, &request.keep)?;
    let body = &text[header_end + 1..];
    if body.is_empty() {
        return None;
    }
    let mut stream = RowStream::text(model, layout, request, header, text.len() / 8);
    stream.rows(model, body)?;
    text_of(stream.finish(model)?)
}

/// The text a [`Sink::Text`] stream wrote, and its rows.
fn text_of((sink, rows): (Sink, usize)) -> Option<(Vec<u8>, usize)> {
    match sink {
        Sink::Text { out, .. } => Some((out, rows)),
        Sink::Scores(_) => None,
    }
}

/// [`predict_streamed`] for a regular file, read a piece (1 MiB) at a time into one buffer
/// instead of whole: the same output, byte for byte, without a page fault for every 4 KiB
/// of the file. `None` where [`predict_streamed`] gives `None`, and for kept columns (whose
/// cells are copied from the text of a batch's rows) and anything but a regular file.
pub fn predict_file_streamed(
    model: &mut Model,
    path: &Path,
    request: &Request,
    header: bool,
) -> Option<(Vec<u8>, usize)> {
    predict_file_streamed_in(model, path, request, header, 1 << 20)
}

/// [`predict_file_streamed`] reading `piece` bytes at a time (at first: a longer line
/// doubles the buffer).
fn predict_file_streamed_in(
    model: &mut Model,
    path: &Path,
    request: &Request,
    header: bool,
    piece: usize,
) -> Option<(Vec<u8>, usize)> {
    if !request.keep.is_empty() {
        return None;
    }
    let make = |model: &Model, layout, len: usize| {
        RowStream::text(model, layout, request, header, len / 8)
    };
    text_of(stream_file(model, path, &[], piece, make)?)
}

/// `eval`'s scoring of a regular file of plain rows, streamed as [`predict_file_streamed`]
/// streams it: the [`Scored`] that [`score_bytes_with`] gives (with the targets), or `None`
/// for anything the streamed path does not take, and for a row whose target is missing,
/// not one of the model's classes as written, or not a plain number. The general path
/// then reads the file, and leaves out, counts, refuses or names what it must.
pub fn score_file_streamed(model: &mut Model, path: &Path) -> Option<Scored> {
    score_file_streamed_in(model, path, 1 << 20)
}

/// [`score_file_streamed`] reading `piece` bytes at a time.
fn score_file_streamed_in(model: &mut Model, path: &Path, piece: usize) -> Option<Scored> {
    // A model file whose target is also a feature is refused when it is loaded.
    let target = model.file.encoding.target.name().to_string();
    let classes = match &model.file.encoding.target {
        TargetEncoding::Classes { labels, .. } => labels.len(),
        TargetEncoding::Values { .. } => 0,
    };
    let networks = 1 + model.ensemble.len();
    let members = classes == 0 && networks > 1;
    let make = |model: &Model, layout, _| {
        RowStream::new(model, layout, members, Sink::Scores(Scores::default()))
    };
    let (sink, rows) = stream_file(model, path, &[target], piece, make)?;
    match sink {
        Sink::Scores(scores) if rows > 0 => scores.scored(rows, classes, networks),
        _ => None,
    }
}

/// Streams the rows of the regular file at `path` through the stream `make` builds (from
/// the file's layout with `keep` and its length), `piece` bytes at a time (at first: a
/// longer line doubles the buffer). `None` where the streamed path refuses the file.
#[cfg(unix)]
fn stream_file(
    model: &mut Model,
    path: &Path,
    keep: &[String],
    piece: usize,
    make: impl FnOnce(&Model, Layout, usize) -> RowStream,
) -> Option<(Sink, usize)> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok().filter(|m| m.is_file())?.len()).ok()?;
    // The first read holds the header and the first row (which `Layout::of` looks at).
    let mut buf = vec![0; piece.max(1).min(len)];
    file.read_exact_at(&mut buf, 0).ok()?;
    while buf.len() < len && memchr::memchr_iter(b'\n', &buf).nth(1).is_none() {
        let read = buf.len();
        buf.resize((2 * read).min(len), 0);
        file.read_exact_at(&mut buf[read..], read as u64).ok()?;
    }
    let text = buf.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&buf);
    let header_end = memchr::memchr(b'\n', text)?;
    std::str::from_utf8(&text[..header_end]).ok()?;
    let layout = Layout::of(&model.file.encoding, path, text, header_end, keep)?;
    let body_at = buf.len() - text.len() + header_end + 1;
    if body_at == len {
        return None;
    }
    let mut stream = make(model, layout, len);
    // The rows are read again from the body's start, into the reader's own buffer. Cut at
    // line ends (ASCII), each piece is UTF-8 if the file is.
    drop(buf);
    for_each_lines_at(&file, (body_at as u64, len as u64), piece, |lines| {
        std::str::from_utf8(lines).ok()?;
        stream.rows(model, lines)
    })?;
    stream.finish(model)
}

#[cfg(not(unix))]
fn stream_file(
    _model: &mut Model,
    _path: &Path,
    _keep: &[String],
    _piece: usize,
    _make: impl FnOnce(&Model, Layout, usize) -> RowStream,
) -> Option<(Sink, usize)> {
    None
}

/// The streamed path's state: rows are read into a batch, and each full batch goes through
/// the model and into the sink.
struct RowStream {
    layout: Layout,
    x: Array2<f32>,
    buffers: Outputs,
    /// Where each row's kept cells are in the text, a batch at a time.
    kept: Vec<(usize, usize)>,
    sink: Sink,
    /// Rows done, and rows read into the batch not yet done.
    rows: usize,
    filled: usize,
}

/// Where a batch's outputs go: out as text (`predict`), or kept as numbers with each row's
/// target, the one kept cell (`eval`).
enum Sink {
    Text { writer: RowWriter, out: Vec<u8> },
    Scores(Scores),
}

/// What [`Sink::Scores`] keeps, row by row.
#[derive(Default)]
struct Scores {
    classes: Vec<usize>,
    probabilities: Vec<f32>,
    values: Vec<f64>,
    members: Vec<f64>,
    truth_classes: Vec<usize>,
    truth_values: Vec<f64>,
}

impl RowStream {
    fn new(model: &Model, layout: Layout, members: bool, sink: Sink) -> RowStream {
        let target = &model.file.encoding.target;
        let networks = 1 + model.ensemble.len();
        RowStream {
            x: Array2::<f32>::zeros((BATCH, layout.width)),
            buffers: Outputs::new(BATCH, target.width(), networks, members),
            kept: vec![(0, 0); BATCH * layout.keep.len()],
            layout,
            sink,
            rows: 0,
            filled: 0,
        }
    }

    /// A stream writing `request`'s text, with the CSV header line if `header`.
    fn text(
        model: &Model,
        layout: Layout,
        request: &Request,
        header: bool,
        out_bytes: usize,
    ) -> RowStream {
        let members = (request.interval.as_ref()).is_some_and(Interval::needs_members);
        let mut out = Vec::with_capacity(out_bytes);
        let writer = RowWriter::new(&model.file.encoding.target, request, header, &mut out);
        RowStream::new(model, layout, members, Sink::Text { writer, out })
    }

    /// Reads the rows of `body` (whole lines), sending each batch on as it fills. Text with
    /// kept columns ends a batch with each `body` (its kept cells are copied from there);
    /// scores take each row's target as it is read, so that batches always hold
    /// [`BATCH`] rows, as they do without kept columns: a product's rows can round
    /// differently in a batch of another size.
    fn rows(&mut self, model: &mut Model, body: &[u8]) -> Option<()> {
        let width = self.layout.keep.len();
        let mut i = 0;
        while i < body.len() {
            let inputs = self
                .x
                .row_mut(self.filled)
                .into_slice()
                .expect("standard layout");
            let row_kept = &mut self.kept[self.filled * width..(self.filled + 1) * width];
            i = self.layout.read_row(body, i, inputs, row_kept)?;
            let text = match &mut self.sink {
                Sink::Scores(scores) => {
                    let (start, end) = *row_kept.first()?;
                    let cell = std::str::from_utf8(&body[start..end]).ok()?;
                    scores.target(&model.file.encoding.target, crate::data::cell::trim(cell))?;
                    false
                }
                Sink::Text { .. } => width > 0,
            };
            self.filled += 1;
            if self.filled == BATCH || (text && i >= body.len()) {
                self.flush(model, body)?;
            }
        }
        Some(())
    }

    /// Sends on the rows read and not yet done.
    fn flush(&mut self, model: &mut Model, body: &[u8]) -> Option<()> {
        let layout = &self.layout;
        standardise(&mut self.x, self.filled, &layout.mean, &layout.std)?;
        let batch = Batch {
            rows: self.filled,
            body,
            kept: &self.kept,
            width: layout.keep.len(),
        };
        batch_outputs(model, &self.x, batch.rows, &mut self.buffers);
        match &mut self.sink {
            Sink::Text { writer, out } => write_batch(model, &batch, &self.buffers, writer, out)?,
            Sink::Scores(scores) => scores.add(model, batch.rows, &self.buffers)?,
        }
        self.rows += self.filled;
        self.filled = 0;
        Some(())
    }

    /// The sink and the number of rows, once the last batch is done.
    fn finish(mut self, model: &mut Model) -> Option<(Sink, usize)> {
        if self.filled > 0 {
            // No kept cell is read from the body: text with kept columns has sent every
            // batch on in `rows`, and scores have their targets.
            self.flush(model, &[])?;
        }
        Some((self.sink, self.rows))
    }
}

impl Scores {
    /// Keeps a row's target as the general path's [`Scored`] has it. `None` for one the
    /// general path treats otherwise (missing, not one of the model's classes as written,
    /// not a plain number, too far out): it leaves out, counts, refuses or names them.
    fn target(&mut self, target: &TargetEncoding, cell: &str) -> Option<()> {
        if crate::data::is_missing_token(cell) {
            return None;
        }
        match target {
            TargetEncoding::Classes { labels, .. } => {
                self.truth_classes
                    .push(labels.iter().position(|l| l == cell)?);
            }
            TargetEncoding::Values { mean, std, .. } => {
                // As `Encoding::targets`: standardised in f32, and back.
                let (t, used) = crate::data::parse_number(cell.as_bytes())?;
                let z = ((t as f64 - mean) / std) as f32;
                if used != cell.len() || !z.is_finite() {
                    return None;
                }
                self.truth_values.push(z as f64 * std + mean);
            }
        }
        Some(())
    }

    /// Keeps the outputs of a batch of `rows` rows as the general path's [`Scored`] has
    /// them; `None` for one that is not finite (the general path names its row).
    fn add(&mut self, model: &Model, rows: usize, buffers: &Outputs) -> Option<()> {
        let mean = buffers.model.slice(s![..rows, ..]);
        match &model.file.encoding.target {
            TargetEncoding::Classes { .. } => {
                for p in mean.rows() {
                    if p.iter().any(|v| !v.is_finite()) {
                        return None;
                    }
                    self.classes.push(crate::train::metrics::argmax(p));
                    self.probabilities.extend(p.iter());
                }
            }
            TargetEncoding::Values { mean: m, std, .. } => {
                for (r, z) in mean.column(0).iter().enumerate() {
                    let v = *z as f64 * std + m;
                    if !v.is_finite() {
                        return None;
                    }
                    self.values.push(v);
                    if let Some(members) = &buffers.members {
                        self.members.extend(members.row(r).iter());
                    }
                }
            }
        }
        Some(())
    }

    /// The [`Scored`] of `rows` rows, for a model with `classes` outputs (0 for values) and
    /// `networks` networks.
    fn scored(self, rows: usize, classes: usize, networks: usize) -> Option<Scored> {
        let (predictions, truth, members) = if classes > 0 {
            let probabilities = Array2::from_shape_vec((rows, classes), self.probabilities).ok()?;
            let predictions = Predictions::Classes {
                classes: self.classes,
                probabilities,
            };
            (predictions, Truth::Classes(self.truth_classes), None)
        } else {
            let members = (!self.members.is_empty())
                .then(|| Array2::from_shape_vec((rows, networks), self.members).ok())
                .flatten();
            let predictions = Predictions::Values(self.values);
            (predictions, Truth::Values(self.truth_values), members)
        };
        Some(Scored {
            predictions,
            members,
            truth: Some(truth),
            rows,
            missing_targets: 0,
            filled: 0,
            unseen: Default::default(),
        })
    }
}

/// One batch of rows read: how many, and where their kept cells are in `body`
/// (`width` of them a row).
struct Batch<'a> {
    rows: usize,
    body: &'a [u8],
    kept: &'a [(usize, usize)],
    width: usize,
}

impl Batch<'_> {
    /// Row `r`'s kept cells, trimmed as the reader trims a cell.
    fn kept(&self, r: usize) -> impl Iterator<Item = &str> {
        let ranges = &self.kept[r * self.width..(r + 1) * self.width];
        ranges.iter().map(|&(start, end)| {
            // Cut at ASCII delimiters and line ends of checked UTF-8.
            let text = std::str::from_utf8(&self.body[start..end]).unwrap_or_default();
            crate::data::cell::trim(text)
        })
    }
}

/// Where each column of a file goes in the network's inputs, and every input's mean and
/// deviation: what the streamed path needs to encode a row as [`Encoding::encode`] does.
struct Layout {
    delimiter: u8,
    slots: Vec<Slot>,
    /// The column of each kept cell.
    keep: Vec<usize>,
    width: usize,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Layout {
    /// The layout for `encoding` of the file `text` whose header ends at `header_end`, or
    /// `None` when the file or the model is for the general reader (a quoted header,
    /// robust scaling, a missing feature column).
    fn of(
        encoding: &Encoding,
        path: &Path,
        text: &[u8],
        header_end: usize,
        keep: &[String],
    ) -> Option<Layout> {
        let header = &text[..header_end];
        let header = header.strip_suffix(b"\r").unwrap_or(header);
        if header.is_empty() || header.contains(&b'"') || header.contains(&b'\r') {
            return None;
        }
        // Robust scaling goes through the general reader.
        if (encoding.features.iter()).any(|f| matches!(f, Feature::Robust { .. })) {
            return None;
        }
        // The header and delimiter as the general reader sees them, from the first two lines.
        let second_end = memchr::memchr(b'\n', &text[header_end + 1..])
            .map_or(text.len(), |i| header_end + 1 + i);
        let options = ReadOptions {
            categorical: encoding.text_names(),
        };
        let head = Table::from_bytes(path, &text[..second_end], &options).ok()?;
        let delimiter = head.delimiter();
        let names: Vec<&str> = header
            .split(|&b| b == delimiter)
            .map(|n| std::str::from_utf8(n).map(str::trim))
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        if names != head.headers() {
            return None;
        }
        let (slots, width) = Layout::slots(encoding, &names)?;
        let (mean, std) = Layout::scales(encoding, width);
        let keep = (keep.iter())
            .map(|k| names.iter().position(|n| n == k))
            .collect::<Option<_>>()?;
        Some(Layout {
            delimiter,
            slots,
            keep,
            width,
            mean,
            std,
        })
    }

    /// Each of the file's columns (`names`) as a slot, and the number of inputs.
    fn slots(encoding: &Encoding, names: &[&str]) -> Option<(Vec<Slot>, usize)> {
        let mut slots: Vec<Slot> = names.iter().map(|_| Slot::Skip).collect();
        let mut at = 0;
        for feature in &encoding.features {
            let column = names.iter().position(|n| *n == feature.name())?;
            slots[column] = match feature {
                Feature::Numeric { .. } => Slot::Number { at, edges: vec![] },
                Feature::Piecewise { edges, .. } => Slot::Number {
                    at,
                    edges: edges.clone(),
                },
                Feature::Robust { .. } | Feature::Date { .. } => return None,
                Feature::Categorical { categories, .. } => Slot::Category {
                    at,
                    categories: categories.clone(),
                },
            };
            at += feature.width();
        }
        Some((slots, at))
    }

    /// Every input's mean and deviation: a number (a piecewise feature's first input) is
    /// standardised; one-hot and bin inputs pass through as (x − 0) / 1.
    fn scales(encoding: &Encoding, width: usize) -> (Vec<f64>, Vec<f64>) {
        let (mut mean, mut std) = (Vec::with_capacity(width), Vec::with_capacity(width));
        for feature in &encoding.features {
            let first = match feature {
                Feature::Numeric { mean, std, .. } | Feature::Piecewise { mean, std, .. } => {
                    Some((*mean, *std))
                }
                Feature::Categorical { .. } | Feature::Robust { .. } | Feature::Date { .. } => None,
            };
            let rest = feature.width() - usize::from(first.is_some());
            if let Some((m, s)) = first {
                mean.push(m);
                std.push(s);
            }
            mean.extend(std::iter::repeat_n(0.0, rest));
            std.extend(std::iter::repeat_n(1.0, rest));
        }
        (mean, std)
    }

    /// Reads the row starting at `body[i]` into `inputs` (numbers not yet standardised),
    /// and where its kept cells are into `kept`; the position after its line end. Each cell is read where it starts, and what follows
    /// it must be the delimiter or (after the last column) a line end. Blank lines, quotes,
    /// spaces around numbers, missing cells, a carriage return inside a line (an old Mac
    /// line end) and ragged rows all fail that (`None`), and are the general reader's
    /// business.
    fn read_row(
        &self,
        body: &[u8],
        mut i: usize,
        inputs: &mut [f32],
        kept: &mut [(usize, usize)],
    ) -> Option<usize> {
        inputs.fill(0.0);
        let columns = self.slots.len();
        for (column, slot) in self.slots.iter().enumerate() {
            let start = i;
            i += self.read_cell(slot, &body[i..], inputs)?;
            for (range, _) in kept
                .iter_mut()
                .zip(&self.keep)
                .filter(|(_, c)| **c == column)
            {
                *range = (start, i);
            }
            let next = body.get(i).copied();
            if column + 1 < columns {
                if next != Some(self.delimiter) {
                    return None;
                }
                i += 1;
            } else {
                match (next, body.get(i + 1)) {
                    (None, _) => {}
                    (Some(b'\n'), _) => i += 1,
                    (Some(b'\r'), Some(b'\n')) => i += 2,
                    _ => return None,
                }
            }
        }
        Some(i)
    }

    /// Reads the cell at the start of `rest` into its `slot` of `inputs`; the bytes it took.
    fn read_cell(&self, slot: &Slot, rest: &[u8], inputs: &mut [f32]) -> Option<usize> {
        if let Slot::Number { at, edges } = slot {
            // As the general reader: finite, within f32 (`nan`, a missing token, parses,
            // and is refused).
            let (v, used) = crate::data::parse_number(rest)?;
            inputs[*at] = v;
            for (t, bin) in edges.windows(2).enumerate() {
                inputs[at + 1 + t] = bin_input(v as f64, bin[0], bin[1]) as f32;
            }
            return Some(used);
        }
        let delimiter = self.delimiter;
        let len = (rest.iter())
            .position(|&b| b == delimiter || b == b'\n' || b == b'\r' || b == b'"')
            .unwrap_or(rest.len());
        if let Slot::Category { at, categories } = slot {
            // Valid UTF-8 (checked above), cut at ASCII bytes, read as the general reader
            // reads a cell; a missing one (to fill) goes there.
            let text = cell(std::str::from_utf8(&rest[..len]).ok()?)?;
            let k = categories.iter().position(|c| c == text)?;
            inputs[at + k] = 1.0;
        }
        Some(len)
    }
}

/// Standardises the first `rows` rows of `x` in place as `Encoding::inputs` does (in f64,
/// then to f32), in one contiguous loop the compiler vectorises; `None` if a value does not
/// stay finite (the general path names it).
fn standardise(x: &mut Array2<f32>, rows: usize, mean: &[f64], std: &[f64]) -> Option<()> {
    let width = mean.len();
    let values = &mut x.as_slice_mut().expect("standard layout")[..rows * width];
    standardise_rows(values, mean, std);
    values.iter().all(|v| v.is_finite()).then_some(())
}

/// [`standardise`]'s loop, compiled for wider vectors too and chosen at run time
/// (`multiversion`): a subtraction and a division, exact IEEE operations, so the same bits
/// on any processor, with eight divisions at once where AVX-512 has them.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "x86_64+avx"))]
fn standardise_rows(values: &mut [f32], mean: &[f64], std: &[f64]) {
    for row in values.chunks_exact_mut(mean.len()) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
            *v = ((*v as f64 - m) / s) as f32;
        }
    }
}

/// Buffers for one batch's outputs, made once: the model's output per row (class
/// probabilities, or raw values) and, in a k-fold ensemble, each further network's.
struct Outputs {
    model: Array2<f32>,
    network: Array2<f32>,
    /// With a CV+ interval, each network's value, `[rows, networks]`.
    members: Option<Array2<f64>>,
}

impl Outputs {
    fn new(rows: usize, outputs: usize, networks: usize, members: bool) -> Self {
        Self {
            model: Array2::zeros((rows, outputs)),
            network: Array2::zeros((if networks > 1 { rows } else { 0 }, outputs)),
            members: (members && networks > 1).then(|| Array2::zeros((rows, networks))),
        }
    }
}

/// The first `rows` rows of `x` through every network of the model, into `buffers`: the
/// mean of their probabilities (classes) or raw outputs (values), summed in the networks'
/// order and divided by their number, exactly as [`Model::predict_encoded`], and with CV+
/// each network's value.
fn batch_outputs(model: &mut Model, x: &Array2<f32>, rows: usize, buffers: &mut Outputs) {
    let classify = matches!(model.file.encoding.target, TargetEncoding::Classes { .. });
    let networks = 1 + model.ensemble.len();
    let temperature = model.file.calibration.temperature;
    let mut mean = buffers.model.slice_mut(s![..rows, ..]);
    for (k, network) in std::iter::once(&mut model.network)
        .chain(model.ensemble.iter_mut())
        .enumerate()
    {
        network.set_training(false);
        let raw = network.forward(x.slice(s![..rows, ..]));
        if let (Some(members), TargetEncoding::Values { mean, std, .. }) =
            (buffers.members.as_mut(), &model.file.encoding.target)
        {
            for (to, z) in members.column_mut(k).iter_mut().zip(raw.column(0)) {
                *to = *z as f64 * std + mean;
            }
        }
        let write = |mut to: ArrayViewMut2<f32>| {
            if classify {
                softmax_rows_tempered(raw, temperature, to);
            } else {
                to.assign(&raw);
            }
        };
        // The first network writes the model's output; the others add theirs to it.
        if k == 0 {
            write(mean.view_mut());
        } else {
            let mut own = buffers.network.slice_mut(s![..rows, ..]);
            write(own.view_mut());
            mean += &own;
        }
    }
    if networks > 1 {
        mean /= networks as f32;
    }
}

/// Writes the outputs [`batch_outputs`] left in `buffers` for `batch`'s rows as text.
/// `None` if an output is not finite (the general path names the row).
fn write_batch(
    model: &Model,
    batch: &Batch,
    buffers: &Outputs,
    writer: &RowWriter,
    out: &mut Vec<u8>,
) -> Option<()> {
    let mean = buffers.model.slice(s![..batch.rows, ..]);
    match &model.file.encoding.target {
        TargetEncoding::Classes { .. } => {
            for (r, p) in mean.rows().into_iter().enumerate() {
                if p.iter().any(|v| !v.is_finite()) {
                    return None;
                }
                let best = crate::train::metrics::argmax(p);
                writer.start(batch.kept(r), out);
                writer.class(best, p.as_slice().expect("standard layout"), out);
            }
        }
        TargetEncoding::Values { mean: m, std, .. } => {
            for (r, z) in mean.column(0).iter().enumerate() {
                let v = *z as f64 * std + m;
                if !(v.is_finite() && v.abs() <= f32::MAX as f64) {
                    return None;
                }
                writer.start(batch.kept(r), out);
                let members = (buffers.members.as_ref())
                    .map_or(&[][..], |m| m.row(r).to_slice().expect("standard layout"));
                writer.value(v, members, out);
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::score_bytes;
    use crate::tabular::calibration::Residuals;
    use crate::tabular::encoding::Task;
    use crate::tabular::model::LayerRecord;

    /// The general path alone: the whole file through the general reader, then out.
    fn general(
        model: &mut Model,
        path: &Path,
        bytes: &[u8],
        request: &Request,
    ) -> Result<(Vec<u8>, usize)> {
        let scored = crate::pipeline::score_bytes(model, path, bytes, false)?;
        let kept = if request.keep.is_empty() {
            Vec::new()
        } else {
            column_cells(path, bytes, &request.keep)?
        };
        let out = write_predictions(&model.file.encoding.target, &scored, request, &kept, true);
        Ok((out, scored.rows))
    }

    /// The corpus's control model: numbers `x`, `age`, text `plan` (basic, plus, pro),
    /// classes `no`, `yes`.
    fn classifier() -> Model {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/models/valid.json"
        );
        Model::load(path.as_ref()).unwrap()
    }

    /// The same network cut to one output, predicting a number.
    fn regressor() -> Model {
        let mut file = classifier().file;
        file.task = Task::Regression;
        file.encoding.target = TargetEncoding::Values {
            name: "churned".into(),
            mean: 10.0,
            std: 2.5,
        };
        if let Some(LayerRecord::Linear {
            outputs,
            weight,
            bias,
            ..
        }) = file.layers.last_mut()
        {
            *outputs = 1;
            *weight = vec![weight[0], weight[2]];
            bias.truncate(1);
        }
        let json = serde_json::to_vec(&file).unwrap();
        Model::from_json(Path::new("r.json"), &json).unwrap()
    }

    /// `rows` plain rows with all three categories and varied numbers.
    fn rows(n: usize, delimiter: char, line_end: &str) -> String {
        let d = delimiter;
        let mut text = format!("x{d}age{d}plan{d}churned{line_end}");
        for i in 0..n {
            let plan = ["basic", "plus", "pro"][i % 3];
            let x = (i as f32 * 0.37).sin();
            text.push_str(&format!("{x}{d}{}{d}{plan}{d}no{line_end}", 20 + i % 50));
        }
        text
    }

    /// Streams `text` (which must take the streamed path) and checks it against the
    /// general reader, byte for byte.
    fn same_as_general(model: &mut Model, text: &str, proba: bool) -> Vec<u8> {
        let request = Request {
            proba,
            ..Request::default()
        };
        same_as_general_with(model, text, &request)
    }

    /// [`same_as_general`] for any request.
    fn same_as_general_with(model: &mut Model, text: &str, request: &Request) -> Vec<u8> {
        let path = Path::new("t.csv");
        let streamed = predict_streamed(model, path, text.as_bytes(), request, true)
            .unwrap_or_else(|| panic!("not streamed: {text:?}"));
        let general = general(model, path, text.as_bytes(), request).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&streamed.0),
            String::from_utf8_lossy(&general.0)
        );
        assert_eq!(streamed.1, general.1);
        // Read from a file, in pieces that cut lines and batches anywhere: the same bytes.
        if request.keep.is_empty() && cfg!(unix) {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("t.csv");
            std::fs::write(&file, text).unwrap();
            for piece in [1 << 20, 100, 7] {
                let from_file = predict_file_streamed_in(model, &file, request, true, piece)
                    .unwrap_or_else(|| panic!("not streamed from a file: {text:?}"));
                assert_eq!(from_file, streamed, "pieces of {piece} bytes");
            }
        }
        streamed.0
    }

    #[test]
    fn streamed_predictions_equal_the_general_readers() {
        let mut model = classifier();
        // Batches: fewer than one, exactly one, and several with a remainder.
        for n in [1, 3, 512, 1300] {
            same_as_general(&mut model, &rows(n, ',', "\n"), true);
            same_as_general(&mut model, &rows(n, ',', "\n"), false);
        }
        same_as_general(&mut model, &rows(40, ';', "\r\n"), true);
        same_as_general(&mut model, &rows(40, '\t', "\n"), true);
        // No final line end, a byte-order mark, spaces around cells, columns in another
        // order with an extra one.
        let text = rows(7, ',', "\n");
        same_as_general(&mut model, text.trim_end(), true);
        same_as_general(&mut model, &format!("\u{feff}{text}"), true);
        same_as_general(
            &mut model,
            "id , plan,age,x\n1, pro ,33,0.25\n2,basic,51,-1e-3\n",
            true,
        );
        let out = same_as_general(&mut regressor(), &rows(600, ',', "\n"), false);
        assert!(out.starts_with(b"prediction\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 601);
    }

    /// `model` as an ensemble of three networks: itself and two copies with weights and
    /// biases perturbed differently.
    fn ensemble_of(model: Model) -> Model {
        let mut file = model.file;
        for member in 1..=2 {
            let mut layers = file.layers.clone();
            for layer in &mut layers {
                if let LayerRecord::Linear { weight, bias, .. } = layer {
                    for (i, w) in weight.iter_mut().chain(bias.iter_mut()).enumerate() {
                        *w += 0.3 * (i as f32 * 1.7 + member as f32).sin();
                    }
                }
            }
            file.ensemble.push(layers);
        }
        file.training.config.folds = 3;
        let json = serde_json::to_vec(&file).unwrap();
        Model::from_json(Path::new("e.json"), &json).unwrap()
    }

    /// `rows(n)` with targets: classes `no` and `yes`, or numbers.
    fn labelled(n: usize, numbers: bool, line_end: &str) -> String {
        let text = rows(n, ',', line_end);
        let mut lines = text.split(line_end);
        let mut out = format!("{}{line_end}", lines.next().unwrap());
        for (i, line) in lines.filter(|l| !l.is_empty()).enumerate() {
            let target = if numbers {
                format!("{}", 8.0 + i as f32 * 0.37)
            } else {
                ["no", "yes", "no"][i % 3].to_string()
            };
            out.push_str(&format!(
                "{},{target}{line_end}",
                line.strip_suffix(",no").unwrap()
            ));
        }
        out
    }

    /// `eval`'s streamed scoring of `text` as a file, in pieces of several sizes, or `None`.
    fn streamed_scores(model: &mut Model, text: &str) -> Option<Scored> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.csv");
        std::fs::write(&file, text).unwrap();
        let first = score_file_streamed_in(model, &file, 1 << 20);
        for piece in [100, 7] {
            let got = score_file_streamed_in(model, &file, piece);
            assert_eq!(got.is_some(), first.is_some(), "pieces of {piece} bytes");
            if let (Some(a), Some(b)) = (&first, &got) {
                assert_eq!(a.predictions, b.predictions, "pieces of {piece} bytes");
                assert_eq!(a.truth, b.truth);
                assert_eq!(a.members, b.members);
            }
        }
        first
    }

    #[cfg(unix)]
    #[test]
    fn streamed_scores_equal_the_general_readers() {
        let cases = [
            (classifier(), false),
            (ensemble_of(classifier()), false),
            (regressor(), true),
            (ensemble_of(regressor()), true),
        ];
        for (mut model, numbers) in cases {
            for (n, line_end) in [(3, "\n"), (700, "\r\n")] {
                let text = labelled(n, numbers, line_end);
                let streamed = streamed_scores(&mut model, &text)
                    .unwrap_or_else(|| panic!("not streamed: {text:?}"));
                let general =
                    score_bytes(&mut model, Path::new("t.csv"), text.as_bytes(), true).unwrap();
                assert_eq!(streamed.predictions, general.predictions, "{text:?}");
                assert_eq!(streamed.truth, general.truth);
                assert_eq!(streamed.members, general.members);
                assert_eq!(streamed.rows, general.rows);
                assert_eq!(streamed.rows, n);
                assert!(general.truth.is_some());
            }
            // What the general path leaves out, refuses or reads otherwise.
            let text = labelled(5, numbers, "\n");
            let last = text.trim_end().rsplit_once(',').unwrap().0.to_string();
            for target in ["", "NA", "maybe", "1e999", " 1.0x"] {
                let odd = format!("{last},{target}\n");
                let odd = text.replace(&format!("{}\n", text.trim_end()), &odd);
                assert!(streamed_scores(&mut model, &odd).is_none(), "{odd:?}");
            }
        }
    }

    #[test]
    fn streamed_ensemble_predictions_equal_the_general_readers() {
        let mut single = classifier();
        let mut model = ensemble_of(classifier());
        for n in [3, 512, 1300] {
            same_as_general(&mut model, &rows(n, ',', "\n"), true);
            same_as_general(&mut model, &rows(n, ',', "\n"), false);
        }
        // The members really differ: the ensemble's probabilities are not the first
        // network's.
        let text = rows(50, ',', "\n");
        assert_ne!(
            same_as_general(&mut model, &text, true),
            same_as_general(&mut single, &text, true)
        );
        let out = same_as_general(&mut ensemble_of(regressor()), &rows(600, ',', "\n"), false);
        assert!(out.starts_with(b"prediction\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 601);
        assert_ne!(
            out,
            same_as_general(&mut regressor(), &rows(600, ',', "\n"), false)
        );
    }

    #[test]
    fn streamed_piecewise_inputs_equal_the_general_readers() {
        // `age` (input 1) as a piecewise feature with 3 bins: 3 more inputs after it, each
        // with its own weights into the first layer.
        let mut file = classifier().file;
        let edges = vec![20.0, 31.5, 45.0, 69.0];
        if let Feature::Numeric {
            name, mean, std, ..
        } = &file.encoding.features[1]
        {
            file.encoding.features[1] = Feature::Piecewise {
                name: name.clone(),
                mean: *mean,
                std: *std,
                edges,
                fill: None,
            };
        }
        if let Some(LayerRecord::Linear {
            inputs,
            outputs,
            weight,
            ..
        }) = file.layers.first_mut()
        {
            let bins: Vec<f32> = (0..3 * *outputs).map(|i| (i as f32 * 0.7).cos()).collect();
            let at = 2 * *outputs;
            weight.splice(at..at, bins);
            *inputs += 3;
        }
        let json = serde_json::to_vec(&file).unwrap();
        let mut model = Model::from_json(Path::new("p.json"), &json).unwrap();
        for n in [3, 700] {
            same_as_general(&mut model, &rows(n, ',', "\n"), true);
        }
    }

    #[test]
    fn anything_unusual_goes_to_the_general_reader() {
        let mut model = classifier();
        let path = Path::new("t.csv");
        let cases = [
            // quotes, a blank line, a missing cell, an unseen category, a missing token
            // as category, a ragged row, an old Mac line end, text in a number column, a
            // number beyond f32, a missing column
            "x,age,plan\n\"0.5\",30,basic\n",
            "x,age,plan\n0.5,30,basic\n\n0.1,31,pro\n",
            "x,age,plan\n0.5,,basic\n",
            "x,age,plan\n0.5,30,gold\n",
            "x,age,plan\n0.5,30,NA\n",
            "x,age,plan\n0.5,30,basic,9\n",
            "x,age,plan\n0.5,30,basic\r0.1,31,pro\n",
            "x,age,plan\n0.5,thirty,basic\n",
            "x,age,plan\n0.5,1e39,basic\n",
            "x,plan\n0.5,basic\n",
            "x,age,plan\n",
        ];
        for text in cases {
            assert!(
                predict_streamed(&mut model, path, text.as_bytes(), &Request::default(), true)
                    .is_none(),
                "{text:?}"
            );
        }
        // Where the general reader refuses, predict_csv gives its message.
        let e = predict_csv(&mut model, path, cases[7].as_bytes(), false).unwrap_err();
        assert!(
            e.to_string().starts_with("t.csv, line 2, column 'age': "),
            "{e}"
        );
        // An unseen category is scored by the general reader, with no category on.
        let (gold, rows) = predict_csv(&mut model, path, cases[3].as_bytes(), false).unwrap();
        assert_eq!(rows, 1);
        assert!(gold.starts_with(b"prediction\n"));
        // Where it accepts, the same predictions: quoted numbers, spaces around numbers.
        let plain = predict_csv(&mut model, path, b"x,age,plan\n0.5,30,basic\n", true).unwrap();
        let quoted = predict_csv(&mut model, path, cases[0].as_bytes(), true).unwrap();
        assert_eq!(quoted, plain);
        let spaced = b"x,age,plan\n0.5, 30 ,basic\n";
        let proba = Request {
            proba: true,
            ..Request::default()
        };
        assert!(predict_streamed(&mut model, path, spaced, &proba, true).is_none());
        assert_eq!(predict_csv(&mut model, path, spaced, true).unwrap(), plain);
        assert_eq!(plain.1, 1);
    }

    /// [`regressor`] as a k-fold ensemble of three networks (the others' weights scaled),
    /// with each network's residuals for CV+ intervals.
    fn ensemble_regressor() -> Model {
        let mut file = regressor().file;
        let scaled = |factor: f32| -> Vec<LayerRecord> {
            let mut layers = file.layers.clone();
            for layer in &mut layers {
                if let LayerRecord::Linear { weight, .. } = layer {
                    weight.iter_mut().for_each(|w| *w *= factor);
                }
            }
            layers
        };
        file.ensemble = vec![scaled(1.3), scaled(0.7)];
        file.training.config.folds = 3;
        let fold = |k: usize| (0..40).map(|i| (i * (k + 2)) as f64 / 20.0).collect();
        file.residuals = Some(Residuals::of_folds((0..3).map(fold).collect()));
        let json = serde_json::to_vec(&file).unwrap();
        Model::from_json(Path::new("r.json"), &json).unwrap()
    }

    #[test]
    fn streamed_path_gives_the_general_readers_cv_plus_intervals() {
        let mut model = ensemble_regressor();
        let interval = model.interval(0.9).unwrap();
        assert!(interval.needs_members());
        let request = Request {
            interval: Some(interval),
            ..Request::default()
        };
        // Several batches, and a remainder.
        let out = same_as_general_with(&mut model, &rows(1300, ',', "\n"), &request);
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("prediction,lower,upper\n"));
        // The networks disagree by row: so do the distances to the two ends.
        let mut asymmetric = 0;
        for line in out.lines().skip(1) {
            let v: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
            assert!(v[1] < v[2], "{line}");
            asymmetric += usize::from(((v[2] - v[0]) - (v[0] - v[1])).abs() > 1e-3);
        }
        assert!(asymmetric > 100, "{asymmetric}");
    }

    #[test]
    fn streamed_path_applies_the_temperature_and_the_interval() {
        // A temperature of 2 halves every logit: the probabilities are softer, on both paths.
        let text = rows(600, ',', "\n");
        let plain = same_as_general(&mut classifier(), &text, true);
        let mut tempered = classifier();
        tempered.file.calibration.temperature = 2.0;
        let soft = same_as_general(&mut tempered, &text, true);
        let first = |out: &[u8]| -> f32 {
            let line = String::from_utf8_lossy(out)
                .lines()
                .nth(1)
                .unwrap()
                .to_string();
            let cells: Vec<f32> = line
                .split(',')
                .skip(1)
                .map(|c| c.parse().unwrap())
                .collect();
            cells.iter().cloned().fold(0.0, f32::max)
        };
        assert!(
            first(&soft) < first(&plain),
            "{} {}",
            first(&soft),
            first(&plain)
        );
        assert!(first(&soft) > 0.5);
        // The classes are the same.
        let classes = |out: &[u8]| -> Vec<String> {
            let text = String::from_utf8_lossy(out).to_string();
            text.lines()
                .map(|l| l.split(',').next().unwrap().to_string())
                .collect()
        };
        assert_eq!(classes(&soft), classes(&plain));
        // An interval of ±1.5 around each value, on both paths, in CSV and JSON lines.
        let interval = Request {
            interval: Some(Interval::Split { half: 1.5 }),
            ..Request::default()
        };
        let out = same_as_general_with(&mut regressor(), &text, &interval);
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("prediction,lower,upper\n"));
        for line in out.lines().skip(1) {
            let v: Vec<f32> = line.split(',').map(|c| c.parse().unwrap()).collect();
            assert!((v[0] - v[1] - 1.5).abs() < 1e-4 && (v[2] - v[0] - 1.5).abs() < 1e-4);
        }
        let jsonl = Request {
            format: Format::Jsonl,
            interval: Some(Interval::Split { half: 1.5 }),
            ..Request::default()
        };
        let out = same_as_general_with(&mut regressor(), &text, &jsonl);
        for line in String::from_utf8(out).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (p, lo, hi) = (
                v["prediction"].as_f64().unwrap(),
                v["lower"].as_f64().unwrap(),
                v["upper"].as_f64().unwrap(),
            );
            assert!(
                (p - lo - 1.5).abs() < 1e-4 && (hi - p - 1.5).abs() < 1e-4,
                "{line}"
            );
        }
    }
}
