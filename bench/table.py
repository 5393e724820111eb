"""Markdown tables for BENCHMARKS.md: mlp against every peer of the same run.

usage: python bench/table.py [--all] [RESULTS_FILE]
Reads the result lines that ../shared/bench/peers/run_all.sh appends (with MLP_BENCH set,
mlp's lines are in the same run). Default: the last run in the file. --all: every run; each
cell is the run whose median_s is the median over runs, and ratios are taken within each
run, then their median is shown.
"""
import os
import statistics
import sys
from pathlib import Path

args = [a for a in sys.argv[1:] if not a.startswith("--")]
every = "--all" in sys.argv
work = Path(os.environ.get("PEERS_WORK", Path.home() / ".cache" / "mlp-peers"))
path = Path(args[0]) if args else work / "results" / "results.txt"

rows, run, header = [], -1, ""
for line in path.read_text().splitlines():
    if line.startswith("# run"):
        run += 1
        header = line
        if not every:
            rows = []
    elif line.startswith("peer="):
        d = dict(kv.split("=", 1) for kv in line.split())
        d["extra"] = dict(kv.split(":", 1) for kv in d["extra"].split(",") if ":" in kv)
        d["run"] = run
        rows.append(d)


def value(d):
    """The workload's figure of merit, higher is better."""
    w = d["workload"]
    if w == "W1":
        return 1.0 / float(d["extra"]["us_per_epoch"])
    if w in ("W3", "W4"):
        return float(d["samples_per_s"])
    if w == "L":
        return float(d["gflops"])
    return 1.0 / float(d["median_s"])  # W2, W5: seconds


def show(d):
    w, e = d["workload"], d["extra"]
    if w == "W1":
        return f"{float(e['us_per_epoch']):.2f} µs"
    if w == "W2":
        return f"{float(d['median_s']):.3f} s ({float(e['test_acc']):.3f})"
    if w in ("W3", "W4"):
        return f"{float(d['samples_per_s']):,.0f}/s ({float(d['gflops']):.0f} GF)"
    if w == "W5":
        return f"{float(d['median_s']):.3f} s"
    return f"{float(d['gflops']):.1f} GF"


by = {}
for d in rows:
    by.setdefault((d["peer"], d["threads"], d["workload"]), []).append(d)


def pick(key):
    ds = sorted(by[key], key=lambda d: float(d["median_s"]))
    return ds[(len(ds) - 1) // 2]


def ratio(key, other):
    """Median over runs of value(key) / value(other) within the same run."""
    r = []
    for d in by.get(key, []):
        o = [x for x in by.get(other, []) if x["run"] == d["run"]]
        if o:
            r.append(value(d) / value(o[0]))
    return statistics.median(r) if r else None


print(f"{'Median of ' + str(run + 1) + ' runs' if every else header}\n")
threads = sorted({k[1] for k in by})
for t in threads:
    print(f"### {t} thread{'s' if t != '1' else ''}\n")
    print("| workload | mlp | best peer | mlp / best peer | all peers |")
    print("|---|---|---|---|---|")
    for w in ("W1", "W2", "W3", "W4", "W5"):
        if ("mlp", t, w) not in by:
            continue
        peers = [k for k in by if k[1] == t and k[2] == w and k[0] != "mlp"]
        if w == "W5":  # the peers load with one thread only
            peers = [k for k in by if k[2] == w and k[0] != "mlp"]
        if not peers:
            continue
        best = max(peers, key=lambda k: value(pick(k)))
        others = ", ".join(f"{k[0]} {show(pick(k))}" for k in sorted(peers, key=lambda k: -value(pick(k))))
        r = ratio(("mlp", t, w), best)
        versus = f"{r:.2f}×"
        pandas = next((k for k in peers if k[0] == "pandas"), None)
        if w == "W5" and pandas and best != pandas:
            versus += f" ({ratio(('mlp', t, w), pandas):.2f}× pandas)"
        print(f"| {w} | {show(pick(('mlp', t, w)))} | {best[0]} {show(pick(best))} | "
              f"{versus} | {others} |")
    limits = [k for k in by if k[1] == t and k[2] == "L"]
    if limits and ("mlp", t, "W4") in by:
        best = max(limits, key=lambda k: value(pick(k)))
        w4 = pick(("mlp", t, "W4"))
        pct = float(w4["gflops"]) / value(pick(best)) * 100
        mine = f"; mlp's own L: {show(pick(('mlp', t, 'L')))}" if ("mlp", t, "L") in by else ""
        print(f"\nsgemm limit (best L of the run): {best[0]} {show(pick(best))}{mine}; "
              f"mlp W4 = {pct:.0f}% of it.")
    print()
