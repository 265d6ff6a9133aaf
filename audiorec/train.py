"""Train a command recognizer end to end: data -> split -> model -> Lightning fit -> test metrics.

``train(data, out, config)`` is what ``audiorec train`` runs; everything it writes goes into the
run directory (see :mod:`audiorec.run`). Interrupted runs resume from ``checkpoints/last.ckpt``
when the same command is run again.
"""

from __future__ import annotations

import os
import resource
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from audiorec.augment import WaveformAugment
from audiorec.config import Config, ConfigError, config_from_yaml, to_yaml
from audiorec.data.corpora import import_corpus
from audiorec.data.dataset import ClipDataset, load_waveforms
from audiorec.data.manifest import Utterance, read_manifest, write_manifest
from audiorec.data.splits import speaker_split
from audiorec.evaluate import evaluate
from audiorec.models import build_model, count_parameters
from audiorec.plots import plot_training_curves
from audiorec.runtime import Recognizer
from audiorec.run import RunDir, atomic_write_text, write_json
from audiorec.tasks.commands import CommandTask


def prepare_data(data: str | Path, config: Config, run: RunDir | None = None, progress: bool = True) -> list[Utterance]:
    """Read a manifest, or import a corpus folder (writing its manifest and report into ``run``).

    Parameters
    ----------
    data : str or Path
        A ``.jsonl`` manifest or a corpus folder.
    config : Config
        ``data.layout`` and ``data.validation`` govern the import.
    run : RunDir, optional
        Where to write ``manifest.jsonl`` and ``import_report.json`` after an import.
    progress : bool

    Returns
    -------
    list of Utterance
        Only those with a label.

    Raises
    ------
    ValueError
        ``data`` does not exist, or holds no labelled clips.
    """
    path = Path(data).expanduser()
    if path.is_file():
        utterances = read_manifest(path)
    elif path.is_dir():
        result = import_corpus(path, config.data.layout, config.data.validation, progress=progress)
        if result.rejected:
            print(f"import: excluded {len(result.rejected)} of {len(result.rejected) + len(result.utterances)} files:")
            for bad_path, reason in result.rejected[:10]:
                print(f"  {bad_path}: {reason}")
            if len(result.rejected) > 10:
                print(f"  ... and {len(result.rejected) - 10} more (see import_report.json)")
        utterances = result.utterances
        if run is not None:
            write_manifest(run.manifest, utterances)
            write_json(run.import_report, result.summary())
    else:
        raise ValueError(f"{data}: no such manifest or corpus folder")
    labelled = [u for u in utterances if u.label is not None]
    if not labelled:
        raise ValueError(f"{data}: no labelled clips")
    return labelled


def _check_resumable(run: RunDir, config: Config) -> None:
    """Refuse to resume a run directory trained with a different configuration."""
    if not run.config.is_file():
        return
    old = asdict(config_from_yaml(run.config.read_text(encoding="utf-8")))
    new = asdict(config)
    old["train"].pop("max_epochs"), new["train"].pop("max_epochs")
    diffs = [f"{s}.{k}: {old[s][k]!r} -> {new[s][k]!r}" for s in new for k in new[s] if old[s].get(k) != new[s][k]]
    if diffs:
        raise ConfigError(
            f"{run.root} holds a run with another configuration ({'; '.join(diffs[:5])}); "
            "use a new --out directory, or delete the old one to start over"
        )


class DataWaitMeter(L.Callback):
    """Measure the share of training-step time spent waiting for the next batch.

    The wait is the time from the end of one training step to the start of the next within an
    epoch (fetching, augmenting and collating the batch, plus the loop's own overhead); the step
    is the forward, backward and optimiser update. The first batch of each epoch is left out,
    because its wait includes validation and starting the loader workers.

    Attributes
    ----------
    share : float or None
        ``wait / (wait + step)`` over the run so far; None before two batches.
    """

    def __init__(self):
        self.wait_s = self.step_s = 0.0
        self._end = self._start = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._end = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()
        if self._end is not None:
            self.wait_s += self._start - self._end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._end = time.perf_counter()
        if batch_idx > 0:
            self.step_s += self._end - self._start

    @property
    def share(self) -> float | None:
        total = self.wait_s + self.step_s
        return round(self.wait_s / total, 4) if total > 0 else None


def train(data: str | Path, out: str | Path, config: Config, progress: bool = True) -> dict:
    """Train, validate and test a command recognizer; write everything into ``out``.

    Parameters
    ----------
    data : str or Path
        Corpus folder (imported on the fly) or ``.jsonl`` manifest.
    out : str or Path
        Run directory; an unfinished run there with the same config is resumed.
    config : Config
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    dict
        The content of ``metrics.json``: ``test_accuracy`` (fraction), ``n_test``, ``per_class``
        precision/recall/F1, ``macro_f1``, ``confusion_matrix``, ``labels``, split sizes and
        speakers, ``train_time_s``, ``peak_rss_mb``, ``n_parameters``, ``data_wait_share`` (see
        :class:`DataWaitMeter`).

    Raises
    ------
    ValueError, ConfigError
        Bad data or configuration, with the file or key named.
    """
    started = time.time()
    run = RunDir(Path(out))
    run.root.mkdir(parents=True, exist_ok=True)
    resuming = run.last_checkpoint.is_file()
    if resuming:
        _check_resumable(run, config)
    L.seed_everything(config.train.seed, workers=True, verbose=False)

    utterances = prepare_data(data, config, run, progress)
    split = speaker_split(
        utterances, config.data.val_fraction, config.data.test_fraction, config.data.test_speakers or None
    )
    if not split.val:
        warnings.warn("no validation split: training runs all epochs and keeps the last weights")
    labels = sorted({u.label for u in split.train})
    missing = sorted({u.label for u in split.val + split.test} - set(labels))
    if missing:
        warnings.warn(f"labels {missing} occur only in validation/test: their clips count as errors")
    for part in ("train", "val", "test"):
        write_manifest(run.splits / f"{part}.jsonl", getattr(split, part))
    atomic_write_text(run.config, to_yaml(config))
    write_json(run.labels, labels)

    sample_rate = config.features.sample_rate
    clip_samples = round(config.data.clip_ms * sample_rate / 1000)
    waves = {part: load_waveforms(getattr(split, part), sample_rate, progress, desc=f"load {part}") for part in ("train", "val", "test")}
    index = {label: i for i, label in enumerate(labels)}
    val_keep = [i for i, u in enumerate(split.val) if u.label in index]
    augment = WaveformAugment(config.augment, sample_rate, clip_samples) if config.augment.enabled else None
    train_set = ClipDataset(waves["train"], [index[u.label] for u in split.train], clip_samples, augment, config.train.seed)
    val_set = ClipDataset([waves["val"][i] for i in val_keep], [index[split.val[i].label] for i in val_keep], clip_samples)
    workers = config.train.num_workers if config.train.num_workers >= 0 else max(1, min(8, (os.cpu_count() or 2) - 1))
    loader = dict(batch_size=config.data.batch_size, num_workers=workers)
    train_loader = torch.utils.data.DataLoader(train_set, shuffle=True, drop_last=len(train_set) > config.data.batch_size, **loader)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.data.batch_size)

    model = build_model(config, len(labels))
    task = CommandTask(model, config.train, config.augment.mixup if config.augment.enabled else None)
    data_wait = DataWaitMeter()
    checkpoint = ModelCheckpoint(
        dirpath=run.checkpoints, filename="best", monitor="val_acc", mode="max", save_top_k=1,
        enable_version_counter=False,
    )
    # Saved after every epoch, improved or not, so a resumed run repeats no work.
    last = ModelCheckpoint(dirpath=run.checkpoints, filename="last", save_top_k=1, enable_version_counter=False)
    trainer = L.Trainer(
        max_epochs=config.train.max_epochs,
        accelerator=config.train.accelerator,
        devices=1,
        callbacks=[last, data_wait, LearningRateMonitor("step")] + ([checkpoint, EarlyStopping(monitor="val_acc", mode="max", patience=config.train.patience)] if split.val else []),
        logger=CSVLogger(save_dir=run.root, name="logs"),
        enable_progress_bar=progress,
        enable_model_summary=progress,
        log_every_n_steps=max(1, min(50, len(train_loader))),
        num_sanity_val_steps=0,
        gradient_clip_val=config.train.gradient_clip or None,
    )
    if resuming:
        print(f"resuming from {run.last_checkpoint}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(task, train_loader, val_loader if split.val else None, ckpt_path=str(run.last_checkpoint) if resuming else None)
    if trainer.interrupted:  # Lightning turns Ctrl-C into a graceful stop; the run is not done
        raise KeyboardInterrupt
    train_time_s = time.time() - started

    recognizer = Recognizer.from_run(run.root)
    metrics: dict = {
        "labels": labels,
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": len(split.test),
        "n_speakers": {part: len(split.speakers(part)) for part in ("train", "val", "test")},
        "test_speakers": sorted(split.speakers("test")) if len(split.speakers("test")) <= 20 else None,
        "val_speakers": sorted(split.speakers("val")) if len(split.speakers("val")) <= 20 else None,
        "best_val_accuracy": float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None,
        "epochs": trainer.current_epoch,
        "n_parameters": count_parameters(recognizer.predict.model),
        "train_time_s": round(train_time_s, 1),
        "data_wait_share": data_wait.share,
    }
    if split.test:
        test = evaluate(recognizer, split.test, waves["test"], run.root)
        metrics.update(
            test_accuracy=test["accuracy"], macro_f1=test["macro_f1"], per_class=test["per_class"],
            confusion_matrix=test["confusion_matrix"], confusion_labels=test["labels"],
        )
    metrics["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    plot_training_curves(run.root / "logs", run.root / "training_curves.png", title=run.root.name)
    write_json(run.metrics, metrics)
    return metrics
