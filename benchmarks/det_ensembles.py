"""Benchmark: detection at <= 1 false accept per hour for models alone and averaged in pairs.

``audiorec export RUN --ensemble RUN2`` averages the class posteriors of several runs, whatever
their front ends. Which pairs are worth shipping is a question for the stream, not for test
accuracy: a detector at a high threshold is decided by the few wrong answers a model is sure of,
and two models help each other only when those are not the same. This script runs each model
once over the stream of ``benchmarks/export_runtime.py`` (posteriors cached as
``<cache>/<name>.npz``), then scores each model alone and the posterior mean of every pair (the
same mean the exported ensemble computes) with ``audiorec.metrics.det_curve`` at each smoothing
window.

Usage::

    .venv/bin/python benchmarks/det_ensembles.py --stream runs/se_sc12_export/stream \\
        --model speech_embedding=runs/se_sc12_export/sc12.onnx --model cnn=runs/zoo3/models/cnn/model.onnx \\
        --name speech_embedding_cnn
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import soundfile as sf

from _common import RESULTS, relative, save_results
from audiorec.data.stream import read_timeline
from audiorec.metrics import best_detection_rate, det_curve
from audiorec.runtime import Recognizer
from audiorec.streaming import StreamingDetector

THRESHOLDS = np.round(np.arange(0.3, 1.0, 0.005), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", required=True, help="an 'audiorec data stream' folder (stream.wav, timeline.csv)")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL.onnx",
                        help="a model to score, alone and averaged with each other one (repeat)")
    parser.add_argument("--name", required=True, help="results go to benchmarks/results/det_ensembles_NAME.{json,md}")
    parser.add_argument("--cache", default="runs/det_ensembles", help="folder for the models' posteriors on the stream")
    parser.add_argument("--smooth-ms", default="500,800", help="comma-separated smoothing windows in ms")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    stream = Path(args.stream)
    wave, rate = sf.read(stream / "stream.wav", dtype="float32")
    timeline = read_timeline(stream / "timeline.csv")
    models = dict(m.split("=", 1) for m in args.model)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    posteriors, labels = {}, None
    for name, path in models.items():
        recognizer = Recognizer.load(path, threads=args.threads)
        if labels is not None and recognizer.labels != labels:
            raise SystemExit(f"{path}: labels {recognizer.labels} differ from the first model's {labels}")
        labels, detector = recognizer.labels, StreamingDetector(recognizer)
        saved = cache / f"{name}.npz"
        if saved.is_file():
            posteriors[name] = np.load(saved)["probs"]
        else:
            times, posteriors[name] = detector.posteriors(wave, rate)
            np.savez(saved, times=times, probs=posteriors[name])
        print(f"{name}: posteriors of {len(posteriors[name])} windows", flush=True)

    combos = [(n,) for n in models] + list(itertools.combinations(models, 2))
    rows = []
    for combo in combos:
        probs = np.mean([posteriors[n] for n in combo], axis=0)
        times = np.arange(len(probs))  # only the count is read; times come from the window index
        row = {"models": list(combo)}
        for smooth_ms in [float(s) for s in args.smooth_ms.split(",")]:
            curve = det_curve(times, probs, StreamingDetector(recognizer, smooth_ms=smooth_ms), timeline,
                              len(wave) / rate, THRESHOLDS)
            one, eight = best_detection_rate(curve, 1.0), best_detection_rate(curve, 8.0)
            row[f"{smooth_ms:g}ms"] = {
                "at_1_fa_per_hour": one and {k: one[k] for k in ("detection_rate", "threshold")},
                "at_8_fa_per_hour": eight and {k: eight[k] for k in ("detection_rate", "threshold")}}
        rows.append(row)
        print(row, flush=True)

    windows = [k for k in rows[0] if k != "models"]
    cell = lambda r: f"{100 * r['detection_rate']:.1f}% ({r['threshold']:g})" if r else "-"
    header = "| models | " + " | ".join(f"<= 1 FA/h, {w} | <= 8 FA/h, {w}" for w in windows) + " |"
    table = "\n".join([header, "|---" * (1 + 2 * len(windows)) + "|"] + [
        f"| {' + '.join(r['models'])} | "
        + " | ".join(f"{cell(r[w]['at_1_fa_per_hour'])} | {cell(r[w]['at_8_fa_per_hour'])}" for w in windows) + " |"
        for r in rows])
    command = " ".join(["`.venv/bin/python benchmarks/det_ensembles.py", f"--stream {relative(stream)}",
                        *[f"--model {n}={relative(p)}" for n, p in models.items()], f"--name {args.name}`"])
    table += (f"\n\nDetection rate (threshold) at the best threshold with at most 1 and 8 false accepts per hour; "
              f"pairs are the mean of the two models' posteriors. Stream: `{relative(stream)}`. Command: {command}.\n")
    save_results(RESULTS / f"det_ensembles_{args.name}",
                 {"stream": relative(stream), "models": {n: relative(p) for n, p in models.items()}, "rows": rows}, table)


if __name__ == "__main__":
    main()
