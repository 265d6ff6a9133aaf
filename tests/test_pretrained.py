"""The pretrained speech-embedding front end and the model over it: the same numbers as the
published ONNX files, frozen weights, the config that pairs them, training and export through the
common path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiorec.config import ConfigError, load_config
from audiorec.export import export_run
from audiorec.models import build_model, count_parameters
from audiorec.pretrained import SpeechEmbedding, model_files
from audiorec.runtime import Recognizer
from audiorec.train import train



@pytest.fixture(scope="module")
def embedding():
    return SpeechEmbedding().eval()


def _speechlike(n: int, seed: int) -> np.ndarray:
    """A 1-s clip: a gliding harmonic tone with an onset and offset, over faint noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16_000
    f0 = rng.uniform(100, 220) * (1 + 0.3 * t)
    tone = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16_000) / k for k in range(1, 6))
    envelope = np.exp(-((t - 0.5) / 0.15) ** 2)
    return (0.3 * tone * envelope + 0.003 * rng.normal(size=n)).astype(np.float32)


def test_matches_the_published_onnx_files(embedding):
    import onnxruntime as ort

    mel_path, embedding_path = model_files()
    mel, net = ort.InferenceSession(str(mel_path)), ort.InferenceSession(str(embedding_path))
    for seed in range(3):
        clip = _speechlike(16_000, seed)
        padded = np.pad(clip, 8000)[None] * 32767
        spec = np.squeeze(mel.run(None, {"input": padded.astype(np.float32)})[0], 1)[0] / 10 + 2  # openWakeWord's scaling
        windows = np.stack([spec[i : i + 76] for i in range(0, len(spec) - 75, 8)])[..., None]
        expected = net.run(None, {"input_1": windows.astype(np.float32)})[0].reshape(len(windows), 96)
        with torch.no_grad():
            got = embedding(torch.from_numpy(clip)[None])[0].T.numpy()
        assert got.shape == expected.shape == (16, 96)
        np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())


def test_the_folded_stft_equals_the_published_convolution(embedding):
    """openWakeWord's STFT kernel is a symmetric window times the DFT, so it is computed folded."""
    from audiorec.pretrained import _folded_half_window

    assert embedding.folded and embedding.half_window.shape == (256,)
    x = torch.from_numpy(np.stack([_speechlike(16_000, seed) for seed in range(2)]))
    with torch.no_grad():
        fast = embedding.log_mel(x)
        embedding.folded = False
        try:
            slow = embedding.log_mel(x)
        finally:
            embedding.folded = True
    assert fast.shape == slow.shape == (2, (16_000 + 2 * 8_000 - 512) // 160 + 1, 32)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-4)
    kernel = embedding.dft.detach().clone()
    kernel[3, 0, 100] += 0.01  # no longer a window times the DFT: the convolution it is
    assert _folded_half_window(kernel) is None and _folded_half_window(torch.randn(514, 1, 512)) is None


@pytest.mark.parametrize("n_samples", [16_000, 12_000, 20_800, 4_800])
def test_one_embedding_every_80_ms(embedding, n_samples):
    with torch.no_grad():
        out = embedding(torch.zeros(2, n_samples) + 0.01 * torch.randn(2, n_samples))
    assert out.shape == (2, 96, SpeechEmbedding.n_embeddings(n_samples))
    assert SpeechEmbedding.n_embeddings(16_000) == 16 and SpeechEmbedding.n_embeddings(20_800) == 19


def test_weights_are_frozen_and_not_counted():
    model = build_model(load_config(None, ["model.name=speech_embedding"]), 12)
    head = sum(p.numel() for p in model.encoder.parameters())
    assert count_parameters(model) == head == 88_332
    assert count_parameters(build_model(load_config(None, ["model.name=speech_embedding", "model.size=S"]), 12)) == 31_884
    frozen = [p for p in model.features.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)
    assert sum(p.numel() for p in frozen) > 500_000  # the STFT kernel, mel matrix and embedding network


def test_finetuning_unfreezes_the_last_convolutions_at_a_smaller_learning_rate():
    from audiorec.tasks.base import build_optimizer
    from audiorec.tasks.commands import CommandTask

    config = load_config(None, ["model.name=speech_embedding", "features.finetune_layers=2", "train.finetune_lr_scale=0.05"])
    model = build_model(config, 12)
    convs = [m for m in model.features.embedding if isinstance(m, torch.nn.Conv2d)]
    assert [any(p.requires_grad for p in c.parameters()) for c in convs] == [False] * 18 + [True, True]
    tuned = model.features.finetuned_parameters()
    assert sum(p.numel() for p in tuned) == 27_744 + 27_648  # 96x96x3x1 + bias, then 96x96x3x1 without bias
    assert count_parameters(model) == 88_332 + 27_744 + 27_648
    groups = build_optimizer("adamw", CommandTask(model, config.train).parameter_groups(), config.train).param_groups
    assert [g["lr"] for g in groups] == pytest.approx([config.train.lr, 0.05 * config.train.lr])
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in tuned}
    # One step of backpropagation reaches the tuned layers and no frozen one.
    before = [c.weight.detach().clone() for c in convs]
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    model.train()
    torch.nn.functional.cross_entropy(model(torch.from_numpy(np.stack([_speechlike(16_000, s) for s in range(4)]))),
                                      torch.tensor([2, 3, 4, 5])).backward()
    opt.step()
    moved = [not torch.equal(b, c.weight) for b, c in zip(before, convs)]
    assert moved == [False] * 18 + [True, True]
    with pytest.raises(ValueError, match="finetune_layers=21"):
        build_model(load_config(None, ["model.name=speech_embedding", "features.finetune_layers=21"]), 12)
    with pytest.raises(ConfigError, match="finetune_layers=2 fine-tunes a pretrained front end"):
        load_config(None, ["features.finetune_layers=2"])
    with pytest.raises(ConfigError, match="finetune_lr_scale"):
        load_config(None, ["train.finetune_lr_scale=0"])


def test_model_name_sets_the_front_end_and_mismatches_are_refused():
    config = load_config(None, ["model.name=speech_embedding"])
    assert config.features.kind == "speech_embedding"
    assert config.augment.spec_augment.freq_masks == 0 and config.augment.spec_augment.time_masks == 0
    with pytest.raises(ConfigError, match="go together"):
        load_config(None, ["features.kind=speech_embedding"])
    with pytest.raises(ConfigError, match="go together"):
        load_config(None, ["model.name=speech_embedding", "features.kind=log_mel"])
    with pytest.raises(ValueError, match="features.sample_rate=16000"):
        build_model(load_config(None, ["model.name=speech_embedding", "features.sample_rate=8000"]), 3)
    with pytest.raises(ValueError, match="size must be one of S, M"):
        build_model(load_config(None, ["model.name=speech_embedding", "model.size=L"]), 3)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="melspectrogram.onnx: no such file.*openwakeword==0.5.1"):
        model_files(tmp_path)
    (tmp_path / "melspectrogram.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="embedding_model.onnx"):
        SpeechEmbedding(model_dir=tmp_path)


def test_trains_and_exports_through_the_common_path(synth_corpus, tmp_path):
    run_dir = tmp_path / "se"
    config = load_config(None, ["model.name=speech_embedding", "model.size=S", "train.max_epochs=8",
                                "data.batch_size=16"])
    metrics = train(synth_corpus, run_dir, config, progress=False)
    assert metrics["n_parameters"] == count_parameters(build_model(config, 3))
    assert metrics["test_accuracy"] > 0.6  # three words, chance is 1/3
    report = export_run(run_dir, tmp_path / "se.onnx", progress=False)
    assert report.parity_max_abs_diff < 1e-4 and report.parity_top1_agreement == 1.0
    recognizer = Recognizer.load(tmp_path / "se.onnx")
    assert recognizer.labels == ["no", "up", "yes"]


def test_benchmark_model_choice_brings_the_front_end():
    from audiorec.bench import ModelChoice

    base = load_config(None, ["train.max_epochs=5"])
    config = ModelChoice.parse("speech_embedding:S").config(base)
    assert (config.model.name, config.model.size, config.features.kind) == ("speech_embedding", "S", "speech_embedding")
    assert config.train.max_epochs == 5 and base.features.kind == "log_mel"
    assert ModelChoice.parse("ds_cnn:S").config(base).features.kind == "log_mel"


def test_model_flag_brings_the_front_end():
    from audiorec.cli import _training_config, build_parser

    args = build_parser().parse_args(["train", "--data", "x", "--out", "y", "--model", "speech_embedding", "model.size=S"])
    config = _training_config(args)
    assert (config.model.name, config.model.size, config.features.kind) == ("speech_embedding", "S", "speech_embedding")
