"""The command-recognition training task: cross-entropy over a waveform classifier."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn

from audiorec.config import TrainConfig


class CommandTask(L.LightningModule):
    """Lightning wrapper that trains a waveform classifier with cross-entropy.

    AdamW (Loshchilov & Hutter 2019); the learning rate warms up linearly over the first 10% of
    the steps (Goyal et al. 2017) and then follows a cosine to zero (Loshchilov & Hutter 2017),
    stepped per batch; label smoothing (Szegedy et al. 2016). Logs ``train_loss``, ``train_acc``,
    ``val_loss`` and ``val_acc`` per epoch.

    The schedule is a function of the step and of the trainer's current total, so a run resumed
    with a larger ``max_epochs`` stretches the remaining schedule instead of failing.

    Parameters
    ----------
    model : nn.Module
        (batch, n_samples) waveforms to (batch, n_classes) logits.
    config : TrainConfig
    """

    def __init__(self, model: nn.Module, config: TrainConfig):
        super().__init__()
        self.model = model
        self.config = config
        self.loss = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.model(waveform)

    def _step(self, batch, stage: str) -> torch.Tensor:
        waveform, target = batch
        logits = self.model(waveform)
        loss = self.loss(logits, target)
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=on_step, batch_size=len(target))
        self.log(f"{stage}_acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target))
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_train_epoch_start(self) -> None:
        dataset = self.trainer.train_dataloader.dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def _lr_factor(self, step: int) -> float:
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, total // 10)
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
