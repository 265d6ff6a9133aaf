"""The ``audiorec`` command line, called in-process through ``audiorec.cli.main``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import soundfile

from audiorec.cli import build_parser, main
from audiorec.data.manifest import read_manifest
from conftest import write_sine, write_with_pyav


def held_out_clips(trained_run) -> list[str]:
    run_dir, _, _ = trained_run
    return [u.path for u in read_manifest(run_dir / "splits" / "test.jsonl")]


@pytest.fixture
def clips(trained_run):
    return held_out_clips(trained_run)[:3]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_recognize_text_output(trained_run, clips, capsys):
    run_dir, metrics, _ = trained_run
    code, out, err = run_cli(capsys, "recognize", run_dir, *clips)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(clips)
    for line, clip in zip(lines, clips):
        fields = line.split("\t")
        assert fields[0] == clip
        assert fields[1] in metrics["labels"]
        assert 0.0 <= float(fields[2]) <= 1.0
    assert "error" not in err


def test_recognize_json_output(trained_run, clips, capsys):
    run_dir, metrics, _ = trained_run
    code, out, _ = run_cli(capsys, "recognize", run_dir, *clips, "--json", "--top-k", "2")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == clips
    for r in records:
        assert set(r) == {"path", "label", "score", "top_k", "duration_s"}
        assert r["duration_s"] > 0
        assert r["label"] in metrics["labels"]
        assert len(r["top_k"]) == 2
        assert r["top_k"][0] == {"label": r["label"], "score": r["score"]}
        assert r["top_k"][0]["score"] >= r["top_k"][1]["score"]
        assert r["top_k"][1]["label"] != r["label"]
        assert 0.0 <= r["score"] <= 1.0


def test_recognize_other_formats(trained_run, tmp_path, capsys):
    """Files in formats the corpus never had: the same clip as FLAC at 44.1 kHz and as WebM."""
    run_dir, _, _ = trained_run
    source = held_out_clips(trained_run)[0]
    y, rate = soundfile.read(source)
    flac = tmp_path / "clip.flac"
    soundfile.write(flac, np.repeat(y[:, None], 2, axis=1), rate, subtype="PCM_24")  # stereo copy
    webm = write_with_pyav(tmp_path / "tone.webm", "webm", "libopus", 48_000, (600.0,))
    code, out, _ = run_cli(capsys, "recognize", run_dir, source, flac, webm, "--json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == [str(source), str(flac), str(webm)]
    # The stereo FLAC holds the same samples, so it gets the same answer.
    assert records[1]["label"] == records[0]["label"]
    assert records[1]["score"] == pytest.approx(records[0]["score"], abs=1e-3)


def test_recognize_reports_bad_files_and_continues(trained_run, clips, tmp_path, capsys):
    run_dir, metrics, _ = trained_run
    missing = tmp_path / "missing.wav"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"definitely not RIFF" * 100)
    files = [clips[0], missing, clips[1], garbage, clips[2]]
    code, out, err = run_cli(capsys, "recognize", run_dir, *files)
    assert code == 1
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == clips  # every good file still recognised
    assert all(line.split("\t")[1] in metrics["labels"] for line in lines)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert str(missing) in errors[0] and str(garbage) in errors[1]


def test_recognize_json_reports_bad_files(trained_run, clips, tmp_path, capsys):
    run_dir, _, _ = trained_run
    empty = tmp_path / "empty.m4a"
    empty.write_bytes(b"")
    code, out, err = run_cli(capsys, "recognize", run_dir, clips[0], empty, "--json")
    assert code == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["path"] == clips[0] and "label" in records[0]
    assert records[1]["path"] == str(empty) and "empty" in records[1]["error"]
    assert str(empty) in err


def test_recognize_with_a_folder_that_is_not_a_run(tmp_path, capsys):
    clip = write_sine(tmp_path / "tone.wav", subtype="PCM_16")
    code, _, err = run_cli(capsys, "recognize", tmp_path, clip)
    assert code == 2
    assert err.startswith("error:") and str(tmp_path) in err


@pytest.mark.parametrize(
    "override, key",
    [("train.max_epochs=0", "train.max_epochs"), ("train.bogus=1", "bogus"), ("model.dropout=2", "model.dropout")],
)
def test_train_with_bad_override_exits_2(synth_corpus, tmp_path, capsys, override, key):
    code, _, err = run_cli(capsys, "train", "--data", synth_corpus, "--out", tmp_path / "run", "--quiet", override)
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and key in error_lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_with_missing_data_exits_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--data", tmp_path / "nowhere", "--out", tmp_path / "run", "--quiet",
                           "train.max_epochs=1")
    assert code == 2
    assert "error:" in err and "nowhere" in err


def test_data_import_writes_manifest_and_report(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    for speaker in ("anna", "ben"):
        for digit in "01":
            write_sine(corpus / f"{digit}_{speaker}_0.wav", 500.0, 8_000, 0.4, subtype="PCM_16")
    (corpus / "9_ben_1.wav").write_bytes(b"")
    out = tmp_path / "fsdd.jsonl"
    code, stdout, _ = run_cli(capsys, "data", "import", corpus, "--out", out)
    assert code == 0
    utterances = read_manifest(out)
    assert len(utterances) == 4 and {u.speaker for u in utterances} == {"anna", "ben"}
    report = json.loads((tmp_path / "fsdd.report.json").read_text())
    assert report["n_kept"] == 4 and report["n_rejected"] == 1
    assert "9_ben_1.wav" in stdout


def test_config_command_prints_resolved_yaml(capsys):
    import yaml

    code, out, _ = run_cli(capsys, "config", "train.max_epochs=11", "features.n_mels=32")
    assert code == 0
    printed = yaml.safe_load(out)
    assert printed["train"]["max_epochs"] == 11 and printed["features"]["n_mels"] == 32


def subcommand_paths(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append(prefix + (name,))
                paths += subcommand_paths(sub, prefix + (name,))
    return paths


SUBCOMMANDS = subcommand_paths(build_parser())


def test_every_expected_subcommand_exists():
    assert {("train",), ("recognize",), ("data",), ("data", "import"), ("quickstart",)} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("path", [()] + SUBCOMMANDS, ids=lambda p: " ".join(p) or "audiorec")
def test_help(path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: audiorec" + "".join(f" {p}" for p in path))


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["recognize"])
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err
