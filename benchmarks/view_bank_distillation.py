"""Benchmark: "patient" distillation of a small CNN from a bank of teacher-labelled views.

Beyer et al. 2022 ("Knowledge distillation: A good teacher is patient and consistent", CVPR)
close most of a teacher-student gap by *function matching*: teacher and student see the very
same strongly augmented and mixed input (mixup, Zhang et al. 2018), the student learns the
teacher's whole output distribution on it, and training runs for many more epochs than
training from the labels would. ``audiorec train --teacher`` already is consistent (the
teacher hears the student's augmented batch), but with ``speech_embedding`` as the teacher it
costs about 45 min for 40 epochs on this machine, so hundreds of epochs are out of reach.
This script makes the teacher's cost a fixed one, as Beyer et al.'s "fixed teacher" variants
do, so the student can train for long:

1. **Bank.** Every training clip of ``--run``'s split gets ``--views`` views, each drawn by the
   run's own augmentation chain (:class:`audiorec.augment.WaveformAugment`, seeded per view as
   in training); half of the views are mixed with another clip of their batch of 64, the other
   clip weighted by ``U(0, 0.5)``. The teacher (an ONNX export of a trained run,
   :class:`audiorec.runtime.OnnxModel`) gives each view its class probabilities; the student's
   own normalised log-mel features of the view
   (:meth:`audiorec.models.classifier.CommandClassifier.normalised_features`, 40 x 101, float16)
   are stored beside them, and so are the frames of Google's speech embedding of the view
   (:class:`audiorec.pretrained.SpeechEmbedding`, the frozen front end of ``speech_embedding``;
   96 x 12 float16, the 12 frames whose 775-ms windows are centred where the student's last
   stage's 12 time steps are). Without ``--teacher`` the bank holds no probabilities and the
   student learns from the labels (``--ce 1``), with or without the embedding. Two processes
   build the two halves (shards) of the views; each shard is written once, atomically, and
   reused by later runs.
2. **Student.** The student's encoder (its front end is fixed, so the stored features are
   exactly what it would compute) trains on the bank for ``--passes`` passes (a pass is
   ``--views`` epochs of the training clips): loss ``(1 - ce) T^2 KL(teacher_T || student_T) +
   ce * CE`` (Hinton et al. 2015; the cross-entropy with the mixed labels as mixup weights them,
   label smoothing 0.1), AdamW (lr ``--lr``, weight decay 0.01), 5% linear warm-up then cosine
   decay, gradient clipping at 5, an exponential moving average of the weights (decay up to
   0.999) that is evaluated. ``--hint W`` adds ``W`` times a FitNets hint (Romero et al. 2015):
   a 1x1 convolution, used in training only (its weights are not the student's), maps the
   student's last stage, averaged over frequency (channels x 12 time steps), to the speech
   embedding's frames, standardised per dimension over the bank, with a mean squared error. The
   embedding was pretrained on far more speakers than the corpus has (Lin et al. 2020), which is
   what makes ``speech_embedding`` the zoo's best model; the hint asks the student to carry
   some of that representation, not only the teacher's 12 probabilities. Validation accuracy
   is measured 20 times during training; the test accuracy once at the end, on the run's own
   validation and test clips.

Writes ``benchmarks/results/view_bank_distillation.{json,md}`` (one row per ``--name``,
merged with those already there) beside the run's own figures from its ``metrics.json``.

Usage (Dec 6's host, 2 cores; the bank 14 min before it stored the embedding's frames, 17 min
without a teacher since; a five-pass student 18 min on one thread, a hinted one up to 15% slower)::

    # the teacher: runs/se_sc12 of the README's pretrained front end, exported (fp32 beside int8)
    .venv/bin/audiorec export runs/se_sc12 --int8 --out runs/fe/se_sc12.onnx
    .venv/bin/python benchmarks/view_bank_distillation.py --run runs/neg/narrow_long \\
        --teacher runs/fe/se_sc12.fp32.onnx --ce 0.5 --passes 5 --name kd_ce0.5_p5
    # no teacher: the labels, with the speech embedding's frames as a hint (a bank of its own)
    .venv/bin/python benchmarks/view_bank_distillation.py --run runs/neg/narrow_long \\
        --hint 1 --passes 12 --threads 1 --name "labels and embedding hint"
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from _common import ROOT, machine, relative, run_and_save

from audiorec.audio import fit_to_length
from audiorec.augment import WaveformAugment
from audiorec.config import load_config
from audiorec.data.dataset import ClipDataset, load_waveforms
from audiorec.data.manifest import SILENCE_LABEL, read_manifest
from audiorec.models import build_model, count_parameters
from audiorec.models.cnn import CNN
from audiorec.pretrained import SpeechEmbedding
from audiorec.runtime import OnnxModel

SHARDS = 2
BATCH = 64  # views labelled per teacher call, and the pool a mixed view's second clip comes from
MIX_P = 0.5  # share of views mixed with another clip
# The speech embedding of a 1-s clip (padded by 0.5 s each side) has 16 frames, the i-th centred
# at (80 i - 120) ms of the clip; the student's last stage (three 2x poolings of 10-ms frames) has
# 12 time steps centred near (80 j + 40) ms. Frames 2..13 are the ones that line up.
HINT_FRAMES = slice(2, 14)


def student_config(run: Path):
    """The run's training config (student network, front end, augmentation), from ``run/config.yaml``.

    Raises
    ------
    ConfigError
        From :func:`audiorec.config.load_config`: a missing or invalid config file.
    """
    return load_config(run / "config.yaml")


def build_shard(run: Path, teacher_path: Path | None, views: int, shard: int, target: Path) -> str:
    """Write one shard of the bank: ``views // SHARDS`` views of every training clip of ``run``.

    Parameters
    ----------
    run : Path
        A trained command run (``config.yaml``, ``labels.json``, ``splits/train.jsonl``).
    teacher_path : Path or None
        The teacher's ONNX export (``audiorec export``), with the run's labels; None: no
        teacher (the bank then has no ``probs``).
    views : int
        Views per training clip over all shards; this shard draws ``views // SHARDS`` of them,
        each seeded by ``(7000 + shard, epoch, clip index)`` as training seeds its augmentation.
    shard : int
        Which shard, ``0 <= shard < SHARDS``.
    target : Path
        The ``.npz`` written (atomically, through ``*.partial.npz``): ``feats`` [n_views, n_mels,
        n_frames] float16 (the student's normalised log-mel features), ``probs`` [n_views,
        n_classes] float32 (the teacher's), ``target_a``/``target_b`` [n_views] int (the clip's
        class and that of the clip mixed in), ``lam`` [n_views] float32 (the first clip's weight,
        1 for an unmixed view), ``hint`` [n_views, 96, 12] float16 (the view's speech embedding
        frames ``HINT_FRAMES``).

    Returns
    -------
    str
        A one-line summary (views, wall seconds).

    Raises
    ------
    SystemExit
        The teacher's labels are not the run's (its file named).
    ModelError
        The teacher file is missing or not a loadable audiorec ONNX model.
    FileNotFoundError
        The speech embedding's model files are not installed (``make install`` installs them).
    ValueError
        The run's sample rate is not 16 kHz, the only one the speech embedding takes.

    References
    ----------
    Beyer et al. 2022 (consistent, mixed views); Zhang et al. 2018 (mixup); Lin et al. 2020
    (the speech embedding).
    """
    torch.set_num_threads(1)
    started = time.time()
    config = student_config(run)
    train = read_manifest(run / "splits" / "train.jsonl")
    labels = json.loads((run / "labels.json").read_text())
    index = {label: i for i, label in enumerate(labels)}
    sample_rate = config.features.sample_rate
    clip_samples = round(config.data.clip_ms * sample_rate / 1000)
    waves = load_waveforms(train, sample_rate, progress=False)
    targets = [index[u.label] for u in train]
    talkers = [w for w, u in zip(waves, train) if u.label != SILENCE_LABEL]
    augment = WaveformAugment(config.augment, sample_rate, clip_samples, babble=talkers)
    window_targets = [index[label] for label in config.augment.random_window.labels if label in index]
    data = ClipDataset(waves, targets, clip_samples, augment, 7000 + shard, None, window_targets)
    model = build_model(config, len(labels)).eval()
    teacher = None if teacher_path is None else OnnxModel(teacher_path, threads=1)
    if teacher is not None and teacher.labels != labels:
        raise SystemExit(f"{teacher_path}: the teacher's labels {teacher.labels} are not the run's {labels}")
    embedding = SpeechEmbedding(sample_rate).eval()
    rng = np.random.default_rng(100 + shard)
    feats, probs, target_a, target_b, lams, hints = [], [], [], [], [], []
    for epoch in range(views // SHARDS):
        data.set_epoch(epoch)
        order = rng.permutation(len(data))
        for start in range(0, len(data), BATCH):
            idx = order[start:start + BATCH]
            batch = np.stack([data[i][0].numpy() for i in idx])
            y = np.array([targets[i] for i in idx])
            perm = rng.permutation(len(idx))
            mixed = rng.random(len(idx)) < MIX_P
            lam = np.where(mixed, rng.uniform(0.5, 1.0, len(idx)), 1.0).astype(np.float32)
            x = (lam[:, None] * batch + (1 - lam[:, None]) * batch[perm]).astype(np.float32)
            if teacher is not None:
                probs.append(teacher(x).astype(np.float32))
            with torch.no_grad():
                feats.append(model.normalised_features(torch.from_numpy(x)).numpy().astype(np.float16))
                hints.append(embedding(torch.from_numpy(x))[:, :, HINT_FRAMES].numpy().astype(np.float16))
            target_a.append(y)
            target_b.append(y[perm])
            lams.append(lam)
        print(f"shard {shard}: views of epoch {epoch + 1}/{views // SHARDS} in {time.time() - started:.0f} s", flush=True)
    partial = target.with_name(target.name + ".partial.npz")
    arrays = {"feats": feats, "target_a": target_a, "target_b": target_b, "lam": lams, "hint": hints}
    if teacher is not None:
        arrays["probs"] = probs
    np.savez(partial, **{key: np.concatenate(value) for key, value in arrays.items()})
    os.replace(partial, target)
    return f"shard {shard}: {sum(len(f) for f in feats)} views in {time.time() - started:.0f} s"


def build_bank(run: Path, teacher: Path | None, views: int, folder: Path) -> tuple[list[Path], float]:
    """The bank's shards in ``folder`` (built by :func:`build_shard`, in parallel, where missing).

    Returns
    -------
    (list of Path, float)
        The ``SHARDS`` shard files, and the seconds this call spent building (0 when all existed).

    Raises
    ------
    SystemExit, ModelError
        From :func:`build_shard`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shards = [folder / f"shard{i}.npz" for i in range(SHARDS)]
    missing = [i for i, path in enumerate(shards) if not path.exists()]
    started = time.time()
    if missing:
        with ProcessPoolExecutor(len(missing)) as pool:
            for line in pool.map(build_shard, *zip(*[(run, teacher, views, i, shards[i]) for i in missing])):
                print(line, flush=True)
    return shards, time.time() - started


def load_split(run: Path, split: str, labels: list[str], clip_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's ``split`` clips as evaluation sees them, decoded once for every later scoring.

    Returns waveforms [n_clips, clip_samples] at 16 kHz, each cut or padded as in evaluation
    (:func:`audiorec.audio.fit_to_length`), and class indices [n_clips] into ``labels`` (-1 for
    a label the model does not have, which then always counts as wrong).

    Raises
    ------
    audiorec.data.manifest.ManifestError
        The split's manifest is missing or malformed (the message names it).
    audiorec.audio.AudioError
        A clip cannot be decoded (from :func:`audiorec.data.dataset.load_waveforms`, naming it).
    """
    utterances = read_manifest(run / "splits" / f"{split}.jsonl")
    waves = load_waveforms(utterances, progress=False)
    x = torch.from_numpy(np.stack([fit_to_length(w, clip_samples) for w in waves]))
    y = torch.tensor([labels.index(u.label) if u.label in labels else -1 for u in utterances])
    return x, y


def accuracy(model, clips: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Top-1 accuracy (fraction) of ``model`` on ``clips`` (:func:`load_split`).

    ``model`` maps waveforms [batch, clip_samples] at 16 kHz to class scores [batch, n_classes].
    """
    x, y = clips
    with torch.no_grad():
        predicted = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return float((predicted == y).float().mean())


def train_student(run: Path, shards: list[Path], args) -> dict:
    """Train the student's encoder on the bank; its validation curve and final accuracies.

    Parameters
    ----------
    run : Path
        The student's run (config, labels, validation and test splits).
    shards : list of Path
        The bank (:func:`build_bank`).
    args : argparse.Namespace
        ``passes``, ``batch_size``, ``temperature``, ``ce``, ``hint``, ``lr``, ``seed``,
        ``threads``, ``views``.

    Returns
    -------
    dict
        ``views``, ``teacher_accuracy_clean_views`` (None without a teacher), ``n_parameters``
        (the student's, without the hint's projection), ``steps``, ``clip_epochs``,
        ``val_accuracy`` and ``test_accuracy`` (of the weights' moving average at the end),
        ``best_val_accuracy_during``, ``train_seconds`` and ``curve`` (step, loss,
        val_accuracy, seconds; 20 points).

    Raises
    ------
    SystemExit
        ``ce < 1`` with a bank that has no teacher probabilities, or ``hint > 0`` with a student
        that is not a :class:`audiorec.models.cnn.CNN` (the hint reads its last stage).

    References
    ----------
    Hinton et al. 2015 (the KL term at temperature T, scaled by T^2); Beyer et al. 2022;
    Romero et al. 2015 (FitNets: hints from a teacher's representation).
    """
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = student_config(run)
    labels = json.loads((run / "labels.json").read_text())
    clip_samples = round(config.data.clip_ms * config.features.sample_rate / 1000)
    val_clips = load_split(run, "val", labels, clip_samples)
    parts = [np.load(path) for path in shards]
    feats = torch.from_numpy(np.concatenate([p["feats"] for p in parts]))
    has_teacher = all("probs" in p.files for p in parts)
    if args.ce < 1 and not has_teacher:
        raise SystemExit(f"{shards[0].parent}: the bank was built without a teacher, so --ce must be 1 (got {args.ce})")
    target_a = torch.from_numpy(np.concatenate([p["target_a"] for p in parts])).long()
    target_b = torch.from_numpy(np.concatenate([p["target_b"] for p in parts])).long()
    lam = torch.from_numpy(np.concatenate([p["lam"] for p in parts]))
    n = len(feats)
    teacher_accuracy, soft = None, None
    if has_teacher:
        probs = torch.from_numpy(np.concatenate([p["probs"] for p in parts]))
        clean = lam == 1
        teacher_accuracy = round(float((probs[clean].argmax(1) == target_a[clean]).float().mean()), 4)
        soft = torch.softmax(torch.log(probs.clamp_min(1e-8)) / args.temperature, 1)
    model = build_model(config, len(labels))
    encoder = model.encoder
    ema = copy.deepcopy(model).eval()
    trained = list(encoder.parameters())
    if args.hint > 0:
        if not isinstance(encoder, CNN):
            raise SystemExit(f"--hint reads the last stage of a cnn student; {run} trains {config.model.name}")
        hint = torch.from_numpy(np.concatenate([p["hint"] for p in parts])).float()
        hint = (hint - hint.mean(dim=(0, 2), keepdim=True)) / hint.std(dim=(0, 2), keepdim=True).clamp_min(1e-6)
        projection = torch.nn.Conv1d(config.model.channels[-1], hint.shape[1], 1)  # training only
        trained += list(projection.parameters())
    optimizer = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.01)
    # Outside Lightning (the bank holds features, not waveforms), so the loop is this script's own.
    # Its schedule (warm-up factor times a cosine over all steps) and moving average (batch-norm
    # statistics copied, not averaged) differ slightly from audiorec.tasks.base's lr_factor and
    # Task; they are kept as they are because they produced the README's figures.
    steps = int(args.passes * n / args.batch_size)
    warmup = int(0.05 * steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1, (s + 1) / max(1, warmup))
                                                 * 0.5 * (1 + math.cos(math.pi * min(1, s / steps))))
    generator = torch.Generator().manual_seed(args.seed)
    step, started, curve = 0, time.time(), []
    eval_every = max(1, steps // 20)
    model.train()
    while step < steps:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - args.batch_size + 1, args.batch_size):
            if step >= steps:
                break
            i = order[start:start + args.batch_size]
            if args.hint > 0:  # the CNN's own forward in its two halves, keeping the last stage for the hint
                stage = encoder.last_stage(feats[i].float())  # (batch, channels, freq, time)
                logits = encoder.head(stage)
            else:
                logits = encoder(feats[i].float())
            loss = torch.zeros(())
            if args.ce < 1:
                t = args.temperature
                loss = (1 - args.ce) * t * t * F.kl_div(F.log_softmax(logits / t, 1), soft[i], reduction="batchmean")
            if args.ce > 0:
                ce = (lam[i] * F.cross_entropy(logits, target_a[i], reduction="none", label_smoothing=0.1)
                      + (1 - lam[i]) * F.cross_entropy(logits, target_b[i], reduction="none", label_smoothing=0.1))
                loss = loss + args.ce * ce.mean()
            if args.hint > 0:
                predicted = projection(stage.mean(dim=2))  # (batch, 96, time steps)
                loss = loss + args.hint * F.mse_loss(predicted, F.adaptive_avg_pool1d(hint[i], predicted.shape[2]))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 5.0)
            optimizer.step()
            schedule.step()
            step += 1
            with torch.no_grad():
                decay = min(0.999, (1 + step) / (10 + step))
                for averaged, current in zip(ema.parameters(), model.parameters()):
                    averaged.mul_(decay).add_(current.detach(), alpha=1 - decay)
                for averaged, current in zip(ema.buffers(), model.buffers()):
                    averaged.copy_(current)
            if step % eval_every == 0 or step == steps:
                curve.append({"step": step, "loss": round(loss.item(), 4),
                              "val_accuracy": round(accuracy(ema, val_clips), 4),
                              "seconds": round(time.time() - started)})
                print(json.dumps(curve[-1]), flush=True)
                model.train()
    return {"views": n, "teacher_accuracy_clean_views": teacher_accuracy,
            "n_parameters": count_parameters(model), "steps": steps,
            "clip_epochs": round(steps * args.batch_size / (n / args.views)),
            "val_accuracy": round(accuracy(ema, val_clips), 4),
            "test_accuracy": round(accuracy(ema, load_split(run, "test", labels, clip_samples)), 4),
            "best_val_accuracy_during": max(c["val_accuracy"] for c in curve),
            "train_seconds": round(time.time() - started), "curve": curve}


def markdown(results: dict) -> str:
    """The README's table: one row per variant (each with its own teacher), in the order run.

    Before the first variant, and again wherever the student's run was trained anew (its own
    validation and test accuracy changed, e.g. retrained on another host after its folder was
    lost), a row gives the run's own figures from the labels, so each variant sits under the run
    whose split and bank it used.
    """
    any_result = next(iter(results.values()))
    lines = [f"Student `{any_result['run']}` ({any_result['n_parameters'] / 1000:.1f}k parameters); "
             f"{any_result['machine']}. \"teacher on views\": the teacher's top-1 accuracy on the bank's unmixed views.", "",
             "| variant | teacher | teacher on views | views per clip | passes (clip-epochs) | CE weight | T | "
             "embedding hint weight | val accuracy | test accuracy |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    own = None
    for name, r in results.items():
        if (r["run_val_accuracy"], r["run_test_accuracy"]) != own:
            again = "" if own is None else ", trained again"
            own = r["run_val_accuracy"], r["run_test_accuracy"]
            lines.append(f"| the run itself, from the labels{again} | - | - | - | ({r['run_epochs']}) | - | - | - | "
                         f"{own[0]:.3f} | {own[1]:.3f} |")
        teacher = "-" if r["teacher"] is None else f"`{r['teacher']}`"
        on_views = "-" if r["teacher_accuracy_clean_views"] is None else f"{r['teacher_accuracy_clean_views']:.3f}"
        lines.append(f"| {name} | {teacher} | {on_views} | {r['views_per_clip']} | "
                     f"{r['passes']:g} ({r['clip_epochs']}) | {r['ce']:g} | "
                     f"{r['temperature']:g} | {r.get('hint', 0):g} | {r['val_accuracy']:.3f} | **{r['test_accuracy']:.3f}** |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="the student's run (config, split, labels), e.g. runs/neg/narrow_long")
    parser.add_argument("--teacher", type=Path,
                        help="the teacher's fp32 ONNX export, e.g. runs/fe/se_sc12.fp32.onnx (none: labels only, --ce 1)")
    parser.add_argument("--views", type=int, default=40, help="views per training clip in the bank (default 40)")
    parser.add_argument("--bank", type=Path, help="folder of the bank's shards "
                        "(default runs/view_bank/<run>_<views>, with _labels appended without --teacher)")
    parser.add_argument("--passes", type=float, default=5, help="passes over the bank (default 5)")
    parser.add_argument("--ce", type=float, help="weight of the cross-entropy with the labels (default 0.5, 1 without --teacher)")
    parser.add_argument("--temperature", type=float, default=1.0, help="distillation temperature T (default 1)")
    parser.add_argument("--hint", type=float, default=0.0,
                        help="weight of the speech-embedding hint, a mean squared error (default 0: none)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads for the student (default 1)")
    parser.add_argument("--name", required=True, help="the variant's row in the results table")
    args = parser.parse_args()
    if args.ce is None:
        args.ce = 0.5 if args.teacher else 1.0
    run = args.run.resolve()
    bank = args.bank or ROOT / "runs" / "view_bank" / f"{run.name}_{args.views}{'' if args.teacher else '_labels'}"
    shards, bank_seconds = build_bank(run, args.teacher and args.teacher.resolve(), args.views, bank)
    metrics = json.loads((run / "metrics.json").read_text())

    def one(name: str) -> dict:
        result = train_student(run, shards, args)
        return {"run": relative(run), "teacher": args.teacher and relative(args.teacher), "machine": machine(),
                "views_per_clip": args.views, "passes": args.passes, "ce": args.ce, "temperature": args.temperature,
                "hint": args.hint,
                "lr": args.lr, "seed": args.seed, "bank_seconds_this_call": round(bank_seconds),
                "run_val_accuracy": metrics["best_val_accuracy"], "run_test_accuracy": metrics["test_accuracy"],
                "run_epochs": metrics["epochs"], **result}

    run_and_save([args.name], "view_bank_distillation", one, markdown)


if __name__ == "__main__":
    main()
