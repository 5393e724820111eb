"""Checks that mlp's W5 loader gives the same matrix as pandas and NumPy.

usage: python bench/check_w5.py [W5_CSV]   (default: $PEERS_WORK/data/w5.csv)
Runs `examples/bench W5` with MLP_W5_DUMP, then compares element by element.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
work = Path(os.environ.get("PEERS_WORK", Path.home() / ".cache" / "mlp-peers"))
csv = Path(sys.argv[1]) if len(sys.argv) > 1 else work / "data" / "w5.csv"
with tempfile.TemporaryDirectory() as d:
    dump = os.path.join(d, "w5.f32")
    subprocess.run(["cargo", "run", "-q", "--release", "--example", "bench", "--",
                    "--reps", "1", "--w5", str(csv), "W5"],
                   cwd=ROOT, check=True, env={**os.environ, "MLP_W5_DUMP": dump})
    ours = np.fromfile(dump, dtype="<f4")
pandas = pd.read_csv(csv, engine="c", dtype=np.float32).to_numpy()
ours = ours.reshape(pandas.shape)
exact = np.float32(np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float64))
print(f"shape {pandas.shape}; elements differing from pandas: {(ours != pandas).sum()}; "
      f"from NumPy (parse as float64, round to float32): {(ours != exact).sum()}; "
      f"pandas vs NumPy: {(pandas != exact).sum()}")
