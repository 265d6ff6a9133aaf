"""Evaluation of a command recognizer on labelled clips: metrics, predictions, confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from audiorec.data.manifest import Utterance
from audiorec.metrics import classification_metrics, format_confusion_matrix
from audiorec.plots import plot_confusion_matrix
from audiorec.recognize import Recognizer
from audiorec.run import atomic_write_text


def evaluate(
    recognizer: Recognizer,
    utterances: Sequence[Utterance],
    waveforms: Sequence[np.ndarray],
    out_dir: str | Path | None = None,
    prefix: str = "",
) -> dict:
    """Recognise labelled clips and score them.

    Parameters
    ----------
    recognizer : Recognizer
    utterances : sequence of Utterance
        With ``label`` set; labels the model does not know count as errors.
    waveforms : sequence of np.ndarray [shape=(n_samples,)]
        The decoded clips, same order as ``utterances``.
    out_dir : str or Path, optional
        Where to write ``{prefix}predictions.jsonl``, ``{prefix}confusion_matrix.txt`` and
        ``{prefix}confusion_matrix.png``.
    prefix : str
        File-name prefix for the outputs.

    Returns
    -------
    dict
        :func:`~audiorec.metrics.classification_metrics` of the clips (``accuracy``, ``n``,
        ``macro_f1``, ``per_class``, ``confusion_matrix``) plus ``labels``.

    Raises
    ------
    ValueError
        No clips, or an utterance without a label.
    """
    if not utterances:
        raise ValueError("nothing to evaluate: no clips")
    unlabeled = [u.path for u in utterances if u.label is None]
    if unlabeled:
        raise ValueError(f"{unlabeled[0]}: no label to evaluate against")
    labels = list(recognizer.labels)
    extra = sorted({u.label for u in utterances} - set(labels))
    all_labels = labels + extra  # unknown labels get rows of their own, so they count as errors
    results = recognizer.recognize_batch(list(waveforms), [u.path for u in utterances])
    y_true = [all_labels.index(u.label) for u in utterances]
    y_pred = [all_labels.index(r.label) for r in results]
    metrics = classification_metrics(y_true, y_pred, all_labels)
    metrics["labels"] = all_labels
    if out_dir is not None:
        out_dir = Path(out_dir)
        lines = [
            json.dumps({"path": u.path, "label": u.label, "speaker": u.speaker, "predicted": r.label, "score": round(r.score, 5)})
            for u, r in zip(utterances, results)
        ]
        atomic_write_text(out_dir / f"{prefix}predictions.jsonl", "\n".join(lines) + "\n")
        atomic_write_text(
            out_dir / f"{prefix}confusion_matrix.txt",
            format_confusion_matrix(metrics["confusion_matrix"], all_labels) + "\n",
        )
        plot_confusion_matrix(
            metrics["confusion_matrix"], all_labels, out_dir / f"{prefix}confusion_matrix.png",
            title=f"accuracy {metrics['accuracy']:.3f} on {metrics['n']} clips",
        )
    return metrics
