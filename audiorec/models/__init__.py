"""Models: plain ``nn.Module`` networks and the registry that builds them from a config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from audiorec.augment import SpecAugment
from audiorec.features import build_features
from audiorec.models.classifier import CommandClassifier
from audiorec.models.cnn import CNN

if TYPE_CHECKING:
    from audiorec.config import Config

ENCODERS = {"cnn": CNN}


def build_model(config: "Config", n_classes: int) -> CommandClassifier:
    """Build the waveform-to-logits classifier a config describes.

    Parameters
    ----------
    config : Config
        Uses ``features``, ``model`` and ``augment``.
    n_classes : int > 1

    Returns
    -------
    CommandClassifier
        Input (batch, n_samples) at ``features.sample_rate``; output (batch, n_classes) logits.

    Raises
    ------
    ValueError
        Unknown ``model.name`` or a bad size.
    """
    if config.model.name not in ENCODERS:
        raise ValueError(f"model.name {config.model.name!r} is not one of {', '.join(ENCODERS)}")
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes to train a classifier, got {n_classes}")
    features = build_features(config.features)
    encoder = ENCODERS[config.model.name](
        n_features=features.n_features,
        n_classes=n_classes,
        channels=config.model.channels,
        dropout=config.model.dropout,
    )
    s = config.augment.spec_augment
    spec_augment = SpecAugment(s.freq_masks, s.freq_mask_width, s.time_masks, s.time_mask_width) if config.augment.enabled else None
    return CommandClassifier(features, encoder, spec_augment)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
