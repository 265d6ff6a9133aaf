"""A small classifier over Google's pretrained speech embedding (Lin et al. 2020)."""

from __future__ import annotations

import torch
from torch import nn

# Per size: channels of the two temporal convolutions.
SIZES = {"S": 64, "M": 128}


class SpeechEmbeddingHead(nn.Module):
    """Two temporal convolutions and a max over time on the frames of a frozen speech embedding.

    Lin et al. 2020 ("Training Keyword Spotters with Limited and Synthesized Speech Data",
    ICASSP, arXiv:2002.01322) pretrain an embedding of 775 ms of audio every 80 ms on a large
    keyword corpus and train only a small head per task over it; their heads are a few
    convolutions over the sequence of embeddings. This head: dropout on the embedding, then two
    blocks of a width-3 1-D convolution over embedding frames (zero-padded), batch norm, ReLU and
    dropout, the maximum over time (a word anywhere in the clip), and a linear layer. Only the
    head is trained; the embedding (:class:`audiorec.pretrained.SpeechEmbedding`, 3.3e5 weights)
    stays as published. Any number of frames works.

    ======  ========  =================================
    size    channels  trained parameters (12 classes)
    ======  ========  =================================
    ``S``   64        31.9 k
    ``M``   128       88.3 k
    ======  ========  =================================

    Parameters
    ----------
    n_features : int
        Embedding size (96).
    n_classes : int
    size : {"S", "M"}
        ``""`` means ``"M"``.
    dropout : float in [0, 1)
        On the input embedding (two thirds of it) and after each block.

    Shape
    -----
    input : (batch, n_features, n_frames)
    output : (batch, n_classes) logits

    Raises
    ------
    ValueError
        Unknown ``size``.
    """

    def __init__(self, n_features: int, n_classes: int, size: str = "", dropout: float = 0.3):
        super().__init__()
        size = size or "M"
        if size not in SIZES:
            raise ValueError(f"speech_embedding size must be one of {', '.join(SIZES)}, got {size!r}")
        channels = SIZES[size]
        blocks: list[nn.Module] = [nn.Dropout(dropout * 2 / 3)]
        for c_in in (n_features, channels):
            blocks += [nn.Conv1d(c_in, channels, 3, padding=1), nn.BatchNorm1d(channels), nn.ReLU(), nn.Dropout(dropout)]
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(x).amax(dim=2))
