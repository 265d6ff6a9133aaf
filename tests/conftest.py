"""Shared fixtures: audio file writers, the shared-data location, a tiny synthetic corpus and
one short training run that several tests inspect.

The synthetic corpus and the training run are session-scoped, so espeak-ng and Lightning run
once per test session.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

# Two cores are shared with whatever else runs; with the default two intra-op threads a busy
# machine makes small CPU convolutions twenty times slower (threads spin-waiting on each
# other). One thread keeps the training tests quick and their time predictable.
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Overrides that make a training run take seconds: 3 epochs of a two-stage CNN on CPU.
QUICK_OVERRIDES = (
    "train.max_epochs=3",
    "model.channels=[8,16]",
    "data.batch_size=16",
    "train.accelerator=cpu",
)
SYNTH_COMMANDS = ("yes", "no", "up")
SYNTH_SPEAKERS = 8
SYNTH_TAKES = 2


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """Import ``benchmarks/NAME.py`` as a module (the folder is not a package; its scripts import
    ``_common`` as a sibling, so the folder goes on ``sys.path`` for the import)."""
    import importlib

    if str(BENCHMARKS) not in sys.path:
        sys.path.append(str(BENCHMARKS))
    return importlib.import_module(name)


def shared_dataset(name: str) -> Path:
    """The folder ``../shared/data/<name>``, or skip the test when it is absent (CI has it; a bare checkout may not)."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data {path} is absent (tests using ../shared/data/{name} need it)")
    return path


def chromium_path() -> str:
    """The system Chromium, or skip the test (``make test`` installs it through scripts/install-system-deps.sh)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("Chromium is absent: run scripts/install-system-deps.sh (Debian package 'chromium') to "
                "test pages in a real browser")


def run_without_train_extra(body: str) -> subprocess.CompletedProcess:
    """Run Python ``body`` in a subprocess where importing torch or anything else of the [train]
    extra fails (as after ``pip install audiorec`` without extras); stdout and stderr captured.
    ``BLOCKED`` (the module names) is defined for the body."""
    from audiorec.cli import TRAIN_EXTRA_MODULES

    blocked = tuple(sorted(TRAIN_EXTRA_MODULES))
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        BLOCKED = {blocked!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (hidden in this test)", name=name)
        sys.meta_path.insert(0, Block())
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def sine(freq_hz: float, sample_rate: int, duration_s: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    """A float64 sine of ``duration_s`` seconds."""
    t = np.arange(round(sample_rate * duration_s)) / sample_rate
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def write_sine(path: Path, freq_hz: float = 1000.0, sample_rate: int = 16_000, duration_s: float = 1.0,
               amplitude: float = 0.5, **soundfile_kwargs) -> Path:
    """Write a mono sine with soundfile (format and subtype as keyword arguments)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, sine(freq_hz, sample_rate, duration_s, amplitude), sample_rate, **soundfile_kwargs)
    return path


def write_with_pyav(path: Path, container: str, codec: str, sample_rate: int, freqs_hz=(1000.0,),
                    duration_s: float = 1.0) -> Path:
    """Encode one sine per channel with FFmpeg through PyAV (M4A/AAC, WebM/Opus)."""
    import av

    layout = "mono" if len(freqs_hz) == 1 else "stereo"
    samples = np.stack([sine(f, sample_rate, duration_s, 0.4) for f in freqs_hz]).astype(np.float32)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout=layout)
        for start in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + 1024]), format="fltp", layout=layout
            )
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def dominant_frequency(y: np.ndarray, sample_rate: int) -> float:
    """Frequency in Hz of the largest magnitude in the spectrum of a Hann-windowed signal."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sample_rate)[np.argmax(spectrum)])


def hash_tree(root: Path) -> dict[str, tuple[str, int]]:
    """SHA-256 and mtime (ns) of every file under ``root``, keyed by relative path."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory) -> Path:
    """A tiny espeak-ng corpus: 3 commands x 8 voices x 2 takes, folder-per-label layout."""
    from audiorec.data.synth import synthesize_commands

    root = tmp_path_factory.mktemp("synth") / "corpus"
    return synthesize_commands(
        root, commands=SYNTH_COMMANDS, unknown_words=(), n_speakers=SYNTH_SPEAKERS,
        takes=SYNTH_TAKES, n_silence=0, progress=False,
    )


@pytest.fixture(scope="session")
def trained_run(synth_corpus, tmp_path_factory):
    """One short training run on :func:`synth_corpus`: ``(run_dir, metrics, overrides)``.

    Tests must not modify ``run_dir``; copy it first (see the resume tests).
    """
    from audiorec.config import load_config
    from audiorec.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "quick"
    overrides = list(QUICK_OVERRIDES)
    metrics = train(synth_corpus, run_dir, load_config(None, overrides), progress=False)
    return run_dir, metrics, overrides
