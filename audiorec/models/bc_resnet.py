"""BC-ResNet: broadcasted residual learning, 2-D frequency-wise and 1-D temporal convolutions."""

from __future__ import annotations

import torch
from torch import nn

WIDTHS = ("1", "3", "8")  # the width multipliers this package names as sizes
SUB_BANDS = 5  # sub-spectral groups of the paper (40 mel bins: 20, 10 and 5 bins per stage)


def _frequency_after(n_bins: int, stride: int) -> int:
    """Bins left by a stride-``stride`` convolution padded to keep the length at stride 1."""
    return (n_bins - 1) // stride + 1


class SubSpectralNorm(nn.Module):
    """Batch norm with separate statistics and affine parameters for each of ``n_groups`` equal
    frequency sub-bands.

    Parameters
    ----------
    channels : int
    n_bins : int
        Frequency bins of the input; the sub-band count is the largest divisor of ``n_bins`` not
        above ``n_groups``.
    n_groups : int
        Sub-bands wanted (5 in BC-ResNet).

    Shape
    -----
    input, output : (batch, channels, n_bins, n_frames)

    References
    ----------
    Chang, Park, Kim & Kim 2021, "SubSpectral Normalization for Neural Audio Data Processing",
    ICASSP 2021.
    """

    def __init__(self, channels: int, n_bins: int, n_groups: int = SUB_BANDS):
        super().__init__()
        self.n_groups = max(g for g in range(1, n_groups + 1) if n_bins % g == 0)
        self.norm = nn.BatchNorm2d(channels * self.n_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, n_bins, n_frames = x.shape
        x = self.norm(x.reshape(batch, channels * self.n_groups, n_bins // self.n_groups, n_frames))
        return x.reshape(batch, channels, n_bins, n_frames)


class BCResBlock(nn.Module):
    """One broadcasted residual block.

    ``f2``: a 3x1 depthwise convolution over frequency and SubSpectralNorm. Its output is averaged
    over frequency and passed through ``f1``: a 1x3 depthwise (dilated) convolution over time,
    batch norm, swish, a 1x1 convolution and channel-wise dropout. ``f1``'s output (one value per
    frame) is broadcast back over frequency and added to ``f2``'s output and, when the block keeps
    its width, to its input; then ReLU. A transition block (new width) starts with a 1x1
    convolution, batch norm and ReLU and has no identity shortcut.

    Parameters
    ----------
    in_channels, out_channels : int
    n_bins : int
        Frequency bins of the input.
    freq_stride : int
        Stride of the frequency convolution (2 at the start of a down-sampling stage).
    dilation : int
        Time dilation of the temporal convolution.
    dropout : float in [0, 1)
        Channel-wise (spatial) dropout rate.

    Shape
    -----
    input : (batch, in_channels, n_bins, n_frames)
    output : (batch, out_channels, ceil(n_bins / freq_stride), n_frames)
    """

    def __init__(self, in_channels: int, out_channels: int, n_bins: int, freq_stride: int, dilation: int, dropout: float):
        super().__init__()
        self.transition = in_channels != out_channels
        self.project = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        ) if self.transition else nn.Identity()
        c = out_channels
        self.f2 = nn.Sequential(
            nn.Conv2d(c, c, (3, 1), stride=(freq_stride, 1), padding=(1, 0), groups=c, bias=False),
            SubSpectralNorm(c, _frequency_after(n_bins, freq_stride)),
        )
        self.f1 = nn.Sequential(
            nn.Conv2d(c, c, (1, 3), padding=(0, dilation), dilation=(1, dilation), groups=c, bias=False),
            nn.BatchNorm2d(c), nn.SiLU(), nn.Conv2d(c, c, 1, bias=False), nn.Dropout2d(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.project(x)
        frequency = self.f2(projected)
        out = frequency + self.f1(frequency.mean(dim=2, keepdim=True))
        if not self.transition:
            out = out + x
        return torch.relu(out)


class BCResNet(nn.Module):
    """BC-ResNet-w: broadcasted residual network with width multiplier ``w``.

    A 5x5 convolution (stride 2 in frequency) with 16w channels, four stages of BC-ResBlocks
    (2, 2, 4, 4 blocks of 8w, 12w, 16w, 20w channels; stride 2 in frequency at the start of the
    second and third stage; time dilation 1, 2, 4, 8), a 5x5 depthwise convolution without
    frequency padding, a 1x1 convolution to 32w channels with batch norm and ReLU, average pooling
    over frequency and time, and a 1x1 convolution (linear layer) to the classes. Time is padded
    everywhere, so any clip length works.

    ======  =======================  ============================
    size    parameters (12 classes)  paper (40 bins, 12 classes)
    ======  =======================  ============================
    ``1``   9.2 k                    9.2 k
    ``3``   54.2 k                   54.2 k
    ``8``   321.1 k                  321 k
    ======  =======================  ============================

    SubSpectralNorm is implemented as in the paper (5 sub-bands), not replaced by batch norm.

    Parameters
    ----------
    n_features : int
        Feature bins of the input (40 log-mel bins in the paper). With other counts the
        sub-spectral groups become the largest divisor of each stage's bins up to 5 (4 for 64
        bins); the final depthwise convolution leaves more than one frequency row (4 for 64 bins),
        which the average pooling absorbs, or is padded in frequency when fewer than 5 bins reach
        it (20 MFCCs).
    n_classes : int
    size : {"1", "3", "8"}
        Width multiplier ``w``; ``""`` means ``"1"``.
    dropout : float in [0, 1)
        Channel-wise dropout in every block (the paper's 0.1 when trained from its recipe).

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
    Kim, Chang, Lee & Sung 2021, "Broadcasted Residual Learning for Efficient Keyword Spotting",
    Interspeech 2021, arXiv:2106.04140 (Table 1: the BC-ResNet-1 layout; Table 2: the widths).
    """

    def __init__(self, n_features: int, n_classes: int, size: str = "1", dropout: float = 0.1):
        super().__init__()
        size = size or "1"
        if size not in WIDTHS:
            raise ValueError(f"bc_resnet size {size!r} is not one of {', '.join(WIDTHS)} (the width multiplier)")
        w = int(size)
        n_bins = _frequency_after(n_features, 2)
        self.head = nn.Sequential(
            nn.Conv2d(1, 16 * w, 5, stride=(2, 1), padding=2, bias=False), nn.BatchNorm2d(16 * w), nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        c_in = 16 * w
        for stage, (n_blocks, c_out, freq_stride) in enumerate([(2, 8 * w, 1), (2, 12 * w, 2), (4, 16 * w, 2), (4, 20 * w, 1)]):
            for i in range(n_blocks):
                stride = freq_stride if i == 0 else 1
                blocks.append(BCResBlock(c_in, c_out, n_bins, stride, dilation=2**stage, dropout=dropout))
                n_bins, c_in = _frequency_after(n_bins, stride), c_out
        self.blocks = nn.Sequential(*blocks)
        self.tail = nn.Sequential(
            nn.Conv2d(c_in, c_in, 5, padding=(max(0, 5 - n_bins + 1) // 2, 2), groups=c_in, bias=False),
            nn.Conv2d(c_in, 32 * w, 1, bias=False), nn.BatchNorm2d(32 * w), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(32 * w, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.tail(self.blocks(self.head(features.unsqueeze(1))))
        return self.classifier(x.mean(dim=(2, 3)))
