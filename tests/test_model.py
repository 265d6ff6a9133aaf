"""The classifier's front end: normalisation that removes the channel, the dynamic-range clamp,
and the moving average of the weights that inference uses."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from audiorec.config import load_config
from audiorec.features import LogMel
from audiorec.models import build_model


def _speechlike(seed: int = 0, n: int = 16_000) -> np.ndarray:
    """Noise bursts shaped by a slow envelope: broadband, with silences, like a spoken word."""
    rng = np.random.default_rng(seed)
    envelope = np.clip(np.sin(np.linspace(0, 3 * np.pi, n)), 0, None) ** 2
    return (0.3 * envelope * rng.normal(0, 1, n)).astype(np.float32)


def _normalised_features(model, waveform: np.ndarray) -> torch.Tensor:
    captured = {}
    hook = model.encoder.register_forward_pre_hook(lambda module, args: captured.setdefault("x", args[0]))
    model.eval()
    with torch.no_grad():
        model(torch.from_numpy(waveform)[None])
    hook.remove()
    return captured["x"][0]


def test_per_bin_normalisation_removes_a_fixed_channel():
    """A microphone is a fixed filter; the normalised features must barely change under one."""
    config = load_config(None, ["features.top_db=0"])
    model = build_model(config, n_classes=3)
    clean = _speechlike()
    # A gentle, fixed equaliser (first-order high-shelf) and 12 dB of gain.
    b, a = scipy.signal.butter(1, 2000, btype="high", fs=16_000)
    filtered = (4 * (clean + 0.8 * scipy.signal.lfilter(b, a, clean))).astype(np.float32)
    x, y = _normalised_features(model, clean), _normalised_features(model, filtered)
    raw_x = LogMel()(torch.from_numpy(clean)[None])[0]
    raw_y = LogMel()(torch.from_numpy(filtered)[None])[0]
    # Unnormalised log-mel differs a lot; the normalised features differ far less.
    raw_gap = (raw_x - raw_y).abs().mean() / raw_x.std()
    norm_gap = (x - y).abs().mean() / x.std()
    assert raw_gap > 0.3
    assert norm_gap < 0.25 * raw_gap


def test_top_db_clamps_the_dynamic_range():
    quiet_floor = np.zeros(16_000, np.float32)
    quiet_floor[4000:8000] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(4000) / 16_000)
    full = LogMel(top_db=0)(torch.from_numpy(quiet_floor)[None])
    clamped = LogMel(top_db=40)(torch.from_numpy(quiet_floor)[None])
    peak = full.max()
    assert (full.max() - full.min()) * 10 / np.log(10) > 60  # digital silence: a deep floor
    assert float(clamped.min()) == pytest.approx(float(peak - 40 * np.log(10) / 10), abs=1e-4)
    assert float(clamped.max()) == pytest.approx(float(peak), abs=1e-5)
    with pytest.raises(ValueError, match="top_db"):
        LogMel(top_db=-1)


def test_recognizer_uses_the_moving_average_of_the_weights(trained_run):
    """The checkpoint holds the trained and the averaged weights; inference uses the average."""
    from audiorec.runtime import Recognizer

    run_dir, _, _ = trained_run
    state = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    averaged = {k.removeprefix("ema.module."): v for k, v in state.items() if k.startswith("ema.module.")}
    trained = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    assert averaged and averaged.keys() == trained.keys()
    assert any(not torch.equal(averaged[k], trained[k]) for k in trained if trained[k].is_floating_point())
    loaded = Recognizer.from_run(run_dir).predict.model.state_dict()
    for key, value in averaged.items():
        assert torch.equal(loaded[key], value), key


def test_training_without_validation_keeps_the_last_weights(synth_corpus, tmp_path):
    from audiorec.train import train

    config = load_config(None, ["train.max_epochs=2", "model.channels=[8,16]", "data.batch_size=16",
                                "data.val_fraction=0", "train.accelerator=cpu"])
    with pytest.warns(UserWarning, match="no validation split"):
        metrics = train(synth_corpus, tmp_path / "run", config, progress=False)
    assert metrics["n_val"] == 0 and metrics["best_val_accuracy"] is None
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["epochs"] == 2
