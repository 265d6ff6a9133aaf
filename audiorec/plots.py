"""Pictures: the confusion matrix (more views come with the plotting command)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Save a confusion matrix as an image, rows normalised to recall, counts written in cells.

    Parameters
    ----------
    matrix : (n_classes, n_classes) counts
        Rows true classes, columns predicted.
    labels : sequence of str
    path : str or Path
        Output file; the format follows the suffix (``.png``, ``.svg``).
    title : str

    Returns
    -------
    Path
    """
    counts = np.asarray(matrix)
    recall = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.2, size), dpi=110)
    image = ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if recall[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Save and close a figure atomically (a temporary file renamed into place).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        The format follows the suffix.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
