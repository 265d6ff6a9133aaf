"""Pictures of results: confusion matrix, cross-validation folds, accuracy against SNR."""

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


def plot_folds(names: Sequence[str], accuracies: Sequence[float], path: str | Path) -> Path:
    """Save a bar chart of cross-validation accuracy per fold, with the mean as a line.

    Parameters
    ----------
    names : sequence of str
        Fold names (the held-out speakers).
    accuracies : sequence of float
        Test accuracy of each fold, fractions.
    path : str or Path

    Returns
    -------
    Path
    """
    mean = float(np.mean(accuracies))
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(names), 3.5), dpi=110)
    bars = ax.bar(range(len(names)), accuracies, color="tab:blue")
    ax.bar_label(bars, [f"{a:.3f}" for a in accuracies], fontsize=8)
    ax.axhline(mean, color="tab:red", linestyle="--", label=f"mean {mean:.3f}")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(max(0.0, min(accuracies) - 0.1), 1.0)
    ax.set_xlabel("held-out speaker")
    ax.set_ylabel("test accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_accuracy_vs_snr(snrs_db: Sequence[float], accuracies: Sequence[float], clean: float, path: str | Path,
                         by_noise: dict[str, Sequence[float]] | None = None) -> Path:
    """Save accuracy against signal-to-noise ratio, with clean accuracy as a dashed line.

    Parameters
    ----------
    snrs_db : sequence of float
        SNRs in dB.
    accuracies : sequence of float
        Accuracy at each SNR over all noises, fractions.
    clean : float
        Accuracy without added noise.
    path : str or Path
    by_noise : dict of str to sequence of float, optional
        Accuracy at each SNR per noise recording, drawn as thin lines.

    Returns
    -------
    Path
    """
    order = np.argsort(snrs_db)
    x = np.asarray(snrs_db, float)[order]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=110)
    for name, values in (by_noise or {}).items():
        ax.plot(x, np.asarray(values, float)[order], linewidth=1, alpha=0.6, marker=".", label=name)
    ax.plot(x, np.asarray(accuracies, float)[order], color="black", linewidth=2, marker="o", label="all noises")
    ax.axhline(clean, color="tab:green", linestyle="--", label=f"clean {clean:.3f}")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)
