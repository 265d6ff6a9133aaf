"""Tests on the real corpora in ../shared/data; each skips with a message when it is absent."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiorec.audio import SAMPLE_RATE, decode_audio, load_audio
from audiorec.data.corpora import import_corpus
from audiorec.data.splits import loso_folds, speaker_split
from conftest import hash_tree, shared_dataset

SC12_LABELS = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_"}


def import_read_only(name: str):
    """Import a shared corpus and check that not one of its files changed."""
    root = shared_dataset(name)
    before = hash_tree(root)
    result = import_corpus(root, progress=False)
    assert hash_tree(root) == before, f"importing {root} modified files"
    return root, result


@pytest.fixture(scope="module")
def fsdd():
    return import_read_only("fsdd")


@pytest.fixture(scope="module")
def speech_commands():
    return import_read_only("speech_commands_v2_test")


def test_fsdd_import(fsdd):
    root, result = fsdd
    assert result.layout == "fsdd"
    assert result.rejected == [], result.rejected[:5]
    assert len(result.utterances) == 3000
    assert {u.speaker for u in result.utterances} == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    assert Counter(u.label for u in result.utterances) == {str(d): 300 for d in range(10)}
    assert {u.sample_rate for u in result.utterances} == {8_000}
    assert all(0.1 <= u.duration <= 2.5 for u in result.utterances)
    # Labels and speakers agree with the file names.
    for u in result.utterances[::97]:
        digit, speaker, _ = Path(u.path).stem.split("_")
        assert (u.label, u.speaker) == (digit, speaker)


def test_fsdd_loso_has_six_disjoint_folds(fsdd):
    _, result = fsdd
    folds = list(loso_folds(result.utterances))
    assert len(folds) == 6
    for speaker, split in folds:
        assert {u.speaker for u in split.test} == {speaker} and len(split.test) == 500
        assert speaker not in split.speakers("train") | split.speakers("val")


def test_speech_commands_import(speech_commands):
    root, result = speech_commands
    assert result.layout == "folders"
    reasons = Counter(reason.split(" (")[0] for _, reason in result.rejected)
    assert result.rejected == [], f"{len(result.rejected)} files excluded: {dict(reasons)}, e.g. {result.rejected[:3]}"
    assert len(result.utterances) == 4890
    assert {u.label for u in result.utterances} == SC12_LABELS
    assert {u.sample_rate for u in result.utterances} == {16_000}


def test_speech_commands_speakers(speech_commands):
    root, result = speech_commands
    silence = [u for u in result.utterances if u.label == "_silence_"]
    assert silence and all(u.speaker is None for u in silence)
    others = [u for u in result.utterances if u.label != "_silence_"]
    assert all(u.speaker is not None and re.fullmatch(r"[0-9a-f]{8}", u.speaker) for u in others)
    # The speaker is the hash before _nohash_, also for _unknown_ files named <word>_<hash>_nohash_<n>.
    for u in others:
        assert Path(u.path).stem.split("_nohash_")[0].split("_")[-1] == u.speaker
    # Every distinct hash in the names of the kept files is one speaker (the README says about 264;
    # the files hold 239 distinct hashes).
    kept = {Path(u.path).name for u in result.utterances}
    hashes = {m[1] for p in root.rglob("*.flac") if p.name in kept and (m := re.search(r"([0-9a-f]{8})_nohash_", p.name))}
    speakers = {u.speaker for u in others}
    assert speakers == hashes
    assert 200 <= len(speakers) <= 300


def test_speech_commands_speaker_split(speech_commands):
    _, result = speech_commands
    split = speaker_split(result.utterances, val_fraction=0.1, test_fraction=0.1)
    parts = {"train": split.speakers("train"), "val": split.speakers("val"), "test": split.speakers("test")}
    assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"] and not parts["val"] & parts["test"]
    assert len(split.train) + len(split.val) + len(split.test) == len(result.utterances)
    # Roughly 80/10/10 of the clips, with silence spread over all three parts.
    for part, share in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert abs(len(getattr(split, part)) / len(result.utterances) - share) < 0.05, part
        assert any(u.label == "_silence_" for u in getattr(split, part)), part
    # Deterministic: the same split again.
    again = speaker_split(list(reversed(result.utterances)), 0.1, 0.1)
    assert {u.path for u in again.test} == {u.path for u in split.test}


def test_speech_commands_files_decode_at_16k():
    root = shared_dataset("speech_commands_v2_test")
    for path in sorted((root / "yes").glob("*.flac"))[:5] + sorted((root / "_silence_").glob("*.flac"))[:2]:
        y = load_audio(path)
        assert y.dtype == np.float32 and len(y) == soundfile.info(str(path)).frames <= SAMPLE_RATE


def read_sphere_header(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        assert f.readline().strip() == b"NIST_1A"
        header_size = int(f.readline())
        fields = {"header_size": str(header_size)}
        for line in f.read(header_size - f.tell()).decode("ascii").splitlines():
            parts = line.split()
            if len(parts) == 3:
                fields[parts[0]] = parts[2]
    return fields


def test_an4_sphere_files_load_at_16k():
    root = shared_dataset("an4")
    test_ids = (root / "etc" / "an4_test.fileids").read_text().split()
    assert len(test_ids) == 130
    for file_id in test_ids[::13]:
        path = root / "wav" / f"{file_id}.sph"
        header = read_sphere_header(path)
        decoded = decode_audio(path)
        assert decoded.sample_rate == int(header["sample_rate"]) == 16_000
        assert decoded.samples.shape == (1, int(header["sample_count"]))
        # The samples are the stored 16-bit integers, in the header's byte order, scaled to [-1, 1].
        dtype = "<i2" if header.get("sample_byte_format", "01") == "01" else ">i2"
        raw = np.fromfile(path, dtype=dtype, offset=int(header["header_size"]))
        np.testing.assert_array_equal(np.round(decoded.samples[0] * 32768).astype(np.int32), raw.astype(np.int32))
        y = load_audio(path)
        assert y.dtype == np.float32 and y.ndim == 1 and len(y) == int(header["sample_count"])


def test_an4_sphere_folder_imports_read_only():
    """wav/an4test_clstk holds one folder per speaker: imported folder-per-label, every one of
    the 130 SPHERE files decodes at 16 kHz and none is modified."""
    root = shared_dataset("an4") / "wav" / "an4test_clstk"
    before = hash_tree(root)
    result = import_corpus(root, layout="folders", progress=False)
    assert hash_tree(root) == before
    assert result.rejected == [], result.rejected[:3]
    assert len(result.utterances) == 130
    assert {u.sample_rate for u in result.utterances} == {16_000}
    assert {u.label for u in result.utterances} == {d.name for d in root.iterdir() if d.is_dir()}
