"""Train a command recognizer end to end: data -> split -> model -> Lightning fit -> test metrics.

``train(data, out, config)`` is what ``audiorec train`` runs; everything it writes goes into the
run directory (see :mod:`audiorec.run`). Interrupted runs resume from ``checkpoints/last.ckpt``
when the same command is run again. The ``gmm`` baseline is fitted by EM instead of Lightning
(:func:`fit_gmm`), into checkpoints of the same layout.
"""

from __future__ import annotations

import io
import os
import resource
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from audiorec.augment import WaveformAugment
from audiorec.config import Config, ConfigError, config_from_yaml, to_yaml
from audiorec.data.corpora import import_corpus
from audiorec.data.dataset import ClipDataset, load_waveforms
from audiorec.data.manifest import Utterance, read_manifest, write_manifest
from audiorec.data.splits import speaker_split
from audiorec.evaluate import evaluate
from audiorec.models import build_model, count_parameters
from audiorec.models.classifier import CommandClassifier
from audiorec.plots import plot_training_curves
from audiorec.runtime import Recognizer
from audiorec.run import RunDir, atomic_write_bytes, atomic_write_text, write_json
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


@dataclass
class FitResult:
    """What fitting a model reports into ``metrics.json``.

    Attributes
    ----------
    best_val_accuracy : float or None
        Of the saved model; None without validation clips.
    epochs : int or None
        Epochs trained; None for ``gmm``, whose EM runs per mixture, not in epochs.
    n_parameters : int
        Trainable parameters of a network; for ``gmm`` the free parameters of the mixtures BIC
        chose (:attr:`~audiorec.models.gmm.GMMClassifier.n_parameters`), not the size of the
        padded buffers.
    data_wait_share : float or None
        See :class:`DataWaitMeter`; None for ``gmm``.
    """

    best_val_accuracy: float | None
    epochs: int | None
    n_parameters: int
    data_wait_share: float | None = None


def fit_gmm(model: CommandClassifier, train_set: ClipDataset, val_set: ClipDataset, run: RunDir, seed: int = 0,
            batch_size: int = 64) -> FitResult:
    """Fit a ``gmm`` model by EM on the training clips and save it as the run's checkpoints.

    Each clip goes through the model's own front end and normalisation, then
    :meth:`~audiorec.models.gmm.GMMClassifier.frames`; the frames above the clip's floor are
    pooled per class, and :meth:`~audiorec.models.gmm.GMMClassifier.fit` fits each class's
    mixture, its size chosen by BIC. There is no augmentation (EM fits the clips as recorded;
    ``augment`` is ignored). The model is written to ``checkpoints/best.ckpt`` and ``last.ckpt``
    in the layout of the networks' checkpoints (``state_dict`` keys prefixed ``model.``), so
    loading, evaluation, recognition, export and cross-validation treat it as any network. A
    rerun fits again from the start.

    Parameters
    ----------
    model : CommandClassifier
        Built with ``model.name = gmm`` (its encoder is a
        :class:`~audiorec.models.gmm.GMMClassifier`).
    train_set : ClipDataset
        Without augmentation; every class has clips.
    val_set : ClipDataset
        Possibly empty.
    run : RunDir
    seed : int
        Subsampling of frames and the initialisation of EM.
    batch_size : int
        Clips per pass of the front end.

    Returns
    -------
    FitResult
    """
    model.eval()
    encoder = model.encoder
    frames_by_class: list[list[np.ndarray]] = [[] for _ in range(encoder.means.shape[0])]
    with torch.inference_mode():
        for waveform, target in torch.utils.data.DataLoader(train_set, batch_size=batch_size):
            frames = encoder.frames(model.normalised_features(waveform))
            for clip_frames, keep, c in zip(frames, encoder.frame_mask(frames), target.tolist()):
                frames_by_class[c].append(clip_frames[keep].numpy())
    encoder.fit([np.concatenate(f) for f in frames_by_class], seed=seed)
    print(f"gmm: components per class chosen by BIC: {encoder.n_components.tolist()}")

    best_val_accuracy = None
    if len(val_set):
        with torch.inference_mode():
            correct = sum(int((model(waveform).argmax(1) == target).sum())
                          for waveform, target in torch.utils.data.DataLoader(val_set, batch_size=batch_size))
        best_val_accuracy = correct / len(val_set)
    buffer = io.BytesIO()
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, buffer)
    for path in (run.last_checkpoint, run.best_checkpoint):
        atomic_write_bytes(path, buffer.getvalue())
    return FitResult(best_val_accuracy=best_val_accuracy, epochs=None, n_parameters=encoder.n_parameters)


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
        speakers, ``train_time_s``, ``peak_rss_mb``, ``best_val_accuracy``, ``epochs``,
        ``n_parameters`` and ``data_wait_share`` (see :class:`FitResult`).

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
    train_targets = [index[u.label] for u in split.train]
    val_set = ClipDataset([waves["val"][i] for i in val_keep], [index[split.val[i].label] for i in val_keep], clip_samples)
    model = build_model(config, len(labels))
    if config.model.name == "gmm":
        fit = fit_gmm(model, ClipDataset(waves["train"], train_targets, clip_samples), val_set, run, config.train.seed,
                      config.data.batch_size)
    else:
        augment = WaveformAugment(config.augment, sample_rate, clip_samples) if config.augment.enabled else None
        train_set = ClipDataset(waves["train"], train_targets, clip_samples, augment, config.train.seed)
        fit = _fit_network(model, train_set, val_set, run, config, resuming, progress)
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
        "best_val_accuracy": fit.best_val_accuracy,
        "epochs": fit.epochs,
        "n_parameters": fit.n_parameters,
        "train_time_s": round(train_time_s, 1),
        "data_wait_share": fit.data_wait_share,
    }
    if split.test:
        test = evaluate(recognizer, split.test, waves["test"], run.root)
        metrics.update(
            test_accuracy=test["accuracy"], macro_f1=test["macro_f1"], per_class=test["per_class"],
            confusion_matrix=test["confusion_matrix"], confusion_labels=test["labels"],
        )
    metrics["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    write_json(run.metrics, metrics)
    return metrics


def _fit_network(model: nn.Module, train_set: ClipDataset, val_set: ClipDataset, run: RunDir, config: Config,
                 resuming: bool, progress: bool) -> FitResult:
    """Train a network with Lightning: checkpoints, CSV logs and ``training_curves.png`` into ``run``."""
    workers = config.train.num_workers if config.train.num_workers >= 0 else max(1, min(8, (os.cpu_count() or 2) - 1))
    loader = dict(batch_size=config.data.batch_size, num_workers=workers)
    train_loader = torch.utils.data.DataLoader(train_set, shuffle=True, drop_last=len(train_set) > config.data.batch_size, **loader)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.data.batch_size)
    has_val = len(val_set) > 0

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
        callbacks=[last, data_wait, LearningRateMonitor("step")] + ([checkpoint, EarlyStopping(monitor="val_acc", mode="max", patience=config.train.patience)] if has_val else []),
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
        trainer.fit(task, train_loader, val_loader if has_val else None, ckpt_path=str(run.last_checkpoint) if resuming else None)
    if trainer.interrupted:  # Lightning turns Ctrl-C into a graceful stop; the run is not done
        raise KeyboardInterrupt
    plot_training_curves(run.root / "logs", run.root / "training_curves.png", title=run.root.name)
    return FitResult(
        best_val_accuracy=float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None,
        epochs=trainer.current_epoch, n_parameters=count_parameters(model), data_wait_share=data_wait.share,
    )
