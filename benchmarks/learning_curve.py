"""Benchmark: a learning curve, test accuracy against the share of training speakers kept.

Is a model limited by its method or by its data? Train it again on a fraction of a run's
training speakers and see how fast accuracy falls (Banko & Brill 2001; Hestness et al. 2017,
"Deep learning scaling is predictable, empirically", arXiv:1712.00409: accuracy grows as a
power law of the training-set size until the model's capacity or the task's noise floor is
reached). A curve still climbing steeply at the full set says more data would pay; a flat one
says the model, not the data, is the limit. A pretrained front end should be flatter than a
network trained from scratch: that is what the pretraining bought.

For each ``--fraction`` f, the run's training split is cut by speaker (the run's speakers, and
its speaker-less clips such as ``_silence_``, each ordered by a hash of their name, the first f
of each kept, so a smaller fraction's speakers are a subset of a larger one's), without the
clips of its ``data.extra_train`` (the training command adds those again when its arguments
name them). The run's validation clips are added, the manifest written to
``OUT/<name>_<percent>.jsonl``, and ``audiorec train --data MANIFEST data.test_fraction=0
ARGS`` trains on it (the trainer draws its own validation speakers from it, for early
stopping and the weights kept). Each model is then scored by ``audiorec evaluate`` on the
run's own test split, the same clips at every fraction. A fraction already trained in
``--out`` is read back, not trained again. With ``--full RUN``, ``--fraction 1`` is not trained:
``RUN``, the same recipe trained on the whole corpus (``--run`` itself when it is), is read back
as the 100% row; its test split must be ``--run``'s.

Writes ``benchmarks/results/learning_curve.{json,md}`` (one row per name and fraction, merged
with those already there) and ``learning_curve.png`` beside them (accuracy against the number
of training clips, one line per name).

Usage (Dec 6's host, 2 cores; the narrow ``cnn`` 11 and 15 min at 25 and 50%, two side by
side; ``speech_embedding`` 13 and 27 min, beside other trainings)::

    .venv/bin/python benchmarks/learning_curve.py --run runs/neg/narrow_long --full runs/neg/narrow_long \\
        --name "narrow cnn" --fraction 0.25 --fraction 0.5 --fraction 1 \\
        -- "model.channels=[8,16,24,32]" data.extra_train=runs/neg/an4_long.jsonl
    .venv/bin/audiorec train --data ../shared/data/speech_commands_v2_test --out runs/curve/speech_embedding_full \\
        --model speech_embedding
    .venv/bin/python benchmarks/learning_curve.py --run runs/neg/narrow_long --full runs/curve/speech_embedding_full \\
        --name speech_embedding --fraction 0.25 --fraction 0.5 --fraction 1 -- --model speech_embedding
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from _common import RESULTS, ROOT, machine, relative, run_and_save, timed

from audiorec.config import load_config
from audiorec.data.manifest import read_manifest, write_manifest
from audiorec.plots.style import save_figure, styled


def fraction_manifest(run: Path, fraction: float, out: Path) -> int:
    """Write the manifest of ``fraction`` of ``run``'s training speakers plus its validation clips.

    Parameters
    ----------
    run : Path
        A run directory of ``audiorec train`` (``splits/train.jsonl``, ``splits/val.jsonl``,
        ``config.yaml``).
    fraction : float in (0, 1]
        Share of the training speakers kept, and separately of the speaker-less clips.
    out : Path
        The manifest to write (JSON Lines, the splits' own utterances), atomically.

    Returns
    -------
    int
        Training clips kept (the validation clips not counted).

    Raises
    ------
    ValueError
        ``fraction`` is outside (0, 1], or the run's ``data.extra_train`` is a folder, not a manifest.
    ManifestError
        The run's splits or its extra clips' manifest are missing or malformed (the file named).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"--fraction {fraction}: must be in (0, 1]")
    extra = load_config(run / "config.yaml").data.extra_train
    if extra and not str(extra).endswith(".jsonl"):
        raise ValueError(f"{run}: data.extra_train={extra} is a folder; import it to a .jsonl manifest "
                         "(audiorec data import) and train the run on that, so its clips can be told apart")
    extra_paths = {u.path for u in read_manifest(ROOT / extra)} if extra else set()
    train = [u for u in read_manifest(run / "splits" / "train.jsonl") if u.path not in extra_paths]
    # Each speaker, or each file without one, ordered by a hash of its name: a smaller share's
    # groups are the first of a larger share's.
    keep: set[str] = set()
    for groups in ({u.speaker for u in train if u.speaker}, {u.path for u in train if not u.speaker}):
        ordered = sorted(groups, key=lambda g: hashlib.sha1(("curve" + g).encode("utf-8")).hexdigest())
        keep |= set(ordered[: round(fraction * len(ordered))])
    kept = [u for u in train if (u.speaker or u.path) in keep]
    write_manifest(out, kept + read_manifest(run / "splits" / "val.jsonl"))
    return len(kept)


def _paths(manifest: Path) -> set[str]:
    return {u.path for u in read_manifest(manifest)}


def markdown(results: dict) -> str:
    """The README's table: one row per name and fraction."""
    splits = ", ".join(sorted({f"`{r['split_of']}`" for r in results.values()}))
    lines = [f"Test: the test split of {splits}, the same clips in every row; validation: drawn by each "
             "training from its own clips, the run's own at 100% (not comparable between rows); training clips without the extra "
             f"ones (`data.extra_train`); {machine()}.", "",
             "| model | training speakers kept | training clips | best validation | test accuracy | training time |",
             "|---|---|---|---|---|---|"]
    for key in sorted(results, key=lambda k: (results[k]["name"], results[k]["fraction"])):
        r = results[key]
        lines.append(f"| {r['name']} | {r['fraction']:.0%} | {r['n_train']} | {r['best_val_accuracy']:.3f} "
                     f"| **{r['test_accuracy']:.3f}** | {r['wall_s'] / 60:.0f} min |")
    return "\n".join(lines) + "\n"


@styled
def plot(results: dict, path: Path) -> None:
    """Accuracy against training clips, one line per name, in the project's style, written
    atomically to ``path`` (PNG; :func:`audiorec.plots.style.save_figure`)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in sorted({r["name"] for r in results.values()}):
        rows = sorted((r for r in results.values() if r["name"] == name), key=lambda r: r["n_train"])
        ax.plot([r["n_train"] for r in rows], [r["test_accuracy"] for r in rows], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ticks = sorted({r["n_train"] for r in results.values()})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training clips (log scale)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="the full-data run whose split is cut, e.g. runs/neg/narrow_long")
    parser.add_argument("--name", required=True, help="the model's name in the table and the plot")
    parser.add_argument("--fraction", type=float, action="append", required=True,
                        help="share of the training speakers to keep (repeatable), e.g. 0.25")
    parser.add_argument("--full", type=Path,
                        help="a run of the same recipe on the whole split (e.g. --run itself), read back as the 100%% row (--fraction 1)")
    parser.add_argument("--out", type=Path, default=Path("runs/curve"), help="folder of the manifests and runs (default runs/curve)")
    parser.add_argument("train_args", nargs="*", help="after --: the training command's own arguments (--model, key=value)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "_" for c in args.name.lower())

    def run(key: str) -> dict:
        fraction = float(key.rsplit("@", 1)[1])
        if fraction == 1 and args.full:
            if _paths(args.full / "splits" / "test.jsonl") != _paths(args.run / "splits" / "test.jsonl"):
                raise SystemExit(f"--full {args.full}: its test split is not {args.run}'s, so its accuracy is not on the same clips")
            stem, test_accuracy = args.full, json.loads((args.full / "metrics.json").read_text())["test_accuracy"]
        else:
            stem = args.out / f"{slug}_{round(fraction * 100)}"
            manifest = stem.with_suffix(".jsonl")
            fraction_manifest(args.run, fraction, manifest)
            if not (stem / "metrics.json").exists():
                timed(["train", "--data", str(manifest), "--out", str(stem), "--quiet",
                       "data.test_fraction=0", *args.train_args])
            evaluation = stem / "eval_test"
            timed(["evaluate", str(stem), "--data", str(args.run / "splits" / "test.jsonl"), "--out", str(evaluation)])
            test_accuracy = json.loads((evaluation / "metrics.json").read_text())["accuracy"]
        metrics = json.loads((stem / "metrics.json").read_text())
        # The trainer's own training clips: the kept speakers' and those of the run's validation
        # speakers it did not draw for its own validation (the extra clips not counted).
        return {"name": args.name, "fraction": fraction, "n_train": metrics["n_train"] - metrics.get("n_extra_train", 0),
                "run": relative(stem), "split_of": relative(args.run), "train_args": args.train_args,
                "best_val_accuracy": round(metrics["best_val_accuracy"], 4), "test_accuracy": round(test_accuracy, 4),
                "wall_s": metrics.get("train_time_s", 0.0)}

    def table(results: dict) -> str:
        plot(results, RESULTS / "learning_curve.png")
        return markdown(results)

    run_and_save([f"{args.name}@{f}" for f in args.fraction], "learning_curve", run, table)


if __name__ == "__main__":
    main()
