"""The recognizer runtime: an exported ``.onnx`` model run by ONNX Runtime, with numpy only.

This module imports neither PyTorch nor anything that needs it, so a recognizer can ship with
``pip install audiorec`` (no ``[train]`` extra): onnxruntime, numpy and the audio decoders. The
command line, the server, the streaming detector and the benchmarks all recognise through
:class:`Recognizer`; a training run directory (PyTorch checkpoint) loads into the same class
through :meth:`Recognizer.from_run`, which is the only path that needs torch.

The model file is the one ``audiorec export`` writes: raw 16 kHz float32 waveform
``[batch, samples]`` in, class probabilities ``[batch, n_classes]`` out, feature extraction
inside the graph, and the labels, sample rate and clip length in the model's metadata
(:data:`METADATA_KEYS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from audiorec.audio import fit_to_length, load_audio

INPUT_NAME = "waveform"  # [batch, samples] float32 at the model's sample rate
OUTPUT_NAME = "probabilities"  # [batch, n_classes], rows sum to 1
METADATA_KEYS = ("audiorec.labels", "audiorec.sample_rate", "audiorec.clip_samples")  # required in every export


class ModelError(ValueError):
    """A model file cannot be used: missing, not an ONNX model, or without audiorec's metadata.

    The message starts with the path, then the reason.
    """


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
    duration_s : float or None
        Length of the audio that was recognised, in seconds, before it was fitted to the clip length.
    """

    label: str
    score: float
    top_k: list[tuple[str, float]] = field(default_factory=list)
    path: str | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``path``, ``label``, ``score``, ``top_k`` as ``[{label, score}]``, ``duration_s``."""
        return {
            "path": self.path,
            "label": self.label,
            "score": round(self.score, 6),
            "top_k": [{"label": l, "score": round(s, 6)} for l, s in self.top_k],
            "duration_s": None if self.duration_s is None else round(self.duration_s, 4),
        }


class OnnxModel:
    """An exported command model in an ONNX Runtime session.

    Parameters
    ----------
    path : str or Path
        ``.onnx`` file written by ``audiorec export``.
    threads : int, optional
        Intra-op threads; default ONNX Runtime's choice (all cores). 1 for latency measurements
        and for servers that run one session per worker.

    Attributes
    ----------
    labels : list of str
    sample_rate : int
        Hz the model expects.
    clip_samples : int
        Samples per clip in training; longer audio is cut to its loudest window, shorter padded.
    metadata : dict of str to str
        Everything stored in the model (including ``audiorec.config``, the training config in YAML).

    Raises
    ------
    ModelError
        The file is missing, is not a valid ONNX model, or lacks :data:`METADATA_KEYS`.

    References
    ----------
    ONNX Runtime's ``InferenceSession`` on the CPU execution provider (onnxruntime.ai); the
    graph follows the ONNX operator set 18 specification (onnx.ai).
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # ONNX Runtime's warnings are for model authors, not users
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for every kind of bad file
            raise ModelError(f"{self.path}: not a loadable ONNX model ({str(e).splitlines()[0][:300]})") from e
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        missing = [k for k in METADATA_KEYS if k not in self.metadata]
        if missing:
            raise ModelError(f"{self.path}: not exported by 'audiorec export' (metadata {', '.join(missing)} missing)")
        names = [i.name for i in self.session.get_inputs()]
        if names != [INPUT_NAME]:
            raise ModelError(f"{self.path}: expected one input named {INPUT_NAME!r}, found {names}")
        self.labels = list(json.loads(self.metadata["audiorec.labels"]))
        self.sample_rate = int(self.metadata["audiorec.sample_rate"])
        self.clip_samples = int(self.metadata["audiorec.clip_samples"])

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` for float32 clips ``[n, samples]``."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: clips})[0]


class Recognizer:
    """A command recognizer: files or arrays in, labels with probabilities out.

    Parameters
    ----------
    predict : callable
        Maps float32 clips ``[n, clip_samples]`` to probabilities ``[n, n_classes]``: an
        :class:`OnnxModel`, or a PyTorch model wrapped by :func:`audiorec.recognize.load_run`.
    labels : sequence of str
        Class names in output order.
    sample_rate : int
        Hz of the model's input.
    clip_samples : int
        Samples per clip; each input is fitted to it (loudest window of longer audio, zero padding
        of shorter), as in training.
    top_k : int
        How many classes each :class:`Recognition` lists.
    batch_size : int
        Clips per call of ``predict``.
    config : Config, optional
        The training configuration, when loaded from a run directory (None for an ONNX file,
        whose metadata keeps it as YAML text under ``audiorec.config``).

    Raises
    ------
    ValueError
        From the methods: an array at another sample rate than the model's, or not 1-D.

    Examples
    --------
    >>> rec = Recognizer.load("model.onnx")          # doctest: +SKIP
    >>> rec.recognize_file("yes.wav").label          # doctest: +SKIP
    'yes'
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], labels: Sequence[str], sample_rate: int,
                 clip_samples: int, top_k: int = 3, batch_size: int = 64, config=None):
        self.predict = predict
        self.config = config
        self.labels = list(labels)
        self.sample_rate = int(sample_rate)
        self.clip_samples = int(clip_samples)
        self.top_k = top_k
        self.batch_size = batch_size

    @classmethod
    def load(cls, model: str | Path, top_k: int = 3, threads: int | None = None) -> "Recognizer":
        """Load an exported ``.onnx`` file, or a training run directory (needs PyTorch).

        Parameters
        ----------
        model : str or Path
            ``.onnx`` file from ``audiorec export``, or a run directory from ``audiorec train``.
        top_k : int
        threads : int, optional
            ONNX Runtime intra-op threads (ignored for run directories).

        Raises
        ------
        ModelError
            The file is missing or not an exported model.
        RunError
            A directory that is not a run directory.
        """
        path = Path(model)
        if path.is_dir():
            return cls.from_run(path, top_k=top_k)
        onnx_model = OnnxModel(path, threads=threads)
        return cls(onnx_model, onnx_model.labels, onnx_model.sample_rate, onnx_model.clip_samples, top_k=top_k)

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str | Path | None = None, top_k: int = 3) -> "Recognizer":
        """Load the PyTorch model of a training run (best checkpoint by default); needs the ``[train]`` extra."""
        from audiorec.recognize import load_run

        predict = load_run(run_dir, checkpoint)
        return cls(predict, predict.labels, predict.sample_rate, predict.clip_samples, top_k=top_k, config=predict.config)

    def check_sample_rate(self, sample_rate: int | None) -> None:
        """Raise ``ValueError`` when an array's ``sample_rate`` (Hz) is not the model's."""
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise ValueError(
                f"audio at {sample_rate} Hz given to a model trained at {self.sample_rate} Hz; "
                f"resample it first (audiorec.audio.resample) or pass a file"
            )

    def predict_proba(self, clips: np.ndarray) -> np.ndarray:
        """Class posteriors of equal-length clips.

        Parameters
        ----------
        clips : np.ndarray [shape=(n, samples), dtype=float32]
            At :attr:`sample_rate`; any length the model accepts (the training clip length is
            what it was trained on).

        Returns
        -------
        np.ndarray [shape=(n, n_classes), dtype=float32]
            Rows sum to 1.
        """
        clips = np.ascontiguousarray(clips, dtype=np.float32)
        if clips.ndim != 2:
            raise ValueError(f"clips must be [n, samples], got shape {clips.shape}")
        if not len(clips):
            return np.zeros((0, len(self.labels)), np.float32)
        return np.concatenate([self.predict(clips[i : i + self.batch_size]) for i in range(0, len(clips), self.batch_size)])

    def _answer(self, probs: np.ndarray, path: str | None, duration_s: float) -> Recognition:
        order = np.argsort(-probs, kind="stable")[: self.top_k]  # ties (int8 logits) go to the first label, as argmax
        top = [(self.labels[i], float(probs[i])) for i in order]
        return Recognition(label=top[0][0], score=top[0][1], top_k=top, path=path, duration_s=duration_s)

    def recognize_batch(self, waveforms: Sequence[np.ndarray], paths: Sequence[str | None] | None = None,
                        sample_rate: int | None = None) -> list[Recognition]:
        """Recognise several clips at once.

        Parameters
        ----------
        waveforms : sequence of np.ndarray [shape=(n_samples,)]
            Mono float32 at the model's sample rate, any length (fitted to the clip length).
        paths : sequence of str, optional
            Carried into the results.
        sample_rate : int, optional
            Hz of the arrays; checked against the model's when given.

        Returns
        -------
        list of Recognition

        Raises
        ------
        ValueError
            ``sample_rate`` differs from the model's, or an array is not one-dimensional.
        """
        self.check_sample_rate(sample_rate)
        for w in waveforms:
            if np.ndim(w) != 1:
                raise ValueError(f"expected mono audio as a 1-D array, got shape {np.shape(w)}")
        paths = list(paths) if paths is not None else [None] * len(waveforms)
        clips = np.stack([fit_to_length(np.asarray(w, np.float32), self.clip_samples) for w in waveforms]) if len(waveforms) else np.zeros((0, self.clip_samples), np.float32)
        probs = self.predict_proba(clips)
        return [self._answer(p, path, len(w) / self.sample_rate) for p, path, w in zip(probs, paths, waveforms)]

    def recognize(self, waveform: np.ndarray, sample_rate: int | None = None) -> Recognition:
        """Recognise one mono float32 clip; ``sample_rate`` (Hz), when given, must be the model's."""
        return self.recognize_batch([waveform], sample_rate=sample_rate)[0]

    def recognize_file(self, path: str | Path) -> Recognition:
        """Load a file (any supported format, resampled to the model's rate) and recognise it.

        Raises
        ------
        AudioError
            The file cannot be decoded; the message names it.
        """
        return self.recognize_batch([load_audio(path, self.sample_rate)], [str(path)])[0]
