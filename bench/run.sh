#!/usr/bin/env bash
# One side-by-side run of the reference workloads: every peer of ../shared/bench/peers and
# mlp's examples/bench, appended to $OUT (default $PEERS_WORK/results/results.txt), then
# mlp's own sgemm (L) in the same run block. `python bench/table.py [--all] $OUT` makes
# the tables of BENCHMARKS.md. Arguments are passed to run_all.sh (e.g. `L W4`).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS_DIR:-$here/../shared/bench/peers}
export PEERS_WORK=${PEERS_WORK:-$HOME/.cache/mlp-peers}
export OUT=${OUT:-$PEERS_WORK/results/results.txt}
cargo build --quiet --release --example bench --manifest-path "$here/Cargo.toml"
bench="$here/target/release/examples/bench"
MLP_DIR="$here" MLP_BENCH="$bench" "$peers/run_all.sh" "$@"
for t in ${THREADS:-1 2}; do
  env MLP_THREADS="$t" "$bench" --threads "$t" L | tee -a "$OUT"
done
