"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix.

Computed with scikit-learn (``sklearn.metrics``) so the definitions are the standard ones.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : sequence of int, same length
        Class indices into ``labels``.
    labels : sequence of str
        Class names.

    Returns
    -------
    dict
        ``accuracy`` (fraction), ``n`` (clips), ``macro_f1``, ``per_class`` (label -> precision,
        recall, f1, support) and ``confusion_matrix`` (rows: true class, columns: predicted, in
        ``labels`` order).

    Raises
    ------
    ValueError
        Empty or unequal inputs.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0 or len(y_true) != len(y_pred):
        raise ValueError(f"need equal, non-empty y_true and y_pred, got {len(y_true)} and {len(y_pred)}")
    index = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=index, zero_division=0
    )
    present = support > 0
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "n": int(len(y_true)),
        "macro_f1": float(np.mean(f1[present])) if present.any() else 0.0,
        "per_class": {
            label: {
                "precision": round(float(p), 4),
                "recall": round(float(r), 4),
                "f1": round(float(f), 4),
                "support": int(s),
            }
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=index).tolist(),
    }


def format_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """The confusion matrix as aligned text: rows are true labels, columns predicted ones.

    Parameters
    ----------
    matrix : (n_classes, n_classes) counts
    labels : sequence of str

    Returns
    -------
    str
    """
    width = max(max(len(l) for l in labels), max(len(str(v)) for row in matrix for v in row)) + 1
    lines = ["true \\ predicted".ljust(width) + "".join(l.rjust(width) for l in labels)]
    for label, row in zip(labels, matrix):
        lines.append(label.ljust(width) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)
