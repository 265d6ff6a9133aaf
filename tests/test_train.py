"""Training end to end on a tiny synthetic corpus: the run directory, its metrics, resuming,
and a slightly longer run that must actually learn."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from audiorec.config import ConfigError, load_config, to_yaml
from audiorec.data.corpora import import_corpus
from audiorec.data.manifest import read_manifest
from audiorec.data.splits import speaker_split
from audiorec.runtime import Recognizer
from audiorec.run import RunDir
from audiorec.train import check_same_config, train
from conftest import QUICK_OVERRIDES, SYNTH_COMMANDS, SYNTH_SPEAKERS, SYNTH_TAKES


def test_synthetic_corpus_layout(synth_corpus):
    result = import_corpus(synth_corpus, progress=False)
    assert result.layout == "folders"
    assert result.rejected == []
    assert sorted({u.label for u in result.utterances}) == sorted(SYNTH_COMMANDS)
    assert len({u.speaker for u in result.utterances}) == SYNTH_SPEAKERS
    assert len(result.utterances) == len(SYNTH_COMMANDS) * SYNTH_SPEAKERS * SYNTH_TAKES
    assert {u.sample_rate for u in result.utterances} == {16_000}


def test_run_directory_contents(trained_run):
    run_dir, metrics, _ = trained_run
    for name in ("config.yaml", "labels.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "metrics.json",
                 "confusion_matrix.txt", "confusion_matrix.png", "splits/train.jsonl", "splits/val.jsonl",
                 "splits/test.jsonl", "manifest.jsonl", "import_report.json"):
        assert (run_dir / name).is_file(), f"{name} missing from the run directory"
        assert (run_dir / name).stat().st_size > 0, f"{name} is empty"
    assert (run_dir / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run_dir / "labels.json").read_text()) == sorted(SYNTH_COMMANDS)
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    # No temporary files left behind by the atomic writes.
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


def test_saved_config_is_the_resolved_one(trained_run):
    run_dir, _, overrides = trained_run
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    expected = load_config(None, overrides)
    assert saved["train"]["max_epochs"] == expected.train.max_epochs == 3
    assert saved["model"]["channels"] == [8, 16]
    assert saved["data"]["batch_size"] == 16
    assert saved["features"]["n_mels"] == expected.features.n_mels


def test_metrics_json(trained_run, synth_corpus):
    run_dir, metrics, _ = trained_run
    labels = sorted(SYNTH_COMMANDS)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    # The split is the documented speaker split of the imported corpus.
    split = speaker_split(import_corpus(synth_corpus, progress=False).utterances, 0.1, 0.1)
    assert metrics["n_test"] == len(split.test) == len(read_manifest(run_dir / "splits" / "test.jsonl"))
    assert metrics["n_train"] == len(split.train) and metrics["n_val"] == len(split.val)
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == len(SYNTH_COMMANDS) * SYNTH_SPEAKERS * SYNTH_TAKES
    assert set(metrics["per_class"]) == set(labels)
    for label, scores in metrics["per_class"].items():
        for key in ("precision", "recall", "f1"):
            assert 0.0 <= scores[key] <= 1.0, (label, key)
    assert sum(s["support"] for s in metrics["per_class"].values()) == metrics["n_test"]
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (len(labels), len(labels))
    assert matrix.sum() == metrics["n_test"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(metrics["test_accuracy"])
    assert metrics["epochs"] == 3
    assert metrics["n_parameters"] > 0
    # The speakers in metrics are the held-out ones, and nobody is in two parts.
    test_speakers = {u.speaker for u in read_manifest(run_dir / "splits" / "test.jsonl")}
    train_speakers = {u.speaker for u in read_manifest(run_dir / "splits" / "train.jsonl")}
    assert set(metrics["test_speakers"]) == test_speakers and not test_speakers & train_speakers


def test_confusion_matrix_text_matches_metrics(trained_run):
    run_dir, metrics, _ = trained_run
    lines = (run_dir / "confusion_matrix.txt").read_text().splitlines()
    labels = metrics["confusion_labels"]
    assert lines[0].split()[-len(labels):] == labels
    rows = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in lines[1:]}
    assert [rows[label] for label in labels] == metrics["confusion_matrix"]


def test_predictions_agree_with_metrics_and_recognizer(trained_run):
    run_dir, metrics, _ = trained_run
    predictions = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == metrics["n_test"]
    accuracy = np.mean([p["label"] == p["predicted"] for p in predictions])
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    recognizer = Recognizer.from_run(run_dir)
    for p in predictions[:3]:
        result = recognizer.recognize_file(p["path"])
        assert result.label == p["predicted"]
        assert result.score == pytest.approx(p["score"], abs=1e-4)
        assert result.path == p["path"]
        assert [l for l, _ in result.top_k][0] == result.label
        assert sum(s for _, s in result.top_k) <= 1.0 + 1e-5


def test_last_checkpoint_holds_the_final_epoch(trained_run):
    """checkpoints/last.ckpt is what a resumed run starts from, so it must be the state after the
    last epoch trained, whether or not that epoch improved validation accuracy."""
    import torch

    run_dir, metrics, _ = trained_run
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == metrics["epochs"] - 1 == 2
    assert last["global_step"] >= best["global_step"]
    steps_per_epoch = -(-metrics["n_train"] // 16) if metrics["n_train"] <= 16 else metrics["n_train"] // 16
    assert last["global_step"] == metrics["epochs"] * steps_per_epoch


def _validation_log(run_dir: Path) -> list[dict]:
    import csv

    rows = csv.DictReader((run_dir / "logs" / "version_0" / "metrics.csv").open())
    return [{"epoch": int(r["epoch"]), "val_loss": float(r["val_loss"]), "val_acc": float(r["val_acc"])}
            for r in rows if r.get("val_loss")]


@pytest.mark.parametrize("monitor", ["val_loss", "val_acc"])
def test_best_checkpoint_is_the_epoch_the_monitor_picks(synth_corpus, tmp_path, monitor):
    """best.ckpt is the epoch of lowest validation loss (the default) or of the first highest
    accuracy, and metrics.json's best_val_accuracy is that epoch's validation accuracy."""
    import torch

    overrides = [*QUICK_OVERRIDES, "train.max_epochs=4", f"train.monitor={monitor}"]
    metrics = train(synth_corpus, tmp_path / "run", load_config(None, overrides), progress=False)
    log = _validation_log(tmp_path / "run")
    assert [row["epoch"] for row in log] == [0, 1, 2, 3]
    if monitor == "val_loss":
        chosen = min(log, key=lambda row: row["val_loss"])
    else:
        chosen = max(log, key=lambda row: (row["val_acc"], -row["epoch"]))
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert best["epoch"] == chosen["epoch"]
    assert metrics["best_val_accuracy"] == pytest.approx(chosen["val_acc"], abs=1e-6)


def test_an_unknown_monitor_is_refused():
    with pytest.raises(ConfigError, match="train.monitor"):
        load_config(None, ["train.monitor=val_f1"])


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run_copy"
    shutil.copytree(run_dir, copy)
    return copy


def test_resume_with_more_epochs_continues(trained_run, synth_corpus, tmp_path, capsys):
    run_dir, first, overrides = trained_run
    copy = copy_run(run_dir, tmp_path)
    more = [o for o in overrides if not o.startswith("train.max_epochs=")] + ["train.max_epochs=5"]
    metrics = train(synth_corpus, copy, load_config(None, more), progress=False)
    assert "resuming from" in capsys.readouterr().out
    assert first["epochs"] == 3
    assert metrics["epochs"] == 5 > first["epochs"]
    assert metrics["n_test"] == first["n_test"]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert json.loads((copy / "metrics.json").read_text())["epochs"] == 5


def test_resume_with_another_model_is_refused(trained_run, synth_corpus, tmp_path):
    run_dir, _, overrides = trained_run
    copy = copy_run(run_dir, tmp_path)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    other = [o for o in overrides if not o.startswith("model.channels=")] + ["model.channels=[4,8]"]
    with pytest.raises(ConfigError) as info:
        train(synth_corpus, copy, load_config(None, other), progress=False)
    assert "model.channels" in str(info.value)
    assert str(copy) in str(info.value)
    # Refusing leaves the old run untouched.
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_training_learns_easy_synthetic_commands(tmp_path_factory):
    """A few more epochs on four clearly different words: held-out voices are recognised well
    above chance (0.25)."""
    from audiorec.data.synth import synthesize_commands

    root = tmp_path_factory.mktemp("learn")
    commands = ("yes", "no", "up", "down")
    corpus = synthesize_commands(root / "corpus", commands=commands, unknown_words=(), n_speakers=24, takes=3,
                                 n_silence=0, seed=1, progress=False)
    config = load_config(None, [
        "train.max_epochs=10", "model.channels=[16,32,64]", "data.batch_size=16", "data.test_fraction=0.25",
        "train.accelerator=cpu",
    ])
    metrics = train(corpus, root / "run", config, progress=False)
    assert metrics["n_test"] >= 48  # 6 held-out voices x 4 words x 2+ takes
    assert metrics["labels"] == sorted(commands)
    assert metrics["test_accuracy"] >= 0.6, metrics["confusion_matrix"]
    assert metrics["best_val_accuracy"] >= 0.6
    # Every word is recognised at least sometimes: the model does not just guess one class.
    assert all(scores["recall"] > 0 for scores in metrics["per_class"].values()), metrics["per_class"]


def test_evaluate_counts_unknown_labels_as_errors(trained_run, tmp_path):
    from audiorec.audio import load_audio
    from audiorec.data.manifest import Utterance
    from audiorec.evaluate import evaluate

    run_dir, metrics, _ = trained_run
    recognizer = Recognizer.from_run(run_dir)
    test = read_manifest(run_dir / "splits" / "test.jsonl")
    waves = [load_audio(u.path) for u in test]
    again = evaluate(recognizer, test, waves)
    assert again["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert again["confusion_matrix"] == metrics["confusion_matrix"]
    # The same clips relabelled with a word the model never saw: all wrong, with a row of their own.
    foreign = [Utterance(u.path, u.duration, u.sample_rate, u.speaker, "banana") for u in test]
    result = evaluate(recognizer, foreign, waves, tmp_path, prefix="foreign_")
    assert result["accuracy"] == 0.0
    assert result["labels"] == metrics["labels"] + ["banana"]
    assert result["per_class"]["banana"]["support"] == len(test)
    assert result["per_class"]["banana"]["recall"] == 0.0
    assert (tmp_path / "foreign_confusion_matrix.png").is_file()
    assert len((tmp_path / "foreign_predictions.jsonl").read_text().splitlines()) == len(test)
    with pytest.raises(ValueError):
        evaluate(recognizer, [], [])


def test_recognizer_from_a_folder_that_is_not_a_run(tmp_path):
    from audiorec.run import RunError

    with pytest.raises(RunError, match="labels.json"):
        Recognizer.from_run(tmp_path)
    (tmp_path / "labels.json").write_text('["a", "b"]')
    with pytest.raises(RunError, match="config.yaml"):
        Recognizer.from_run(tmp_path)


def test_same_noise_file_given_relative_or_absolute_is_the_same_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a.wav", "b.wav"):
        (tmp_path / "noise").mkdir(exist_ok=True)
        (tmp_path / "noise" / name).write_bytes(b"")
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.config.write_text(to_yaml(load_config(None, ["augment.background_noise.paths=[noise/a.wav]"])))

    check_same_config(run, load_config(None, [f"augment.background_noise.paths=[{tmp_path / 'noise' / 'a.wav'}]"]))
    with pytest.raises(ConfigError, match="background_noise"):
        check_same_config(run, load_config(None, [f"augment.background_noise.paths=[{tmp_path / 'noise' / 'b.wav'}]"]))
