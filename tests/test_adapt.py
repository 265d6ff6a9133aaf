"""Unsupervised speaker adaptation (AdaBN): the statistics it sets, the run it writes, its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audiorec.adapt import adapt_batch_norm, adapt_run, adaptation_files, adaptation_gain, batch_norm_layers
from audiorec.cli import main
from audiorec.config import load_config
from audiorec.data.manifest import read_manifest
from audiorec.models import build_model
from audiorec.run import RunError
from audiorec.runtime import Recognizer
from conftest import hash_tree, write_sine

SAMPLES = 16_000


def _model(name: str = "cnn"):
    torch.manual_seed(0)
    return build_model(load_config(None, [f"model.name={name}"]), n_classes=3).eval()


def _clips(n: int, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal((n, SAMPLES))).astype(np.float32)


def _first_bn_input(model, clips: np.ndarray) -> torch.Tensor:
    """What the first batch-norm layer receives for ``clips`` (one batch)."""
    seen = []
    handle = batch_norm_layers(model)[0].register_forward_hook(lambda m, inputs, out: seen.append(inputs[0]))
    with torch.no_grad():
        model(torch.from_numpy(clips))
    handle.remove()
    return seen[0]


def test_adapted_statistics_are_the_clips_statistics_and_the_source_is_untouched():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clips = _clips(8)
    adapted = adapt_batch_norm(model, clips, batch_size=4)  # two equal batches: their mean is the mean
    layer_input = _first_bn_input(model, clips)
    expected_mean = layer_input.mean(dim=(0, 2, 3))
    first = batch_norm_layers(adapted)[0]
    assert torch.allclose(first.running_mean, expected_mean, atol=1e-5)
    assert not torch.allclose(first.running_mean, batch_norm_layers(model)[0].running_mean)  # it did change
    # The adapted layer standardises the clips: output mean is the layer's bias, per channel.
    normalised = (layer_input - first.running_mean[None, :, None, None]) / torch.sqrt(first.running_var[None, :, None, None] + first.eps)
    assert normalised.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert normalised.std(dim=(0, 2, 3)).sub(1).abs().max() < 0.05
    assert not adapted.training and not any(m.training for m in adapted.modules())
    for key, value in model.state_dict().items():  # the source model is not modified
        assert torch.equal(value, before[key]), key
    for (key, a), (_, b) in zip(adapted.state_dict().items(), model.state_dict().items()):
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(a, b), f"{key}: only batch-norm statistics may change"


def test_weight_mixes_the_trained_and_the_new_statistics():
    model = _model()
    clips = _clips(6, seed=1, scale=0.3)
    full = adapt_batch_norm(model, clips, weight=1.0)
    half = adapt_batch_norm(model, clips, weight=0.5)
    for old, new, mixed in zip(batch_norm_layers(model), batch_norm_layers(full), batch_norm_layers(half)):
        assert torch.allclose(mixed.running_mean, 0.5 * (old.running_mean + new.running_mean), atol=1e-6)
        assert torch.allclose(mixed.running_var, 0.5 * (old.running_var + new.running_var), atol=1e-6)


def test_bad_adaptation_input_is_refused():
    with pytest.raises(ValueError, match="CNNTradFPool3 has no batch-norm layer"):
        adapt_batch_norm(_model("cnn_trad_fpool3"), _clips(2))
    with pytest.raises(ValueError, match=r"shape \(0, 16000\)"):
        adapt_batch_norm(_model(), np.zeros((0, SAMPLES), np.float32))
    with pytest.raises(ValueError, match="weight=0"):
        adapt_batch_norm(_model(), _clips(2), weight=0.0)


def test_adaptation_gain_never_tests_a_clip_it_adapted_to():
    model = _model()
    clips, targets = _clips(10, seed=2), np.arange(10) % 3
    gain = adaptation_gain(model, clips, targets, np.array([0, 3, 3, 7]))
    assert gain["n_adapt"] == 3 and gain["n_test"] == 7
    with torch.no_grad():
        rest = np.setdiff1d(np.arange(10), [0, 3, 7])
        expected = float((model(torch.from_numpy(clips[rest])).argmax(1).numpy() == targets[rest]).mean())
    assert gain["unadapted_accuracy"] == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="at least one to adapt to and one to test"):
        adaptation_gain(model, clips, targets, np.arange(10))


def test_adapt_writes_a_new_run_that_recognises_and_leaves_the_source_alone(trained_run, tmp_path, capsys):
    run_dir, _, _ = trained_run
    source_files = hash_tree(run_dir)
    test = read_manifest(run_dir / "splits" / "test.jsonl")
    speaker = test[0].speaker
    voice = tmp_path / "voice"
    voice.mkdir()
    for u in test:  # unlabelled recordings of one speaker, in a flat folder
        if u.speaker == speaker:
            (voice / f"{len(list(voice.iterdir()))}.wav").write_bytes(open(u.path, "rb").read())
    out = tmp_path / "adapted"
    code = main(["adapt", str(run_dir), "--data", str(voice), "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "batch-norm layers" in stdout
    record = json.loads((out / "adaptation.json").read_text())
    assert record["n_clips"] == len(list(voice.iterdir())) and record["source_run"] == str(run_dir.resolve())
    assert hash_tree(run_dir) == source_files  # the source run is only read
    assert (out / "config.yaml").read_text() == (run_dir / "config.yaml").read_text()

    recognizer = Recognizer.from_run(out)
    result = recognizer.recognize_file(test[0].path)
    assert result.label in recognizer.labels
    plain = Recognizer.from_run(run_dir)
    state = {k: v for k, v in recognizer.predict.model.state_dict().items() if "running_mean" in k}
    assert any(not torch.equal(v, plain.predict.model.state_dict()[k]) for k, v in state.items())

    # Again into the same adaptation folder: replaced, with --max-clips drawing a subset.
    assert main(["adapt", str(run_dir), "--data", str(voice), "--out", str(out), "--max-clips", "2"]) == 0
    assert json.loads((out / "adaptation.json").read_text())["n_clips"] == 2


def test_adapt_refuses_to_overwrite_and_names_bad_data(trained_run, tmp_path, capsys):
    run_dir, _, _ = trained_run
    assert main(["adapt", str(run_dir), "--data", str(tmp_path), "--out", str(run_dir)]) == 2
    assert "source run is never modified" in capsys.readouterr().err
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not an adaptation"):
        adapt_run(run_dir, [tmp_path], occupied)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=f"{empty} holds no audio files"):
        adapt_run(run_dir, [empty], tmp_path / "out1")
    with pytest.raises(FileNotFoundError, match="missing.wav does not exist"):
        adaptation_files([tmp_path / "missing.wav"])
    broken = tmp_path / "broken" / "a.wav"
    broken.parent.mkdir()
    broken.write_bytes(b"RIFF not really a wave file")
    write_sine(tmp_path / "broken" / "b.wav")
    with pytest.raises(ValueError, match=f"adaptation file {broken} cannot be used"):
        adapt_run(run_dir, [broken.parent], tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
