"""Coverage of mlp's conformal prediction intervals on the suite's regression sets.

  python bench/quality/intervals.py run [--mlp PATH] [--seeds 0,1,2] [NAME...]
      trains mlp (defaults, --threads 1, --ignore for identifiers) on each regression set's
      training split and runs `mlp eval --interval L --json` on its test split for
      L = 0.8, 0.9, 0.95, for each interval method of the same model (see METHODS); caches
      the results in bench/quality/intervals.json
  python bench/quality/intervals.py resplit [--mlp PATH] [--splits 5] [NAME...]
      pools each regression set's training and test rows, draws random 75/25 splits
      (seeds 1..N), trains mlp with defaults on each and measures the same; caches the
      results in bench/quality/intervals_resplit.json
  python bench/quality/intervals.py table
      writes bench/quality/intervals.md from the cache (`suite.py table` appends it to
      QUALITY.md) and the section in QUALITY.md itself
"""

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = HERE / "intervals.json"
RESPLIT = HERE / "intervals_resplit.json"
SECTION = HERE / "intervals.md"
LEVELS = ("0.8", "0.9", "0.95")
# The interval methods of one trained model, as `mlp train --intervals` makes them: the
# default file, and the same file with what the others leave out taken out (the networks
# and every residual are the same).
METHODS = {
    "ensemble": "CV+ scaled to the ensemble (the default)",
    "cv_plus": "CV+ (`--intervals cv-plus`)",
    "split": "split-conformal (`--intervals split`)",
}


def train(mlp, ds, data, work, seed):
    """`mlp train` with default flags (and --ignore for identifiers; missing cells are
    imputed by default) on `data`, writing `work`/model.json."""
    cmd = [mlp, "train", str(data), "--target", ds["target"], "--model", str(work / "model.json"),
           "--plot", str(work / "m.png"), "--quiet", "--threads", "1", "--seed", seed]
    if ds["ignore"]:
        cmd += ["--ignore", ",".join(ds["ignore"])]
    subprocess.run(cmd, check=True, capture_output=True)


def variants(work):
    """The model file of each method in METHODS, written beside `work`/model.json."""
    model = json.loads((work / "model.json").read_text())
    paths = {"ensemble": work / "model.json"}
    assert model["residuals"].get("ensemble"), "the default is scaled to the ensemble"
    for method, drop in (("cv_plus", ["ensemble"]), ("split", ["ensemble", "folds"])):
        other = json.loads(json.dumps(model))
        for key in drop:
            other["residuals"].pop(key, None)
        other["training"]["config"]["intervals"] = method
        paths[method] = work / f"{method}.json"
        paths[method].write_text(json.dumps(other))
    return paths


def measure(mlp, work, test):
    """Coverage, width, rows and RMSE of every method at every level on `test`."""
    res = {}
    for method, model in variants(work).items():
        for level in LEVELS:
            out = subprocess.run([mlp, "eval", str(model), str(test), "--json", "--interval", level,
                                  "--unknown-category", "ignore"],
                                 check=True, capture_output=True, text=True)
            j = json.loads(out.stdout)
            res.setdefault(method, {})[level] = dict(
                coverage=j["interval"]["coverage"], width=j["interval"]["mean_width"],
                rows=j["rows"], rmse=j["rmse"])
    return res


def regression_sets(names):
    sets = [d for d in json.loads((HERE / "manifest.json").read_text()) if d["task"] == "regression"]
    return [d for d in sets if not names or d["name"] in names]


def run(args):
    mlp = args.mlp or str(ROOT / "target" / "release" / "mlp")
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    for ds in regression_sets(args.names):
        for seed in args.seeds.split(","):
            with tempfile.TemporaryDirectory() as work:
                train(mlp, ds, HERE / ds["train"], Path(work), seed)
                res = measure(mlp, Path(work), HERE / ds["test"])
            cache.setdefault(ds["name"], {})[seed] = res
            print(ds["name"], seed, {m: round(r["0.9"]["coverage"], 3) for m, r in res.items()}, flush=True)
            CACHE.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def resplit(args):
    import numpy as np
    import pandas as pd
    mlp = args.mlp or str(ROOT / "target" / "release" / "mlp")
    cache = json.loads(RESPLIT.read_text()) if RESPLIT.exists() else {}
    for ds in regression_sets(args.names):
        df = pd.concat([pd.read_csv(HERE / ds["train"]), pd.read_csv(HERE / ds["test"])], ignore_index=True)
        runs = []
        for seed in range(1, args.splits + 1):
            order = np.random.default_rng(seed).permutation(len(df))
            cut = int(len(df) * 0.75)
            with tempfile.TemporaryDirectory() as work:
                w = Path(work)
                df.iloc[order[:cut]].to_csv(w / "train.csv", index=False)
                df.iloc[order[cut:]].to_csv(w / "test.csv", index=False)
                train(mlp, ds, w / "train.csv", w, "0")
                runs.append(measure(mlp, w, w / "test.csv"))
        cache[ds["name"]] = runs
        print(ds["name"], [{m: round(r[m]["0.9"]["coverage"], 3) for m in METHODS} for r in runs], flush=True)
        RESPLIT.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")


def per_set(cache, method, level):
    """{set: mean coverage} of `method` at `level` over a cache's runs (seeds or splits)."""
    out = {}
    for name, runs in sorted(cache.items()):
        runs = list(runs.values()) if isinstance(runs, dict) else runs
        out[name] = sum(r[method][level]["coverage"] for r in runs) / len(runs)
    return out


def summary(cache):
    """One row per method: the mean coverage at each level, and the sets at 0.9 within
    0.87–0.93 and outside it."""
    lines = ["| method | mean 0.8 | mean 0.9 | mean 0.95 | sets within 0.87–0.93 at 0.9 | outside |",
             "|---|---:|---:|---:|---:|---|"]
    for method, label in METHODS.items():
        means = [per_set(cache, method, l) for l in LEVELS]
        at = means[1]
        outside = ", ".join(f"{n} {c:.3f}" for n, c in at.items() if not 0.87 <= c <= 0.93) or "none"
        lines.append(f"| {label} | " + " | ".join(f"{sum(m.values()) / len(m):.3f}" for m in means)
                     + f" | {sum(0.87 <= c <= 0.93 for c in at.values())} of {len(at)} | {outside} |")
    return lines


def resplit_lines():
    if not RESPLIT.exists():
        return []
    cache = json.loads(RESPLIT.read_text())
    splits = len(next(iter(cache.values())))
    lines = ["", "**Over random splits.** One fixed test split of a small set moves the coverage by "
             "a few points (boston's 127 test rows: a standard error of 0.027 at 0.9). `intervals.py "
             f"resplit` pools each set's rows and draws {splits} random 75/25 splits (seeds 1 up), "
             "trains mlp with its defaults on each, and measures every interval method of the same "
             "model (the file with what each method leaves out taken out). The default was chosen on "
             "the first five splits (11 of 11 sets within 0.87–0.93 there); splits 6 to 10 were "
             "drawn after, and the residuals made honest about early stopping after that (above); "
             "before, diabetes (442 rows, 111 test rows a split) ran under with every method, at "
             "0.869 with the default.", ""]
    lines += summary(cache)
    lines += ["", "| data set | default 0.8 | default 0.9 | default 0.9 per split | default 0.95 | "
              "CV+ 0.9 | split-conformal 0.9 |", "|---|---:|---:|---|---:|---:|---:|"]
    for name, runs in sorted(cache.items()):
        mean = lambda m, l: sum(r[m][l]["coverage"] for r in runs) / len(runs)
        each = ", ".join(f"{r['ensemble']['0.9']['coverage']:.3f}" for r in runs)
        lines.append(f"| {name} | {mean('ensemble', '0.8'):.3f} | {mean('ensemble', '0.9'):.3f} | "
                     f"{each} | {mean('ensemble', '0.95'):.3f} | {mean('cv_plus', '0.9'):.3f} | "
                     f"{mean('split', '0.9'):.3f} |")
    return lines


def fmt(w):
    return f"{w:.3g}" if abs(w) < 1000 else f"{w:,.0f}"


def table(_args):
    cache = json.loads(CACHE.read_text())
    lines = ["## Prediction intervals", "",
             "Written by `python bench/quality/intervals.py table` from the runs of "
             "`bench/quality/intervals.py run`: mlp with default flags (3-fold cross-fitting; the "
             "interval is CV+ over the three networks and their out-of-fold absolute residuals, "
             "scaled to the ensemble) on each regression set's training split, and `mlp eval "
             "--interval L` on its test split. Coverage is the share of test rows inside their "
             "interval, width the interval's width in the target's units; both the mean of seeds "
             + ", ".join(sorted({s for r in cache.values() for s in r})) + ".", "",
             "| data set | test rows | coverage 0.8 | width 0.8 | coverage 0.9 | width 0.9 | "
             "coverage 0.95 | width 0.95 | CV+ 0.9 | CV+ width 0.9 | test RMSE |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, seeds in cache.items():
        runs = list(seeds.values())
        avg = lambda m, l, k: sum(r[m][l][k] for r in runs) / len(runs)
        cells = []
        for m, l in [("ensemble", l) for l in LEVELS] + [("cv_plus", "0.9")]:
            cells += [f"{avg(m, l, 'coverage'):.3f}", fmt(avg(m, l, "width"))]
        lines.append(f"| {name} | {runs[0]['ensemble']['0.9']['rows']} | " + " | ".join(cells)
                     + f" | {fmt(avg('ensemble', '0.9', 'rmse'))} |")
    lines += ["", "Every method on the same models (same seeds, same networks, same residuals):", ""]
    lines += summary(cache)
    lines += ["", "**The default, CV+ scaled to the ensemble.** CV+ (Barber et al. 2021) makes a test "
              "row's ends from every training row's out-of-fold residual, subtracted from and added "
              "to the prediction at the test row of the network that did not train on that training "
              "row. Each residual is one network's error, but the prediction is the mean of three, "
              "whose error is smaller: with `v` the variance of the networks' predictions around "
              "their mean, one network's mean squared error exceeds the mean's by `(1 − 1/k)·v`, "
              "whatever the networks' correlation. Plain CV+ is sized for one network, so it covers "
              "more than asked where the networks disagree most (weather, 0.948; its three networks "
              "differ by a standard deviation of 2.3 °F against an error of 3.3). The default "
              "measures `v` on the training rows (up to 4,096 of them) and scales the residuals by "
              "`√(1 − (1 − 1/k)·v / mean(R²))` (between 0.88 on weather and 0.99 on wage here) and "
              "each network's distance from the prediction by `1/√k`. Nothing in it is fitted to "
              "these sets; the second-moment identity holds for any ensemble of exchangeable "
              "networks, and the rest (the shape of the residuals, `1/√k` for the spread) is an "
              "approximation with no finite-sample guarantee, where plain CV+ has one (at least "
              "1 − 2α). Scaling by the networks' disagreement row by row (a normalised score) was "
              "tried on the same runs and covered far too little (a mean of 0.85 to 0.87 at 0.9): on the "
              "training rows two of the three networks have seen the row, so their disagreement "
              "there is no guide to a new row's.",
              "",
              "**Residuals honest about early stopping.** Each network keeps the epoch whose "
              "held-out error is least, so at that epoch its held-out rows' errors are a little "
              "smaller than a new row's: those rows chose the epoch, and the fewer they are, the "
              "more the choice flatters them. Training therefore watches each network's held-out "
              "rows in two halves (by a hash of each row's inputs, so that a row's half is the same "
              "whichever process holds it) and takes each half's residuals from the epoch the "
              "*other* half judged best, from the validation outputs it computes anyway (no extra "
              "pass; the network kept is still the one all its held-out rows chose). The same holds "
              "for one network (`--folds 0`), streamed files and data-parallel runs. Against the "
              "build without it, on these runs: diabetes 0.886 → 0.901 on the fixed splits and "
              "0.869 → 0.871 over random splits, boston 0.829 → 0.848 (fixed), the mean at 0.9 "
              "0.893 → 0.898 (fixed) and 0.901 → 0.905 (random), 10 → 11 of 11 sets within "
              "0.87–0.93 over random splits (with alternate rows as the halves instead of the hash, "
              "a trial run gave diabetes 0.877 and the same means within 0.001).",
              "",
              "Boston's fixed test split is harder than its training rows (test RMSE 3.9 against an "
              "out-of-fold RMSE of 3.0): the default and split-conformal fall short there (0.848 and "
              "0.858) and only plain CV+'s extra width reaches 0.892. Over random splits (below) "
              "boston covers 0.915 with the default, and one split of ten as little as this one. Hitters (197 training rows, a "
              "skewed target) moves the most from seed to seed. The guarantee is marginal, over rows "
              "like the training rows, and there is no scale model beyond the networks' "
              "disagreement."]
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
