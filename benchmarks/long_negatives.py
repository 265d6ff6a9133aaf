"""Long `_unknown_` recordings from short utterances: each speaker's utterances joined into one file.

A user who records ten minutes of TV or conversation as ``_unknown_`` gives training a few long
files, not hundreds of one-second clips. To measure what training does with such files
(``augment.random_window``), this script builds them from a manifest of ``audiorec data
commands``: the ``_unknown_`` utterances of each speaker are decoded at 16 kHz, concatenated in
manifest order (no gap: each AN4 utterance has its own leading and trailing silence) and written as
``OUT_DIR/SPEAKER.wav``; the manifest written beside them keeps every other row (the commands) as
it is and lists the joined files as ``_unknown_`` of their speaker.

Usage::

    audiorec data commands ../shared/data/an4 --subset train \\
        --labels yes,no,up,down,left,right,on,off,stop,go --out runs/neg/an4_train.jsonl
    .venv/bin/python benchmarks/long_negatives.py runs/neg/an4_train.jsonl \\
        --out-dir runs/neg/an4_long --manifest runs/neg/an4_long.jsonl

The originals are only read; each joined file and the manifest are written atomically.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from audiorec.audio import SAMPLE_RATE, load_audio, write_wav
from audiorec.data.manifest import Utterance, read_manifest, write_manifest

UNKNOWN = "_unknown_"


def join_per_speaker(rows: list[Utterance], out_dir: Path) -> list[Utterance]:
    """Join each speaker's ``_unknown_`` utterances into one 16 kHz file under ``out_dir``.

    Long background recordings as the negative class follow Speech Commands (Warden 2018, "Speech
    Commands: A Dataset for Limited-Vocabulary Speech Recognition", section 4: its
    ``_background_noise_`` files, from which training draws one-second windows).

    Parameters
    ----------
    rows : list of Utterance
        A command manifest; rows whose label is not ``_unknown_`` are returned unchanged.
    out_dir : Path
        Folder for ``SPEAKER.wav`` (created).

    Returns
    -------
    list of Utterance
        The non-``_unknown_`` rows, then one ``_unknown_`` row per speaker (sorted by speaker),
        whose ``duration`` is the joined file's length in seconds and ``sample_rate`` 16000 Hz.

    Raises
    ------
    ValueError
        If an ``_unknown_`` row has no speaker (there is nothing to join it with).
    """
    by_speaker: dict[str, list[Utterance]] = defaultdict(list)
    kept = []
    for row in rows:
        if row.label != UNKNOWN:
            kept.append(row)
        elif row.speaker is None:
            raise ValueError(f"{row.path}: an _unknown_ utterance without a speaker cannot be joined")
        else:
            by_speaker[row.speaker].append(row)
    out_dir.mkdir(parents=True, exist_ok=True)
    joined = []
    for speaker in tqdm(sorted(by_speaker), desc="joining", unit="speaker"):
        samples = np.concatenate([load_audio(row.path) for row in by_speaker[speaker]])
        path = write_wav(out_dir / f"{speaker}.wav", samples, SAMPLE_RATE)
        subset = by_speaker[speaker][0].subset
        joined.append(Utterance(path=str(path.resolve()), duration=len(samples) / SAMPLE_RATE,
                                sample_rate=SAMPLE_RATE, speaker=speaker, label=UNKNOWN, subset=subset))
    return kept + joined


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="a command manifest (audiorec data commands)")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for the joined SPEAKER.wav files")
    parser.add_argument("--manifest", dest="out_manifest", type=Path, required=True,
                        help="the manifest to write: the commands as they are and the joined files")
    args = parser.parse_args()
    rows = join_per_speaker(read_manifest(args.manifest), args.out_dir)
    write_manifest(args.out_manifest, rows)
    unknown = [r for r in rows if r.label == UNKNOWN]
    print(f"{len(unknown)} joined _unknown_ recordings, {sum(r.duration for r in unknown) / 60:.1f} min in all; "
          f"{len(rows) - len(unknown)} other rows kept; wrote {args.out_manifest}")


if __name__ == "__main__":
    main()
