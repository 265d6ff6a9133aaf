"""Speaker-disjoint splits and leave-one-speaker-out folds."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from audiorec.data.manifest import Utterance
from audiorec.data.splits import loso_folds, speaker_split

N_SPEAKERS, PER_SPEAKER, N_SPEAKERLESS = 60, 5, 40


def corpus() -> list[Utterance]:
    rng = random.Random(1)
    utts = [
        Utterance(f"/c/{label}/spk{s:03d}_nohash_{k}.wav", 1.0, 16_000, speaker=f"spk{s:03d}", label=label)
        for s in range(N_SPEAKERS)
        for k, label in enumerate(rng.choice(["yes", "no", "up"]) for _ in range(PER_SPEAKER))
    ]
    utts += [Utterance(f"/c/_silence_/{i}.wav", 1.0, 16_000, label="_silence_") for i in range(N_SPEAKERLESS)]
    return utts


def parts(split):
    return {"train": split.train, "val": split.val, "test": split.test}


def test_speaker_split_is_disjoint_and_complete():
    utts = corpus()
    split = speaker_split(utts, val_fraction=0.1, test_fraction=0.2)
    speakers = {name: {u.speaker for u in part if u.speaker} for name, part in parts(split).items()}
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    assert speakers["train"] | speakers["val"] | speakers["test"] == {u.speaker for u in utts if u.speaker}
    # Every utterance lands in exactly one part.
    paths = Counter(u.path for part in parts(split).values() for u in part)
    assert set(paths) == {u.path for u in utts} and set(paths.values()) == {1}
    assert split.speakers("test") == speakers["test"]
    # Fractions are of speaker groups (60 speakers + 40 speakerless files = 100 groups).
    n_groups = N_SPEAKERS + N_SPEAKERLESS
    groups = {name: {u.group for u in part} for name, part in parts(split).items()}
    assert len(groups["test"]) == round(0.2 * n_groups)
    assert len(groups["val"]) == round(0.1 * n_groups)
    # Each speaker keeps all their clips together.
    for part in parts(split).values():
        counts = Counter(u.speaker for u in part if u.speaker)
        assert set(counts.values()) <= {PER_SPEAKER}


def test_speaker_split_is_deterministic_and_order_independent():
    utts = corpus()
    reference = speaker_split(utts, 0.1, 0.1)
    for seed in range(3):
        shuffled = utts[:]
        random.Random(seed).shuffle(shuffled)
        split = speaker_split(shuffled, 0.1, 0.1)
        for name in ("train", "val", "test"):
            assert sorted(u.path for u in getattr(split, name)) == sorted(u.path for u in getattr(reference, name))


def test_files_without_speaker_are_split_individually():
    split = speaker_split(corpus(), 0.2, 0.2)
    speakerless = {name: [u for u in part if u.speaker is None] for name, part in parts(split).items()}
    # 40 files, each its own group: they spread over the parts rather than moving as one block.
    assert sum(len(v) for v in speakerless.values()) == N_SPEAKERLESS
    assert sum(1 for v in speakerless.values() if v) >= 2
    assert 0 < len(speakerless["train"]) < N_SPEAKERLESS


def test_explicit_test_speakers():
    utts = corpus()
    split = speaker_split(utts, val_fraction=0.1, test_speakers=["spk007", "spk042"])
    assert {u.speaker for u in split.test} == {"spk007", "spk042"}
    assert len(split.test) == 2 * PER_SPEAKER
    assert not split.speakers("val") & {"spk007", "spk042"}
    assert not split.speakers("train") & {"spk007", "spk042"}
    assert len(split.train) + len(split.val) + len(split.test) == len(utts)


def test_unknown_test_speaker_is_named():
    with pytest.raises(ValueError, match="nobody"):
        speaker_split(corpus(), test_speakers=["spk001", "nobody"])


@pytest.mark.parametrize("kwargs", [dict(val_fraction=1.0), dict(test_fraction=-0.1), dict(val_fraction=1.5)])
def test_fraction_out_of_range(kwargs):
    with pytest.raises(ValueError, match="fraction"):
        speaker_split(corpus(), **kwargs)


def test_small_corpus_keeps_training_data():
    utts = [Utterance(f"/c/{s}_{k}.wav", 1.0, 16_000, speaker=s, label="x") for s in "abc" for k in range(2)]
    split = speaker_split(utts, 0.1, 0.1)
    assert len(split.speakers("train")) == 1 and len(split.speakers("val")) == 1 and len(split.speakers("test")) == 1
    one = [u for u in utts if u.speaker == "a"]
    with pytest.raises(ValueError, match="no training data"):
        speaker_split(one, 0.1, 0.1, test_speakers=["a"])


def test_loso_folds_one_per_speaker():
    utts = [u for u in corpus() if u.speaker in {f"spk{s:03d}" for s in range(6)}]
    folds = list(loso_folds(utts, val_fraction=0.2))
    assert [speaker for speaker, _ in folds] == sorted({u.speaker for u in utts})
    for speaker, split in folds:
        assert {u.speaker for u in split.test} == {speaker}
        assert split.test == [u for u in utts if u.speaker == speaker]
        assert speaker not in split.speakers("train") | split.speakers("val")
        assert not split.speakers("train") & split.speakers("val")
        assert len(split.val) > 0
        assert len(split.train) + len(split.val) + len(split.test) == len(utts)


def test_speakers_and_speakerless_files_each_get_their_share():
    """Speech Commands' _silence_ files must not crowd speakers out of validation or test."""
    split = speaker_split(corpus(), val_fraction=0.1, test_fraction=0.1)
    for part in ("val", "test"):
        utts = getattr(split, part)
        n_speakers = len({u.speaker for u in utts if u.speaker is not None})
        n_files = sum(u.speaker is None for u in utts)
        assert n_speakers == round(0.1 * N_SPEAKERS), part
        assert n_files == round(0.1 * N_SPEAKERLESS), part
