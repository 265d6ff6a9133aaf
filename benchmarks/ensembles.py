"""Benchmark: what averaging posteriors buys on unseen speakers, over models and over speeds.

Given one or more ``audiorec cv`` outputs trained on the same corpus (different seeds or
recipes), recognises each fold's test clips with each output's fold model, and averages the
class posteriors

- over the models of the outputs (a model ensemble: Hansen & Salamon 1990; Lakshminarayanan
  et al. 2017 for networks trained from different seeds), and
- over speed-perturbed copies of the clips (test-time augmentation): resampling with libsoxr,
  as the training's speed perturbation does (Ko et al. 2015; a factor of 1.1 makes the clip 10%
  shorter and 10% higher, pitch and formants together), a cheap stand-in for vocal tract length
  normalisation (Lee & Rose 1998) that needs no per-speaker warp.

Writes ``benchmarks/results/<name>.{json,md}``: per fold and averaged over the folds (weighted
by test clips), the accuracy of each output alone, of each output with each speed ensemble, and
of all the outputs together.

Usage::

    .venv/bin/python benchmarks/ensembles.py runs/bench/fsdd_loso [runs/fsdd_loso_seed1 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from _common import posteriors_under, save_results
from audiorec.audio import resample

SPEEDS = {"0.93, 1, 1.07": (0.93, 1.0, 1.07), "0.9, 1, 1.1": (0.9, 1.0, 1.1)}


def _speed(rate: float):
    return lambda w, sr: w if rate == 1.0 else resample(w, round(sr * rate), sr)


def measure_fold(outputs: list[Path], fold: str, speeds: bool) -> dict:
    """Accuracy on one fold's test split of each output, its speed ensembles and all outputs together."""
    factors = sorted({f for fs in SPEEDS.values() for f in fs}) if speeds else [1.0]
    posteriors, truth = {}, None
    for out in outputs:
        test, probs, labels = posteriors_under(out / fold, {f"{r:g}": _speed(r) for r in factors})
        fold_truth = np.array([labels.index(u.label) for u in test])
        if truth is not None and not np.array_equal(truth, fold_truth):
            raise SystemExit(f"{out / fold} has another test split than {outputs[0] / fold}")
        truth, posteriors[out.name] = fold_truth, probs
    accuracy = {}
    for name, probs in posteriors.items():
        accuracy[name] = float(np.mean(probs["1"].argmax(1) == truth))
        if speeds:
            for label, fs in SPEEDS.items():
                mean = np.mean([probs[f"{r:g}"] for r in fs], axis=0)
                accuracy[f"{name}, mean over speeds {label}"] = float(np.mean(mean.argmax(1) == truth))
    if len(outputs) > 1:
        mean = np.mean([probs["1"] for probs in posteriors.values()], axis=0)
        accuracy[f"mean of the {len(outputs)} models"] = float(np.mean(mean.argmax(1) == truth))
    print(fold, json.dumps({k: round(v, 4) for k, v in accuracy.items()}), flush=True)
    return {"fold": fold, "n_test": len(truth), "accuracy": accuracy}


def markdown(rows: list[dict]) -> str:
    """One row per measure, one column per fold, then the mean over folds (weighted by clips) and the worst fold."""
    n = np.array([r["n_test"] for r in rows])
    lines = ["| measure | " + " | ".join(r["fold"].removeprefix("fold_") for r in rows) + " | mean | worst |",
             "|---|" + "---|" * (len(rows) + 2)]
    for name in rows[0]["accuracy"]:
        values = np.array([r["accuracy"][name] for r in rows])
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values)
                     + f" | **{np.sum(values * n) / n.sum():.3f}** | {values.min():.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outputs", nargs="+", type=Path, help="output folders of audiorec cv (fold_<speaker>/ inside)")
    parser.add_argument("--no-speeds", action="store_true", help="skip the speed ensembles (one pass per model)")
    parser.add_argument("--name", default="ensembles", help="results/<name>.{json,md} (default: ensembles)")
    args = parser.parse_args()
    folds = sorted({p.name for p in args.outputs[0].glob("fold_*") if (p / "metrics.json").exists()})
    for out in args.outputs[1:]:
        folds = [f for f in folds if (out / f / "metrics.json").exists()]
    if not folds:
        raise SystemExit("no fold is finished in every output given")
    rows = [measure_fold(args.outputs, fold, not args.no_speeds) for fold in folds]
    save_results(args.name, rows, markdown(rows))


if __name__ == "__main__":
    main()
