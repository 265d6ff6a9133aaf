"""benchmarks/view_bank_distillation.py: the bank of teacher-labelled views and the student trained on it."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from audiorec.export import export_onnx
from audiorec.recognize import load_run
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("view_bank_distillation")


@pytest.fixture(scope="module")
def teacher(trained_run, tmp_path_factory):
    """The trained run itself, exported, as the teacher (same labels)."""
    run_dir, _, _ = trained_run
    loaded = load_run(run_dir)
    path = tmp_path_factory.mktemp("teacher") / "teacher.onnx"
    return export_onnx(loaded.model.eval(), path, loaded.labels, loaded.sample_rate, 16_000)


def test_bank_holds_the_students_features_and_teacher_probabilities_and_is_reproducible(bench, trained_run, teacher, tmp_path):
    run_dir, _, _ = trained_run
    n_train = sum(1 for _ in open(run_dir / "splits" / "train.jsonl"))
    n_labels = len(json.loads((run_dir / "labels.json").read_text()))
    first, again = tmp_path / "a.npz", tmp_path / "b.npz"
    bench.build_shard(run_dir, teacher, 4, 0, first)  # 4 views over 2 shards: 2 epochs of views here
    bank = np.load(first)
    assert bank["feats"].shape == (2 * n_train, 40, 101) and bank["feats"].dtype == np.float16
    assert bank["probs"].shape == (2 * n_train, n_labels)
    np.testing.assert_allclose(bank["probs"].sum(axis=1), 1.0, atol=1e-4)
    mixed = bank["lam"] < 1
    assert 0 < mixed.sum() < len(mixed) and bank["lam"].min() >= 0.5
    assert set(np.unique(bank["target_a"])) <= set(range(n_labels))
    assert not list(tmp_path.glob("*.partial.npz"))  # written atomically
    bench.build_shard(run_dir, teacher, 4, 0, again)
    for key in ("feats", "probs", "lam", "target_b"):
        np.testing.assert_array_equal(np.load(again)[key], bank[key])  # the same seeds give the same views


def test_a_teacher_with_other_labels_is_refused_by_name(bench, trained_run, tmp_path):
    run_dir, _, _ = trained_run
    loaded = load_run(run_dir)
    other = export_onnx(loaded.model.eval(), tmp_path / "other.onnx", [f"x{l}" for l in loaded.labels], 16_000, 16_000)
    with pytest.raises(SystemExit, match="other.onnx"):
        bench.build_shard(run_dir, other, 2, 0, tmp_path / "bank.npz")


def test_student_trains_on_the_bank_and_reports_its_accuracy(bench, trained_run, teacher, tmp_path):
    run_dir, _, _ = trained_run
    shards, _ = bench.build_bank(run_dir, teacher, 4, tmp_path / "bank")
    assert [p.name for p in shards] == ["shard0.npz", "shard1.npz"] and all(p.exists() for p in shards)
    args = argparse.Namespace(passes=12, batch_size=16, temperature=2.0, ce=0.5, hint=0.0, lr=3e-3, seed=0, threads=1, views=4)
    result = bench.train_student(run_dir, shards, args)
    n_views = result["views"]
    assert n_views == 4 * sum(1 for _ in open(run_dir / "splits" / "train.jsonl"))
    assert result["steps"] == int(12 * n_views / 16) and result["clip_epochs"] == 48
    assert len(result["curve"]) >= 20 and 0 <= result["test_accuracy"] <= 1
    # the teacher's knowledge reaches the student: well above chance on the held-out speakers
    assert result["val_accuracy"] > 1 / 3 + 0.2


def test_bank_without_a_teacher_holds_the_speech_embedding_and_trains_a_hinted_student(bench, trained_run, tmp_path):
    run_dir, _, _ = trained_run
    n_train = sum(1 for _ in open(run_dir / "splits" / "train.jsonl"))
    shards, _ = bench.build_bank(run_dir, None, 2, tmp_path / "bank")
    bank = np.load(shards[0])
    assert "probs" not in bank.files
    assert bank["hint"].shape == (n_train, 96, 12) and bank["hint"].dtype == np.float16
    hint = bank["hint"].astype(np.float32)
    assert np.isfinite(hint).all() and hint.std() > 0
    args = argparse.Namespace(passes=12, batch_size=16, temperature=1.0, ce=0.5, hint=1.0, lr=3e-3, seed=0,
                              threads=1, views=2)
    with pytest.raises(SystemExit, match="without a teacher"):
        bench.train_student(run_dir, shards, args)
    args.ce = 1.0
    result = bench.train_student(run_dir, shards, args)
    assert result["teacher_accuracy_clean_views"] is None
    # the hint's projection is training-only: the student's parameters are the run's model's
    assert result["n_parameters"] == json.loads((run_dir / "metrics.json").read_text())["n_parameters"]
    assert result["val_accuracy"] > 1 / 3 + 0.2
