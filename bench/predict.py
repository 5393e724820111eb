"""Batch prediction end to end, CSV in and CSV out, one thread, three ways in one run:

* `mlp predict model.json data.csv --output out.csv --threads 1` (the whole process);
* pandas `read_csv` + scikit-learn `MLPClassifier.predict` (same weights, same
  standardisation) + `to_csv`;
* pandas `read_csv` + onnxruntime on `mlp export`'s ONNX file + `to_csv`.

    python bench/predict.py [--rows 100000] [--features 50] [--repeat 5] [--no-build]

Two files: the features alone (what a prediction file usually holds) and the same rows
with the label column. The data (100,000 rows × 50 numeric features and a 3-class label,
seeded) and the model
(mlp's default network, 128-64 ReLU, trained on the first 10,000 rows) are made in
target/bench-predict/ on the first run. The Python paths are timed inside the process
(imports and interpreter start excluded); mlp's time includes its process start. Wall
and CPU time are both reported (CPU is steadier on a shared machine). Prints one line per
run and the medians; all three must agree on every label.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "bench-predict"
MLP = ROOT / "target" / "release" / "mlp"


def make_data(rows, features):
    path = WORK / f"predict-{rows}x{features}.csv"
    if path.exists():
        return path
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, features)).astype(np.float32) * 3 + 10
    w = rng.normal(size=(features, 3))
    label = np.array(["alpha", "beta", "gamma"])[np.argmax((x - 10) @ w, axis=1)]
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(features)])
    df["label"] = label
    df.to_csv(path, index=False, float_format="%.4f")
    return path


def sklearn_model(model):
    """scikit-learn's MLPClassifier and the standardisation, with mlp's weights."""
    features = model["encoding"]["features"]
    labels = model["encoding"]["target"]["labels"]
    linear = [layer for layer in model["layers"] if layer["type"] == "linear"]
    hidden = tuple(layer["outputs"] for layer in linear[:-1])
    clf = MLPClassifier(hidden_layer_sizes=hidden, max_iter=1)
    # One tiny fit sets up the classes and the shapes; the weights are then replaced.
    n = len(features)
    xs = np.zeros((len(labels), n))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(xs, np.array(labels))
    assert list(clf.classes_) == labels, (clf.classes_, labels)
    clf.coefs_ = [
        np.array(layer["weight"], dtype=np.float32).reshape(layer["inputs"], layer["outputs"])
        for layer in linear
    ]
    clf.intercepts_ = [np.array(layer["bias"], dtype=np.float32) for layer in linear]
    mean = np.array([f["mean"] for f in features])
    std = np.array([f["std"] for f in features])
    names = [f["name"] for f in features]
    return clf, names, mean, std


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_mlp(model_path, data, out):
    """(wall, CPU) seconds of the whole `mlp predict` process."""
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(
        [MLP, "predict", model_path, data, "--output", out, "--threads", "1"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start, children_cpu() - cpu


def run_sklearn(clf, names, mean, std, data, out):
    start, cpu = time.perf_counter(), time.process_time()
    df = pd.read_csv(data)
    x = ((df[names].to_numpy(np.float64) - mean) / std).astype(np.float32)
    pd.DataFrame({"prediction": clf.predict(x)}).to_csv(out, index=False)
    return time.perf_counter() - start, time.process_time() - cpu


def run_onnx(session, names, data, out):
    start, cpu = time.perf_counter(), time.process_time()
    df = pd.read_csv(data)
    feed = {n: df[[n]].to_numpy(np.float32) for n in names}
    (label,) = session.run(["label"], feed)
    pd.DataFrame({"prediction": label}).to_csv(out, index=False)
    return time.perf_counter() - start, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-build", action="store_true", help="use target/release/mlp as it is")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--quiet", "--release", "--bin", "mlp"], cwd=ROOT, check=True
        )
    data = make_data(args.rows, args.features)
    # The features alone (what a prediction file usually holds), and with the label column.
    features_only = WORK / f"predict-{args.rows}x{args.features}-features.csv"
    if not features_only.exists():
        pd.read_csv(data).drop(columns=["label"]).to_csv(
            features_only, index=False, float_format="%.4f"
        )
    files = {
        f"{args.rows}x{args.features} features only": features_only,
        f"{args.rows}x{args.features} + label column": data,
    }
    model_path = WORK / f"model-{args.features}.json"
    if not model_path.exists():
        train = WORK / f"train-{args.features}.csv"
        pd.read_csv(data, nrows=10_000).to_csv(train, index=False)
        subprocess.run(
            # One network (not the default 3-fold ensemble) on standardised numbers (not
            # the default quantile bins): scikit-learn's MLP takes one, on 50 inputs.
            [MLP, "train", train, "--model", model_path, "--epochs", "20", "--folds", "0",
             "--scaling", "standard", "-q"],
            check=True,
        )
    onnx_path = WORK / f"model-{args.features}.onnx"
    subprocess.run([MLP, "export", model_path, "--output", onnx_path], check=True,
                   stderr=subprocess.DEVNULL)
    model = json.loads(model_path.read_text())
    clf, names, mean, std = sklearn_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    for name, path in files.items():
        bench(name, path, args.repeat, model_path, clf, names, mean, std, session)


def bench(name, data, repeat, model_path, clf, names, mean, std, session):
    outs = {k: WORK / f"out-{k}.csv" for k in ("mlp", "sklearn", "onnxruntime")}
    times = {k: [] for k in outs}
    for i in range(repeat):
        t = {
            "mlp": run_mlp(model_path, data, outs["mlp"]),
            "sklearn": run_sklearn(clf, names, mean, std, data, outs["sklearn"]),
            "onnxruntime": run_onnx(session, names, data, outs["onnxruntime"]),
        }
        for k, v in t.items():
            times[k].append(v)
        print(
            f"{name} run {i + 1} (wall/CPU s): "
            + ", ".join(f"{k} {w:.3f}/{c:.3f}" for k, (w, c) in t.items()),
            flush=True,
        )
    labels = {k: pd.read_csv(p)["prediction"].to_numpy() for k, p in outs.items()}
    for k in ("sklearn", "onnxruntime"):
        agree = (labels[k] == labels["mlp"]).mean()
        assert agree == 1.0, f"{k} agrees with mlp on {agree:.6f} of the labels"
    for i, what in ((0, "wall"), (1, "CPU")):
        med = {k: statistics.median(t[i] for t in v) for k, v in times.items()}
        print(
            f"{name}, 1 thread, median {what} of {repeat}: mlp {med['mlp']:.3f} s, "
            f"pandas+sklearn {med['sklearn']:.3f} s ({med['sklearn'] / med['mlp']:.2f}x), "
            f"pandas+onnxruntime {med['onnxruntime']:.3f} s "
            f"({med['onnxruntime'] / med['mlp']:.2f}x); labels identical",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
