"""Benchmark: train the default command recognizer on the real corpora and record the figures.

Runs each protocol's ``audiorec`` commands under GNU ``/usr/bin/time -v`` and writes
``benchmarks/results/commands.{json,md}`` with accuracy, clips, wall time, peak resident memory
and the share of training-step time spent waiting for data. The README's results table is
copied from the Markdown file.

Protocols (``../shared/data/README.md``):

- ``fsdd_george_default``: FSDD, train on the other speakers, test on all 500 clips of george,
  default recipe (no recorded noise).
- ``fsdd_george``: the same, with recorded background noise in training.
- ``fsdd_loso``: FSDD leave-one-speaker-out, 6 folds (``audiorec cv``), with recorded noise; each
  fold trains on all five other speakers (cv's default ``--val-fraction 0``: no validation
  speaker, the last epoch's weights are kept).
- ``sc12_speaker_split``: Speech Commands 12 classes, 80/10/10 speaker split, default recipe.
- ``sc12_noise``: the same with recorded noise in training, then tested clean and mixed with the
  two other recordings (``running_tap``, ``doing_the_dishes``) at 20, 10, 5, 0 dB.
- ``sc12_speech_embedding``, ``fsdd_loso_speech_embedding``: the ``sc12_speaker_split`` and
  ``fsdd_loso`` protocols with ``--model speech_embedding`` (a head over Google's pretrained
  speech embedding); its LOSO folds train for 20 epochs.
- ``fsdd_loso_speech_embedding_ft8``: the same LOSO with the embedding's last 8 convolutions
  fine-tuned at 0.3 times the head's learning rate (``features.finetune_layers=8
  train.finetune_lr_scale=0.3``).
- ``sc12_noise_speech_embedding_ft8``: SC12 with that fine-tuning, recorded noise and 20 epochs,
  then the noisy test.

"Recorded noise" is four of the six Speech Commands background recordings in
``../shared/data/noise`` (dude_miaowing, exercise_bike, pink_noise, white_noise); running_tap
and doing_the_dishes are kept for the noisy test.

Usage::

    .venv/bin/python benchmarks/train_commands.py                   # every protocol (about an hour)
    .venv/bin/python benchmarks/train_commands.py --only fsdd_loso
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _common import DATA, NOISE_OVERRIDE, ROOT, run_and_save
from _common import timed as timed_command

TEST_NOISES = ["running_tap", "doing_the_dishes"]
SC12 = str(DATA / "speech_commands_v2_test")


def protocols(out: Path) -> dict[str, list[list[str]]]:
    """Each protocol's commands (arguments after ``audiorec``)."""
    noise = NOISE_OVERRIDE
    test_noise = [a for n in TEST_NOISES for a in ("--noise", str(DATA / "noise" / f"{n}.wav"))]
    fsdd = str(DATA / "fsdd")
    return {
        "fsdd_george_default": [["train", "--data", fsdd, "--test-speakers", "george", "--out", str(out / "fsdd_george_default")]],
        "fsdd_george": [["train", "--data", fsdd, "--test-speakers", "george", "--out", str(out / "fsdd_george"), noise]],
        "fsdd_loso": [["cv", "--data", fsdd, "--folds", "loso", "--out", str(out / "fsdd_loso"), noise]],
        "sc12_speaker_split": [["train", "--data", SC12, "--out", str(out / "sc12_speaker_split")]],
        "sc12_speech_embedding": [["train", "--data", SC12, "--out", str(out / "sc12_speech_embedding"),
                                   "--model", "speech_embedding"]],
        "fsdd_loso_speech_embedding": [["cv", "--data", fsdd, "--folds", "loso", "--out",
                                        str(out / "fsdd_loso_speech_embedding"), "--model", "speech_embedding",
                                        "--max-epochs", "20", noise]],
        "fsdd_loso_speech_embedding_ft8": [["cv", "--data", fsdd, "--folds", "loso", "--out",
                                            str(out / "fsdd_loso_speech_embedding_ft8"), "--model", "speech_embedding",
                                            "--max-epochs", "20", noise, "features.finetune_layers=8",
                                            "train.finetune_lr_scale=0.3"]],
        "sc12_noise_speech_embedding_ft8": [
            ["train", "--data", SC12, "--out", str(out / "sc12_noise_speech_embedding_ft8"), "--model", "speech_embedding",
             "--max-epochs", "20", noise, "features.finetune_layers=8", "train.finetune_lr_scale=0.3"],
            ["evaluate", str(out / "sc12_noise_speech_embedding_ft8"), *test_noise, "--snr-db", "20,10,5,0"],
        ],
        "sc12_noise": [
            ["train", "--data", SC12, "--out", str(out / "sc12_noise"), noise],
            ["evaluate", str(out / "sc12_noise"), *test_noise, "--snr-db", "20,10,5,0"],
        ],
    }


def timed(args: list[str], seed: int) -> tuple[float, float]:
    """Run ``audiorec ARGS`` under GNU time; return (wall seconds, peak RSS MB)."""
    if args[0] in ("train", "cv"):
        args = [*args, "--seed", str(seed), "--quiet"]
    return timed_command(args)


def command_text(commands: list[list[str]], out: Path) -> str:
    return " && ".join(
        "audiorec " + " ".join(a.replace(str(DATA), "../shared/data").replace(str(out) + "/", "runs/") for a in c)
        for c in commands
    )


def run_protocol(name: str, commands: list[list[str]], out: Path, seed: int) -> dict:
    shutil.rmtree(out / name, ignore_errors=True)
    wall, peak = 0.0, 0.0
    for args in commands:
        w, p = timed(args, seed)
        wall, peak = wall + w, max(peak, p)
    result = {"protocol": name, "command": command_text(commands, out), "wall_time_s": round(wall, 1),
              "peak_rss_mb": round(peak, 1), "seed": seed}
    metrics = json.loads((out / name / "metrics.json").read_text())
    if name.startswith("fsdd_loso"):
        result.update(
            accuracy=metrics["mean_accuracy"], worst_accuracy=metrics["worst_accuracy"],
            worst_speaker=metrics["worst_speaker"], n_test=metrics["n_test"],
            folds={f["speaker"]: f["test_accuracy"] for f in metrics["folds"]},
            data_wait_share=max(json.loads((out / name / f"fold_{f['speaker']}" / "metrics.json").read_text())["data_wait_share"]
                                for f in metrics["folds"]),
        )
    else:
        result.update(accuracy=round(metrics["test_accuracy"], 4), n_test=metrics["n_test"], epochs=metrics["epochs"],
                      n_parameters=metrics["n_parameters"], data_wait_share=metrics["data_wait_share"])
    if name == "sc12_noise":
        noisy = json.loads((out / name / "evaluate" / "metrics.json").read_text())
        result["snr_db"] = dict(zip([f"{s:g}" for s in noisy["snr_db"]], noisy["accuracy"]))
        result["drop_at_5db"] = round(noisy["clean_accuracy"] - result["snr_db"]["5"], 4)
    return result


def markdown(results: dict) -> str:
    rows = ["| protocol | accuracy | test clips | wall time | peak memory | data wait | command |",
            "|---|---|---|---|---|---|---|"]
    for r in results.values():
        accuracy = f"{r['accuracy']:.3f}"
        if "worst_accuracy" in r:
            accuracy = f"mean {r['accuracy']:.3f}, worst {r['worst_accuracy']:.3f} ({r['worst_speaker']})"
        if "snr_db" in r:
            accuracy += " clean; " + ", ".join(f"{v:.3f} at {k} dB" for k, v in r["snr_db"].items())
        wait = f"{100 * r['data_wait_share']:.0f}%" if r.get("data_wait_share") is not None else "-"
        rows.append(f"| {r['protocol']} | {accuracy} | {r['n_test']} | {r['wall_time_s'] / 60:.1f} min | "
                    f"{r['peak_rss_mb']:.0f} MB | {wait} | `{r['command']}` |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", help="run just these protocols (repeatable)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench"), help="where the run directories go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: the benchmarks need the shared corpora")
    out = Path(args.out)
    available = protocols(out)
    unknown = sorted(set(args.only or []) - set(available))
    if unknown:
        raise SystemExit(f"unknown protocols {unknown}; choose from {sorted(available)}")
    run_and_save(args.only or list(available), "commands", lambda name: run_protocol(name, available[name], out, args.seed),
                 markdown)


if __name__ == "__main__":
    main()
