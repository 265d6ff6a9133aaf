"""Benchmark: where a command recognizer's test speaker differs from its training speakers.

Passes every clip of a run's test split through one change at a time (pitch, speed, tempo,
band limits, shelves, gain), recognizes it with the run's model and records the accuracy per
change. A change that *raises* the accuracy points at a mismatch the training data does not
cover, as a high-shelf cut did for FSDD george (``benchmarks/brightness.py``); when every change
lowers it, the errors are in how the speaker says the words, not in the channel.

The changes, each a well-kept library's effect: pitch shift ±1.5 and ±3 semitones and tempo
0.85/1.15 (librosa's phase vocoder), speed 0.85-1.15 (resampling with librosa: pitch, formants
and tempo together), a 3 kHz low-pass and a 300 Hz high-pass, ±9 dB low shelves below 300 Hz
(pedalboard, Audio EQ Cookbook), and ±12 dB of gain (clipped at full scale).

Writes ``benchmarks/results/probes.{json,md}``, one row per run (merged with the rows there).

Usage::

    .venv/bin/python benchmarks/probes.py runs/bench/fsdd_loso/fold_nicolas [RUN ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import librosa
import numpy as np
import pedalboard

from _common import accuracy_under, run_and_save


def _board(*plugins):
    board = pedalboard.Pedalboard(list(plugins))
    return lambda w, sr: board(w, sr)


def _speed(rate: float):
    return lambda w, sr: librosa.resample(w, orig_sr=sr, target_sr=round(sr / rate))


PROBES = {
    "as recorded": lambda w, sr: w,
    **{f"pitch {st:+g} st": (lambda st: lambda w, sr: librosa.effects.pitch_shift(w, sr=sr, n_steps=st))(st)
       for st in (-3, -1.5, 1.5, 3)},
    **{f"speed {r:g}": _speed(r) for r in (0.85, 0.93, 1.07, 1.15)},
    **{f"tempo {r:g}": (lambda r: lambda w, sr: librosa.effects.time_stretch(w, rate=r))(r) for r in (0.85, 1.15)},
    "low-pass 3 kHz": _board(pedalboard.LowpassFilter(3000)),
    "high-pass 300 Hz": _board(pedalboard.HighpassFilter(300)),
    "low shelf +9 dB": _board(pedalboard.LowShelfFilter(cutoff_frequency_hz=300, gain_db=9)),
    "low shelf -9 dB": _board(pedalboard.LowShelfFilter(cutoff_frequency_hz=300, gain_db=-9)),
    "gain -12 dB": lambda w, sr: w * 10 ** (-12 / 20),
    "gain +12 dB": lambda w, sr: np.clip(w * 10 ** (12 / 20), -1, 1),
}


def markdown(results: dict) -> str:
    """The table: one row per change, one column per run."""
    rows = ["| change | " + " | ".join(f"`{r['run']}`" for r in results.values()) + " |",
            "|---|" + "---|" * len(results)]
    for probe in PROBES:
        cells = [f"{r['accuracy'][probe]:.3f}" if probe in r["accuracy"] else "-" for r in results.values()]
        rows.append(f"| {probe} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with a test split")
    args = parser.parse_args()
    runs = {str(run): run.resolve() for run in args.runs}
    run_and_save(list(runs), "probes", lambda name: accuracy_under(runs[name], PROBES), markdown)


if __name__ == "__main__":
    main()
