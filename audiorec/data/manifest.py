"""The one manifest format: JSON Lines, one utterance per line, read by every later stage.

A line looks like::

    {"path": "/data/fsdd/0_george_0.wav", "duration": 0.43, "sample_rate": 8000,
     "speaker": "george", "label": "0"}

``path`` is absolute so a manifest can be used from any working directory; ``duration`` is in
seconds and ``sample_rate`` in Hz, both of the file as stored (loading resamples to 16 kHz).
Following lhotse's manifests, the records are small, plain and inspectable with ``head``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable

from audiorec.run import atomic_write_text

SILENCE_LABEL = "_silence_"  # Speech Commands' background-noise class: a label, but no speech


@dataclass(frozen=True)
class Utterance:
    """One recording and what is known about it.

    Attributes
    ----------
    path : str
        Absolute path of the audio file.
    duration : float >= 0
        Length in seconds.
    sample_rate : int > 0
        Sampling rate of the stored file in Hz.
    speaker : str or None
        Speaker identity; None where the corpus has none (e.g. Speech Commands ``_silence_``),
        in which case splits treat the file as its own group.
    label : str or None
        The command (class) for command recognition.
    text : str or None
        The transcript for continuous recognition, normalised at import (see
        :mod:`audiorec.data.transcribed`).
    subset : str or None
        The corpus's own partition, where it has one (``"train"`` or ``"test"`` for AN4,
        LibriSpeech's folder name such as ``"test-clean"``); training keeps ``test`` subsets out
        of training and tests on them (the standard protocol), instead of drawing a test split.
    """

    path: str
    duration: float
    sample_rate: int
    speaker: str | None = None
    label: str | None = None
    text: str | None = None
    subset: str | None = None

    @property
    def group(self) -> str:
        """The unit splits keep together: the speaker, or the file itself when there is none."""
        return self.speaker if self.speaker is not None else f"file:{self.path}"


class ManifestError(ValueError):
    """A manifest file is missing or has a malformed line; the message names the file and line."""


_FIELDS = {f.name for f in fields(Utterance)}


def write_manifest(path: str | Path, utterances: Iterable[Utterance]) -> Path:
    """Write utterances as JSON Lines, atomically (a temporary file renamed into place).

    Parameters
    ----------
    path : str or Path
        Destination; parent folders are created.
    utterances : iterable of Utterance

    Returns
    -------
    Path
        ``path``.
    """
    lines = (
        json.dumps({k: v for k, v in asdict(utt).items() if v is not None}, ensure_ascii=False) + "\n"
        for utt in utterances
    )
    return atomic_write_text(path, "".join(lines))


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSON Lines manifest written by :func:`write_manifest` (or by hand).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of Utterance

    Raises
    ------
    ManifestError
        The file is missing, a line is not JSON, or a line lacks ``path``, ``duration`` or
        ``sample_rate`` or has an unknown key. The message names the file and the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    utterances = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{number}: not valid JSON ({e.msg})") from e
            if not isinstance(record, dict):
                raise ManifestError(f"{path}:{number}: expected a JSON object")
            unknown = set(record) - _FIELDS
            missing = {"path", "duration", "sample_rate"} - set(record)
            if unknown or missing:
                problem = f"unknown keys {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
                raise ManifestError(f"{path}:{number}: {problem}")
            utterances.append(Utterance(**record))
    return utterances
