"""The recognizer runtime: an exported ``.onnx`` model run by ONNX Runtime, with numpy only.

Two kinds of model: a command recognizer (:class:`Recognizer`, one label per clip) and a speech
recognizer trained with CTC (:class:`Transcriber`, text with word timings per utterance).

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from audiorec.audio import fit_to_length, load_audio
from audiorec.decoding import WordTiming, ctc_greedy_alignment, word_timings
from audiorec.tokenizer import tokens_to_text

INPUT_NAME = "waveform"  # [batch, samples] float32 at the model's sample rate
OUTPUT_NAME = "probabilities"  # [batch, n_classes], rows sum to 1
METADATA_KEYS = ("audiorec.labels", "audiorec.sample_rate", "audiorec.clip_samples")  # required in every command export
ASR_OUTPUT_NAME = "log_probs"  # [batch, n_frames, n_tokens], natural log, rows sum to 1 in probability
ASR_METADATA_KEYS = ("audiorec.vocab", "audiorec.sample_rate", "audiorec.frame_s")  # required in every ASR export
MIN_SAMPLES = 1600  # 100 ms at 16 kHz: shorter audio is zero-padded to this before transcription


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
    """An exported model in an ONNX Runtime session: a command recognizer or a CTC speech recognizer.

    Parameters
    ----------
    path : str or Path
        ``.onnx`` file written by ``audiorec export``.
    threads : int, optional
        Intra-op threads; default ONNX Runtime's choice (all cores). 1 for latency measurements
        and for servers that run one session per worker.

    Attributes
    ----------
    task : {"commands", "asr"}
        From the metadata key ``audiorec.task`` (``commands`` when absent).
    labels : list of str
        Class names (commands); empty for ``asr``.
    sample_rate : int
        Hz the model expects.
    clip_samples : int or None
        Samples per clip in training (commands); longer audio is cut to its loudest window,
        shorter padded. None for ``asr``, which takes utterances of any length.
    vocab : list of str
        Output tokens of an ``asr`` model, the CTC blank at 0; empty for commands.
    frame_s : float or None
        Seconds per output frame of an ``asr`` model.
    metadata : dict of str to str
        Everything stored in the model (including ``audiorec.config``, the training config in YAML).

    Raises
    ------
    ModelError
        The file is missing, is not a valid ONNX model, or lacks :data:`METADATA_KEYS`
        (:data:`ASR_METADATA_KEYS` for ``asr``).

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
        self.task = self.metadata.get("audiorec.task", "commands")
        missing = [k for k in (ASR_METADATA_KEYS if self.task == "asr" else METADATA_KEYS) if k not in self.metadata]
        if missing:
            raise ModelError(f"{self.path}: not exported by 'audiorec export' (metadata {', '.join(missing)} missing)")
        names = [i.name for i in self.session.get_inputs()]
        if names != [INPUT_NAME]:
            raise ModelError(f"{self.path}: expected one input named {INPUT_NAME!r}, found {names}")
        self.sample_rate = int(self.metadata["audiorec.sample_rate"])
        self.labels = list(json.loads(self.metadata.get("audiorec.labels", "[]")))
        self.clip_samples = int(self.metadata["audiorec.clip_samples"]) if "audiorec.clip_samples" in self.metadata else None
        self.vocab = list(json.loads(self.metadata.get("audiorec.vocab", "[]")))
        self.frame_s = float(self.metadata["audiorec.frame_s"]) if "audiorec.frame_s" in self.metadata else None
        self.output_name = ASR_OUTPUT_NAME if self.task == "asr" else OUTPUT_NAME

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` for float32 clips ``[n, samples]`` (commands), or
        log-probabilities ``[n, n_frames, n_tokens]`` (``asr``)."""
        return self.session.run([self.output_name], {INPUT_NAME: clips})[0]


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
        if onnx_model.task != "commands":
            raise ModelError(f"{path}: a speech-recognition model (task={onnx_model.task}); use 'audiorec transcribe'")
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


@dataclass
class Transcription:
    """The text of one utterance.

    Attributes
    ----------
    text : str
        Normalised text: lower case, words separated by single spaces.
    words : list of WordTiming
        Each word with its start and end in seconds from the CTC alignment of the greedy path
        (when its tokens fire, which lags or leads the sound by up to a few output frames) and a
        confidence (the mean probability of its tokens).
    path : str or None
        The file, when transcribed from one.
    duration_s : float or None
        Length of the audio in seconds.
    """

    text: str
    words: list[WordTiming] = field(default_factory=list)
    path: str | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``path``, ``text``, ``words`` as ``[{word, start_s, end_s, confidence}]``, ``duration_s``."""
        return {
            "path": self.path,
            "text": self.text,
            "words": [{"word": w.word, "start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3),
                       "confidence": round(w.confidence, 4)} for w in self.words],
            "duration_s": None if self.duration_s is None else round(self.duration_s, 4),
        }


class Transcriber:
    """A speech recognizer trained with CTC: files or arrays in, text with word timings out.

    Greedy (best-path) decoding: the most probable token per output frame, repeats merged,
    blanks dropped (Graves et al. 2006), then the tokens joined into words.

    Parameters
    ----------
    predict : callable
        Maps float32 audio ``[1, samples]`` to log-probabilities ``[1, n_frames, n_tokens]``: an
        :class:`OnnxModel` of ``task=asr``, or a PyTorch model wrapped by
        :func:`audiorec.recognize.load_asr_run`.
    vocab : sequence of str
        Token strings by id, the CTC blank at 0.
    sample_rate : int
        Hz of the model's input.
    frame_s : float
        Seconds per output frame (hop length times the encoder's time stride).
    config : Config, optional
        The training configuration, when loaded from a run directory.

    Examples
    --------
    >>> asr = Transcriber.load("an4.onnx")                          # doctest: +SKIP
    >>> asr.transcribe_file("an4/wav/an4test_clstk/fcaw/an406-fcaw-b.sph").text   # doctest: +SKIP
    'rubout g m e f three nine'
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], vocab: Sequence[str], sample_rate: int,
                 frame_s: float, config=None):
        self.predict = predict
        self.vocab = list(vocab)
        self.sample_rate = int(sample_rate)
        self.frame_s = float(frame_s)
        self.config = config

    @classmethod
    def load(cls, model: str | Path, threads: int | None = None) -> "Transcriber":
        """Load an exported ``.onnx`` speech recognizer, or a ``task=asr`` run directory (needs PyTorch).

        Raises
        ------
        ModelError
            The file is missing, not an exported model, or a command recognizer.
        RunError
            A directory that is not a speech-recognition run directory.
        """
        path = Path(model)
        if path.is_dir():
            return cls.from_run(path)
        onnx_model = OnnxModel(path, threads=threads)
        if onnx_model.task != "asr":
            raise ModelError(f"{path}: a command recognizer (task={onnx_model.task}), not a speech recognizer; "
                             "use 'audiorec recognize'")
        return cls(onnx_model, onnx_model.vocab, onnx_model.sample_rate, onnx_model.frame_s)

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str | Path | None = None) -> "Transcriber":
        """Load the PyTorch model of a ``task=asr`` run (best checkpoint by default); needs the ``[train]`` extra."""
        from audiorec.recognize import load_asr_run

        predict = load_asr_run(run_dir, checkpoint)
        return cls(predict, predict.vocab, predict.sample_rate, predict.frame_s, config=predict.config)

    def log_probs(self, waveform: np.ndarray) -> np.ndarray:
        """Per-frame token log-probabilities of one utterance.

        Parameters
        ----------
        waveform : np.ndarray [shape=(n_samples,)]
            Mono float32 at :attr:`sample_rate`; shorter than :data:`MIN_SAMPLES` is zero-padded.

        Returns
        -------
        np.ndarray [shape=(n_frames, n_tokens), dtype=float32]

        Raises
        ------
        ValueError
            The array is not one-dimensional.
        """
        if np.ndim(waveform) != 1:
            raise ValueError(f"expected mono audio as a 1-D array, got shape {np.shape(waveform)}")
        wave = np.asarray(waveform, np.float32)
        if len(wave) < MIN_SAMPLES:
            wave = np.pad(wave, (0, MIN_SAMPLES - len(wave)))
        return np.asarray(self.predict(np.ascontiguousarray(wave[None, :])))[0]

    def transcribe(self, waveform: np.ndarray, sample_rate: int | None = None, path: str | None = None) -> Transcription:
        """Transcribe one mono float32 utterance; ``sample_rate`` (Hz), when given, must be the model's.

        Raises
        ------
        ValueError
            Another sample rate than the model's, or not a 1-D array.
        """
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise ValueError(f"audio at {sample_rate} Hz given to a model trained at {self.sample_rate} Hz; "
                             "resample it first (audiorec.audio.resample) or pass a file")
        return self.decode(self.log_probs(waveform), len(waveform) / self.sample_rate, path)

    def decode(self, log_probs: np.ndarray, duration_s: float, path: str | None = None) -> Transcription:
        """Greedy CTC decoding of per-frame log-probabilities into text and word timings.

        Parameters
        ----------
        log_probs : np.ndarray [shape=(n_frames, n_tokens)]
            As :meth:`log_probs` returns them.
        duration_s : float
            Length of the audio in seconds; no word ends after it.
        path : str, optional
            Carried into the result.

        Returns
        -------
        Transcription

        References
        ----------
        Graves et al. 2006 (best-path decoding: argmax per frame, repeats merged, blanks dropped).
        """
        spans = ctc_greedy_alignment(log_probs)
        text = tokens_to_text(self.vocab, [s.token for s in spans])
        # The last output frame covers the padding of the final hops; no word ends after the audio.
        words = [replace(w, end_s=min(w.end_s, duration_s), start_s=min(w.start_s, duration_s))
                 for w in word_timings(spans, self.vocab, self.frame_s)]
        return Transcription(text=text, words=words, path=path, duration_s=duration_s)

    def transcribe_file(self, path: str | Path) -> Transcription:
        """Load a file (any supported format, resampled to the model's rate) and transcribe it.

        Raises
        ------
        AudioError
            The file cannot be decoded; the message names it.
        """
        return self.transcribe(load_audio(path, self.sample_rate), path=str(path))
