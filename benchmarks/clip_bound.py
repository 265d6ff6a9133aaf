"""Benchmark: the isolated-clip bound of SC12 runs, alone and with their posteriors averaged.

The bound (``benchmarks/export_runtime.py``, point 4) is the share of a run's test commands
named rightly with a score above every wrong command answer's: no detection threshold that lets
no wrong command through finds more of these words on clean clips. Here it is computed with the
runs' PyTorch models (fp32), for each run alone and for the mean of their posteriors, which is
what ``audiorec export RUN --ensemble RUN2`` ships (Lakshminarayanan et al. 2017). The runs must
share the test split (the same corpus and split seed).

Usage::

    .venv/bin/python benchmarks/clip_bound.py runs/sc12_noise4 runs/sc12_noise4_seed1   # into results/clip_bound.*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from _common import relative, save_results


def bound(probs: np.ndarray, labels: list[str], truth: list[str]) -> dict:
    """Accuracy and the isolated-clip bound of one set of posteriors.

    Parameters
    ----------
    probs : np.ndarray [shape=(n_clips, n_classes)]
        Class posteriors, rows summing to 1.
    labels : list of str
        Class names in column order.
    truth : list of str
        Each clip's label.

    Returns
    -------
    dict
        ``accuracy``; ``n_commands`` (clips whose label the detector fires on);
        ``detection_rate_above_wrong[k]``, the share of those named rightly above the ``k + 1``-th
        highest score of a wrong command answer (k = 0, 1, 2); ``n_wrong_command_answers``;
        ``wrong_command_scores``, the five highest. Raises nothing; a run without wrong answers
        has every right answer counted.
    """
    from audiorec.streaming import IGNORED_LABELS as ignored

    answers = [labels[i] for i in probs.argmax(1)]
    scores = probs.max(1)
    wrong = sorted((float(s) for a, s, t in zip(answers, scores, truth) if a != t and a not in ignored), reverse=True)
    commands = [(a, s, t) for a, s, t in zip(answers, scores, truth) if t not in ignored]
    rates = [float(np.mean([a == t and s > (wrong[k] if k < len(wrong) else 0.0) for a, s, t in commands])) for k in range(3)]
    return {"accuracy": float(np.mean([a == t for a, t in zip(answers, truth)])), "n_commands": len(commands),
            "detection_rate_above_wrong": rates, "n_wrong_command_answers": len(wrong),
            "wrong_command_scores": [round(s, 4) for s in wrong[:5]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories of one corpus and split")
    parser.add_argument("--results", default="clip_bound", help="results name or path without suffix")
    args = parser.parse_args()

    from audiorec.audio import fit_to_length
    from audiorec.data.dataset import load_waveforms
    from audiorec.data.manifest import read_manifest
    from audiorec.recognize import load_run

    runs = [Path(r) for r in args.runs]
    test = read_manifest(runs[0] / "splits" / "test.jsonl")
    for run in runs[1:]:
        if [u.path for u in read_manifest(run / "splits" / "test.jsonl")] != [u.path for u in test]:
            raise SystemExit(f"{run}: its test split differs from {runs[0]}'s")
    models = [load_run(r) for r in runs]
    if any(m.labels != models[0].labels for m in models):
        raise SystemExit("the runs' labels differ")
    waves = load_waveforms(test, models[0].sample_rate, progress=False)
    clips = np.stack([fit_to_length(w, models[0].clip_samples) for w in waves]).astype(np.float32)
    probs = [np.concatenate([m(clips[i:i + 64]) for i in range(0, len(clips), 64)]) for m in models]
    truth = [u.label for u in test]
    rows = {relative(r): bound(p, models[0].labels, truth) for r, p in zip(runs, probs)}
    if len(runs) > 1:
        rows["mean of the posteriors"] = bound(np.mean(probs, axis=0), models[0].labels, truth)
    lines = ["| model | accuracy | bound | letting 1 / 2 wrong answers through | highest wrong scores |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['accuracy']:.3f} | {100 * r['detection_rate_above_wrong'][0]:.1f}% | "
              f"{100 * r['detection_rate_above_wrong'][1]:.1f}% / {100 * r['detection_rate_above_wrong'][2]:.1f}% | "
              f"{', '.join(f'{s:.2f}' for s in r['wrong_command_scores'][:3])} |" for name, r in rows.items()]
    command = " ".join([".venv/bin/python", "benchmarks/clip_bound.py", *sys.argv[1:]])
    save_results(args.results, {"command": command, "rows": rows}, "\n".join(lines) + f"\n\nCommand: `{command}`.\n")


if __name__ == "__main__":
    main()
