"""``audiorec augment``: augmented copies of a corpus, the record of effects, and re-import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiorec.cli import main
from audiorec.data.manifest import read_manifest
from audiorec.data.offline_augment import LOG_NAME, augment_corpus
from audiorec.augment import AugmentConfig
from conftest import hash_tree, write_sine

LABELS = ("left", "right")
SPEAKERS = ("aaaa1111", "bbbb2222")
KNOWN_EFFECTS = {"speed", "trim_edges", "time_shift", "pitch_shift", "tempo", "band_pass", "high_shelf", "echo", "reverb", "gain",
                 "loudness", "background_noise", "color_noise"}


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def corpus(tmp_path) -> Path:
    """2 labels x 2 speakers of sine 'words' in the folders layout, 0.8 s at 16 kHz."""
    root = tmp_path / "corpus"
    for i, label in enumerate(LABELS):
        for j, speaker in enumerate(SPEAKERS):
            write_sine(root / label / f"{speaker}_nohash_0.wav", 300.0 + 200 * i + 50 * j, duration_s=0.8,
                       amplitude=0.3, subtype="PCM_16")
    return root


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG_NAME).read_text(encoding="utf-8").splitlines()]


def test_augment_writes_copies_and_a_log_and_leaves_inputs_alone(corpus, tmp_path, capsys):
    out = tmp_path / "augmented"
    before = hash_tree(corpus)
    code, stdout, err = run_cli(capsys, "augment", corpus, out, "--copies", 2, "--quiet")
    assert code == 0, err
    assert hash_tree(corpus) == before  # inputs are never modified (content and mtime)
    assert "4 files, 12 written" in stdout

    sources = sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*.wav"))
    expected = set(sources)
    for rel in sources:
        stem = Path(rel).with_suffix("")
        expected |= {f"{stem}-aug1.wav", f"{stem}-aug2.wav"}
    written = {str(p.relative_to(out)) for p in out.rglob("*.wav")}
    assert written == expected
    for rel in sources:  # originals are copied as they are
        assert (out / rel).read_bytes() == (corpus / rel).read_bytes()

    records = read_log(out)
    assert len(records) == len(sources) * 2
    assert sorted((r["source"], r["copy"]) for r in records) == sorted((s, k) for s in sources for k in (1, 2))
    for record in records:
        source = Path(record["source"])
        assert record["output"] == str(source.with_name(f"{source.stem}-aug{record['copy']}.wav"))
        assert isinstance(record["seed"], list) and record["seed"][0] == 0
        assert isinstance(record["effects"], list) and record["effects"], "speed and time shift always apply"
        names = [e["effect"] for e in record["effects"]]
        assert set(names) <= KNOWN_EFFECTS and len(set(names)) == len(names)
        assert names[0] == "speed"  # p=1 by default, first in the chain
        # The copy is a 16-bit 16 kHz WAV whose length follows the recorded speed factor.
        info = soundfile.info(out / record["output"])
        assert info.samplerate == 16_000 and info.subtype == "PCM_16" and info.channels == 1
        rate = record["effects"][0]["rate"]
        assert abs(info.frames - soundfile.info(corpus / source).frames / rate) <= 2
        augmented, _ = soundfile.read(out / record["output"])
        original, _ = soundfile.read(corpus / source)
        assert len(augmented) != len(original) or not np.allclose(augmented, original, atol=1e-3)
    # Two copies of one file are drawn differently.
    by_source = {}
    for record in records:
        by_source.setdefault(record["source"], []).append(record["effects"])
    assert all(a != b for a, b in by_source.values())


def test_second_identical_run_writes_nothing_and_logs_the_same(corpus, tmp_path, capsys):
    out = tmp_path / "augmented"
    assert run_cli(capsys, "augment", corpus, out, "--copies", 2, "--quiet")[0] == 0
    first_files = {k: v for k, v in hash_tree(out).items() if k != LOG_NAME}
    first_log = (out / LOG_NAME).read_text(encoding="utf-8")
    code, stdout, err = run_cli(capsys, "augment", corpus, out, "--copies", 2, "--quiet")
    assert code == 0, err
    assert "0 written" in stdout
    assert {k: v for k, v in hash_tree(out).items() if k != LOG_NAME} == first_files  # not even rewritten
    assert (out / LOG_NAME).read_text(encoding="utf-8") == first_log


def test_augmented_copies_are_the_same_for_the_same_seed(corpus, tmp_path, capsys):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 0), (b, 0), (c, 1)):
        assert run_cli(capsys, "augment", corpus, out, "--copies", 1, "--seed", seed, "--no-originals", "--quiet")[0] == 0
    wav = lambda root: {k: v[0] for k, v in hash_tree(root).items() if k.endswith(".wav")}  # noqa: E731
    assert len(wav(a)) == 4  # no originals
    assert wav(a) == wav(b)
    assert wav(a) != wav(c)


def test_augment_config_overrides_choose_the_effects(corpus, tmp_path, capsys):
    out = tmp_path / "gain_only"
    overrides = ["augment.speed.p=0", "augment.time_shift.p=0", "augment.pitch_shift.p=0", "augment.tempo.p=0",
                 "augment.band_pass.p=0", "augment.high_shelf.p=0", "augment.echo.p=0", "augment.reverb.p=0", "augment.color_noise.p=0",
                 "augment.gain.p=1", "augment.gain.min_db=-6", "augment.gain.max_db=-6"]
    code, _, err = run_cli(capsys, "augment", corpus, out, "--copies", 1, "--quiet", *overrides)
    assert code == 0, err
    for record in read_log(out):
        assert [e["effect"] for e in record["effects"]] == ["gain"]
        original, _ = soundfile.read(corpus / record["source"])
        augmented, _ = soundfile.read(out / record["output"])
        np.testing.assert_allclose(augmented, original * 10 ** (-6 / 20), atol=2 / 32768)


def test_import_of_augmented_corpus_keeps_speakers_and_labels(corpus, tmp_path, capsys):
    out = tmp_path / "augmented"
    assert run_cli(capsys, "augment", corpus, out, "--copies", 2, "--quiet")[0] == 0
    original_manifest, augmented_manifest = tmp_path / "orig.jsonl", tmp_path / "aug.jsonl"
    assert run_cli(capsys, "data", "import", corpus, "--out", original_manifest, "--layout", "folders")[0] == 0
    code, stdout, err = run_cli(capsys, "data", "import", out, "--out", augmented_manifest, "--layout", "folders")
    assert code == 0, err
    original, augmented = read_manifest(original_manifest), read_manifest(augmented_manifest)
    assert len(augmented) == 3 * len(original)
    assert {u.speaker for u in augmented} == {u.speaker for u in original} == set(SPEAKERS)
    assert {u.label for u in augmented} == {u.label for u in original} == set(LABELS)
    for u in augmented:
        path = Path(u.path)
        assert u.speaker == path.stem.split("_nohash_")[0]  # copies parse to their source's speaker
        assert u.label == path.parent.name
    counts = {}
    for u in augmented:
        counts[(u.speaker, u.label)] = counts.get((u.speaker, u.label), 0) + 1
    assert set(counts.values()) == {3}


def test_augment_errors(corpus, tmp_path, capsys):
    code, _, err = run_cli(capsys, "augment", corpus, corpus / "inside", "--quiet")
    assert code == 2 and "inside" in err
    assert not (corpus / "inside").exists()
    code, _, err = run_cli(capsys, "augment", tmp_path / "nowhere", tmp_path / "out", "--quiet")
    assert code == 2 and "nowhere" in err
    code, _, err = run_cli(capsys, "augment", corpus, tmp_path / "out", "--copies", 0, "--quiet")
    assert code == 2 and "copies" in err
    empty_noise = tmp_path / "no_noise"
    empty_noise.mkdir()
    code, _, err = run_cli(capsys, "augment", corpus, tmp_path / "out", "--quiet", "augment.background_noise.p=1",
                           f"augment.background_noise.paths=[{empty_noise}]")
    assert code == 2 and str(empty_noise) in err
    code, _, err = run_cli(capsys, "augment", corpus, tmp_path / "out", "--quiet", "augment.reverb.p=3")
    assert code == 2 and "augment.reverb.p" in err
    with pytest.raises(SystemExit) as info:  # an unknown option is still a usage error
        main(["augment", str(corpus), str(tmp_path / "out"), "--bogus", "augment.reverb.p=0.5"])
    assert info.value.code == 2 and "--bogus" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unreadable_input_is_skipped_and_reported(corpus, tmp_path, capsys):
    broken = corpus / "left" / "cccc3333_nohash_0.wav"
    broken.write_bytes(b"not a wave file at all" * 10)
    out = tmp_path / "augmented"
    code, stdout, err = run_cli(capsys, "augment", corpus, out, "--copies", 1, "--quiet")
    assert code == 1
    assert "cccc3333_nohash_0.wav" in err
    assert not list(out.rglob("cccc3333*"))
    assert len(read_log(out)) == 4


def test_augment_corpus_function_returns_counts(corpus, tmp_path):
    result = augment_corpus(corpus, tmp_path / "out", 1, AugmentConfig(), progress=False)
    assert result["n_files"] == 4 and result["n_written"] == 8 and result["n_skipped"] == 0
    assert Path(result["log"]) == (tmp_path / "out" / LOG_NAME).resolve()
