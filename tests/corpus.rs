//! The corpus of bad and awkward inputs under `tests/corpus/`, fed to the `mlp` binary.
//!
//! * `train/`: training files that must be refused with exit code 2 and one message naming
//!   the file, the line (as a text editor counts them), the column and the value.
//! * `predict/`: files for `mlp predict` / `mlp eval` (`eval_*`) against a model trained on
//!   `fixture.csv`.
//! * `models/`: damaged, foreign or inconsistent model files (`valid.json` is the control).
//! * `accept/`: awkward but valid files that must train, and whose model must work.
//!
//! Every file in those directories has a row in a table below, and every row a file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Runs the binary in the corpus directory, so that messages name `train/empty.csv`.
fn mlp(args: &[&str]) -> Output {
    Command::new(MLP)
        .args(args)
        .current_dir(corpus())
        .env_remove("MLP_THREADS")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Insists on exit code 2 and one `error: {head}…` message with `hint` in its hint line.
fn refused(args: &[&str], head: &str, hint: &str) {
    let out = mlp(args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let context = format!(
        "mlp {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    assert_eq!(out.status.code(), Some(2), "{context}");
    assert!(!stderr.contains("panicked"), "{context}");
    assert!(
        stderr.starts_with(&format!("error: {head}")),
        "expected `error: {head}`\n{context}"
    );
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "one message\n{context}"
    );
    // One `error:` line, one `hint:` line, whatever the values held.
    assert_eq!(stderr.lines().count(), 2, "two lines\n{context}");
    let hint_line = stderr
        .lines()
        .find(|l| l.starts_with("  hint: "))
        .unwrap_or_else(|| panic!("no hint line\n{context}"));
    assert!(
        !hint.is_empty() && hint_line.contains(hint),
        "expected hint `{hint}`\n{context}"
    );
}

/// The files of one corpus directory.
fn files(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(corpus().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// Every file has a case and every case a file.
fn same_files(dir: &str, cases: impl IntoIterator<Item = &'static str>) {
    let listed: BTreeSet<String> = cases.into_iter().map(String::from).collect();
    assert_eq!(
        files(dir),
        listed,
        "tests/corpus/{dir} and its table differ"
    );
}

/// Bad training files: file, extra flags, the message's start (after `error: `, with the
/// path as `train/…`), and a fragment of its hint.
const TRAIN: &[(&str, &[&str], &str, &str)] = &[
    (
        "empty.csv",
        &[],
        "train/empty.csv: the file is empty",
        "a CSV file needs a header line",
    ),
    (
        "blank_lines_only.csv",
        &[],
        "train/blank_lines_only.csv: the file is empty",
        "needs a header line",
    ),
    (
        "header_only.csv",
        &[],
        "train/header_only.csv: the file has a header but no data rows",
        "add data rows",
    ),
    (
        "header_then_blank_lines.csv",
        &[],
        "train/header_then_blank_lines.csv: the file has a header but no data rows",
        "add data rows",
    ),
    (
        "ragged_short_row.csv",
        &[],
        "train/ragged_short_row.csv, line 5: this row has 3 fields but the header has 4 columns",
        "missing or extra comma",
    ),
    (
        "ragged_long_row.csv",
        &[],
        "train/ragged_long_row.csv, line 7: this row has 5 fields but the header has 4 columns",
        "missing or extra comma",
    ),
    (
        "unclosed_quote.csv",
        &[],
        "train/unclosed_quote.csv, line 4: this row has 2 fields but the header has 4 columns",
        "a quote (\") that is never closed",
    ),
    (
        "crlf_bad_cell.csv",
        &[],
        "train/crlf_bad_cell.csv, line 10: this row has 5 fields but the header has 4 columns",
        "missing or extra comma",
    ),
    (
        "escape_sequence_in_cell.csv",
        &[],
        "train/escape_sequence_in_cell.csv, line 4, column 'age': '\\x1b]0;pwned\\x07' is not a \
         number",
        "--categorical age",
    ),
    (
        "newline_in_quoted_cell.csv",
        &[],
        "train/newline_in_quoted_cell.csv, line 3, column 'age': '4\\n5' is not a number",
        "--categorical age",
    ),
    (
        "blank_lines_then_bad_cell.csv",
        &[],
        "train/blank_lines_then_bad_cell.csv, line 10, column 'age': 'twelve' is not a number",
        "--categorical age",
    ),
    (
        "non_numeric_cell.csv",
        &[],
        "train/non_numeric_cell.csv, line 6, column 'age': 'thirty' is not a number, but 12 \
         of the 13 values in this column are",
        "--categorical age",
    ),
    (
        "decimal_commas.csv",
        &[],
        "train/decimal_commas.csv, line 2, column 'x': '0,236' is a number written with a \
         decimal comma",
        "write decimals with a point",
    ),
    (
        "nan_cell.csv",
        &["--missing", "error"],
        "train/nan_cell.csv, line 4, column 'x': this cell is missing, and 1 of the 13 rows has \
         missing values",
        "--missing drop",
    ),
    (
        "inf_cell.csv",
        &[],
        "train/inf_cell.csv, line 8, column 'x': 'inf' is not a finite number",
        "fix the value",
    ),
    (
        "negative_infinity_cell.csv",
        &[],
        "train/negative_infinity_cell.csv, line 3, column 'age': '-Infinity' is not a finite \
         number",
        "fix the value",
    ),
    (
        "too_large_for_f32.csv",
        &[],
        "train/too_large_for_f32.csv, line 5, column 'x': '1e39' is too large for 32-bit floats",
        "fix the value",
    ),
    (
        "empty_cell.csv",
        &["--missing", "error"],
        "train/empty_cell.csv, line 10, column 'age': this cell is missing, and 1 of the 13 \
         rows has missing values",
        "--missing drop",
    ),
    (
        "missing_target_cell.csv",
        &["--missing", "error"],
        "train/missing_target_cell.csv, line 7, column 'churned': this cell is missing",
        "--missing drop",
    ),
    (
        "column_all_missing.csv",
        &[],
        "train/column_all_missing.csv, column 'age': every one of the 12 training rows is \
         missing this column, so there is nothing to fill its gaps with",
        "leave it out with --ignore age",
    ),
    (
        "all_rows_missing.csv",
        &["--missing", "drop"],
        "train/all_rows_missing.csv: every one of the 3 rows has a missing value",
        "fill in the missing cells",
    ),
    (
        "random_bytes.csv",
        &[],
        "train/random_bytes.csv, line 4: this is not a text CSV file (it contains NUL bytes)",
        "export spreadsheets as CSV",
    ),
    (
        "spreadsheet.xlsx",
        &[],
        "train/spreadsheet.xlsx, line 1: this is not a text CSV file",
        "export spreadsheets as CSV (UTF-8)",
    ),
    (
        "latin1.csv",
        &[],
        "train/latin1.csv, line 4: byte 11 of this line (0xE1) is not valid UTF-8",
        "iconv -f latin1 -t utf-8",
    ),
    (
        "utf16.csv",
        &[],
        "train/utf16.csv: the file is UTF-16 text, not UTF-8",
        "CSV UTF-8",
    ),
    (
        "json_not_csv.csv",
        &[],
        "train/json_not_csv.csv, line 1: this looks like a JSON file (a model file?), not CSV",
        "pass the CSV data file",
    ),
    (
        "space_separated.csv",
        &[],
        "train/space_separated.csv, line 1: the header has only one column, 'x age plan \
         churned'",
        "the header looks space-separated",
    ),
    (
        "only_one_column.csv",
        &[],
        "train/only_one_column.csv, line 1: the header has only one column, 'churned'",
        "check the delimiter",
    ),
    (
        "duplicate_column_names.csv",
        &[],
        "train/duplicate_column_names.csv, line 1, column 'x': columns 1 and 3 are both named 'x'",
        "rename one of them",
    ),
    (
        "unnamed_column.csv",
        &[],
        "train/unnamed_column.csv, line 1: column 2 has no name in the header",
        "give every column a name",
    ),
    (
        "trailing_delimiter.csv",
        &[],
        "train/trailing_delimiter.csv, line 1: column 5 has no name in the header",
        "the header ends with a delimiter",
    ),
    (
        "too_few_rows.csv",
        &[],
        "train/too_few_rows.csv: only 3 rows: too few for 3 folds of 2 rows or more",
        "add rows, or use --folds 0 --val-split 0 to train one network on all of them",
    ),
    (
        "too_few_rows.csv",
        &["--folds", "0"],
        "train/too_few_rows.csv: only 3 rows: too few to hold out 20% for validation",
        "--val-split 0",
    ),
    (
        "one_class.csv",
        &[],
        "train/one_class.csv, column 'churned': classification needs at least two classes, but \
         every row has 'yes'",
        "check that --target names",
    ),
    (
        "identifier_column.csv",
        &[],
        "train/identifier_column.csv, column 'customer': 40 different values in 40 rows",
        "--ignore customer",
    ),
    (
        "target_numbers_as_text.csv",
        &[],
        "train/target_numbers_as_text.csv, column 'price': the target has 40 different values \
         in 40 rows, too many to be classes",
        "write them as plain numbers",
    ),
];

#[test]
fn bad_training_files_are_refused_with_their_location() {
    same_files("train", TRAIN.iter().map(|c| c.0));
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    for (file, flags, head, hint) in TRAIN {
        let path = format!("train/{file}");
        let mut args = vec!["train", &path, "--model", model.to_str().unwrap(), "-q"];
        args.extend_from_slice(flags);
        refused(&args, head, hint);
        assert!(!model.exists(), "{file}: no model from a refused file");
    }
}

/// Bad flag values on a good file: flags, the message's start, a hint fragment.
const FLAGS: &[(&[&str], &str, &str)] = &[
    (
        &["--lr", "-0.5"],
        "invalid --lr -0.5: must be a positive",
        "for example --lr 0.001",
    ),
    (
        &["--lr", "0"],
        "invalid --lr 0: must be a positive",
        "for example --lr 0.001",
    ),
    (
        &["--lr", "NaN"],
        "invalid --lr NaN: must be a positive, finite",
        "for example --lr 0.001",
    ),
    (
        &["--lr", "inf"],
        "invalid --lr inf: must be a positive, finite",
        "for example --lr 0.001",
    ),
    (
        &["--epochs", "0"],
        "invalid --epochs 0: train for at least one epoch",
        "for example --epochs 200",
    ),
    (
        &["--epochs", "-3"],
        "invalid value '-3' for '--epochs <N>'",
        "--epochs takes a whole number such as 10",
    ),
    (
        &["--epochs", "ten"],
        "invalid value 'ten' for '--epochs <N>'",
        "--epochs takes a whole number such as 10",
    ),
    (
        &["--hidden", "0"],
        "invalid --hidden 0: every hidden layer needs",
        "for example --hidden 64,32",
    ),
    (
        &["--hidden", "16,0,8"],
        "invalid --hidden 0: every hidden layer needs",
        "for example --hidden 64,32",
    ),
    (
        &["--hidden", "16,,8"],
        "invalid value '' for '--hidden <SIZES>'",
        "--hidden takes whole numbers separated by commas, such as 128,64",
    ),
    (
        &["--hidden", "99999999999"],
        "invalid --hidden 99999999999: a hidden layer may have at most 65536 units",
        "for example --hidden 256,128",
    ),
    (
        &["--hidden", "65536,65536"],
        "invalid --hidden 65536,65536: with 21 inputs and 2 outputs the network would have more \
         than 134217728 parameters",
        "use smaller hidden layers, or leave out columns with many categories (--ignore)",
    ),
    (
        &["--val-split", "1"],
        "invalid --val-split 1: must be at least 0 and below 1",
        "for example --val-split 0.2, or 0 to train on every row",
    ),
    (
        &["--val-split", "1.5"],
        "invalid --val-split 1.5: must be at least 0",
        "for example --val-split 0.2",
    ),
    (
        &["--val-split", "-0.2"],
        "invalid --val-split -0.2: must be at least 0",
        "for example --val-split 0.2",
    ),
    (
        &["--batch-size", "0"],
        "invalid --batch-size 0: a batch needs at least one row",
        "for example --batch-size 32",
    ),
    (
        &["--optimizer", "momentum", "--momentum", "1.5"],
        "invalid --momentum 1.5: must be at least 0 and below 1",
        "for example --momentum 0.9",
    ),
    (
        &["--label-smoothing", "1"],
        "invalid --label-smoothing 1: must be at least 0",
        "for example --label-smoothing 0.1, or 0 to turn it off",
    ),
    (
        &["--weight-decay", "-1"],
        "invalid --weight-decay -1: must be zero or",
        "for example --weight-decay 0.0001",
    ),
    (
        &["--threads", "0"],
        "invalid --threads 0: use at least 1",
        "for example --threads 4",
    ),
    (
        &["--optimizer", "rmsprop"],
        "invalid value 'rmsprop' for '--optimizer",
        "possible values: adam, sgd, momentum",
    ),
    (
        &["--target", "price"],
        "fixture.csv, line 1: there is no column 'price' to use as the target",
        "name one of these with --target: x, age, plan, churned",
    ),
    (
        &["--task", "regression"],
        "fixture.csv, line 2, column 'churned': regression needs a numeric target, but 'no' is \
         text",
        "--task classification",
    ),
    (
        &["--categorical", "zip"],
        "invalid --categorical 'zip': fixture.csv has no column of that name",
        "the columns are: x, age, plan, churned",
    ),
    (
        &["--ignore", "churned"],
        "invalid --ignore 'churned': this is the target column; it cannot be left out",
        "name the column to predict with --target",
    ),
    (
        &["--model", "fixture.csv"],
        "invalid --model fixture.csv: this is the training data file",
        "choose another path for the model",
    ),
    (
        &["--model", "curve.png", "--plot", "curve.png"],
        "invalid --plot curve.png: the loss-curve picture would replace the data or the model",
        "give --model a .json name, or choose another --plot path",
    ),
    (
        &["--optimizer", "sgd", "--lr", "1e6"],
        "training diverged: the loss or a weight became infinite or NaN in epoch ",
        "lower the learning rate (it is 1000000; the default for sgd is 0.01)",
    ),
    (
        &["--nesterov"],
        "invalid --nesterov: Nesterov momentum applies to the momentum optimizer, not to Adam",
        "use --optimizer momentum, or leave out --nesterov",
    ),
    (
        &["--refit", "--val-split", "0"],
        "invalid --refit: refitting retrains on the validation rows, and there are none",
        "hold out rows with --val-split 0.2, or leave out --refit",
    ),
    (
        &["--ignore", "x,age,plan"],
        "invalid --ignore x,age,plan: this leaves no feature column, only the target",
        "leave out fewer columns",
    ),
    (
        &["--ignore", "x,,age"],
        "invalid --ignore 'x,,age': one of the column names is empty",
        "quoting a name that holds a comma",
    ),
];

#[test]
fn bad_flag_values_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    for (flags, head, hint) in FLAGS {
        // `--model` given twice would be a clap error; the case's own wins when present.
        let mut args = vec!["train", "fixture.csv", "-q"];
        if !flags.contains(&"--model") {
            args.extend(["--model", model.to_str().unwrap()]);
        }
        args.extend_from_slice(flags);
        refused(&args, head, hint);
        assert!(!model.exists(), "{flags:?}: no model from a refused run");
    }
    assert!(!corpus().join("curve.png").exists());
}

/// Files for a model trained on `fixture.csv`: file, the message's start, a hint fragment.
/// Files named `eval_*` go to `mlp eval`, the others to `mlp predict`.
const PREDICT: &[(&str, &str, &str)] = &[
    (
        "empty.csv",
        "predict/empty.csv: the file is empty",
        "needs a header line",
    ),
    (
        "header_only.csv",
        "predict/header_only.csv: the file has a header but no data rows",
        "add data rows",
    ),
    (
        "missing_feature_column.csv",
        "predict/missing_feature_column.csv, line 1: the feature column 'age' is not in the \
         header",
        "the file's columns are: x, plan",
    ),
    (
        "missing_all_features.csv",
        "predict/missing_all_features.csv, line 1: the feature columns 'x', 'age', 'plan' are \
         not in the header",
        "the file's columns are: name, score",
    ),
    (
        "unseen_category.csv",
        "predict/unseen_category.csv, line 3, column 'plan': category 'platinum' was not seen \
         in training",
        "the model knows: basic, plus, pro; to predict anyway, with no category's input on, \
         use --unknown-category ignore",
    ),
    (
        "missing_cell.csv",
        "predict/missing_cell.csv, line 3, column 'age': this cell is missing, and the model \
         has no value to fill it with (it was not trained to impute missing cells)",
        "retrain the model with --missing impute",
    ),
    (
        "missing_category.csv",
        "predict/missing_category.csv, line 3, column 'plan': this cell is missing, and the \
         model has no value to fill it with",
        "retrain the model with --missing impute",
    ),
    (
        "text_in_numeric_column.csv",
        "predict/text_in_numeric_column.csv, line 2, column 'age': 'old' is not a number, but \
         the model was trained on numbers here",
        "the same kind of file",
    ),
    (
        "one_text_cell_in_numeric_column.csv",
        "predict/one_text_cell_in_numeric_column.csv, line 4, column 'age': 'n/a?' is not a \
         number",
        "the model needs a number here",
    ),
    (
        "value_far_outside_training.csv",
        "predict/value_far_outside_training.csv, line 3, column 'x': 3.0000e38 is too far \
         outside the values the model was trained on",
        "check the value and its units",
    ),
    (
        "duplicate_columns.csv",
        "predict/duplicate_columns.csv, line 1, column 'age': columns 2 and 4 are both named \
         'age'",
        "rename one of them",
    ),
    (
        "ragged_row.csv",
        "predict/ragged_row.csv, line 3: this row has 2 fields but the header has 3 columns",
        "missing or extra comma",
    ),
    (
        "eval_unknown_class.csv",
        "predict/eval_unknown_class.csv, line 3, column 'churned': 'maybe' is not one of the \
         model's classes",
        "the model's classes are: no, yes",
    ),
    (
        "eval_missing_target.csv",
        "predict/eval_missing_target.csv: every row (2) has its target missing, so there is \
         nothing to compare with",
        "give it rows whose target is filled in",
    ),
    (
        "eval_without_target.csv",
        "predict/eval_without_target.csv, line 1: the target column 'churned' is not in the \
         header",
        "use `mlp predict`",
    ),
];

/// Trains the model the `predict/` cases run against (without fill values, so that it
/// refuses missing cells).
fn fixture_model(dir: &Path) -> PathBuf {
    let model = dir.join("fixture.json");
    let m = model.to_str().unwrap();
    let out = mlp(&[
        "train",
        "fixture.csv",
        "--hidden",
        "4",
        "--epochs",
        "20",
        "--seed",
        "1",
        "--missing",
        "error",
        "-q",
        "--model",
        m,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    model
}

#[test]
fn bad_files_at_predict_and_eval_time_are_refused_with_their_location() {
    same_files("predict", PREDICT.iter().map(|c| c.0));
    let dir = tempfile::tempdir().unwrap();
    let model = fixture_model(dir.path());
    let model = model.to_str().unwrap();
    let output = dir.path().join("predictions.csv");
    std::fs::write(&output, "earlier predictions\n").unwrap();
    for (file, head, hint) in PREDICT {
        let path = format!("predict/{file}");
        if file.starts_with("eval_") {
            refused(&["eval", model, &path], head, hint);
        } else {
            let out = output.to_str().unwrap();
            let mut args = vec!["predict", model, &path, "--output", out];
            // Unseen categories are scored by default; refused on request.
            if file.starts_with("unseen_") {
                args.extend(["--unknown-category", "error"]);
            }
            refused(&args, head, hint);
            assert_eq!(
                std::fs::read_to_string(&output).unwrap(),
                "earlier predictions\n",
                "{file}: a refused run leaves the output file alone"
            );
        }
    }
    // The control: the fixture itself predicts and evaluates.
    assert!(mlp(&["predict", model, "fixture.csv"]).status.success());
    assert!(mlp(&["eval", model, "fixture.csv"]).status.success());
}

/// Bad model files: file, the message's start (after the path and `: `), a hint fragment.
const MODELS: &[(&str, &str, &str)] = &[
    (
        "empty.json",
        "the file is empty",
        "retrain with `mlp train`",
    ),
    (
        "truncated.json",
        "the file ends early (truncated?): EOF while parsing",
        "retrain",
    ),
    (
        "truncated_in_number.json",
        "the file ends early (truncated?): invalid number",
        "retrain",
    ),
    (
        "not_json.json",
        "not a model file (not valid JSON: expected ident at line 1 column 2)",
        "retrain",
    ),
    (
        "binary.json",
        "not a model file (not valid JSON: expected value at line 1 column 1)",
        "retrain",
    ),
    (
        "csv_data.json",
        "not a model file: it looks like CSV data",
        "the model comes first: `mlp predict MODEL DATA.csv`",
    ),
    (
        "json_array.json",
        "not an mlp model file (it is JSON, but not an object with \"format\": \"mlp-model\")",
        "retrain",
    ),
    (
        "other_json_object.json",
        "not an mlp model file (its \"format\" is missing, expected \"mlp-model\")",
        "retrain",
    ),
    (
        "wrong_format.json",
        "not an mlp model file (its \"format\" is \"keras\", expected \"mlp-model\")",
        "retrain",
    ),
    (
        "format_not_a_string.json",
        "not an mlp model file (its \"format\" is 7, expected \"mlp-model\")",
        "retrain",
    ),
    (
        "deeply_nested.json",
        "not a model file (not valid JSON: recursion limit exceeded",
        "retrain",
    ),
    (
        "version_2.json",
        "model format version 2 is not supported (this mlp reads version 1)",
        "use the mlp release that wrote the file",
    ),
    (
        "version_missing.json",
        "the \"version\" field is missing (this mlp reads version 1)",
        "retrain",
    ),
    (
        "version_as_text.json",
        "the \"version\" field is \"1\", not a number (this mlp reads version 1)",
        "retrain",
    ),
    (
        "version_fraction.json",
        "the \"version\" field is 1.5, not a version number (written without a decimal \
         point) (this mlp reads version 1)",
        "retrain",
    ),
    (
        "version_with_decimal_point.json",
        "the \"version\" field is 1.0, not a version number (written without a decimal \
         point) (this mlp reads version 1)",
        "retrain",
    ),
    (
        "missing_layers_field.json",
        "the model file is damaged: missing field `layers`",
        "retrain",
    ),
    (
        "unknown_field.json",
        "the model file is damaged: unknown field `comment`",
        "retrain",
    ),
    (
        "unknown_layer_type.json",
        "the model file is damaged: unknown variant `batch_norm`",
        "retrain",
    ),
    (
        "negative_size.json",
        "the model file is damaged: invalid value: integer `-5`, expected usize",
        "retrain",
    ),
    (
        "null_weight.json",
        "the model file is damaged: invalid type: null, expected f32",
        "retrain",
    ),
    (
        "weight_as_text.json",
        "the model file is damaged: invalid type: string \"0.5\", expected f32",
        "retrain",
    ),
    (
        "nan_weight.json",
        "not a model file (not valid JSON: expected value at line 46",
        "retrain",
    ),
    (
        "mean_out_of_range.json",
        "the model file is damaged: number out of range",
        "retrain",
    ),
    ("no_layers.json", "the network has no layers", "retrain"),
    (
        "only_activations.json",
        "the network has no linear layer",
        "retrain",
    ),
    (
        "last_layer_not_linear.json",
        "the last layer must be linear",
        "retrain",
    ),
    (
        "weight_count_mismatch.json",
        "layer 0 declares 5 × 2 weights but holds 9",
        "retrain",
    ),
    (
        "bias_count_mismatch.json",
        "layer 0 declares 2 outputs but holds 3 biases",
        "retrain",
    ),
    (
        "layers_do_not_chain.json",
        "layer 2 takes 3 inputs but the layer before gives 2",
        "retrain",
    ),
    (
        "huge_declared_dimensions.json",
        "layer 0 declares 4611686018427387904 × 4611686018427387904 weights but holds 10",
        "retrain",
    ),
    (
        "zero_size_layer.json",
        "layer 0 has a zero size (0 → 2)",
        "retrain",
    ),
    (
        "weight_overflows_f32.json",
        "layer 0 holds a non-finite number (value 3)",
        "retrain",
    ),
    (
        "features_do_not_fit_network.json",
        "the features encode to 4 inputs but the first layer takes 5",
        "retrain",
    ),
    (
        "labels_do_not_fit_network.json",
        "the target needs 3 outputs but the last layer gives 2",
        "retrain",
    ),
    (
        "task_disagrees_with_target.json",
        "the task is regression but the target encoding is for classification",
        "retrain",
    ),
    (
        "zero_deviation.json",
        "feature 'age' has an invalid mean or deviation",
        "retrain",
    ),
    (
        "no_categories.json",
        "feature 'plan' has no categories",
        "retrain",
    ),
    (
        "duplicate_categories.json",
        "feature 'plan' lists category 'basic' twice",
        "retrain",
    ),
    (
        "duplicate_features.json",
        "feature 'x' appears twice",
        "retrain",
    ),
    (
        "duplicate_labels.json",
        "the class label 'no' appears twice",
        "retrain",
    ),
    (
        "fill_not_finite.json",
        "feature 'age' fills missing cells with inf, which is not a finite number",
        "retrain",
    ),
    (
        "fill_too_far_to_standardise.json",
        "feature 'x' fills missing cells with 3e38, too far from its mean and deviation to \
         standardise",
        "retrain",
    ),
    (
        "fill_unknown_category.json",
        "feature 'plan' fills missing cells with 'gold', which is not one of its categories",
        "retrain",
    ),
    (
        "fill_as_text.json",
        "the model file is damaged: invalid type: string \"41\", expected f32",
        "retrain",
    ),
    (
        "feature_named_like_target.json",
        "'churned' is both a feature and the target",
        "retrain",
    ),
    // Unknown keys are refused at every level, not only at the top: a misspelt `fill`
    // would otherwise be dropped without a word.
    (
        "fill_key_misspelt.json",
        "the model file is damaged: unknown field `Fill`",
        "retrain",
    ),
    (
        "config_unknown_key.json",
        "the model file is damaged: unknown field `learning_rat`",
        "retrain",
    ),
    (
        "target_unknown_key.json",
        "the model file is damaged: unknown field `label_order`",
        "retrain",
    ),
    (
        "history_unknown_key.json",
        "the model file is damaged: unknown field `lr`",
        "retrain",
    ),
    (
        "metrics_unknown_key.json",
        "the model file is damaged: unknown field `f1`",
        "retrain",
    ),
    (
        "health_unknown_key.json",
        "the model file is damaged: unknown field `bias_norm`",
        "retrain",
    ),
    (
        "health_curves_differ.json",
        "`health.linear (layer 0)` has curves of different lengths",
        "retrain",
    ),
    (
        "ensemble_without_folds.json",
        "the file holds 2 networks but `training.config.folds` is 0",
        "retrain",
    ),
    (
        "more_networks_than_folds.json",
        "the file holds 3 networks but `training.config.folds` is 2",
        "retrain",
    ),
    (
        "history_lengths_differ.json",
        "`training.history` has curves of different lengths (3 `train_loss`, 2 `val_loss`, 3 `val_metric`)",
        "retrain",
    ),
    (
        "history_not_finite.json",
        "`training.history.train_loss` holds a number out of range at epoch 2",
        "retrain",
    ),
    (
        "empty_class_label.json",
        "a class label in `encoding.target.labels` is empty",
        "retrain",
    ),
    (
        "temperature_not_positive.json",
        "`calibration.temperature` is -0.5, not a positive finite number",
        "retrain",
    ),
    (
        "residuals_on_a_classifier.json",
        "a classification model has no `residuals` (they are for regression)",
        "retrain",
    ),
];

#[test]
fn bad_model_files_are_refused_by_predict_and_eval() {
    same_files("models", MODELS.iter().map(|c| c.0).chain(["valid.json"]));
    for (file, message, hint) in MODELS {
        let path = format!("models/{file}");
        let head = format!("{path}: {message}");
        refused(&["eval", &path, "fixture.csv"], &head, hint);
        refused(&["predict", &path, "fixture.csv"], &head, hint);
    }
    // The control the damaged files were made from loads and predicts.
    let out = mlp(&["eval", "models/valid.json", "fixture.csv", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Model files written before `scaling` moved out of the training settings have it in
/// `training.config`: that one legacy key is read and ignored, not refused.
#[test]
fn model_files_with_the_legacy_scaling_setting_still_load() {
    let valid = std::fs::read_to_string(corpus().join("models/valid.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&valid).unwrap();
    json["training"]["config"]["scaling"] = "standard".into();
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.json");
    std::fs::write(&legacy, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let out = mlp(&["eval", legacy.to_str().unwrap(), "fixture.csv", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let control = mlp(&["eval", "models/valid.json", "fixture.csv", "--json"]);
    assert_eq!(text(&out.stdout), text(&control.stdout));
}

/// Awkward files that must train: file, extra flags, the feature names the model must have,
/// and a fragment of the progress output.
const ACCEPT: &[(&str, &[&str], &[&str], &str)] = &[
    ("utf8_bom.csv", &[], &["x", "age", "plan"], "30 rows\n"),
    (
        "ignored_column_with_comma.csv",
        &[
            "--ignore",
            "\"id, internal\",note",
            "--categorical",
            "age",
            "--categorical",
            "x",
        ],
        &["x", "age", "plan"],
        "(0 numeric, 3 categorical)",
    ),
    (
        "crlf_line_ends.csv",
        &[],
        &["x", "age", "plan"],
        "30 rows\n",
    ),
    ("cr_line_ends.csv", &[], &["x", "age", "plan"], "30 rows\n"),
    (
        "no_final_newline.csv",
        &[],
        &["x", "age", "plan"],
        "30 rows\n",
    ),
    (
        "quoted_numbers.csv",
        &[],
        &["x", "age", "plan"],
        "(2 numeric, 1 categorical)",
    ),
    (
        "quoted_name_with_comma.csv",
        &[],
        &["x", "age, years", "plan"],
        "30 rows\n",
    ),
    (
        "spaces_around_values.csv",
        &[],
        &["x", "age", "plan"],
        "(2 numeric, 1 categorical)",
    ),
    (
        "blank_and_empty_rows.csv",
        &[],
        &["x", "age", "plan"],
        "30 rows\n",
    ),
    (
        "semicolons.csv",
        &[],
        &["x", "age", "plan"],
        "30 rows, ';'-separated",
    ),
    (
        "tabs.tsv",
        &[],
        &["x", "age", "plan"],
        "30 rows, tab-separated",
    ),
    (
        "pipes.csv",
        &[],
        &["x", "age", "plan"],
        "30 rows, '|'-separated",
    ),
    (
        "constant_column.csv",
        &[],
        &["x", "age", "country", "plan"],
        "30 rows\n",
    ),
    (
        "constant_text_column.csv",
        &[],
        &["x", "age", "country", "plan"],
        "(2 numeric, 2 categorical)",
    ),
    (
        "values_around_1e30.csv",
        &[],
        &["x", "mass", "plan"],
        "30 rows\n",
    ),
    (
        "regression_target_around_1e30.csv",
        &[],
        &["x", "age"],
        "task: regression of 'energy'",
    ),
    ("tiny_values.csv", &[], &["x", "age"], "30 rows\n"),
    (
        "exponent_and_signs.csv",
        &[],
        &["x", "age", "plan"],
        "(2 numeric, 1 categorical)",
    ),
    (
        "missing_values_imputed.csv",
        &[],
        &["x", "age", "plan"],
        "33 rows (dropped 1 without a target value)\nmissing: filled 3 cells: x: 1 with the \
         median 0.277, age: 1 with the median 43, plan: 1 with the most frequent 'plus'\n",
    ),
    (
        "missing_values_dropped.csv",
        &["--missing", "drop"],
        &["x", "age", "plan"],
        "30 rows (dropped 3 with missing values)",
    ),
    (
        "unicode_names.csv",
        &[],
        &["größe", "âge", "名前"],
        "30 rows\n",
    ),
    (
        "integer_labels.csv",
        &[],
        &["x", "age", "plan"],
        "classification of 'label' into 2 classes: 0, 1",
    ),
];

/// Trains on `data` (relative to the corpus, or absolute), checks the model file is finite
/// and loads, and returns the parsed model.
fn accepted(data: &str, flags: &[&str], dir: &Path, progress: &str) -> serde_json::Value {
    let model = dir.join("m.json");
    let m = model.to_str().unwrap();
    let mut args = vec![
        "train", data, "--hidden", "4", "--epochs", "3", "--model", m,
    ];
    args.extend_from_slice(flags);
    let out = mlp(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{data}:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(progress),
        "{data}: no `{progress}` in\n{stdout}"
    );
    let json = std::fs::read_to_string(&model).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    // Every number in the file is finite (JSON cannot hold anything else), and it loads
    // and predicts (on the rows it trained on, when none had to be dropped).
    if flags.contains(&"--missing") {
        return value;
    }
    let out = mlp(&["predict", m, data]);
    assert!(out.status.success(), "{data}: {}", text(&out.stderr));
    let predictions = text(&out.stdout);
    assert!(
        predictions
            .lines()
            .skip(1)
            .all(|l| !l.is_empty() && !l.contains("NaN") && !l.contains("inf")),
        "{data}: {predictions}"
    );
    value
}

#[test]
fn awkward_but_valid_files_are_accepted() {
    same_files("accept", ACCEPT.iter().map(|c| c.0));
    let dir = tempfile::tempdir().unwrap();
    for (file, flags, features, progress) in ACCEPT {
        let path = format!("accept/{file}");
        let model = accepted(&path, flags, dir.path(), progress);
        let names: Vec<&str> = model["encoding"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(&names, features, "{file}");
        for f in model["encoding"]["features"].as_array().unwrap() {
            if f["kind"] == "numeric" {
                let (mean, std) = (f["mean"].as_f64().unwrap(), f["std"].as_f64().unwrap());
                assert!(
                    mean.is_finite() && std.is_finite() && std > 0.0,
                    "{file}: {f}"
                );
            }
        }
    }
}

#[test]
fn an_identifier_like_column_is_kept_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let model = accepted(
        "train/identifier_column.csv",
        &["--categorical", "customer"],
        dir.path(),
        "categorical",
    );
    let customer = &model["encoding"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "customer")
        .expect("the column is a feature")["categories"];
    assert_eq!(customer.as_array().unwrap().len(), 40);
}

#[test]
fn huge_values_standardise_to_finite_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let model = accepted("accept/values_around_1e30.csv", &[], dir.path(), "30 rows");
    let mass = &model["encoding"]["features"][1];
    let std = mass["std"].as_f64().unwrap();
    assert!(std > 1e36 && std < 1e38, "{mass}");
    let model = accepted(
        "accept/regression_target_around_1e30.csv",
        &[],
        dir.path(),
        "regression",
    );
    let target = &model["encoding"]["target"];
    let std = target["std"].as_f64().unwrap();
    assert!(std > 1e29 && std < 1e31, "{target}");
    let m = dir.path().join("m.json");
    let out = mlp(&[
        "eval",
        m.to_str().unwrap(),
        "accept/regression_target_around_1e30.csv",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["mse", "rmse", "mae", "r2"] {
        assert!(report[key].as_f64().is_some_and(f64::is_finite), "{report}");
    }
}

#[test]
fn rows_with_thousands_of_columns_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let columns = 4000;
    let mut csv: String = (0..columns).map(|i| format!("f{i},")).collect();
    csv.push_str("label\n");
    for row in 0..40 {
        for i in 0..columns {
            csv.push_str(&format!("{},", (row * 31 + i * 7) % 97));
        }
        csv.push_str(if row % 2 == 0 { "even\n" } else { "odd\n" });
    }
    let data = dir.path().join("wide.csv");
    std::fs::write(&data, csv).unwrap();
    let model = accepted(
        data.to_str().unwrap(),
        &[],
        dir.path(),
        &format!("features: {columns} columns ({columns} numeric, 0 categorical)"),
    );
    // Each column's value, and its 8 quantile bins (40 rows of 40 distinct values).
    assert_eq!(
        model["layers"][0]["inputs"].as_u64(),
        Some(9 * columns as u64),
        "nine inputs per column"
    );
}
