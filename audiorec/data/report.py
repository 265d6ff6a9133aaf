"""A corpus at a glance: one self-contained HTML page (``audiorec data report``).

The page holds counts per label and per speaker, a duration histogram, sample rates and channel
counts, loudness (peak, speech level, noise floor and their difference per speaker), the
validation findings of the import (excluded files and why) and example spectrograms per label.
A transcribed corpus (AN4, LibriSpeech, yesno, a transcript table) gets its transcripts in place
of the labels: words and vocabulary per subset, speaking rate, the most frequent words, characters.
Images are embedded as base64 PNG, so the page is one file that opens anywhere, offline.

A folder is imported with :func:`~audiorec.data.corpora.import_corpus` (the same validation as
``audiorec data import``); a manifest is read as is, with the findings of the import report next
to it (``<name>.report.json`` from ``audiorec data import``, or a run's ``import_report.json``).
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from audiorec.audio import SAMPLE_RATE, AudioError, decode_audio, rms, to_mono
from audiorec.data.corpora import ValidationConfig, import_corpus
from audiorec.data.manifest import read_manifest
from audiorec.data.transcribed import TABLE_SUFFIXES
from audiorec.plots.files import MAX_LABELS, NO_LABEL, PER_LABEL, Entry, load_examples, order_examples
from audiorec.plots.sound import label_grid_figure
from audiorec.plots.style import figure_bytes, styled
from audiorec.run import atomic_write_text

FRAME_MS, HOP_MS = 25.0, 10.0   # frames for the level statistics
NOISE_PERCENTILE, SPEECH_PERCENTILE = 10, 95
MAX_TABLE_ROWS = 200            # longer tables (speakers, findings) are cut, with a note
MAX_BARS = 60                   # bars in a chart
_FLOOR_DB = -120.0


@dataclass(frozen=True)
class ClipStats:
    """Measurements of one clip, as stored (before any resampling).

    Attributes
    ----------
    path : str
    label, speaker : str or None
    duration_s : float
    sample_rate : int
        Hz.
    channels : int
    peak_dbfs : float
        ``20 log10(max |x|)``; 0 dBFS is full scale.
    rms_dbfs : float
        ``20 log10(sqrt(mean(x^2)))`` over the whole clip (a full-scale square wave is 0 dBFS).
    speech_dbfs : float
        95th percentile of the RMS level of 25 ms frames (10 ms hop): the level of the loud parts.
    noise_floor_dbfs : float
        10th percentile of the same frame levels: the level of the pauses.
    """

    path: str
    label: str | None
    speaker: str | None
    duration_s: float
    sample_rate: int
    channels: int
    peak_dbfs: float
    rms_dbfs: float
    speech_dbfs: float
    noise_floor_dbfs: float

    @property
    def snr_db(self) -> float:
        """Estimated signal-to-noise ratio: speech level minus noise floor, dB."""
        return self.speech_dbfs - self.noise_floor_dbfs


def _db(value: float | np.ndarray) -> float | np.ndarray:
    return np.maximum(20 * np.log10(np.maximum(value, 1e-12)), _FLOOR_DB)


def clip_levels(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Peak, RMS, speech level and noise floor of a mono clip, in dBFS.

    Parameters
    ----------
    samples : np.ndarray [shape=(n_samples,)]
        Amplitudes in [-1, 1].
    sample_rate : int > 0
        Hz.

    Returns
    -------
    dict
        ``peak_dbfs``, ``rms_dbfs``, ``speech_dbfs`` (95th percentile of 25 ms frame RMS levels,
        10 ms hop) and ``noise_floor_dbfs`` (their 10th percentile); floored at -120 dB.
        A clip shorter than one frame is one frame.

    Raises
    ------
    ValueError
        Empty samples.

    References
    ----------
    Percentile-based noise-floor and active-level estimates in the spirit of ITU-T P.56 (speech
    level) and WADA-style SNR estimation; simpler, for a dataset overview only.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot measure an empty clip")
    frame, hop = max(1, round(sample_rate * FRAME_MS / 1000)), max(1, round(sample_rate * HOP_MS / 1000))
    if len(x) <= frame:
        frame_rms = np.array([rms(x)])
    else:
        frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]
        frame_rms = np.sqrt(np.mean(frames**2, axis=1))
    levels = _db(frame_rms)
    return {
        "peak_dbfs": round(float(_db(np.max(np.abs(x)))), 2),
        "rms_dbfs": round(float(_db(rms(x))), 2),
        "speech_dbfs": round(float(np.percentile(levels, SPEECH_PERCENTILE)), 2),
        "noise_floor_dbfs": round(float(np.percentile(levels, NOISE_PERCENTILE)), 2),
    }


def measure_clip(entry: Entry) -> ClipStats:
    """Decode one clip and measure it (:func:`clip_levels` of its channel average).

    Parameters
    ----------
    entry : Entry
        The clip's path, label and speaker.

    Returns
    -------
    ClipStats
        At the file's own sampling rate and channel count.

    Raises
    ------
    AudioError
        The file cannot be decoded (the message names it).
    ValueError
        The file holds no samples.
    """
    decoded = decode_audio(entry.path)
    levels = clip_levels(to_mono(decoded.samples), decoded.sample_rate)
    return ClipStats(entry.path, entry.label, entry.speaker, round(decoded.duration, 4), decoded.sample_rate,
                     decoded.samples.shape[0], **levels)


@dataclass
class CorpusReport:
    """Everything the page shows.

    Attributes
    ----------
    source : str
        The folder or manifest.
    layout : str or None
        The corpus layout of a folder.
    clips : list of ClipStats
        The clips that passed validation and could be measured.
    rejected : list of (str, str)
        Validation findings: ``(path, reason)`` of each excluded file.
    findings_source : str
        Where ``rejected`` comes from (the import, or an import report file), or why it is empty.
    examples : dict of str to list of (str, np.ndarray)
        Label -> ``(caption, 16 kHz waveform)`` for the example grid.
    examples_note : str
        Said when not every label is in the grid.
    texts : dict of str to str
        Path -> normalised transcript, for a transcribed corpus; empty for commands.
    subsets : dict of str to str
        Path -> the corpus's own partition (e.g. AN4 ``train``/``test``), where it has one.
    """

    source: str
    layout: str | None
    clips: list[ClipStats]
    rejected: list[tuple[str, str]] = field(default_factory=list)
    findings_source: str = ""
    examples: dict[str, list[tuple[str, np.ndarray]]] = field(default_factory=dict)
    examples_note: str = ""
    texts: dict[str, str] = field(default_factory=dict)
    subsets: dict[str, str] = field(default_factory=dict)


def _findings_next_to(manifest: Path) -> tuple[list[tuple[str, str]], str]:
    for candidate in (manifest.with_name(manifest.stem + ".report.json"), manifest.with_name("import_report.json")):
        if candidate.is_file():
            try:
                rejected = json.loads(candidate.read_text(encoding="utf-8")).get("rejected", [])
                return [(r["path"], r["reason"]) for r in rejected], f"import report {candidate}"
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise ValueError(f"{candidate}: not an import report ({e})") from e
    return [], (f"no import report next to {manifest.name}; 'audiorec data import' writes one "
                "(this page lists only files that fail to decode now)")


def analyse_corpus(
    source: str | Path,
    layout: str = "auto",
    validation: ValidationConfig | None = None,
    per_label: int = PER_LABEL,
    max_labels: int = MAX_LABELS,
    progress: bool = True,
) -> CorpusReport:
    """Import or read a corpus, measure every clip and pick example clips per label.

    Parameters
    ----------
    source : str or Path
        Corpus folder, ``.csv``/``.tsv`` transcript table, or ``.jsonl`` manifest.
    layout : str
        Folder layout, one of :data:`audiorec.data.corpora.LAYOUTS` (``auto`` detects it).
    validation : ValidationConfig, optional
        Thresholds of the folder import.
    per_label, max_labels : int
        Examples per label, and labels at most, in the spectrogram grid.
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    CorpusReport

    Raises
    ------
    ValueError
        No such folder or manifest, a malformed manifest or import report, or no readable clip.
    """
    path = Path(source).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() in TABLE_SUFFIXES):
        imported = import_corpus(path, layout, validation, progress=progress)
        utterances, rejected, layout_used = imported.utterances, list(imported.rejected), imported.layout
        findings = f"validation during this import ({_describe_validation(validation or ValidationConfig())})"
    elif path.is_file():
        utterances, layout_used = read_manifest(path), None
        rejected, findings = _findings_next_to(path)
    else:
        raise ValueError(f"{source}: no such corpus folder or manifest")
    entries = [Entry(u.path, u.label, u.speaker) for u in utterances]
    if not entries:
        raise ValueError(f"{source}: no clips")
    clips = []

    def measure(entry):
        try:
            return measure_clip(entry), None
        except (AudioError, ValueError) as e:
            return None, (entry.path, f"unreadable now: {getattr(e, 'reason', e)}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        for stats, bad in tqdm(pool.map(measure, entries), total=len(entries), desc="measure", unit="file",
                               disable=not progress):
            if stats is not None:
                clips.append(stats)
            else:
                rejected.append(bad)
    if not clips:
        raise ValueError(f"{source}: none of the {len(entries)} clips could be decoded")
    readable = {c.path for c in clips}
    ordered, note = order_examples([e for e in entries if e.path in readable], max_labels)
    examples, _ = load_examples(ordered, per_label, SAMPLE_RATE)
    texts = {u.path: u.text for u in utterances if u.text is not None}
    subsets = {u.path: u.subset for u in utterances if u.subset is not None}
    return CorpusReport(str(source), layout_used, clips, rejected, findings, examples, note, texts, subsets)


def _describe_validation(v: ValidationConfig) -> str:
    return (f"excluded: shorter than {v.min_duration_s} s or longer than {v.max_duration_s} s, peak below "
            f"{v.silence_dbfs} dBFS, more than {100 * v.max_clipped_fraction:g}% of samples at full scale, unreadable")


# ---- pictures ----------------------------------------------------------------------------------

@styled
def _bar_figure(names: Sequence[str], counts: Sequence[int], xlabel: str, title: str) -> Figure:
    n = len(names)
    fig = Figure(figsize=(8, 0.9 + 0.2 * n), dpi=90, layout="constrained")
    ax = fig.subplots()
    bars = ax.barh(range(n), counts, color="#1f4e79")
    ax.bar_label(bars, [str(c) for c in counts], fontsize=7, padding=2)
    ax.set_yticks(range(n), names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left")
    ax.grid(True, axis="x")
    return fig


@styled
def _histograms_figure(panels: Sequence[tuple[str, np.ndarray, str]]) -> Figure:
    fig = Figure(figsize=(3.2 * len(panels), 2.7), dpi=90, layout="constrained")
    for ax, (title, values, xlabel) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        ax.hist(values, bins=min(40, max(5, len(values) // 5)), color="#1f4e79", edgecolor="white", linewidth=0.4)
        ax.axvline(float(np.median(values)), color="#d1495b", linestyle="--", linewidth=1,
                   label=f"median {np.median(values):.2f}")
        ax.set_title(title, loc="left")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("clips")
        ax.legend(loc="best")
        ax.grid(True, axis="y")
    return fig


def _img(fig: Figure, alt: str) -> str:
    data = base64.b64encode(figure_bytes(fig, "png")).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


# ---- the page ----------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.muted { color: #666; font-size: 0.9rem; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; margin: 1rem 0; }
.card { background: #f3f6fa; border-radius: 6px; padding: 0.6rem 1rem; min-width: 7rem; }
.card b { display: block; font-size: 1.35rem; color: #1f4e79; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 0.25rem 0.7rem; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; display: block; margin: 0.6rem 0; }
.warn { color: #a33; }
code { background: #f3f3f3; padding: 0 0.25rem; border-radius: 3px; }
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence], numeric: Sequence[bool], row_key: str = "") -> str:
    head = "".join(f'<th class="n">{html.escape(h)}</th>' if n else f"<th>{html.escape(h)}</th>"
                   for h, n in zip(headers, numeric))
    body = []
    for row in rows[:MAX_TABLE_ROWS]:
        key = f' data-{row_key}="{html.escape(str(row[0]))}"' if row_key else ""
        cells = "".join(f'<td class="n">{html.escape(str(v))}</td>' if n else f"<td>{html.escape(str(v))}</td>"
                        for v, n in zip(row, numeric))
        body.append(f"<tr{key}>{cells}</tr>")
    more = (f'<p class="muted">showing {MAX_TABLE_ROWS} of {len(rows)} rows</p>' if len(rows) > MAX_TABLE_ROWS else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _median(values) -> str:
    return f"{np.median(values):.1f}" if len(values) else "-"


def render_report(report: CorpusReport) -> str:
    """The HTML page of a :class:`CorpusReport`: one string, images embedded, no scripts.

    Parameters
    ----------
    report : CorpusReport

    Returns
    -------
    str
        A complete HTML5 document. Per-label table rows carry ``data-label="<label>"`` (per-subset
        rows of a transcribed corpus ``data-subset="<subset>"``) and per-speaker rows
        ``data-speaker="<speaker>"``, for scripts that read the page.
    """
    clips = report.clips
    esc = html.escape
    labels = Counter(c.label if c.label is not None else NO_LABEL for c in clips)
    speakers = Counter(c.speaker for c in clips if c.speaker is not None)
    durations = np.array([c.duration_s for c in clips])
    name = Path(report.source).name or report.source
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(name)}: data report</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(name)}: data report</h1>",
        f'<p class="muted">{esc(str(report.source))}'
        + (f" &middot; layout <code>{esc(report.layout)}</code>" if report.layout else "")
        + f" &middot; written {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by <code>audiorec data report</code></p>",
        '<div class="cards">',
        f'<div class="card"><b id="n-clips">{len(clips)}</b>clips</div>',
        (f'<div class="card"><b id="n-words">{sum(len(report.texts[c.path].split()) for c in clips if c.path in report.texts)}</b>words</div>'
         if report.texts else f'<div class="card"><b id="n-labels">{len(labels)}</b>labels</div>'),
        f'<div class="card"><b id="n-speakers">{len(speakers)}</b>speakers</div>',
        f'<div class="card"><b>{durations.sum() / 60:.1f} min</b>of audio</div>',
        f'<div class="card"><b id="n-excluded">{len(report.rejected)}</b>excluded</div>',
        "</div>",
    ]

    if report.texts:
        parts += _transcript_section(report)
    else:
        parts += _label_section(clips)
    parts += _speaker_section(clips, speakers, transcribed=bool(report.texts))
    parts += _rest_sections(report)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _transcript_section(report: CorpusReport) -> list[str]:
    """Transcripts: utterances, words, vocabulary and speaking rate per subset, frequent words, characters."""
    clips = [c for c in report.clips if c.path in report.texts]
    words_of = {c.path: report.texts[c.path].split() for c in clips}
    all_words = Counter(w for c in clips for w in words_of[c.path])
    by_subset: dict[str, list[ClipStats]] = {}
    for c in clips:
        by_subset.setdefault(report.subsets.get(c.path, "(none)"), []).append(c)
    rows = []
    for subset, cs in sorted(by_subset.items()):
        n_words = sum(len(words_of[c.path]) for c in cs)
        minutes = sum(c.duration_s for c in cs) / 60
        rows.append((subset, len(cs), len({c.speaker for c in cs if c.speaker is not None}), n_words,
                     len({w for c in cs for w in words_of[c.path]}), f"{minutes:.2f}",
                     _median([len(words_of[c.path]) for c in cs]),
                     _median([len(words_of[c.path]) / c.duration_s for c in cs if c.duration_s > 0])))
    characters = Counter(ch for c in clips for ch in report.texts[c.path] if not ch.isspace())
    untranscribed = len(report.clips) - len(clips)
    parts = [
        "<h2>Transcripts</h2>",
        f"<p>{len(clips)} transcribed utterances, {sum(all_words.values())} words, a vocabulary of "
        f"<b id='n-vocabulary'>{len(all_words)}</b> words"
        + (f"; {untranscribed} clips without a transcript" if untranscribed else "")
        + ". Speaking rate is words per second of audio (silence included); a subset is the corpus's own "
        "partition (its <code>test</code> subset is the test set).</p>",
        _table(["subset", "utterances", "speakers", "words", "vocabulary", "minutes", "median words",
                "median words/s"], rows, [False] + [True] * 7, row_key="subset"),
    ]
    top = [w for w, _ in all_words.most_common(MAX_BARS)]
    parts.append(_img(_bar_figure(top, [all_words[w] for w in top], "occurrences",
                                  f"the {len(top)} most frequent words"), "most frequent words"))
    parts.append(f"<p>{len(characters)} characters: <code>{html.escape(''.join(sorted(characters)))}</code></p>")
    return parts


def _label_section(clips: Sequence[ClipStats]) -> list[str]:
    """Labels: clips, speakers and durations per label."""
    parts: list[str] = []
    by_label: dict[str, list[ClipStats]] = {}
    for c in clips:
        by_label.setdefault(c.label if c.label is not None else NO_LABEL, []).append(c)
    label_rows = [
        (label, len(cs), len({c.speaker for c in cs if c.speaker is not None}),
         f"{sum(c.duration_s for c in cs) / 60:.2f}", f"{np.median([c.duration_s for c in cs]):.2f}",
         f"{min(c.duration_s for c in cs):.2f}", f"{max(c.duration_s for c in cs):.2f}")
        for label, cs in sorted(by_label.items())
    ]
    counts = [len(by_label[label]) for label in sorted(by_label)]
    spread = f" (smallest {min(counts)}, largest {max(counts)})" if len(counts) > 1 else ""
    parts += [f"<h2>Labels</h2><p>{len(by_label)} labels{spread}.</p>"]
    top = sorted(by_label, key=lambda label: (-len(by_label[label]), label))[:MAX_BARS]
    parts.append(_img(_bar_figure(top, [len(by_label[label]) for label in top], "clips",
                                  "clips per label" + (f" (the {MAX_BARS} largest)" if len(by_label) > MAX_BARS else "")),
                      "clips per label"))
    parts.append(_table(["label", "clips", "speakers", "minutes", "median s", "shortest s", "longest s"],
                        label_rows, [False] + [True] * 6, row_key="label"))
    return parts


def _speaker_section(clips: Sequence[ClipStats], speakers: Counter, transcribed: bool) -> list[str]:
    """Speakers: clips, labels (or minutes of a transcribed corpus) and levels per speaker."""
    parts = ["<h2>Speakers</h2>"]
    if speakers:
        by_speaker: dict[str, list[ClipStats]] = {}
        for c in clips:
            if c.speaker is not None:
                by_speaker.setdefault(c.speaker, []).append(c)
        no_speaker = len(clips) - sum(speakers.values())
        parts.append(f"<p>{len(speakers)} speakers, {min(speakers.values())} to {max(speakers.values())} clips each"
                     + (f"; {no_speaker} clips have no speaker (each is its own group in splits)" if no_speaker else "")
                     + ". Levels are medians over each speaker's clips; the estimated SNR is speech level minus noise floor: "
                     "a speaker far from the others will be hard for a model that never heard that channel.</p>")
        top = sorted(speakers, key=lambda s: (-speakers[s], s))[:MAX_BARS]
        parts.append(_img(_bar_figure(top, [speakers[s] for s in top], "clips",
                                      "clips per speaker" + (f" (the {MAX_BARS} largest)" if len(speakers) > MAX_BARS else "")),
                          "clips per speaker"))
        rows = [(s, len(cs), f"{sum(c.duration_s for c in cs) / 60:.2f}" if transcribed else len({c.label for c in cs}),
                 _median([c.speech_dbfs for c in cs]), _median([c.noise_floor_dbfs for c in cs]),
                 _median([c.snr_db for c in cs]))
                for s, cs in sorted(by_speaker.items(), key=lambda item: (-len(item[1]), item[0]))]
        parts.append(_table(["speaker", "clips", "minutes" if transcribed else "labels", "speech dBFS",
                             "noise floor dBFS", "SNR dB"], rows, [False] + [True] * 5, row_key="speaker"))
    else:
        parts.append("<p>No speaker information: splits will treat every file as its own group.</p>")
    return parts


def _rest_sections(report: CorpusReport) -> list[str]:
    """Durations, sample rates and channels; loudness; validation findings; example spectrograms."""
    clips, esc = report.clips, html.escape
    durations = np.array([c.duration_s for c in clips])
    parts: list[str] = []

    # durations, rates, channels
    rates = Counter(c.sample_rate for c in clips)
    channels = Counter(c.channels for c in clips)
    parts += [
        "<h2>Durations, sample rates and channels</h2>",
        f"<p>Durations {durations.min():.2f} to {durations.max():.2f} s, median {np.median(durations):.2f} s. "
        + ("<span class='warn'>Mixed sample rates</span>: every clip is resampled to 16 kHz on loading, but a "
           "lower rate has no energy above its Nyquist frequency, which a model can learn as a cue."
           if len(rates) > 1 else f"All clips at {next(iter(rates))} Hz.") + "</p>",
        _img(_histograms_figure([("duration", durations, "seconds")]), "duration histogram"),
        _table(["sample rate (Hz)", "clips"], sorted(rates.items()), [True, True]),
        _table(["channels", "clips"], sorted(channels.items()), [True, True]),
    ]

    # loudness
    peak = np.array([c.peak_dbfs for c in clips])
    parts += [
        "<h2>Loudness</h2>",
        f"<p>Peak level: median {np.median(peak):.1f} dBFS; {int((peak >= -0.1).sum())} clips reach full scale "
        f"(possible clipping), {int((peak < -30).sum())} peak below -30 dBFS (quiet). Speech level and noise floor are "
        f"the {SPEECH_PERCENTILE}th and {NOISE_PERCENTILE}th percentiles of {FRAME_MS:g} ms frame levels.</p>",
        _img(_histograms_figure([
            ("peak level", peak, "dBFS"),
            ("speech level", np.array([c.speech_dbfs for c in clips]), "dBFS"),
            ("noise floor", np.array([c.noise_floor_dbfs for c in clips]), "dBFS"),
            ("estimated SNR", np.array([c.snr_db for c in clips]), "dB"),
        ]), "loudness histograms"),
    ]

    # validation findings
    parts.append("<h2>Validation findings</h2>")
    parts.append(f'<p class="muted">Source: {esc(report.findings_source)}.</p>')
    if report.rejected:
        kinds = Counter(reason.split(" (")[0].split(":")[0] for _, reason in report.rejected)
        parts.append(f"<p class='warn'>{len(report.rejected)} files excluded: "
                     + ", ".join(f"{esc(k)} {v}" for k, v in kinds.most_common()) + ".</p>")
        parts.append(_table(["file", "reason"], report.rejected, [False, False]))
    else:
        parts.append("<p>No file was excluded.</p>")

    # examples
    parts.append("<h2>Example spectrograms</h2>")
    if any(report.examples.values()):
        per_label = max(len(v) for v in report.examples.values())
        parts.append(f"<p>Up to {per_label} clips per label, from different speakers where possible, at 16 kHz "
                     "(as the model hears them), on one colour scale." + (f" {esc(report.examples_note)}." if report.examples_note else "")
                     + "</p>")
        parts.append(_img(label_grid_figure(report.examples, SAMPLE_RATE, "spectrogram", note=report.examples_note),
                          "example spectrograms per label"))
    return parts


def write_report(
    source: str | Path,
    out: str | Path,
    layout: str = "auto",
    validation: ValidationConfig | None = None,
    per_label: int = PER_LABEL,
    max_labels: int = MAX_LABELS,
    progress: bool = True,
) -> tuple[Path, CorpusReport]:
    """Analyse a corpus and write its HTML page atomically.

    Parameters
    ----------
    source : str or Path
        Corpus folder or ``.jsonl`` manifest.
    out : str or Path
        The ``.html`` file to write.
    layout, validation, per_label, max_labels, progress
        As for :func:`analyse_corpus`.

    Returns
    -------
    (Path, CorpusReport)

    Raises
    ------
    ValueError
        As :func:`analyse_corpus`.
    """
    report = analyse_corpus(source, layout, validation, per_label, max_labels, progress)
    return atomic_write_text(out, render_report(report)), report
