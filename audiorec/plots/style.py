"""The one look of every picture, and saving figures: atomically, as PNG or SVG, or as bytes.

Figures are built with :class:`matplotlib.figure.Figure` directly, not through ``pyplot``'s global
state, so the same functions can run in a web server's threads (as matplotlib's "Embedding in a
web application server" guide recommends). The backend is Agg: no display is ever needed.
"""

from __future__ import annotations

import functools
import io
import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402

FORMATS = ("png", "svg")  # what save_figures writes; matplotlib picks the writer from the suffix

WAVE_COLOR = "#1f4e79"
SPECTROGRAM_CMAP = "magma"  # perceptually uniform, dark = quiet
MFCC_CMAP = "coolwarm"      # diverging: cepstral coefficients are signed

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.grid": False,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.prop_cycle": cycler(color=["#1f4e79", "#d1495b", "#2e933c", "#edae49", "#66a182", "#8d6a9f"]),
    "image.cmap": SPECTROGRAM_CMAP,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "svg.fonttype": "none",  # text stays text in SVG: smaller files, searchable labels
}


def styled(build):
    """Decorator: build the figure under :data:`STYLE` (rc parameters are read when artists are made)."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        with matplotlib.rc_context(STYLE):
            fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_figure(fig, path: str | Path) -> Path:
    """Save and close a figure atomically (a temporary file renamed into place).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        The format follows the suffix (``.png``, ``.svg``, ``.pdf``); parent folders are created.

    Returns
    -------
    Path
    """
    try:
        return _save(fig, Path(path))
    finally:
        plt.close(fig)


def save_figures(fig, stem: str | Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Save one figure in several formats (``stem.png``, ``stem.svg`` ...), atomically, then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    stem : str or Path
        Output path without a suffix.
    formats : sequence of str
        Each one of :data:`FORMATS`.

    Returns
    -------
    list of Path

    Raises
    ------
    ValueError
        An unknown format.
    """
    check_formats(formats)
    try:
        return [_save(fig, Path(f"{stem}.{fmt}")) for fmt in formats]
    finally:
        plt.close(fig)


def check_formats(formats: Sequence[str]) -> list[str]:
    """Return ``formats`` as a list, or raise ValueError naming one that is not in :data:`FORMATS`."""
    formats = list(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"image format {bad[0] if bad else '(none)'!r} is not one of {', '.join(FORMATS)}")
    return formats


def figure_bytes(fig, fmt: str = "png") -> bytes:
    """Render a figure to bytes (for embedding in HTML or answering an HTTP request), then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    fmt : {"png", "svg"}

    Returns
    -------
    bytes
        The encoded image.
    """
    check_formats([fmt])
    buffer = io.BytesIO()
    try:
        with matplotlib.rc_context(STYLE):
            fig.savefig(buffer, format=fmt)
    finally:
        plt.close(fig)
    return buffer.getvalue()
