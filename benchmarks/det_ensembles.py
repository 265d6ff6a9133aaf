"""Benchmark: detection at <= 1 false accept per hour for models alone and averaged in pairs.

``audiorec export RUN --ensemble RUN2`` averages the class posteriors of several runs, whatever
their front ends. Which pairs are worth shipping is a question for the stream, not for test
accuracy: a detector at a high threshold is decided by the few wrong answers a model is sure of,
and two models help each other only when those are not the same. This script runs each model
once over each stream of ``benchmarks/export_runtime.py`` or ``audiorec data stream``
(posteriors cached as ``<cache>/<stream>/<name>.npz``), then scores each model alone and the
posterior mean of every pair (the same mean the exported ensemble computes) with
``audiorec.metrics.det_curve`` at each smoothing window.

Give ``--stream`` more than once to score the same models on several streams, such as the same
clips placed again with another ``--seed``: the point at 1 false accept per hour is set by two
or three words and moves by several points between placements, so a difference smaller than
that spread is not one. Each cell then lists the streams' detection rates and their mean.

Usage::

    .venv/bin/python benchmarks/det_ensembles.py --stream runs/se_sc12_export/stream [--stream runs/cal/test_seed1] \\
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
    parser.add_argument("--stream", action="append", required=True,
                        help="an 'audiorec data stream' folder (stream.wav, timeline.csv); repeat to score several")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL.onnx",
                        help="a model to score, alone and averaged with each other one (repeat)")
    parser.add_argument("--name", required=True, help="results go to benchmarks/results/det_ensembles_NAME.{json,md}")
    parser.add_argument("--cache", default="runs/det_ensembles", help="folder for the models' posteriors on the stream")
    parser.add_argument("--smooth-ms", default="500,800", help="comma-separated smoothing windows in ms")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    streams = [Path(p) for p in args.stream]
    models = dict(m.split("=", 1) for m in args.model)
    posteriors, audio, labels, recognizer = {}, {}, None, None
    for stream in streams:
        info = sf.info(str(stream / "stream.wav"))
        audio[stream] = (read_timeline(stream / "timeline.csv"), info.frames / info.samplerate)
    waves = {}  # read only for the streams some model has no cached posteriors of
    for name, path in models.items():  # each model loaded once, whatever the number of streams
        recognizer = Recognizer.load(path, threads=args.threads)
        if labels is not None and recognizer.labels != labels:
            raise SystemExit(f"{path}: labels {recognizer.labels} differ from the first model's {labels}")
        labels = recognizer.labels
        for stream in streams:
            saved = Path(args.cache) / relative(stream).strip("/").replace("/", "_") / f"{name}.npz"
            if saved.is_file():
                posteriors[stream, name] = np.load(saved)["probs"]
            else:
                if stream not in waves:
                    waves[stream] = sf.read(stream / "stream.wav", dtype="float32")
                times, posteriors[stream, name] = StreamingDetector(recognizer).posteriors(*waves[stream])
                saved.parent.mkdir(parents=True, exist_ok=True)
                np.savez(saved, times=times, probs=posteriors[stream, name])
            print(f"{relative(stream)} {name}: posteriors of {len(posteriors[stream, name])} windows", flush=True)

    combos = [(n,) for n in models] + list(itertools.combinations(models, 2))
    rows = []
    for combo in combos:
        row = {"models": list(combo)}
        for smooth_ms in [float(s) for s in args.smooth_ms.split(",")]:
            detector = StreamingDetector(recognizer, smooth_ms=smooth_ms)
            per_stream = []
            for stream in streams:
                probs = np.mean([posteriors[stream, n] for n in combo], axis=0)
                timeline, duration_s = audio[stream]
                # only the count of the times is read; times come from the window index
                curve = det_curve(np.arange(len(probs)), probs, detector, timeline, duration_s, THRESHOLDS)
                one, eight = best_detection_rate(curve, 1.0), best_detection_rate(curve, 8.0)
                per_stream.append({
                    "stream": relative(stream),
                    "at_1_fa_per_hour": one and {k: one[k] for k in ("detection_rate", "threshold")},
                    "at_8_fa_per_hour": eight and {k: eight[k] for k in ("detection_rate", "threshold")}})
            row[f"{smooth_ms:g}ms"] = per_stream[0] if len(streams) == 1 else {
                "streams": per_stream,
                **{budget: {"mean_detection_rate": float(np.mean([(p[budget] or {"detection_rate": 0.0})["detection_rate"]
                                                                  for p in per_stream]))}
                   for budget in ("at_1_fa_per_hour", "at_8_fa_per_hour")}}
        rows.append(row)
        print(row, flush=True)

    windows = [k for k in rows[0] if k != "models"]

    def cell(result: dict, budget: str) -> str:
        if len(streams) == 1:
            r = result[budget]
            return f"{100 * r['detection_rate']:.1f}% ({r['threshold']:g})" if r else "-"
        rates = [p[budget]["detection_rate"] if p[budget] else 0.0 for p in result["streams"]]
        return " / ".join(f"{100 * r:.1f}" for r in rates) + f"% (mean {100 * result[budget]['mean_detection_rate']:.1f}%)"

    header = "| models | " + " | ".join(f"<= 1 FA/h, {w} | <= 8 FA/h, {w}" for w in windows) + " |"
    table = "\n".join([header, "|---" * (1 + 2 * len(windows)) + "|"] + [
        f"| {' + '.join(r['models'])} | "
        + " | ".join(f"{cell(r[w], 'at_1_fa_per_hour')} | {cell(r[w], 'at_8_fa_per_hour')}" for w in windows) + " |"
        for r in rows])
    command = " ".join(["`.venv/bin/python benchmarks/det_ensembles.py", *[f"--stream {relative(s)}" for s in streams],
                        *[f"--model {n}={relative(p)}" for n, p in models.items()],
                        f"--smooth-ms {args.smooth_ms}", f"--name {args.name}`"])
    measured = ("Detection rate (threshold) at the best threshold" if len(streams) == 1 else
                "Detection rate on each stream, in the order given, and their mean, at each stream's best threshold")
    table += (f"\n\n{measured} with at most 1 and 8 false accepts per hour; pairs are the mean of the two models' "
              f"posteriors. Streams: {', '.join(f'`{relative(s)}`' for s in streams)}. Command: {command}.\n")
    save_results(RESULTS / f"det_ensembles_{args.name}",
                 {"streams": [relative(s) for s in streams], "models": {n: relative(p) for n, p in models.items()}, "rows": rows},
                 table)


if __name__ == "__main__":
    main()
