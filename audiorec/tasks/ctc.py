"""The speech-recognition training task: CTC over a waveform-to-tokens model."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from audiorec.config import TrainConfig
from audiorec.decoding import ctc_greedy_decode
from audiorec.metrics import error_rates
from audiorec.tasks.base import Task
from audiorec.tokenizer import tokens_to_text


class CTCTask(Task):
    """Lightning wrapper that trains a :class:`~audiorec.models.ctc.CTCModel` with the CTC loss.

    Validation decodes greedily and scores the text: ``val_wer`` (the checkpoint and early
    stopping criterion) and ``val_cer``, as fractions over the whole validation set. Logs
    ``train_loss``, ``val_loss``, ``val_wer``, ``val_cer`` and ``lr``; the optimiser, schedule and
    moving average are :class:`~audiorec.tasks.base.Task`'s.

    Parameters
    ----------
    model : CTCModel
    config : TrainConfig
    vocab : sequence of str
        Token strings by id, the blank at 0 (:attr:`audiorec.tokenizer.CharTokenizer.vocab`).

    Batches
    -------
    ``(waveform (batch, n_samples), lengths (batch,), targets (sum of target lengths,),
    target_lengths (batch,), texts list of str)``, as :func:`audiorec.data.dataset.collate_utterances`
    makes them.

    References
    ----------
    Graves, Fernández, Gomez & Schmidhuber 2006, "Connectionist Temporal Classification",
    ICML 2006 (the loss, ``torch.nn.CTCLoss``); Amodei et al. 2016 (gradient clipping and
    SortaGrad, see :class:`~audiorec.data.dataset.BucketBatchSampler`).
    """

    def __init__(self, model: nn.Module, config: TrainConfig, vocab: Sequence[str]):
        super().__init__(model, config)
        self.vocab = list(vocab)
        # zero_infinity: an utterance whose transcript is longer than its output frames (possible
        # after speed perturbation at 1.1) contributes nothing instead of an infinite loss.
        self.loss = nn.CTCLoss(blank=0, zero_infinity=True)
        self._references: list[str] = []
        self._hypotheses: list[str] = []

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None):
        return self.inference_model(waveform, lengths)

    def _loss(self, log_probs, out_lengths, targets, target_lengths) -> torch.Tensor:
        return self.loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths)

    def training_step(self, batch, batch_idx):
        waveform, lengths, targets, target_lengths, _ = batch
        log_probs, out_lengths = self.model(waveform, lengths)
        loss = self._loss(log_probs, out_lengths, targets, target_lengths)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(lengths))
        return loss

    def validation_step(self, batch, batch_idx):
        waveform, lengths, targets, target_lengths, texts = batch
        log_probs, out_lengths = self.inference_model(waveform, lengths)
        loss = self._loss(log_probs, out_lengths, targets, target_lengths)
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=len(lengths))
        for ids in ctc_greedy_decode(log_probs.float().cpu().numpy(), out_lengths.cpu().numpy()):
            self._hypotheses.append(tokens_to_text(self.vocab, ids))
        self._references.extend(texts)

    def on_validation_epoch_end(self) -> None:
        if self._references:
            rates = error_rates(self._references, self._hypotheses)
            self.log("val_wer", rates["wer"], prog_bar=True)
            self.log("val_cer", rates["cer"], prog_bar=True)
        self._references, self._hypotheses = [], []
