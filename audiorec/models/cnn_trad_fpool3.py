"""cnn-trad-fpool3: the small-footprint keyword-spotting CNN of Sainath & Parada."""

from __future__ import annotations

import torch
from torch import nn

SIZES = ("fpool3",)  # the paper's one network of this family with frequency pooling 3
PAPER_BINS = 40  # log-mel bins the paper's kernel widths and pooling are given for


def _scaled(width: int, n_features: int) -> int:
    """A width in bins given for 40 mel bins, scaled to cover the same share of the mel axis."""
    return max(1, round(width * n_features / PAPER_BINS))


class CNNTradFPool3(nn.Module):
    """Two convolutions, max pooling in frequency, a linear low-rank layer, a dense layer.

    Convolution 1: 64 filters of 20 frames by 8 bins, ReLU, max pooling by 3 in frequency (none
    in time). Convolution 2: 64 filters of 10 frames by 4 bins, ReLU. Neither is padded in
    frequency. The low-rank layer (32 units, no non-linearity) sees 4 frames of the whole
    remaining feature map, then a dense ReLU layer of 128 units and a linear classifier.

    The paper classifies a fixed 32-frame window (23 left and 8 right context frames), so its
    low-rank layer sees 4 time steps after the two 20- and 10-frame convolutions, and detections
    are smoothed posteriors over successive windows. Here the same network slides over the whole
    clip: convolutions are zero-padded in time, the low-rank layer is a convolution spanning 4
    frames, and the 128-unit activations are averaged over time before the classifier (a linear
    layer, so this equals averaging the per-window logits). Parameters are the paper's, and any
    clip length works.

    Kernel widths and pooling in frequency are the paper's for 40 bins and scale with
    ``n_features / 40`` so that each filter spans the same share of the mel axis: 64 bins give
    13-bin and 6-bin kernels and pooling by 5.

    =========  =======================  ========================
    input      parameters (12 classes)  paper (40 bins)
    =========  =======================  ========================
    40 bins    245.5 k                  244.2 k
    64 bins    309.3 k
    =========  =======================  ========================

    Parameters
    ----------
    n_features : int
        Feature bins of the input (40 log-mel bins in the paper).
    n_classes : int
    size : {"fpool3"}
        The one size; ``""`` means it.
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
    Sainath & Parada 2015, "Convolutional Neural Networks for Small-footprint Keyword Spotting",
    Interspeech 2015 (cnn-trad-fpool3, Table 1).
    """

    def __init__(self, n_features: int, n_classes: int, size: str = "fpool3", dropout: float = 0.2):
        super().__init__()
        size = size or "fpool3"
        if size not in SIZES:
            raise ValueError(f"cnn_trad_fpool3 size {size!r} is not one of {', '.join(SIZES)}")
        width1, pool, width2 = _scaled(8, n_features), _scaled(3, n_features), _scaled(4, n_features)
        n_bins = (n_features - width1 + 1) // pool - width2 + 1
        self.body = nn.Sequential(
            nn.Conv2d(1, 64, (width1, 20), padding=(0, 10)), nn.ReLU(inplace=True), nn.MaxPool2d((pool, 1)),
            nn.Conv2d(64, 64, (width2, 10), padding=(0, 5)), nn.ReLU(inplace=True),
            nn.Conv2d(64, 32, (n_bins, 4), padding=(0, 2)),
            nn.Conv2d(32, 128, 1), nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(128, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.body(features.unsqueeze(1))
        x = x.mean(dim=(2, 3))
        return self.classifier(self.dropout(x))
