"""Benchmark: unsupervised speaker adaptation (AdaBN) on the held-out speakers of ``audiorec cv``.

For every fold of a cross-validation output, the fold's model is adapted to some of the held-out
speaker's clips, without their labels (:func:`audiorec.adapt.adapt_batch_norm`), and both the
adapted and the trained model are scored on the speaker's other clips. Each setting is repeated
over several random draws of the adaptation clips and averaged:

- ``random N``: N clips drawn at random (what ``audiorec cv --adapt-clips N`` does with one draw),
  for each N of ``--clips``;
- ``balanced``: two clips of each class (an enrollment that asks for every command twice);
- ``one class``: 20 clips of a single class, the worst case of a skewed enrollment, with the
  trained statistics replaced (``weight 1``) and half-mixed (``weight 0.5``).

Writes ``benchmarks/results/<name>.{json,md}``: per fold and over the folds (mean accuracy), the
unadapted and adapted accuracy of each setting on the same clips.

Usage::

    .venv/bin/python benchmarks/adaptation.py runs/bench/fsdd_loso [--clips 5,10,20,50] [--draws 5]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _common import relative, save_results
from audiorec.adapt import adaptation_gain, speaker_test_clips


def draws(setting: str, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of one draw of the adaptation clips for ``setting``."""
    if setting.startswith("random "):
        return rng.choice(len(targets), size=int(setting.split()[1]), replace=False)
    if setting.startswith("balanced"):
        return np.concatenate([rng.choice(np.flatnonzero(targets == c), 2, replace=False) for c in np.unique(targets)])
    return rng.choice(np.flatnonzero(targets == rng.choice(np.unique(targets))), 20, replace=False)  # one class


def measure_fold(fold: Path, settings: dict[str, float], n_draws: int) -> dict:
    """Mean over ``n_draws`` draws of :func:`adaptation_gain` for each setting (name -> weight)."""
    predict, clips, targets, speaker = speaker_test_clips(fold)
    result = {"speaker": speaker, "n_clips": int(len(clips))}
    for name, weight in settings.items():
        rng = np.random.default_rng(0)
        gains = [adaptation_gain(predict.model, clips, targets, draws(name, targets, rng), weight=weight)
                 for _ in range(n_draws)]
        result[name] = {key: round(float(np.mean([g[key] for g in gains])), 4) for key in ("accuracy", "unadapted_accuracy")}
        print(f"{speaker}: {name}: {result[name]['unadapted_accuracy']:.4f} -> {result[name]['accuracy']:.4f}", flush=True)
    return result


def markdown(results: dict) -> str:
    settings = [k for k in results["folds"][0] if k not in ("speaker", "n_clips")]
    speakers = [f["speaker"] for f in results["folds"]]
    rows = [f"Speaker adaptation on `{results['cv']}`, mean of {results['draws']} draws; "
            "each cell: unadapted -> adapted accuracy on the clips not adapted to.", "",
            "| adaptation clips | " + " | ".join(speakers) + " | mean |", "|---" * (len(speakers) + 2) + "|"]
    for name in settings:
        cells = [f"{f[name]['unadapted_accuracy']:.3f} -> {f[name]['accuracy']:.3f}" for f in results["folds"]]
        mean = results["mean"][name]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | **{mean['unadapted_accuracy']:.3f} -> {mean['accuracy']:.3f}** |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cv", type=Path, help="an 'audiorec cv' output folder (fold_<speaker>/ run directories)")
    parser.add_argument("--clips", default="5,10,20,50", help="comma-separated numbers of random adaptation clips")
    parser.add_argument("--draws", type=int, default=5, help="random draws per setting and fold")
    parser.add_argument("--name", default="adaptation", help="results file stem")
    args = parser.parse_args()
    folds = sorted(p for p in args.cv.glob("fold_*") if (p / "metrics.json").is_file())
    if not folds:
        raise SystemExit(f"{args.cv} holds no finished fold_<speaker> run")
    settings = {f"random {n}": 1.0 for n in map(int, args.clips.split(","))}
    settings.update({"balanced (2 per class)": 1.0, "one class (20 clips), weight 1": 1.0,
                     "one class (20 clips), weight 0.5": 0.5})
    fold_results = [measure_fold(fold, settings, args.draws) for fold in folds]
    results = {"cv": relative(args.cv), "draws": args.draws, "folds": fold_results,
               "mean": {name: {key: round(float(np.mean([f[name][key] for f in fold_results])), 4)
                               for key in ("accuracy", "unadapted_accuracy")} for name in settings}}
    save_results(args.name, results, markdown(results))


if __name__ == "__main__":
    main()
