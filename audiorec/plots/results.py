"""Pictures of results: training curves, confusion matrix, most confused pairs, cross-validation
folds, accuracy against SNR, accuracy against model size, the DET curve of a keyword detector.

Importing this module needs matplotlib and numpy only (the sound panels of the confused-pairs
picture import PyTorch when they are drawn), so the torch-free ``audiorec listen`` can draw here.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from audiorec.plots.style import save_figure, styled

if TYPE_CHECKING:
    from audiorec.features import FeatureConfig


@styled
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


@styled
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
    ax.axhline(mean, color="tab:red", linestyle="--")
    ax.set_title(f"mean {mean:.3f} (dashed), worst {min(accuracies):.3f}", fontsize=10)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(max(0.0, min(accuracies) - 0.1), 1.0)
    ax.set_xlabel("held-out speaker")
    ax.set_ylabel("test accuracy")
    fig.tight_layout()
    return save_figure(fig, path)


@styled
def plot_accuracy_vs_parameters(points: dict[str, Sequence[tuple[str, int, float]]], path: str | Path) -> Path:
    """Save test accuracy against parameter count (log scale), one colour per corpus.

    Parameters
    ----------
    points : dict of str to sequence of (str, int, float)
        Per corpus, ``(model name, parameters, accuracy as a fraction)`` for each model.
    path : str or Path

    Returns
    -------
    Path

    References
    ----------
    The accuracy-against-footprint picture of the keyword-spotting literature (Zhang et al. 2017
    "Hello Edge", Fig. 6; Kim et al. 2021 BC-ResNet, Fig. 1).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for corpus, entries in points.items():
        if not entries:
            continue
        names, sizes, accuracies = zip(*entries)
        ax.scatter([max(s, 1) for s in sizes], accuracies, label=corpus, zorder=3)
        for name, size, accuracy in entries:
            ax.annotate(name, (max(size, 1), accuracy), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("test accuracy")
    ax.grid(True, which="both")
    if any(points.values()):
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, path)


@styled
def plot_accuracy_vs_snr(snrs_db: Sequence[float], accuracies: Sequence[float], clean: float, path: str | Path,
                         by_noise: dict[str, Sequence[float]] | None = None) -> Path:
    """Save accuracy against signal-to-noise ratio (falling to the right), clean accuracy dashed.

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
    ax.invert_xaxis()  # clean on the left, noisier to the right
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, path)


@styled
def plot_det_curve(rows: Sequence[dict], path: str | Path, operating_threshold: float | None = None, title: str = "") -> Path:
    """Save a keyword detector's DET curve: miss rate against false accepts per hour.

    Points are joined in threshold order. The x axis is linear up to 1 false accept per hour and
    logarithmic above (``symlog``), so zero false accepts and hundreds both show; lower left is
    better.

    Parameters
    ----------
    rows : sequence of dict
        From :func:`audiorec.metrics.det_curve`: ``threshold``, ``miss_rate`` (fraction),
        ``false_accepts_per_hour``.
    path : str or Path
        Output image; the format follows the suffix.
    operating_threshold : float, optional
        The detector's threshold: the row nearest it is marked and labelled.
    title : str

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        No rows.
    """
    if not rows:
        raise ValueError("no DET curve points to plot")
    rows = sorted(rows, key=lambda r: r["threshold"])
    fa = np.array([r["false_accepts_per_hour"] for r in rows], float)
    miss = np.array([r["miss_rate"] for r in rows], float)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=110)
    ax.plot(fa, miss, color="black", linewidth=1.5, marker=".", markersize=3)
    if operating_threshold is not None:
        op = min(rows, key=lambda r: abs(r["threshold"] - operating_threshold))
        ax.plot(op["false_accepts_per_hour"], op["miss_rate"], marker="*", markersize=12, color="#edae49",
                markeredgecolor="black", markeredgewidth=0.5, linestyle="none",
                label=f"threshold {op['threshold']:.2f}: {100 * (1 - op['miss_rate']):.1f}% detected, "
                      f"{op['false_accepts_per_hour']:.1f} false accepts/h")
        ax.legend(loc="upper right")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_ylim(0, min(1.0, float(miss.max()) + 0.05) if miss.max() > 0 else 0.1)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("miss rate")
    ax.grid(True, which="both")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


MIN_PICTURE_S = 0.05  # shorter clips are padded with silence in the confused-pairs picture


@dataclass
class TrainingLog:
    """The metrics of a run's Lightning CSV logs, concatenated over resumes.

    Attributes
    ----------
    by_epoch : dict of str to (np.ndarray, np.ndarray)
        Metric (``train_loss``, ``val_acc``, ``val_wer`` ...) -> (epochs, values): 0-based
        epochs, ascending. Where a resumed run logged an epoch again, the later value wins.
    by_step : dict of str to (np.ndarray, np.ndarray)
        Metrics logged per optimiser step (learning rates ``lr-<optimizer>``, ``*_step``) ->
        (global steps, values).
    resumed_at : list of int
        The first epoch that each log version after the first holds (where training resumed).
    sources : list of Path
        The ``metrics.csv`` files read, in order.
    """

    by_epoch: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    by_step: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    resumed_at: list[int] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)


def _version_number(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.name)
    return int(match[1]) if match else -1


def read_training_log(log_dir: str | Path) -> TrainingLog:
    """Read ``version_N/metrics.csv`` files written by Lightning's ``CSVLogger``, in version order.

    Each row of such a file holds only some columns (``epoch``, ``step`` and the metrics logged
    at that moment); a resumed run writes its rows into the next version.

    Parameters
    ----------
    log_dir : str or Path
        ``RUN/logs`` (or the run directory itself).

    Returns
    -------
    TrainingLog

    Raises
    ------
    ValueError
        No ``version_N/metrics.csv`` under ``log_dir``, or a value that is not a number (the
        message names the file and line).
    """
    log_dir = Path(log_dir)
    if (log_dir / "logs").is_dir():
        log_dir = log_dir / "logs"
    versions = sorted((d for d in log_dir.glob("version_*") if _version_number(d) >= 0), key=_version_number)
    files = [d / "metrics.csv" for d in versions if (d / "metrics.csv").is_file()]
    if not files:
        raise ValueError(f"{log_dir}: no version_N/metrics.csv (Lightning CSV logs) to plot")
    epochs: dict[str, dict[int, float]] = {}
    steps: dict[str, dict[int, float]] = {}
    log = TrainingLog(sources=files)
    for number, path in enumerate(files):
        first_epoch = None
        with open(path, newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                try:
                    values = {k: float(v) for k, v in row.items() if k and v not in ("", None)}
                except ValueError as e:
                    raise ValueError(f"{path}:{line}: {e}") from e
                epoch, step = values.pop("epoch", None), values.pop("step", None)
                for name, value in values.items():
                    if epoch is None or name.startswith("lr-") or name.endswith("_step"):
                        if step is not None:
                            steps.setdefault(name, {})[int(step)] = value
                    else:
                        epochs.setdefault(name.removesuffix("_epoch"), {})[int(epoch)] = value
                if epoch is not None and first_epoch is None:
                    first_epoch = int(epoch)
        if number > 0 and first_epoch is not None:
            log.resumed_at.append(first_epoch)
    log.by_epoch = {k: (np.array(sorted(v)), np.array([v[e] for e in sorted(v)])) for k, v in sorted(epochs.items())}
    log.by_step = {k: (np.array(sorted(v)), np.array([v[s] for s in sorted(v)])) for k, v in sorted(steps.items())}
    return log


_METRIC_TITLES = {"loss": "loss", "acc": "accuracy", "wer": "word error rate", "cer": "character error rate"}
_HIGHER_IS_BETTER = {"acc", "f1", "accuracy"}


@styled
def training_curves_figure(log: TrainingLog, title: str = "", dpi: int = 100) -> Figure:
    """Loss, accuracy (or WER/CER) per epoch and the learning rate per step, side by side.

    Metrics are grouped by their suffix (``train_loss`` and ``val_loss`` share the loss panel);
    the best validation value is marked, and a dotted line shows where training resumed.

    Parameters
    ----------
    log : TrainingLog
        From :func:`read_training_log`.
    title : str
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric group (labelled ``loss``, ``acc``, ``wer`` ... and ``lr``), x axis
        the 1-based epoch (the learning rate: the optimiser step).

    Raises
    ------
    ValueError
        The log holds no metric.
    """
    groups: dict[str, list[str]] = {}
    for name in log.by_epoch:
        groups.setdefault(name.rsplit("_", 1)[-1], []).append(name)
    order = sorted(groups, key=lambda g: (list(_METRIC_TITLES).index(g) if g in _METRIC_TITLES else 99, g))
    lr_names = [n for n in log.by_step if n.startswith("lr-")]
    n_panels = len(order) + bool(lr_names)
    if n_panels == 0:
        raise ValueError(f"no metrics in {', '.join(map(str, log.sources)) or 'the training log'}")
    fig = Figure(figsize=(0.4 + 3.6 * n_panels, 3.1 + 0.25 * bool(title)), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    for ax, group in zip(axes, order):
        ax.set_label(group)
        for name in sorted(groups[group], key=lambda n: ("train", "val", "test").index(n.split("_")[0]) if n.split("_")[0] in ("train", "val", "test") else 3):
            epochs, values = log.by_epoch[name]
            x = epochs + 1
            ax.plot(x, values, marker="o" if len(x) <= 40 else None, markersize=2.5, linewidth=1.2,
                    label=name.split("_")[0] if "_" in name else name)
            if name.startswith("val_") and len(values):
                best = int(np.argmax(values) if group in _HIGHER_IS_BETTER else np.argmin(values))
                ax.plot(x[best], values[best], marker="*", markersize=11, color="#edae49", zorder=5,
                        markeredgecolor="black", markeredgewidth=0.5, linestyle="none",
                        label=f"best val {values[best]:.3f} (epoch {x[best]})")
        for k, epoch in enumerate(log.resumed_at):
            ax.axvline(epoch + 0.5, color="#888888", linestyle=":", linewidth=1, label="resumed" if k == 0 else None)
        if group in ("acc", "wer", "cer"):
            low, high = ax.get_ylim()
            ax.set_ylim(max(0.0, low), min(1.0, high) + 0.02 if group == "acc" else high)
        ax.set_title(_METRIC_TITLES.get(group, group), loc="left")
        ax.set_xlabel("epoch")
        ax.grid(True)
        ax.legend(loc="best")
        ax.xaxis.get_major_locator().set_params(integer=True)
    if lr_names:
        ax = axes[-1]
        ax.set_label("lr")
        for name in lr_names:
            steps, values = log.by_step[name]
            ax.plot(steps, values, linewidth=1.2, label=name.removeprefix("lr-"))
        ax.set_title("learning rate", loc="left")
        ax.set_xlabel("step (batch)")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        ax.grid(True)
        ax.legend(loc="best")
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=11, fontweight="bold")
    return fig


def plot_training_curves(log_dir: str | Path, path: str | Path, title: str = "") -> Path:
    """Save :func:`training_curves_figure` of a run's logs (``train`` writes ``RUN/training_curves.png``).

    Parameters
    ----------
    log_dir : str or Path
        ``RUN/logs`` or the run directory.
    path : str or Path
        Output image; the format follows the suffix.
    title : str

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        As :func:`read_training_log`.
    """
    return save_figure(training_curves_figure(read_training_log(log_dir), title), path)


def most_confused_pairs(true_labels: Sequence[str], predicted: Sequence[str], n_pairs: int = 4) -> list[tuple[str, str, int]]:
    """The commonest recognition errors.

    Parameters
    ----------
    true_labels, predicted : sequence of str
        Same length, one per clip.
    n_pairs : int

    Returns
    -------
    list of (str, str, int)
        ``(true, predicted, count)``, most frequent first (ties by name); empty without errors.

    Raises
    ------
    ValueError
        The sequences differ in length.
    """
    if len(true_labels) != len(predicted):
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted)} predictions")
    counts = Counter((t, p) for t, p in zip(true_labels, predicted) if t != p)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(t, p, n) for (t, p), n in ranked[:n_pairs]]


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def confused_pairs_figure(
    true_labels: Sequence[str],
    predicted: Sequence[str],
    waveforms: Sequence[np.ndarray],
    sample_rate: int,
    captions: Sequence[str] | None = None,
    n_pairs: int = 4,
    features: FeatureConfig | None = None,
    kind: str = "mel",
) -> Figure | None:
    """The most confused pairs, each with a misrecognised clip next to correctly recognised ones.

    Row ``A → B``: the first clip of ``A`` recognised as ``B``, then the first clip of ``A`` and
    the first of ``B`` that were recognised correctly (when there is one), all on one colour
    scale, so what made them alike (or a bad recording) can be seen. Clips shorter than
    :data:`MIN_PICTURE_S` are padded with silence.

    Parameters
    ----------
    true_labels, predicted : sequence of str
        One per clip.
    waveforms : sequence of np.ndarray [shape=(n_samples,)]
        The clips, mono, at ``sample_rate``.
    sample_rate : int > 0
        Hz.
    captions : sequence of str, optional
        Names of the clips (e.g. file names); default their index.
    n_pairs : int
        Rows.
    features : FeatureConfig, optional
        The run's front end (for ``kind="mel"`` or ``"mfcc"``).
    kind : str
        Panel kind (:data:`~audiorec.plots.sound.KINDS`); default the log-mel the model sees.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when every clip was recognised correctly.

    Raises
    ------
    ValueError
        Sequences of different lengths, or a bad waveform.
    """
    from audiorec.plots.sound import label_grid_figure  # PyTorch front ends

    pairs = most_confused_pairs(true_labels, predicted, n_pairs)
    if not pairs:
        return None
    if len(waveforms) != len(true_labels):
        raise ValueError(f"{len(true_labels)} labels but {len(waveforms)} waveforms")
    captions = list(captions) if captions is not None else [f"clip {i}" for i in range(len(true_labels))]
    # Clips too short for an STFT frame (possible in a hand-made manifest) are padded with silence,
    # so a picture never stops an evaluation.
    min_samples = round(MIN_PICTURE_S * sample_rate)
    waveforms = [np.pad(np.asarray(w, np.float32), (0, max(0, min_samples - len(w)))) for w in waveforms]
    correct = {}
    for i, (t, p) in enumerate(zip(true_labels, predicted)):
        if t == p:
            correct.setdefault(t, i)
    totals = Counter(true_labels)
    rows = {}
    for t, p, count in pairs:
        wrong = next(i for i, (a, b) in enumerate(zip(true_labels, predicted)) if a == t and b == p)
        cells = [(_short(f"heard as '{p}': {captions[wrong]}"), waveforms[wrong])]
        for label in (t, p):
            if label in correct:
                cells.append((_short(f"a correct '{label}': {captions[correct[label]]}"), waveforms[correct[label]]))
        rows[f"{t} → {p}\n{count} of {totals[t]}"] = cells
    return label_grid_figure(
        rows, sample_rate, kind, features, cell_in=(2.6, 1.3), dpi=90,
        title="most confused pairs (true → predicted)",
        note="each row: a misrecognised clip, then correctly recognised clips of both labels, on one colour scale",
    )


def plot_confused_pairs(
    true_labels: Sequence[str],
    predicted: Sequence[str],
    waveforms: Sequence[np.ndarray],
    sample_rate: int,
    path: str | Path,
    captions: Sequence[str] | None = None,
    n_pairs: int = 4,
    features: FeatureConfig | None = None,
) -> Path | None:
    """Save :func:`confused_pairs_figure` (``evaluate`` writes ``confused_pairs.png``).

    Parameters
    ----------
    true_labels, predicted, waveforms, sample_rate, captions, n_pairs, features
        As for :func:`confused_pairs_figure`.
    path : str or Path
        Output image; the format follows the suffix.

    Returns
    -------
    Path or None
        None when there is no error to show; then an old image at ``path`` (from an earlier
        evaluation) is removed, so none is left that contradicts the new results.
    """
    fig = confused_pairs_figure(true_labels, predicted, waveforms, sample_rate, captions, n_pairs, features)
    if fig is None:
        Path(path).unlink(missing_ok=True)
        return None
    return save_figure(fig, path)
