"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix; and keyword
detection metrics on a stream: detection rate, false accepts per hour, the DET curve.

Classification metrics are computed with scikit-learn (``sklearn.metrics``) so the definitions are
the standard ones; detection metrics need numpy only.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from audiorec.run import atomic_write_text

if TYPE_CHECKING:
    from audiorec.streaming import StreamingDetector


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
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # training extra; detection metrics need numpy only

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


DETECTION_TOLERANCE_S = 0.5  # a detection this far outside a word's speech still counts for it
NEGATIVE_LABELS = ("_silence_", "_unknown_")  # timeline labels that are not keywords


def detection_metrics(detections: Sequence, timeline: Sequence, duration_s: float,
                      tolerance_s: float = DETECTION_TOLERANCE_S, negative_labels: Sequence[str] = NEGATIVE_LABELS) -> dict:
    """Score keyword detections in a stream against its ground-truth timeline.

    Detections are taken in time order. One is a hit when its label equals that of a keyword
    event not yet matched whose interval ``[start_s - tolerance_s, end_s + tolerance_s]``
    contains its time (the nearest such event by centre, when several do); every other
    detection is a false accept: a wrong label or a second detection on a keyword, a detection
    on a negative word (``_unknown_``), or one in the background. Keyword events without a hit
    are misses.

    Parameters
    ----------
    detections : sequence of Detection
        Anything with ``time_s`` (seconds from the stream start) and ``label``.
    timeline : sequence of TimelineEvent
        Anything with ``start_s``, ``end_s`` (seconds) and ``label``
        (:func:`audiorec.data.stream.read_timeline`).
    duration_s : float > 0
        Length of the stream in seconds; false accepts per hour are counted over all of it.
    tolerance_s : float >= 0
        Seconds a detection may fall before a word's onset or after its offset.
    negative_labels : sequence of str
        Timeline labels that are not keywords.

    Returns
    -------
    dict
        ``detection_rate`` (hits / n_keywords; 0 without keywords), ``n_keywords``, ``hits``,
        ``misses``, ``false_accepts``, ``false_accepts_per_hour``, ``false_accepts_by_cause``
        (``keyword``: wrong label or repeated on a keyword; ``negative_word``; ``background``),
        ``per_label`` (label -> ``n``, ``hits``, ``false_accepts``), ``false_accept_list``
        (each false accept in time order: ``time_s``, ``label``, ``score`` when the detection has
        one, ``cause``, and ``nearest``, the timeline word nearest to it: ``label``, ``start_s``,
        ``end_s`` and, when the event has one, its source ``path``; or None on an empty
        timeline), ``duration_s``, ``tolerance_s``.

    Raises
    ------
    ValueError
        ``duration_s`` not > 0 or ``tolerance_s`` < 0.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s={duration_s!r}: must be > 0")
    if not tolerance_s >= 0:
        raise ValueError(f"tolerance_s={tolerance_s!r}: must be >= 0")
    keywords = [e for e in timeline if e.label not in negative_labels]
    negatives = [e for e in timeline if e.label in negative_labels]
    starts = np.array([e.start_s for e in keywords], float) - tolerance_s
    ends = np.array([e.end_s for e in keywords], float) + tolerance_s
    centres = (starts + ends) / 2
    labels = np.array([e.label for e in keywords], dtype=object)
    matched = np.zeros(len(keywords), bool)
    neg_starts = np.array([e.start_s for e in negatives], float) - tolerance_s
    neg_ends = np.array([e.end_s for e in negatives], float) + tolerance_s
    per_label = {label: {"n": int(np.sum(labels == label)), "hits": 0, "false_accepts": 0} for label in sorted(set(labels))}
    causes = {"keyword": 0, "negative_word": 0, "background": 0}
    everything = sorted(timeline, key=lambda e: e.start_s)
    all_starts = np.array([e.start_s for e in everything], float)
    all_ends = np.array([e.end_s for e in everything], float)
    false_accept_list = []
    for d in sorted(detections, key=lambda d: d.time_s):
        inside = (starts <= d.time_s) & (d.time_s <= ends)
        candidates = np.flatnonzero(inside & (labels == d.label) & ~matched)
        entry = per_label.setdefault(d.label, {"n": 0, "hits": 0, "false_accepts": 0})
        if len(candidates):
            matched[candidates[np.argmin(np.abs(centres[candidates] - d.time_s))]] = True
            entry["hits"] += 1
            continue
        entry["false_accepts"] += 1
        if inside.any():
            cause = "keyword"
        elif np.any((neg_starts <= d.time_s) & (d.time_s <= neg_ends)):
            cause = "negative_word"
        else:
            cause = "background"
        causes[cause] += 1
        nearest = None
        if everything:  # distance to each word's interval, 0 inside it
            e = everything[int(np.argmin(np.maximum(all_starts - d.time_s, 0) + np.maximum(d.time_s - all_ends, 0)))]
            nearest = {"label": e.label, "start_s": round(float(e.start_s), 3), "end_s": round(float(e.end_s), 3)}
            if getattr(e, "path", ""):  # the recording the word came from: which speaker's word fooled the model
                nearest["path"] = e.path
        score = getattr(d, "score", None)
        false_accept_list.append({"time_s": round(float(d.time_s), 3), "label": d.label,
                                  "score": None if score is None else round(float(score), 4),
                                  "cause": cause, "nearest": nearest})
    hits, false_accepts = int(matched.sum()), sum(causes.values())
    return {
        "detection_rate": hits / len(keywords) if keywords else 0.0,
        "n_keywords": len(keywords),
        "hits": hits,
        "misses": len(keywords) - hits,
        "false_accepts": false_accepts,
        "false_accepts_per_hour": false_accepts * 3600.0 / duration_s,
        "false_accepts_by_cause": causes,
        "per_label": per_label,
        "false_accept_list": false_accept_list,
        "duration_s": float(duration_s),
        "tolerance_s": float(tolerance_s),
    }


# Thresholds of a DET curve: every 0.01 from 0.3 (below, wrong labels cross first and detect less),
# and every 0.001 above 0.99, where the last false accepts go.
DET_THRESHOLDS = tuple(np.round(np.concatenate([np.arange(0.3, 0.99, 0.01), np.arange(0.99, 1.0, 0.001)]), 3).tolist())
DET_COLUMNS = ("threshold", "miss_rate", "false_accepts_per_hour", "detection_rate")  # a DET curve's rows and CSV header


def det_curve(times_s: np.ndarray, probs: np.ndarray, detector: "StreamingDetector", timeline: Sequence,
              duration_s: float, thresholds: Sequence[float], tolerance_s: float = DETECTION_TOLERANCE_S) -> list[dict]:
    """Detection error trade-off: miss rate against false accepts per hour, one point per threshold.

    The posteriors are computed once (:meth:`StreamingDetector.posteriors`) and thresholded
    again for every point, with the detector's smoothing and refractory period; the detector's
    ignored labels are the timeline's negatives.

    Parameters
    ----------
    times_s : np.ndarray [shape=(n_windows,)]
    probs : np.ndarray [shape=(n_windows, n_classes)]
        Raw window posteriors of the stream, from :meth:`StreamingDetector.posteriors`.
    detector : StreamingDetector
    timeline : sequence of TimelineEvent
    duration_s : float > 0
        Seconds of the stream.
    thresholds : sequence of float in (0, 1]
    tolerance_s : float >= 0
        As for :func:`detection_metrics`.

    Returns
    -------
    list of dict
        One per threshold, in the order given, with the keys of :data:`DET_COLUMNS`:
        ``threshold``, ``miss_rate`` (missed keywords / keywords), ``false_accepts_per_hour``,
        ``detection_rate`` (1 - miss rate).

    Raises
    ------
    ValueError
        As :func:`detection_metrics` and :meth:`StreamingDetector.detections_from_posteriors`.
    """
    rows = []
    for threshold in thresholds:
        found = detector.detections_from_posteriors(times_s, probs, threshold)
        m = detection_metrics(found, timeline, duration_s, tolerance_s, negative_labels=detector.ignore)
        rows.append({"threshold": float(threshold), "miss_rate": 1.0 - m["detection_rate"],
                     "false_accepts_per_hour": m["false_accepts_per_hour"], "detection_rate": m["detection_rate"]})
    return rows


def best_detection_rate(rows: Sequence[dict], max_false_accepts_per_hour: float = 1.0) -> dict | None:
    """The operating point of a DET curve with the highest detection rate within a false-accept budget.

    Parameters
    ----------
    rows : sequence of dict
        :func:`det_curve` rows.
    max_false_accepts_per_hour : float
        The budget; the usual figure for keyword spotters is 1 false accept per hour.

    Returns
    -------
    dict or None
        The row (``threshold``, ``miss_rate``, ``false_accepts_per_hour``, ``detection_rate``), or
        None when no threshold stays within the budget.
    """
    allowed = [r for r in rows if r["false_accepts_per_hour"] <= max_false_accepts_per_hour]
    return max(allowed, key=lambda r: (r["detection_rate"], -r["threshold"])) if allowed else None


def write_det_curve_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write DET curve rows (:func:`det_curve`) as CSV with :data:`DET_COLUMNS` as header, atomically.

    Parameters
    ----------
    rows : sequence of dict
    path : str or Path

    Returns
    -------
    Path
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(DET_COLUMNS)
    for row in rows:
        writer.writerow([f"{row[k]:.6g}" for k in DET_COLUMNS])
    return atomic_write_text(path, text.getvalue())


def _edit_counts(reference: str, hypothesis: str) -> dict:
    """Word and character edit counts of one utterance; an empty reference makes every
    hypothesis word (character) an insertion, which jiwer before 4.0 refuses to count."""
    import jiwer  # training extra

    if not reference.strip():
        words = hypothesis.split()
        return {"substitutions": 0, "deletions": 0, "insertions": len(words), "n_words": 0,
                "char_substitutions": 0, "char_deletions": 0, "char_insertions": len(hypothesis.strip()), "n_chars": 0}
    w = jiwer.process_words(reference, hypothesis)
    c = jiwer.process_characters(reference, hypothesis)
    return {"substitutions": w.substitutions, "deletions": w.deletions, "insertions": w.insertions,
            "n_words": w.substitutions + w.deletions + w.hits,
            "char_substitutions": c.substitutions, "char_deletions": c.deletions, "char_insertions": c.insertions,
            "n_chars": c.substitutions + c.deletions + c.hits}


def _rate(errors: int, n: int) -> float:
    # With nothing to recognise, each inserted word counts as one error (jiwer 4's convention).
    return errors / max(n, 1)


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    """Word and character error rates of a corpus, with the edit counts and per-utterance figures.

    The error rate is the Levenshtein distance between hypothesis and reference, (S + D + I) / N,
    with S substitutions, D deletions, I insertions and N reference tokens, summed over the corpus
    before dividing: a long utterance weighs more than a short one, unlike the mean of the
    per-utterance rates. Words are split on whitespace. Characters are those of the text with
    leading and trailing space removed and the spaces between words kept, so a missing space
    counts as a deletion (jiwer's default). The texts are compared as given: normalise both
    sides the same way first.

    An empty (or all-space) reference has N = 0: every hypothesis word is an insertion (every
    character, for the CER), and its per-utterance rate is the error count itself, 0 for an
    empty hypothesis. The corpus rates use the same rule when all references are empty.

    Parameters
    ----------
    references, hypotheses : sequence of str, same length
        Reference transcripts and recognised texts, one per utterance.

    Returns
    -------
    dict
        ``wer``, ``cer`` (fractions, may exceed 1), ``n_words``, ``n_chars`` (reference tokens),
        ``substitutions``, ``deletions``, ``insertions`` (word level), ``char_substitutions``,
        ``char_deletions``, ``char_insertions``, ``n_utterances``, and ``per_utterance``: one dict
        per utterance, in order, with ``reference``, ``hypothesis``, ``wer``, ``cer``,
        ``substitutions``, ``deletions``, ``insertions`` (words) and ``n_words``.

    Raises
    ------
    ValueError
        Empty or unequal inputs (the message gives both lengths).

    References
    ----------
    Levenshtein 1966; the counts are jiwer's (``jiwer.process_words``, ``jiwer.process_characters``),
    as in NIST's sclite.

    Examples
    --------
    >>> m = error_rates(["the cat sat", "hello"], ["the bat sat down", "hello"])
    >>> m["wer"], m["substitutions"], m["insertions"], m["n_words"]
    (0.5, 1, 1, 4)
    """
    if len(references) == 0 or len(references) != len(hypotheses):
        raise ValueError(f"need equal, non-empty references and hypotheses, got {len(references)} and {len(hypotheses)}")
    counts = [_edit_counts(r, h) for r, h in zip(references, hypotheses)]
    totals = {key: sum(c[key] for c in counts) for key in counts[0]}
    per_utterance = [
        {"reference": r, "hypothesis": h,
         "wer": _rate(c["substitutions"] + c["deletions"] + c["insertions"], c["n_words"]),
         "cer": _rate(c["char_substitutions"] + c["char_deletions"] + c["char_insertions"], c["n_chars"]),
         "substitutions": c["substitutions"], "deletions": c["deletions"], "insertions": c["insertions"],
         "n_words": c["n_words"]}
        for r, h, c in zip(references, hypotheses, counts)
    ]
    return {
        "wer": _rate(totals["substitutions"] + totals["deletions"] + totals["insertions"], totals["n_words"]),
        "cer": _rate(totals["char_substitutions"] + totals["char_deletions"] + totals["char_insertions"], totals["n_chars"]),
        **totals,
        "n_utterances": len(references),
        "per_utterance": per_utterance,
    }
