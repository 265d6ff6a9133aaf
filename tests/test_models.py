"""The model zoo: every encoder's shapes, sizes against its paper, that it can learn, and that it
exports to ONNX with the same output as PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiorec.config import config_from_yaml, load_config
from audiorec.export import ProbabilityModel, export_onnx, quantize_int8
from audiorec.models import ENCODERS, build_model, count_parameters
from audiorec.runtime import OnnxModel

# (name, size, n_features, n_classes, the paper's parameter count). Sizes are compared with the
# paper's input and class count: 40 log-mel bins and 12 classes for cnn_trad_fpool3, ds_cnn and
# bc_resnet; 64 features and the 30 classes of Speech Commands v1 for matchboxnet. The paper of
# ds_cnn lists memory, not parameters; its figures here are the weights of its configurations.
PAPER_SIZES = [
    ("cnn_trad_fpool3", "fpool3", 40, 12, 244_200),
    ("ds_cnn", "S", 40, 12, 24_000),
    ("ds_cnn", "M", 40, 12, 140_000),
    ("ds_cnn", "L", 40, 12, 420_000),
    ("bc_resnet", "1", 40, 12, 9_200),
    ("bc_resnet", "3", 40, 12, 54_200),
    ("bc_resnet", "8", 40, 12, 321_000),
    ("matchboxnet", "3x1x64", 64, 30, 77_000),
    ("matchboxnet", "3x2x64", 64, 30, 93_000),
    ("matchboxnet", "6x2x64", 64, 30, 140_000),
]
# Models without a paper's count: (name, size, n_features, n_classes, the range their docstring
# promises); issue 4 asks for a crnn_fourier under 30 k parameters.
DOCUMENTED_SIZES = [
    ("crnn_fourier", "S", 40, 12, 20_000, 30_000),
    ("crnn_fourier", "M", 40, 12, 100_000, 200_000),
    ("crnn_fourier", "L", 40, 12, 400_000, 700_000),
]
NEW_MODELS = ("cnn_trad_fpool3", "ds_cnn", "bc_resnet", "matchboxnet", "crnn_fourier")


def _config(name: str, size: str = "", *overrides: str):
    return load_config(None, [f"model.name={name}", *([f"model.size={size}"] if size else []), *overrides])


@pytest.mark.parametrize("name, size", [(n, s) for n, s, *_ in PAPER_SIZES + DOCUMENTED_SIZES])
@pytest.mark.parametrize("n_features", [40, 64])
def test_encoder_shapes(name, size, n_features):
    encoder = ENCODERS[name](n_features=n_features, n_classes=5, size=size).eval()
    with torch.no_grad():
        for batch in (1, 3):
            for n_frames in (101, 61):
                assert encoder(torch.randn(batch, n_features, n_frames)).shape == (batch, 5)


@pytest.mark.parametrize("name, size, n_features, n_classes, paper", PAPER_SIZES)
def test_parameter_count_matches_the_paper(name, size, n_features, n_classes, paper):
    encoder = ENCODERS[name](n_features=n_features, n_classes=n_classes, size=size)
    assert 0.95 * paper <= count_parameters(encoder) <= 1.05 * paper


@pytest.mark.parametrize("name, size, n_features, n_classes, low, high", DOCUMENTED_SIZES)
def test_parameter_count_is_in_the_documented_range(name, size, n_features, n_classes, low, high):
    encoder = ENCODERS[name](n_features=n_features, n_classes=n_classes, size=size)
    assert low <= count_parameters(encoder) < high


def test_cnn_is_unchanged():
    config = load_config(None, [])
    assert config.model.name == "cnn" and config.model.size == ""
    assert count_parameters(build_model(config, 12).encoder) == 292_924  # four stages, 16-32-64-128 filters
    # The three-stage network of the runs before the fourth stage was the default.
    assert count_parameters(build_model(load_config(None, ["model.channels=[16,32,64]"]), 12).encoder) == 70_460
    # A run saved before model.size existed still loads.
    assert config_from_yaml("model:\n  name: cnn\n  channels: [16, 32, 64]\n  dropout: 0.2\n").model.size == ""


@pytest.mark.parametrize("name, allowed", [("cnn_trad_fpool3", "fpool3"), ("ds_cnn", "S, M, L"),
                                           ("bc_resnet", "1, 3, 8"), ("matchboxnet", "3x1x64, 3x2x64, 6x2x64"),
                                           ("crnn_fourier", "S, M, L")])
def test_unknown_size_is_refused(name, allowed):
    with pytest.raises(ValueError, match=f"{name} size 'XL' is not one of {allowed}"):
        build_model(_config(name, "XL"), 4)


def test_cnn_takes_no_size():
    with pytest.raises(ValueError, match="model.channels"):
        build_model(_config("cnn", "S"), 4)


@pytest.fixture(scope="module", params=NEW_MODELS)
def overfitted(request):
    """Each new model, with the front end, trained on 20 random clips of 4 classes until it
    classifies all of them with cross-entropy under 0.1: ``(name, model, steps, accuracy)``.

    Clips are 0.3 s (31 frames), which keeps cnn_trad_fpool3, the costliest per frame, near 2 s
    on one core; dropout and augmentation are off so that memorising is possible."""
    torch.manual_seed(0)
    model = build_model(_config(request.param, "", "model.dropout=0", "augment.enabled=false"), 4).train()
    waveforms = 0.1 * torch.randn(20, 4800, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(20) % 4
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(150):
        logits = model(waveforms)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        if accuracy == 1.0 and loss.item() < 0.1:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return request.param, model.eval(), step, accuracy


def test_overfits_twenty_clips(overfitted):
    name, _, steps, accuracy = overfitted
    assert accuracy == 1.0, f"{name} reached {accuracy:.0%} in {steps} steps"


def test_exports_to_onnx_with_pytorch_output(overfitted, tmp_path):
    name, model, _, _ = overfitted
    # Traced at the 0.3-s training clips, so both checks below run other lengths; torch.export
    # steps through every traced frame of an LSTM, and crnn_fourier takes 30 s at 1 s, 12 s here.
    onnx_model = OnnxModel(export_onnx(model, tmp_path / f"{name}.onnx", list("abcd"), 16_000, 4_800))
    rng = np.random.default_rng(1)
    for shape in [(1, 16_000), (3, 9_600)]:
        waveform = rng.normal(0, 0.1, shape).astype(np.float32)
        with torch.no_grad():
            expected = ProbabilityModel(model)(torch.from_numpy(waveform)).numpy()
        assert expected.std() > 1e-3, "trained probabilities should not be uniform"
        np.testing.assert_allclose(onnx_model(waveform), expected, atol=1e-4)


_WAVEFORMS = 0.1 * torch.randn(8, 4800, generator=torch.Generator().manual_seed(0))  # four classes, two clips each


def _trains_and_exports(model, parameter: torch.nn.Parameter, onnx_path):
    """Five Adam steps on :data:`_WAVEFORMS`: ``parameter`` receives a gradient at every step and
    moves; then the model, in eval mode, exports to ONNX with PyTorch's probabilities at a length
    other than traced (0.6 s). Returns the fp32 ``.onnx``."""
    labels = torch.arange(8) % 4
    initial = parameter.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(_WAVEFORMS), labels)
        optimizer.zero_grad()
        loss.backward()
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
        optimizer.step()
    assert (parameter.detach() - initial).abs().max() > 1e-3

    model.eval()
    fp32 = export_onnx(model, onnx_path, list("abcd"), 16_000, 16_000)
    waveform = np.random.default_rng(1).normal(0, 0.1, (3, 9_600)).astype(np.float32)
    with torch.no_grad():
        expected = ProbabilityModel(model)(torch.from_numpy(waveform)).numpy()
    np.testing.assert_allclose(OnnxModel(fp32)(waveform), expected, atol=1e-4)
    return fp32


def test_learnable_dft_starts_at_the_fixed_front_end_trains_and_exports(tmp_path):
    """``features.learnable_dft``: the STFT kernel is a parameter that starts at the windowed DFT,
    receives a gradient, moves in training and is exported with the model. Any model can use it;
    the cheapest to export, ``cnn``, stands for them (crnn_fourier's export is tested above)."""
    from audiorec.features import FeatureConfig, build_features

    torch.manual_seed(0)
    fixed = build_model(_config("cnn", "", "augment.enabled=false"), 4)
    model = build_model(_config("cnn", "", "augment.enabled=false", "features.learnable_dft=true"), 4)
    kernel = model.features.learned_dft
    assert isinstance(kernel, torch.nn.Parameter) and kernel.shape == (2 * 257, 1, 400)
    assert count_parameters(model) == count_parameters(fixed) + kernel.numel()
    assert fixed.features.learned_dft is None and not any("dft" in k for k in fixed.state_dict())
    assert isinstance(build_features(FeatureConfig(kind="mfcc", learnable_dft=True)).log_mel.learned_dft, torch.nn.Parameter)

    with torch.no_grad():
        torch.testing.assert_close(model.features(_WAVEFORMS), fixed.features(_WAVEFORMS))
    fp32 = _trains_and_exports(model, kernel, tmp_path / "learnable_dft.onnx")

    # int8 keeps the trained kernel in float, as the computed one: 8 bits cannot hold the spectrum.
    import onnx

    int8 = onnx.load(str(quantize_int8(fp32, tmp_path / "learnable_dft.int8.onnx", _WAVEFORMS.numpy())))
    kernels = [i for i in int8.graph.initializer if i.name == "model.features.learned_dft"]
    assert len(kernels) == 1 and kernels[0].data_type == onnx.TensorProto.FLOAT
    assert not any(n.op_type == "DequantizeLinear" and n.input[0].startswith("model.features.") for n in int8.graph.node)


def test_trainable_pcen_front_end_trains_and_exports(tmp_path):
    """``features.kind=pcen features.pcen_trainable=true``: the per-band gain, bias and power receive
    a gradient and move in training, and the model exports to ONNX (the smoother is a convolution
    computed in the graph) with PyTorch's output, in fp32 and int8, at a length other than traced."""
    torch.manual_seed(0)
    model = build_model(_config("cnn", "", "augment.enabled=false", "features.kind=pcen", "features.pcen_trainable=true"), 4)
    params = model.features.log_params
    assert isinstance(params, torch.nn.Parameter) and params.shape == (40, 3)
    fp32 = _trains_and_exports(model, params, tmp_path / "pcen.onnx")
    int8 = quantize_int8(fp32, tmp_path / "pcen.int8.onnx", _WAVEFORMS.numpy())
    waveform = np.random.default_rng(1).normal(0, 0.1, (3, 9_600)).astype(np.float32)
    with torch.no_grad():
        expected = ProbabilityModel(model)(torch.from_numpy(waveform)).numpy()
    assert np.abs(OnnxModel(int8)(waveform) - expected).max() < 0.1
    import onnx

    graph = onnx.load(str(int8)).graph
    stored = {i.name for i in graph.initializer}
    quantized = [n.input[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in stored]
    assert quantized and all(name.startswith("model.encoder.") for name in quantized)  # the front end stays float


def test_model_flag_and_unknown_names_are_checked_with_the_config():
    from audiorec.cli import _training_config, build_parser
    from audiorec.config import ConfigError, load_config

    args = build_parser().parse_args(["train", "--data", "x", "--out", "y", "--model", "ds_cnn", "model.size=M"])
    config = _training_config(args)
    assert (config.model.name, config.model.size) == ("ds_cnn", "M")
    with pytest.raises(ConfigError, match="model.name=nope is not one of cnn, cnn_trad_fpool3"):
        load_config(None, ["model.name=nope"])
