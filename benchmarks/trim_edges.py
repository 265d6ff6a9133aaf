"""Benchmark: how much a command recognizer relies on the first and last milliseconds of a word.

Passes every clip of a run's test split through :func:`audiorec.augment.trim_word` (the word,
where the level is within 30 dB of its peak, with a fixed length cut off its start, its end or
both) and records the accuracy per cut. FSDD's speakers were
endpointed differently (nicolas's and theo's recordings start at the word, lucas's and
yweweler's keep silence around it): a model that loses points when the onset is cut was trained
on words with whole onsets only. ``augment.trim_edges`` trains on cut words.

Writes ``benchmarks/results/trim_edges.{json,md}``, one row per run (merged with the rows there).

Usage::

    .venv/bin/python benchmarks/trim_edges.py runs/bench/fsdd_loso/fold_lucas [RUN ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import accuracy_under, run_and_save

from audiorec.augment import trim_word

CUTS = {"as recorded": None, "word only": (0, 0), "onset -40 ms": (40, 0), "offset -40 ms": (0, 40),
        "both -40 ms": (40, 40), "both -80 ms": (80, 80)}


def _cut(start_ms: float, end_ms: float):
    return lambda w, sr: trim_word(w, sr, start_ms, end_ms)


TRANSFORMS = {name: (lambda w, sr: w) if cut is None else _cut(*cut) for name, cut in CUTS.items()}


def markdown(results: dict) -> str:
    """The table: one row per cut, one column per run."""
    rows = ["| cut | " + " | ".join(f"`{r['run']}`" for r in results.values()) + " |",
            "|---|" + "---|" * len(results)]
    for name in CUTS:
        rows.append(f"| {name} | " + " | ".join(f"{r['accuracy'][name]:.3f}" for r in results.values()) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of audiorec train (or cv folds)")
    args = parser.parse_args()
    runs = {str(run): run for run in args.runs}
    run_and_save(list(runs), "trim_edges", lambda name: accuracy_under(runs[name], TRANSFORMS), markdown)


if __name__ == "__main__":
    main()
