"""The CTC speech recognizer: waveform in, per-frame token log-probabilities out, front end included."""

from __future__ import annotations

import torch
from torch import nn


class CTCModel(nn.Module):
    """Feature front end, per-utterance normalisation over the valid frames, SpecAugment, encoder.

    The same front end and normalisation as :class:`~audiorec.models.classifier.CommandClassifier`,
    for utterances of different lengths in one batch: the statistics of each utterance are taken
    over its own frames only, and the padding is set to zero, so a padded utterance is seen as it
    would be alone, except for its last frame, whose STFT window reaches into the padding instead
    of the reflected signal (tests/test_asr.py measures the difference).

    Parameters
    ----------
    features : nn.Module
        (batch, n_samples) to (batch, n_features, n_frames), e.g. :class:`~audiorec.features.LogMel`;
        must have ``n_frames(n_samples)``.
    encoder : nn.Module
        ``(features, lengths or None)`` to ``(logits (batch, n_out_frames, n_tokens), out_lengths)``,
        e.g. :class:`~audiorec.models.deepspeech2.DeepSpeech2`; has ``time_stride``.
    spec_augment : nn.Module, optional
        Applied to the normalised features in training mode.

    Shape
    -----
    input : (batch, n_samples) float waveform at the front end's rate, and optionally (batch,)
        valid samples per utterance (default: all)
    output : ((batch, n_out_frames, n_tokens) log-probabilities over tokens, (batch,) valid
        output frames)

    References
    ----------
    Graves et al. 2006 (CTC outputs: a distribution over tokens and the blank per frame);
    Viikki & Laurila 1998 (per-utterance mean and variance normalisation).
    """

    def __init__(self, features: nn.Module, encoder: nn.Module, spec_augment: nn.Module | None = None):
        super().__init__()
        self.features = features
        self.spec_augment = spec_augment
        self.encoder = encoder

    @property
    def log_mel(self) -> nn.Module:
        """The :class:`~audiorec.features.LogMel` inside the front end (MFCC wraps one)."""
        return getattr(self.features, "log_mel", self.features)

    @property
    def frame_s(self) -> float:
        """Seconds per output frame: the front end's hop times the encoder's time stride."""
        return self.log_mel.hop_length * self.encoder.time_stride / self.log_mel.sample_rate

    def normalised_features(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoder's input before SpecAugment, and the valid frames per utterance.

        Parameters
        ----------
        waveform : torch.Tensor [shape=(batch, n_samples)]
        lengths : torch.Tensor [shape=(batch,)], optional
            Valid samples per utterance.

        Returns
        -------
        features : torch.Tensor [shape=(batch, n_features, n_frames)]
            Each bin's mean over the utterance's frames subtracted, divided by the standard
            deviation of the result over the utterance; zero on padding frames.
        frame_lengths : torch.Tensor [shape=(batch,)] or None
            Valid frames (None when ``lengths`` is None).
        """
        x = self.features(waveform)
        n_frames = x.shape[2]
        if lengths is None:
            frame_lengths = torch.full((x.shape[0],), n_frames, dtype=torch.long, device=x.device)
        else:
            frame_lengths = torch.clamp(1 + torch.div(lengths, self.log_mel.hop_length, rounding_mode="floor"), max=n_frames)
        mask = (torch.arange(n_frames, device=x.device)[None, :] < frame_lengths[:, None]).unsqueeze(1).to(x.dtype)
        count = frame_lengths.to(x.dtype)[:, None, None]
        mean = (x * mask).sum(dim=2, keepdim=True) / count
        centred = (x - mean) * mask
        var = (centred * centred).sum(dim=(1, 2), keepdim=True) / (count * x.shape[1] - 1).clamp(min=1)
        return centred / (var.sqrt() + 1e-5), (frame_lengths if lengths is not None else None)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, frame_lengths = self.normalised_features(waveform, lengths)
        if self.spec_augment is not None:
            x = self.spec_augment(x)
        logits, out_lengths = self.encoder(x, frame_lengths)
        return torch.log_softmax(logits, dim=-1), out_lengths
