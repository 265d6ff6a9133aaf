"""Models: plain ``nn.Module`` networks and the registry that builds them from a config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from audiorec.augment import SpecAugment
from audiorec.features import build_features
from audiorec.models.classifier import CommandClassifier
from audiorec.models.bc_resnet import BCResNet
from audiorec.models.cnn import CNN
from audiorec.models.cnn_trad_fpool3 import CNNTradFPool3
from audiorec.models.crnn_fourier import CRNNFourier
from audiorec.models.ctc import CTCModel
from audiorec.models.deepspeech2 import DeepSpeech2
from audiorec.models.ds_cnn import DSCNN
from audiorec.models.gmm import GMMClassifier
from audiorec.models.matchboxnet import MatchboxNet
from audiorec.models.speech_embedding import SpeechEmbeddingHead

if TYPE_CHECKING:
    from audiorec.config import Config

# Each maps (batch, n_features, n_frames) to (batch, n_classes) logits. ``cnn`` is sized by
# ``model.channels``, the others by ``model.size``. ``gmm`` is fitted by EM, not by gradient
# descent (see :mod:`audiorec.models.gmm` and :func:`audiorec.train.fit_gmm`). ``speech_embedding``
# is a head over a pretrained front end (``features.kind=speech_embedding``, set with it by
# :data:`audiorec.config.MODEL_DEFAULTS`).
ENCODERS = {
    "cnn": CNN,
    "cnn_trad_fpool3": CNNTradFPool3,
    "ds_cnn": DSCNN,
    "bc_resnet": BCResNet,
    "matchboxnet": MatchboxNet,
    "crnn_fourier": CRNNFourier,
    "gmm": GMMClassifier,
    "speech_embedding": SpeechEmbeddingHead,
}

# Speech recognition (``task=asr``): each maps ((batch, n_features, n_frames), valid frames) to
# ((batch, n_out_frames, n_tokens) logits, valid output frames), trained with CTC.
ASR_ENCODERS = {
    "deepspeech2": DeepSpeech2,
}


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
        Unknown ``model.name``, a ``model.size`` the architecture does not have, or fewer than
        2 classes.
    """
    if config.model.name not in ENCODERS:
        raise ValueError(f"model.name {config.model.name!r} is not one of {', '.join(ENCODERS)}")
    if n_classes < 2:
        raise ValueError(f"need at least 2 classes to train a classifier, got {n_classes}")
    m = config.model
    if m.name == "cnn" and m.size:
        raise ValueError(f"model.size {m.size!r} does not apply to cnn; its size is model.channels")
    features = build_features(config.features)
    encoder = ENCODERS[m.name](
        n_features=features.n_features,
        n_classes=n_classes,
        dropout=m.dropout,
        **({"channels": m.channels} if m.name == "cnn" else {"size": m.size}),
        **({"dct": config.features.kind != "mfcc"} if m.name == "gmm" else {}),
    )
    s = config.augment.spec_augment
    spec_augment = SpecAugment(s.freq_masks, s.freq_mask_width, s.time_masks, s.time_mask_width) if config.augment.enabled else None
    return CommandClassifier(features, encoder, spec_augment)


def build_asr_model(config: "Config", n_tokens: int) -> CTCModel:
    """Build the waveform-to-token-log-probabilities recognizer a ``task=asr`` config describes.

    Parameters
    ----------
    config : Config
        Uses ``features``, ``model`` (``name``, ``size``, ``rnn_type``, ``dropout``) and
        ``augment.spec_augment``.
    n_tokens : int > 1
        The tokenizer's vocabulary, CTC blank included.

    Returns
    -------
    CTCModel
        Input (batch, n_samples) at ``features.sample_rate`` and optional valid lengths; output
        (batch, n_out_frames, n_tokens) log-probabilities and valid output frames.

    Raises
    ------
    ValueError
        Unknown ``model.name`` or size, or fewer than 2 tokens.
    """
    m = config.model
    if m.name not in ASR_ENCODERS:
        raise ValueError(f"model.name {m.name!r} is not one of {', '.join(ASR_ENCODERS)} (the models of task=asr)")
    if n_tokens < 2:
        raise ValueError(f"need at least 2 tokens (the blank and one symbol), got {n_tokens}")
    features = build_features(config.features)
    encoder = ASR_ENCODERS[m.name](features.n_features, n_tokens, size=m.size, rnn_type=m.rnn_type, dropout=m.dropout)
    s = config.augment.spec_augment
    spec_augment = SpecAugment(s.freq_masks, s.freq_mask_width, s.time_masks, s.time_mask_width) if config.augment.enabled else None
    return CTCModel(features, encoder, spec_augment)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
