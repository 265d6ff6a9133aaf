"""Train a recognizer end to end: data -> split -> model -> Lightning fit -> test metrics.

``train(data, out, config)`` is what ``audiorec train`` runs, for a command recognizer
(``task=commands``) or a CTC speech recognizer (``task=asr``, :func:`train_asr`); everything it writes goes into the
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
from dataclasses import asdict, dataclass, replace
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
from audiorec.data.dataset import BucketBatchSampler, ClipDataset, UtteranceDataset, collate_utterances, load_waveforms
from audiorec.data.manifest import SILENCE_LABEL, Utterance, read_manifest, write_manifest
from audiorec.data.splits import Split, speaker_split
from audiorec.data.transcribed import TABLE_SUFFIXES
from audiorec.evaluate import evaluate, evaluate_transcripts
from audiorec.models import build_asr_model, build_model, count_parameters
from audiorec.models.classifier import CommandClassifier
from audiorec.plots import plot_training_curves
from audiorec.recognize import load_run
from audiorec.runtime import Recognizer, Transcriber
from audiorec.run import RunDir, atomic_write_bytes, atomic_write_text, write_json
from audiorec.tasks.commands import CommandTask
from audiorec.tasks.ctc import CTCTask
from audiorec.tokenizer import build_tokenizer, load_tokenizer


def prepare_data(data: str | Path, config: Config, run: RunDir | None = None, progress: bool = True,
                 either: bool = False) -> list[Utterance]:
    """Read a manifest, or import a corpus folder (writing its manifest and report into ``run``).

    Parameters
    ----------
    data : str or Path
        A ``.jsonl`` manifest, a corpus folder, or a ``path,text`` ``.csv``/``.tsv`` table.
    config : Config
        ``data.layout`` and ``data.validation`` govern the import.
    run : RunDir, optional
        Where to write ``manifest.jsonl`` and ``import_report.json`` after an import.
    progress : bool
    either : bool
        Keep the utterances with a transcript or a label, whatever the task (``audiorec data
        commands`` reads transcribed and labelled corpora alike).

    Returns
    -------
    list of Utterance
        Only those with a label, or with ``config.task == "asr"`` those with a transcript.

    Raises
    ------
    ValueError
        ``data`` does not exist, or holds no labelled (transcribed) clips.
    """
    path = Path(data).expanduser()
    if path.is_file() and path.suffix.lower() not in TABLE_SUFFIXES:
        utterances = read_manifest(path)
    elif path.exists():
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
    if either:
        kept = [u for u in utterances if u.text or u.label is not None]
        if not kept:
            raise ValueError(f"{data}: no transcribed or labelled utterances")
        return kept
    if config.task == "asr":
        transcribed = [u for u in utterances if u.text]
        if not transcribed:
            raise ValueError(f"{data}: no transcribed utterances (task=asr needs a transcript per file; "
                             "layouts an4, librispeech, yesno or a path,text CSV)")
        return transcribed
    labelled = [u for u in utterances if u.label is not None]
    if not labelled:
        raise ValueError(f"{data}: no labelled clips")
    return labelled


def _resolve_paths(value):
    """``value`` (a config as nested dicts and lists) with every string that names an existing
    file or folder replaced by its absolute path, so that ``noise/a.wav`` and ``/work/noise/a.wav``
    compare equal."""
    if isinstance(value, dict):
        return {k: _resolve_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_paths(v) for v in value]
    if isinstance(value, str) and value and Path(value).exists():
        return str(Path(value).resolve())
    return value


def check_same_config(run: RunDir, config: Config) -> None:
    """Refuse to resume, or reuse, a run directory trained with a different configuration.

    Parameters
    ----------
    run : RunDir
        A run directory; one without ``config.yaml`` passes.
    config : Config
        The configuration about to be trained; ``train.max_epochs`` may differ (a run can be
        given more epochs). Paths to existing files compare by where they lead, so a noise file
        given relative once and absolute the next time is the same configuration.

    Raises
    ------
    ConfigError
        The run's ``config.yaml`` differs; the message names up to five differing keys.
    """
    if not run.config.is_file():
        return
    old = _resolve_paths(asdict(config_from_yaml(run.config.read_text(encoding="utf-8"))))
    new = _resolve_paths(asdict(config))
    old["train"].pop("max_epochs"), new["train"].pop("max_epochs")
    diffs = [f"{s}: {old[s]!r} -> {new[s]!r}" for s in new if not isinstance(new[s], dict) and old[s] != new[s]]
    diffs += [f"{s}.{k}: {old[s].get(k)!r} -> {new[s][k]!r}" for s in new if isinstance(new[s], dict)
              for k in new[s] if old[s].get(k) != new[s][k]]
    if diffs:
        raise ConfigError(
            f"{run.root} holds a run with another configuration ({'; '.join(diffs[:5])}); "
            "use a new --out directory, or delete the old one to start over"
        )


def _open_run(out: str | Path, config: Config) -> tuple[RunDir, bool]:
    """Create the run directory, or check that the unfinished run in it has this config; seed everything."""
    run = RunDir(Path(out))
    run.root.mkdir(parents=True, exist_ok=True)
    resuming = run.last_checkpoint.is_file()
    if resuming:
        check_same_config(run, config)
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    return run, resuming


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
    epochs : int or None
        Epochs trained; None for ``gmm``, whose EM runs per mixture, not in epochs.
    n_parameters : int
        Trainable parameters of a network; for ``gmm`` the free parameters of the mixtures BIC
        chose (:attr:`~audiorec.models.gmm.GMMClassifier.n_parameters`), not the size of the
        padded buffers.
    data_wait_share : float or None
        See :class:`DataWaitMeter`; None for ``gmm``.
    """

    epochs: int | None
    n_parameters: int
    data_wait_share: float | None = None


def fit_gmm(model: CommandClassifier, train_set: ClipDataset, run: RunDir, seed: int = 0,
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

    buffer = io.BytesIO()
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, buffer)
    for path in (run.last_checkpoint, run.best_checkpoint):
        atomic_write_bytes(path, buffer.getvalue())
    return FitResult(epochs=None, n_parameters=encoder.n_parameters)


def load_teacher(config: Config, split: Split, labels: list[str]) -> nn.Module:
    """The trained model named by ``train.teacher``, checked fit to teach this run (distillation).

    Parameters
    ----------
    config : Config
        ``train.teacher`` is a run directory, or an ``audiorec cv`` folder holding
        ``fold_<speaker>`` for this run's one test speaker; the sample rate must be the teacher's.
    split : Split
        This run's split: none of its test clips may be among the teacher's training or
        validation clips (compared by the last two parts of their paths, so a moved corpus still
        matches).
    labels : list of str
        This run's classes, in output order; the teacher's must be the same.

    Returns
    -------
    nn.Module
        The teacher's network (its moving average of the weights when kept), in eval mode:
        (batch, n_samples) waveforms to (batch, n_classes) logits.

    Raises
    ------
    ConfigError
        No such directory, other labels or sample rate, or a teacher that trained on this run's
        test clips; the message names the directory and the reason.
    RunError
        The directory is not a trained run.
    """
    root = Path(config.train.teacher).expanduser()
    test_speakers = sorted(split.speakers("test"))
    if len(test_speakers) == 1 and (root / f"fold_{test_speakers[0]}").is_dir():
        root = root / f"fold_{test_speakers[0]}"
    if not root.is_dir():
        raise ConfigError(f"train.teacher={config.train.teacher}: no such run directory")
    teacher = load_run(root)
    where = f"train.teacher={root}"
    if teacher.labels != labels:
        raise ConfigError(f"{where}: the teacher's labels {teacher.labels} are not this run's {labels}")
    if teacher.sample_rate != config.features.sample_rate:
        raise ConfigError(f"{where}: the teacher hears {teacher.sample_rate} Hz audio, this run {config.features.sample_rate} Hz")

    def key(u: Utterance) -> tuple[str, ...]:
        return Path(u.path).parts[-2:]

    seen = set()
    for part in ("train", "val"):
        manifest = RunDir(root).splits / f"{part}.jsonl"
        if manifest.is_file():
            seen |= {key(u) for u in read_manifest(manifest)}
    leaked = [u.path for u in split.test if key(u) in seen]
    if leaked:
        raise ConfigError(f"{where}: the teacher trained on {len(leaked)} of this run's test clips (e.g. {leaked[0]}), "
                          "so the student's test would not be of unseen data; train the teacher with the same "
                          "test speakers (data.test_speakers, the same seed and split)")
    return teacher.model


def add_extra_train(split: Split, utterances: list[Utterance], config: Config, progress: bool = True) -> Split:
    """The split with the clips of ``data.extra_train`` added to its training part.

    Parameters
    ----------
    split : Split
        The speaker split of ``utterances``.
    utterances : list of Utterance
        The data the split was made from.
    config : Config
        ``data.extra_train``: a corpus folder or ``.jsonl`` manifest; empty returns ``split``.
    progress : bool

    Returns
    -------
    Split
        ``train`` followed by the extra clips; ``val`` and ``test`` unchanged.

    Raises
    ------
    ValueError
        The extra clips do not exist or hold no labelled clips, share a speaker or a file with the
        data (a test speaker could be trained on), or have a label the data lacks (its model
        would have a class no clip tests).

    Notes
    -----
    Training on pooled corpora of the same vocabulary, as speaker-independent recognizers have
    long done; the README's example adds the digit words of Speech Commands (Warden 2018,
    arXiv:1804.03209) to FSDD's leave-one-speaker-out folds. The clips are imported again for
    each call (:func:`prepare_data`), once per ``audiorec cv`` fold.
    """
    if not config.data.extra_train:
        return split
    name = f"data.extra_train={config.data.extra_train}"
    extra = prepare_data(config.data.extra_train, config, None, progress)
    shared = sorted({u.speaker for u in utterances} & {u.speaker for u in extra} - {None})
    if shared:
        raise ValueError(f"{name}: speakers {', '.join(shared[:5])}{' ...' if len(shared) > 5 else ''} are also in the data; "
                         "extra clips must come from other speakers, or a test speaker could be trained on")
    files = {u.path for u in utterances} & {u.path for u in extra}
    if files:
        raise ValueError(f"{name}: {len(files)} files are also in the data, for example {min(files)}")
    unknown = sorted({u.label for u in extra} - {u.label for u in utterances})
    if unknown:
        raise ValueError(f"{name}: labels {', '.join(unknown[:10])} are not in the data")
    return Split(split.train + extra, split.val, split.test)


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
        precision/recall/F1, ``macro_f1``, ``confusion_matrix``, ``labels``, split sizes (``n_train``
        counts the ``n_extra_train`` clips of ``data.extra_train``) and
        speakers, ``train_time_s``, ``peak_rss_mb``, ``best_val_accuracy``, ``epochs``,
        ``n_parameters`` and ``data_wait_share`` (see :class:`FitResult`).

    Raises
    ------
    ValueError, ConfigError
        Bad data or configuration, with the file or key named.
    """
    if config.task == "asr":
        return train_asr(data, out, config, progress)
    started = time.time()
    run, resuming = _open_run(out, config)

    utterances = prepare_data(data, config, run, progress)
    split = speaker_split(
        utterances, config.data.val_fraction, config.data.test_fraction, config.data.test_speakers or None
    )
    n_own_train = len(split.train)
    split = add_extra_train(split, utterances, config, progress)
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
    model = build_model(config, len(labels))
    if config.model.name == "gmm":
        fit = fit_gmm(model, ClipDataset(waves["train"], train_targets, clip_samples), run, config.train.seed,
                      config.data.batch_size)
    else:
        # Babble talkers come from the training speech; _silence_ clips are noise, not talkers.
        talkers = [w for w, u in zip(waves["train"], split.train) if u.label != SILENCE_LABEL]
        augment = WaveformAugment(config.augment, sample_rate, clip_samples, babble=talkers) if config.augment.enabled else None
        speakers = speaker_indices(split.train) if config.train.speaker_adversarial_weight > 0 else None
        window_targets = [index[label] for label in config.augment.random_window.labels if label in index]
        train_set = ClipDataset(waves["train"], train_targets, clip_samples, augment, config.train.seed, speakers,
                                window_targets)
        val_set = ClipDataset([waves["val"][i] for i in val_keep], [index[split.val[i].label] for i in val_keep], clip_samples)
        teacher = load_teacher(config, split, labels) if config.train.teacher else None
        fit = _fit_network(model, train_set, val_set, run, config, resuming, progress, teacher)
    train_time_s = time.time() - started

    recognizer = Recognizer.from_run(run.root)
    best_val_accuracy = None  # of the kept model, whichever metric picked it
    if val_keep:
        recognized = recognizer.recognize_batch([waves["val"][i] for i in val_keep])
        best_val_accuracy = sum(r.label == split.val[i].label for r, i in zip(recognized, val_keep)) / len(val_keep)
    metrics: dict = {
        "labels": labels,
        "n_train": len(split.train),
        "n_extra_train": len(split.train) - n_own_train,
        "n_val": len(split.val),
        "n_test": len(split.test),
        "n_speakers": {part: len(split.speakers(part)) for part in ("train", "val", "test")},
        "test_speakers": sorted(split.speakers("test")) if len(split.speakers("test")) <= 20 else None,
        "val_speakers": sorted(split.speakers("val")) if len(split.speakers("val")) <= 20 else None,
        "best_val_accuracy": best_val_accuracy,
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


def asr_split(utterances: list[Utterance], config: Config) -> Split:
    """Train, validation and test utterances for speech recognition.

    A corpus with its own test partition (``subset == "test"``, as AN4 and LibriSpeech's
    ``test-*`` folders) is tested on it, the standard protocol; validation speakers are drawn from
    the rest. Otherwise test speakers are drawn as for commands (:func:`speaker_split`). A corpus
    with fewer than 3 speakers (Kaldi's yesno has one) is split by file instead, with a warning:
    its test then measures unseen recordings, not unseen speakers.

    Parameters
    ----------
    utterances : list of Utterance
    config : Config
        ``data.val_fraction``, ``data.test_fraction`` and ``data.test_speakers``.

    Returns
    -------
    Split
    """
    d = config.data
    speakers = {u.speaker for u in utterances if u.speaker is not None}
    by_file = len(speakers) < 3
    if by_file:
        warnings.warn(f"only {len(speakers)} speaker(s): splitting by file, so the test set has no unseen speaker")
        originals = {u.path: u for u in utterances}
        utterances = [replace(u, speaker=None) for u in utterances]
    test = [u for u in utterances if u.subset == "test"]
    if test:
        rest = speaker_split([u for u in utterances if u.subset != "test"], d.val_fraction, 0.0)
        split = Split(train=rest.train, val=rest.val, test=test)
    else:
        split = speaker_split(utterances, d.val_fraction, d.test_fraction, d.test_speakers or None)
    if by_file:
        split = Split(*([originals[u.path] for u in part] for part in (split.train, split.val, split.test)))
    return split


def train_asr(data: str | Path, out: str | Path, config: Config, progress: bool = True) -> dict:
    """Train, validate and test a CTC speech recognizer; write everything into ``out``.

    The tokenizer is built from the training transcripts and saved as ``tokenizer.json``;
    the model (:func:`~audiorec.models.build_asr_model`) is trained with CTC on length-bucketed
    batches, SortaGrad in the first epoch (:class:`~audiorec.data.dataset.BucketBatchSampler`),
    the configured waveform augmentation and SpecAugment, gradient clipping, and the checkpoint
    with the lowest validation WER (greedy decoding) is kept. The test utterances are then
    transcribed one at a time with it and scored (``transcripts.jsonl``).

    Parameters
    ----------
    data : str or Path
        Transcribed corpus folder (AN4, LibriSpeech, yesno), ``path,text`` CSV/TSV, or ``.jsonl``
        manifest with ``text``.
    out : str or Path
        Run directory; an unfinished run there with the same config is resumed.
    config : Config
        With ``task == "asr"``.
    progress : bool

    Returns
    -------
    dict
        The content of ``metrics.json``: ``wer``, ``cer`` (fractions, greedy decoding),
        ``n_words``, ``n_chars``, ``substitutions``, ``deletions``, ``insertions``,
        ``n_utterances``, ``rtf`` (1 thread unless set otherwise), split sizes and speakers,
        ``best_val_wer``, ``epochs``, ``n_parameters``, ``n_tokens``, ``train_time_s``,
        ``peak_rss_mb``, ``data_wait_share``.

    Raises
    ------
    ValueError, ConfigError
        Bad data or configuration (e.g. a transcript character that the tokenizer cannot
        encode), with the file or key named.
    """
    started = time.time()
    run, resuming = _open_run(out, config)

    split = asr_split(prepare_data(data, config, run, progress), config)
    if not split.val:
        warnings.warn("no validation split: training runs all epochs and keeps the last weights")
    for part in ("train", "val", "test"):
        write_manifest(run.splits / f"{part}.jsonl", getattr(split, part))
    atomic_write_text(run.config, to_yaml(config))
    if resuming and run.tokenizer.is_file():
        tokenizer = load_tokenizer(run.tokenizer)
    else:
        tokenizer = build_tokenizer(config.tokenizer.kind, [u.text for u in split.train], config.tokenizer.vocab_size)
        tokenizer.save(run.tokenizer)

    sample_rate = config.features.sample_rate
    waves = {part: load_waveforms(getattr(split, part), sample_rate, progress, desc=f"load {part}") for part in ("train", "val", "test")}
    augment = WaveformAugment(config.augment, sample_rate) if config.augment.enabled else None
    train_set = UtteranceDataset(waves["train"], [tokenizer.encode(u.text) for u in split.train],
                                 [u.text for u in split.train], augment, config.train.seed)
    sampler = BucketBatchSampler([len(w) for w in waves["train"]], config.data.batch_size, config.train.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_sampler=sampler, collate_fn=collate_utterances,
                                               num_workers=_loader_workers(config))
    val_loader = None
    if split.val:
        order = np.argsort([len(w) for w in waves["val"]], kind="stable")  # little padding per batch
        val_utts = [split.val[i] for i in order]
        val_set = UtteranceDataset([waves["val"][i] for i in order], [_encodable(tokenizer, u.text) for u in val_utts],
                                   [u.text for u in val_utts])
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.data.batch_size, collate_fn=collate_utterances)

    model = build_asr_model(config, len(tokenizer.vocab))
    task = CTCTask(model, config.train, tokenizer.vocab)
    trainer, best_val_wer, data_wait = fit_lightning(task, train_loader, val_loader, run, config, resuming, progress,
                                                     monitor="val_wer", stop_on="val_loss")
    train_time_s = time.time() - started

    metrics: dict = {
        "n_train": len(split.train),
        "n_val": len(split.val),
        "n_test": len(split.test),
        "n_speakers": {part: len(split.speakers(part)) for part in ("train", "val", "test")},
        "test_speakers": sorted(split.speakers("test")) if len(split.speakers("test")) <= 20 else None,
        "best_val_wer": best_val_wer,
        "epochs": trainer.current_epoch,
        "n_parameters": count_parameters(model),
        "n_tokens": len(tokenizer.vocab),
        "train_time_s": round(train_time_s, 1),
        "data_wait_share": data_wait.share,
    }
    if split.test:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the real-time factor of one utterance on one core
        try:
            metrics.update(evaluate_transcripts(Transcriber.from_run(run.root), split.test, waves["test"], run.root, progress))
        finally:
            torch.set_num_threads(threads)
    metrics["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    write_json(run.metrics, metrics)
    return metrics


def _encodable(tokenizer, text: str) -> list[int]:
    """Token ids of a validation transcript; characters the training transcripts never had are
    left out of the loss's target (the WER still counts them, from the text)."""
    try:
        return tokenizer.encode(text)
    except ValueError:
        known = set("".join(tokenizer.vocab)) | {" "}
        return tokenizer.encode("".join(c for c in text if c in known))


def speaker_indices(utterances: list[Utterance]) -> list[int]:
    """Each clip's speaker as an index into the sorted speakers of ``utterances``; -1 for none.

    Parameters
    ----------
    utterances : list of Utterance

    Returns
    -------
    list of int
        One per utterance, for speaker-adversarial training (``train.speaker_adversarial_weight``).
    """
    index = {s: i for i, s in enumerate(sorted({u.speaker for u in utterances if u.speaker is not None}))}
    return [index.get(u.speaker, -1) for u in utterances]


def _loader_workers(config: Config) -> int:
    n = config.train.num_workers
    return n if n >= 0 else max(1, min(8, (os.cpu_count() or 2) - 1))


def _fit_network(model: nn.Module, train_set: ClipDataset, val_set: ClipDataset, run: RunDir, config: Config,
                 resuming: bool, progress: bool, teacher: nn.Module | None = None) -> FitResult:
    """Train a command classifier with Lightning (distilling ``teacher`` when given): checkpoints,
    CSV logs and ``training_curves.png`` into ``run``."""
    loader = dict(batch_size=config.data.batch_size, num_workers=_loader_workers(config))
    train_loader = torch.utils.data.DataLoader(train_set, shuffle=True, drop_last=len(train_set) > config.data.batch_size, **loader)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.data.batch_size)
    n_speakers = max(train_set.speakers, default=-1) + 1 if train_set.speakers is not None else 0
    task = CommandTask(model, config.train, config.augment.mixup if config.augment.enabled else None, teacher, n_speakers)
    trainer, _, data_wait = fit_lightning(task, train_loader, val_loader if len(val_set) else None, run, config,
                                          resuming, progress, monitor=config.train.monitor)
    return FitResult(epochs=trainer.current_epoch, n_parameters=count_parameters(model),
                     data_wait_share=data_wait.share)


def _mode(metric: str) -> str:
    """Lightning's direction for a logged validation metric: accuracies up, losses and error rates down."""
    return "max" if metric.endswith("acc") else "min"


def fit_lightning(task: L.LightningModule, train_loader, val_loader, run: RunDir, config: Config, resuming: bool,
                  progress: bool, monitor: str,
                  stop_on: str | None = None) -> tuple[L.Trainer, float | None, DataWaitMeter]:
    """Run Lightning's training loop for a task, with the run directory's checkpoints and logs.

    Writes ``checkpoints/best.ckpt`` (best ``monitor`` on validation; early stopping after
    ``train.patience`` epochs without improvement of ``stop_on``), ``checkpoints/last.ckpt`` (every epoch, for
    resuming), CSV logs under ``logs/`` and ``training_curves.png``.

    Parameters
    ----------
    task : LightningModule
        :class:`~audiorec.tasks.commands.CommandTask` or :class:`~audiorec.tasks.ctc.CTCTask`.
    train_loader, val_loader : DataLoader
        ``val_loader`` None trains all epochs and keeps the last weights.
    run : RunDir
    config : Config
    resuming : bool
        Continue from ``last.ckpt``.
    progress : bool
    monitor : str
        Logged validation metric, e.g. ``val_acc``, ``val_loss`` or ``val_wer``: accuracies are
        maximised, losses and error rates minimised.
    stop_on : str, optional
        Validation metric to stop on instead of ``monitor``. CTC training starts
        on a plateau where every output is blank and the WER stays at 100% (or at one word per
        utterance) for epochs while the loss falls (Graves et al. 2006); stopping on the WER there
        ends a run that was about to learn.

    Returns
    -------
    trainer : Trainer
    best : float or None
        The best value of ``monitor``; None without validation.
    data_wait : DataWaitMeter

    Raises
    ------
    KeyboardInterrupt
        Training was interrupted (Ctrl-C); the run resumes when started again.
    """
    data_wait = DataWaitMeter()
    checkpoint = ModelCheckpoint(
        dirpath=run.checkpoints, filename="best", monitor=monitor, mode=_mode(monitor), save_top_k=1,
        enable_version_counter=False,
    )
    # Saved after every epoch, improved or not, so a resumed run repeats no work.
    last = ModelCheckpoint(dirpath=run.checkpoints, filename="last", save_top_k=1, enable_version_counter=False)
    stopping = EarlyStopping(monitor=stop_on or monitor, mode=_mode(stop_on or monitor), patience=config.train.patience)
    validate = [checkpoint, stopping] if val_loader is not None else []
    trainer = L.Trainer(
        max_epochs=config.train.max_epochs,
        accelerator=config.train.accelerator,
        devices=1,
        callbacks=[last, data_wait, LearningRateMonitor("step")] + validate,
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
        trainer.fit(task, train_loader, val_loader, ckpt_path=str(run.last_checkpoint) if resuming else None)
    if trainer.interrupted:  # Lightning turns Ctrl-C into a graceful stop; the run is not done
        raise KeyboardInterrupt
    plot_training_curves(run.root / "logs", run.root / "training_curves.png", title=run.root.name)
    best = float(checkpoint.best_model_score) if checkpoint.best_model_score is not None else None
    return trainer, best, data_wait
