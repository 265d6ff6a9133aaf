"""The recording studio's storage: takes saved in the folder-per-label layout ``audiorec train`` reads.

A take of label ``L`` by speaker ``S`` numbered ``n`` is ``DATASET/L/S_nohash_n.wav``: 16 kHz mono
16-bit PCM, whatever format the browser sent. The name follows Speech Commands, so
:mod:`audiorec.data.corpora` reads the speaker back from it and the splits keep each speaker's
takes together. Names come from the user, so they are checked against a strict pattern before
they touch the file system, and the final path is checked to lie inside the dataset folder.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from audiorec.audio import SAMPLE_RATE, write_wav

# Letters and digits of any script, then also spaces, hyphens and apostrophes ("power on",
# "don't"); Speech Commands' _silence_ and _unknown_ start with an underscore.
LABEL_PATTERN = re.compile(r"[^\W_][\w '-]{0,63}|_[^\W_]+_")
# No underscore: the corpus reader splits "<speaker>_nohash_<n>" on it.
SPEAKER_PATTERN = re.compile(r"[^\W_](?:[^\W_]|-){0,63}")
MAX_TAKE = 9999
TAKE_NAME = re.compile(r"(?P<speaker>[^_]+)_nohash_(?P<take>\d+)\.wav")


@dataclass
class Take:
    """One saved recording.

    Attributes
    ----------
    label, speaker : str
    take : int
        Number of the take for this label and speaker, from 0.
    path : str
        Relative to the dataset folder, with ``/`` separators.
    duration_s : float
        Seconds of audio.
    """

    label: str
    speaker: str
    take: int
    path: str
    duration_s: float

    def to_dict(self) -> dict:
        """The attributes as a JSON-ready dict."""
        return asdict(self)


def check_label(label: str) -> str:
    """Return ``label`` when it is safe as a folder name, else raise ``ValueError`` naming it.

    Allowed: 1-64 characters, letters and digits of any script, spaces, hyphens, apostrophes
    and underscores, starting with a letter or digit; or ``_word_`` (``_silence_``, ``_unknown_``).
    """
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label) or label != label.strip():
        raise ValueError(f"label {label!r}: use 1-64 letters, digits, spaces, hyphens or apostrophes, "
                         "starting with a letter or digit (or _word_)")
    return label


def check_speaker(speaker: str) -> str:
    """Return ``speaker`` when it is safe in a file name, else raise ``ValueError`` naming it.

    Allowed: 1-64 letters, digits (any script) and hyphens, starting with a letter or digit.
    """
    if not isinstance(speaker, str) or not SPEAKER_PATTERN.fullmatch(speaker):
        raise ValueError(f"speaker {speaker!r}: use 1-64 letters, digits or hyphens (no spaces or underscores), "
                         "starting with a letter or digit")
    return speaker


def check_take(take: int) -> int:
    """Return ``take`` when it is an integer in ``[0, MAX_TAKE]``, else raise ``ValueError``."""
    if isinstance(take, bool) or not isinstance(take, int) or not 0 <= take <= MAX_TAKE:
        raise ValueError(f"take {take!r}: must be an integer from 0 to {MAX_TAKE}")
    return take


class Studio:
    """Saves, lists and deletes takes under one dataset folder.

    Parameters
    ----------
    root : str or Path
        The dataset folder (created when missing). Files outside it are never touched.
    sample_rate : int
        Hz of the saved WAV files.

    Raises
    ------
    ValueError
        From the methods: a label, speaker or take number that fails :func:`check_label`,
        :func:`check_speaker` or :func:`check_take`.
    """

    def __init__(self, root: str | Path, sample_rate: int = SAMPLE_RATE):
        self.root = Path(root).resolve()
        self.sample_rate = sample_rate

    def path(self, label: str, speaker: str, take: int) -> Path:
        """Where a take lives: ``root/label/speaker_nohash_take.wav`` (checked to stay inside ``root``)."""
        path = self.root / check_label(label) / f"{check_speaker(speaker)}_nohash_{check_take(take)}.wav"
        if path.resolve().parent.parent != self.root:  # a symlinked label folder pointing elsewhere
            raise ValueError(f"label {label!r}: its folder {path.parent} leads outside the dataset folder")
        return path

    def _take(self, path: Path, label: str, speaker: str, take: int) -> Take:
        import soundfile

        info = soundfile.info(str(path))
        return Take(label, speaker, take, path.relative_to(self.root).as_posix(), round(info.frames / info.samplerate, 4))

    def save(self, label: str, speaker: str, take: int, waveform: np.ndarray) -> Take:
        """Write a take atomically, replacing an earlier one with the same number (a redo).

        Parameters
        ----------
        label, speaker : str
        take : int
        waveform : np.ndarray [shape=(n_samples,), dtype=float32]
            Mono audio at :attr:`sample_rate`, full scale 1.

        Returns
        -------
        Take
        """
        path = self.path(label, speaker, take)
        write_wav(path, waveform, self.sample_rate)
        return self._take(path, label, speaker, take)

    def delete(self, label: str, speaker: str, take: int) -> bool:
        """Remove a take; ``False`` when there was none."""
        path = self.path(label, speaker, take)
        if not path.is_file():
            return False
        path.unlink()
        return True

    def takes(self, speaker: str | None = None) -> list[Take]:
        """Every take in the folder (of one speaker when given), sorted by label, speaker and number.

        Files that do not follow the studio's naming (recordings copied in by hand) are left out.
        """
        if speaker is not None:
            check_speaker(speaker)
        found = []
        if not self.root.is_dir():
            return found
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if not LABEL_PATTERN.fullmatch(folder.name):
                continue
            for path in sorted(folder.glob("*_nohash_*.wav")):
                match = TAKE_NAME.fullmatch(path.name)
                if match and (speaker is None or match["speaker"] == speaker):
                    found.append(self._take(path, folder.name, match["speaker"], int(match["take"])))
        return sorted(found, key=lambda t: (t.label, t.speaker, t.take))
