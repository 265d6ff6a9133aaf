"""A small spoken-command corpus synthesised with espeak-ng: the built-in default data set.

It lets ``audiorec quickstart`` and the tests train and evaluate a recognizer on a fresh machine
with no downloads. Speakers are espeak-ng accent x voice-variant pairs; each take varies the
speaking rate and pitch, and a little background noise is added. The layout is the one real
corpora use (``DIR/<label>/<speaker>_nohash_<take>.wav``), with Speech Commands' ``_unknown_``
(other words) and ``_silence_`` (noise only) classes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile
from tqdm import tqdm

from audiorec.audio import SAMPLE_RATE, resample, write_wav

COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")  # Warden 2018's ten
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2")


class SynthError(RuntimeError):
    """espeak-ng is missing or failed; the message says which command and why."""


def espeak_binary() -> str:
    """Path of the espeak-ng executable.

    Raises
    ------
    SynthError
        espeak-ng is not installed (``make install`` installs it on Debian).
    """
    path = shutil.which("espeak-ng")
    if path is None:
        raise SynthError("espeak-ng not found: install it with 'apt-get install espeak-ng' (make install does)")
    return path


def speak(text: str, voice: str, rate_wpm: int, pitch: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng and return mono float32 samples.

    Parameters
    ----------
    text : str
    voice : str
        espeak-ng voice, optionally with a variant (``en-us+f3``).
    rate_wpm : int
        Speaking rate in words per minute (espeak-ng ``-s``).
    pitch : int in [0, 99]
        espeak-ng ``-p``.
    sample_rate : int
        Hz of the returned signal (espeak-ng speaks at 22.05 kHz; it is resampled).

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]

    Raises
    ------
    SynthError
        espeak-ng is missing or exits with an error.
    """
    cmd = [espeak_binary(), "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout:
        raise SynthError(f"{' '.join(cmd)} failed: {proc.stderr.decode(errors='replace').strip() or 'no output'}")
    samples, rate = soundfile.read(io.BytesIO(proc.stdout), dtype="float32")
    return resample(samples, rate, sample_rate)


def synthesize_commands(
    out_dir: str | Path,
    commands: Sequence[str] = COMMANDS,
    unknown_words: Sequence[str] = UNKNOWN_WORDS,
    n_speakers: int = 40,
    takes: int = 2,
    n_silence: int = 60,
    noise_dbfs: float = -45.0,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write a synthetic command corpus in the folder-per-label layout.

    Parameters
    ----------
    out_dir : str or Path
        Created if missing. Existing files are kept, so a second call is fast.
    commands : sequence of str
        One label folder each.
    unknown_words : sequence of str
        Spoken into ``_unknown_`` (one word per speaker and take); empty to leave the class out.
    n_speakers : int
        Distinct accent x variant voices (at most ``len(ACCENTS) * len(VARIANTS)``).
    takes : int
        Recordings per speaker and command, each with another rate and pitch.
    n_silence : int
        One-second ``_silence_`` clips of background noise; 0 to leave the class out.
    noise_dbfs : float
        RMS level in dBFS of the noise added to every clip (clips are peak-normalised to -3 dBFS).
    seed : int
        Seeds voices' rates, pitches and noise.
    progress : bool

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    SynthError
        espeak-ng is missing or fails.
    ValueError
        ``n_speakers`` larger than the available voices.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    voices = [(a, v) for v in VARIANTS for a in ACCENTS]
    if n_speakers > len(voices):
        raise ValueError(f"n_speakers={n_speakers} but only {len(voices)} espeak-ng voices are used")
    order = rng.permutation(len(voices))[:n_speakers]
    jobs = []
    for k in order:
        accent, variant = voices[k]
        speaker = f"{accent}-{variant}"
        for take in range(takes):
            rate, pitch = int(rng.integers(110, 200)), int(rng.integers(25, 80))
            for word in commands:
                jobs.append((out_dir / word / f"{speaker}_nohash_{take}.wav", word, f"{accent}+{variant}", rate, pitch))
            if unknown_words:
                word = unknown_words[int(rng.integers(len(unknown_words)))]
                jobs.append((out_dir / "_unknown_" / f"{word}_{speaker}_nohash_{take}.wav", word, f"{accent}+{variant}", rate, pitch))
    noise_rms = 10 ** (noise_dbfs / 20)

    def write(job, noise_seed):
        path, word, voice, rate, pitch = job
        if path.exists():
            return
        samples = speak(word, voice, rate, pitch)
        samples = 0.7 * samples / max(float(np.max(np.abs(samples))), 1e-6)
        samples += np.random.default_rng(noise_seed).normal(0, noise_rms, len(samples)).astype(np.float32)
        write_wav(path, samples)

    with ThreadPoolExecutor(max_workers=4) as pool:
        seeds = rng.integers(0, 2**32, len(jobs))
        list(tqdm(pool.map(write, jobs, seeds), total=len(jobs), desc="synthesize", unit="clip", disable=not progress))
    for i in range(n_silence):
        path = out_dir / "_silence_" / f"noise{i:03d}.wav"
        if not path.exists():
            level = 10 ** (rng.uniform(-50, -25) / 20)
            white = rng.normal(0, 1, SAMPLE_RATE)
            # Alternate white noise with a random-walk "rumble" so silence is not one spectrum.
            noise = white if i % 2 else np.cumsum(white) / np.sqrt(np.arange(1, SAMPLE_RATE + 1))
            write_wav(path, (level * noise / np.std(noise)).astype(np.float32))
    return out_dir
