"""Benchmark: ONNX export, int8, latency of the torch-free runtime, and streaming detection.

Uses the SC12 speaker-split run of the default recipe (``benchmarks/train_commands.py --only
sc12_speaker_split``; trained here first when it is missing) and writes
``benchmarks/results/export.{json,md}``; the README's table is copied from the Markdown file.

1. ``audiorec export RUN --int8``: parity with PyTorch on the SC12 test split (max |diff| of the
   probabilities, top-1 agreement), accuracy of fp32 and int8, file sizes.
2. Latency: median time to recognise one 1 s clip (batch 1, one thread) with ONNX Runtime fp32,
   int8 and eager PyTorch, measured in the same process one after the other.
3. Streaming: a 1-hour stream of the SC12 test speakers' words (and ``_unknown_`` words as
   negatives) at random gaps over ``running_tap`` noise at 10 dB SNR (``audiorec data stream``),
   scored by ``audiorec listen --timeline`` on one thread: real-time factor, detection rate and
   false accepts per hour at the default threshold, the detection rate at <= 1 false accept per
   hour from the DET curve, and the DET curve as PNG and CSV.
4. The isolated-clip bound: on the SC12 test clips themselves (the words the stream is made of),
   the share of commands the shipped model names rightly with a score above that of every answer
   naming a wrong command. A detector whose threshold lets no wrong command through finds no
   more of these words than that on clean clips, so it shows how much of the streaming miss rate
   is the classifier's own.
5. The in-stream bound: the same measure on the stream itself, each placed word classified once
   in the window centred on it (and a quarter second off centre), so with the stream's noise and
   level but without the detector's smoothing or threshold. Between points 4 and 5 lies what the
   noise costs the classifier; between 5 and 3, what the sliding window and the detector cost.

Usage::

    .venv/bin/python benchmarks/export_runtime.py               # about 10 minutes with the run present
    .venv/bin/python benchmarks/export_runtime.py --minutes 10  # a shorter stream
    .venv/bin/python benchmarks/export_runtime.py --run RUN --ensemble RUN_SEED1 --out OUT --results R  # two seeds averaged
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from _common import DATA, RESULTS, ROOT, machine, relative, save_results
from clip_bound import bound

STREAM_BOUND_OFFSETS_S = (0.0, -0.25, 0.25)  # the word at the window's centre, then a quarter second early / late


def latency(run: Path, fp32: Path, int8: Path, clip: np.ndarray, ensemble: list[Path] = ()) -> dict:
    """Median latency per 1 s clip, batch 1, one thread, for ONNX fp32, ONNX int8 and eager PyTorch
    (the PyTorch model averaging ``run``'s and the ``ensemble`` runs' posteriors when there are any)."""
    import torch

    from audiorec.bench import median_latency_ms

    from audiorec.recognize import load_ensemble
    from audiorec.runtime import OnnxModel

    torch.set_num_threads(1)
    batch = clip[None].astype(np.float32)
    out = {
        "onnx_fp32_ms": median_latency_ms(OnnxModel(fp32, threads=1), batch, n=500, warmup=50),
        "onnx_int8_ms": median_latency_ms(OnnxModel(int8, threads=1), batch, n=500, warmup=50),
        "torch_eager_ms": median_latency_ms(load_ensemble([run, *ensemble]), batch, n=500, warmup=50),
    }
    out["speedup_fp32_vs_torch"] = out["torch_eager_ms"] / out["onnx_fp32_ms"]
    out["speedup_int8_vs_torch"] = out["torch_eager_ms"] / out["onnx_int8_ms"]
    return out


def clip_bound(model: Path, run: Path) -> dict:
    """The isolated-clip bound (point 4 of the module docstring) of an ONNX model on a run's test split.

    A wrong command answer is one naming a command other than the clip's label, on any test clip
    (``_unknown_`` and ``_silence_`` clips included); answers of ``_unknown_`` or ``_silence_``
    never fire. ``detection_rate_above_wrong[k]`` is the share of the command clips answered
    rightly with a score above the ``k + 1``-th highest score of a wrong command answer (``k``
    wrong answers let through), for ``k`` = 0, 1, 2 (:func:`clip_bound.bound`).
    """
    from audiorec.audio import fit_to_length
    from audiorec.data.dataset import load_waveforms
    from audiorec.data.manifest import read_manifest
    from audiorec.runtime import Recognizer

    recognizer = Recognizer.load(model, threads=1)
    test = read_manifest(run / "splits" / "test.jsonl")
    clips = np.stack([fit_to_length(w, recognizer.clip_samples)
                      for w in load_waveforms(test, recognizer.sample_rate, progress=False)]).astype(np.float32)
    return bound(recognizer.predict_proba(clips), recognizer.labels, [u.label for u in test])


def stream_bound(model: Path, stream: Path, offsets_s: tuple[float, ...] = STREAM_BOUND_OFFSETS_S) -> dict:
    """The in-stream bound (point 5 of the module docstring): point 4 on windows of the stream itself.

    Each placed word (``_unknown_`` ones included) is classified once, in the clip-long window of
    the stream centred on its speech, shifted by each of ``offsets_s`` seconds; so the noise, its
    level and the word's trimming are the stream's, and the detector's smoothing and threshold
    play no part. A window that would start before the stream or end after it is moved inside.

    Parameters
    ----------
    model : Path
        An exported ``.onnx`` command model (:class:`audiorec.runtime.Recognizer`).
    stream : Path
        A folder written by ``audiorec data stream``: ``stream.wav`` and ``timeline.csv``.
    offsets_s : tuple of float
        Seconds added to each word's centre (negative: the word later in the window).

    Returns
    -------
    dict
        ``{offset: bound}``, keys like ``"+0.00"``, each value :func:`clip_bound.bound`'s dict.

    Raises
    ------
    ModelError
        The model file cannot be loaded.
    ValueError
        The stream's sample rate is not the model's, or its timeline is malformed.

    References
    ----------
    The isolated-clip bound of point 4 (this project's measure), on the evaluation streams of
    ``audiorec data stream`` (after Warden 2018's streaming accuracy test for Speech Commands).
    """
    import soundfile as sf

    from audiorec.data.stream import read_timeline
    from audiorec.runtime import Recognizer

    recognizer = Recognizer.load(model, threads=1)
    wave, rate = sf.read(stream / "stream.wav", dtype="float32")
    recognizer.check_sample_rate(rate)
    events, n = read_timeline(stream / "timeline.csv"), recognizer.clip_samples
    out = {}
    for offset in offsets_s:
        starts = [min(max(0, round(((e.start_s + e.end_s) / 2 + offset) * rate) - n // 2), len(wave) - n) for e in events]
        probs = recognizer.predict_proba(np.stack([wave[s : s + n] for s in starts]))
        out[f"{offset:+.2f}"] = bound(probs, recognizer.labels, [e.label for e in events])
    return out


def streaming(model: Path, run: Path, out: Path, minutes: float, seed: int) -> dict:
    """Build the evaluation stream and score the detector on it, through the commands a user runs."""
    from audiorec.cli import main as audiorec

    stream = out / "stream"
    listen = out / "listen"
    audiorec(["data", "stream", "--data", str(run / "splits" / "test.jsonl"), "--noise", str(DATA / "noise" / "running_tap.wav"),
              "--snr-db", "10", "--minutes", str(minutes), "--seed", str(seed), "--out", str(stream), "--quiet"])
    code = audiorec(["listen", str(model), "--file", str(stream / "stream.wav"), "--timeline", str(stream / "timeline.csv"),
                     "--out", str(listen), "--threads", "1"])
    if code:
        raise SystemExit(f"audiorec listen failed with exit code {code}")
    m = json.loads((listen / "metrics.json").read_text())
    return {
        "stream_minutes": round(m["duration_s"] / 60, 1),
        "n_keywords": m["n_keywords"],
        "real_time_factor": m["real_time_factor"],
        "threshold": m["threshold"],
        "detection_rate": m["detection_rate"],
        "false_accepts_per_hour": m["false_accepts_per_hour"],
        "detection_rate_at_1_fa_per_hour": m["detection_rate_at_1_false_accept_per_hour"],
        "threshold_at_1_fa_per_hour": m["threshold_at_1_false_accept_per_hour"],
        "false_accepts_by_cause": m["false_accepts_by_cause"],
        "det_curve": relative(listen / "det_curve.png"),
    }


def markdown(r: dict) -> str:
    e, l, s = r["export"], r["latency"], r["streaming"]
    rows = [
        ("parity fp32 vs PyTorch, SC12 test split", f"max abs diff {e['parity_max_abs_diff']:.1e}, top-1 agreement "
         f"{100 * e['parity_top1_agreement']:.1f}% ({e['n_clips']} clips)", "< 1e-4, 100%"),
        ("accuracy PyTorch / ONNX fp32 / ONNX int8", f"{e['accuracy_torch']:.4f} / {e['accuracy_onnx']:.4f} / {e['accuracy_int8']:.4f}",
         "int8 within 1 point"),
        ("model file fp32 / int8", f"{e['fp32_size_bytes'] / 1024:.0f} KiB / {e['size_bytes'] / 1024:.0f} KiB "
         f"({e['fp32_size_bytes'] / e['size_bytes']:.2f}x smaller)", ">= 3x smaller"),
        ("latency per 1 s clip, 1 thread, batch 1", f"ONNX fp32 {l['onnx_fp32_ms']:.2f} ms, int8 {l['onnx_int8_ms']:.2f} ms, "
         f"eager PyTorch {l['torch_eager_ms']:.2f} ms ({l['speedup_fp32_vs_torch']:.1f}x / {l['speedup_int8_vs_torch']:.1f}x faster)",
         "<= 1 ms"),
        ("streaming real-time factor, 1 thread", f"{s['real_time_factor']:.4f}", "<= 0.02"),
        (f"detection on a {s['stream_minutes']:.0f}-min stream, running_tap at 10 dB ({s['n_keywords']} keywords)",
         f"{100 * s['detection_rate']:.1f}% at {s['false_accepts_per_hour']:.1f} false accepts/h (threshold {s['threshold']}); "
         f"{100 * s['detection_rate_at_1_fa_per_hour']:.1f}% at <= 1 false accept/h", ">= 90% at <= 1 FA/h"),
    ]

    def bound_row(b: dict) -> str:
        rates = b["detection_rate_above_wrong"]
        return (f"{100 * rates[0]:.1f}% ({100 * rates[1]:.1f}% / {100 * rates[2]:.1f}% letting the 1 / 2 highest of "
                f"{b['n_wrong_command_answers']} wrong answers through; they score "
                f"{', '.join(f'{x:.2f}' for x in b['wrong_command_scores'][:3])})")

    if "clip_bound" in r:
        b = r["clip_bound"]
        rows.append((f"isolated-clip bound: the {b['n_commands']} test commands named rightly above every wrong command answer's score",
                     bound_row(b), "(for reading the line above)"))
    if "stream_bound" in r:
        centred, *shifted = r["stream_bound"].items()
        rows.append((f"in-stream bound: the same for the stream's {centred[1]['n_commands']} commands, each in the window "
                     "centred on it (its noise and level)",
                     f"{bound_row(centred[1])}; accuracy {centred[1]['accuracy']:.3f} centred, "
                     + ", ".join(f"{b['accuracy']:.3f} at {k} s" for k, b in shifted), "(for reading the line above)"))
    lines = ["| measure | result | target |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append(f"\nModel: `{r['run']}`. Machine: {r['machine']}. "
                 f"Command: `{r.get('command', '.venv/bin/python benchmarks/export_runtime.py')}`.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=str(ROOT / "runs" / "bench" / "sc12_speaker_split"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench" / "export"))
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the evaluation stream")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default=str(RESULTS / "export"), help="results path without suffix (.json and .md)")
    parser.add_argument("--ensemble", action="append", default=[], metavar="RUN2",
                        help="export and score the posterior average of --run and this run (repeatable; audiorec export --ensemble)")
    args = parser.parse_args()
    run, out, ensemble = Path(args.run), Path(args.out), [Path(r) for r in args.ensemble]
    if not (run / "checkpoints").is_dir():
        print(f"{run} is missing; training it (benchmarks/train_commands.py --only sc12_speaker_split)", flush=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_commands.py"), "--only", "sc12_speaker_split"], check=True)

    from audiorec.audio import fit_to_length, load_audio
    from audiorec.data.manifest import read_manifest
    from audiorec.export import export_run

    report = export_run(run, out / "sc12.onnx", int8=True, ensemble=ensemble)
    clip = fit_to_length(load_audio(read_manifest(run / "splits" / "test.jsonl")[0].path), 16_000)
    results = {
        "command": " ".join([".venv/bin/python", "benchmarks/export_runtime.py", *sys.argv[1:]]),
        "run": " + ".join(relative(r) for r in [run, *ensemble]),
        "machine": machine(),
        "export": {**asdict(report), "model": relative(report.model), "fp32_model": relative(report.fp32_model)},
        "latency": latency(run, Path(report.fp32_model), Path(report.model), clip, ensemble),
        "streaming": streaming(Path(report.model), run, out, args.minutes, args.seed),
        "clip_bound": clip_bound(Path(report.model), run),
        "stream_bound": stream_bound(Path(report.model), out / "stream"),
    }
    save_results(args.results, results, markdown(results))


if __name__ == "__main__":
    main()
