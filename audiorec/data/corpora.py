"""Import a corpus from a folder into manifest records, validating every file on the way.

Layouts (``layout=`` / ``--layout``) of command corpora, whose records have a ``label``:

``fsdd``
    Free Spoken Digit Dataset names in one folder: ``{digit}_{speaker}_{index}.wav``.
``folders``
    Folder per label, ``DIR/<label>/<file>``, as in Speech Commands and the course's 24-command
    project. The speaker comes from the file name: Speech Commands' ``<speaker>_nohash_<n>`` (and
    ``<word>_<speaker>_nohash_<n>`` under ``_unknown_``), otherwise the part before the first
    ``_``; a name without ``_`` has no speaker.
``speaker_folders``
    ``DIR/<speaker>/<label>/<file>``: one folder per speaker, then one per label.

Layouts of transcribed (continuous speech) corpora, whose records have a normalised ``text``, a
``speaker`` and the corpus's ``subset``, scanned by :mod:`audiorec.data.transcribed`:

``an4``
    CMU AN4: ``DIR/etc/an4_{train,test}.transcription`` and ``DIR/wav/**/<id>.sph``.
``librispeech``
    LibriSpeech: ``DIR/[<subset>/]<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` and FLAC.
``yesno``
    Kaldi yesno: ``DIR/0_1_1_0_1_0_0_1.wav``, the name being the transcript.
``transcripts``
    A ``.csv``/``.tsv`` file (instead of a folder) with ``path`` and ``text`` columns.

``auto`` picks one of the above from what is on disk, the transcribed layouts first.

Validation decodes every file and excludes, with the reason, the unreadable, empty, silent,
clipped, too short and too long ones. The originals are only ever read.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audiorec.audio import AudioError, decode_audio
from audiorec.data.manifest import Utterance
from audiorec.data.transcribed import (
    TEXT_NORMALISATION, TRANSCRIBED_LAYOUTS, detect_transcribed_layout, scan_transcribed,
)

AUDIO_EXTENSIONS = {
    ".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".webm", ".sph", ".aiff",
    ".aif",
}
COMMAND_LAYOUTS = ("fsdd", "folders", "speaker_folders")
LAYOUTS = ("auto", *COMMAND_LAYOUTS, *TRANSCRIBED_LAYOUTS)

# An optional "-aug<k>" suffix marks copies written by ``audiorec augment``; they keep the speaker.
_FSDD_NAME = re.compile(r"^(?P<label>\d)_(?P<speaker>[A-Za-z]+)_(?P<index>\d+)(?:-aug\d+)?$")
_SC_NAME = re.compile(r"^(?:.+_)?(?P<speaker>[^_]+)_nohash_\d+(?:-aug\d+)?$")


@dataclass
class ValidationConfig:
    """Thresholds that decide which files an import excludes.

    The defaults keep every clip of the shared corpora: FSDD's shortest is 0.14 s; Speech
    Commands' quietest ``_silence_`` clip peaks at -73 dBFS (quiet background noise is a class,
    not a defect), and its most clipped word has 17.6% of its samples at full scale (loud, but
    still a recognisable word). What they exclude is digital silence and audio that is mostly
    flat-topped.

    Attributes
    ----------
    min_duration_s : float
        Shorter files are excluded as ``too short``.
    max_duration_s : float
        Longer files are excluded as ``too long``.
    silence_dbfs : float
        Files whose peak is below this level (dB relative to full scale) are ``silent``.
    clip_level : float
        Absolute amplitude counted as clipped (1.0 is full scale).
    max_clipped_fraction : float
        Files with a larger fraction of clipped samples are ``clipped``.
    """

    min_duration_s: float = 0.1
    max_duration_s: float = 30.0
    silence_dbfs: float = -80.0
    clip_level: float = 0.999
    max_clipped_fraction: float = 0.25


@dataclass
class ImportResult:
    """What an import found.

    Attributes
    ----------
    layout : str
        The layout used (resolved when ``auto`` was asked).
    utterances : list of Utterance
        The files that passed validation, sorted by path.
    rejected : list of (str, str)
        ``(path, reason)`` for every excluded file; for a transcribed corpus ``path`` may be
        ``transcript_file:line`` (a line without audio, a malformed line).
    text_normalisation : str or None
        How transcripts were normalised (``TEXT_NORMALISATION`` of
        :mod:`audiorec.data.transcribed`); None for command corpora, which have no text.
    """

    layout: str
    utterances: list[Utterance]
    rejected: list[tuple[str, str]] = field(default_factory=list)
    text_normalisation: str | None = None

    def summary(self) -> dict:
        """Counts for a report (``import_report.json``).

        Returns
        -------
        dict
            ``layout``, ``n_kept``, ``n_rejected``, ``rejected`` (path and reason),
            ``labels`` (clips per label; empty for transcribed corpora), ``n_speakers``,
            ``sample_rates`` (files per rate in Hz) and ``total_duration_s``. A transcribed corpus
            adds ``text_normalisation``, ``n_words`` (running words) and ``subsets``: per
            subset of the corpus, ``n_utterances``, ``n_speakers``, ``n_words`` and
            ``duration_s``.
        """
        summary = {
            "layout": self.layout,
            "n_kept": len(self.utterances),
            "n_rejected": len(self.rejected),
            "rejected": [{"path": p, "reason": r} for p, r in self.rejected],
            "labels": dict(sorted(Counter(u.label for u in self.utterances if u.label is not None).items())),
            "n_speakers": len({u.speaker for u in self.utterances if u.speaker is not None}),
            "sample_rates": {
                str(k): v for k, v in sorted(Counter(u.sample_rate for u in self.utterances).items())
            },
            "total_duration_s": round(sum(u.duration for u in self.utterances), 3),
        }
        if self.text_normalisation is not None:
            summary["text_normalisation"] = self.text_normalisation
            summary["n_words"] = sum(len(u.text.split()) for u in self.utterances if u.text)
            subsets: dict[str, list[Utterance]] = {}
            for u in self.utterances:
                if u.subset is not None:
                    subsets.setdefault(u.subset, []).append(u)
            summary["subsets"] = {
                name: {
                    "n_utterances": len(utts),
                    "n_speakers": len({u.speaker for u in utts if u.speaker is not None}),
                    "n_words": sum(len(u.text.split()) for u in utts if u.text),
                    "duration_s": round(sum(u.duration for u in utts), 3),
                }
                for name, utts in sorted(subsets.items())
            }
        return summary


def check_audio(samples: np.ndarray, sample_rate: int, config: ValidationConfig) -> str | None:
    """Return why a decoded clip should be excluded, or None if it is fine.

    Parameters
    ----------
    samples : np.ndarray [shape=(n_channels, n_samples)]
        Decoded amplitudes in [-1, 1].
    sample_rate : int > 0
        Hz.
    config : ValidationConfig

    Returns
    -------
    str or None
        ``"empty ..."``, ``"too short ..."``, ``"too long ..."``, ``"silent ..."`` or
        ``"clipped ..."`` with the measured value, or None.
    """
    n = samples.shape[1]
    if n == 0:
        return "empty (no samples)"
    duration = n / sample_rate
    if duration < config.min_duration_s:
        return f"too short ({duration:.3f} s < {config.min_duration_s} s)"
    if duration > config.max_duration_s:
        return f"too long ({duration:.1f} s > {config.max_duration_s} s)"
    peak = float(np.max(np.abs(samples)))
    peak_dbfs = 20 * np.log10(max(peak, 1e-12))
    if peak_dbfs < config.silence_dbfs:
        return f"silent (peak {peak_dbfs:.1f} dBFS < {config.silence_dbfs} dBFS)"
    clipped = float(np.mean(np.abs(samples) >= config.clip_level))
    if clipped > config.max_clipped_fraction:
        return f"clipped ({100 * clipped:.1f}% of samples at full scale)"
    return None


def is_audio_file(path: Path) -> bool:
    """True for a visible file with an audio extension (see ``AUDIO_EXTENSIONS``)."""
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def _speaker_from_name(stem: str) -> str | None:
    match = _SC_NAME.match(stem)
    if match:
        return match["speaker"]
    return stem.split("_", 1)[0] if "_" in stem else None


def detect_layout(root: Path) -> str:
    """Guess the layout of a corpus folder.

    The transcribed layouts are tried first (see
    :func:`~audiorec.data.transcribed.detect_transcribed_layout`), then the command layouts.

    Parameters
    ----------
    root : Path
        A corpus folder, or a ``.csv``/``.tsv`` transcript table.

    Returns
    -------
    str
        ``"an4"``, ``"librispeech"``, ``"yesno"``, ``"transcripts"``, ``"fsdd"``, ``"folders"``
        or ``"speaker_folders"``.

    Raises
    ------
    ValueError
        ``root`` is neither a folder nor a transcript table, or holds no audio files where any
        layout expects them.
    """
    transcribed = detect_transcribed_layout(root)
    if transcribed is not None:
        return transcribed
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder, nor a .csv/.tsv transcript table")
    top = [p for p in root.iterdir() if is_audio_file(p)]
    if top and all(_FSDD_NAME.match(p.stem) for p in top):
        return "fsdd"
    subdirs = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if any(is_audio_file(p) for d in subdirs for p in d.iterdir()):
        return "folders"
    if any(is_audio_file(p) for d in subdirs for s in d.iterdir() if s.is_dir() for p in s.iterdir()):
        return "speaker_folders"
    raise ValueError(
        f"{root}: no audio files found as DIR/<label>/<file>, DIR/<speaker>/<label>/<file> "
        f"or FSDD names DIR/<digit>_<speaker>_<index>.wav, and no AN4, LibriSpeech or yesno transcripts"
    )


def scan_corpus(root: str | Path, layout: str = "auto") -> tuple[str, list[tuple[Path, str, str | None]]]:
    """List the audio files of a command corpus with their label and speaker, without decoding them.

    Transcribed corpora have text instead of labels: :func:`import_corpus` reads them.

    Parameters
    ----------
    root : str or Path
        The corpus folder.
    layout : {"auto", "fsdd", "folders", "speaker_folders"}

    Returns
    -------
    layout : str
        The resolved layout.
    entries : list of (Path, str, str or None)
        ``(path, label, speaker)`` sorted by path.

    Raises
    ------
    ValueError
        ``root`` is not a folder, ``layout`` is unknown or transcribed, or nothing matches the
        layout.

    Warns
    -----
    UserWarning
        ``fsdd``: audio files whose names do not match were left out (the first three named).
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(root)
    if layout in TRANSCRIBED_LAYOUTS:
        raise ValueError(
            f"{root}: a transcribed corpus ({layout!r}) has text, not command labels; "
            f"read it with import_corpus"
        )
    entries: list[tuple[Path, str, str | None]] = []
    if layout == "fsdd":
        misnamed = []
        for p in sorted(root.iterdir()):
            match = _FSDD_NAME.match(p.stem)
            if is_audio_file(p) and match:
                entries.append((p, match["label"], match["speaker"]))
            elif is_audio_file(p):
                misnamed.append(p.name)
        if misnamed and entries:
            warnings.warn(f"{root}: {len(misnamed)} audio file(s) left out because their names are not "
                          f"<digit>_<speaker>_<index> with a speaker of letters only, e.g. {', '.join(misnamed[:3])}")
    elif layout == "folders":
        for label_dir in sorted(d for d in root.iterdir() if d.is_dir()):
            for p in sorted(label_dir.iterdir()):
                if is_audio_file(p):
                    entries.append((p, label_dir.name, _speaker_from_name(p.stem)))
    else:
        for speaker_dir in sorted(d for d in root.iterdir() if d.is_dir()):
            for label_dir in sorted(d for d in speaker_dir.iterdir() if d.is_dir()):
                for p in sorted(label_dir.iterdir()):
                    if is_audio_file(p):
                        entries.append((p, label_dir.name, speaker_dir.name))
    if not entries:
        raise ValueError(f"{root}: no audio files match the {layout!r} layout")
    return layout, entries


def import_corpus(
    root: str | Path,
    layout: str = "auto",
    validation: ValidationConfig | None = None,
    progress: bool = True,
) -> ImportResult:
    """Scan a corpus, decode and validate every file, and return manifest records.

    Parameters
    ----------
    root : str or Path
        The corpus folder, or for ``layout="transcripts"`` a ``.csv``/``.tsv`` file (see the
        module docstring for the layouts).
    layout : {"auto", "fsdd", "folders", "speaker_folders", "an4", "librispeech", "yesno", "transcripts"}
    validation : ValidationConfig
        Thresholds for excluding files.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    ImportResult
        Kept utterances (with ``label`` for command corpora; ``text``, ``speaker`` and ``subset``
        for transcribed ones) and ``(path, reason)`` for every excluded file or transcript line.

    Raises
    ------
    ValueError
        As :func:`scan_corpus` and :func:`~audiorec.data.transcribed.scan_transcribed`, or when
        every file was excluded.
    """
    validation = validation or ValidationConfig()
    root = Path(root).expanduser().resolve()
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(root)
    if layout in TRANSCRIBED_LAYOUTS:
        entries, rejected = scan_transcribed(root, layout)
        items = [(e.path, {"text": e.text, "speaker": e.speaker, "subset": e.subset}) for e in entries]
        normalisation = TEXT_NORMALISATION
    else:
        layout, scanned = scan_corpus(root, layout)
        items = [(path, {"label": label, "speaker": speaker}) for path, label, speaker in scanned]
        rejected, normalisation = [], None
    utterances, invalid = _validate(items, validation, progress)
    rejected += invalid
    if not utterances:
        raise ValueError(f"{root}: all {len(rejected)} files were excluded, e.g. {rejected[0][0]}: {rejected[0][1]}")
    return ImportResult(layout=layout, utterances=utterances, rejected=rejected, text_normalisation=normalisation)


def _validate(
    items: list[tuple[Path, dict]], validation: ValidationConfig, progress: bool
) -> tuple[list[Utterance], list[tuple[str, str]]]:
    """Decode and check every file; ``items`` are ``(path, Utterance fields)`` in output order."""

    def inspect(item):
        path, fields = item
        try:
            decoded = decode_audio(path)
        except AudioError as e:
            return None, (str(path), f"unreadable: {e.reason}")
        reason = check_audio(decoded.samples, decoded.sample_rate, validation)
        if reason:
            return None, (str(path), reason)
        utt = Utterance(
            path=str(path),
            duration=round(decoded.duration, 5),
            sample_rate=decoded.sample_rate,
            **fields,
        )
        return utt, None

    utterances, rejected = [], []
    # Decoders release the GIL, so threads use both cores without pickling arrays around.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(inspect, items)
        for utt, bad in tqdm(results, total=len(items), desc="import", unit="file", disable=not progress):
            if utt is not None:
                utterances.append(utt)
            else:
                rejected.append(bad)
    return utterances, rejected
