"""Benchmark: how a command recognizer's accuracy depends on how bright the test voices are.

Passes every clip of a run's test split through a high-shelf filter (pedalboard's
``HighShelfFilter``, Audio EQ Cookbook, Q 0.707) at each gain, recognizes it with the run's
model and records the accuracy per gain. A model that leans on the spectral tilt of its training
speakers loses accuracy on one side of 0 dB and gains it on the other; one trained with
``augment.high_shelf`` should be flatter. This is how the FSDD george fold was diagnosed:
cutting his clips by 9 dB above 1 kHz raised a model trained without the effect from 0.894 to
0.920.

Writes ``benchmarks/results/brightness.{json,md}``, one row per run (merged with the rows there).

Usage::

    .venv/bin/python benchmarks/brightness.py runs/bench/fsdd_george_default [RUN ...]
    .venv/bin/python benchmarks/brightness.py RUN --cutoff-hz 2000 --gains=-9,-6,-3,0,3,6
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pedalboard

from _common import accuracy_under, run_and_save


def accuracy_by_gain(run: Path, cutoff_hz: float, gains_db: list[float]) -> dict:
    """Test accuracy of ``run`` with its test clips high-shelved by each gain above ``cutoff_hz``.

    Parameters
    ----------
    run : Path
        A run directory of ``audiorec train`` with ``splits/test.jsonl``.
    cutoff_hz : float
        Shelf frequency in Hz.
    gains_db : list of float
        Shelf gains in dB; 0 is the clips as recorded.

    Returns
    -------
    dict
        ``run``, ``cutoff_hz``, ``n_test`` and ``accuracy`` (fraction correct per gain, keyed by
        the gain as text, e.g. ``"-9"``).

    Raises
    ------
    FileNotFoundError
        ``run`` has no test split.
    """
    def shelf(gain: float):
        board = pedalboard.Pedalboard([pedalboard.HighShelfFilter(cutoff_frequency_hz=cutoff_hz, gain_db=gain)])
        return lambda w, sr: board(w, sr)

    result = accuracy_under(run, {f"{gain:g}": shelf(gain) for gain in gains_db})
    return {"run": result["run"], "cutoff_hz": cutoff_hz, "n_test": result["n_test"], "accuracy": result["accuracy"]}


def markdown(results: dict) -> str:
    gains = sorted({g for r in results.values() for g in r["accuracy"]}, key=float)
    rows = ["| run | shelf above | " + " | ".join(f"{float(g):+g} dB" for g in gains) + " |",
            "|---|---|" + "---|" * len(gains)]
    for r in results.values():
        cells = [f"{r['accuracy'][g]:.3f}" if g in r["accuracy"] else "-" for g in gains]
        rows.append(f"| `{r['run']}` | {r['cutoff_hz']:g} Hz | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with a test split")
    parser.add_argument("--cutoff-hz", type=float, default=1000.0, help="shelf frequency (Hz)")
    parser.add_argument("--gains", default="-9,-6,-3,0,3,6", help="comma-separated shelf gains (dB)")
    args = parser.parse_args()
    gains = [float(g) for g in args.gains.split(",")]
    runs = {str(run): run.resolve() for run in args.runs}
    run_and_save(list(runs), "brightness", lambda name: accuracy_by_gain(runs[name], args.cutoff_hz, gains), markdown)


if __name__ == "__main__":
    main()
