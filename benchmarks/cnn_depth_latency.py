"""Benchmark: ONNX Runtime latency of the CNN's sizes side by side: three stages, the four-stage
default, and the narrow four-stage network under 30k parameters (``model.channels=[8,16,24,32]``).

Builds each network with the default front end (untrained weights: latency does not depend on
them), exports it as ``audiorec export`` does (:func:`audiorec.export.export_onnx`) and times
one 1 s clip, batch 1, one thread (:func:`audiorec.bench.median_latency_ms`, median of 500 calls
after 50 warm-up calls), three rounds interleaved so all see the same machine load; each also
quantised to int8 as ``audiorec export --int8`` does (:func:`audiorec.export.quantize_int8`, calibrated on noise).

Writes ``benchmarks/results/cnn_depth_latency.{json,md}``: each network's median over the rounds,
the rounds themselves, and the machine (CPU model, cores, PyTorch's vector instructions), since
these latencies differ between the hosts this shared machine runs on.

Usage::

    .venv/bin/python benchmarks/cnn_depth_latency.py
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np

from _common import machine, save_results

from audiorec.bench import median_latency_ms
from audiorec.config import load_config
from audiorec.export import export_onnx, quantize_int8
from audiorec.models import build_model, count_parameters
from audiorec.runtime import OnnxModel

CHANNELS = {"three stages [16,32,64]": "[16,32,64]", "four stages [16,32,64,128]": "[16,32,64,128]",
            "four narrow stages [8,16,24,32]": "[8,16,24,32]"}


def main() -> None:
    clip = np.random.default_rng(0).normal(0, 0.1, (1, 16_000)).astype(np.float32)
    calibration = np.random.default_rng(1).normal(0, 0.1, (32, 16_000)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        models, parameters = {}, {}
        for i, (name, channels) in enumerate(CHANNELS.items()):
            model = build_model(load_config(None, [f"model.channels={channels}"]), 12).eval()
            parameters[name] = count_parameters(model)
            print(f"{name}: {parameters[name] / 1000:.1f}k parameters (12 classes)", flush=True)
            path = export_onnx(model, f"{tmp}/m{i}.onnx", [str(k) for k in range(12)], 16_000, 16_000)
            models[name] = OnnxModel(path, threads=1)
            models[f"{name} int8"] = OnnxModel(quantize_int8(path, f"{tmp}/m{i}.int8.onnx", calibration), threads=1)
        rounds = []
        for round_ in range(3):
            rounds.append({name: median_latency_ms(m, clip, n=500, warmup=50) for name, m in models.items()})
            print(f"round {round_ + 1}: " + ", ".join(f"{name} {ms:.3f} ms" for name, ms in rounds[-1].items()), flush=True)
    median = {name: float(np.median([r[name] for r in rounds])) for name in models}
    results = {"command": " ".join([".venv/bin/python", "benchmarks/cnn_depth_latency.py", *sys.argv[1:]]),
               "machine": machine(), "parameters": parameters, "median_ms": median, "rounds_ms": rounds}
    rows = "\n".join(f"| {name} | {parameters[name] / 1000:.1f}k | {median[name]:.2f} ms | {median[name + ' int8']:.2f} ms |"
                     for name in parameters)
    table = (f"| network (untrained, 12 classes) | parameters | ONNX fp32 | ONNX int8 |\n"
             f"|---|---|---|---|\n{rows}\n\nMedian latency of 500 calls, 1 s clip, 1 thread, batch 1, over three interleaved rounds. Machine: {results['machine']}. Command: `{results['command']}`.\n")
    save_results("cnn_depth_latency", results, table)


if __name__ == "__main__":
    main()
