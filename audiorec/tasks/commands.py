"""The command-recognition training task: cross-entropy over a waveform classifier."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from audiorec.config import TrainConfig


class CommandTask(L.LightningModule):
    """Lightning wrapper that trains a waveform classifier with cross-entropy.

    AdamW (Loshchilov & Hutter 2019); the learning rate warms up linearly over the first 10% of
    the steps (Goyal et al. 2017) and then follows a cosine to zero (Loshchilov & Hutter 2017),
    stepped per batch; label smoothing (Szegedy et al. 2016). Logs ``train_loss``, ``train_acc``,
    ``val_loss`` and ``val_acc`` per epoch.

    The schedule is a function of the step and of the trainer's current total, so a run resumed
    with a larger ``max_epochs`` stretches the remaining schedule instead of failing.

    With ``config.ema_decay > 0`` an exponential moving average of the weights (and batch-norm
    statistics) is updated after every step, and validation, checkpoint selection and inference
    use it (Polyak & Juditsky 1992; torch.optim.swa_utils.AveragedModel). Accuracy on an unseen speaker
    swings by several points from one epoch to the next; the average is steadier and better.

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
        self.ema = AveragedModel(model, multi_avg_fn=self._ema_step, use_buffers=True) if config.ema_decay > 0 else None

    @torch.no_grad()
    def _ema_step(self, averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        # TensorFlow's ExponentialMovingAverage(num_updates=...): a shorter memory early on, so
        # the average is not dominated by the random initial weights in a short run. The decay is
        # computed once per step and every tensor is updated in place.
        n = float(n_averaged)
        decay = min(self.config.ema_decay, (1 + n) / (10 + n))
        for avg, cur in zip(averaged, current):
            if avg.is_floating_point():
                avg.mul_(decay).add_(cur, alpha=1 - decay)
            else:  # counters such as batch norm's num_batches_tracked
                avg.copy_(cur)

    @property
    def inference_model(self) -> nn.Module:
        """The weights to evaluate: the moving average when kept, else the trained ones."""
        return self.ema.module if self.ema is not None else self.model

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
        return self._step(batch, "train")

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

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
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
