"""Optimisers and learning-rate schedules of the training task, and their config keys."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from audiorec.config import OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig, load_config
from audiorec.tasks.base import build_optimizer, lr_factor

EXPECTED = {
    "sgd": (torch.optim.SGD, {"momentum": 0, "nesterov": False}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9, "nesterov": False}),
    "nesterov": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (torch.optim.Adagrad, {}),
    "adadelta": (torch.optim.Adadelta, {}),
    "rmsprop": (torch.optim.RMSprop, {"momentum": 0.9}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
}


def test_every_optimizer_name_is_known():
    assert set(OPTIMIZERS) == set(EXPECTED)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_builds_with_the_config_and_one_step_lowers_the_loss(name):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x = torch.randn(32, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.3
    config = TrainConfig(lr=0.05, weight_decay=1e-4, momentum=0.9)
    optimizer = build_optimizer(name, model.parameters(), config)
    cls, settings = EXPECTED[name]
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(0.05) and group["weight_decay"] == pytest.approx(1e-4)
    for key, value in settings.items():
        assert group[key] == value, (name, key)
    assert sum(p.numel() for p in group["params"]) == 5

    def loss():
        return torch.nn.functional.mse_loss(model(x), y)

    before = loss().item()
    optimizer.zero_grad()
    loss().backward()
    optimizer.step()
    after = loss().item()
    assert after < before, f"{name}: {before} -> {after}"


def test_unknown_optimizer_is_rejected():
    with pytest.raises(ValueError, match="foo"):
        build_optimizer("foo", torch.nn.Linear(2, 1).parameters(), TrainConfig())


TOTAL, WARMUP = 200, 0.1  # 20 warm-up steps


def factors(schedule: str, total: int = TOTAL, warmup: float = WARMUP) -> np.ndarray:
    return np.array([lr_factor(schedule, step, total, warmup) for step in range(total + 1)])


def test_every_schedule_name_is_known():
    for name in SCHEDULES:
        assert 0 < lr_factor(name, 0, TOTAL, WARMUP) <= 1


def test_constant_schedule_is_one():
    assert np.all(factors("constant") == 1.0)


def test_cosine_starts_at_one_and_falls_to_zero():
    f = factors("cosine")
    assert f[0] == pytest.approx(1.0)
    assert f[TOTAL // 2] == pytest.approx(0.5)
    assert f[-1] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(f) <= 1e-12)


def test_warmup_cosine_rises_linearly_then_falls_to_zero():
    f = factors("warmup_cosine")
    warmup = round(TOTAL * WARMUP)
    rise = f[:warmup]
    np.testing.assert_allclose(np.diff(rise), 1 / warmup)  # linear
    assert rise[0] == pytest.approx(1 / warmup) and rise[-1] == pytest.approx(1.0)
    assert f[warmup] == pytest.approx(1.0)
    assert np.all(np.diff(f[warmup:]) <= 1e-12)
    assert f[(warmup + TOTAL) // 2] == pytest.approx(0.5, abs=0.01)  # cosine: half way down half way on
    assert f[TOTAL - 1] < 1e-3 and f[-1] == pytest.approx(0.0, abs=1e-9)
    assert np.all(f[:TOTAL] > 0)  # no step of training runs at a rate of zero


def test_one_cycle_rises_from_a_25th_to_one_then_falls_near_zero():
    f = factors("one_cycle")
    warmup = round(TOTAL * WARMUP)
    assert f[0] == pytest.approx(1 / 25)
    assert np.all(np.diff(f[: warmup + 1]) > 0)
    assert f[warmup] == pytest.approx(1.0)
    assert f.max() == pytest.approx(1.0) and int(np.argmax(f)) == warmup
    assert np.all(np.diff(f[warmup:]) <= 1e-12)
    assert f[-1] == pytest.approx(1 / 25e4)
    assert np.all(f > 0)


def test_schedules_without_warmup_and_with_tiny_totals():
    assert lr_factor("warmup_cosine", 0, TOTAL, 0.0) == pytest.approx(1.0)
    assert lr_factor("one_cycle", 0, TOTAL, 0.0) == pytest.approx(1.0)
    for name in SCHEDULES:
        assert 0 <= lr_factor(name, 0, 1, WARMUP) <= 1
        assert 0 <= lr_factor(name, 0, 0, WARMUP) <= 1  # total of zero does not divide by zero


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="linear"):
        lr_factor("linear", 0, TOTAL, WARMUP)


@pytest.mark.parametrize(
    "override, key",
    [("train.optimizer=foo", "train.optimizer"), ("train.schedule=linear", "train.schedule"),
     ("train.gradient_clip=-1", "train.gradient_clip"), ("train.warmup_fraction=1.0", "train.warmup_fraction"),
     ("train.num_workers=-2", "train.num_workers")],
)
def test_bad_training_value_is_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        load_config(None, [override])
    if key in ("train.optimizer", "train.schedule"):
        assert "adamw" in str(info.value) or "cosine" in str(info.value)  # the valid choices are listed


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_name_loads(name):
    assert load_config(None, [f"train.optimizer={name}"]).train.optimizer == name


def test_training_defaults():
    defaults = TrainConfig()
    assert defaults.optimizer == "adamw" and defaults.schedule == "warmup_cosine"
    assert defaults.gradient_clip > 0
    assert {f.name for f in dataclasses.fields(TrainConfig)} >= {"optimizer", "schedule", "gradient_clip",
                                                                "warmup_fraction", "momentum"}
