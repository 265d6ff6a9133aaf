"""``audiorec cv``: leave-one-speaker-out cross-validation on a tiny synthetic corpus."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest

from audiorec.cli import main
from audiorec.config import load_config
from audiorec.cv import cross_validate
from audiorec.train import train
from audiorec.data.corpora import import_corpus
from audiorec.data.manifest import read_manifest, write_manifest
from conftest import QUICK_OVERRIDES, SYNTH_COMMANDS, SYNTH_TAKES

N_SPEAKERS = 3
CV_OVERRIDES = (*QUICK_OVERRIDES, "train.max_epochs=1")


@pytest.fixture(scope="module")
def three_speakers(synth_corpus, tmp_path_factory):
    """A manifest of the synthetic corpus restricted to its first three speakers."""
    utterances = import_corpus(synth_corpus, progress=False).utterances
    speakers = sorted({u.speaker for u in utterances})
    assert None not in speakers and len(speakers) >= N_SPEAKERS
    keep = set(speakers[:N_SPEAKERS])
    path = tmp_path_factory.mktemp("cv") / "three.jsonl"
    write_manifest(path, [u for u in utterances if u.speaker in keep])
    return path, sorted(keep)


def test_cv_trains_one_fold_per_speaker_and_resumes(three_speakers, tmp_path, capsys):
    manifest, speakers = three_speakers
    out = tmp_path / "loso"
    code = main(["cv", "--data", str(manifest), "--out", str(out), "--quiet", *CV_OVERRIDES])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    folds = metrics["folds"]
    assert [f["speaker"] for f in folds] == speakers  # one fold per speaker
    per_speaker = len(SYNTH_COMMANDS) * SYNTH_TAKES
    for fold in folds:
        assert fold["n_test"] == per_speaker
        assert 0.0 <= fold["test_accuracy"] <= 1.0
        run = out / fold["run"]
        assert run.name == f"fold_{fold['speaker']}"
        fold_metrics = json.loads((run / "metrics.json").read_text())
        assert fold_metrics["test_accuracy"] == fold["test_accuracy"]
        assert fold_metrics["epochs"] == 1
        tested = {u.speaker for u in read_manifest(run / "splits" / "test.jsonl")}
        trained = {u.speaker for u in read_manifest(run / "splits" / "train.jsonl")}
        assert tested == {fold["speaker"]}
        assert trained == set(speakers) - {fold["speaker"]}  # every other speaker trains: none held out to validate
        assert fold_metrics["n_val"] == 0 and not read_manifest(run / "splits" / "val.jsonl")
    accuracies = [f["test_accuracy"] for f in folds]
    assert metrics["mean_accuracy"] == pytest.approx(statistics.fmean(accuracies), abs=1e-4)
    assert metrics["worst_accuracy"] == min(accuracies)
    assert metrics["worst_speaker"] in speakers
    assert metrics["n_test"] == N_SPEAKERS * per_speaker
    assert (out / "folds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stdout.count("testing on") == N_SPEAKERS and "mean accuracy" in stdout

    # The same command again reuses every finished fold.
    fold_checkpoints = {p: p.stat().st_mtime_ns for p in out.rglob("*.ckpt")}
    code = main(["cv", "--data", str(manifest), "--out", str(out), "--quiet", *CV_OVERRIDES])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout.count("done before") == N_SPEAKERS and "testing on" not in stdout
    assert json.loads((out / "metrics.json").read_text())["folds"] == folds
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.ckpt")} == fold_checkpoints

    # Speaker adaptation is measured on the finished folds, without training them again.
    code = main(["cv", "--data", str(manifest), "--out", str(out), "--quiet", "--adapt-clips", "2", *CV_OVERRIDES])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.ckpt")} == fold_checkpoints
    adapted_metrics = json.loads((out / "metrics.json").read_text())
    for fold in adapted_metrics["folds"]:
        a = fold["adapted"]
        assert a["n_adapt"] == 2 and a["n_test"] == per_speaker - 2  # no clip is both adapted to and tested
        assert 0.0 <= a["accuracy"] <= 1.0 and 0.0 <= a["unadapted_accuracy"] <= 1.0
    summary = adapted_metrics["adapted"]
    assert summary["n_adapt"] == 2
    assert summary["mean_accuracy"] == pytest.approx(statistics.fmean(f["adapted"]["accuracy"] for f in adapted_metrics["folds"]), abs=1e-4)
    assert summary["worst_accuracy"] == min(f["adapted"]["accuracy"] for f in adapted_metrics["folds"])
    assert "adapted to 2 unlabelled clips of each speaker" in stdout
    assert adapted_metrics["mean_accuracy"] == metrics["mean_accuracy"]  # the unadapted summary is unchanged


def test_cv_refuses_adaptation_of_a_model_without_batch_norm_before_training(three_speakers, tmp_path):
    manifest, _ = three_speakers
    with pytest.raises(ValueError, match="model.name=gmm has no batch norm"):
        cross_validate(manifest, tmp_path / "out", load_config(None, [*CV_OVERRIDES, "model.name=gmm"]), progress=False,
                       adapt_clips=2)
    assert not any((tmp_path / "out").glob("fold_*"))


def test_cv_needs_speakers(tmp_path, three_speakers):
    manifest, speakers = three_speakers
    one = tmp_path / "one.jsonl"
    write_manifest(one, [u for u in read_manifest(manifest) if u.speaker == speakers[0]])
    with pytest.raises(ValueError, match="at least 2 speakers"):
        cross_validate(one, tmp_path / "out1", load_config(None, list(CV_OVERRIDES)), progress=False)
    with pytest.raises(ValueError, match="loso"):
        cross_validate(manifest, tmp_path / "out2", load_config(None, list(CV_OVERRIDES)), folds="kfold", progress=False)


def test_cv_validates_on_a_share_of_speakers_when_asked_and_refuses_to_mix_configurations(three_speakers, tmp_path, capsys):
    manifest, speakers = three_speakers
    out = tmp_path / "loso"
    args = ["cv", "--data", str(manifest), "--out", str(out), "--quiet", *CV_OVERRIDES]
    assert main([*args, "--val-fraction", "0.5"]) == 0, capsys.readouterr().err
    for speaker in speakers:
        run = out / f"fold_{speaker}"
        validated = {u.speaker for u in read_manifest(run / "splits" / "val.jsonl")}
        trained = {u.speaker for u in read_manifest(run / "splits" / "train.jsonl")}
        assert len(validated) == 1 and len(trained) == N_SPEAKERS - 2
        assert speaker not in validated | trained
    capsys.readouterr()

    # Finished folds of another configuration are not mixed into a new summary.
    metrics = (out / "metrics.json").read_bytes()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "data.val_fraction: 0.5 -> 0.0" in err and str(out / f"fold_{speakers[0]}") in err
    assert (out / "metrics.json").read_bytes() == metrics

    # The validation share is cv's own option, not the config's.
    assert main([*args, "data.val_fraction=0.2"]) == 2
    assert "--val-fraction" in capsys.readouterr().err
    with pytest.raises(ValueError, match="val_fraction=1.0"):
        cross_validate(manifest, tmp_path / "out3", load_config(None, list(CV_OVERRIDES)), progress=False, val_fraction=1.0)


def test_cv_trains_every_fold_on_the_extra_clips_and_never_tests_on_them(synth_corpus, three_speakers, tmp_path, capsys):
    manifest, speakers = three_speakers
    own = tmp_path / "own.jsonl"
    write_manifest(own, [u for u in read_manifest(manifest) if u.speaker in speakers[:2]])
    others = [u for u in import_corpus(synth_corpus, progress=False).utterances if u.speaker not in speakers]
    extra_speaker = sorted({u.speaker for u in others})[0]
    extra = tmp_path / "extra.jsonl"
    write_manifest(extra, [u for u in others if u.speaker == extra_speaker])
    n_extra = len(SYNTH_COMMANDS) * SYNTH_TAKES

    out = tmp_path / "loso"
    code = main(["cv", "--data", str(own), "--extra-train", str(extra), "--out", str(out), "--quiet", *CV_OVERRIDES])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [f["speaker"] for f in metrics["folds"]] == speakers[:2]  # the extra speaker is no fold of its own
    assert metrics["extra_train"] == str(extra)
    for fold in metrics["folds"]:
        run = out / fold["run"]
        trained = {u.speaker for u in read_manifest(run / "splits" / "train.jsonl")}
        assert trained == set(speakers[:2]) - {fold["speaker"]} | {extra_speaker}
        assert {u.speaker for u in read_manifest(run / "splits" / "test.jsonl")} == {fold["speaker"]}
        fold_metrics = json.loads((run / "metrics.json").read_text())
        assert fold_metrics["n_extra_train"] == n_extra
        assert fold_metrics["n_train"] == n_extra + len(SYNTH_COMMANDS) * SYNTH_TAKES

    # A speaker or a label the data does not share is refused before any training.
    config = load_config(None, [*CV_OVERRIDES, f"data.extra_train={manifest}", f"data.test_speakers=[{speakers[0]}]"])
    with pytest.raises(ValueError, match=f"speakers .*{speakers[0]}.* are also in the data"):
        train(own, tmp_path / "overlap", config, progress=False)
    relabelled = tmp_path / "relabelled.jsonl"
    write_manifest(relabelled, [dataclasses.replace(u, label="banana") for u in read_manifest(extra)])
    config.data.extra_train = str(relabelled)
    with pytest.raises(ValueError, match="labels banana are not in the data"):
        train(own, tmp_path / "unknown", config, progress=False)
    assert not (tmp_path / "unknown" / "checkpoints").exists()
