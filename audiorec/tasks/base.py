"""What every training task shares: the optimiser, the learning-rate schedule, the moving average
of the weights, and the epoch handed to the data (for seeded augmentation)."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from audiorec.config import TrainConfig


def build_optimizer(name: str, parameters, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``parameters`` with the config's rate, momentum and decay.

    ``sgd`` (Robbins & Monro 1951), ``momentum`` (Polyak 1964), ``nesterov`` (Nesterov 1983, as
    in Sutskever et al. 2013), ``adagrad`` (Duchi et al. 2011), ``adadelta`` (Zeiler 2012),
    ``rmsprop`` (Tieleman & Hinton 2012), ``adam`` (Kingma & Ba 2015), ``adamw`` (Loshchilov &
    Hutter 2019): all torch.optim implementations.

    Raises
    ------
    ValueError
        Unknown name.
    """
    lr, wd, m = config.lr, config.weight_decay, config.momentum
    optim = torch.optim
    makers = {
        "sgd": lambda: optim.SGD(parameters, lr=lr, weight_decay=wd),
        "momentum": lambda: optim.SGD(parameters, lr=lr, momentum=m, weight_decay=wd),
        "nesterov": lambda: optim.SGD(parameters, lr=lr, momentum=m, nesterov=True, weight_decay=wd),
        "adagrad": lambda: optim.Adagrad(parameters, lr=lr, weight_decay=wd),
        "adadelta": lambda: optim.Adadelta(parameters, lr=lr, weight_decay=wd),
        "rmsprop": lambda: optim.RMSprop(parameters, lr=lr, momentum=m, weight_decay=wd),
        "adam": lambda: optim.Adam(parameters, lr=lr, weight_decay=wd),
        "adamw": lambda: optim.AdamW(parameters, lr=lr, weight_decay=wd),
    }
    if name not in makers:
        raise ValueError(f"train.optimizer={name!r} is not one of {', '.join(makers)}")
    return makers[name]()


def lr_factor(schedule: str, step: int, total: int, warmup_fraction: float) -> float:
    """Learning-rate multiplier at ``step`` of ``total`` for a named schedule.

    Parameters
    ----------
    schedule : str
        ``constant``; ``cosine`` (Loshchilov & Hutter 2017, to zero); ``warmup_cosine`` (linear
        warm-up over ``warmup_fraction`` of the steps, Goyal et al. 2017, then cosine);
        ``one_cycle`` (Smith & Topin 2019, torch's OneCycleLR shape: cosine rise from 1/25 over
        ``warmup_fraction``, then cosine fall to 1/25e4).
    step : int >= 0
    total : int > 0
    warmup_fraction : float in [0, 1)

    Returns
    -------
    float
        In (0, 1]; multiplies ``train.lr``.

    Raises
    ------
    ValueError
        Unknown schedule.
    """
    total = max(1, total)
    warmup = max(1, round(total * warmup_fraction)) if warmup_fraction > 0 else 0
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
    if schedule == "warmup_cosine":
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    if schedule == "one_cycle":
        start, end = 1 / 25, 1 / 25e4
        if step < warmup:
            return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / warmup))
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"train.schedule={schedule!r} is not one of constant, cosine, warmup_cosine, one_cycle")


class Task(L.LightningModule):
    """Base of the Lightning task wrappers: optimiser and schedule from the config, and the moving
    average of the weights.

    The optimiser and learning-rate schedule come from the config (:func:`build_optimizer`,
    :func:`lr_factor`; by default AdamW with a linear warm-up and a cosine), stepped per batch.
    The schedule is a function of the step and of the trainer's current total, so a run resumed
    with a larger ``max_epochs`` stretches the remaining schedule instead of failing.

    With ``config.ema_decay > 0`` an exponential moving average of the weights (and batch-norm
    statistics) is updated after every step, and validation, checkpoint selection and inference
    use it (Polyak & Juditsky 1992; torch.optim.swa_utils.AveragedModel). Accuracy on an unseen speaker
    swings by several points from one epoch to the next; the average is steadier and better.

    Parameters
    ----------
    model : nn.Module
        The network; subclasses define the loss and the steps.
    config : TrainConfig
    """

    def __init__(self, model: nn.Module, config: TrainConfig):
        super().__init__()
        self.model = model
        self.config = config
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

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def on_train_epoch_start(self) -> None:
        dataset = self.trainer.train_dataloader.dataset
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def _lr_factor(self, step: int) -> float:
        c = self.config
        return lr_factor(c.schedule, step, int(self.trainer.estimated_stepping_batches), c.warmup_fraction)

    def trained_parameters(self) -> list[nn.Parameter]:
        """What the optimiser updates: the network's trainable parameters (a frozen pretrained front
        end's are not; subclasses add training-only heads)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def parameter_groups(self) -> list[dict]:
        """:meth:`trained_parameters` as optimiser groups: fine-tuned pretrained weights (the front
        end's ``finetuned_parameters``, if any) in a second group at ``lr * finetune_lr_scale``."""
        features = getattr(self.model, "features", None)
        finetuned = {id(p) for p in (features.finetuned_parameters() if hasattr(features, "finetuned_parameters") else [])}
        params = self.trained_parameters()
        groups = [{"params": [p for p in params if id(p) not in finetuned]}]
        if finetuned:
            groups.append({"params": [p for p in params if id(p) in finetuned], "lr": self.config.lr * self.config.finetune_lr_scale})
        return groups

    def configure_optimizers(self):
        optimizer = build_optimizer(self.config.optimizer, self.parameter_groups(), self.config)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
