"""MatchboxNet: residual blocks of 1-D time-channel separable convolutions over the feature frames."""

from __future__ import annotations

import torch
from torch import nn

SIZES = ("3x1x64", "3x2x64", "6x2x64")  # BxRxC: blocks, sub-blocks per block, channels per block
BLOCK_KERNELS = (13, 15, 17)  # kernel width in frames of blocks 1-3 (the paper's Table 1)


def _separable(c_in: int, c_out: int, kernel: int, dilation: int = 1) -> list[nn.Module]:
    """A depthwise 1-D convolution over time and a pointwise one across channels, then batch norm."""
    return [
        nn.Conv1d(c_in, c_in, kernel, padding=dilation * (kernel // 2), dilation=dilation, groups=c_in, bias=False),
        nn.Conv1d(c_in, c_out, 1, bias=False),
        nn.BatchNorm1d(c_out),
    ]


class MatchboxBlock(nn.Module):
    """``repeats`` sub-blocks (separable convolution, batch norm, ReLU, dropout) with a residual
    connection: a 1x1 convolution and batch norm of the block input, added before the last ReLU.

    Parameters
    ----------
    in_channels, channels : int
    kernel : int
        Width of the depthwise convolutions in frames.
    repeats : int >= 1
        Sub-blocks (R).
    dropout : float in [0, 1)

    Shape
    -----
    input : (batch, in_channels, n_frames)
    output : (batch, channels, n_frames)
    """

    def __init__(self, in_channels: int, channels: int, kernel: int, repeats: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(repeats):
            layers += _separable(in_channels if i == 0 else channels, channels, kernel)
            if i < repeats - 1:
                layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.residual = nn.Sequential(nn.Conv1d(in_channels, channels, 1, bias=False), nn.BatchNorm1d(channels))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.relu(self.body(x) + self.residual(x)))


class MatchboxNet(nn.Module):
    """MatchboxNet BxRxC: a prologue, B residual blocks of R sub-blocks with C channels, an
    epilogue, and average pooling over time of per-frame class scores.

    Prologue: separable convolution of 11 frames to 128 channels. Blocks ``b = 1..B`` use kernels
    of 13, 15, 17 frames (for B = 6 each twice: 13, 13, 15, 15, 17, 17). Epilogue: separable
    convolution of 29 frames with dilation 2 to 128 channels, a 1x1 convolution to 128 channels
    (each with batch norm and ReLU), and a 1x1 convolution to the classes. All convolutions are
    one-dimensional over time, with the feature bins as input channels, and zero-padded to keep
    the number of frames (stride 1 everywhere).

    ==========  ================================  ============================
    size        parameters (64 bins, 30 classes)  paper (64 MFCCs, 30 classes)
    ==========  ================================  ============================
    ``3x1x64``  77.2 k                            77 k
    ``3x2x64``  92.8 k                            93 k
    ``6x2x64``  136.5 k                           140 k
    ==========  ================================  ============================

    With 40 bins the prologue is narrower: 3.3 k fewer parameters.

    Parameters
    ----------
    n_features : int
        Feature bins (the paper used 64 MFCCs).
    n_classes : int
    size : {"3x1x64", "3x2x64", "6x2x64"}
        ``BxRxC``: B blocks of R sub-blocks with C channels, the paper's three networks;
        ``""`` means ``"3x1x64"``.
    dropout : float in [0, 1)
        After every sub-block of the blocks (as in Jasper and QuartzNet).

    Shape
    -----
    input : (batch, n_features, n_frames)
    output : (batch, n_classes) logits

    Raises
    ------
    ValueError
        Unknown ``size``.

    References
    ----------
    Majumdar & Ginsburg 2020, "MatchboxNet: 1D Time-Channel Separable Convolutional Neural Network
    Architecture for Speech Commands Recognition", Interspeech 2020, arXiv:2004.08531 (Table 1);
    Kriman et al. 2020 (QuartzNet: time-channel separable convolutions).
    """

    def __init__(self, n_features: int, n_classes: int, size: str = "3x1x64", dropout: float = 0.0):
        super().__init__()
        size = size or "3x1x64"
        if size not in SIZES:
            raise ValueError(f"matchboxnet size {size!r} is not one of {', '.join(SIZES)}")
        n_blocks, repeats, channels = (int(n) for n in size.split("x"))
        kernels = [k for k in BLOCK_KERNELS for _ in range(n_blocks // len(BLOCK_KERNELS))]
        self.prologue = nn.Sequential(*_separable(n_features, 128, 11), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        c_in = 128
        for kernel in kernels:
            blocks.append(MatchboxBlock(c_in, channels, kernel, repeats, dropout))
            c_in = channels
        self.blocks = nn.Sequential(*blocks)
        self.epilogue = nn.Sequential(
            *_separable(c_in, 128, 29, dilation=2), nn.ReLU(inplace=True),
            nn.Conv1d(128, 128, 1, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Conv1d(128, n_classes, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.epilogue(self.blocks(self.prologue(features)))
        return self.classifier(x).mean(dim=2)
