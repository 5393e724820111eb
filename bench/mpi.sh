#!/usr/bin/env bash
# The 2-rank data-parallel speed-up (issue 12), three ways on the same work:
#   one process, 1 thread | one process, 2 threads | mpirun -n 2, 1 thread per rank
# on W4 through `mlp train` (16,384 rows × 784 N(0,1) numbers, labels uniform 0–9;
# 784→1024→1024→10 ReLU, SGD lr 0.01, batches of 512, no validation split) and on a
# streamed regression file (bench/stream_data.rs, 1,000,000 rows × 20, about 190 MB;
# --stream --memory-limit 256M, batches of 512, one epoch).
#
# W4 is timed as the difference between 4 epochs and 1 epoch, divided by 3: seconds per
# epoch (training, and judging the 16,384 rows after it) without the reading. The streamed
# run reports its own first pass and epoch times; the wall time is the whole run.
# Medians of $REPEATS runs (default 3). Needs Open MPI (see .ci/run) and Python with NumPy
# ($PYTHON, default python3) for the W4 file. Data goes to $DATA (default /tmp/mlp-mpi).
#
#   bash bench/mpi.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA:-/tmp/mlp-mpi}
repeats=${REPEATS:-3}
python=${PYTHON:-python3}
mkdir -p "$data"
cargo build --quiet --release --features mpi --manifest-path "$here/Cargo.toml"
mlp="$here/target/release/mlp"
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi=(mpirun --allow-run-as-root --oversubscribe -n 2)

[ -s "$data/w4.csv" ] || "$python" - "$data/w4.csv" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((16384, 784), dtype=np.float32)
y = rng.integers(0, 10, 16384)
with open(sys.argv[1], "w") as f:
    f.write(",".join(f"x{i}" for i in range(784)) + ",y\n")
    for row, label in zip(x, y):
        f.write(",".join(f"{v:.5f}" for v in row) + f",{label}\n")
PY
gen="$data/stream_data"
[ -x "$gen" ] || rustc -O "$here/bench/stream_data.rs" -o "$gen"
[ -s "$data/stream.csv" ] || "$gen" "$data/stream.csv" 1000000 1

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores); load: $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$data"

# Seconds of wall time of one run of "$@".
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" > run.log 2>&1 || { cat run.log >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

w4=(train w4.csv --target y --hidden 1024,1024 --optimizer sgd --lr 0.01 --batch-size 512
  --val-split 0 --label-smoothing 0 --weight-decay 0 --patience 0 --quiet --model w4.json)
stream=(train stream.csv --target y --stream --memory-limit 256M --epochs 1 --batch-size 512
  --val-split 0.02 --model stream.json)
for way in "1 process, 1 thread" "1 process, 2 threads" "mpirun -n 2, 1 thread each"; do
  case $way in
    "1 process, 1 thread") run=(env MLP_THREADS=1 "$mlp") ;;
    "1 process, 2 threads") run=(env MLP_THREADS=2 "$mlp") ;;
    *) run=("${mpi[@]}" -x MLP_THREADS=1 "$mlp") ;;
  esac
  per_epoch=()
  for _ in $(seq "$repeats"); do
    one=$(seconds "${run[@]}" "${w4[@]}" --epochs 1)
    four=$(seconds "${run[@]}" "${w4[@]}" --epochs 4)
    per_epoch+=("$(echo "($four - $one) / 3" | bc -l)")
  done
  w4_epoch=$(printf '%s\n' "${per_epoch[@]}" | median)
  walls=()
  for _ in $(seq "$repeats"); do
    walls+=("$(seconds "${run[@]}" "${stream[@]}")")
  done
  wall=$(printf '%s\n' "${walls[@]}" | median)
  scan=$(sed -n 's/^streaming: first pass (reading and parsing alone) \([0-9.]*\) s.*/\1/p' run.log)
  epoch=$(sed -n 's/^streaming: 1 epochs in \([0-9.]*\) s.*/\1/p' run.log)
  printf '%-28s W4 %.2f s/epoch (%.0f rows/s) | streamed: %.1f s wall, last run: first pass %s s, epoch %s s\n' \
    "$way" "$w4_epoch" "$(echo "16384 / $w4_epoch" | bc -l)" "$wall" "$scan" "$epoch"
done
