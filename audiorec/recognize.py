"""Recognition with a trained run: files or arrays in, labels with scores out.

One :class:`Recognizer` serves the ``recognize`` command, the evaluation at the end of training
and (later) the server, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from audiorec.audio import fit_to_length, load_audio
from audiorec.config import Config, config_from_yaml
from audiorec.models import build_model
from audiorec.run import RunDir, RunError


@dataclass
class Recognition:
    """The answer for one clip.

    Attributes
    ----------
    label : str
        The most probable class.
    score : float in [0, 1]
        Its posterior probability.
    top_k : list of (str, float)
        The best classes with their probabilities, best first.
    path : str or None
        The file, when recognised from one.
    """

    label: str
    score: float
    top_k: list[tuple[str, float]] = field(default_factory=list)
    path: str | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``path``, ``label``, ``score``, ``top_k`` as ``[{label, score}]``."""
        return {
            "path": self.path,
            "label": self.label,
            "score": round(self.score, 6),
            "top_k": [{"label": l, "score": round(s, 6)} for l, s in self.top_k],
        }


@torch.inference_mode()
def predict_proba(model: nn.Module, clips: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Class posteriors for a stack of equal-length clips.

    Parameters
    ----------
    model : nn.Module
        Waveform classifier, (batch, n_samples) to (batch, n_classes) logits; put in eval mode.
    clips : np.ndarray [shape=(n_clips, n_samples), dtype=float32]
    batch_size : int

    Returns
    -------
    np.ndarray [shape=(n_clips, n_classes)]
        Softmax probabilities; rows sum to 1.
    """
    model.eval()
    out = []
    for start in range(0, len(clips), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(clips[start : start + batch_size]))
        out.append(torch.softmax(model(batch), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class Recognizer:
    """A trained command classifier ready to recognise clips.

    Parameters
    ----------
    model : nn.Module
        Waveform classifier (see :class:`~audiorec.models.classifier.CommandClassifier`).
    labels : sequence of str
        Class names in output order.
    config : Config
        The run's configuration (sample rate and clip length are read from it).
    top_k : int
        How many classes each :class:`Recognition` lists.
    """

    def __init__(self, model: nn.Module, labels: Sequence[str], config: Config, top_k: int = 3):
        self.model = model.eval()
        self.labels = list(labels)
        self.config = config
        self.sample_rate = config.features.sample_rate
        self.clip_samples = round(config.data.clip_ms * self.sample_rate / 1000)
        self.top_k = top_k

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str | Path | None = None, top_k: int = 3) -> "Recognizer":
        """Load a run directory written by ``audiorec train``.

        Parameters
        ----------
        run_dir : str or Path
        checkpoint : str or Path, optional
            A specific checkpoint; default the best one.
        top_k : int

        Raises
        ------
        RunError
            Not a run directory, or no checkpoint in it.
        """
        run = RunDir(Path(run_dir))
        labels = run.read_labels()
        if not run.config.is_file():
            raise RunError(f"{run.root}: no config.yaml")
        config = config_from_yaml(run.config.read_text(encoding="utf-8"))
        path = Path(checkpoint) if checkpoint else run.require_checkpoint()
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        # The moving average of the weights, when training kept one, is what was validated.
        prefix = "ema.module." if any(k.startswith("ema.module.") for k in state) else "model."
        model = build_model(config, len(labels))
        model.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        return cls(model, labels, config, top_k=top_k)

    def _answer(self, probs: np.ndarray, path: str | None) -> Recognition:
        order = np.argsort(-probs)[: self.top_k]
        top = [(self.labels[i], float(probs[i])) for i in order]
        return Recognition(label=top[0][0], score=top[0][1], top_k=top, path=path)

    def recognize_batch(self, waveforms: Sequence[np.ndarray], paths: Sequence[str | None] | None = None) -> list[Recognition]:
        """Recognise several clips at once.

        Parameters
        ----------
        waveforms : sequence of np.ndarray [shape=(n_samples,)]
            Mono float32 at the model's sample rate, any length (each is cut to its loudest
            window or padded, as in training).
        paths : sequence of str, optional
            Carried into the results.

        Returns
        -------
        list of Recognition
        """
        paths = list(paths) if paths is not None else [None] * len(waveforms)
        clips = np.stack([fit_to_length(w, self.clip_samples) for w in waveforms]) if waveforms else np.zeros((0, self.clip_samples), np.float32)
        probs = predict_proba(self.model, clips)
        return [self._answer(p, path) for p, path in zip(probs, paths)]

    def recognize(self, waveform: np.ndarray) -> Recognition:
        """Recognise one mono float32 clip at the model's sample rate."""
        return self.recognize_batch([waveform])[0]

    def recognize_file(self, path: str | Path) -> Recognition:
        """Load a file (any supported format) and recognise it.

        Raises
        ------
        AudioError
            The file cannot be decoded; the message names it.
        """
        return self.recognize_batch([load_audio(path, self.sample_rate)], [str(path)])[0]
