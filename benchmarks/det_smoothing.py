"""Benchmark: detection at <= 1 false accept per hour against the detector's smoothing window.

``audiorec listen`` averages each command's posterior over ``--smooth-ms`` before the threshold
(Chen, Parada & Heigold 2014). The default, 500 ms, was chosen on the CNN. This script takes the
stream that ``benchmarks/export_runtime.py`` built and scored for a model, computes the raw
window posteriors once (cached as ``posteriors.npz`` in that folder), and re-scores them with
``audiorec.metrics.det_curve`` for each smoothing window.

Usage::

    .venv/bin/python benchmarks/det_smoothing.py runs/se_sc12_export --name speech_embedding
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("export_dir", help="an export_runtime.py --out folder (model sc12.onnx, stream/)")
    parser.add_argument("--name", required=True, help="results go to benchmarks/results/det_smoothing_NAME.{json,md}")
    parser.add_argument("--smooth-ms", default="0,100,200,300,500,800", help="comma-separated windows in ms")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    folder = Path(args.export_dir)
    recognizer = Recognizer.load(folder / "sc12.onnx", threads=args.threads)
    wave, rate = sf.read(folder / "stream" / "stream.wav", dtype="float32")
    timeline = read_timeline(folder / "stream" / "timeline.csv")
    cache = folder / "posteriors.npz"
    if cache.is_file():
        saved = np.load(cache)
        times, probs = saved["times"], saved["probs"]
    else:
        times, probs = StreamingDetector(recognizer).posteriors(wave, rate)
        np.savez(cache, times=times, probs=probs)
    rows = []
    for smooth_ms in [float(s) for s in args.smooth_ms.split(",")]:
        curve = det_curve(times, probs, StreamingDetector(recognizer, smooth_ms=smooth_ms), timeline, len(wave) / rate, THRESHOLDS)
        one, eight = best_detection_rate(curve, 1.0), best_detection_rate(curve, 8.0)
        rows.append({"smooth_ms": smooth_ms,
                     "at_1_fa_per_hour": one and {k: one[k] for k in ("detection_rate", "threshold")},
                     "at_8_fa_per_hour": eight and {k: eight[k] for k in ("detection_rate", "threshold")}})
        print(rows[-1], flush=True)
    cell = lambda r: f"{100 * r['detection_rate']:.1f}% (threshold {r['threshold']:g})" if r else "-"
    table = "\n".join(["| smoothing | detection at <= 1 FA/h | at <= 8 FA/h |", "|---|---|---|"]
                      + [f"| {r['smooth_ms']:g} ms | {cell(r['at_1_fa_per_hour'])} | {cell(r['at_8_fa_per_hour'])} |" for r in rows])
    table += (f"\n\nModel: `{relative(folder / 'sc12.onnx')}`, its 1-hour stream. Command: `.venv/bin/python "
              f"benchmarks/det_smoothing.py {relative(folder)} --name {args.name}`.\n")
    save_results(RESULTS / f"det_smoothing_{args.name}", {"export_dir": relative(folder), "rows": rows}, table)


if __name__ == "__main__":
    main()
