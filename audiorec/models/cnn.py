"""A VGG-style 2-D CNN over a feature matrix, the default command classifier."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class CNN(nn.Module):
    """Stacks of 3x3 convolutions with batch norm, max pooling between stages, global average
    pooling and a linear classifier.

    Stage ``i`` has ``channels[i]`` filters: one convolution in the first stage, two in the
    others, then 2x2 max pooling (except after the last stage). Global average pooling makes the
    network accept any number of frames.

    Parameters
    ----------
    n_features : int
        Feature bins of the input (e.g. ``n_mels``).
    n_classes : int
    channels : sequence of int
        Filters per stage (16, 32, 64, 128 in the default config: 293 k parameters; the
        receptive field of the last stage is 30 frames with three stages, 66 with four).
    dropout : float in [0, 1)
        Before the classifier.

    Shape
    -----
    input : (batch, n_features, n_frames)
    output : (batch, n_classes) logits

    References
    ----------
    Simonyan & Zisserman 2015 (VGG: stacked 3x3 convolutions); Ioffe & Szegedy 2015 (batch norm);
    Sainath & Parada 2015 (CNNs for small-footprint keyword spotting).
    """

    def __init__(self, n_features: int, n_classes: int, channels: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.2):
        super().__init__()
        if not channels:
            raise ValueError("model.channels must list at least one stage")
        layers: list[nn.Module] = []
        c_in = 1
        for i, c_out in enumerate(channels):
            layers += _conv(c_in, c_out) + ([] if i == 0 else _conv(c_out, c_out))
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c_in, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.last_stage(features))

    def last_stage(self, features: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map: (batch, n_features, n_frames) to (batch, channels[-1],
        n_features // 2^(stages - 1), n_frames // 2^(stages - 1)); what a hint (FitNets,
        Romero et al. 2015) or a probe reads."""
        return self.body(features.unsqueeze(1))

    def head(self, stage: torch.Tensor) -> torch.Tensor:
        """Global average pooling, dropout and the classifier: :meth:`last_stage`'s output to
        (batch, n_classes) logits."""
        return self.classifier(self.dropout(stage.mean(dim=(2, 3))))
