"""Pictures of a clip for the web page: a waveform outline and a log-power spectrogram.

The server sends these as numbers (a few kilobytes) and the page draws them on a canvas, so
any format the loader decodes (including those a browser cannot play, such as NIST SPHERE) is
shown the same way. NumPy only: the server runs without PyTorch when given an ``.onnx`` model.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass

import numpy as np

WAVEFORM_COLUMNS = 480  # (min, max) pairs across the canvas
WIN_MS = 25.0  # analysis window of the spectrogram
HOP_MS = 10.0  # hop between spectrogram frames
DB_RANGE = 80.0  # dB below the loudest bin that still shows; quieter is black
MAX_FRAMES = 1000  # longer clips are shown at a coarser hop (10 s at 10 ms)


def waveform_peaks(waveform: np.ndarray, columns: int = WAVEFORM_COLUMNS) -> list[float]:
    """The outline of a waveform: the minimum and maximum sample of each of ``columns`` slices.

    Parameters
    ----------
    waveform : np.ndarray [shape=(n_samples,)]
        Amplitudes, full scale 1.
    columns : int > 0
        Slices of equal length (fewer when the clip has fewer samples).

    Returns
    -------
    list of float [length=2 * min(columns, n_samples)]
        ``[min_0, max_0, min_1, max_1, ...]`` rounded to 4 decimals; empty for an empty clip.
    """
    n = len(waveform)
    if n == 0:
        return []
    edges = np.linspace(0, n, min(columns, n) + 1).astype(int)
    lows = np.minimum.reduceat(waveform, edges[:-1])
    highs = np.maximum.reduceat(waveform, edges[:-1])
    return np.round(np.stack([lows, highs], axis=1).ravel().astype(float), 4).tolist()


@dataclass
class Spectrogram:
    """A log-power spectrogram quantised to bytes, ready to paint.

    Attributes
    ----------
    n_frames, n_bins : int
        Time frames and frequency bins (bin 0 is 0 Hz).
    hop_s : float
        Seconds between frames.
    max_hz : float
        Frequency of the last bin (the Nyquist frequency).
    db_range : float
        dB span of the byte scale: 255 is the loudest bin of the clip, 0 is ``db_range`` below it
        or quieter.
    data : str
        Base64 of ``n_frames * n_bins`` unsigned bytes, frame after frame.
    """

    n_frames: int
    n_bins: int
    hop_s: float
    max_hz: float
    db_range: float
    data: str

    def to_dict(self) -> dict:
        """The attributes as a JSON-ready dict."""
        return asdict(self)


def spectrogram(waveform: np.ndarray, sample_rate: int, win_ms: float = WIN_MS, hop_ms: float = HOP_MS,
                db_range: float = DB_RANGE, max_frames: int = MAX_FRAMES) -> Spectrogram:
    """Short-time Fourier transform magnitude in dB, Hann window, as bytes for a canvas.

    Parameters
    ----------
    waveform : np.ndarray [shape=(n_samples,)]
        Mono audio.
    sample_rate : int > 0
        Hz.
    win_ms, hop_ms : float > 0
        Window length and hop in milliseconds (the hop grows for clips longer than
        ``max_frames`` hops).
    db_range : float > 0
        Dynamic range shown, in dB.
    max_frames : int > 0

    Returns
    -------
    Spectrogram
        Zero frames for a clip shorter than one window.

    References
    ----------
    The standard STFT spectrogram (Allen & Rabiner 1977, "A unified approach to short-time
    Fourier analysis and synthesis"), power in dB re the clip's maximum.
    """
    win = max(2, round(win_ms * sample_rate / 1000))
    hop = max(1, round(hop_ms * sample_rate / 1000))
    n_fft = 1 << (win - 1).bit_length()
    n_bins = n_fft // 2 + 1
    n_frames = 1 + (len(waveform) - win) // hop if len(waveform) >= win else 0
    if n_frames > max_frames:
        hop = -(-(len(waveform) - win) // (max_frames - 1))
        n_frames = 1 + (len(waveform) - win) // hop
    if n_frames == 0:
        return Spectrogram(0, n_bins, hop / sample_rate, sample_rate / 2, db_range, "")
    frames = np.lib.stride_tricks.sliding_window_view(waveform.astype(np.float32), win)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * np.hanning(win).astype(np.float32), n=n_fft)) ** 2
    db = 10 * np.log10(np.maximum(power, 1e-12))
    scaled = np.clip((db - db.max() + db_range) / db_range, 0, 1)
    data = np.round(scaled * 255).astype(np.uint8)
    return Spectrogram(n_frames, n_bins, hop / sample_rate, sample_rate / 2, db_range,
                       base64.b64encode(data.tobytes()).decode("ascii"))
