"""Audio in: decode any supported file and resample it to 16 kHz mono float32.

Every later stage (manifests, features, models, the runtime) works on the output of
:func:`load_audio`; nothing else in the package opens audio files.

Decoding uses libsndfile through ``soundfile`` (WAV of any PCM width or float, FLAC, OGG/Vorbis,
OGG/Opus, MP3, NIST SPHERE) and falls back to FFmpeg through PyAV (M4A/AAC, WebM, anything else
FFmpeg reads). Resampling uses libsoxr through ``soxr``. No shell is ever involved.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16_000  # Hz, the rate every stage after loading works at


class AudioError(Exception):
    """A file could not be decoded.

    The message always starts with the path, then the reason; the underlying decoder error
    is chained as ``__cause__``.

    Parameters
    ----------
    path : str or Path
        The file that failed.
    reason : str
        Why it failed, in words a user can act on.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class AudioTooLongError(AudioError):
    """A file holds more audio than the caller allows (``max_duration_s`` of :func:`decode_audio`).

    Raised before the whole file is decoded, so a small compressed file that would expand to
    hours of samples costs no memory.

    Attributes
    ----------
    max_duration_s : float
        The limit, in seconds.
    """

    def __init__(self, path: str | Path, max_duration_s: float):
        self.max_duration_s = float(max_duration_s)
        super().__init__(path, f"longer than the {max_duration_s:g} s allowed")


@dataclass(frozen=True)
class DecodedAudio:
    """Samples as stored in the file, before downmixing and resampling.

    Attributes
    ----------
    samples : np.ndarray [shape=(n_channels, n_samples), dtype=float32]
        Amplitudes in [-1, 1] (full scale of the stored format).
    sample_rate : int > 0
        Sampling rate of ``samples`` in Hz.
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[1] / self.sample_rate


def _decode_soundfile(path: Path, max_duration_s: float | None) -> DecodedAudio:
    if max_duration_s is not None:
        info = soundfile.info(str(path))
        if info.frames > max_duration_s * info.samplerate:
            raise AudioTooLongError(path, max_duration_s)
    samples, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return DecodedAudio(np.ascontiguousarray(samples.T), int(sample_rate))


def _decode_ffmpeg(path: Path, max_duration_s: float | None) -> DecodedAudio:
    import av  # imported lazily: only formats libsndfile cannot read need FFmpeg

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("the file has no audio stream")
        stream = container.streams.audio[0]
        sample_rate = stream.codec_context.sample_rate or stream.rate
        n_channels = stream.codec_context.channels or 1
        # Packed float output keeps every channel; downmixing is done once, in load_audio.
        layout = stream.codec_context.layout.name if stream.codec_context.layout else "mono"
        resampler = av.AudioResampler(format="flt", layout=layout, rate=sample_rate)
        chunks = []
        # Counted while decoding: a WebM from a browser's MediaRecorder states no duration.
        max_samples = None if max_duration_s is None else max_duration_s * sample_rate
        n_samples = 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1, n_channels))
                n_samples += len(chunks[-1])
            if max_samples is not None and n_samples > max_samples:
                raise AudioTooLongError(path, max_duration_s)
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1, n_channels))
    if not chunks:
        return DecodedAudio(np.zeros((n_channels, 0), np.float32), int(sample_rate))
    samples = np.concatenate(chunks).T.astype(np.float32)
    return DecodedAudio(np.ascontiguousarray(samples), int(sample_rate))


def decode_audio(path: str | Path, max_duration_s: float | None = None) -> DecodedAudio:
    """Decode a file to float32 samples at its own rate and channel count.

    Parameters
    ----------
    path : str or Path
        Any format libsndfile or FFmpeg reads: WAV (8/16/24/32-bit PCM, float), FLAC,
        OGG/Vorbis, OGG/Opus, MP3, M4A/AAC, WebM, NIST SPHERE (``.sph``).
    max_duration_s : float > 0, optional
        Refuse files longer than this many seconds, before decoding them whole (servers take
        uploads from strangers). Default: no limit.

    Returns
    -------
    DecodedAudio
        ``samples`` of shape (n_channels, n_samples) in [-1, 1], and ``sample_rate`` in Hz.

    Raises
    ------
    AudioError
        The file is missing, is not a regular file, is empty, or neither decoder can read it.
        The message names the file and the reason.
    AudioTooLongError
        The file is longer than ``max_duration_s`` (a subclass of :class:`AudioError`).

    See Also
    --------
    load_audio : decode, downmix and resample in one call.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "no such file")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        return _decode_soundfile(path, max_duration_s)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as sndfile_error:
        try:
            return _decode_ffmpeg(path, max_duration_s)
        except AudioTooLongError:
            raise
        except Exception as ffmpeg_error:
            raise AudioError(
                path,
                f"cannot decode audio (libsndfile: {sndfile_error}; ffmpeg: {ffmpeg_error})",
            ) from ffmpeg_error


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels.

    Parameters
    ----------
    samples : np.ndarray [shape=(n_channels, n_samples)]

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
    """
    if samples.shape[0] == 1:
        return samples[0].astype(np.float32, copy=False)
    return samples.mean(axis=0).astype(np.float32)


def resample(samples: np.ndarray, orig_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono signal with libsoxr's high-quality filter.

    Parameters
    ----------
    samples : np.ndarray [shape=(n_samples,)]
    orig_rate, target_rate : int > 0
        Sampling rates in Hz.

    Returns
    -------
    np.ndarray [shape=(round(n_samples * target_rate / orig_rate),), dtype=float32]
    """
    if orig_rate == target_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples, orig_rate, target_rate, quality="HQ").astype(np.float32)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, max_duration_s: float | None = None) -> np.ndarray:
    """Load any supported audio file as mono float32 at ``sample_rate``.

    Parameters
    ----------
    path : str or Path
        The audio file (see :func:`decode_audio` for the formats).
    sample_rate : int > 0
        Target sampling rate in Hz (default 16 kHz).
    max_duration_s : float > 0, optional
        Refuse longer files (:class:`AudioTooLongError`) before decoding them whole.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
        Amplitudes in [-1, 1] (resampling may overshoot full scale very slightly).

    Raises
    ------
    AudioError
        The file cannot be read, or (:class:`AudioTooLongError`) is longer than
        ``max_duration_s``; the message names it and says why.

    Examples
    --------
    >>> y = load_audio("0_george_0.wav")  # 8 kHz FSDD clip  # doctest: +SKIP
    >>> y.dtype, y.ndim
    (dtype('float32'), 1)
    """
    decoded = decode_audio(path, max_duration_s)
    return resample(to_mono(decoded.samples), decoded.sample_rate, sample_rate)


def _window_energy(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """Energy of every window of ``n_samples`` of a clip longer than that, by start sample."""
    energy = np.concatenate([[0.0], np.cumsum(waveform.astype(np.float64) ** 2)])
    return energy[n_samples:] - energy[:-n_samples]


def fit_to_length(waveform: np.ndarray, n_samples: int, start: int | None = None) -> np.ndarray:
    """Centre-pad a short clip with zeros, or cut a long one to its loudest window.

    Parameters
    ----------
    waveform : np.ndarray [shape=(n,)]
    n_samples : int > 0
        The length every clip is given.
    start : int, optional
        Where to cut a long clip instead (e.g. :func:`random_window_start`); ignored for a clip
        of ``n_samples`` or fewer.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
        For a long clip, the window of ``n_samples`` with the most energy (or the one at
        ``start``), so a word recorded with long silences around it is kept whole.

    Raises
    ------
    ValueError
        ``start`` outside ``[0, n - n_samples]`` for a long clip.
    """
    n = len(waveform)
    if n == n_samples:
        return waveform.astype(np.float32, copy=False)
    if n < n_samples:
        out = np.zeros(n_samples, np.float32)
        begin = (n_samples - n) // 2
        out[begin : begin + n] = waveform
        return out
    if start is None:
        start = int(np.argmax(_window_energy(waveform, n_samples)))
    elif not 0 <= start <= n - n_samples:
        raise ValueError(f"start={start}: a window of {n_samples} samples must start in [0, {n - n_samples}]")
    return waveform[start : start + n_samples].astype(np.float32)


def random_window_start(waveform: np.ndarray, n_samples: int, rng: np.random.Generator,
                        energy_ratio: float = 0.5) -> int | None:
    """Draw where to cut a long clip: a window of speech, another at each draw.

    A clip of other speech (a ``_unknown_`` recording of a sentence) holds many one-clip
    negatives; cutting it at its loudest window (:func:`fit_to_length`) trains on one of them.
    This draws the start uniformly among the windows holding at least ``energy_ratio`` of the
    loudest window's energy, so a window is never mostly the silence around the speech.

    Parameters
    ----------
    waveform : np.ndarray [shape=(n,)]
    n_samples : int > 0
        Window length.
    rng : np.random.Generator
    energy_ratio : float in (0, 1]
        Share of the loudest window's energy a window must hold (0.5: within 3 dB of it).

    Returns
    -------
    int or None
        The start sample, for ``fit_to_length(waveform, n_samples, start)``; None for a clip of
        ``n_samples`` or fewer, or a silent one (nothing to choose).

    Raises
    ------
    ValueError
        ``energy_ratio`` outside (0, 1].

    References
    ----------
    Warden 2018 (Speech Commands: the ``_silence_`` class is random one-second windows of long
    background recordings); the same draw, kept to windows with speech in them.
    """
    if not 0 < energy_ratio <= 1:
        raise ValueError(f"energy_ratio={energy_ratio!r}: must be in (0, 1]")
    if len(waveform) <= n_samples:
        return None
    window_energy = _window_energy(waveform, n_samples)
    loudest = window_energy.max()
    if loudest <= 0:
        return None
    candidates = np.flatnonzero(window_energy >= energy_ratio * loudest)
    return int(candidates[rng.integers(len(candidates))])


def rms(samples: np.ndarray) -> float:
    """Root mean square of a signal, computed in float64.

    Parameters
    ----------
    samples : np.ndarray [shape=(n_samples,)]
        Amplitudes (full scale is 1 for float audio).

    Returns
    -------
    float
        ``sqrt(mean(samples ** 2))`` in the samples' units; 0.0 for an empty array.
    """
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono audio as 16-bit PCM WAV, atomically (a reader never sees a partial file).

    Parameters
    ----------
    path : str or Path
        Destination; parent folders are created.
    samples : np.ndarray [shape=(n_samples,)]
        Float amplitudes, full scale 1; values beyond [-1, 1] are clipped.
    sample_rate : int > 0
        Hz.

    Returns
    -------
    Path
    """
    from audiorec.run import atomic_write_bytes

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return atomic_write_bytes(path, buffer.getvalue())
