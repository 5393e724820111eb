#!/usr/bin/env bash
# The streaming benchmark (issue 12): one epoch on a generated ~1 GB regression CSV
# (5,000,000 rows × 20 features) under --memory-limit 256M, its peak resident memory
# (GNU time's %M), its throughput next to reading alone, and its R² on fresh rows next to
# the in-memory path trained on a subsample. The data goes to $DATA (default
# /tmp/mlp-stream), never into the repository.
#
#   bash bench/stream.sh            # ROWS=5000000 SUB=500000 by default
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-/tmp/mlp-stream}
rows=${ROWS:-5000000}
sub=${SUB:-500000}
mkdir -p "$data"
cargo build --quiet --release --manifest-path "$here/Cargo.toml"
mlp="$here/target/release/mlp"
gnutime=/usr/bin/time
[ -x "$gnutime" ] || { echo "needs GNU time: apt-get install -y time" >&2; exit 1; }

gen="$data/stream_data"
[ -x "$gen" ] || rustc -O "$here/bench/stream_data.rs" -o "$gen"
[ -s "$data/big.csv" ] || "$gen" "$data/big.csv" "$rows" 1
[ -s "$data/fresh.csv" ] || "$gen" "$data/fresh.csv" 100000 2
[ -s "$data/sub.csv" ] || head -n $((sub + 1)) "$data/big.csv" > "$data/sub.csv"

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores)"
echo "file: $(du -h "$data/big.csv" | cut -f1), $rows rows"
# The operating system's read speed, for reference (the file may be cached).
start=$(date +%s.%N); cat "$data/big.csv" > /dev/null; end=$(date +%s.%N)
echo "cat: $(echo "$end - $start" | bc) s"

cd "$data"
# Batches of 512: an epoch of 5,000,000 rows is 9,600 steps (batches of 32 would make it
# 150,000, most of an hour on a loaded 2-core machine).
batch=${BATCH:-512}
# Streamed: one epoch; 2% of the rows validate (100,000 rows, judged after the epoch).
$gnutime -f "peak_rss_kb %M elapsed_s %e" "$mlp" train big.csv --target y --epochs 1 \
  --batch-size "$batch" --val-split 0.02 --memory-limit 256M --model stream.json 2>&1 \
  | tee stream.log
# In memory: the first $sub rows for 10 epochs (as many row visits as the streamed epoch).
$gnutime -f "peak_rss_kb %M elapsed_s %e" "$mlp" train sub.csv --target y --epochs 10 \
  --batch-size "$batch" --val-split 0.02 --model memory.json 2>&1 | tail -4 | tee memory.log
# In memory, the same number of rows seen: one epoch on the subsample.
$gnutime -f "peak_rss_kb %M elapsed_s %e" "$mlp" train sub.csv --target y --epochs 1 \
  --batch-size "$batch" --val-split 0.02 --model memory1.json 2>&1 | tail -2
for m in stream memory memory1; do
  echo "$m: fresh rows $("$mlp" eval $m.json fresh.csv --json)"
done
