"""``audiorec evaluate``: accuracy of a trained run on clean clips and at several SNRs of noise."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from audiorec.augment import load_noise
from audiorec.cli import main
from audiorec.data.dataset import load_waveforms
from audiorec.data.manifest import read_manifest
from audiorec.evaluate import evaluate_noise
from audiorec.runtime import Recognizer
from conftest import shared_dataset

PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the shared quick run, so the test may write into it."""
    run_dir, metrics, _ = trained_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy, metrics


def test_evaluate_with_noise_writes_accuracy_per_snr(run_copy, capsys):
    run, train_metrics = run_copy
    noise = shared_dataset("noise") / "white_noise.wav"
    code, out, err = run_cli(capsys, "evaluate", run, "--noise", noise, "--snr-db", "20,0")
    assert code == 0, err
    metrics = json.loads((run / "evaluate" / "metrics.json").read_text())
    assert metrics["snr_db"] == [20.0, 0.0]
    assert len(metrics["accuracy"]) == 2 and all(0.0 <= a <= 1.0 for a in metrics["accuracy"])
    assert metrics["noises"] == ["white_noise"]
    assert metrics["n"] == train_metrics["n_test"]  # the run's own test split by default
    # Clean accuracy is the run's test accuracy: same model, same clips.
    assert metrics["clean_accuracy"] == pytest.approx(train_metrics["test_accuracy"], abs=1e-4)
    assert metrics["drop"] == [pytest.approx(metrics["clean_accuracy"] - a, abs=1e-4) for a in metrics["accuracy"]]
    assert metrics["by_noise"] == {"white_noise": metrics["accuracy"]}
    assert (run / "evaluate" / "accuracy_vs_snr.png").read_bytes()[:8] == PNG
    assert (run / "evaluate" / "clean_confusion_matrix.png").is_file()
    assert "clean     accuracy" in out and "20 dB" in out and " 0 dB" in out


def test_evaluate_bad_noise_folder_exits_2_naming_it(run_copy, tmp_path, capsys):
    run, _ = run_copy
    empty = tmp_path / "quiet_room"
    empty.mkdir()
    code, _, err = run_cli(capsys, "evaluate", run, "--noise", empty, "--snr-db", "10")
    assert code == 2
    last = err.strip().splitlines()[-1]  # after the loading progress bar
    assert last.startswith("error:") and str(empty) in last
    assert not (run / "evaluate" / "metrics.json").exists()
    code, _, err = run_cli(capsys, "evaluate", run, "--noise", tmp_path / "missing_noise", "--snr-db", "10")
    assert code == 2 and "missing_noise" in err
    code, _, err = run_cli(capsys, "evaluate", run, "--noise", shared_dataset("noise"), "--snr-db", "ten")
    assert code == 2 and "--snr-db" in err


def test_evaluate_noise_at_a_huge_snr_equals_clean_and_is_seeded(trained_run):
    run_dir, _, _ = trained_run
    recognizer = Recognizer.from_run(run_dir)
    utterances = read_manifest(run_dir / "splits" / "test.jsonl")
    waveforms = load_waveforms(utterances, recognizer.sample_rate, progress=False)
    noises = load_noise([shared_dataset("noise") / "white_noise.wav", shared_dataset("noise") / "running_tap.wav"],
                        recognizer.sample_rate)
    summary = evaluate_noise(recognizer, utterances, waveforms, noises, [200.0, -30.0], seed=3)
    assert summary["accuracy"][0] == pytest.approx(summary["clean_accuracy"], abs=1e-4)  # noise inaudible
    n_labels = len(recognizer.labels)
    assert summary["accuracy"][1] <= max(summary["clean_accuracy"], 1.5 / n_labels)  # noise drowns the words
    assert set(summary["by_noise"]) == {"white_noise", "running_tap"}
    assert all(len(v) == 2 for v in summary["by_noise"].values())
    again = evaluate_noise(recognizer, utterances, waveforms, noises, [200.0, -30.0], seed=3)
    assert again["accuracy"] == summary["accuracy"] and again["by_noise"] == summary["by_noise"]
    with pytest.raises(ValueError):
        evaluate_noise(recognizer, utterances, waveforms, noises, [])
    with pytest.raises(ValueError):
        evaluate_noise(recognizer, utterances, waveforms, [], [10.0])
    assert np.isfinite(summary["clean_accuracy"])
