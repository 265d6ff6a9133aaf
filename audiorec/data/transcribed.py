"""Find the utterances and transcripts of continuous-speech corpora, and normalise their text.

Layouts (``layout=`` of :func:`~audiorec.data.corpora.import_corpus`, ``--layout`` of
``audiorec data import``):

``an4``
    CMU AN4 (Acero 1993): ``ROOT/etc/an4_{train,test}.transcription`` with lines
    ``<s> ENTER NINE ONE SIX NINE </s> (an417-fjlp-b)``, ``ROOT/etc/an4_{train,test}.fileids``
    and NIST SPHERE audio ``ROOT/wav/an4_clstk/<speaker>/<id>.sph`` (train) and
    ``ROOT/wav/an4test_clstk/<speaker>/<id>.sph`` (test).
``librispeech``
    LibriSpeech (Panayotov et al. 2015, OpenSLR SLR12):
    ``ROOT/[<subset>/]<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` with lines
    ``<speaker>-<chapter>-<n> TEXT`` and ``<speaker>-<chapter>-<n>.flac`` beside it.
``yesno``
    Kaldi yesno (OpenSLR SLR1): ``ROOT/0_1_1_0_1_0_0_1.wav``, the name is the transcript
    (``0`` = "no", ``1`` = "yes"), one speaker.
``transcripts``
    A CSV (``.csv``) or TSV (``.tsv``) file, given instead of a folder, whose header names a
    ``path`` and a ``text`` column and optionally ``speaker`` and ``subset``; relative paths are
    relative to the file's folder.

Scanning only reads the transcripts and lists files; decoding and validating the audio is left
to :func:`~audiorec.data.corpora.import_corpus`. Problems with one utterance (a transcript line
without audio, audio without a transcript, a malformed line) are returned as ``(where, reason)``
pairs, ``where`` being ``file:line`` or the audio path, so that one bad line never stops an
import.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from audiorec.data.manifest import Utterance

TRANSCRIBED_LAYOUTS = ("an4", "librispeech", "yesno", "transcripts")
TEXT_NORMALISATION = (
    "NFKC; <...> markers such as <s> </s> removed; lower case; punctuation removed except "
    "apostrophes inside words; whitespace collapsed"
)

_AN4_SUBSETS = ("train", "test")
_AN4_LINE = re.compile(r"^(?P<text>.*)\((?P<id>[^()\s]+)\)\s*$")
_YESNO_NAME = re.compile(r"^[01](?:_[01])+$")
_YESNO_WORDS = {"0": "no", "1": "yes"}
_YESNO_SPEAKER = "yesno"  # SLR1 has a single, anonymous speaker
_TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t"}
TABLE_SUFFIXES = tuple(_TABLE_DELIMITERS)  # a file with one of these is a transcript table, not a manifest
# A LibriSpeech transcript is ROOT/<speaker>/<chapter>/<file> when ROOT is one subset, one level
# deeper from the LibriSpeech folder, and one more tolerates ROOT being the folder the archive was
# unpacked into.
_LIBRISPEECH_MAX_DEPTH = 5
_MARKER = re.compile(r"<[^<>]*>")
# Typographic apostrophes count as apostrophes so that "don’t" and "don't" are one word.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2032": "'"})
_EDGE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


@dataclass(frozen=True)
class TranscribedEntry:
    """One audio file of a transcribed corpus, before its audio is decoded.

    Attributes
    ----------
    path : Path
        Absolute path of the audio file.
    text : str
        The transcript after :func:`normalize_text`; never empty.
    speaker : str or None
        Speaker identity, None where the corpus gives none.
    subset : str or None
        The corpus's own partition (``"train"``, ``"test-clean"``, ...), None where it has none.
    """

    path: Path
    text: str
    speaker: str | None
    subset: str | None


def normalize_text(text: str) -> str:
    """Normalise a transcript for recognition targets and for scoring.

    Applied identically to every corpus (see ``TEXT_NORMALISATION``), so that a model trained
    on one corpus is scored on another with the same word forms. Follows the usual English
    ASR normalisation (LibriSpeech's own transcripts are already in this form, upper-cased).

    Parameters
    ----------
    text : str
        A raw transcript line without its utterance id.

    Returns
    -------
    str
        NFKC-normalised, with ``<...>`` markers (AN4's ``<s>``, ``</s>``, noise tags) removed,
        lower case, every character that is not a letter, digit, combining mark or apostrophe
        replaced by a space, apostrophes kept only between two word characters (``don't``
        stays, ``'quoted'`` loses them), single spaces between words and none at the ends.
        Empty when nothing is left.

    Examples
    --------
    >>> normalize_text("<s> ENTER NINE ONE SIX NINE </s>")
    'enter nine one six nine'
    >>> normalize_text("Don’t stop — it's 3 p.m.!")
    "don't stop it's 3 p m"
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    text = _MARKER.sub(" ", text).lower()
    text = "".join(
        c if c == "'" or unicodedata.category(c)[0] in "LNM" else " " for c in text
    )
    return " ".join(_EDGE_APOSTROPHE.sub("", text).split())


def detect_transcribed_layout(root: Path) -> str | None:
    """Recognise a transcribed corpus from what is on disk.

    Parameters
    ----------
    root : Path
        A corpus folder, or a transcript table file.

    Returns
    -------
    str or None
        ``"transcripts"`` for a ``.csv``/``.tsv`` file, ``"an4"`` when
        ``root/etc/an4_train.transcription`` exists, ``"librispeech"`` when a ``*.trans.txt``
        lies at most five levels below ``root``, ``"yesno"`` when every audio file directly in
        ``root`` is named like ``0_1_1_0`` (FSDD's ``<digit>_<speaker>_<n>`` is not), else None.
    """
    if root.is_file():
        return "transcripts" if root.suffix.lower() in _TABLE_DELIMITERS else None
    if not root.is_dir():
        return None
    if (root / "etc" / "an4_train.transcription").is_file():
        return "an4"
    for depth in range(1, _LIBRISPEECH_MAX_DEPTH + 1):
        if next(root.glob("*/" * (depth - 1) + "*.trans.txt"), None) is not None:
            return "librispeech"
    top = _audio_files(root, recursive=False)
    if top and all(_YESNO_NAME.match(p.stem) for p in top):
        return "yesno"
    return None


def scan_transcribed(
    root: str | Path, layout: str
) -> tuple[list[TranscribedEntry], list[tuple[str, str]]]:
    """List the utterances of a transcribed corpus with normalised text, without decoding audio.

    Parameters
    ----------
    root : str or Path
        The corpus folder, or for ``layout="transcripts"`` the ``.csv``/``.tsv`` file.
    layout : {"an4", "librispeech", "yesno", "transcripts"}
        See the module docstring.

    Returns
    -------
    entries : list of TranscribedEntry
        Sorted by path.
    rejected : list of (str, str)
        ``(where, reason)`` for every transcript line or audio file left out: ``where`` is
        ``transcript_file:line`` for a line (``no audio file for id X``, ``malformed line: ...``,
        ``empty transcript``, ``duplicate ...``) or the audio path (``no transcript``).

    Raises
    ------
    ValueError
        ``layout`` is not a transcribed layout; ``root`` does not exist or is not what the
        layout reads (no AN4 transcription, no ``*.trans.txt``, a table without a header
        naming ``path`` and ``text``, an unparseable table); or nothing at all was found.
    """
    root = Path(root).expanduser().resolve()
    scanners = {"an4": _scan_an4, "librispeech": _scan_librispeech, "yesno": _scan_yesno,
                "transcripts": _scan_table}
    if layout not in scanners:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(TRANSCRIBED_LAYOUTS)}")
    if layout == "transcripts" and not root.is_file():
        raise ValueError(f"{root}: not a .csv or .tsv transcript file")
    if layout != "transcripts" and not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    entries, rejected = scanners[layout](root)
    if not entries and not rejected:
        raise ValueError(f"{root}: no transcribed audio files match the {layout!r} layout")
    return sorted(entries, key=lambda e: e.path), rejected


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def _read_lines(path: Path, rejected: list[tuple[str, str]]) -> list[str]:
    """The lines of a UTF-8 text file; an unreadable one is recorded in ``rejected`` and reads as empty."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        rejected.append((str(path), f"unreadable transcript file: {e}"))
        return []


def _audio_files(folder: Path, recursive: bool = True) -> list[Path]:
    # Imported here because corpora imports this module to dispatch to it.
    from audiorec.data.corpora import is_audio_file

    return sorted(p for p in (folder.rglob("*") if recursive else folder.iterdir()) if is_audio_file(p))


def _scan_an4(root: Path) -> tuple[list[TranscribedEntry], list[tuple[str, str]]]:
    """CMU AN4: ``etc/an4_<subset>.transcription``, audio found through ``etc/an4_<subset>.fileids``.

    A file listed in the fileids is used when it exists; otherwise the audio file named
    ``<id>.*`` anywhere under ``wav/`` (copies of AN4 differ in where they put the test folders).
    """
    wav = root / "wav"
    audio = _audio_files(wav) if wav.is_dir() else []
    by_id: dict[str, Path] = {}
    for p in audio:
        by_id.setdefault(p.stem, p)
    transcriptions = {s: root / "etc" / f"an4_{s}.transcription" for s in _AN4_SUBSETS}
    transcriptions = {s: t for s, t in transcriptions.items() if t.is_file()}
    if not transcriptions:
        raise ValueError(f"{root}: no etc/an4_train.transcription or etc/an4_test.transcription")
    entries, rejected = [], []
    seen: dict[str, str] = {}
    used: dict[str, Path] = {}
    for subset, transcription in transcriptions.items():
        listed = _an4_fileids(root / "etc" / f"an4_{subset}.fileids", wav, rejected)
        for n, line in enumerate(_read_lines(transcription, rejected), 1):
            if not line.strip():
                continue
            where = _where(transcription, n)
            match = _AN4_LINE.match(line)
            if not match:
                rejected.append((where, "malformed line: no '(utterance-id)' at its end"))
                continue
            utt_id = match["id"]
            if utt_id in seen:
                rejected.append((where, f"duplicate id {utt_id} (first at {seen[utt_id]})"))
                continue
            seen[utt_id] = where
            path = listed.get(utt_id)
            if path is None or not path.is_file():
                path = by_id.get(utt_id)
            if path is None:
                rejected.append((where, f"no audio file for id {utt_id}"))
                continue
            text = normalize_text(match["text"])
            if not text:
                rejected.append((where, f"empty transcript for id {utt_id}"))
                continue
            # AN4 ids are an<n>-<speaker>-<letter>; the speaker's folder is the fallback.
            parts = utt_id.split("-")
            speaker = parts[1] if len(parts) == 3 else path.parent.name
            entries.append(TranscribedEntry(path, text, speaker, subset))
            used[utt_id] = path
    used_paths = set(used.values())
    for p in audio:
        if p in used_paths:
            continue
        reason = f"another file for id {p.stem} is used: {used[p.stem]}" if p.stem in used else "no transcript"
        rejected.append((str(p), reason))
    return entries, rejected


def _an4_fileids(fileids: Path, wav: Path, rejected: list[tuple[str, str]]) -> dict[str, Path]:
    """Utterance id -> the ``.sph`` the fileids list names (which may be absent on disk)."""
    if not fileids.is_file():
        return {}
    lines = (line.strip() for line in _read_lines(fileids, rejected))
    return {Path(line).name: wav / f"{line}.sph" for line in lines if line}


def _scan_librispeech(root: Path) -> tuple[list[TranscribedEntry], list[tuple[str, str]]]:
    """LibriSpeech (Panayotov et al. 2015): ``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt``.

    The subset is the name of the folder above the speaker folder (``train-clean-100``,
    ``test-clean``, ...), which is ``root`` itself when ``root`` is one subset.
    """
    transcripts = sorted(root.rglob("*.trans.txt"))
    if not transcripts:
        raise ValueError(f"{root}: no LibriSpeech <speaker>-<chapter>.trans.txt files")
    entries, rejected, used = [], [], set()
    for transcript in transcripts:
        beside = {p.stem: p for p in _audio_files(transcript.parent, recursive=False)}
        subset = _librispeech_subset(root, transcript)
        ids_here = set()
        for n, line in enumerate(_read_lines(transcript, rejected), 1):
            if not line.strip():
                continue
            where = _where(transcript, n)
            fields = line.split(maxsplit=1)
            if len(fields) < 2:
                rejected.append((where, "malformed line: an utterance id without text"))
                continue
            utt_id, raw = fields
            if utt_id in ids_here:
                rejected.append((where, f"duplicate id {utt_id}"))
                continue
            ids_here.add(utt_id)
            path = beside.get(utt_id)
            if path is None:
                rejected.append((where, f"no audio file for id {utt_id}"))
                continue
            text = normalize_text(raw)
            if not text:
                rejected.append((where, f"empty transcript for id {utt_id}"))
                continue
            entries.append(TranscribedEntry(path, text, utt_id.split("-")[0], subset))
            used.add(path)
    return entries, rejected + [(str(p), "no transcript") for p in _audio_files(root) if p not in used]


def _librispeech_subset(root: Path, transcript: Path) -> str | None:
    """The folder above the speaker folder, if that is ``root`` or lies inside it."""
    parts = transcript.relative_to(root).parts  # [..., subset,] speaker, chapter, file
    if len(parts) < 3:
        return None
    return parts[-4] if len(parts) >= 4 else root.name


def _scan_yesno(root: Path) -> tuple[list[TranscribedEntry], list[tuple[str, str]]]:
    """Kaldi yesno (OpenSLR SLR1): the file name ``0_1_1_0_...`` is the transcript."""
    entries, rejected = [], []
    for p in _audio_files(root, recursive=False):
        if _YESNO_NAME.match(p.stem):
            text = " ".join(_YESNO_WORDS[d] for d in p.stem.split("_"))
            entries.append(TranscribedEntry(p, text, _YESNO_SPEAKER, None))
        else:
            rejected.append((str(p), "no transcript (the name is not a 0/1 sequence like 0_1_1_0)"))
    return entries, rejected


def _scan_table(table: Path) -> tuple[list[TranscribedEntry], list[tuple[str, str]]]:
    """A CSV/TSV with a header row naming ``path`` and ``text`` (and optionally ``speaker``, ``subset``)."""
    delimiter = _TABLE_DELIMITERS.get(table.suffix.lower())
    if delimiter is None:
        raise ValueError(f"{table}: a transcript table must be a .csv or .tsv file")
    entries, rejected = [], []
    first_line: dict[Path, int] = {}
    # utf-8-sig: spreadsheet programs often write a byte-order mark before the header.
    with table.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            header = [name.strip().lower() for name in reader.fieldnames or []]
            missing = [c for c in ("path", "text") if c not in header]
            if missing:
                raise ValueError(
                    f"{table}: the header row has no {' or '.join(repr(c) for c in missing)} column "
                    f"(found: {', '.join(header) or 'nothing'})"
                )
            reader.fieldnames = header
            for row in reader:
                where = _where(table, reader.line_num)
                cells = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
                if not cells["path"] or not cells["text"]:
                    missing_cell = "path" if not cells["path"] else "text"
                    rejected.append((where, f"malformed row: no {missing_cell}"))
                    continue
                path = Path(cells["path"]).expanduser()
                path = (path if path.is_absolute() else table.parent / path).resolve()
                if not path.is_file():
                    rejected.append((where, f"no audio file {cells['path']}"))
                    continue
                if path in first_line:
                    rejected.append((where, f"duplicate of line {first_line[path]}"))
                    continue
                first_line[path] = reader.line_num
                text = normalize_text(cells["text"])
                if not text:
                    rejected.append((where, "empty transcript"))
                    continue
                entries.append(TranscribedEntry(
                    path, text, cells.get("speaker") or None, cells.get("subset") or None,
                ))
        except (csv.Error, UnicodeDecodeError) as e:
            raise ValueError(f"{_where(table, reader.line_num)}: unreadable table: {e}") from e
    return entries, rejected


def command_clips(utterances: list[Utterance], labels: Sequence[str], unknown_label: str = "_unknown_") -> list[Utterance]:
    """Label the utterances of a transcribed (or labelled) corpus for command recognition.

    An utterance whose whole transcript is one of ``labels`` becomes a clip of that command; one
    whose transcript holds none of them becomes an ``unknown_label`` clip (other speech, the
    negatives a command recognizer needs); one that holds a command among other words is left
    out, since no label fits the whole clip. An utterance without a transcript but with a label
    (another command corpus, FSDD's digits) takes its label as its one-word transcript; labels
    such as ``_silence_`` (underscored, other than ``unknown_label``) are not speech and are left
    out. Speaker, subset and audio are kept, so the result can be given to ``data.extra_train``
    or trained on by itself.

    Parameters
    ----------
    utterances : list of Utterance
        With ``text`` (normalised by :func:`normalize_text`, as every transcribed import is) or
        a ``label``.
    labels : sequence of str
        The commands, compared with the transcript's words after :func:`normalize_text`.
    unknown_label : str
        The label of other speech (``_unknown_`` in Speech Commands, Warden 2018,
        arXiv:1804.03209).

    Returns
    -------
    list of Utterance
        In input order, with ``label`` set and ``text`` cleared.

    Raises
    ------
    ValueError
        ``labels`` is empty, holds ``unknown_label`` or a command of more than one word (after
        normalisation), or an utterance has neither a transcript nor a label (its path is named).

    Notes
    -----
    Training a keyword spotter on a large pool of non-keyword speech as its negative class is
    the standard recipe (Chen, Parada & Heigold 2014; Warden 2018); with ``data.extra_train``
    it adds other speakers and other words to a small command corpus.
    """
    commands = {normalize_text(label) for label in labels} - {""}
    if not commands:
        raise ValueError("no command labels given")
    if unknown_label in labels:
        raise ValueError(f"{unknown_label!r} is the label of other speech; it cannot be a command")
    phrases = sorted(c for c in commands if " " in c)
    if phrases:
        raise ValueError(f"commands of more than one word ({', '.join(repr(p) for p in phrases)}) cannot be "
                         "told from a transcript's words; give one-word commands")
    clips = []
    for utt in utterances:
        if utt.text:
            words = utt.text.split()
        elif utt.label is not None:  # a labelled clip: its label is its one-word transcript
            if utt.label.startswith("_") and utt.label != unknown_label:
                continue  # _silence_, _background_noise_: not speech
            words = [unknown_label] if utt.label == unknown_label else normalize_text(utt.label).split()
        else:
            raise ValueError(f"{utt.path}: neither a transcript nor a label; command clips are made from a "
                             "transcribed or labelled corpus")
        if len(words) == 1 and words[0] in commands:
            label = words[0]
        elif commands.isdisjoint(words):
            label = unknown_label
        else:
            continue
        clips.append(replace(utt, label=label, text=None))
    return clips
