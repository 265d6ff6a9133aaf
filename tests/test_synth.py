"""The espeak-ng synthetic corpus: layout, names, levels, and a second call that keeps files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiorec.data.corpora import import_corpus
from audiorec.data.synth import SynthError, speak, synthesize_commands
from conftest import hash_tree


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_small") / "corpus"
    return synthesize_commands(root, commands=("go", "stop"), unknown_words=("bed", "cat"), n_speakers=3, takes=2,
                               n_silence=4, seed=5, progress=False)


def test_layout_and_names(small_corpus):
    result = import_corpus(small_corpus, progress=False)
    assert result.layout == "folders" and result.rejected == []
    counts = result.summary()["labels"]
    assert counts == {"go": 6, "stop": 6, "_unknown_": 6, "_silence_": 4}
    speakers = {u.speaker for u in result.utterances if u.label == "go"}
    assert len(speakers) == 3
    # _unknown_ files are <word>_<speaker>_nohash_<take>: the speaker parses out as for the commands.
    unknown = [u for u in result.utterances if u.label == "_unknown_"]
    assert {u.speaker for u in unknown} == speakers
    assert all(Path(u.path).name.split("_")[0] in {"bed", "cat"} for u in unknown)
    assert all(u.speaker is None for u in result.utterances if u.label == "_silence_")
    assert {u.sample_rate for u in result.utterances} == {16_000}


def test_levels(small_corpus):
    for path in sorted((small_corpus / "go").glob("*.wav")):
        y, rate = soundfile.read(path)
        assert rate == 16_000
        assert 0.6 < np.max(np.abs(y)) < 0.8  # peak-normalised to about -3 dBFS, plus faint noise
        assert 0.1 < len(y) / rate < 2.0
    for path in sorted((small_corpus / "_silence_").glob("*.wav")):
        y, _ = soundfile.read(path)
        assert len(y) == 16_000
        assert 0 < np.sqrt(np.mean(y**2)) < 0.1


def test_second_call_keeps_existing_files(small_corpus):
    before = hash_tree(small_corpus)
    synthesize_commands(small_corpus, commands=("go", "stop"), unknown_words=("bed", "cat"), n_speakers=3, takes=2,
                        n_silence=4, seed=5, progress=False)
    assert hash_tree(small_corpus) == before
    assert not [p for p in small_corpus.rglob(".*")]  # no temporary files left


def test_speak_and_errors(tmp_path, monkeypatch):
    y = speak("hello", "en-us", 160, 50)
    assert y.dtype == np.float32 and y.ndim == 1 and len(y) > 1_600
    slow = speak("hello", "en-us", 80, 50)
    assert len(slow) > 1.3 * len(y)  # the rate in words per minute is passed on
    with pytest.raises(ValueError, match="n_speakers"):
        synthesize_commands(tmp_path, n_speakers=10_000, progress=False)


def test_missing_espeak_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on this PATH
    with pytest.raises(SynthError, match="espeak-ng"):
        speak("hello", "en-us", 160, 50)


def test_speaker_split_holds_out_whole_voices(small_corpus):
    """Every clip of a voice, its _unknown_ words included, lands in one part of the split."""
    from audiorec.data.splits import speaker_split

    def voice(path: str) -> str:
        stem = Path(path).stem.split("_nohash_")[0]
        return stem.split("_", 1)[1] if Path(path).parent.name == "_unknown_" else stem

    result = import_corpus(small_corpus, progress=False)
    split = speaker_split(result.utterances, val_fraction=0.34, test_fraction=0.34)
    voices = {part: {voice(u.path) for u in getattr(split, part) if u.label != "_silence_"}
              for part in ("train", "val", "test")}
    assert all(voices.values())
    assert not voices["train"] & voices["val"]
    assert not voices["train"] & voices["test"]
    assert not voices["val"] & voices["test"]
