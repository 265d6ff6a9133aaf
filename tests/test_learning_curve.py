"""benchmarks/learning_curve.py: cutting a run's training split by speaker."""

from __future__ import annotations

import json

import pytest

from conftest import load_benchmark


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture
def run(tmp_path):
    """A run folder as ``audiorec train`` leaves it: 40 speakers x 3 clips, 20 silence clips and
    5 extra-train clips in training; 2 validation speakers."""
    clip = {"duration": 1.0, "sample_rate": 16000}
    train = [{"path": f"/c/{s}_{i}.wav", "label": "yes", "speaker": f"s{s:02d}", **clip} for s in range(40) for i in range(3)]
    train += [{"path": f"/c/_silence_/{i}.wav", "label": "_silence_", **clip} for i in range(20)]
    extra = [{"path": f"/extra/{i}.wav", "label": "_unknown_", "speaker": f"x{i}", **clip} for i in range(5)]
    val = [{"path": f"/v/{s}.wav", "label": "no", "speaker": f"v{s}", **clip} for s in range(2)]
    root = tmp_path / "run"
    (root / "splits").mkdir(parents=True)
    _write(root / "splits" / "train.jsonl", train + extra)
    _write(root / "splits" / "val.jsonl", val)
    _write(tmp_path / "extra.jsonl", extra)
    (root / "config.yaml").write_text(f"data:\n  extra_train: {tmp_path / 'extra.jsonl'}\n")
    return root


def test_a_fraction_keeps_that_share_of_speakers_nested_with_validation_and_without_extra_clips(run, tmp_path):
    curve = load_benchmark("learning_curve")
    kept = {}
    for fraction in (0.25, 0.5, 1.0):
        out = tmp_path / f"m{fraction}.jsonl"
        n = curve.fraction_manifest(run, fraction, out)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        trained = [r for r in rows if not r["path"].startswith("/v/")]
        assert n == len(trained)
        assert [(r["path"], r["label"], r["speaker"]) for r in rows if r["path"].startswith("/v/")] == [
            (f"/v/{s}.wav", "no", f"v{s}") for s in range(2)]
        assert not [r for r in rows if r["path"].startswith("/extra/")]
        speakers = {r["speaker"] for r in trained if r.get("speaker")}
        assert len(speakers) == round(fraction * 40)
        assert sum(r["label"] == "_silence_" for r in trained) == round(fraction * 20)
        # every clip of a kept speaker is kept
        assert len(trained) == 3 * len(speakers) + round(fraction * 20)
        kept[fraction] = {r["path"] for r in trained}
    assert kept[0.25] < kept[0.5] < kept[1.0]
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_a_fraction_outside_zero_to_one_is_refused(run, tmp_path, fraction):
    with pytest.raises(ValueError, match=f"--fraction {fraction}"):
        load_benchmark("learning_curve").fraction_manifest(run, fraction, tmp_path / "m.jsonl")


def test_extra_clips_given_as_a_folder_are_refused_by_name(run, tmp_path):
    (run / "config.yaml").write_text(f"data:\n  extra_train: {tmp_path / 'more_speakers'}\n")
    with pytest.raises(ValueError, match="more_speakers is a folder"):
        load_benchmark("learning_curve").fraction_manifest(run, 0.5, tmp_path / "m.jsonl")
