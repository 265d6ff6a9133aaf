"""benchmarks/split_noise.py: a background recording cut into a training part and a test part."""

from __future__ import annotations

import numpy as np
import pytest

from audiorec.audio import load_audio, write_wav
from conftest import load_benchmark


@pytest.fixture(scope="module")
def split_noise():
    return load_benchmark("split_noise")


def test_parts_are_the_start_and_the_rest_and_the_original_is_kept(tmp_path, split_noise):
    # 1 s at 0.1 then 3 s at 0.3: a 0.25 split must cut exactly at the step
    samples = np.concatenate([np.full(16000, 0.1), np.full(48000, 0.3)]).astype(np.float32)
    original = write_wav(tmp_path / "room.wav", samples)
    before = original.read_bytes()
    train, test = split_noise.split_noise(original, tmp_path / "out", split=0.25)
    assert (train.name, test.name) == ("room_train.wav", "room_test.wav")
    train_audio, test_audio = load_audio(train), load_audio(test)
    assert train_audio.shape == (16000,) and test_audio.shape == (48000,)
    assert np.allclose(train_audio, 0.1, atol=1e-3) and np.allclose(test_audio, 0.3, atol=1e-3)
    assert original.read_bytes() == before


@pytest.mark.parametrize("split, match", [(0.0, "strictly between"), (1.0, "strictly between"),
                                          (0.1, r"room\.wav.*under 1 s")])
def test_bad_split_is_refused(tmp_path, split_noise, split, match):
    original = write_wav(tmp_path / "room.wav", np.zeros(32000, dtype=np.float32))
    with pytest.raises(ValueError, match=match):
        split_noise.split_noise(original, tmp_path / "out", split=split)
    assert not (tmp_path / "out").exists()
