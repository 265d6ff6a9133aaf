"""Evaluation streams for keyword detection: held-out words at random gaps over background noise.

:func:`build_stream` writes a folder with

- ``stream.wav``: 16 kHz mono PCM16, a continuous background noise with words placed on it;
- ``timeline.csv``: the ground truth, one row per placed word: ``start_s,end_s,label,path``
  (seconds from the stream start to the word's speech onset and offset, its label, its source);
- ``stream.json``: how it was made (data, noise, SNR, seed, gaps, counts), for the record.

Commands are the events a detector should find; ``_unknown_`` words are placed too, as
negatives that it should not fire on (:func:`audiorec.metrics.detection_metrics`).
``_silence_`` clips are background noise, not words, and are left out.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from audiorec.audio import SAMPLE_RATE, load_audio, rms, write_wav
from audiorec.data.manifest import SILENCE_LABEL, Utterance, read_manifest
from audiorec.run import atomic_write_text, write_json

TIMELINE_COLUMNS = ("start_s", "end_s", "label", "path")
SPEECH_DBFS = -26.0   # RMS level of every placed word over its speech, dB re full scale (ITU-T P.56's nominal active speech level)
TRIM_TOP_DB = 30.0    # frames quieter than the clip's loudest by more than this are not speech
TRIM_FRAME_MS = 10.0  # energy frames of the speech trimmer
FADE_MS = 5.0         # raised-cosine fade at both ends of a placed word, so trimming makes no click
LOOP_FADE_MS = 50.0   # cross-fade where the background noise loops


@dataclass(frozen=True)
class TimelineEvent:
    """One word in an evaluation stream.

    Attributes
    ----------
    start_s, end_s : float
        Speech onset and offset, seconds from the start of the stream.
    label : str
        A command, or ``_unknown_`` for a negative word.
    path : str
        The source recording.
    """

    start_s: float
    end_s: float
    label: str
    path: str = ""


@dataclass(frozen=True)
class Stream:
    """What :func:`build_stream` wrote.

    Attributes
    ----------
    audio, timeline, info : Path
        ``stream.wav``, ``timeline.csv`` and ``stream.json``.
    duration_s : float
        Length of the stream in seconds.
    events : list of TimelineEvent
        The timeline, in time order.
    """

    audio: Path
    timeline: Path
    info: Path
    duration_s: float
    events: list[TimelineEvent]

    def load(self) -> tuple[np.ndarray, list[TimelineEvent], float]:
        """The stream's audio, timeline and length: ``(waveform [n_samples] float32 at 16 kHz, events, duration_s)``."""
        waveform = load_audio(self.audio, SAMPLE_RATE)
        return waveform, read_timeline(self.timeline), len(waveform) / SAMPLE_RATE


def speech_bounds(waveform: np.ndarray, sample_rate: int, top_db: float = TRIM_TOP_DB) -> tuple[int, int]:
    """Onset and offset of the speech in a clip, by frame energy.

    The clip is cut into frames of :data:`TRIM_FRAME_MS`; speech runs from the first to the
    last frame whose mean power is within ``top_db`` of the loudest frame's (as
    ``librosa.effects.trim`` does, relative to the peak frame).

    Parameters
    ----------
    waveform : np.ndarray [shape=(n_samples,)]
    sample_rate : int > 0
        Hz.
    top_db : float > 0
        dB below the loudest frame still counted as speech.

    Returns
    -------
    (int, int)
        ``start`` and ``end`` sample indices, ``waveform[start:end]`` being the speech;
        ``(0, 0)`` for an all-zero or empty clip.
    """
    frame = max(1, round(TRIM_FRAME_MS * sample_rate / 1000))
    n_frames = -(-len(waveform) // frame)
    padded = np.zeros(n_frames * frame)
    padded[: len(waveform)] = waveform
    power = np.mean(padded.reshape(n_frames, frame) ** 2, axis=1)
    if not n_frames or power.max() == 0:
        return 0, 0
    loud = np.flatnonzero(10 * np.log10(np.maximum(power, 1e-20) / power.max()) >= -top_db)
    return int(loud[0] * frame), int(min(len(waveform), (loud[-1] + 1) * frame))


def write_timeline(path: str | Path, events: Sequence[TimelineEvent]) -> Path:
    """Write a timeline as CSV (:data:`TIMELINE_COLUMNS`, times in seconds to 0.1 ms), atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(TIMELINE_COLUMNS)
    for e in events:
        writer.writerow([f"{e.start_s:.4f}", f"{e.end_s:.4f}", e.label, e.path])
    return atomic_write_text(path, text.getvalue())


def read_timeline(path: str | Path) -> list[TimelineEvent]:
    """Read a ``timeline.csv`` written by :func:`build_stream` (or by hand, with the same header).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of TimelineEvent
        In file order.

    Raises
    ------
    ValueError
        The file is missing, lacks a column of :data:`TIMELINE_COLUMNS` (``path`` may be
        absent), or a row has a time that is not a number or ends before it starts; the
        message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such timeline file")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"start_s", "end_s", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)} (expected {','.join(TIMELINE_COLUMNS)})")
        events = []
        for line, row in enumerate(reader, start=2):
            try:
                start, end = float(row["start_s"]), float(row["end_s"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line}: start_s and end_s must be numbers, got {row['start_s']!r}, {row['end_s']!r}") from None
            if end < start:
                raise ValueError(f"{path}:{line}: end_s {end} is before start_s {start}")
            events.append(TimelineEvent(start, end, row["label"], row.get("path") or ""))
    return events


def _read_utterances(data: str | Path, progress: bool) -> list[Utterance]:
    path = Path(data).expanduser()
    if path.is_file():
        return read_manifest(path)
    if path.is_dir():
        from audiorec.data.corpora import import_corpus

        return import_corpus(path, progress=progress).utterances
    raise ValueError(f"{data}: no such manifest or corpus folder")


def _background(noises: Sequence[np.ndarray], n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """The noise recordings, each at unit RMS, one after another and looped with cross-fades."""
    fade = round(LOOP_FADE_MS * SAMPLE_RATE / 1000)
    pieces = [n.astype(np.float32) / rms(n) for n in noises]
    loop = pieces[0]
    for piece in pieces[1:]:
        loop = _crossfade(loop, piece, fade)
    # One period of the loop, ending in a cross-fade into its own beginning.
    fade = min(fade, len(loop) // 2)
    period = loop[: len(loop) - fade].copy()
    if fade:
        ramp = np.linspace(0, 1, fade, endpoint=False, dtype=np.float32)
        period[:fade] = loop[:fade] * ramp + loop[len(loop) - fade :] * (1 - ramp)
    start = int(rng.integers(len(period)))
    reps = -(-(start + n_samples) // len(period))
    return np.tile(period, reps)[start : start + n_samples]


def _crossfade(a: np.ndarray, b: np.ndarray, fade: int) -> np.ndarray:
    fade = min(fade, len(a), len(b))
    if not fade:
        return np.concatenate([a, b])
    ramp = np.linspace(0, 1, fade, endpoint=False, dtype=np.float32)
    return np.concatenate([a[:-fade], a[-fade:] * (1 - ramp) + b[:fade] * ramp, b[fade:]])


def build_stream(
    data: str | Path,
    noise: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    duration_s: float = 3600.0,
    snr_db: float = 10.0,
    min_gap_s: float = 2.0,
    max_gap_s: float = 5.0,
    seed: int = 0,
    speech_dbfs: float = SPEECH_DBFS,
    progress: bool = True,
) -> Stream:
    """Write an evaluation stream: words of a manifest at random gaps over background noise.

    Words are taken from ``data`` in a shuffled order, and again in a new shuffled order when
    all have been used, until ``duration_s`` is full. Each is trimmed to its speech
    (:func:`speech_bounds`), scaled to ``speech_dbfs`` RMS over that speech, faded in and out
    over :data:`FADE_MS`, and added to the background at a gap drawn uniformly from
    ``[min_gap_s, max_gap_s]`` after the previous word (the first word after one such gap).
    The background is the noise recordings, each normalised, played one after another and
    looped from a random offset, at a constant level.

    Parameters
    ----------
    data : str or Path
        A JSON Lines manifest (``audiorec data import``, or a run's ``splits/test.jsonl``) or a
        corpus folder (imported on the fly). ``_silence_`` clips are skipped; ``_unknown_``
        words are placed as negatives.
    noise : str or Path, or a sequence of them
        Noise recordings or folders of them (:func:`audiorec.augment.load_noise`).
    out_dir : str or Path
        Folder for ``stream.wav``, ``timeline.csv``, ``stream.json``; created if needed.
    duration_s : float > 0
        Length of the stream in seconds.
    snr_db : float
        Signal-to-noise ratio of every word: 10 log10 of the word's mean power over its speech
        (onset to offset) to the background's mean power over the whole stream.
    min_gap_s, max_gap_s : float, 0 <= min_gap_s <= max_gap_s
        Range of the silence (background only) between consecutive words, in seconds.
    seed : int
        The stream is a function of the inputs and this seed.
    speech_dbfs : float < 0
        RMS level of each word's speech in dB re full scale. Should the mix exceed full scale
        anywhere, the whole stream is scaled down (the SNR is kept) and ``stream.json`` says
        by how much.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    Stream

    Raises
    ------
    ValueError
        A parameter out of range (named with its value), no word to place, or no word that fits
        in ``duration_s``.
    ManifestError, AudioError, NoiseError
        A manifest, word or noise file cannot be read; the message names it.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s={duration_s!r}: must be > 0")
    if not 0 <= min_gap_s <= max_gap_s:
        raise ValueError(f"min_gap_s={min_gap_s!r}, max_gap_s={max_gap_s!r}: need 0 <= min_gap_s <= max_gap_s")
    if not speech_dbfs < 0:
        raise ValueError(f"speech_dbfs={speech_dbfs!r}: must be below 0 dB full scale")
    from tqdm import tqdm

    from audiorec.augment import load_noise  # the training extra's noise loader, shared with augmentation and evaluate

    utterances = [u for u in _read_utterances(data, progress) if u.label is not None and u.label != SILENCE_LABEL]
    if not utterances:
        raise ValueError(f"{data}: no labelled word to place (_silence_ clips are left out)")
    noises = load_noise([noise] if isinstance(noise, (str, Path)) else list(noise), SAMPLE_RATE)

    rng = np.random.default_rng(seed)
    n_samples = round(duration_s * SAMPLE_RATE)
    speech_rms = 10 ** (speech_dbfs / 20)
    stream = _background([n for _, n in noises], n_samples, rng) * np.float32(speech_rms / 10 ** (snr_db / 20))
    fade = round(FADE_MS * SAMPLE_RATE / 1000)
    words: dict[str, np.ndarray | None] = {}  # trimmed words at unit RMS, by path; None: silent clip

    def word(utt: Utterance) -> np.ndarray | None:
        if utt.path not in words:
            y = load_audio(utt.path, SAMPLE_RATE)
            start, end = speech_bounds(y, SAMPLE_RATE)
            y = y[start:end]
            level = rms(y)
            if level == 0:
                words[utt.path] = None
            else:
                y = y / np.float32(level)
                n_fade = min(fade, len(y) // 2)
                ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n_fade) / n_fade)).astype(np.float32)
                y[:n_fade] *= ramp
                y[len(y) - n_fade :] *= ramp[::-1]
                words[utt.path] = y
        return words[utt.path]

    events: list[TimelineEvent] = []
    position = 0
    silent: set[str] = set()
    full = False
    with tqdm(total=round(duration_s), unit="s", desc="build stream", disable=not progress) as bar:
        while not full:
            placed = 0
            for index in rng.permutation(len(utterances)):
                utt = utterances[index]
                y = word(utt)
                if y is None:
                    silent.add(utt.path)
                    continue
                position += round(rng.uniform(min_gap_s, max_gap_s) * SAMPLE_RATE)
                if position + len(y) > n_samples:
                    full = True
                    break
                stream[position : position + len(y)] += y * np.float32(speech_rms)
                events.append(TimelineEvent(position / SAMPLE_RATE, (position + len(y)) / SAMPLE_RATE, utt.label, utt.path))
                position += len(y)
                placed += 1
                bar.update(min(bar.total, round(position / SAMPLE_RATE)) - bar.n)
            full = full or not placed  # a round of silent clips only
        bar.update(bar.total - bar.n)
    if not events:
        raise ValueError(f"no word fits in duration_s={duration_s!r} with gaps of at least {min_gap_s} s")

    peak = float(np.max(np.abs(stream)))
    gain_db = 0.0
    if peak > 0.999:
        gain_db = 20 * np.log10(0.999 / peak)
        stream *= np.float32(0.999 / peak)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    audio = write_wav(out_dir / "stream.wav", stream, SAMPLE_RATE)
    timeline = write_timeline(out_dir / "timeline.csv", events)
    labels = sorted({e.label for e in events})
    info = write_json(out_dir / "stream.json", {
        "data": str(data), "noise": [name for name, _ in noises], "duration_s": n_samples / SAMPLE_RATE,
        "sample_rate": SAMPLE_RATE, "snr_db": snr_db, "speech_dbfs": speech_dbfs, "gain_db": round(gain_db, 2),
        "min_gap_s": min_gap_s, "max_gap_s": max_gap_s, "seed": seed, "n_events": len(events),
        "events_per_label": {label: sum(e.label == label for e in events) for label in labels},
        "n_distinct_words": len({e.path for e in events}), "silent_clips_skipped": sorted(silent),
    })
    return Stream(audio, timeline, info, n_samples / SAMPLE_RATE, events)
