"""Configuration: defaults, YAML file, dotted overrides, and errors that name the key."""

from __future__ import annotations

import re

import pytest

from audiorec.config import Config, ConfigError, config_from_yaml, load_config, to_yaml


def test_defaults_are_the_dataclass_defaults():
    config = load_config()
    assert config == Config()
    assert config.features.kind == "log_mel"
    assert config.model.channels == Config().model.channels
    assert isinstance(config.data.test_speakers, list)


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "features:\n  n_mels: 64\n  kind: mfcc\n"
        "train:\n  max_epochs: 7\n  lr: 0.001\n"
        "model:\n  channels: [4, 8, 16]\n"
        "data:\n  validation:\n    min_duration_s: 0.25\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.features.n_mels == 64 and config.features.kind == "mfcc"
    assert config.train.max_epochs == 7 and config.train.lr == pytest.approx(0.001)
    assert config.model.channels == [4, 8, 16]
    assert config.data.validation.min_duration_s == pytest.approx(0.25)
    assert config.data.batch_size == Config().data.batch_size  # untouched keys keep defaults

    config = load_config(path, ["train.max_epochs=9", "model.channels=[8,16]", "data.test_speakers=[george,theo]"])
    assert config.train.max_epochs == 9  # override beats file
    assert config.features.n_mels == 64  # file beats default
    assert config.model.channels == [8, 16]
    assert config.data.test_speakers == ["george", "theo"]
    assert isinstance(config.train.max_epochs, int)


def test_yaml_round_trip():
    config = load_config(None, ["features.n_mfcc=13", "model.dropout=0.3", "data.test_speakers=[a]"])
    assert config_from_yaml(to_yaml(config)) == config


@pytest.mark.parametrize(
    "override, key",
    [("train.max_epochs_typo=3", "max_epochs_typo"), ("bogus.value=1", "bogus"), ("features.nmels=3", "nmels")],
)
def test_unknown_key_is_named(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(None, [override])


def test_unknown_key_in_yaml_names_key_and_file(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("train:\n  epochs: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "epochs" in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "override, key",
    [("train.max_epochs=many", "max_epochs"), ("data.batch_size=1.5", "batch_size"), ("train.lr=fast", "lr")],
)
def test_wrong_type_is_named(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert re.search(rf"\b{key}\b", str(info.value)), f"the error does not name {key!r}: {info.value}"


@pytest.mark.parametrize(
    "override, key",
    [("train.max_epochs=0", "train.max_epochs"), ("data.batch_size=-4", "data.batch_size"),
     ("data.val_fraction=1.0", "data.val_fraction"), ("model.dropout=1.5", "model.dropout"),
     ("train.lr=0", "train.lr"), ("data.clip_ms=0", "data.clip_ms")],
)
def test_out_of_range_value_is_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_other_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="max_epochs"):
        load_config(None, ["train.max_epochs"])  # not key=value
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(ConfigError, match=r"data\.extra_train=more\.jsonl: .* not task=asr"):
        load_config(None, ["task=asr", "data.extra_train=more.jsonl"])
    assert load_config(None, ["data.extra_train=more.jsonl"]).data.extra_train == "more.jsonl"


def test_noisy_room_recipe_loads_and_mixes_its_noises(monkeypatch):
    """configs/commands_noisy_room.yaml: its settings reach the augmenter, which finds the four
    noise recordings from the project root and mixes them, never the streams' test noises."""
    from pathlib import Path

    import numpy as np

    from audiorec.augment import WaveformAugment
    from conftest import shared_dataset

    shared_dataset("noise")
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    config = load_config(root / "configs" / "commands_noisy_room.yaml")
    noise = config.augment.background_noise
    assert (config.augment.color_noise.p, config.augment.color_noise.min_f_decay) == (0.8, -6.0)
    assert (noise.p, noise.min_snr_db, noise.max_snr_db) == (0.5, 0.0, 15.0)
    assert not {"running_tap", "doing_the_dishes"} & {Path(p).stem for p in noise.paths}
    config.augment.background_noise.p = 1.0  # every clip, to see the recordings mixed
    augment = WaveformAugment(config.augment, 16_000, clip_samples=16_000)
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)).astype(np.float32)
    mixed = [augment(tone, seed=s) for s in range(8)]
    assert all(len(y) == 16_000 for y, _ in mixed)
    drawn = [e for _, applied in mixed for e in applied if e["effect"] == "background_noise"]
    assert len(drawn) == 8 and {e["noise"] for e in drawn} <= {"dude_miaowing", "exercise_bike", "pink_noise", "white_noise"}
    assert all(0.0 <= e["snr_db"] <= 15.0 for e in drawn)
    assert not np.allclose(mixed[0][0], tone)
