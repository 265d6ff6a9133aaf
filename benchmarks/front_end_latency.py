"""Benchmark: the log-mel front end's folded DFT against the windowed-DFT convolution it replaced.

:meth:`audiorec.features.LogMel.mel_power` computes the STFT power of an even-length window by
the twice-folded DFT (a quarter of the multiply-adds, :meth:`~audiorec.features.LogMel.folded_dft`);
setting the module's ``folded`` attribute to False computes the same power with the strided
windowed-DFT convolution (kept for odd windows and a learned kernel). This script builds each
network both ways with the default front end (25 ms Hann window, 10 ms hop, 40 mel bands,
untrained weights: latency does not depend on them), exports it as ``audiorec export`` does
(:func:`audiorec.export.export_onnx`, and :func:`audiorec.export.quantize_int8` for int8) and
times one 1 s clip, batch 1, one thread (:func:`audiorec.bench.median_latency_ms`, median of 500
calls after 50 warm-up calls), three rounds interleaved so both ways see the same machine load.

Rows: the front end alone (its 40 x 101 output averaged over frames, so that it exports as a
classifier of 40 "classes"), the default four-stage ``cnn`` (293k parameters), the narrow one
under 30k (``[8,16,24,32]``) and ``speech_embedding`` (whose pretrained front end's 512-tap STFT
kernel is a window times the DFT, so it folds the same way:
:class:`audiorec.pretrained.SpeechEmbedding`), fp32 and int8; and the log-mel front end in eager
PyTorch on a training batch of 64 clips (one thread), the cost it adds to every training step.

Writes ``benchmarks/results/front_end_latency.{json,md}`` with the machine (CPU model, cores,
PyTorch's vector instructions), since latencies differ between the hosts this machine runs on.

Usage::

    .venv/bin/python benchmarks/front_end_latency.py        # 3 minutes
    .venv/bin/python benchmarks/front_end_latency.py --zoo  # and the zoo's other networks, fp32
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

from _common import machine, save_results

from audiorec.bench import median_latency_ms
from audiorec.config import load_config
from audiorec.export import export_onnx, quantize_int8
from audiorec.features import LogMel
from audiorec.models import build_model
from audiorec.runtime import OnnxModel

# name -> (config overrides, also timed in int8)
NETWORKS = {"default cnn [16,32,64,128]": (["model.channels=[16,32,64,128]"], True),
            "narrow cnn [8,16,24,32]": (["model.channels=[8,16,24,32]"], True),
            "speech_embedding (its own STFT, 512 taps)": (["model.name=speech_embedding"], True)}
# --zoo: the model zoo's other networks (audiorec.bench.DEFAULT_MODELS but gmm, which needs
# fitted mixtures to export), fp32 as the zoo table times them
ZOO = {f"zoo {key}": ([f"model.name={name}"] + ([f"model.size={size}"] if size else []), False)
       for key, name, size in [("bc_resnet-1", "bc_resnet", "1"), ("ds_cnn-S", "ds_cnn", "S"),
                               ("crnn_fourier-S", "crnn_fourier", "S"), ("matchboxnet-3x1x64", "matchboxnet", "3x1x64"),
                               ("bc_resnet-3", "bc_resnet", "3"), ("cnn_trad_fpool3", "cnn_trad_fpool3", "")]}
WAYS = {"folded DFT": True, "DFT convolution": False}


class FrontEnd(nn.Module):
    """The log-mel front end alone, averaged over frames: (batch, n_samples) -> (batch, n_mels)."""

    def __init__(self):
        super().__init__()
        self.features = LogMel(top_db=40.0)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.features(waveform).mean(dim=2)


def eager_batch_ms(batch: torch.Tensor, rounds: int = 5, n: int = 10) -> dict[str, float]:
    """Median milliseconds of the log-mel front end in eager PyTorch on ``batch`` (one thread),
    each way, over ``rounds`` interleaved rounds of ``n`` calls after one warm-up call."""
    front_end = LogMel(top_db=40.0)
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    with torch.no_grad():
        for _ in range(rounds):
            for way, folded in WAYS.items():
                front_end.folded = folded
                front_end(batch)
                for _ in range(n):
                    start = time.perf_counter()
                    front_end(batch)
                    times[way].append(time.perf_counter() - start)
    return {way: float(np.median(t) * 1000) for way, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", action="store_true", help="also the model zoo's other networks (fp32), for the zoo table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clip = np.random.default_rng(0).normal(0, 0.1, (1, 16_000)).astype(np.float32)
    calibration = np.random.default_rng(1).normal(0, 0.1, (32, 16_000)).astype(np.float32)
    fe = LogMel()
    per_frame = {True: fe.win_length * (fe.n_fft // 4 + 1), False: 2 * fe.win_length * (fe.n_fft // 2 + 1)}
    macs = {way: per_frame[folded] * fe.n_frames(16_000) for way, folded in WAYS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        chosen = NETWORKS | (ZOO if args.zoo else {})
        networks = {"front end alone": (FrontEnd(), False)} | {
            name: (build_model(load_config(None, overrides), 12), int8) for name, (overrides, int8) in chosen.items()}
        for i, (name, (network, with_int8)) in enumerate(networks.items()):
            labels = [str(k) for k in range(40 if name == "front end alone" else 12)]
            # the front ends that fold (an MFCC's log-mel inside it too; not a learned DFT kernel)
            front_ends = [m for m in network.modules() if getattr(m, "folded", False)]
            if not front_ends:
                print(f"{name}: its front end does not fold; skipped", flush=True)
                continue
            for way, folded in WAYS.items():  # the same weights both ways
                for front_end in front_ends:
                    front_end.folded = folded
                path = export_onnx(network.eval(), f"{tmp}/m{i}_{folded}.onnx", labels, 16_000, 16_000)
                models[(name, way)] = OnnxModel(path, threads=1)
                if with_int8:
                    int8 = quantize_int8(path, f"{tmp}/m{i}_{folded}.int8.onnx", calibration)
                    models[(f"{name} int8", way)] = OnnxModel(int8, threads=1)
        front_end = networks["front end alone"][0].features
        log_mel = {}
        for way, folded in WAYS.items():
            front_end.folded = folded
            with torch.no_grad():
                log_mel[way] = front_end(torch.from_numpy(clip))
        agree = float((log_mel["folded DFT"] - log_mel["DFT convolution"]).abs().max())
        rounds = []
        for round_ in range(3):
            rounds.append({f"{name} | {way}": median_latency_ms(m, clip, n=500, warmup=50) for (name, way), m in models.items()})
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {ms:.3f} ms" for k, ms in rounds[-1].items()), flush=True)
    median = {k: float(np.median([r[k] for r in rounds])) for k in rounds[0]}
    batch = torch.from_numpy(np.random.default_rng(2).normal(0, 0.1, (64, 16_000)).astype(np.float32))
    eager = eager_batch_ms(batch)
    results = {"command": " ".join([".venv/bin/python", "benchmarks/front_end_latency.py", *sys.argv[1:]]),
               "machine": machine(), "stft_macs_per_second": macs, "median_ms": median, "rounds_ms": rounds,
               "log_mel_max_abs_diff_between_ways": agree, "eager_batch64_ms": eager}
    names = list(dict.fromkeys(name for name, _ in models))
    rows = "\n".join(
        f"| {name} | {median[f'{name} | folded DFT']:.3f} ms | {median[f'{name} | DFT convolution']:.3f} ms | "
        f"{median[f'{name} | DFT convolution'] / median[f'{name} | folded DFT']:.2f}x |" for name in names)
    table = (
        "| ONNX Runtime, 1 s clip, 1 thread, batch 1 | folded DFT | DFT convolution | speed-up |\n"
        f"|---|---|---|---|\n{rows}\n"
        f"| eager PyTorch, front end on a batch of 64 clips, 1 thread | {eager['folded DFT']:.1f} ms | "
        f"{eager['DFT convolution']:.1f} ms | {eager['DFT convolution'] / eager['folded DFT']:.2f}x |\n\n"
        f"STFT multiply-adds per second of audio: {macs['folded DFT'] / 1e6:.1f} M folded, {macs['DFT convolution'] / 1e6:.1f} M "
        f"by the convolution; the two ways' log-mel features of the clip differ by at most {agree:.1e}. Median latency "
        f"of 500 calls over three interleaved rounds (untrained weights). Machine: {results['machine']}. "
        f"Command: `{results['command']}`.\n")
    save_results("front_end_latency_zoo" if args.zoo else "front_end_latency", results, table)


if __name__ == "__main__":
    main()
