"""Coverage of mlp's conformal prediction intervals on the suite's regression sets.

  python bench/quality/intervals.py run [--mlp PATH] [--seeds 0,1,2] [NAME...]
      trains mlp (defaults, --threads 1, --ignore for identifiers) on each regression set's
      training split and runs `mlp eval --interval L --json` on its test split for
      L = 0.8, 0.9, 0.95; caches the results in bench/quality/intervals.json
  python bench/quality/intervals.py resplit [--mlp PATH] [--splits 5] [NAME...]
      pools each regression set's training and test rows, draws random 75/25 splits
      (seeds 1..N), trains mlp with defaults on each and measures coverage at 0.9 of both
      interval methods of the same model: CV+ (`mlp eval --interval 0.9`) and split-conformal
      (`mlp predict` ± the conformal quantile of the model's pooled residuals); caches the
      results in bench/quality/intervals_resplit.json
  python bench/quality/intervals.py table
      writes bench/quality/intervals.md from the cache (`suite.py table` appends it to
      QUALITY.md) and the section in QUALITY.md itself
"""

import argparse
import json
import math
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = HERE / "intervals.json"
RESPLIT = HERE / "intervals_resplit.json"
SECTION = HERE / "intervals.md"
LEVELS = ("0.8", "0.9", "0.95")


def train(mlp, ds, data, work, seed):
    """`mlp train` with default flags (and --ignore for identifiers; missing cells are
    imputed by default) on `data`, writing `work`/model.json."""
    cmd = [mlp, "train", str(data), "--target", ds["target"], "--model", str(work / "model.json"),
           "--plot", str(work / "m.png"), "--quiet", "--threads", "1", "--seed", seed]
    if ds["ignore"]:
        cmd += ["--ignore", ",".join(ds["ignore"])]
    subprocess.run(cmd, check=True, capture_output=True)


def run(args):
    mlp = args.mlp or str(ROOT / "target" / "release" / "mlp")
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    sets = [d for d in json.loads((HERE / "manifest.json").read_text()) if d["task"] == "regression"]
    for ds in sets:
        if args.names and ds["name"] not in args.names:
            continue
        for seed in args.seeds.split(","):
            with tempfile.TemporaryDirectory() as work:
                model = str(Path(work) / "model.json")
                train(mlp, ds, HERE / ds["train"], Path(work), seed)
                res = {}
                for level in LEVELS:
                    out = subprocess.run([mlp, "eval", model, str(HERE / ds["test"]), "--json",
                                          "--interval", level], check=True, capture_output=True, text=True)
                    j = json.loads(out.stdout)
                    res[level] = dict(coverage=j["interval"]["coverage"], width=j["interval"]["mean_width"],
                                      rows=j["rows"], rmse=j["rmse"])
            cache.setdefault(ds["name"], {})[seed] = res
            print(ds["name"], seed, {l: round(r["coverage"], 3) for l, r in res.items()}, flush=True)
            CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def split_half_width(residuals, level):
    """The split-conformal half-width of a model file's pooled residuals, as
    `Residuals::half_width` computes it (the list may be compressed)."""
    rows, kept = residuals["rows"], len(residuals["absolute"])
    k = math.ceil((rows + 1) * level - 1e-9)
    return residuals["absolute"][(k - 1) * kept // rows]


def resplit(args):
    import numpy as np
    import pandas as pd
    mlp = args.mlp or str(ROOT / "target" / "release" / "mlp")
    cache = json.loads(RESPLIT.read_text()) if RESPLIT.exists() else {}
    sets = [d for d in json.loads((HERE / "manifest.json").read_text()) if d["task"] == "regression"]
    for ds in sets:
        if args.names and ds["name"] not in args.names:
            continue
        df = pd.concat([pd.read_csv(HERE / ds["train"]), pd.read_csv(HERE / ds["test"])], ignore_index=True)
        runs = []
        for seed in range(1, args.splits + 1):
            order = np.random.default_rng(seed).permutation(len(df))
            cut = int(len(df) * 0.75)
            with tempfile.TemporaryDirectory() as work:
                w = Path(work)
                df.iloc[order[:cut]].to_csv(w / "train.csv", index=False)
                test = df.iloc[order[cut:]]
                test.to_csv(w / "test.csv", index=False)
                train(mlp, ds, w / "train.csv", w, "0")
                scored = [str(w / "model.json"), str(w / "test.csv"), "--unknown-category", "ignore"]
                out = subprocess.run([mlp, "eval", *scored, "--json", "--interval", "0.9"],
                                     check=True, capture_output=True, text=True)
                cv_plus = json.loads(out.stdout)["interval"]["coverage"]
                subprocess.run([mlp, "predict", *scored, "--output", str(w / "p.csv")],
                               check=True, capture_output=True)
                predicted = pd.read_csv(w / "p.csv")["prediction"].to_numpy()
                truth = test[ds["target"]].to_numpy(dtype=float)
                half = split_half_width(json.loads((w / "model.json").read_text())["residuals"], 0.9)
                known = ~np.isnan(truth)
                split = float(np.mean(np.abs(truth[known] - predicted[known]) <= half))
            runs.append({"cv_plus": cv_plus, "split": split, "rows": int(known.sum())})
        cache[ds["name"]] = runs
        print(ds["name"], [(round(r["cv_plus"], 3), round(r["split"], 3)) for r in runs], flush=True)
        RESPLIT.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def resplit_lines():
    if not RESPLIT.exists():
        return []
    cache = json.loads(RESPLIT.read_text())
    lines = ["", "**Over random splits.** One fixed test split of a small set moves the coverage by "
             "a few points (boston's 127 test rows: a standard error of 0.027 at 0.9). `intervals.py "
             "resplit` pools each set's rows and draws " + str(len(next(iter(cache.values()))))
             + " random 75/25 splits (seeds 1 up), trains mlp with its defaults on each, and measures "
             "both interval methods of the same model at 0.9: CV+ (the default) and split-conformal "
             "(`mlp train --intervals split`).", "",
             "| data set | CV+ mean | CV+ per split | split-conformal mean | split-conformal per split |",
             "|---|---:|---|---:|---|"]
    means = {"cv_plus": [], "split": []}
    for name, runs in sorted(cache.items()):
        cells = []
        for m in ("cv_plus", "split"):
            v = [r[m] for r in runs]
            means[m].append(sum(v) / len(v))
            cells += [f"{sum(v) / len(v):.3f}", ", ".join(f"{x:.3f}" for x in v)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    within = {m: sum(0.87 <= c <= 0.93 for c in v) for m, v in means.items()}
    lines.append(f"| **mean of {len(cache)}** | {sum(means['cv_plus']) / len(cache):.3f} | | "
                 f"{sum(means['split']) / len(cache):.3f} | |")
    lines += ["", f"Averaged over the splits, CV+ lies within 0.87–0.93 on {within['cv_plus']} of "
              f"{len(cache)} sets and split-conformal on {within['split']}. Split-conformal lies "
              "closer to 0.9 on average, but with no guarantee: the ensemble it is centred on is not "
              "the model the residuals came from. CV+ is never below 0.89 on average, and it keeps the default for its "
              "guarantee. Both go over on weather, where the three networks disagree most."]
    return lines


def fmt(w):
    return f"{w:.3g}" if abs(w) < 1000 else f"{w:,.0f}"


def table(_args):
    cache = json.loads(CACHE.read_text())
    lines = ["## Prediction intervals", "",
             "Written by `python bench/quality/intervals.py table` from the runs of "
             "`bench/quality/intervals.py run`: mlp with default flags (3-fold cross-fitting; the "
             "interval is CV+ over the three networks and their out-of-fold absolute residuals) on "
             "each regression set's training split, and `mlp eval --interval L` "
             "on its test split. Coverage is the share of test rows inside their interval, width the "
             "interval's width in the target's units; both the mean of seeds "
             + ", ".join(sorted({s for r in cache.values() for s in r})) + ".", "",
             "| data set | test rows | coverage 0.8 | width 0.8 | coverage 0.9 | width 0.9 | "
             "coverage 0.95 | width 0.95 | test RMSE |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    means = {l: [] for l in LEVELS}
    for name, seeds in cache.items():
        runs = list(seeds.values())
        cells = []
        for l in LEVELS:
            c = sum(r[l]["coverage"] for r in runs) / len(runs)
            w = sum(r[l]["width"] for r in runs) / len(runs)
            means[l].append(c)
            cells += [f"{c:.3f}", fmt(w)]
        rmse = sum(r["0.9"]["rmse"] for r in runs) / len(runs)
        lines.append(f"| {name} | {runs[0]['0.9']['rows']} | " + " | ".join(cells) + f" | {fmt(rmse)} |")
    lines.append(f"| **mean of {len(cache)}** | | "
                 + " | | ".join(f"{sum(v) / len(v):.3f}" for v in means.values()) + " | | |")
    lines += ["", "The interval is CV+ (Barber et al. 2021): the ends for a test row come from every "
              "training row's out-of-fold residual, subtracted from and added to the prediction at the "
              "test row of the network that did not train on that training row, so rows where the "
              "three networks disagree get wider (and possibly lopsided) intervals. Before it, mlp "
              "used the split-conformal interval, the ensemble's prediction ± the conformal quantile "
              "of all out-of-fold residuals; on the same models (same seeds, same test RMSE) that gave "
              "a mean of 0.803, 0.899 and 0.946 at 0.8, 0.9 and 0.95, with 10 of the 11 sets within "
              "0.87–0.93 at 0.9 and boston short at 0.845. CV+ lifts boston to 0.882 and every level's "
              "mean (0.824, 0.910, 0.952), but over-covers where the networks disagree most: at 0.9 "
              "weather (0.927 before) and college (0.926 before) now lie above 0.93, at 0.948 and "
              "0.933, so 9 of the 11 sets lie within 0.87–0.93. The widths at 0.9 grow by 0–11% "
              "(weather the most). CV+'s guarantee is 1 − 2α (Barber et al.), and it is usually "
              "conservative in practice, as here; nothing in it is tuned to these sets. Boston's fixed "
              "test split is harder than its training rows (test RMSE about 1.3 times the out-of-fold "
              "RMSE); on five fresh random 75/25 splits of its 506 rows (train and test pooled, seed 0; "
              "measured with patience 20 and the split-conformal interval) the coverage at 0.9 was "
              "0.929, 0.906, 0.890, 0.913, 0.890: mean 0.905. Hitters (197 training rows, a skewed "
              "target) covers 0.879 here: with so few rows the out-of-fold residuals run a little "
              "small, each coming from a network trained on two thirds of the rows and early-stopped "
              "on the very rows it is scored on. There is no scale model beyond the networks' "
              "disagreement, and the guarantee is marginal, over rows like the training rows."]
    lines += resplit_lines()
    SECTION.write_text("\n".join(lines) + "\n")
    quality = HERE.parent.parent / "QUALITY.md"
    text = quality.read_text()
    head, _, after = text.partition("\n## Prediction intervals\n")
    # The sections after this one stay as they are.
    rest = after.split("\n## ", 1)
    tail = "\n## " + rest[1] if len(rest) > 1 else ""
    quality.write_text(head.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n" + tail)
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--mlp")
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("names", nargs="*")
    rs = sub.add_parser("resplit")
    rs.add_argument("--mlp")
    rs.add_argument("--splits", type=int, default=5)
    rs.add_argument("names", nargs="*")
    sub.add_parser("table")
    args = p.parse_args()
    {"run": run, "resplit": resplit, "table": table}[args.command](args)


if __name__ == "__main__":
    main()
