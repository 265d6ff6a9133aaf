"""Benchmark: do espeak-ng voices help as extra training speakers for an unseen FSDD speaker?

Synthesises the ten digits with 112 espeak-ng voices (8 accents x 14 variants, 2 takes each,
:func:`audiorec.data.synth.synthesize_commands`), band-limits them to 8 kHz like FSDD and names
them in FSDD's layout, adds them to FSDD's manifest, and trains the FSDD LOSO fold of each given
speaker on the five real training speakers plus the synthetic ones, with the recorded noise of
``fsdd_loso`` (``benchmarks/train_commands.py``). Compare with that protocol's folds.

Measured (seed 0, the three-stage CNN, ``model.channels=[16,32,64]``, then the default): nicolas
0.934 and george 0.878, against 0.924 and 0.922 without the voices,
at twice the training time (about 20 min per fold on 2 cores), so it is not part of the recipe.

Writes ``benchmarks/results/synth_speakers.{json,md}``.

Usage::

    .venv/bin/python benchmarks/synth_speakers.py --speaker nicolas --speaker george
"""

from __future__ import annotations

import argparse
import json

import soundfile

from _common import DATA, NOISE_OVERRIDE, ROOT, run_and_save, timed
from audiorec.audio import load_audio
from audiorec.data.synth import synthesize_commands

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
OUT = ROOT / "runs" / "bench" / "synth_speakers"


def build_manifest() -> str:
    """FSDD plus 2,240 synthetic digit clips in FSDD's layout; returns the combined manifest's path."""
    raw, named = OUT / "words", OUT / "fsdd_layout"
    synthesize_commands(raw, commands=DIGITS, unknown_words=(), n_speakers=112, takes=2, n_silence=0, progress=False)
    named.mkdir(parents=True, exist_ok=True)
    letters = str.maketrans("0123456789-", "abcdefghij_")  # FSDD speakers are letters only
    for digit, word in enumerate(DIGITS):
        for path in sorted((raw / word).glob("*.wav")):
            speaker, take = path.stem.split("_nohash_")
            target = named / f"{digit}_{speaker.translate(letters).replace('_', '')}_{take}.wav"
            if not target.exists():
                soundfile.write(target, load_audio(path, 8000), 8000, subtype="PCM_16")
    manifests = [OUT / "fsdd.jsonl", OUT / "synth.jsonl"]
    for source, manifest in zip([DATA / "fsdd", named], manifests):
        if not manifest.exists():
            timed(["data", "import", str(source), "--layout", "fsdd", "--out", str(manifest)])
    combined = OUT / "fsdd_synth.jsonl"
    combined.write_text("".join(m.read_text() for m in manifests))
    return str(combined)


def run_fold(speaker: str, manifest: str) -> dict:
    out = OUT / f"fold_{speaker}"
    wall, peak = timed(["train", "--data", manifest, "--test-speakers", speaker, "data.val_fraction=0", NOISE_OVERRIDE,
                        "--out", str(out), "--quiet"])
    metrics = json.loads((out / "metrics.json").read_text())
    return {"speaker": speaker, "accuracy": round(metrics["test_accuracy"], 4), "n_train": metrics["n_train"],
            "wall_time_s": round(wall, 1), "peak_rss_mb": round(peak, 1)}


def markdown(results: dict) -> str:
    """The table: one row per held-out speaker."""
    rows = ["| held-out speaker | accuracy with the voices | training clips | wall time |", "|---|---|---|---|"]
    rows += [f"| {r['speaker']} | {r['accuracy']:.3f} | {r['n_train']} | {r['wall_time_s'] / 60:.1f} min |" for r in results.values()]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speaker", action="append", required=True, help="FSDD speaker to hold out (repeatable)")
    args = parser.parse_args()
    manifest = build_manifest()
    run_and_save(args.speaker, "synth_speakers", lambda speaker: run_fold(speaker, manifest), markdown)


if __name__ == "__main__":
    main()
