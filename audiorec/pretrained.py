"""A pretrained front end: Google's speech embedding, frozen, as a feature module.

Lin et al. 2020, "Training Keyword Spotters with Limited and Synthesized Speech Data" (ICASSP,
arXiv:2002.01322) trained a convolutional network on a large corpus of keyword audio to map 76
frames of 32 log-mel bands (775 ms) to a 96-dimensional embedding, and showed that small
classifiers over it learn keywords from few examples. Google published it on TF Hub
(``google/speech_embedding/1``, Apache-2.0); openWakeWord (Apache-2.0) re-implemented it and its
mel front end as two ONNX files, which its 0.5.1 wheel on PyPI ships
(``openwakeword/resources/models/{melspectrogram,embedding_model}.onnx``). ``make install``
installs that wheel without its dependencies; only those two files are used, never openWakeWord's
own wake-word models (which are CC BY-NC-SA).

:class:`SpeechEmbedding` rebuilds both graphs as PyTorch layers holding the ONNX weights, so the
embedding is one more front end of :class:`~audiorec.models.classifier.CommandClassifier`: trained
over with the same pipeline (its weights frozen), exported inside the model's ONNX graph, and run
by :class:`~audiorec.runtime.Recognizer` without PyTorch or openWakeWord. Its output matches the
two ONNX files run by ONNX Runtime to within 1e-4 (tests/test_pretrained.py).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from audiorec.features import dft_angles, fold_bins, folded_dft_matrices, folded_power, frame_signal, frames_by_slices, graph_constant

OPENWAKEWORD_VERSION = "0.5.1"
INSTALL_HINT = f"python -m pip install --no-deps openwakeword=={OPENWAKEWORD_VERSION} (make install does it)"
SAMPLE_RATE = 16000
HOP_SAMPLES = 160  # 10 ms mel frames
WINDOW_FRAMES = 76  # mel frames per embedding (775 ms with the 512-sample STFT window)
STEP_FRAMES = 8  # mel frames between embeddings (80 ms)
EMBEDDING_DIM = 96


def model_files(directory: str | Path | None = None) -> tuple[Path, Path]:
    """Where the mel and embedding ONNX files are.

    Parameters
    ----------
    directory : str or Path, optional
        A folder holding ``melspectrogram.onnx`` and ``embedding_model.onnx``; by default the
        installed openWakeWord package's ``resources/models`` (found without importing it).

    Returns
    -------
    (Path, Path)
        The mel spectrogram model and the embedding model.

    Raises
    ------
    FileNotFoundError
        openWakeWord is not installed or a file is missing; the message says how to install it.
    """
    if directory is None:
        spec = importlib.util.find_spec("openwakeword")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"the speech embedding front end needs openWakeWord's model files: {INSTALL_HINT}")
        directory = Path(list(spec.submodule_search_locations)[0]) / "resources" / "models"
    directory = Path(directory)
    files = (directory / "melspectrogram.onnx", directory / "embedding_model.onnx")
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no such file (the speech embedding's model files; {INSTALL_HINT})")
    return files


def _initializers(path: Path) -> tuple[list, dict]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    for node in graph.node:  # constants stored as nodes count as weights too
        if node.op_type == "Constant":
            weights[node.output[0]] = torch.from_numpy(numpy_helper.to_array(node.attribute[0].t).copy())
    return list(graph.node), weights


def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _ClampMin(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.value)


def _embedding_layers(path: Path) -> nn.Sequential:
    """The embedding network's chain of layers, read node by node from its ONNX graph."""
    nodes, weights = _initializers(path)
    layers: list[nn.Module] = []
    for node in nodes:
        op, attrs = node.op_type, _attributes(node)
        if op in ("Reshape", "Constant"):
            continue  # NHWC with one channel in, (batch, 1, 1, 96) out: the forward pass handles both
        if op == "Conv":
            w = weights[node.input[1]]
            b = weights[node.input[2]] if len(node.input) > 2 else None
            pads = attrs.get("pads", [0, 0, 0, 0])
            if pads[0] != pads[2] or pads[1] != pads[3] or attrs.get("group", 1) != 1:
                raise ValueError(f"{path}: unsupported Conv padding {pads} or groups in {node.name}")
            conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), padding=(pads[0], pads[1]), bias=b is not None)
            conv.weight.data.copy_(w)
            if b is not None:
                conv.bias.data.copy_(b)
            layers.append(conv)
        elif op == "LeakyRelu":
            layers.append(nn.LeakyReLU(attrs["alpha"]))
        elif op == "Max":
            layers.append(_ClampMin(float(weights[node.input[1]].reshape(-1)[0])))
        elif op == "MaxPool":
            if any(attrs.get("pads", [0])):
                raise ValueError(f"{path}: unsupported MaxPool padding in {node.name}")
            layers.append(nn.MaxPool2d(tuple(attrs["kernel_shape"]), tuple(attrs["strides"])))
        else:
            raise ValueError(f"{path}: unsupported operator {op} in {node.name}; expected openWakeWord {OPENWAKEWORD_VERSION}'s file")
    return nn.Sequential(*layers)


def _folded_half_window(dft: torch.Tensor) -> torch.Tensor | None:
    """The right half ``w[n / 2 + m]`` of the window in a stored STFT kernel, when the kernel is
    that window times the plain DFT and the window is symmetric about tap ``n / 2`` with
    ``w[0] = 0`` (what :func:`audiorec.features.folded_dft_matrices` needs); None otherwise.

    ``dft`` is ``(2 * (n / 2 + 1), 1, n)``: the cosines of bins ``0 .. n / 2``, then the negated
    sines, times the window (bin 0's cosine row is the window itself).
    """
    n = dft.shape[-1]
    window = dft[0, 0].double()
    if n % 4 or dft.shape[0] != 2 * (n // 2 + 1) or window[0] != 0 or not torch.equal(window[1:], window[1:].flip(0)):
        return None
    taps, bins = torch.arange(n), torch.arange(n // 2 + 1)
    angle = dft_angles(bins, taps, n, torch.float64)
    expected = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window
    if (dft[:, 0].double() - expected).abs().max() > 1e-5 * window.abs().max():
        return None
    return dft[0, 0, n // 2:].clone()


class SpeechEmbedding(nn.Module):
    """Google's speech embedding (Lin et al. 2020) as a frozen front end: waveform to 96-d frames.

    The waveform is padded with ``pad_s`` of silence at each end (a 1-s clip becomes 2 s and
    gives 16 embeddings rather than 3), scaled to 16-bit range, and turned into 32 log-mel
    bands every 10 ms by the published front end: a 512-sample STFT as two convolutions, power,
    a fixed mel matrix, ``10 log10`` with an 80-dB floor below the clip's loudest cell (the ONNX
    file takes that maximum over the whole batch; here it is per clip, as for
    :class:`~audiorec.features.LogMel`), then ``x / 10 + 2`` (openWakeWord's match to the TF Hub
    module). The STFT kernel is checked at load to be a symmetric window times the DFT, and if
    it is (openWakeWord 0.5.1's is) it is computed as :func:`audiorec.features.folded_power`
    does, with a quarter of the convolution's multiply-adds and the same power to float32
    rounding (``folded``); the stored kernel then stays in checkpoints but not in exported
    graphs. The embedding network (20 convolutions, 3.3e5 weights) maps 76 frames to one
    embedding; as it is convolutional in time, unpadded, with a stride of 8 frames, one pass over
    the whole clip gives exactly the embeddings of its 76-frame windows every 8 frames (what
    openWakeWord computes window by window), with a sixth of the arithmetic for a 1-s clip.

    Its parameters are frozen (``requires_grad=False``), so they are not counted as trained
    parameters and no optimiser moves them; they are stored in checkpoints and exported files.
    ``finetune_layers`` unfreezes the last convolutions of the embedding network (fine-tuning
    the top of a pretrained network while its lower layers stay fixed, as in Yosinski et al.
    2014 and Howard & Ruder 2018); :meth:`finetuned_parameters` lists them, so that the
    optimiser can give them a smaller learning rate (``train.finetune_lr_scale``).

    Parameters
    ----------
    sample_rate : int
        Must be 16000, the rate the embedding was trained at.
    pad_s : float >= 0
        Silence added before and after the clip, in seconds.
    model_dir : str or Path, optional
        Folder of the two ONNX files (see :func:`model_files`).
    finetune_layers : int in [0, 20]
        How many of the embedding network's last convolutions are trained (0: all frozen). The
        last 4 hold 1.1e5 weights and run on 1/16 of the first layers' time-frequency grid.

    Shape
    -----
    input : (batch, n_samples), float in [-1, 1], n_samples + 2 * pad_s * 16000 >= 12512 (782 ms)
    output : (batch, 96, n_embeddings), one embedding every 80 ms:
        ``n_embeddings = ((n_samples + 2 * pad - 512) // 160 + 1 - 76) // 8 + 1``
        (16 for a 1-s clip with the default padding).

    Raises
    ------
    ValueError
        ``sample_rate`` is not 16000, ``pad_s`` is negative, ``finetune_layers`` is outside
        [0, 20], or the ONNX files are not the expected graphs.
    FileNotFoundError
        The ONNX files are not installed.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, pad_s: float = 0.5, model_dir: str | Path | None = None,
                 finetune_layers: int = 0):
        super().__init__()
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"features.kind=speech_embedding needs features.sample_rate={SAMPLE_RATE}, got {sample_rate}")
        if pad_s < 0:
            raise ValueError(f"pad_s must be >= 0 seconds, got {pad_s}")
        mel_path, embedding_path = model_files(model_dir)
        _, w = _initializers(mel_path)
        try:
            dft = torch.cat([w["0.stft.conv_real.weight"], w["0.stft.conv_imag.weight"]])  # (514, 1, 512)
            mel = w["1.melW"]  # (257, 32)
        except KeyError as e:
            raise ValueError(f"{mel_path}: no initializer {e}; expected openWakeWord {OPENWAKEWORD_VERSION}'s file") from None
        self.dft = nn.Parameter(dft, requires_grad=False)
        self.mel = nn.Parameter(mel, requires_grad=False)
        # A window times the plain DFT, as openWakeWord's is: computed folded, a quarter of the
        # convolution's multiply-adds (audiorec.features.folded_power); the kernel stays stored
        # for checkpoints but drops out of exported graphs.
        half_window = _folded_half_window(dft)
        self.folded = half_window is not None and frames_by_slices(dft.shape[-1], HOP_SAMPLES)
        self.register_buffer("half_window", half_window, persistent=False)
        self._constants: dict = {}
        # Channels-last halves PyTorch's time for these small-channel convolutions on the CPU.
        self.embedding = _embedding_layers(embedding_path).to(memory_format=torch.channels_last)
        for p in self.embedding.parameters():
            p.requires_grad_(False)
        convs = [layer for layer in self.embedding if isinstance(layer, nn.Conv2d)]
        if not (isinstance(finetune_layers, int) and 0 <= finetune_layers <= len(convs)):
            raise ValueError(f"features.finetune_layers={finetune_layers!r}: must be an integer from 0 to {len(convs)}, "
                             "the embedding network's convolutions")
        for conv in convs[len(convs) - finetune_layers :]:
            conv.requires_grad_(True)
        self.pad = int(round(pad_s * SAMPLE_RATE))
        self.n_features = EMBEDDING_DIM
        self.normalised = True  # the classifier must not re-normalise these embeddings per clip

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """The published front end: (batch, n_samples) to (batch, n_frames, 32), 10-ms frames."""
        x = F.pad(waveform, (self.pad, self.pad)) * 32767.0
        if self.folded:
            n_fft = self.dft.shape[-1]
            matrices = graph_constant(self._constants, "folded_dft", lambda: folded_dft_matrices(self.half_window, n_fft), x)
            power = folded_power(frame_signal(x, n_fft, HOP_SAMPLES), matrices)  # (batch, n_frames, 2 * (n_fft // 4 + 1))
            mel = torch.matmul(power, graph_constant(self._constants, "folded_mel", lambda: fold_bins(self.mel), x))
        else:
            spec = F.conv1d(x.unsqueeze(1), self.dft, stride=HOP_SAMPLES)  # (batch, 514, n_frames)
            n_bins = self.mel.shape[0]
            power = spec[:, :n_bins] ** 2 + spec[:, n_bins:] ** 2
            mel = torch.matmul(power.transpose(1, 2), self.mel)  # (batch, n_frames, 32)
        db = 10.0 * torch.log10(mel.clamp(min=1e-10))
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - 80.0)
        return db / 10.0 + 2.0

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = self.log_mel(waveform)  # (batch, n_frames, 32): the network's image is frames x bands
        x = mel.unsqueeze(1).contiguous(memory_format=torch.channels_last)
        return self.embedding(x).squeeze(3).contiguous()

    def finetuned_parameters(self) -> list[nn.Parameter]:
        """The pretrained weights that ``finetune_layers`` unfroze (empty when frozen)."""
        return [p for p in self.embedding.parameters() if p.requires_grad]

    @staticmethod
    def n_embeddings(n_samples: int, pad_s: float = 0.5) -> int:
        """Embeddings for a clip of ``n_samples`` (see the class's Shape)."""
        n_frames = (n_samples + 2 * int(round(pad_s * SAMPLE_RATE)) - 512) // HOP_SAMPLES + 1
        return max(0, math.floor((n_frames - WINDOW_FRAMES) / STEP_FRAMES) + 1)
