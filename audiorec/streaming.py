"""Streaming keyword detection in long audio: slide the recognizer's window, smooth, threshold.

A command recognizer classifies one clip of ``clip_samples`` (1 s). To find commands in a long
recording or a live stream, :class:`StreamingDetector` classifies windows of that length every
``hop_ms``, averages each label's posterior over the last ``smooth_ms`` (Chen, Parada & Heigold
2014), and reports a :class:`Detection` when the smoothed posterior of a command rises across
``threshold``; after a detection nothing fires for ``refractory_ms``. The labels in ``ignore``
(``_silence_``, ``_unknown_``) never fire: they only compete for probability mass.

The same detections come from a whole file (:meth:`StreamingDetector.detect`, one batched pass)
and from chunks of any size pushed as they arrive (:meth:`StreamingDetector.feed`, for a
microphone or a WebSocket), and one posterior pass can be thresholded many times
(:meth:`StreamingDetector.detections_from_posteriors`), which is how a DET curve is drawn.

Only numpy and :mod:`audiorec.runtime` are needed: this runs without PyTorch.

References
----------
G. Chen, C. Parada and G. Heigold, "Small-footprint keyword spotting using deep neural
networks", ICASSP 2014, section 2.3 (posterior smoothing over a sliding window of frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audiorec.runtime import Recognizer

IGNORED_LABELS = ("_silence_", "_unknown_")  # the non-command classes of Speech Commands models
# Defaults measured on a 1-hour SC12 stream (held-out speakers, running_tap at 10 dB, an SC12 CNN;
# see the StreamingDetector docstring): a 50 ms hop detected no more at any false-accept rate and
# costs twice the compute; averaging over 500-800 ms beat 0-300 ms by 5-10 points of detection
# rate at 1-10 false accepts per hour; 0.8 is the knee of that curve.
DEFAULT_HOP_MS = 100.0          # real-time factor 0.005-0.01 on one core for the default CNN
DEFAULT_SMOOTH_MS = 500.0       # posteriors of 5 windows averaged
DEFAULT_THRESHOLD = 0.8         # smoothed posterior a command must reach
DEFAULT_REFRACTORY_MS = 1000.0  # one clip length: a word never fires twice
WINDOWS_PER_CALL = 256          # windows per predict_proba call in a whole-file pass


@dataclass(frozen=True)
class Detection:
    """A command found in a stream.

    Attributes
    ----------
    time_s : float
        Seconds from the start of the stream to the end of the middle window of those whose
        posteriors were averaged (see :class:`StreamingDetector`); near the end of the word.
    label : str
        The command.
    score : float in [0, 1]
        Its smoothed posterior when the detection fired.
    """

    time_s: float
    label: str
    score: float

    def to_dict(self) -> dict:
        """A JSON-ready dict: ``time_s`` (ms precision), ``label``, ``score``."""
        return {"time_s": round(self.time_s, 3), "label": self.label, "score": round(self.score, 4)}


class StreamingDetector:
    """Keyword detection over a sliding window, with posterior smoothing and a refractory period.

    Window ``j`` covers samples ``[j * hop, j * hop + clip_samples)`` of the stream, and its
    posteriors are smoothed as in Chen et al. (2014): the smoothed posterior of frame ``j`` is
    the mean of the raw posteriors of frames ``max(0, j - w + 1) .. j`` with
    ``w = round(smooth_ms / hop_ms)`` (at least 1). A command fires at frame ``j`` when its
    smoothed posterior reaches ``threshold`` there and was below it at frame ``j - 1`` (a rising
    crossing; the best such command when several cross at once), unless a detection of any label
    fired less than ``refractory_ms`` earlier. A posterior that stays above the threshold
    therefore fires once, however long it stays.

    The time of a detection is the end of the middle window of those averaged at the frame that
    fired: ``((j - (n - 1) / 2) * hop + clip_samples) / sample_rate`` seconds, ``n`` being the
    number of windows averaged. A command fires about when the word has wholly entered the
    windows averaged, so this time is near the end of the word: on the SC12 stream at the
    defaults, median 0.02 s before the speech offset, 80% of detections between 0.27 s before
    and 0.13 s after it. A detection is known ``(n - 1) / 2`` hops after its time (when the
    newest window is complete).

    Measured on a 1-hour stream of the SC12 test speakers' words over ``running_tap`` at 10 dB
    SNR (``audiorec data stream``, seed 0; 810 commands, 82 ``_unknown_`` words), with the SC12
    CNN trained with noise augmentation (``runs/bench/sc12_noise``) exported to ONNX, on one thread: at the defaults 69.6% of the commands
    detected at 4 false accepts per hour; 89.5% at 32/h (threshold 0.5); real-time factor 0.009.

    Parameters
    ----------
    recognizer : Recognizer
        Its ``predict_proba`` classifies ``[n, clip_samples]`` float32 windows at
        ``recognizer.sample_rate``.
    hop_ms : float > 0
        Milliseconds between window starts; at most the clip length. Rounded to whole samples.
    smooth_ms : float >= 0
        Span of the moving average, in milliseconds (0 or less than ``hop_ms``: no smoothing).
    threshold : float in (0, 1]
        Smoothed posterior a command must reach.
    refractory_ms : float >= 0
        After a detection, no other fires for this long.
    ignore : sequence of str
        Labels that never fire (those absent from the model are allowed).

    Attributes
    ----------
    labels : list of str
        The recognizer's labels.
    sample_rate : int
        Hz.
    clip_samples, hop_samples : int
        Window length and hop in samples.
    smooth_frames, refractory_frames : int
        ``smooth_ms`` and ``refractory_ms`` in windows.

    Raises
    ------
    ValueError
        A parameter out of range (the message names it and its value), or every label ignored.

    Examples
    --------
    >>> rec = Recognizer.load("model.onnx", threads=1)               # doctest: +SKIP
    >>> detector = StreamingDetector(rec)                            # doctest: +SKIP
    >>> [d.to_dict() for d in detector.detect(load_audio("long.wav"))]  # doctest: +SKIP
    [{'time_s': 3.25, 'label': 'yes', 'score': 0.97}, ...]
    """

    def __init__(self, recognizer: Recognizer, hop_ms: float = DEFAULT_HOP_MS, smooth_ms: float = DEFAULT_SMOOTH_MS,
                 threshold: float = DEFAULT_THRESHOLD, refractory_ms: float = DEFAULT_REFRACTORY_MS,
                 ignore: Sequence[str] = IGNORED_LABELS):
        self.recognizer = recognizer
        self.labels = list(recognizer.labels)
        self.sample_rate = int(recognizer.sample_rate)
        self.clip_samples = int(recognizer.clip_samples)
        clip_ms = 1000.0 * self.clip_samples / self.sample_rate
        if not (math.isfinite(hop_ms) and 0 < hop_ms <= clip_ms):
            raise ValueError(f"hop_ms={hop_ms!r}: must be > 0 and at most the clip length ({clip_ms:g} ms)")
        self.hop_samples = round(hop_ms * self.sample_rate / 1000)
        if self.hop_samples < 1:
            raise ValueError(f"hop_ms={hop_ms!r}: shorter than one sample at {self.sample_rate} Hz")
        if not (math.isfinite(smooth_ms) and smooth_ms >= 0):
            raise ValueError(f"smooth_ms={smooth_ms!r}: must be a number >= 0")
        if not (math.isfinite(refractory_ms) and refractory_ms >= 0):
            raise ValueError(f"refractory_ms={refractory_ms!r}: must be a number >= 0")
        self.threshold = self._check_threshold(threshold)
        self.hop_ms = 1000.0 * self.hop_samples / self.sample_rate
        self.smooth_ms = float(smooth_ms)
        self.refractory_ms = float(refractory_ms)
        self.smooth_frames = max(1, round(smooth_ms / self.hop_ms))
        self.refractory_frames = math.ceil(refractory_ms / self.hop_ms - 1e-9)
        self.ignore = tuple(ignore)
        self._commands = np.array([i for i, label in enumerate(self.labels) if label not in self.ignore], dtype=np.intp)
        if not len(self._commands):
            raise ValueError(f"every label of the model is ignored ({', '.join(self.labels)}): nothing to detect")
        self.reset()

    @staticmethod
    def _check_threshold(threshold: float) -> float:
        if not (isinstance(threshold, (int, float, np.floating)) and 0 < threshold <= 1):
            raise ValueError(f"threshold={threshold!r}: must be in (0, 1]")
        return float(threshold)

    def frame_times(self, first: int, n: int) -> np.ndarray:
        """Centres of windows ``first .. first + n - 1``, in seconds from the stream start.

        Parameters
        ----------
        first : int >= 0
            Index of the first window (window ``j`` starts at sample ``j * hop_samples``).
        n : int >= 0
            How many windows.

        Returns
        -------
        np.ndarray [shape=(n,), dtype=float64]
        """
        return (np.arange(first, first + n, dtype=np.float64) * self.hop_samples + self.clip_samples / 2) / self.sample_rate

    def _check_waveform(self, waveform: np.ndarray, sample_rate: int | None) -> np.ndarray:
        self.recognizer.check_sample_rate(sample_rate)
        waveform = np.asarray(waveform)
        if waveform.ndim != 1:
            raise ValueError(f"expected mono audio as a 1-D array, got shape {waveform.shape}")
        return waveform.astype(np.float32, copy=False)

    def _classify(self, waveform: np.ndarray, n_windows: int) -> np.ndarray:
        """Raw posteriors ``[n_windows, n_classes]`` of the first windows of ``waveform``."""
        if n_windows <= 0:
            return np.zeros((0, len(self.labels)), np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(waveform, self.clip_samples)[:: self.hop_samples][:n_windows]
        return np.concatenate([self.recognizer.predict_proba(windows[i : i + WINDOWS_PER_CALL])
                               for i in range(0, n_windows, WINDOWS_PER_CALL)])

    def n_windows(self, n_samples: int) -> int:
        """How many whole windows ``n_samples`` of audio hold."""
        return 0 if n_samples < self.clip_samples else (n_samples - self.clip_samples) // self.hop_samples + 1

    def posteriors(self, waveform: np.ndarray, sample_rate: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Raw posteriors of every whole window of a recording, in batches.

        Parameters
        ----------
        waveform : np.ndarray [shape=(n_samples,)]
            Mono audio at the model's rate, from the stream start. Samples after the last whole
            window (less than one hop) are not classified; a recording shorter than one clip
            gives no window.
        sample_rate : int, optional
            Hz of ``waveform``; checked against the model's when given.

        Returns
        -------
        times_s : np.ndarray [shape=(n_windows,), dtype=float64]
            Centre of each window in seconds (:meth:`frame_times`).
        probs : np.ndarray [shape=(n_windows, n_classes), dtype=float32]
            Class posteriors per window, before smoothing.

        Raises
        ------
        ValueError
            ``sample_rate`` differs from the model's, or ``waveform`` is not one-dimensional.
        """
        waveform = self._check_waveform(waveform, sample_rate)
        n = self.n_windows(len(waveform))
        return self.frame_times(0, n), self._classify(waveform, n)

    def _smooth(self, probs: np.ndarray, history: np.ndarray, first: int) -> np.ndarray:
        """Moving average of frames ``first ..`` given up to ``smooth_frames - 1`` frames before them.

        The sum runs over the same values in the same order whatever the chunking, so
        :meth:`feed` and :meth:`detections_from_posteriors` smooth alike.
        """
        w = self.smooth_frames
        pad = np.zeros((w - 1 - len(history), probs.shape[1]))
        stacked = np.concatenate([pad, history, probs]).astype(np.float64)
        total = np.zeros(probs.shape, np.float64)
        for offset in range(w):
            total += stacked[offset : offset + len(probs)]
        counts = np.minimum(np.arange(first + 1, first + len(probs) + 1), w)
        return total / counts[:, None]

    def _scan(self, smoothed: np.ndarray, previous: np.ndarray, first: int, threshold: float,
              last_fired: int | None) -> tuple[list[Detection], int | None]:
        """Detections among frames ``first ..`` of smoothed posteriors.

        ``previous`` holds the smoothed posteriors of frame ``first - 1`` (zeros at the stream
        start), so that a crossing is seen across chunk boundaries. Returns the detections and
        the index of the last frame that fired.
        """
        if not len(smoothed):
            return [], last_fired
        scores = smoothed[:, self._commands]
        above = scores >= threshold
        before = np.vstack([previous[None, self._commands] >= threshold, above[:-1]])
        rising = above & ~before
        detections = []
        for i in np.flatnonzero(rising.any(axis=1)):
            j = first + int(i)
            if last_fired is not None and j - last_fired < self.refractory_frames:
                continue
            crossing = np.flatnonzero(rising[i])
            k = crossing[np.argmax(scores[i, crossing])]
            middle = j - (min(j + 1, self.smooth_frames) - 1) / 2  # middle window of those averaged
            time_s = (middle * self.hop_samples + self.clip_samples) / self.sample_rate
            detections.append(Detection(float(time_s), self.labels[self._commands[k]], float(scores[i, k])))
            last_fired = j
        return detections, last_fired

    def detections_from_posteriors(self, times_s: np.ndarray, probs: np.ndarray, threshold: float | None = None) -> list[Detection]:
        """Smooth raw posteriors and find the detections, without running the model again.

        Parameters
        ----------
        times_s : np.ndarray [shape=(n_windows,)]
            Window centres in seconds, as :meth:`posteriors` returns them (consecutive windows
            from the stream start); only their number is checked, times come from the frame index.
        probs : np.ndarray [shape=(n_windows, n_classes)]
            Raw posteriors from :meth:`posteriors`.
        threshold : float in (0, 1], optional
            Overrides the detector's threshold (for a DET curve over many thresholds).

        Returns
        -------
        list of Detection
            In time order.

        Raises
        ------
        ValueError
            Shapes that do not match each other or the labels, or a threshold out of range.
        """
        threshold = self.threshold if threshold is None else self._check_threshold(threshold)
        probs = np.asarray(probs)
        if probs.ndim != 2 or probs.shape[1] != len(self.labels) or len(np.asarray(times_s)) != len(probs):
            raise ValueError(f"expected times [n] and probs [n, {len(self.labels)}], got {np.shape(times_s)} and {probs.shape}")
        smoothed = self._smooth(probs, np.zeros((0, len(self.labels))), 0)
        return self._scan(smoothed, np.zeros(len(self.labels)), 0, threshold, None)[0]

    def detect(self, waveform: np.ndarray, sample_rate: int | None = None) -> list[Detection]:
        """Detections in a whole recording: :meth:`posteriors` then :meth:`detections_from_posteriors`.

        Parameters
        ----------
        waveform : np.ndarray [shape=(n_samples,)]
            Mono audio at the model's rate.
        sample_rate : int, optional
            Hz; checked when given.

        Returns
        -------
        list of Detection
            In time order; the same as :meth:`feed` gives for the same audio in any chunks.

        Raises
        ------
        ValueError
            As :meth:`posteriors`.
        """
        return self.detections_from_posteriors(*self.posteriors(waveform, sample_rate))

    def reset(self) -> None:
        """Forget the stream: the next :meth:`feed` starts a new one at time 0."""
        self._buffer = np.zeros(0, np.float32)  # samples from the start of the next window on
        self._history = np.zeros((0, len(self.labels)), np.float32)  # last smooth_frames - 1 raw posteriors
        self._frames = 0  # windows classified so far
        self._previous = np.zeros(len(self.labels))  # smoothed posteriors of the last frame
        self._last_fired: int | None = None

    @property
    def stream_time_s(self) -> float:
        """Seconds of audio fed since the start (or the last :meth:`reset`)."""
        return (self._frames * self.hop_samples + len(self._buffer)) / self.sample_rate

    def feed(self, chunk: np.ndarray, sample_rate: int | None = None) -> list[Detection]:
        """Push the next samples of a live stream; get the detections they complete.

        The detector keeps the samples it has not yet classified (less than one window plus one
        chunk) and the last raw posteriors the moving average needs, so chunks of any size,
        down to single samples, give the detections :meth:`detect` gives for the whole audio:
        the same windows, averaged in the same order. (Only the last bit of a score may differ,
        where the model's arithmetic depends on how many windows share a batch.) A detection is
        reported as soon as the window that triggers it is complete: ``clip_samples`` after the
        start of that window.

        Parameters
        ----------
        chunk : np.ndarray [shape=(n_samples,)]
            Mono audio at the model's rate; may be empty.
        sample_rate : int, optional
            Hz; checked when given.

        Returns
        -------
        list of Detection
            New detections, in time order, timed from the start of the stream.

        Raises
        ------
        ValueError
            ``sample_rate`` differs from the model's, or ``chunk`` is not one-dimensional.
        """
        chunk = self._check_waveform(chunk, sample_rate)
        self._buffer = np.concatenate([self._buffer, chunk])
        n = self.n_windows(len(self._buffer))
        if n == 0:
            return []
        probs = self._classify(self._buffer, n)
        self._buffer = self._buffer[n * self.hop_samples :].copy()
        smoothed = self._smooth(probs, self._history, self._frames)
        detections, self._last_fired = self._scan(smoothed, self._previous, self._frames, self.threshold, self._last_fired)
        self._previous = smoothed[-1]
        keep = self.smooth_frames - 1
        self._history = np.concatenate([self._history, probs])[-keep:] if keep else self._history
        self._frames += n
        return detections
