"""Benchmark: do other speakers' digits, added to training, help an unseen FSDD speaker?

FSDD has six speakers, so each leave-one-speaker-out fold trains on five. This adds the ten
digits of other speakers to every fold's training clips (never to its test clips), trains the
FSDD LOSO fold of each given speaker with the recorded noise of ``fsdd_loso``
(``benchmarks/train_commands.py``), and writes one row per held-out speaker. Compare with that
protocol's folds. Two sources of extra speakers (``--source``):

``speech_commands``
    The 240 digit words (``zero`` ... ``nine``) among the ``_unknown_`` clips of
    ``../shared/data/speech_commands_v2_test``: 118 real speakers, 1 s at 16 kHz, here
    resampled to FSDD's 8 kHz and trimmed of silence (``librosa.effects.trim``, 35 dB).
    These clips are none of FSDD's, so each fold's held-out speaker stays unheard; they are
    part of the SC12 protocol's data, which is a separate benchmark.
``espeak``
    2,240 clips synthesised with 112 espeak-ng voices (8 accents x 14 variants, 2 takes each,
    :func:`audiorec.data.synth.synthesize_commands`), band-limited to 8 kHz.

Either set is written in FSDD's layout (``{digit}_{speaker}_{take}.wav``, speaker names made of
letters) and imported; each fold is ``audiorec train --data FSDD --extra-train EXTRA
--test-speakers S`` (``data.extra_train``; ``audiorec cv --extra-train`` runs all six folds in
one command). A fold already trained in ``--out`` is read back, not trained again. The folds of
the committed table were trained from FSDD and the extra clips concatenated in one manifest,
which gives the same training clips in the same order: one epoch of each way from the same seed
gave identical weights.

The table is not the FSDD LOSO protocol's own figure: that one trains on the five other FSDD
speakers only. The held-out speaker is unheard either way.

Measured (seed 0): see ``benchmarks/results/extra_speakers_<source>.md`` and the README.
The espeak-ng voices, with the three-stage CNN (``model.channels=[16,32,64]``), gave nicolas
0.934 and george 0.878 against 0.924 and 0.922 without, at twice the training time, so they are
not part of the recipe.

Usage::

    .venv/bin/python benchmarks/extra_speakers.py --source speech_commands --speaker nicolas --speaker jackson
    .venv/bin/python benchmarks/extra_speakers.py --source espeak --speaker nicolas --speaker george
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import librosa
import soundfile

from _common import DATA, NOISE_OVERRIDE, ROOT, relative, run_and_save, timed
from audiorec.audio import load_audio
from audiorec.data.synth import synthesize_commands

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LETTERS = str.maketrans("0123456789", "abcdefghij")  # FSDD speaker names are letters only
FSDD_RATE = 8000


def write_fsdd_layout(clips: list[tuple[Path, int, str, str]], named: Path, trim_db: float | None) -> None:
    """Write each ``(source file, digit, speaker, take)`` as an 8 kHz ``{digit}_{speaker}_{take}.wav``
    in ``named`` (skipping those already there), trimmed of leading and trailing silence
    quieter than ``trim_db`` below the peak when given."""
    named.mkdir(parents=True, exist_ok=True)
    for path, digit, speaker, take in clips:
        target = named / f"{digit}_{speaker.translate(LETTERS).replace('-', '').replace('_', '')}_{take}.wav"
        if not target.exists():
            samples = load_audio(path, FSDD_RATE)
            if trim_db is not None:
                samples = librosa.effects.trim(samples, top_db=trim_db)[0]
            soundfile.write(target, samples, FSDD_RATE, subtype="PCM_16")


def speech_commands_digits() -> list[tuple[Path, int, str, str]]:
    """The digit words of Speech Commands' ``_unknown_`` folder as ``(path, digit, speaker, take)``;
    speakers are the hash before ``_nohash_``, prefixed ``sc``."""
    clips = []
    for digit, word in enumerate(DIGITS):
        for path in sorted((DATA / "speech_commands_v2_test" / "_unknown_").glob(f"{word}_*")):
            speaker, take = path.name.split(".")[0][len(word) + 1:].split("_nohash_")
            clips.append((path, digit, "sc" + speaker, take))
    return clips


def espeak_digits(out: Path) -> list[tuple[Path, int, str, str]]:
    """Synthesise the digits with 112 espeak-ng voices into ``out/words``; ``(path, digit, speaker, take)``."""
    raw = out / "words"
    synthesize_commands(raw, commands=DIGITS, unknown_words=(), n_speakers=112, takes=2, n_silence=0, progress=False)
    return [(path, digit, *path.stem.split("_nohash_")) for digit, word in enumerate(DIGITS) for path in sorted((raw / word).glob("*.wav"))]


def build_manifests(source: str, out: Path) -> tuple[str, str]:
    """Import FSDD and the extra speakers' digits; returns the two manifests' paths."""
    clips = speech_commands_digits() if source == "speech_commands" else espeak_digits(out)
    named = out / "fsdd_layout"
    write_fsdd_layout(clips, named, trim_db=35.0 if source == "speech_commands" else None)
    manifests = out / "fsdd.jsonl", out / "extra.jsonl"
    for corpus, manifest in zip([DATA / "fsdd", named], manifests):
        if not manifest.exists():
            timed(["data", "import", str(corpus), "--layout", "fsdd", "--out", str(manifest)])
    return str(manifests[0]), str(manifests[1])


def run_fold(speaker: str, manifests: tuple[str, str], out: Path) -> dict:
    """Train (or read back) the fold that tests on ``speaker``."""
    run = out / f"fold_{speaker}"
    if (run / "metrics.json").exists():
        print(f"fold {speaker}: trained before in {relative(run)}", flush=True)
        metrics = json.loads((run / "metrics.json").read_text())
        wall, peak = metrics["train_time_s"], metrics.get("peak_rss_mb", float("nan"))
    else:
        wall, peak = timed(["train", "--data", manifests[0], "--extra-train", manifests[1], "--test-speakers", speaker, "data.val_fraction=0", NOISE_OVERRIDE,
                            "--out", str(run), "--quiet"])
        metrics = json.loads((run / "metrics.json").read_text())
    return {"speaker": speaker, "accuracy": round(metrics["test_accuracy"], 4), "n_train": metrics["n_train"],
            "wall_time_s": round(wall, 1), "peak_rss_mb": round(peak, 1), "run": relative(run)}


def markdown(results: dict) -> str:
    """The table: one row per held-out speaker, and their mean."""
    rows = ["| held-out speaker | accuracy with the extra speakers | training clips | wall time |", "|---|---|---|---|"]
    rows += [f"| {r['speaker']} | {r['accuracy']:.3f} | {r['n_train']} | {r['wall_time_s'] / 60:.1f} min |" for r in results.values()]
    accuracies = [r["accuracy"] for r in results.values()]
    rows.append(f"| mean of {len(accuracies)} | {sum(accuracies) / len(accuracies):.3f} | | |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["speech_commands", "espeak"], default="speech_commands",
                        help="where the extra speakers come from (default: Speech Commands' digit words)")
    parser.add_argument("--speaker", action="append", required=True, help="FSDD speaker to hold out (repeatable)")
    parser.add_argument("--out", type=Path, help="folder for the clips, manifests and folds (default runs/bench/extra_speakers/SOURCE)")
    args = parser.parse_args()
    out = args.out or ROOT / "runs" / "bench" / "extra_speakers" / args.source
    manifests = build_manifests(args.source, out)
    run_and_save(args.speaker, f"extra_speakers_{args.source}", lambda speaker: run_fold(speaker, manifests, out), markdown)


if __name__ == "__main__":
    main()
