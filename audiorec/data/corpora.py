"""Import a corpus from a folder into manifest records, validating every file on the way.

Layouts (``layout=`` / ``--layout``):

``fsdd``
    Free Spoken Digit Dataset names in one folder: ``{digit}_{speaker}_{index}.wav``.
``folders``
    Folder per label, ``DIR/<label>/<file>``, as in Speech Commands and the course's 24-command
    project. The speaker comes from the file name: Speech Commands' ``<speaker>_nohash_<n>`` (and
    ``<word>_<speaker>_nohash_<n>`` under ``_unknown_``), otherwise the part before the first
    ``_``; a name without ``_`` has no speaker.
``speaker_folders``
    ``DIR/<speaker>/<label>/<file>``: one folder per speaker, then one per label.
``auto``
    Picks one of the above from what is on disk.

Validation decodes every file and excludes, with the reason, the unreadable, empty, silent,
clipped, too short and too long ones. The originals are only ever read.
"""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audiorec.audio import AudioError, decode_audio
from audiorec.data.manifest import Utterance

AUDIO_EXTENSIONS = {
    ".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".mp4", ".webm", ".sph", ".aiff",
    ".aif",
}
LAYOUTS = ("auto", "fsdd", "folders", "speaker_folders")

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
        ``(path, reason)`` for every excluded file.
    """

    layout: str
    utterances: list[Utterance]
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> dict:
        """Counts for a report: files kept and excluded, labels, speakers, sample rates."""
        return {
            "layout": self.layout,
            "n_kept": len(self.utterances),
            "n_rejected": len(self.rejected),
            "rejected": [{"path": p, "reason": r} for p, r in self.rejected],
            "labels": dict(sorted(Counter(u.label for u in self.utterances).items())),
            "n_speakers": len({u.speaker for u in self.utterances if u.speaker is not None}),
            "sample_rates": {
                str(k): v for k, v in sorted(Counter(u.sample_rate for u in self.utterances).items())
            },
            "total_duration_s": round(sum(u.duration for u in self.utterances), 3),
        }


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

    Parameters
    ----------
    root : Path

    Returns
    -------
    str
        ``"fsdd"``, ``"folders"`` or ``"speaker_folders"``.

    Raises
    ------
    ValueError
        No audio files where any layout expects them.
    """
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
        f"or FSDD names DIR/<digit>_<speaker>_<index>.wav"
    )


def scan_corpus(root: str | Path, layout: str = "auto") -> tuple[str, list[tuple[Path, str, str | None]]]:
    """List the audio files of a corpus with their label and speaker, without decoding them.

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
        ``root`` is not a folder, ``layout`` is unknown, or nothing matches the layout.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(root)
    entries: list[tuple[Path, str, str | None]] = []
    if layout == "fsdd":
        for p in sorted(root.iterdir()):
            match = _FSDD_NAME.match(p.stem)
            if is_audio_file(p) and match:
                entries.append((p, match["label"], match["speaker"]))
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
        The corpus folder (see the module docstring for the layouts).
    layout : {"auto", "fsdd", "folders", "speaker_folders"}
    validation : ValidationConfig
        Thresholds for excluding files.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    ImportResult
        Kept utterances and ``(path, reason)`` for every excluded file.

    Raises
    ------
    ValueError
        As :func:`scan_corpus`, or when every file was excluded.
    """
    validation = validation or ValidationConfig()
    layout, entries = scan_corpus(root, layout)

    def inspect(entry):
        path, label, speaker = entry
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
            speaker=speaker,
            label=label,
        )
        return utt, None

    utterances, rejected = [], []
    # Decoders release the GIL, so threads use both cores without pickling arrays around.
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(inspect, entries)
        for utt, bad in tqdm(results, total=len(entries), desc="import", unit="file", disable=not progress):
            if utt is not None:
                utterances.append(utt)
            else:
                rejected.append(bad)
    if not utterances:
        raise ValueError(f"{root}: all {len(entries)} files were excluded, e.g. {rejected[0][0]}: {rejected[0][1]}")
    return ImportResult(layout=layout, utterances=utterances, rejected=rejected)
