"""Accuracy and training time of `mlp train` (defaults) against scikit-learn's
MLPClassifier (defaults) with a StandardScaler, on the same held-out rows, in one run.

usage: python bench/quality.py [MLP_BINARY]     (needs numpy, pandas, scikit-learn)

* iris: 10 stratified 80/20 splits (seeds 0-9). Each side trains on the 80% only (mlp
  validates each of its 3 networks on its own third of it, as it does by default) and is
  scored on the 20%.
* digits: first 1437 rows train, last 360 test (other writers than the training rows).
Prints one line per dataset and split kind, and the mean over splits.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
MLP = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "mlp")


def run_mlp(train_csv, test_csv, target, workdir):
    model = os.path.join(workdir, "model.json")
    t0 = time.perf_counter()
    extra = os.environ.get("MLP_FLAGS", "").split()
    subprocess.run([MLP, "train", train_csv, "--target", target, "--model", model, "--quiet",
                    "--threads", "1", *extra], check=True)
    seconds = time.perf_counter() - t0
    out = subprocess.run([MLP, "eval", model, test_csv, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["accuracy"], seconds


def run_sklearn(train, test, target):
    x, y = train.drop(columns=[target]).values, train[target].values
    t0 = time.perf_counter()
    model = make_pipeline(StandardScaler(), MLPClassifier(random_state=0)).fit(x, y)
    seconds = time.perf_counter() - t0
    return model.score(test.drop(columns=[target]).values, test[target].values), seconds


def compare(name, splits, target):
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for label, train, test in splits:
            tr, te = os.path.join(d, "train.csv"), os.path.join(d, "test.csv")
            train.to_csv(tr, index=False)
            test.to_csv(te, index=False)
            ours, ours_s = run_mlp(tr, te, target, d)
            theirs, theirs_s = run_sklearn(train, test, target)
            rows.append((ours, ours_s, theirs, theirs_s))
            print(f"{name} {label}: mlp {ours:.4f} in {ours_s:.3f} s | "
                  f"sklearn {theirs:.4f} in {theirs_s:.3f} s")
    a = np.array(rows)
    print(f"{name} mean over {len(rows)}: mlp {a[:, 0].mean():.4f} in {a[:, 1].mean():.3f} s | "
          f"sklearn {a[:, 2].mean():.4f} in {a[:, 3].mean():.3f} s | "
          f"time ratio sklearn/mlp {a[:, 3].sum() / a[:, 1].sum():.2f}")


def main():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    iris = pd.read_csv(ROOT / "data" / "iris.csv")
    splits = []
    for seed in range(10):
        train, test = train_test_split(iris, test_size=0.2, stratify=iris["species"],
                                       random_state=seed)
        splits.append((f"split {seed}", train, test))
    compare("iris", splits, "species")
    digits = pd.read_csv(ROOT / "data" / "digits.csv")
    compare("digits", [("first 1437 / last 360", digits.iloc[:1437], digits.iloc[1437:])],
            "label")


if __name__ == "__main__":
    main()
