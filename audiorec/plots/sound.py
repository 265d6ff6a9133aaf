"""Pictures of sound from a waveform array: waveform, FFT spectrum, STFT spectrogram, log-mel, MFCC.

These functions take samples and a sampling rate and return a :class:`matplotlib.figure.Figure`;
they never read or write files (see :mod:`audiorec.plots.files` for that), so the command line,
the data report and a web app draw the same pictures. The mel and MFCC panels are computed by the
model's own front end (:class:`~audiorec.features.LogMel`, :class:`~audiorec.features.MFCC`) with
the run's :class:`~audiorec.features.FeatureConfig`, and the spectrogram uses the same STFT frames,
so the pictures show what the model sees.

Level conventions: the spectrum and the spectrogram are in dB relative to full scale for a sine
(dBFS: a full-scale sine reads 0 dB, one of amplitude 0.5 reads -6 dB); the mel panel is the
model's log-mel power converted to dB (10 log10), with its dynamic-range clamp (``top_db``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping, Sequence

import librosa
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

from audiorec.features import MFCC, FeatureConfig, LogMel
from audiorec.plots.style import MFCC_CMAP, SPECTROGRAM_CMAP, WAVE_COLOR, styled

KINDS = ("waveform", "spectrum", "spectrogram", "mel", "mfcc")
DEFAULT_KINDS = ("waveform", "spectrum", "spectrogram", "mel")
TIME_KINDS = ("waveform", "spectrogram", "mel", "mfcc")  # panels whose x axis is time in seconds

DB_RANGE = 80.0          # dB of colour range below the loudest cell of a spectrogram
MAX_SPECTRUM_POINTS = 4096  # longer spectra are reduced to this many points, keeping each group's peak
MAX_WAVE_POINTS = 4000      # longer waveforms are drawn as a min/max envelope of half this many columns
_EPS = 1e-10             # amplitude floor before taking dB: -200 dB

_HEIGHT_IN = {"waveform": 1.15, "spectrum": 1.35, "spectrogram": 1.75, "mel": 1.55, "mfcc": 1.3}
_TITLES = {
    "waveform": "waveform",
    "spectrum": "magnitude spectrum (FFT of the whole clip, Hann window)",
    "spectrogram": "spectrogram (STFT, {win_ms:g} ms Hann windows, {hop_ms:g} ms hop)",
    "mel": "log-mel spectrogram ({n_mels} bands, the model's input)",
    "mfcc": "MFCC ({n_mfcc} coefficients)",
}
_MEL_TICKS_HZ = (500, 1000, 2000, 4000, 8000, 16000)  # denser ones crowd the low end


def parse_kinds(kinds: str | Sequence[str]) -> tuple[str, ...]:
    """Validate panel names, given as a list or a comma-separated string.

    Parameters
    ----------
    kinds : str or sequence of str
        E.g. ``"waveform,spectrogram"``; each one of :data:`KINDS`.

    Returns
    -------
    tuple of str
        In the given order, without repeats.

    Raises
    ------
    ValueError
        An unknown name (named in the message, with the valid ones), or none at all.
    """
    names = [k.strip() for k in (kinds.split(",") if isinstance(kinds, str) else kinds) if k.strip()]
    for name in names:
        if name not in KINDS:
            raise ValueError(f"plot kind {name!r} is not one of {', '.join(KINDS)}")
    if not names:
        raise ValueError(f"no plot kind given; choose from {', '.join(KINDS)}")
    return tuple(dict.fromkeys(names))


def _check_waveform(waveform: np.ndarray, sample_rate: int) -> np.ndarray:
    y = np.asarray(waveform, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected a mono waveform of shape (n_samples,), got shape {y.shape}")
    if y.size == 0:
        raise ValueError("cannot plot an empty waveform (0 samples)")
    if not np.all(np.isfinite(y)):
        raise ValueError("the waveform holds NaN or infinite samples")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return y


@functools.lru_cache(maxsize=8)
def _front_end(features: tuple) -> tuple[LogMel, MFCC]:
    config = FeatureConfig(*features)
    log_mel = dict(sample_rate=config.sample_rate, win_ms=config.win_ms, hop_ms=config.hop_ms,
                   n_mels=config.n_mels, f_min_hz=config.f_min_hz, f_max_hz=config.f_max_hz,
                   top_db=config.top_db)
    return LogMel(**log_mel).eval(), MFCC(n_mfcc=config.n_mfcc, **log_mel).eval()


def _features_for(features: FeatureConfig | None, sample_rate: int) -> FeatureConfig:
    """The front-end parameters at the waveform's own rate (window and hop stay in ms)."""
    return dataclasses.replace(features or FeatureConfig(), sample_rate=int(sample_rate))


def magnitude_spectrum(waveform: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude spectrum of a whole clip in dBFS: one Hann-windowed FFT of all the samples.

    Parameters
    ----------
    waveform : np.ndarray [shape=(n_samples,)]
        Amplitudes in [-1, 1].
    sample_rate : int > 0
        Hz.

    Returns
    -------
    freqs_hz : np.ndarray [shape=(n_samples // 2 + 1,)]
        0 to ``sample_rate / 2`` in Hz.
    level_db : np.ndarray [shape=(n_samples // 2 + 1,)]
        ``20 log10(2 |X| / sum(window))``: a sine of amplitude ``a`` at a bin's frequency reads
        ``20 log10(a)`` dB (0 dB at full scale).

    Raises
    ------
    ValueError
        Not a non-empty 1-D finite array, or ``sample_rate <= 0``.

    References
    ----------
    Harris 1978, "On the use of windows for harmonic analysis with the DFT" (the Hann window and
    its coherent gain ``sum(window) / 2``); dBFS as in AES17.
    """
    y = _check_waveform(waveform, sample_rate)
    window = np.hanning(len(y)) if len(y) > 1 else np.ones(1)
    spectrum = np.abs(np.fft.rfft(y * window))
    level_db = 20 * np.log10(2 * spectrum / max(window.sum(), _EPS) + _EPS)
    return np.fft.rfftfreq(len(y), 1 / sample_rate), level_db


def spectrogram_db(waveform: np.ndarray, sample_rate: int, features: FeatureConfig | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """STFT magnitude in dBFS with the model's framing (window, hop, FFT size, centred frames).

    Parameters
    ----------
    waveform : np.ndarray [shape=(n_samples,)]
    sample_rate : int > 0
        Hz.
    features : FeatureConfig, optional
        ``win_ms`` and ``hop_ms`` are used; default :class:`~audiorec.features.FeatureConfig`.

    Returns
    -------
    times_s : np.ndarray [shape=(n_frames,)]
        Centre of each frame in seconds (``n_frames = 1 + n_samples // hop_length``).
    freqs_hz : np.ndarray [shape=(n_fft // 2 + 1,)]
    level_db : np.ndarray [shape=(n_fft // 2 + 1, n_frames)]
        ``20 log10(2 |X| / sum(window))``, as :func:`magnitude_spectrum`.

    Raises
    ------
    ValueError
        Bad waveform, or a clip shorter than half an FFT frame (``n_fft // 2`` samples), which
        the centred STFT cannot pad.

    References
    ----------
    Allen & Rabiner 1977 (the short-time Fourier transform); ``torch.stft`` with ``center=True``
    and reflect padding, as :class:`~audiorec.features.LogMel` and ``librosa.stft``.
    """
    y = _check_waveform(waveform, sample_rate)
    log_mel, _ = _front_end(dataclasses.astuple(_features_for(features, sample_rate)))
    _check_length(y, log_mel)
    with torch.no_grad():
        spec = torch.stft(torch.from_numpy(y), n_fft=log_mel.n_fft, hop_length=log_mel.hop_length,
                          win_length=log_mel.win_length, window=log_mel.window, center=True,
                          return_complex=True).abs().numpy()
    level_db = 20 * np.log10(2 * spec / float(log_mel.window.sum()) + _EPS)
    times_s = np.arange(spec.shape[1]) * log_mel.hop_length / sample_rate
    return times_s, np.fft.rfftfreq(log_mel.n_fft, 1 / sample_rate), level_db


def _check_length(y: np.ndarray, log_mel: LogMel) -> None:
    if len(y) <= log_mel.n_fft // 2:
        duration_ms = 1000 * len(y) / log_mel.sample_rate
        raise ValueError(
            f"clip too short for a spectrogram: {len(y)} samples ({duration_ms:.1f} ms); "
            f"need more than {log_mel.n_fft // 2} (half the {log_mel.n_fft}-point FFT)"
        )


def _compute(kind: str, y: np.ndarray, sample_rate: int, features: FeatureConfig) -> dict:
    """The numbers one panel draws (a small dict, so a grid can share colour ranges)."""
    duration = len(y) / sample_rate
    if kind == "waveform":
        return {"y": y, "duration": duration, "sample_rate": sample_rate}
    if kind == "spectrum":
        freqs, level = magnitude_spectrum(y, sample_rate)
        return {"freqs": freqs, "level": level, "sample_rate": sample_rate}
    if kind == "spectrogram":
        times, freqs, level = spectrogram_db(y, sample_rate, features)
        hop_s = times[1] - times[0] if len(times) > 1 else duration
        return {"image": level, "times": times, "hop_s": hop_s, "freqs": freqs, "duration": duration}
    log_mel_module, mfcc_module = _front_end(dataclasses.astuple(features))
    _check_length(y, log_mel_module)
    with torch.no_grad():
        x = torch.from_numpy(y)[None]
        values = (log_mel_module(x) if kind == "mel" else mfcc_module(x))[0].numpy()
    hop_s = log_mel_module.hop_length / sample_rate
    view = {"times": np.arange(values.shape[1]) * hop_s, "hop_s": hop_s, "duration": duration}
    if kind == "mel":
        f_max = features.f_max_hz if features.f_max_hz > 0 else sample_rate / 2
        mel_lo, mel_hi = librosa.hz_to_mel([features.f_min_hz, f_max])
        step = (mel_hi - mel_lo) / (features.n_mels + 1)  # band centres are equally spaced in mel
        edges_mel = mel_lo + step * (np.arange(features.n_mels + 1) + 0.5)
        view.update(image=values * (10 / np.log(10)), edges_hz=librosa.mel_to_hz(edges_mel))
    else:
        view.update(image=values)
    return view


def _value_range(kind: str, views: Sequence[dict]) -> tuple[float, float] | None:
    """Shared limits: colour range for images, y range for lines."""
    if kind == "waveform":
        peak = max(float(np.max(np.abs(v["y"]))) for v in views)
        return (-max(peak, 1e-4) * 1.08, max(peak, 1e-4) * 1.08)
    if kind == "spectrum":
        top = max(float(v["level"].max()) for v in views)
        return (top - DB_RANGE - 10, top + 5)
    if kind == "spectrogram":
        top = max(float(v["image"].max()) for v in views)
        return (top - DB_RANGE, top)
    if kind == "mel":
        return (min(float(v["image"].min()) for v in views), max(float(v["image"].max()) for v in views))
    # MFCC: symmetric, from coefficients 1.. (c0 is the overall level and would wash the rest out)
    rest = np.concatenate([np.abs(v["image"][1:]).ravel() for v in views]) if views[0]["image"].shape[0] > 1 else np.ones(1)
    limit = float(np.percentile(rest, 99)) or 1.0
    return (-limit, limit)


def _draw(ax, kind: str, view: dict, limits: tuple[float, float], labels: bool = True):
    """Draw one panel on ``ax``; return the image (for a colour bar) or None."""
    ax.set_label(kind)  # lets callers and tests find panels among colour-bar axes
    mappable = None
    if kind == "waveform":
        y, sr = view["y"], view["sample_rate"]
        if len(y) > MAX_WAVE_POINTS:
            per = -(-len(y) // (MAX_WAVE_POINTS // 2))  # samples per column, rounded up: every sample drawn
            blocks = np.pad(y, (0, -len(y) % per), mode="edge").reshape(-1, per)
            low, high = blocks.min(axis=1), blocks.max(axis=1)
            t = np.concatenate([[0.0], (np.arange(len(blocks)) + 0.5) * per / sr, [view["duration"]]])
            t[-2] = min(t[-2], view["duration"])
            ax.fill_between(t, np.r_[low[0], low, low[-1]], np.r_[high[0], high, high[-1]], color=WAVE_COLOR,
                            linewidth=0.4)
        else:
            ax.plot(np.arange(len(y)) / sr, y, color=WAVE_COLOR, linewidth=0.6)
        ax.axhline(0, color="#999999", linewidth=0.4)
        ax.set_xlim(0, view["duration"])
        ax.set_ylim(*limits)
        if labels:
            ax.set_ylabel("amplitude")
    elif kind == "spectrum":
        freqs, level = view["freqs"], view["level"]
        if len(freqs) > MAX_SPECTRUM_POINTS:  # keep each group's maximum so peaks stay where they are
            per = -(-len(freqs) // MAX_SPECTRUM_POINTS)
            n = len(freqs) // per * per
            groups = level[:n].reshape(-1, per)
            pick = np.arange(groups.shape[0]) * per + groups.argmax(axis=1)
            freqs, level = freqs[pick], level[pick]
        ax.plot(freqs, level, color=WAVE_COLOR, linewidth=0.7)
        ax.set_xlim(0, view["sample_rate"] / 2)
        ax.set_ylim(*limits)
        ax.grid(True)
        if labels:
            ax.set_xlabel("frequency (Hz)")
            ax.set_ylabel("level (dBFS)")
    else:
        times, hop_s, image = view["times"], view["hop_s"], view["image"]
        x_edges = np.append(times, times[-1] + hop_s) - hop_s / 2
        if kind == "spectrogram":
            freqs = view["freqs"]
            df = freqs[1] - freqs[0]
            mappable = ax.imshow(image, origin="lower", aspect="auto", cmap=SPECTROGRAM_CMAP,
                                 extent=(x_edges[0], x_edges[-1], -df / 2, freqs[-1] + df / 2),
                                 vmin=limits[0], vmax=limits[1], interpolation="nearest")
            ax.set_ylim(0, freqs[-1])
            if labels:
                ax.set_ylabel("frequency (Hz)")
        elif kind == "mel":
            edges = view["edges_hz"]
            mappable = ax.pcolormesh(x_edges, edges, image, cmap=SPECTROGRAM_CMAP, vmin=limits[0],
                                     vmax=limits[1], shading="flat", rasterized=True)
            ax.set_yscale("function", functions=(librosa.hz_to_mel, librosa.mel_to_hz))
            ax.set_ylim(edges[0], edges[-1])
            ax.yaxis.set_major_locator(FixedLocator([f for f in _MEL_TICKS_HZ if edges[0] <= f <= edges[-1]]))
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(NullFormatter())
            if labels:
                ax.set_ylabel("frequency (Hz, mel)")
        else:
            n_coef = image.shape[0]
            mappable = ax.imshow(image, origin="lower", aspect="auto", cmap=MFCC_CMAP,
                                 extent=(x_edges[0], x_edges[-1], -0.5, n_coef - 0.5),
                                 vmin=limits[0], vmax=limits[1], interpolation="nearest")
            if labels:
                ax.set_ylabel("coefficient")
        ax.set_xlim(0, view["duration"])
    if labels and kind in TIME_KINDS:
        ax.set_xlabel("time (s)")
    return mappable


def _colorbar(fig, ax, mappable, kind: str) -> None:
    cax = ax.inset_axes([1.012, 0.0, 0.014, 1.0])
    label = {"spectrogram": "dBFS", "mel": "dB", "mfcc": "value"}[kind]
    fig.colorbar(mappable, cax=cax).set_label(label, fontsize=7.5)
    cax.tick_params(labelsize=6.5)


@styled
def sound_figure(
    waveform: np.ndarray,
    sample_rate: int,
    kinds: str | Sequence[str] = DEFAULT_KINDS,
    title: str = "",
    features: FeatureConfig | None = None,
    width_in: float = 8.0,
    dpi: int = 100,
) -> Figure:
    """One clip as a column of panels: waveform, spectrum, spectrogram, log-mel, MFCC.

    Parameters
    ----------
    waveform : np.ndarray [shape=(n_samples,)]
        Mono amplitudes in [-1, 1].
    sample_rate : int > 0
        Hz.
    kinds : str or sequence of str
        Panels, top to bottom, from :data:`KINDS` (default :data:`DEFAULT_KINDS`).
    title : str
        Shown above the panels (e.g. the file name).
    features : FeatureConfig, optional
        Window, hop, mel bands, MFCCs and ``top_db`` of the front end (default: the package
        defaults); the sampling rate is taken from ``sample_rate``.
    width_in : float
        Figure width in inches; the height follows the panels.
    dpi : int
        Pixels per inch of a PNG.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes`` are the panels in order, each labelled with its kind (``ax.get_label()``);
        time panels span ``[0, n_samples / sample_rate]`` seconds, the spectrum
        ``[0, sample_rate / 2]`` Hz. Colour bars are inset axes of their panel.

    Raises
    ------
    ValueError
        An unknown kind, a bad waveform (not 1-D, empty, NaN), ``sample_rate <= 0``, or a clip
        too short for the STFT panels.

    Examples
    --------
    >>> from audiorec.audio import load_audio  # doctest: +SKIP
    >>> fig = sound_figure(load_audio("clip.wav"), 16000, "waveform,spectrogram")  # doctest: +SKIP
    >>> figure_bytes(fig)  # PNG bytes, e.g. for a web page  # doctest: +SKIP
    """
    kinds = parse_kinds(kinds)
    y = _check_waveform(waveform, sample_rate)
    features = _features_for(features, sample_rate)
    views = [_compute(kind, y, sample_rate, features) for kind in kinds]

    heights = [_HEIGHT_IN[k] for k in kinds]
    top_in, bottom_in, gap_in = (0.7 if title else 0.3), 0.45, 0.62
    height_in = top_in + bottom_in + sum(heights) + gap_in * (len(kinds) - 1)
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    grid = fig.add_gridspec(
        len(kinds), 1, height_ratios=heights, left=0.78 / width_in, right=1 - 0.85 / width_in,
        top=1 - top_in / height_in, bottom=bottom_in / height_in, hspace=gap_in / np.mean(heights),
    )
    names = dataclasses.asdict(features)
    for i, (kind, view) in enumerate(zip(kinds, views)):
        ax = fig.add_subplot(grid[i])
        mappable = _draw(ax, kind, view, _value_range(kind, [view]))
        text = _TITLES[kind].format(**names)
        if kind == "waveform":
            peak = float(np.max(np.abs(y)))
            text += f" ({len(y) / sample_rate:.3f} s at {sample_rate} Hz, peak {20 * np.log10(max(peak, _EPS)):.1f} dBFS)"
        ax.set_title(text, loc="left")
        if mappable is not None:
            _colorbar(fig, ax, mappable, kind)
    if title:
        fig.suptitle(title, x=0.78 / width_in, ha="left", fontsize=11, fontweight="bold")
    return fig


@styled
def label_grid_figure(
    examples: Mapping[str, Sequence[tuple[str, np.ndarray]]],
    sample_rate: int,
    kind: str = "spectrogram",
    features: FeatureConfig | None = None,
    title: str = "",
    note: str = "",
    cell_in: tuple[float, float] = (2.1, 1.25),
    dpi: int = 80,
) -> Figure:
    """A grid of clips, one row per label, one panel kind for all, on shared scales.

    Parameters
    ----------
    examples : mapping of str to sequence of (str, np.ndarray)
        ``label -> [(caption, waveform), ...]``; rows in the mapping's order, the captions (e.g.
        speaker or file name) above each cell. Waveforms are mono, in [-1, 1].
    sample_rate : int > 0
        Hz, of every waveform.
    kind : str
        One of :data:`KINDS`.
    features : FeatureConfig, optional
        As for :func:`sound_figure`.
    title, note : str
        A heading, and a smaller line under it (e.g. "showing 30 of 35 labels").
    cell_in : (float, float)
        Width and height of one cell in inches.
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        One axes per clip (labelled with ``kind``), plus one shared colour bar axes for image
        kinds. Colours (or amplitude and level axes) share one range over the whole grid, so
        louder clips and noisier recordings look louder and noisier.

    Raises
    ------
    ValueError
        No clips, an unknown kind, or a bad waveform (the message names its label and caption).
    """
    (kind,) = parse_kinds([kind])
    rows = [(label, list(clips)) for label, clips in examples.items() if clips]
    if not rows:
        raise ValueError("no clips to draw")
    features = _features_for(features, sample_rate)
    views = []
    for label, clips in rows:
        for caption, waveform in clips:
            try:
                views.append(_compute(kind, _check_waveform(waveform, sample_rate), sample_rate, features))
            except ValueError as e:
                raise ValueError(f"label {label!r}, clip {caption!r}: {e}") from e
    limits = _value_range(kind, views)

    n_cols = max(len(clips) for _, clips in rows)
    longest_label = max(len(line) for label, _ in rows for line in str(label).splitlines() or [''])
    left_in, right_in = 0.85 + 0.095 * min(longest_label, 24), 0.85  # unit, row label, tick labels
    top_in, bottom_in, gap_w, gap_h = 0.35 + 0.3 * bool(title) + 0.2 * bool(note), 0.5, 0.35, 0.5
    width_in = left_in + right_in + n_cols * cell_in[0] + (n_cols - 1) * gap_w
    height_in = top_in + bottom_in + len(rows) * cell_in[1] + (len(rows) - 1) * gap_h
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    left, right = left_in / width_in, 1 - right_in / width_in
    top, bottom = 1 - top_in / height_in, bottom_in / height_in
    grid = fig.add_gridspec(len(rows), n_cols, left=left, right=right, top=top, bottom=bottom,
                            wspace=gap_w / cell_in[0], hspace=gap_h / cell_in[1])
    mappable = None
    views_iter = iter(views)
    for r, (label, clips) in enumerate(rows):
        for c, (caption, _) in enumerate(clips):
            ax = fig.add_subplot(grid[r, c])
            mappable = _draw(ax, kind, next(views_iter), limits, labels=False) or mappable
            ax.set_title(caption, fontsize=7, fontweight="normal", loc="left")
            ax.tick_params(labelsize=6.5)
            if c == 0:
                ax.text(-0.5 / cell_in[0], 0.5, str(label), transform=ax.transAxes, ha="right", va="center",
                        fontsize=10, fontweight="bold")
            else:
                ax.tick_params(labelleft=False)
            if r == len(rows) - 1 or c >= len(rows[r + 1][1]):
                ax.set_xlabel("frequency (Hz)" if kind == "spectrum" else "time (s)", fontsize=7.5)
    unit = {"waveform": "amplitude", "spectrum": "level (dBFS)", "spectrogram": "frequency (Hz)",
            "mel": "frequency (Hz, mel)", "mfcc": "coefficient"}[kind]
    fig.text(0.12 / width_in, (top + bottom) / 2, unit, rotation=90, va="center", fontsize=8)
    if mappable is not None:
        cax = fig.add_axes((right + 0.15 / width_in, bottom, 0.12 / width_in, top - bottom))
        label = {"spectrogram": "dBFS", "mel": "dB", "mfcc": "value"}[kind]
        fig.colorbar(mappable, cax=cax).set_label(label, fontsize=8)
    if title:
        fig.suptitle(title, x=left, y=1 - 0.12 / height_in, ha="left", va="top", fontsize=11, fontweight="bold")
    if note:
        fig.text(left, 1 - (0.12 + 0.3 * bool(title)) / height_in, note, ha="left", va="top", fontsize=8,
                 color="#555555")
    return fig
