"""Run an ONNX model exported by `mlp export` on a CSV file, the way a user would.

    python onnx_predict.py MODEL.onnx DATA.csv OUT.csv

Checks the model with onnx.checker (full check, with shape inference), feeds every input
column by name (float32 [N, 1] or string [N, 1], as the graph declares), and writes the
outputs as CSV: `label` and one column per class probability, or `prediction` (and
`lower`, `upper` if the graph has them), with full
precision. Text goes in as the file has it (the graph trims it and knows the missing
tokens, as mlp does); a number cell Python cannot read as a float (NA, ?, an empty cell)
becomes NaN, which the graph fills as mlp does.
"""

import csv
import sys

import numpy as np
import onnx
import onnxruntime as ort


def number(cell):
    try:
        return float(cell)
    except ValueError:
        return np.nan


def main(model_path, data_path, out_path):
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    with open(data_path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    feed = {}
    for i in session.get_inputs():
        cells = [row[i.name] for row in rows]
        if i.type == "tensor(float)":
            values = [number(c) for c in cells]
            feed[i.name] = np.array(values, dtype=np.float32).reshape(-1, 1)
        else:
            feed[i.name] = np.array(cells, dtype=object).reshape(-1, 1)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, feed)))
    with open(out_path, "w", newline="") as f:
        w = csv.writer(f)
        if "label" in outputs:
            probabilities = outputs["probabilities"]
            w.writerow(["label"] + [f"p{j}" for j in range(probabilities.shape[1])])
            for label, p in zip(outputs["label"], probabilities):
                w.writerow([label] + [repr(float(v)) for v in p])
        elif "lower" in outputs:
            w.writerow(["prediction", "lower", "upper"])
            columns = [outputs[n].reshape(-1) for n in ("prediction", "lower", "upper")]
            for row in zip(*columns):
                w.writerow([repr(float(v)) for v in row])
        else:
            w.writerow(["prediction"])
            for v in outputs["prediction"].reshape(-1):
                w.writerow([repr(float(v))])


if __name__ == "__main__":
    main(*sys.argv[1:])
