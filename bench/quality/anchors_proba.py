"""The reference models of ../shared/bench/quality/anchors.py, built the same way, but keeping
their class probabilities (log loss, Brier, ECE: see proba.py) and their CPU seconds per fit.

usage: python bench/quality/anchors_proba.py [--only sklearn,realmlp,hgb,lightgbm] [--seeds 3] [NAME...]
(RealMLP-TD was run with --seeds 1: its fits take 10-70 s each)

Results are merged into bench/quality/anchors.json under each anchor as `score`, `log_loss`,
`brier`, `ece` (classification), `cpu_per_fit` (user+sys CPU seconds of this process per
fit, all its threads) and `s_per_fit` (wall). Data sets and anchors that already have a
`cpu_per_fit` are skipped.
"""
import argparse
import importlib.util
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import proba  # noqa: E402
import suite  # noqa: E402

spec = importlib.util.spec_from_file_location("anchors", suite.ANCHORS)
anchors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(anchors)


def build(name, clf, seed, n_jobs=None):
    """The unfitted scikit-learn MLP pipeline, HGB or LightGBM model, as anchors.py makes it
    (LightGBM with `n_jobs` threads if given, else its default)."""
    if name == "lightgbm":
        import lightgbm as lgb
        extra = {} if n_jobs is None else {"n_jobs": n_jobs}
        return (lgb.LGBMClassifier if clf else lgb.LGBMRegressor)(random_state=seed, verbose=-1, **extra)
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
        return cls(random_state=seed, categorical_features="from_dtype")
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    ct = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         make_column_selector(dtype_include=np.number)),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         make_column_selector(dtype_exclude=np.number))])
    return make_pipeline(ct, (MLPClassifier if clf else MLPRegressor)(random_state=seed))


def fit_sklearn(clf, Xtr, ytr, seed):
    return build("sklearn", clf, seed).fit(Xtr, ytr), None


def fit_realmlp(clf, Xtr, ytr, seed):
    import torch
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor
    torch.set_num_threads(1)  # one thread, like every other model here
    Xtr = Xtr.copy()
    medians = {c: Xtr[c].median() for c in Xtr.columns if Xtr[c].dtype != "category"}
    for c, m in medians.items():
        Xtr[c] = Xtr[c].fillna(m)
    model = (RealMLP_TD_Classifier if clf else RealMLP_TD_Regressor)(random_state=seed, device="cpu", verbosity=0)
    return model.fit(Xtr, ytr), medians


def fit_hgb(clf, Xtr, ytr, seed):
    return build("hgb", clf, seed).fit(Xtr, ytr), None


def fit_lightgbm(clf, Xtr, ytr, seed):
    return build("lightgbm", clf, seed).fit(Xtr, ytr), None


# name: (fit, seeded, wants pandas categoricals)
FITS = {"sklearn": (fit_sklearn, True, False), "realmlp": (fit_realmlp, True, True),
        "hgb": (fit_hgb, False, True), "lightgbm": (fit_lightgbm, False, True)}


def one(name, ds, seeds):
    from sklearn.metrics import r2_score
    clf = ds["task"] == "classification"
    Xtr, ytr, Xte, yte = anchors.frames(ds, str(HERE))
    fit, seeded, cats = FITS[name]
    if cats:
        Xtr, Xte = anchors.categorical(Xtr, Xte)
    if clf:  # labels as text, as mlp reads them
        ytr = ytr.map(proba.normalize_label)
        yte = yte.map(proba.normalize_label)
    runs, cpu, wall = [], 0.0, 0.0
    for seed in (suite.SEEDS[:seeds] if seeded else [0]):
        c0, w0 = time.process_time(), time.perf_counter()
        model, medians = fit(clf, Xtr, ytr, seed)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
        X = Xte.copy()
        for c, m in (medians or {}).items():
            X[c] = X[c].fillna(m)
        if clf:
            runs.append(proba.scores(yte, model.classes_, model.predict_proba(X)))
        else:
            runs.append({"score": float(r2_score(yte, model.predict(X)))})
    out = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    if clf:
        out["score"] = out.pop("accuracy")
    out.update(cpu_per_fit=cpu / len(runs), s_per_fit=wall / len(runs))
    if seeded:  # the deterministic ones are one run, not one seed of several
        out["seeds"] = len(runs)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(FITS))
    ap.add_argument("--seeds", type=int, default=len(suite.SEEDS), help="seeds per seeded anchor")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    for ds in suite.datasets(a.names):
        for name in [n for n in a.only.split(",") if n]:
            cache = suite.load(suite.ANCHOR_CACHE, {})
            if "cpu_per_fit" in cache.get(ds["name"], {}).get(name, {}):
                continue
            try:
                r = one(name, ds, a.seeds)
            except Exception as e:  # a missing package or a refused input: say so, keep going
                r = {"error": f"{type(e).__name__}: {e}"[:200]}
            cache = suite.load(suite.ANCHOR_CACHE, {})
            old = cache.setdefault(ds["name"], {}).get(name, {})
            if "score" in r and old.get("seeds", 1) > r.get("seeds", 1):
                # An earlier run with more seeds keeps its score and time; this one adds the
                # probability figures, from fewer seeds.
                r = dict(old, **{k: v for k, v in r.items() if k not in ("score", "s_per_fit", "seeds")},
                         proba_seeds=r.get("seeds", 1))
            cache[ds["name"]][name] = r
            suite.save(suite.ANCHOR_CACHE, cache)
            shown = {k: round(v, 4) for k, v in r.items() if isinstance(v, float)}
            print(f"{ds['name']:14s} {name:9s} {shown or r}", flush=True)


if __name__ == "__main__":
    main()
