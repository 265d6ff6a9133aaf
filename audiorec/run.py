"""The run directory: where ``audiorec train`` writes and every later command reads.

Layout of ``RUN_DIR``::

    config.yaml            resolved configuration (defaults + file + overrides)
    labels.json            class names, in the order of the model's outputs (task=commands)
    tokenizer.json         output tokens of a speech recognizer, the CTC blank first (task=asr)
    manifest.jsonl         the utterances used (when the data was imported on the fly)
    import_report.json     what the import kept and excluded, with reasons
    splits/{train,val,test}.jsonl
    checkpoints/best.ckpt  best validation accuracy; checkpoints/last.ckpt for resuming
    logs/version_N/metrics.csv  per-epoch losses and accuracies (one version per (re)start)
    metrics.json           test metrics
    confusion_matrix.txt, confusion_matrix.png (task=commands)
    transcripts.jsonl      reference and hypothesis per test utterance, with error counts (task=asr)
    evaluate/              what ``audiorec evaluate`` writes (metrics.json, accuracy_vs_snr.png)

Every file is written atomically, so an interrupted run never leaves a half-written one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed into place.

    Parameters
    ----------
    path : str or Path
        Destination; parent folders are created.
    text : str
        UTF-8 content.

    Returns
    -------
    Path
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, renamed into place.

    A reader sees the old file or the new one, never a part; a crash leaves no partial file.

    Parameters
    ----------
    path : str or Path
        Destination; parent folders are created.
    data : bytes

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


class RunError(ValueError):
    """A run directory is missing or incomplete; the message names the missing file."""


@dataclass(frozen=True)
class RunDir:
    """Paths inside a run directory (see the module docstring).

    Parameters
    ----------
    root : Path
    """

    root: Path

    @property
    def config(self) -> Path:
        """The resolved configuration, YAML."""
        return self.root / "config.yaml"

    @property
    def labels(self) -> Path:
        """Class names in output order, JSON."""
        return self.root / "labels.json"

    @property
    def tokenizer(self) -> Path:
        """The tokenizer of a speech-recognition run, JSON (:func:`audiorec.tokenizer.load_tokenizer`)."""
        return self.root / "tokenizer.json"

    @property
    def manifest(self) -> Path:
        """The clips imported on the fly, JSON Lines."""
        return self.root / "manifest.jsonl"

    @property
    def import_report(self) -> Path:
        """What the import kept and excluded, JSON."""
        return self.root / "import_report.json"

    @property
    def splits(self) -> Path:
        """Folder with train.jsonl, val.jsonl and test.jsonl."""
        return self.root / "splits"

    @property
    def checkpoints(self) -> Path:
        """Folder with best.ckpt and last.ckpt."""
        return self.root / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        """Lightning checkpoint with the best validation accuracy."""
        return self.checkpoints / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        """Lightning checkpoint of the last finished epoch (for resuming)."""
        return self.checkpoints / "last.ckpt"

    @property
    def metrics(self) -> Path:
        """Test metrics, JSON."""
        return self.root / "metrics.json"

    def read_labels(self) -> list[str]:
        """The class names in output order.

        Raises
        ------
        RunError
            ``labels.json`` is missing (not a trained run directory).
        """
        if not self.labels.is_file():
            if self.tokenizer.is_file():
                raise RunError(f"{self.root}: a speech-recognition run (task=asr); use 'audiorec transcribe'")
            raise RunError(f"{self.root}: not a run directory (no labels.json); train one with 'audiorec train'")
        return json.loads(self.labels.read_text(encoding="utf-8"))

    def require_checkpoint(self) -> Path:
        """The best checkpoint, or the last one if training never validated.

        Raises
        ------
        RunError
            No checkpoint exists.
        """
        for path in (self.best_checkpoint, self.last_checkpoint):
            if path.is_file():
                return path
        raise RunError(f"{self.root}: no checkpoint in {self.checkpoints}; has training finished an epoch?")
