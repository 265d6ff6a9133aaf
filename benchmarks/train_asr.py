"""Benchmark: train the CTC speech recognizer on the real corpora and record the figures.

For each protocol, trains with ``audiorec train --task asr`` under GNU ``/usr/bin/time -v``, exports
the run to ONNX (``audiorec export``, parity checked), and transcribes the test utterances with
the exported model on one thread to measure the real-time factor of the torch-free runtime.
Writes ``benchmarks/results/asr.{json,md}``; the README's table is copied from the Markdown file.

Protocols (``../shared/data/README.md``):

- ``yesno``: Kaldi yesno, 60 files of one speaker, split by file (48 train, 6 validation, 6
  test), the recipe ``configs/asr_yesno.yaml``. Target: WER 0 in under 2 minutes.
- ``an4``: CMU AN4, the 948 training utterances (91 of 10 speakers held out for validation),
  tested on the 130 test utterances, default ``--task asr`` recipe (DeepSpeech2 ``S``, characters,
  greedy decoding). Target: WER <= 9.5%, CER <= 5%, trained in under 3 hours.

Usage::

    .venv/bin/python benchmarks/train_asr.py                    # both (AN4 takes one to two hours)
    .venv/bin/python benchmarks/train_asr.py --only yesno
    .venv/bin/python benchmarks/train_asr.py --only an4 --existing runs/an4   # figures of a finished run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from _common import DATA, ROOT, run_and_save, timed

PROTOCOLS = {
    "yesno": ["--data", str(DATA / "yesno"), "--config", str(ROOT / "configs" / "asr_yesno.yaml")],
    "an4": ["--data", str(DATA / "an4")],
}


def onnx_rtf(model: Path, run: Path) -> dict:
    """Transcribe the run's test utterances with the exported model on one thread; the real-time factor."""
    from audiorec.data.dataset import load_waveforms
    from audiorec.data.manifest import read_manifest
    from audiorec.metrics import error_rates
    from audiorec.runtime import Transcriber

    transcriber = Transcriber.load(model, threads=1)
    utterances = read_manifest(run / "splits" / "test.jsonl")
    waves = load_waveforms(utterances, transcriber.sample_rate, progress=False)
    transcriber.transcribe(waves[0])  # warm-up: ONNX Runtime plans its memory on the first call
    started = time.perf_counter()
    texts = [transcriber.transcribe(w).text for w in waves]
    compute_s = time.perf_counter() - started
    rates = error_rates([u.text for u in utterances], texts)
    audio_s = sum(len(w) for w in waves) / transcriber.sample_rate
    return {"onnx_rtf": round(compute_s / audio_s, 4), "onnx_wer": rates["wer"], "onnx_cer": rates["cer"],
            "onnx_size_mb": round(model.stat().st_size / 2**20, 1)}


def run_protocol(name: str, out: Path, existing: Path | None, seed: int) -> dict:
    run = existing or out / name
    command = ["train", "--task", "asr", *PROTOCOLS[name], "--out", str(run), "--seed", str(seed), "--quiet"]
    if existing is None:
        shutil.rmtree(run, ignore_errors=True)
        wall, peak = timed(command)
    else:
        wall, peak = None, None
    metrics = json.loads((run / "metrics.json").read_text())
    timed(["export", str(run), "--out", str(run / "model.onnx"), "--quiet"])
    result = {
        "protocol": name,
        "command": "audiorec " + " ".join(a.replace(str(DATA), "../shared/data").replace(str(ROOT) + "/", "")
                                          for a in command[:-1]),
        "wer": metrics["wer"], "cer": metrics["cer"], "n_words": metrics["n_words"], "n_test": metrics["n_test"],
        "substitutions": metrics["substitutions"], "deletions": metrics["deletions"], "insertions": metrics["insertions"],
        "epochs": metrics["epochs"], "n_parameters": metrics["n_parameters"], "train_time_s": metrics["train_time_s"],
        "torch_rtf": metrics["rtf"], "wall_time_s": None if wall is None else round(wall, 1),
        "peak_rss_mb": None if peak is None else round(peak, 1), "seed": seed, "cpu_count": os.cpu_count(),
    }
    result.update(onnx_rtf(run / "model.onnx", run))
    return result


def markdown(results: dict) -> str:
    rows = ["| protocol | WER | CER | test | epochs | training time | RTF (ONNX, 1 thread) | model | command |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        rows.append(
            f"| {r['protocol']} | {100 * r['wer']:.2f}% ({r['substitutions']} S, {r['deletions']} D, {r['insertions']} I "
            f"of {r['n_words']} words) | {100 * r['cer']:.2f}% | {r['n_test']} utterances | {r['epochs']} | "
            f"{r['train_time_s'] / 60:.1f} min | {r['onnx_rtf']:.3f} | {r['n_parameters'] / 1e6:.2f} M params, "
            f"{r['onnx_size_mb']:.1f} MB | `{r['command']}` |"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=list(PROTOCOLS), help="run just these protocols (repeatable)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_asr"), help="where the run directories go")
    parser.add_argument("--existing", help="with one --only: report a finished run directory instead of training")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: the benchmarks need the shared corpora")
    names = args.only or list(PROTOCOLS)
    if args.existing and len(names) != 1:
        raise SystemExit("--existing needs exactly one --only protocol")
    existing = Path(args.existing) if args.existing else None
    run_and_save(names, "asr", lambda name: run_protocol(name, Path(args.out), existing, args.seed), markdown)


if __name__ == "__main__":
    main()
