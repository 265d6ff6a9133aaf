"""Pictures of audio files and corpora, written to image files: what ``audiorec plot`` runs.

One file gives one figure of the chosen panels (:func:`plot_file`); a corpus (a folder in any
layout :func:`~audiorec.data.corpora.scan_corpus` knows, or a manifest) gives one grid per panel
kind with a few clips per label (:func:`plot_corpus`), and on request one figure per file. Clips
are loaded with :func:`~audiorec.audio.load_audio` at the front end's sampling rate (16 kHz by
default), as the model hears them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from audiorec.audio import SAMPLE_RATE, AudioError, load_audio
from audiorec.features import FeatureConfig
from audiorec.plots.sound import DEFAULT_KINDS, label_grid_figure, parse_kinds, sound_figure
from audiorec.plots.style import check_formats, save_figures

PER_LABEL = 4     # clips per label in a grid
MAX_LABELS = 30   # rows of a grid; corpora with more labels show the most frequent ones

NO_LABEL = "(no label)"


@dataclass(frozen=True)
class Entry:
    """One clip of a corpus, before decoding.

    Attributes
    ----------
    path : str
    label : str or None
    speaker : str or None
    """

    path: str
    label: str | None
    speaker: str | None


@dataclass
class PlotResult:
    """What :func:`plot_corpus` wrote.

    Attributes
    ----------
    paths : list of Path
        Images written.
    errors : list of (str, str)
        ``(path, reason)`` of clips that could not be read (they are skipped).
    note : str
        Said about the choice of labels when not all are shown, else empty.
    """

    paths: list[Path] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""


def corpus_entries(source: str | Path, layout: str = "auto") -> tuple[Path | None, list[Entry]]:
    """List the clips of a corpus folder or a JSON Lines manifest, without decoding them.

    Parameters
    ----------
    source : str or Path
        A corpus folder (see :func:`~audiorec.data.corpora.scan_corpus`) or a ``.jsonl`` manifest.
    layout : str
        For folders: ``auto``, ``fsdd``, ``folders`` or ``speaker_folders``.

    Returns
    -------
    root : Path or None
        The folder (None for a manifest).
    entries : list of Entry

    Raises
    ------
    ValueError
        ``source`` does not exist, or holds no clips (from ``scan_corpus`` / ``read_manifest``).
    """
    from audiorec.data.corpora import scan_corpus
    from audiorec.data.manifest import read_manifest

    path = Path(source).expanduser()
    if path.is_dir():
        _, scanned = scan_corpus(path, layout)
        return path.resolve(), [Entry(str(p), label, speaker) for p, label, speaker in scanned]
    if path.is_file():
        utterances = read_manifest(path)
        if not utterances:
            raise ValueError(f"{path}: the manifest lists no clips")
        return None, [Entry(u.path, u.label, u.speaker) for u in utterances]
    raise ValueError(f"{source}: no such corpus folder or manifest")


def order_examples(entries: Sequence[Entry], max_labels: int = MAX_LABELS) -> tuple[dict[str, list[Entry]], str]:
    """Choose the labels to show and put each label's clips in the order to try them.

    Within a label, clips alternate between speakers (the first clip of each speaker, then the
    second of each ...), so a row shows different voices; the speaker order is rotated by one
    from each label to the next, so a grid with fewer columns than speakers still shows them all.
    Deterministic.

    Parameters
    ----------
    entries : sequence of Entry
    max_labels : int > 0
        With more labels than this, the most frequent ones are kept (ties by name).

    Returns
    -------
    ordered : dict of str to list of Entry
        Label (``"(no label)"`` for unlabelled clips) -> its clips in trying order; labels sorted.
    note : str
        E.g. ``"showing the 30 most frequent of 35 labels"``, or empty when all are shown.

    Raises
    ------
    ValueError
        ``max_labels < 1`` or no entries.
    """
    if max_labels < 1:
        raise ValueError(f"max_labels must be at least 1, got {max_labels}")
    if not entries:
        raise ValueError("no clips to choose examples from")
    by_label: dict[str, dict[str, list[Entry]]] = {}
    for entry in sorted(entries, key=lambda e: e.path):
        speaker = entry.speaker if entry.speaker is not None else f"file:{entry.path}"
        by_label.setdefault(entry.label if entry.label is not None else NO_LABEL, {}).setdefault(speaker, []).append(entry)
    labels = sorted(by_label)
    note = ""
    if len(labels) > max_labels:
        counts = {label: sum(map(len, speakers.values())) for label, speakers in by_label.items()}
        labels = sorted(sorted(labels, key=lambda label: (-counts[label], label))[:max_labels])
        note = f"showing the {max_labels} most frequent of {len(by_label)} labels"
    ordered = {}
    for k, label in enumerate(labels):
        queues = [by_label[label][s] for s in sorted(by_label[label])]
        queues = queues[k % len(queues):] + queues[: k % len(queues)]
        depth = max(map(len, queues))
        ordered[label] = [q[i] for i in range(depth) for q in queues if i < len(q)]
    return ordered, note


def caption(entry: Entry) -> str:
    """A clip's name in a grid: its file name without the suffix."""
    return Path(entry.path).stem


def load_examples(
    ordered: dict[str, list[Entry]], per_label: int = PER_LABEL, sample_rate: int = SAMPLE_RATE
) -> tuple[dict[str, list[tuple[str, np.ndarray]]], list[tuple[str, str]]]:
    """Decode up to ``per_label`` clips per label, skipping unreadable ones.

    Parameters
    ----------
    ordered : dict of str to list of Entry
        From :func:`order_examples`.
    per_label : int > 0
    sample_rate : int > 0
        Hz to load at.

    Returns
    -------
    examples : dict of str to list of (str, np.ndarray)
        Label -> ``(caption, waveform)``, ready for :func:`~audiorec.plots.sound.label_grid_figure`.
    errors : list of (str, str)
        ``(path, reason)`` of clips that failed to decode.

    Raises
    ------
    ValueError
        ``per_label < 1``.
    """
    if per_label < 1:
        raise ValueError(f"clips per label must be at least 1, got {per_label}")
    examples, errors = {}, []
    for label, candidates in ordered.items():
        chosen = []
        for entry in candidates:
            if len(chosen) == per_label:
                break
            try:
                chosen.append((caption(entry), load_audio(entry.path, sample_rate)))
            except AudioError as e:
                errors.append((entry.path, e.reason))
        examples[label] = chosen
    return examples, errors


def plot_file(
    path: str | Path,
    out_dir: str | Path,
    kinds: str | Sequence[str] = DEFAULT_KINDS,
    formats: Sequence[str] = ("png",),
    features: FeatureConfig | None = None,
    stem: str | Path | None = None,
) -> list[Path]:
    """Draw one audio file's panels (:func:`~audiorec.plots.sound.sound_figure`) to image files.

    Parameters
    ----------
    path : str or Path
        Any format :func:`~audiorec.audio.load_audio` reads.
    out_dir : str or Path
    kinds : str or sequence of str
        Panels, from :data:`~audiorec.plots.sound.KINDS`.
    formats : sequence of str
        ``png`` and/or ``svg``.
    features : FeatureConfig, optional
        Front end (and loading rate, ``features.sample_rate``); default the package defaults.
    stem : str or Path, optional
        Output path without suffix, relative to ``out_dir``; default the file's name stem.

    Returns
    -------
    list of Path
        ``out_dir/<stem>.<format>`` for each format.

    Raises
    ------
    AudioError
        The file cannot be decoded.
    ValueError
        Unknown kind or format, or a clip too short for the STFT panels (named).
    """
    kinds, formats = parse_kinds(kinds), check_formats(formats)
    features = features or FeatureConfig()
    waveform = load_audio(path, features.sample_rate)
    try:
        fig = sound_figure(waveform, features.sample_rate, kinds, title=Path(path).name, features=features)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    return save_figures(fig, Path(out_dir) / (stem or Path(path).stem), formats)


def plot_corpus(
    source: str | Path,
    out_dir: str | Path,
    kinds: str | Sequence[str] = DEFAULT_KINDS,
    formats: Sequence[str] = ("png",),
    per_label: int = PER_LABEL,
    max_labels: int = MAX_LABELS,
    per_file: bool = False,
    layout: str = "auto",
    features: FeatureConfig | None = None,
    progress: bool = True,
) -> PlotResult:
    """Per-label grids of a corpus, one per panel kind, and optionally one figure per file.

    Writes ``out_dir/<kind>_by_label.<format>`` and, with ``per_file``,
    ``out_dir/files/<path relative to the corpus folder>.<format>`` (for a manifest,
    ``files/<label>/<name>.<format>``).

    Parameters
    ----------
    source : str or Path
        Corpus folder or ``.jsonl`` manifest.
    out_dir : str or Path
    kinds : str or sequence of str
        Panel kinds; each gives one grid (and the panels of the per-file figures).
    formats : sequence of str
        ``png`` and/or ``svg``.
    per_label : int
        Clips per label in a grid.
    max_labels : int
        Grid rows at most (the most frequent labels; the grid says so).
    per_file : bool
        Also one figure per file (with a progress bar).
    layout : str
        Corpus layout for a folder.
    features : FeatureConfig, optional
    progress : bool

    Returns
    -------
    PlotResult

    Raises
    ------
    ValueError
        Bad source, kind, format or counts; or no example of any label could be decoded.
    """
    kinds, formats = parse_kinds(kinds), check_formats(formats)
    features = features or FeatureConfig()
    out_dir = Path(out_dir)
    root, entries = corpus_entries(source, layout)
    ordered, note = order_examples(entries, max_labels)
    examples, errors = load_examples(ordered, per_label, features.sample_rate)
    if not any(examples.values()):
        raise ValueError(f"{source}: no example clip could be decoded, e.g. {errors[0][0]}: {errors[0][1]}")
    result = PlotResult(errors=errors, note=note)
    name = Path(source).name
    for kind in tqdm(kinds, desc="grids", unit="grid", disable=not progress):
        fig = label_grid_figure(examples, features.sample_rate, kind, features,
                                title=f"{name}: {kind}, {per_label} clips per label", note=note)
        result.paths += save_figures(fig, out_dir / f"{kind}_by_label", formats)
    if per_file:
        failed = {path for path, _ in errors}
        for entry in tqdm(entries, desc="files", unit="file", disable=not progress):
            if entry.path in failed:
                continue
            relative = (Path(entry.path).relative_to(root) if root else Path(entry.label or NO_LABEL) / Path(entry.path).name)
            try:
                result.paths += plot_file(entry.path, out_dir, kinds, formats, features,
                                          stem=Path("files") / relative.with_suffix(""))
            except (AudioError, ValueError) as e:
                result.errors.append((entry.path, getattr(e, "reason", None) or str(e.__cause__ or e)))
    return result
