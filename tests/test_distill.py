"""Knowledge distillation (train.teacher): the soft-target loss, the task that mixes it with the
labels' loss, and the checks that keep a teacher from leaking test clips into a student."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest
import torch
from torch import nn

from audiorec.config import ConfigError, TrainConfig, load_config
from audiorec.data.manifest import read_manifest, write_manifest
from audiorec.tasks.commands import CommandTask, distillation_loss
from audiorec.train import train
from conftest import QUICK_OVERRIDES


def test_distillation_loss_is_hintons_soft_target_term():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 4), torch.randn(5, 4)
    for t in (1.0, 2.0, 4.0):
        p_teacher = torch.softmax(teacher / t, dim=1)
        by_hand = t * t * (p_teacher * (p_teacher.log() - torch.log_softmax(student / t, dim=1))).sum(dim=1).mean()
        assert distillation_loss(student, teacher, t).item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert distillation_loss(teacher, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    # Logits are defined up to a constant per row: shifting them changes nothing.
    assert distillation_loss(student + 3.0, teacher - 1.0, 2.0).item() == pytest.approx(
        distillation_loss(student, teacher, 2.0).item(), rel=1e-5)
    assert distillation_loss(student, teacher, 2.0).item() > 0


def test_the_task_trains_the_student_toward_the_teacher_and_leaves_the_teacher_alone():
    torch.manual_seed(0)
    teacher, student = nn.Sequential(nn.Linear(16, 3), nn.Dropout(0.5)), nn.Linear(16, 3)
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    config = TrainConfig(distill_weight=1.0, distill_temperature=2.0, ema_decay=0.0)
    task = CommandTask(student, config, teacher=teacher)
    task.train()
    assert not teacher.training, "the teacher must stay in eval mode (no dropout) while the student trains"
    assert all(not k.startswith("teacher") for k in task.state_dict()), "the teacher must not be saved"
    assert [id(p) for p in task.parameters()] == [id(p) for p in student.parameters()]

    waveform, target = torch.randn(32, 16), torch.randint(0, 3, (32,))
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    before = distillation_loss(student(waveform), teacher(waveform), 1.0).item()
    for _ in range(100):
        optimizer.zero_grad()
        logits = student(waveform)
        loss = task._train_loss(waveform, logits, nn.functional.cross_entropy(logits, target))
        loss.backward()
        optimizer.step()
    # With distill_weight 1 the labels are ignored: the student copies the teacher's outputs.
    assert distillation_loss(student(waveform), teacher(waveform), 1.0).item() < 0.05 * before
    assert all(torch.equal(v, frozen[k]) for k, v in teacher.state_dict().items())


def test_training_with_a_teacher(trained_run, synth_corpus, tmp_path):
    teacher_dir, _, overrides = trained_run
    out = tmp_path / "student"
    metrics = train(synth_corpus, out, load_config(None, [*overrides, "train.max_epochs=2",
                                                          f"train.teacher={teacher_dir}"]), progress=False)
    rows = [r for r in csv.DictReader((out / "logs" / "version_0" / "metrics.csv").open()) if r["train_distill_loss"]]
    assert len(rows) == 2 and all(math.isfinite(float(r["train_distill_loss"])) and float(r["train_distill_loss"]) > 0
                                  for r in rows)
    # The student's checkpoint holds the student alone: the same tensors as a run without a teacher.
    keys = lambda run: set(torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu",  # noqa: E731
                                      weights_only=False)["state_dict"])
    assert keys(out) == keys(teacher_dir)
    assert metrics["epochs"] == 2 and 0 <= metrics["test_accuracy"] <= 1


def _copy(run, tmp_path, name="teacher"):
    copy = tmp_path / name
    shutil.copytree(run, copy)
    return copy


def test_a_teacher_with_other_labels_is_refused(trained_run, synth_corpus, tmp_path):
    run_dir, _, overrides = trained_run
    teacher = _copy(run_dir, tmp_path)
    labels = json.loads((teacher / "labels.json").read_text())
    (teacher / "labels.json").write_text(json.dumps(labels[::-1]))
    with pytest.raises(ConfigError, match="labels"):
        train(synth_corpus, tmp_path / "student", load_config(None, [*overrides, f"train.teacher={teacher}"]),
              progress=False)


def test_a_teacher_that_trained_on_the_test_clips_is_refused(trained_run, synth_corpus, tmp_path):
    run_dir, _, overrides = trained_run
    teacher = _copy(run_dir, tmp_path)
    splits = teacher / "splits"
    leaked = read_manifest(splits / "test.jsonl")[:1]
    write_manifest(splits / "train.jsonl", read_manifest(splits / "train.jsonl") + leaked)
    with pytest.raises(ConfigError, match=r"trained on 1 of this run's test clips") as info:
        train(synth_corpus, tmp_path / "student", load_config(None, [*overrides, f"train.teacher={teacher}"]),
              progress=False)
    assert str(teacher) in str(info.value)


def test_a_cross_validation_teacher_is_taken_from_the_fold_of_the_test_speaker(trained_run, synth_corpus, tmp_path):
    """An ``audiorec cv`` folder teaches each fold with its own fold; here the fold named is the
    quick run, which trained on the speaker, so it is refused, naming the fold."""
    run_dir, _, overrides = trained_run
    speaker = read_manifest(run_dir / "splits" / "train.jsonl")[0].speaker
    fold = _copy(run_dir, tmp_path / "cv", f"fold_{speaker}")
    config = load_config(None, [*overrides, f"train.teacher={tmp_path / 'cv'}", f"data.test_speakers=[{speaker}]"])
    with pytest.raises(ConfigError, match="test clips") as info:
        train(synth_corpus, tmp_path / "student", config, progress=False)
    assert str(fold) in str(info.value)


def test_bad_teacher_settings_are_refused(tmp_path, synth_corpus):
    with pytest.raises(ConfigError, match="no such run directory"):
        train(synth_corpus, tmp_path / "student", load_config(None, [*QUICK_OVERRIDES, f"train.teacher={tmp_path / 'none'}"]),
              progress=False)
    with pytest.raises(ConfigError, match="train.distill_weight"):
        load_config(None, ["train.distill_weight=1.5"])
    with pytest.raises(ConfigError, match="train.distill_temperature"):
        load_config(None, ["train.distill_temperature=0"])
    with pytest.raises(ConfigError, match="gmm"):
        load_config(None, ["model.name=gmm", "train.teacher=runs/x"])
