"""Benchmark: what PCEN does to a word, frame by frame, against the frame energy.

For one FSDD clip (fitted to 1 s as in training), prints every fourth frame of the word: the
PCEN output averaged over the 40 mel bands (``features.kind=pcen``, default constants) and the
frame's mel energy in dB. The README's PCEN bullet quotes it for ``6_nicolas_3``: the closing
"ks" of "six" comes out far below the opening "s" at the same energy, because the gain control
divides by the loud vowel before it. Writes ``benchmarks/results/pcen_frames.{json,md}``.

Usage::

    .venv/bin/python benchmarks/pcen_frames.py [--clip 6_nicolas_3]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from _common import DATA, RESULTS, save_results

from audiorec.audio import fit_to_length, load_audio
from audiorec.features import PCEN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="6_nicolas_3", help="FSDD file name without .wav")
    args = parser.parse_args()
    pcen = PCEN()
    x = torch.from_numpy(fit_to_length(load_audio(DATA / "fsdd" / f"{args.clip}.wav"), 16_000))[None]
    with torch.no_grad():
        out = pcen(x)[0].mean(0).numpy()
        energy_db = 10 * np.log10(pcen.log_mel.mel_power(x)[0].sum(0).numpy() + 1e-12)
    word = np.flatnonzero(energy_db > energy_db.max() - 60)
    frames = [{"frame": int(t), "time_s": round(t * pcen.log_mel.hop_length / 16_000, 2),
               "pcen_mean": round(float(out[t]), 2), "energy_db": round(float(energy_db[t]), 1)}
              for t in range(word[0], word[-1] + 1, 4)]
    rows = ["| frame | time (s) | PCEN, mean over bands | frame energy (dB) |", "|---|---|---|---|"]
    rows += [f"| {f['frame']} | {f['time_s']} | {f['pcen_mean']} | {f['energy_db']} |" for f in frames]
    md = f"PCEN of FSDD `{args.clip}` (`.venv/bin/python benchmarks/pcen_frames.py --clip {args.clip}`)\n\n" + "\n".join(rows) + "\n"
    save_results(RESULTS / "pcen_frames", {"clip": args.clip, "frames": frames}, md)


if __name__ == "__main__":
    main()
