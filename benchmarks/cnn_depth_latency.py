"""Benchmark: ONNX Runtime latency of the CNN's sizes side by side: three stages, the four-stage
default, and the narrow four-stage network under 30k parameters (``model.channels=[8,16,24,32]``).

Builds each network with the default front end (untrained weights: latency does not depend on
them), exports it as ``audiorec export`` does (:func:`audiorec.export.export_onnx`) and times
one 1 s clip, batch 1, one thread (:func:`audiorec.bench.median_latency_ms`, median of 500 calls
after 50 warm-up calls), three rounds interleaved so both see the same machine load.

Usage::

    .venv/bin/python benchmarks/cnn_depth_latency.py
"""

from __future__ import annotations

import tempfile

import numpy as np

from audiorec.bench import median_latency_ms
from audiorec.config import load_config
from audiorec.export import export_onnx
from audiorec.models import build_model, count_parameters
from audiorec.runtime import OnnxModel

CHANNELS = {"three stages [16,32,64]": "[16,32,64]", "four stages [16,32,64,128]": "[16,32,64,128]",
            "four narrow stages [8,16,24,32]": "[8,16,24,32]"}


def main() -> None:
    clip = np.random.default_rng(0).normal(0, 0.1, (1, 16_000)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for i, (name, channels) in enumerate(CHANNELS.items()):
            model = build_model(load_config(None, [f"model.channels={channels}"]), 12).eval()
            print(f"{name}: {count_parameters(model) / 1000:.1f}k parameters (12 classes)", flush=True)
            path = export_onnx(model, f"{tmp}/m{i}.onnx", [str(k) for k in range(12)], 16_000, 16_000)
            models[name] = OnnxModel(path, threads=1)
        for round_ in range(3):
            times = {name: median_latency_ms(m, clip, n=500, warmup=50) for name, m in models.items()}
            print(f"round {round_ + 1}: " + ", ".join(f"{name} {ms:.3f} ms" for name, ms in times.items()), flush=True)


if __name__ == "__main__":
    main()
