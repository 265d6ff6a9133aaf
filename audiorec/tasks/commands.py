"""The command-recognition training task: cross-entropy over a waveform classifier."""

from __future__ import annotations

import torch
from torch import nn

from audiorec.augment import MixupConfig, mixup
from audiorec.config import TrainConfig
from audiorec.tasks.base import Task


class CommandTask(Task):
    """Lightning wrapper that trains a waveform classifier with cross-entropy.

    Label smoothing (Szegedy et al. 2016); optional mixup of whole batches (Zhang et al. 2018);
    the optimiser, schedule and moving average of :class:`~audiorec.tasks.base.Task`. Logs
    ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` and ``lr``.

    Parameters
    ----------
    model : nn.Module
        (batch, n_samples) waveforms to (batch, n_classes) logits.
    config : TrainConfig
    mixup : MixupConfig, optional
        Share of batches mixed and the Beta parameter; None or ``p == 0`` turns mixup off.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, mixup: MixupConfig | None = None):
        super().__init__(model, config)
        self.mixup = mixup if mixup is not None and mixup.p > 0 else None
        self.loss = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.inference_model(waveform)

    def _step(self, batch, stage: str) -> torch.Tensor:
        waveform, target = batch
        logits = (self.model if stage == "train" else self.inference_model)(waveform)
        loss = self.loss(logits, target)
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=on_step, batch_size=len(target))
        self.log(f"{stage}_acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target))
        return loss

    def training_step(self, batch, batch_idx):
        if self.mixup is None or float(torch.rand(())) >= self.mixup.p:
            return self._step(batch, "train")
        waveform, target_a, target_b, lam = mixup(*batch, self.mixup.alpha)
        logits = self.model(waveform)
        loss = lam * self.loss(logits, target_a) + (1 - lam) * self.loss(logits, target_b)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target_a))
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")
