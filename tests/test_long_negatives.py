"""benchmarks/long_negatives.py: each speaker's ``_unknown_`` utterances joined into one recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiorec.audio import load_audio, write_wav
from audiorec.data.manifest import Utterance
from conftest import load_benchmark


@pytest.fixture(scope="module")
def long_negatives():
    return load_benchmark("long_negatives")


def _clip(path: Path, value: float, seconds: float, label: str, speaker: str | None) -> Utterance:
    samples = np.full(int(16000 * seconds), value, dtype=np.float32)
    write_wav(path, samples)
    return Utterance(path=str(path), duration=seconds, sample_rate=16000, speaker=speaker, label=label)


def test_joins_each_speakers_unknown_in_order_and_keeps_commands(tmp_path, long_negatives):
    rows = [
        _clip(tmp_path / "a1.wav", 0.1, 0.5, "_unknown_", "a"),
        _clip(tmp_path / "yes.wav", 0.3, 1.0, "yes", "a"),
        _clip(tmp_path / "b1.wav", 0.4, 1.0, "_unknown_", "b"),
        _clip(tmp_path / "a2.wav", 0.2, 1.5, "_unknown_", "a"),
    ]
    out = long_negatives.join_per_speaker(rows, tmp_path / "long")
    assert [(r.label, r.speaker) for r in out] == [("yes", "a"), ("_unknown_", "a"), ("_unknown_", "b")]
    assert out[0] == rows[1]
    joined_a = load_audio(out[1].path)
    assert out[1].duration == pytest.approx(2.0) and len(joined_a) == 32000
    # a1's samples come first, then a2's: the manifest order, nothing else mixed in
    assert np.allclose(joined_a[:8000], 0.1, atol=1e-3) and np.allclose(joined_a[8000:], 0.2, atol=1e-3)
    assert np.allclose(load_audio(out[2].path), 0.4, atol=1e-3)
    assert load_audio(rows[0].path).shape == (8000,)  # originals untouched


def test_unknown_without_speaker_is_refused(tmp_path, long_negatives):
    rows = [_clip(tmp_path / "x.wav", 0.1, 0.5, "_unknown_", None)]
    with pytest.raises(ValueError, match="x.wav.*without a speaker"):
        long_negatives.join_per_speaker(rows, tmp_path / "long")
