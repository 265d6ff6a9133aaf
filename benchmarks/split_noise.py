"""Split a background recording in two: one part to train with, the other to build test streams on.

A user who deploys a detector in one room can record a minute of that room's noise. Whether the
detector gains from hearing it in training can only be measured honestly on the part of the
recording that training never saw, the matched-condition protocol of noisy speech recognition
(Aurora-2, Hirsch & Pearce 2000: test set A adds the noise types of multi-condition training). This
script cuts the recording at ``--split`` (a fraction of its length) into ``OUT_DIR/NAME_train.wav``
(the start) and ``OUT_DIR/NAME_test.wav`` (the rest), both 16 kHz mono.

Usage::

    .venv/bin/python benchmarks/split_noise.py ../shared/data/noise/running_tap.wav --out-dir runs/tap

The original is only read; each part is written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audiorec.audio import SAMPLE_RATE, load_audio, write_wav


def split_noise(path: str | Path, out_dir: str | Path, split: float = 0.5) -> tuple[Path, Path]:
    """Write the first ``split`` of a recording and the rest as two 16 kHz WAV files.

    Parameters
    ----------
    path : str or Path
        Any recording :func:`audiorec.audio.load_audio` reads; it is resampled to 16 kHz mono.
    out_dir : str or Path
        Folder for ``STEM_train.wav`` and ``STEM_test.wav`` (created).
    split : float in (0, 1)
        Fraction of the recording, from its start, that goes to the training part.

    Returns
    -------
    (Path, Path)
        The training part and the test part.

    Raises
    ------
    ValueError
        If ``split`` is not strictly between 0 and 1, or either part would be shorter than 1 s
        (too short to draw a one-second training window or loop a stream over).
    """
    if not 0.0 < split < 1.0:
        raise ValueError(f"split must be strictly between 0 and 1, got {split}")
    waveform = load_audio(path, SAMPLE_RATE)
    cut = int(round(len(waveform) * split))
    if min(cut, len(waveform) - cut) < SAMPLE_RATE:
        raise ValueError(f"{path}: {len(waveform) / SAMPLE_RATE:.1f} s cut at {split} leaves a part under 1 s")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    train, test = out_dir / f"{stem}_train.wav", out_dir / f"{stem}_test.wav"
    write_wav(train, waveform[:cut], SAMPLE_RATE)
    write_wav(test, waveform[cut:], SAMPLE_RATE)
    return train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("noise", help="the background recording to split (only read)")
    parser.add_argument("--out-dir", required=True, help="folder for NAME_train.wav and NAME_test.wav")
    parser.add_argument("--split", type=float, default=0.5,
                        help="fraction of the recording, from its start, for training (default 0.5)")
    args = parser.parse_args()
    for part in split_noise(args.noise, args.out_dir, args.split):
        print(part)


if __name__ == "__main__":
    main()
