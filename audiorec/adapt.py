"""Unsupervised speaker adaptation: batch-norm statistics re-estimated on a speaker's own clips.

A network trained on a few speakers normalises every layer with the mean and variance of those
speakers' activations. A new voice shifts them, and every later layer sees inputs a little off
the ones it learnt. Re-estimating the statistics of each batch-norm layer on clips of the new
speaker, with every weight left as trained, undoes the shift (AdaBN). It needs no labels: a few
recordings of the user saying anything the model hears (their commands, in any order) are
enough. It is the network counterpart of the per-speaker cepstral mean and variance
normalisation that Kaldi recipes apply to every test speaker.

On FSDD leave-one-speaker-out, 20 unlabelled clips of the held-out speaker raise the mean
accuracy over the folds on the speaker's other clips from 0.965 to 0.972 (README, "Speaker
adaptation"; ``benchmarks/adaptation.py``).

References
----------
Li, Wang, Shi, Hou & Liu 2018, "Adaptive Batch Normalization for practical domain adaptation",
Pattern Recognition 80 (arXiv:1603.04779, 2016). Ioffe & Szegedy 2015 (batch normalisation).
Povey et al. 2011, the Kaldi toolkit (per-speaker CMVN, ``compute-cmvn-stats --spk2utt``).
"""

from __future__ import annotations

import copy
import io
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from audiorec.recognize import TorchModel

from audiorec.audio import AudioError, fit_to_length, load_audio
from audiorec.data.corpora import is_audio_file
from audiorec.data.manifest import read_manifest
from audiorec.run import RunDir, RunError, atomic_write_bytes, atomic_write_text, write_json

ADAPTATION_FILE = "adaptation.json"  # in an adapted run directory: where its statistics came from


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of ``model`` (1-D, 2-D and 3-D), in module order.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    list of torch.nn.modules.batchnorm._BatchNorm
        Empty for a model without batch normalisation (Ioffe & Szegedy 2015); raises nothing.
    """
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def adapt_batch_norm(model: nn.Module, clips: np.ndarray, batch_size: int = 64, weight: float = 1.0) -> nn.Module:
    """A copy of ``model`` whose batch-norm statistics are those of ``clips`` (AdaBN).

    Every batch-norm layer's running mean and variance are re-estimated as the average over
    near-equal batches of ``clips``, then mixed with the trained ones: ``weight`` of the new,
    ``1 - weight`` of the old. Weights, biases and the layers' affine parameters are not changed,
    and neither is ``model``. Dropout and SpecAugment stay off while the clips pass (only the
    batch-norm layers are in training mode).

    The clips should cover the vocabulary about evenly, as the training clips did: statistics of
    clips of only one or two commands describe those commands as much as the speaker. On FSDD
    leave-one-speaker-out (default recipe, 20 clips of the held-out speaker) two clips of each
    digit raised the mean accuracy over the folds from 0.966 to 0.973, while 20 clips of a
    single digit lowered it to 0.915 at ``weight=1`` and to 0.958 at ``weight=0.5``
    (``benchmarks/adaptation.py``).

    Parameters
    ----------
    model : nn.Module
        Waveform ``(batch, n_samples)`` to logits, e.g. a
        :class:`~audiorec.models.classifier.CommandClassifier`.
    clips : np.ndarray [shape=(n, n_samples), dtype=float32]
        Unlabelled clips of the new speaker (or room, or microphone), at the model's sample rate
        and clip length (:func:`~audiorec.audio.fit_to_length`).
    batch_size : int > 0
        Clips per forward pass; the statistics are averaged over the batches.
    weight : float in (0, 1]
        Share of the clips' statistics in the adapted ones; 1 replaces the trained statistics
        (AdaBN as published), 0.5 stays between them, safer when the clips are few or cover
        few commands.

    Returns
    -------
    nn.Module
        The adapted copy, in eval mode.

    Raises
    ------
    ValueError
        ``clips`` is empty or not 2-D, ``weight`` is outside (0, 1], or ``model`` has no batch-norm layer (the ``gmm`` baseline
        and ``cnn_trad_fpool3`` have none), naming the model's class.

    References
    ----------
    Li et al. 2018, "Adaptive Batch Normalization for practical domain adaptation".
    """
    clips = np.asarray(clips, dtype=np.float32)
    if clips.ndim != 2 or not len(clips):
        raise ValueError(f"adaptation needs clips shaped [n >= 1, n_samples], got shape {clips.shape}")
    if not 0 < weight <= 1:
        raise ValueError(f"weight={weight}: the share of the new statistics must be in (0, 1]")
    adapted = copy.deepcopy(model).eval()
    layers = batch_norm_layers(adapted)
    if not layers:
        encoder = getattr(adapted, "encoder", adapted)
        raise ValueError(f"{type(encoder).__name__} has no batch-norm layer, so there are no statistics to adapt "
                         "(choose a network with batch norm: cnn, ds_cnn, bc_resnet, matchboxnet, crnn_fourier)")
    trained = [(layer.running_mean.clone(), layer.running_var.clone()) for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the batches, each weighted equally
        layer.train()
    n_batches = -(-len(clips) // batch_size)
    with torch.no_grad():
        for batch in np.array_split(clips, n_batches):  # near-equal batches: equal weights are fair
            adapted(torch.from_numpy(np.ascontiguousarray(batch)))
    for layer, (mean, var) in zip(layers, trained):
        layer.running_mean.mul_(weight).add_(mean, alpha=1 - weight)
        layer.running_var.mul_(weight).add_(var, alpha=1 - weight)
    return adapted.eval()


def adaptation_files(paths: Sequence[str | Path]) -> list[Path]:
    """The audio files named by ``paths``: files, folders (searched recursively) or manifests.

    Parameters
    ----------
    paths : sequence of str or Path
        Audio files, folders of them, or ``.jsonl`` manifests (their ``path`` fields are used;
        labels are ignored).

    Returns
    -------
    list of Path
        In the order given, each folder's files sorted.

    Raises
    ------
    FileNotFoundError
        A path does not exist, or a folder holds no audio file; the message names it.
    """
    files: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found = sorted(p for p in entry.rglob("*") if is_audio_file(p))
            if not found:
                raise FileNotFoundError(f"adaptation folder {entry} holds no audio files")
            files += found
        elif entry.is_file() and entry.suffix == ".jsonl":
            files += [Path(u.path) for u in read_manifest(entry)]
        elif entry.is_file():
            files.append(entry)
        else:
            raise FileNotFoundError(f"adaptation data {entry} does not exist")
    return files


def adapt_run(run_dir: str | Path, data: Sequence[str | Path], out: str | Path, max_clips: int | None = None,
              seed: int = 0, weight: float = 1.0) -> dict:
    """Write a new run directory whose model is ``run_dir``'s adapted to the clips in ``data``.

    The new directory is a run like any other (``recognize``, ``evaluate``, ``export``,
    ``serve`` and ``listen`` read it): the source's ``config.yaml``, ``labels.json`` and
    ``splits/``, a checkpoint with the adapted weights, and ``adaptation.json`` (the source run,
    the clips used, the seed). The source run is only read.

    Parameters
    ----------
    run_dir : str or Path
        A command-recognition run of ``audiorec train``.
    data : sequence of str or Path
        The speaker's recordings, unlabelled: see :func:`adaptation_files`. Each is decoded,
        resampled to the model's rate and centred or cut to its clip length, as in training.
    out : str or Path
        The new run directory. It must not be ``run_dir``, nor an existing directory other than
        an earlier adaptation (which is replaced).
    max_clips : int, optional
        Use at most this many files, drawn at random with ``seed``; default all.
    seed : int
    weight : float in (0, 1]
        Share of the clips' statistics in the adapted ones (:func:`adapt_batch_norm`).

    Returns
    -------
    dict
        What ``adaptation.json`` holds: ``source_run``, ``n_clips``, ``files``, ``seed``,
        ``weight``, ``batch_norm_layers``.

    Raises
    ------
    RunError
        ``run_dir`` is not a trained command-recognition run, or ``out`` is ``run_dir`` or a
        directory that is not an adaptation.
    FileNotFoundError
        As :func:`adaptation_files`.
    ValueError
        A file cannot be decoded (naming it and why), ``max_clips < 1``, or as
        :func:`adapt_batch_norm` (no batch norm, ``weight`` out of range).
    """
    from audiorec.recognize import load_run  # needs torch and the models; the module's readers do not

    source, target = RunDir(Path(run_dir)), RunDir(Path(out))
    if target.root.resolve() == source.root.resolve():
        raise RunError(f"{out}: the adapted model goes to a new directory; the source run is never modified")
    if target.root.exists() and any(target.root.iterdir()) and not (target.root / ADAPTATION_FILE).is_file():
        raise RunError(f"{out} exists and is not an adaptation written by 'audiorec adapt'; choose a new --out")
    if max_clips is not None and max_clips < 1:
        raise ValueError(f"max_clips={max_clips}: must be at least 1")
    predict = load_run(source.root)
    files = adaptation_files(data)
    if max_clips is not None and len(files) > max_clips:
        chosen = np.random.default_rng(seed).choice(len(files), size=max_clips, replace=False)
        files = [files[i] for i in sorted(chosen)]
    clips = []
    for path in files:
        try:
            clips.append(fit_to_length(load_audio(path, predict.sample_rate), predict.clip_samples))
        except AudioError as e:
            raise ValueError(f"adaptation file {path} cannot be used: {e.reason}") from e
    adapted = adapt_batch_norm(predict.model, np.stack(clips), weight=weight)

    target.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target.config, source.config.read_text(encoding="utf-8"))
    atomic_write_text(target.labels, source.labels.read_text(encoding="utf-8"))
    if source.splits.is_dir():
        shutil.copytree(source.splits, target.splits, dirs_exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"state_dict": {f"model.{k}": v for k, v in adapted.state_dict().items()}}, buffer)
    target.checkpoints.mkdir(exist_ok=True)
    atomic_write_bytes(target.best_checkpoint, buffer.getvalue())
    record = {"source_run": str(source.root.resolve()), "n_clips": len(files), "files": [str(f.resolve()) for f in files],
              "seed": seed, "weight": weight, "batch_norm_layers": len(batch_norm_layers(adapted))}
    write_json(target.root / ADAPTATION_FILE, record)
    return record


def adaptation_gain(model: nn.Module, clips: np.ndarray, targets: np.ndarray, adapt_idx: np.ndarray,
                    weight: float = 1.0) -> dict:
    """Accuracy on a speaker's clips before and after adapting to some others of theirs.

    The clips at ``adapt_idx`` adapt the model (:func:`adapt_batch_norm`) without their labels;
    both models are scored on the remaining clips, so no clip is both adapted to and tested.

    Parameters
    ----------
    model : nn.Module
        Waveform to logits, in eval mode.
    clips : np.ndarray [shape=(n, n_samples), dtype=float32]
        One speaker's clips at the model's rate and clip length.
    targets : np.ndarray [shape=(n,), dtype=int]
        Class indices of ``clips``.
    adapt_idx : np.ndarray [shape=(n_adapt,), dtype=int]
        Distinct indices of the clips to adapt to; at least one clip must remain.
    weight : float in (0, 1]
        As :func:`adapt_batch_norm`.

    Returns
    -------
    dict
        ``n_adapt``, ``n_test`` (the other clips), ``accuracy`` (adapted) and
        ``unadapted_accuracy``, both on the same ``n_test`` clips.

    Raises
    ------
    ValueError
        ``adapt_idx`` is empty or leaves no clip to test; or as :func:`adapt_batch_norm`.
    """
    adapt_idx = np.unique(np.asarray(adapt_idx, dtype=int))
    test_idx = np.setdiff1d(np.arange(len(clips)), adapt_idx)
    if not len(adapt_idx) or not len(test_idx):
        raise ValueError(f"adapting to {len(adapt_idx)} of {len(clips)} clips: need at least one to adapt to and one to test")
    adapted = adapt_batch_norm(model, clips[adapt_idx], weight=weight)

    def accuracy(m: nn.Module) -> float:
        with torch.inference_mode():
            logits = torch.cat([m(torch.from_numpy(np.ascontiguousarray(b)))
                                for b in np.array_split(clips[test_idx], -(-len(test_idx) // 64))])
        return float((logits.argmax(1).numpy() == targets[test_idx]).mean())

    return {"n_adapt": int(len(adapt_idx)), "n_test": int(len(test_idx)), "accuracy": round(accuracy(adapted), 4),
            "unadapted_accuracy": round(accuracy(model.eval()), 4)}


def speaker_test_clips(run_dir: str | Path) -> tuple["TorchModel", np.ndarray, np.ndarray, str]:
    """A run's model and its test clips, when they are one speaker's (an ``audiorec cv`` fold).

    Parameters
    ----------
    run_dir : str or Path
        A command-recognition run with ``splits/test.jsonl``.

    Returns
    -------
    (TorchModel, np.ndarray [shape=(n, n_samples)], np.ndarray [shape=(n,), dtype=int], str)
        The model, the clips at its rate and clip length, their class indices, the speaker.

    Raises
    ------
    RunError
        Not a run, or its test split holds several speakers or none.
    """
    from audiorec.data.dataset import load_waveforms
    from audiorec.recognize import load_run

    run = RunDir(Path(run_dir))
    test = read_manifest(run.splits / "test.jsonl")
    speakers = sorted({u.speaker for u in test if u.speaker is not None})
    if len(speakers) != 1:
        raise RunError(f"{run.root}: speaker adaptation is measured on one held-out speaker; the test split has {len(speakers)}")
    predict = load_run(run.root)
    waves = load_waveforms(test, predict.sample_rate, progress=False)
    clips = np.stack([fit_to_length(np.asarray(w, np.float32), predict.clip_samples) for w in waves])
    targets = np.array([predict.labels.index(u.label) for u in test])
    return predict, clips, targets, speakers[0]


def speaker_adaptation(run_dir: str | Path, n_adapt: int, seed: int = 0) -> dict:
    """:func:`adaptation_gain` for ``n_adapt`` random test clips of a one-speaker run (a cv fold).

    The split's labels score the result; they are not used to adapt.

    Parameters
    ----------
    run_dir : str or Path
        See :func:`speaker_test_clips`.
    n_adapt : int >= 1
        Clips drawn at random (with ``seed``) to adapt to; the rest are the test.
    seed : int

    Returns
    -------
    dict
        As :func:`adaptation_gain`, plus ``speaker``.

    Raises
    ------
    RunError
        As :func:`speaker_test_clips`.
    ValueError
        As :func:`adaptation_gain`.
    """
    predict, clips, targets, speaker = speaker_test_clips(run_dir)
    if not 1 <= n_adapt < len(clips):
        raise ValueError(f"n_adapt={n_adapt}: need 1 <= n_adapt < {len(clips)} (the clips not adapted to are the test)")
    adapt_idx = np.random.default_rng(seed).choice(len(clips), size=n_adapt, replace=False)
    return {"speaker": speaker, **adaptation_gain(predict.model, clips, targets, adapt_idx)}
