"""Offline augmentation, as the course did it with SoX: write augmented copies of a corpus.

``augment_corpus(in_dir, out_dir, copies, config)`` is what ``audiorec augment`` runs. Every audio
file under ``IN_DIR`` gets ``copies`` augmented versions at the same relative path in ``OUT_DIR``,
named ``<stem>-aug<k>.wav`` (the corpus layouts read the label and speaker from these names as
from the original), and ``OUT_DIR/augment_log.jsonl`` records, per copy, its source, seed and
every effect applied with its drawn parameters. Originals are only read.
"""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

from tqdm import tqdm

from audiorec.audio import SAMPLE_RATE, AudioError, load_audio, write_wav
from audiorec.augment import AugmentConfig, WaveformAugment
from audiorec.data.corpora import is_audio_file
from audiorec.run import atomic_write_text

LOG_NAME = "augment_log.jsonl"


def augment_corpus(
    in_dir: str | Path,
    out_dir: str | Path,
    copies: int,
    config: AugmentConfig,
    seed: int = 0,
    include_originals: bool = True,
    sample_rate: int = SAMPLE_RATE,
    progress: bool = True,
) -> dict:
    """Write ``copies`` augmented versions of every audio file of a corpus.

    Parameters
    ----------
    in_dir : str or Path
        Corpus folder, any layout; searched recursively.
    out_dir : str or Path
        Output folder; must not be inside ``in_dir``. Existing outputs are kept (a rerun after a
        crash only writes what is missing) and the log is rewritten whole.
    copies : int >= 1
        Augmented versions per file.
    config : AugmentConfig
        The waveform effects with their probabilities and ranges (SpecAugment and mixup, which
        act in training, are ignored). Clip lengths are kept apart from speed and tempo changes.
    seed : int
        A copy's effects depend only on ``seed``, the file's relative path and the copy number.
    include_originals : bool
        Also copy the original files, so ``out_dir`` is a ready training corpus.
    sample_rate : int
        Hz of the written 16-bit WAV files.
    progress : bool

    Returns
    -------
    dict
        ``n_files``, ``n_written`` (new files this call), ``n_skipped`` (unreadable inputs, with
        reasons in ``errors``), ``log`` (path of the record).

    Raises
    ------
    ValueError
        ``in_dir`` is not a folder or holds no audio, ``copies`` < 1, or ``out_dir`` lies in ``in_dir``.
    NoiseError
        A background-noise path of the config is unusable.
    """
    in_dir, out_dir = Path(in_dir).resolve(), Path(out_dir).resolve()
    if not in_dir.is_dir():
        raise ValueError(f"{in_dir}: not a folder")
    if copies < 1:
        raise ValueError(f"copies={copies}: need at least 1")
    if out_dir == in_dir or in_dir in out_dir.parents:
        raise ValueError(f"{out_dir}: the output folder must not be inside the input folder {in_dir}")
    files = sorted(p for p in in_dir.rglob("*") if is_audio_file(p))
    if not files:
        raise ValueError(f"{in_dir}: no audio files")
    augment = WaveformAugment(config, sample_rate)
    records, errors, written = [], [], 0
    for path in tqdm(files, desc="augment", unit="file", disable=not progress):
        rel = path.relative_to(in_dir)
        try:
            samples = load_audio(path, sample_rate)
        except AudioError as e:
            errors.append({"path": str(rel), "error": e.reason})
            continue
        if include_originals and not (out_dir / rel).exists():
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out_dir / rel)
            written += 1
        for k in range(1, copies + 1):
            target = (out_dir / rel).with_name(f"{rel.stem}-aug{k}.wav")
            item_seed = [seed, zlib.crc32(str(rel).encode()), k]
            augmented, applied = augment(samples, item_seed)
            if not target.exists():
                write_wav(target, augmented, sample_rate)
                written += 1
            records.append({"source": str(rel), "output": str(target.relative_to(out_dir)), "copy": k,
                            "seed": item_seed, "effects": applied})
    log = atomic_write_text(out_dir / LOG_NAME, "".join(json.dumps(r) + "\n" for r in records))
    return {"n_files": len(files), "n_written": written, "n_skipped": len(errors), "errors": errors, "log": str(log)}
