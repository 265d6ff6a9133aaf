"""Evaluation on held-out data: a command recognizer on labelled clips (metrics, predictions,
confusion matrix), a speech recognizer on transcribed utterances (WER, CER, transcripts)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from audiorec.data.manifest import Utterance
from audiorec.metrics import classification_metrics, error_rates, format_confusion_matrix
from audiorec.plots import plot_confused_pairs, plot_confusion_matrix
from audiorec.runtime import Recognizer, Transcriber
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
        Where to write ``{prefix}predictions.jsonl``, ``{prefix}confusion_matrix.txt``,
        ``{prefix}confusion_matrix.png`` and, when some clips are misrecognised,
        ``{prefix}confused_pairs.png`` (the commonest errors with example spectrograms).
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
        plot_confused_pairs([u.label for u in utterances], [r.label for r in results], waveforms, recognizer.sample_rate,
                            out_dir / f"{prefix}confused_pairs.png", [Path(u.path).name for u in utterances],
                            features=recognizer.config.features if recognizer.config else None)
    return metrics


def evaluate_transcripts(
    transcriber: Transcriber,
    utterances: Sequence[Utterance],
    waveforms: Sequence[np.ndarray],
    out_dir: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """Transcribe utterances one at a time and score the text against their transcripts.

    Parameters
    ----------
    transcriber : Transcriber
    utterances : sequence of Utterance
        With ``text`` set (normalised at import).
    waveforms : sequence of np.ndarray [shape=(n_samples,)]
        The decoded utterances at the transcriber's rate, same order.
    out_dir : str or Path, optional
        Where to write ``transcripts.jsonl``: per utterance the path, speaker, reference,
        hypothesis, its word error counts and the word timings.
    progress : bool

    Returns
    -------
    dict
        :func:`~audiorec.metrics.error_rates` totals (``wer``, ``cer``, ``n_words``, ``n_chars``,
        ``substitutions``, ``deletions``, ``insertions``, ``n_utterances``, ...) without the
        per-utterance list, plus ``rtf``: seconds of computation per second of audio, greedy
        decoding included (real-time factor; below 1 is faster than real time).

    Raises
    ------
    ValueError
        No utterances, or one without a transcript.
    """
    if not utterances:
        raise ValueError("nothing to evaluate: no utterances")
    missing = [u.path for u in utterances if not u.text]
    if missing:
        raise ValueError(f"{missing[0]}: no transcript to evaluate against")
    results, compute_s = [], 0.0
    for u, wave in tqdm(list(zip(utterances, waveforms)), desc="transcribe", unit="utt", disable=not progress):
        started = time.perf_counter()
        results.append(transcriber.transcribe(wave, path=u.path))
        compute_s += time.perf_counter() - started
    rates = error_rates([u.text for u in utterances], [r.text for r in results])
    per_utterance = rates.pop("per_utterance")
    rates["rtf"] = round(compute_s / max(1e-9, sum(len(w) for w in waveforms) / transcriber.sample_rate), 5)
    if out_dir is not None:
        lines = [
            json.dumps({"path": u.path, "speaker": u.speaker, **scores, "words": r.to_dict()["words"]}, ensure_ascii=False)
            for u, r, scores in zip(utterances, results, per_utterance)
        ]
        atomic_write_text(Path(out_dir) / "transcripts.jsonl", "\n".join(lines) + "\n")
    return rates


def evaluate_noise(
    recognizer: Recognizer,
    utterances: Sequence[Utterance],
    waveforms: Sequence[np.ndarray],
    noises: Sequence[tuple[str, np.ndarray]],
    snrs_db: Sequence[float],
    out_dir: str | Path | None = None,
    seed: int = 0,
) -> dict:
    """Accuracy on clean clips and on the same clips mixed with noise at each SNR.

    Each clip is given one noise recording (round robin over a seeded shuffle of the clips, so
    every recording covers an equal share) and one excerpt of it at a seeded random offset; the
    same excerpt is mixed at every SNR, so the accuracies differ only by the noise level.

    Parameters
    ----------
    recognizer : Recognizer
    utterances : sequence of Utterance
        With labels.
    waveforms : sequence of np.ndarray [shape=(n_samples,)]
        Decoded clips at the recognizer's sample rate, same order as ``utterances``.
    noises : sequence of (name, np.ndarray)
        From :func:`~audiorec.augment.load_noise`.
    snrs_db : sequence of float
        Signal-to-noise ratios in dB (:func:`~audiorec.augment.mix_at_snr`).
    out_dir : str or Path, optional
        Where to write ``metrics.json``, ``accuracy_vs_snr.png`` and the clean confusion matrix.
    seed : int
        Chooses the noise recording and excerpt of every clip.

    Returns
    -------
    dict
        ``clean_accuracy``, ``n``, ``noises`` (names), ``snr_db`` (list), ``accuracy`` (list,
        one per SNR), ``drop`` (clean minus noisy accuracy, per SNR), ``by_noise`` (name ->
        accuracies per SNR) and ``clean`` (the full :func:`evaluate` metrics).

    Raises
    ------
    ValueError
        No clips, no noises or no SNRs.

    References
    ----------
    The noisy-test protocol of Warden 2018 (Speech Commands background noise) with the
    per-SNR reporting of the Aurora-2 benchmark (Hirsch & Pearce 2000).
    """
    from audiorec.augment import mix_at_snr
    from audiorec.plots import plot_accuracy_vs_snr

    if not noises or not snrs_db:
        raise ValueError("robustness evaluation needs at least one noise recording and one SNR")
    clean = evaluate(recognizer, utterances, waveforms, out_dir, prefix="clean_")
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(utterances), int)
    assignment[rng.permutation(len(utterances))] = np.arange(len(utterances)) % len(noises)
    excerpts = []
    for i, wave in enumerate(waveforms):
        noise = noises[assignment[i]][1]
        start = int(rng.integers(0, max(1, len(noise) - len(wave) + 1)))
        excerpts.append(noise[start : start + len(wave)])
    labels = [u.label for u in utterances]
    accuracy, by_noise = [], {name: [] for name, _ in noises}
    for snr in snrs_db:
        mixed = [mix_at_snr(w, e, snr) for w, e in zip(waveforms, excerpts)]
        results = recognizer.recognize_batch(mixed)
        correct = np.array([r.label == label for r, label in zip(results, labels)])
        accuracy.append(round(float(correct.mean()), 4))
        for k, (name, _) in enumerate(noises):
            chosen = assignment == k
            by_noise[name].append(round(float(correct[chosen].mean()), 4) if chosen.any() else None)
    summary = {
        "clean_accuracy": clean["accuracy"],
        "n": len(utterances),
        "noises": [name for name, _ in noises],
        "snr_db": [float(s) for s in snrs_db],
        "accuracy": accuracy,
        "drop": [round(clean["accuracy"] - a, 4) for a in accuracy],
        "by_noise": by_noise,
        "seed": seed,
        "clean": clean,
    }
    if out_dir is not None:
        from audiorec.run import write_json

        write_json(Path(out_dir) / "metrics.json", summary)
        plot_accuracy_vs_snr(snrs_db, accuracy, clean["accuracy"], Path(out_dir) / "accuracy_vs_snr.png",
                             {k: v for k, v in by_noise.items() if None not in v})
    return summary
