"""The command-recognition training task: cross-entropy over a waveform classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiorec.augment import MixupConfig, mixup
from audiorec.config import TrainConfig
from audiorec.tasks.base import Task


class CommandTask(Task):
    """Lightning wrapper that trains a waveform classifier with cross-entropy.

    Label smoothing (Szegedy et al. 2016); optional mixup of whole batches (Zhang et al. 2018);
    optional knowledge distillation from a trained teacher (Hinton et al. 2015, see
    :func:`distillation_loss`); the optimiser, schedule and moving average of
    :class:`~audiorec.tasks.base.Task`. Logs ``train_loss``, ``train_acc``, ``val_loss``,
    ``val_acc`` and ``lr``, and ``train_distill_loss`` with a teacher. Validation scores the
    labels only.

    Parameters
    ----------
    model : nn.Module
        (batch, n_samples) waveforms to (batch, n_classes) logits.
    config : TrainConfig
        ``distill_weight`` and ``distill_temperature`` apply when a teacher is given.
    mixup : MixupConfig, optional
        Share of batches mixed and the Beta parameter; None or ``p == 0`` turns mixup off.
    teacher : nn.Module, optional
        A trained classifier with the same output classes. It sees the same augmented (and mixed)
        waveforms, in eval mode (no dropout, no SpecAugment), without gradients. It is not a
        submodule: it is neither trained, nor saved in the checkpoints, nor exported.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, mixup: MixupConfig | None = None,
                 teacher: nn.Module | None = None):
        super().__init__(model, config)
        self.mixup = mixup if mixup is not None and mixup.p > 0 else None
        self.loss = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        # Kept out of the module tree so that Lightning neither trains, switches to train mode nor saves it.
        self.__dict__["teacher"] = teacher.eval().requires_grad_(False) if teacher is not None else None

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher.to(self.device)

    def _train_loss(self, waveform: torch.Tensor, logits: torch.Tensor, label_loss: torch.Tensor) -> torch.Tensor:
        """The labels' loss, mixed with the distillation term when there is a teacher."""
        if self.teacher is None:
            return label_loss
        with torch.no_grad():
            teacher_logits = self.teacher(waveform)
        distill = distillation_loss(logits, teacher_logits, self.config.distill_temperature)
        self.log("train_distill_loss", distill, on_step=False, on_epoch=True, batch_size=len(waveform))
        weight = self.config.distill_weight
        return (1 - weight) * label_loss + weight * distill

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.inference_model(waveform)

    def _step(self, batch, stage: str) -> torch.Tensor:
        waveform, target = batch
        logits = (self.model if stage == "train" else self.inference_model)(waveform)
        loss = self.loss(logits, target)
        if stage == "train":
            loss = self._train_loss(waveform, logits, loss)
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
        loss = self._train_loss(waveform, logits, lam * self.loss(logits, target_a) + (1 - lam) * self.loss(logits, target_b))
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target_a))
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Knowledge distillation's soft-target loss (Hinton, Vinyals & Dean 2015, "Distilling the
    knowledge in a neural network").

    ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch. The
    factor ``T**2`` keeps the gradient's scale comparable to the cross-entropy's as ``T`` varies.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor [shape=(batch, n_classes)]
    temperature : float > 0

    Returns
    -------
    torch.Tensor
        A scalar, in nats; 0 when the two softened distributions agree.
    """
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1),
                    reduction="batchmean", log_target=True) * t * t
