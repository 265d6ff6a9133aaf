"""Load a training run's PyTorch model as a predictor for :class:`audiorec.runtime.Recognizer`
(commands) or :class:`audiorec.runtime.Transcriber` (speech recognition).

Recognition itself (fitting clips, top-k, files) lives in :mod:`audiorec.runtime`, shared by the
exported ONNX model and the PyTorch checkpoint, so the command line, the evaluation at the end of
training, the server and the benchmarks cannot disagree. This module is the torch side: the
checkpoint, the config and the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from audiorec.config import Config, config_from_yaml
from audiorec.models import build_asr_model, build_model
from audiorec.run import RunDir, RunError
from audiorec.tokenizer import load_tokenizer


class TorchModel:
    """A trained waveform classifier as a callable from clips to probabilities.

    Parameters
    ----------
    model : nn.Module
        (batch, n_samples) waveform to (batch, n_classes) logits; put in eval mode.
    labels : list of str
    config : Config
        The run's configuration; gives the sample rate and the clip length.

    Shape
    -----
    ``__call__``: float32 clips ``[n, samples]`` to softmax probabilities ``[n, n_classes]``.
    """

    def __init__(self, model: nn.Module, labels: list[str], config: Config):
        self.model = model.eval()
        self.labels = list(labels)
        self.config = config
        self.sample_rate = config.features.sample_rate
        self.clip_samples = round(config.data.clip_ms * self.sample_rate / 1000)

    @torch.inference_mode()
    def __call__(self, clips: np.ndarray) -> np.ndarray:
        return torch.softmax(self.model(torch.from_numpy(np.ascontiguousarray(clips))), dim=-1).numpy()


class TorchCTCModel:
    """A trained CTC speech recognizer as a callable from one utterance to log-probabilities.

    Parameters
    ----------
    model : CTCModel
        Put in eval mode.
    vocab : list of str
        Token strings by id, the blank at 0.
    config : Config

    Shape
    -----
    ``__call__``: float32 audio ``[1, samples]`` to log-probabilities ``[1, n_frames, n_tokens]``.
    """

    def __init__(self, model: nn.Module, vocab: list[str], config: Config):
        self.model = model.eval()
        self.vocab = list(vocab)
        self.config = config
        self.sample_rate = config.features.sample_rate
        self.frame_s = model.frame_s

    @torch.inference_mode()
    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(np.ascontiguousarray(audio)))[0].numpy()


def _run_config(run: RunDir) -> Config:
    if not run.config.is_file():
        raise RunError(f"{run.root}: no config.yaml")
    return config_from_yaml(run.config.read_text(encoding="utf-8"))


def _load_weights(model: nn.Module, run: RunDir, checkpoint: str | Path | None) -> nn.Module:
    """Load the best (or given) checkpoint into ``model``: the moving average of the weights when kept."""
    path = Path(checkpoint) if checkpoint else run.require_checkpoint()
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "ema.module." if any(k.startswith("ema.module.") for k in state) else "model."
    model.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return model


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> TorchModel:
    """Build the network of a run directory and load its weights.

    Parameters
    ----------
    run_dir : str or Path
        Written by ``audiorec train`` (``config.yaml``, ``labels.json``, ``checkpoints/``).
    checkpoint : str or Path, optional
        A specific checkpoint; default the best one. When training kept a moving average of the
        weights (``train.ema_decay``), that average is loaded: it is what was validated.

    Returns
    -------
    TorchModel

    Raises
    ------
    RunError
        Not a run directory, or no config or checkpoint in it.
    """
    run = RunDir(Path(run_dir))
    labels = run.read_labels()
    config = _run_config(run)
    return TorchModel(_load_weights(build_model(config, len(labels)), run, checkpoint), labels, config)


def load_ensemble(run_dirs: Sequence[str | Path]) -> TorchModel:
    """Several command-recognition runs as one model that averages their posteriors.

    Parameters
    ----------
    run_dirs : sequence of str or Path
        Run directories written by ``audiorec train`` on the same classes, sample rate and clip
        length, best checkpoint of each: one recipe at different ``--seed``, or different models
        and front ends (a log-mel CNN and a ``speech_embedding`` head, say).

    Returns
    -------
    TorchModel
        An :func:`audiorec.models.ensemble.ensemble` of the runs' networks: the mean of the
        members' class posteriors, one copy of each distinct front end. Its ``config`` is the
        first run's. One run gives :func:`load_run`'s model itself, no averaging layer added.

    Raises
    ------
    RunError
        No run, a run that cannot be loaded, or one whose labels, sample rate or ``data.clip_ms``
        differ from the first run's (the run and the difference named).
    """
    from audiorec.models.ensemble import ensemble

    if not run_dirs:
        raise RunError("an ensemble needs at least one run directory")
    members = [load_run(r) for r in run_dirs]
    first = members[0]
    if len(members) == 1:
        return first
    for run_dir, member in zip(run_dirs[1:], members[1:]):
        if member.labels != first.labels:
            raise RunError(f"{run_dir}: labels {member.labels} differ from {run_dirs[0]}'s {first.labels}")
        if member.sample_rate != first.sample_rate or member.clip_samples != first.clip_samples:
            raise RunError(f"{run_dir}: hears {member.clip_samples}-sample clips at {member.sample_rate} Hz, {run_dirs[0]} "
                           f"{first.clip_samples} at {first.sample_rate} Hz; an ensemble's runs must hear the same window")
    try:
        model = ensemble([m.model for m in members], [str(r) for r in run_dirs])
    except ValueError as e:
        raise RunError(str(e)) from e
    return TorchModel(model, first.labels, first.config)


def load_asr_run(run_dir: str | Path, checkpoint: str | Path | None = None) -> TorchCTCModel:
    """Build the speech recognizer of a ``task=asr`` run directory and load its weights.

    Parameters
    ----------
    run_dir : str or Path
        Written by ``audiorec train --task asr`` (``config.yaml``, ``tokenizer.json``, ``checkpoints/``).
    checkpoint : str or Path, optional
        Default the best one (lowest validation WER).

    Returns
    -------
    TorchCTCModel

    Raises
    ------
    RunError
        Not a speech-recognition run directory, or no config or checkpoint in it.
    """
    run = RunDir(Path(run_dir))
    if not run.tokenizer.is_file():
        kind = "a command-recognition run; use 'audiorec recognize'" if run.labels.is_file() else "not a run directory"
        raise RunError(f"{run.root}: no tokenizer.json ({kind})")
    vocab = load_tokenizer(run.tokenizer).vocab
    config = _run_config(run)
    return TorchCTCModel(_load_weights(build_asr_model(config, len(vocab)), run, checkpoint), vocab, config)
