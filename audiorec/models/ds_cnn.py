"""DS-CNN: the depthwise-separable CNN of "Hello Edge" for keyword spotting on microcontrollers."""

from __future__ import annotations

import torch
from torch import nn

# Per size: filters, depthwise-separable layers, (frequency, time) stride of the first
# convolution, stride of the first separable layer; the paper's S, M and L configurations.
SIZES = {
    "S": (64, 4, (2, 2), 1),
    "M": (172, 4, (1, 2), 2),
    "L": (276, 5, (1, 2), 2),
}


def _separable(channels: int, stride: int) -> list[nn.Module]:
    """A 3x3 depthwise convolution and a 1x1 pointwise one, each with batch norm and ReLU."""
    return [
        nn.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels, bias=False),
        nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
    ]


class DSCNN(nn.Module):
    """Depthwise-separable CNN (DS-CNN): a 10x4 convolution, 3x3 depthwise-separable layers,
    global average pooling and a linear classifier.

    The first convolution spans 10 frames by 4 feature bins with stride 2 in time (and in
    frequency for ``S``). Each following layer is a 3x3 depthwise convolution then a 1x1
    pointwise one, each followed by batch norm and ReLU; in ``M`` and ``L`` the first of them has
    stride 2 in both axes. All convolutions are zero-padded ("same"), so any clip length works.

    ======  =======  ================  =======================
    size    filters  separable layers  parameters (12 classes)
    ======  =======  ================  =======================
    ``S``   64       4                 23.2 k
    ``M``   172      4                 136.6 k
    ``L``   276      5                 413.7 k
    ======  =======  ================  =======================

    The filters, layers and strides are the paper's S, M and L configurations. Its summary table
    gives memory rather than parameters (38.6, 189.7 and 497.6 KB for S, M and L: 8-bit weights
    and activations together); the weights of those configurations are the counts above.

    Parameters
    ----------
    n_features : int
        Feature bins of the input (the paper used 10 MFCCs; 40 or 64 log-mel bins work unchanged,
        at 4 to 6 times the multiply-adds of the paper's 49 x 10 input).
    n_classes : int
    size : {"S", "M", "L"}
        The paper's small, medium and large network; ``""`` means ``"S"``.
    dropout : float in [0, 1)
        Before the classifier.

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
    Zhang, Suda, Lai & Chandra 2017, "Hello Edge: Keyword Spotting on Microcontrollers",
    arXiv:1711.07128 (DS-CNN, Table 5 and the ARM ML-KWS-for-MCU layer configurations);
    Howard et al. 2017 (MobileNets: depthwise-separable convolutions).
    """

    def __init__(self, n_features: int, n_classes: int, size: str = "S", dropout: float = 0.2):
        super().__init__()
        size = size or "S"
        if size not in SIZES:
            raise ValueError(f"ds_cnn size {size!r} is not one of {', '.join(SIZES)}")
        channels, n_separable, first_stride, separable_stride = SIZES[size]
        layers: list[nn.Module] = [
            nn.Conv2d(1, channels, (4, 10), stride=first_stride, padding=(2, 5), bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
        ]
        for i in range(n_separable):
            layers += _separable(channels, stride=separable_stride if i == 0 else 1)
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.body(features.unsqueeze(1))
        x = x.mean(dim=(2, 3))
        return self.classifier(self.dropout(x))
