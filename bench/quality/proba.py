"""Probability quality, shared by the suite's mlp runs and its anchors: log loss, Brier score
and expected calibration error of class probabilities against the true labels.

* log loss: mean of -ln p(true class), probabilities clipped to [1e-15, 1] (scikit-learn's).
* Brier: mean over rows of the sum over classes of (p_k - y_k)^2 (the multi-class form; for
  two classes it is twice scikit-learn's binary brier_score_loss).
* ECE: top-label expected calibration error over 15 equal-width confidence bins: the
  row-weighted mean of |accuracy - mean confidence| per bin.
"""
import numpy as np

ECE_BINS = 15


def scores(y_true, classes, proba):
    """y_true: labels (strings compared as text); classes: column order of proba (n x K)."""
    classes = [str(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index.get(str(v), -1) for v in y_true])
    p = np.asarray(proba, dtype=float)
    p = p / p.sum(axis=1, keepdims=True)
    n = len(y)
    known = y >= 0  # a test label the model never saw scores probability 0 for it
    p_true = np.where(known, p[np.arange(n), np.clip(y, 0, None)], 0.0)
    onehot = np.zeros_like(p)
    onehot[np.arange(n)[known], y[known]] = 1.0
    top = p.argmax(axis=1)
    conf = p.max(axis=1)
    correct = (top == y).astype(float)
    bins = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    ece = sum(abs(correct[bins == b].mean() - conf[bins == b].mean()) * (bins == b).sum()
              for b in range(ECE_BINS) if (bins == b).any()) / n
    return {"accuracy": float(correct.mean()),
            "log_loss": float(-np.log(np.clip(p_true, 1e-15, 1.0)).mean()),
            "brier": float(((p - onehot) ** 2).sum(axis=1).mean()),
            "ece": float(ece)}


def normalize_label(v):
    """CSV labels as mlp prints them: 1.0 and 1 are the same class."""
    s = str(v).strip()
    try:
        f = float(s)
        if f == int(f):
            return str(int(f))
    except ValueError:
        pass
    return s
