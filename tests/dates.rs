//! Date columns, driven through the `mlp` binary: a file with dates and date-times trains
//! with them expanded into numbers, predicts on new dates, and refuses a cell that is not a
//! date with its line and column.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn mlp(dir: &Path, args: &[&str]) -> Output {
    Command::new(MLP)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "mlp {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    assert_eq!(o.status.code(), Some(2), "mlp {args:?}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn train(dir: &Path, extra: &[&str]) -> Value {
    let visits = data("data/visits.csv");
    let mut args = vec![
        "train",
        visits.to_str().unwrap(),
        "-q",
        "--model",
        "m.json",
        "--epochs",
        "30",
        "--seed",
        "3",
        "--scaling",
        "standard",
    ];
    args.extend_from_slice(extra);
    ok(dir, &args);
    serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).unwrap()).unwrap()
}

fn feature<'a>(model: &'a Value, name: &str) -> &'a Value {
    (model["encoding"]["features"].as_array().unwrap().iter())
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no feature {name}"))
}

#[test]
fn a_file_with_dates_trains_with_them_expanded_and_predicts_new_dates() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), &[]);
    let visit = feature(&model, "visit");
    assert_eq!(visit["kind"], "date");
    let parts: Vec<&str> = (visit["parts"].as_array().unwrap().iter())
        .map(|p| p["part"].as_str().unwrap())
        .collect();
    assert_eq!(
        parts,
        [
            "time",
            "year",
            "month",
            "day_of_year",
            "weekday",
            "hour",
            "day_of_year_sin",
            "day_of_year_cos",
            "weekday_sin",
            "weekday_cos",
            "hour_sin",
            "hour_cos"
        ]
    );
    assert_eq!(visit["parts"][2]["scale"]["kind"], "numeric");
    assert_eq!(visit["parts"][2]["scale"]["name"], "visit.month");
    // `opened` holds dates alone: no parts of the day.
    let opened = feature(&model, "opened");
    assert_eq!(opened["parts"].as_array().unwrap().len(), 9);
    // 12 + 9 date inputs, `size`, and `channel`'s 3 categories.
    assert_eq!(model["layers"][0]["inputs"], 12 + 9 + 1 + 3);

    // New rows: dates never seen in training, written every way the reader takes.
    std::fs::write(
        dir.path().join("new.csv"),
        "visit,opened,size,channel\n\
         2026-07-04T12:00:00Z,2019-03-01,120,web\n\
         \" 2026-01-10 03:15 \",2016-11-30,50.5,shop\n\
         2026-08-01T14:30:07.25+02:00,2021-06-15,80,phone\n",
    )
    .unwrap();
    let out = ok(dir.path(), &["predict", "m.json", "new.csv", "--proba"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "prediction,prob_busy,prob_quiet");
    assert_eq!(lines.len(), 4, "{out}");
    for line in &lines[1..] {
        let label = line.split(',').next().unwrap();
        assert!(label == "busy" || label == "quiet", "{line}");
    }
    // Summer afternoon against a winter night: the date is what tells them apart here.
    assert!(lines[1].starts_with("busy"), "{out}");
    assert!(lines[2].starts_with("quiet"), "{out}");
    // eval scores the training file itself.
    let visits = data("data/visits.csv");
    let scores = ok(
        dir.path(),
        &["eval", "m.json", visits.to_str().unwrap(), "--json"],
    );
    let scores: Value = serde_json::from_str(&scores).unwrap();
    assert!(scores["accuracy"].as_f64().unwrap() > 0.75, "{scores}");
}

#[test]
fn a_cell_that_is_not_a_date_is_refused_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path(), &[]);
    std::fs::write(
        dir.path().join("bad.csv"),
        "visit,opened,size,channel\n2026-07-04T12:00Z,2019-03-01,1,web\n2026-07-04,2023-02-29,1,web\n",
    )
    .unwrap();
    let err = refused(dir.path(), &["predict", "m.json", "bad.csv"]);
    assert!(
        err.contains(
            "bad.csv, line 3, column 'opened': '2023-02-29' is not a date, but the model \
             was trained on dates here"
        ),
        "{err}"
    );

    // In training, one bad cell among dates stops the run, naming it.
    let visits = std::fs::read_to_string(data("data/visits.csv")).unwrap();
    let mut lines: Vec<String> = visits.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[5].split(',').map(str::to_string).collect();
    cells[1] = cells[1].replace('-', "/"); // 2016/08/16
    lines[5] = cells.join(",");
    std::fs::write(dir.path().join("typo.csv"), lines.join("\n")).unwrap();
    let err = refused(
        dir.path(),
        &["train", "typo.csv", "-q", "--model", "t.json"],
    );
    assert!(
        err.contains("typo.csv, line 6, column 'opened': '")
            && err.contains("' is not a date, but 299 of the 300 values in this column are"),
        "{err}"
    );
    assert!(err.contains("or use --categorical opened to read"), "{err}");
    assert!(!dir.path().join("t.json").exists());
}

#[test]
fn categorical_keeps_a_date_column_as_categories() {
    let dir = tempfile::tempdir().unwrap();
    let model = train(dir.path(), &["--categorical", "opened"]);
    let opened = feature(&model, "opened");
    assert_eq!(opened["kind"], "categorical");
    assert_eq!(opened["categories"].as_array().unwrap().len(), 290);
    assert_eq!(feature(&model, "visit")["kind"], "date");
}
