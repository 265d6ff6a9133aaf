"""The command-recognition training task: cross-entropy over a waveform classifier."""

from __future__ import annotations

import math

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
    :class:`~audiorec.tasks.base.Task`; optional speaker-adversarial training (Ganin & Lempitsky
    2015; Meng et al. 2018; see :class:`SpeakerAdversary`). Logs ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc`` and ``lr``, ``train_distill_loss`` with a teacher, and
    ``train_speaker_loss``, ``train_speaker_acc`` and ``speaker_adversarial_weight`` with
    speakers. Validation scores the labels only.

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
    n_speakers : int
        Training speakers, for ``config.speaker_adversarial_weight > 0``: training batches are
        then ``(waveform, target, speaker)`` with speaker indices in ``[0, n_speakers)`` (-1 for
        a clip without a speaker, which the adversary skips). The adversary's head is saved in
        the checkpoints (so a run resumes) but is not part of ``model``, so it is neither loaded
        for recognition nor exported.

    Raises
    ------
    ValueError
        ``speaker_adversarial_weight > 0`` with fewer than 2 speakers, or a model without an
        ``encoder.classifier`` layer to take the embedding from.
    """

    def __init__(self, model: nn.Module, config: TrainConfig, mixup: MixupConfig | None = None,
                 teacher: nn.Module | None = None, n_speakers: int = 0):
        super().__init__(model, config)
        self.adversary = SpeakerAdversary(model, n_speakers) if config.speaker_adversarial_weight > 0 else None
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

    def trained_parameters(self) -> list[nn.Parameter]:
        return super().trained_parameters() + (list(self.adversary.parameters()) if self.adversary is not None else [])

    def adversarial_weight(self) -> float:
        """The speaker-adversarial weight at this step: ``w (2 / (1 + exp(-10 p)) - 1)`` for
        ``w = speaker_adversarial_weight`` and ``p`` the share of training steps done (Ganin &
        Lempitsky 2015, section 5.2.2), so the adversary's reversed gradient starts at 0."""
        total = max(1, int(self.trainer.estimated_stepping_batches))
        progress = min(1.0, self.global_step / total)
        return self.config.speaker_adversarial_weight * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)

    def _speaker_loss(self, speaker: torch.Tensor) -> torch.Tensor:
        """The adversary's cross-entropy on the embedding the last forward pass of ``model`` left."""
        weight = self.adversarial_weight()
        loss, accuracy = self.adversary.loss(speaker, weight)
        n = int((speaker >= 0).sum())
        self.log("train_speaker_loss", loss, on_step=False, on_epoch=True, batch_size=max(1, n))
        self.log("train_speaker_acc", accuracy, on_step=False, on_epoch=True, batch_size=max(1, n))
        self.log("speaker_adversarial_weight", weight, on_step=True, on_epoch=False)
        return loss

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.inference_model(waveform)

    def _step(self, batch, stage: str) -> torch.Tensor:
        waveform, target = batch[:2]
        logits = (self.model if stage == "train" else self.inference_model)(waveform)
        loss = self.loss(logits, target)
        if stage == "train":
            loss = self._train_loss(waveform, logits, loss)
            if self.adversary is not None and len(batch) > 2:
                # The head minimises it; through the reversal the encoder maximises it.
                loss = loss + self._speaker_loss(batch[2])
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=on_step, batch_size=len(target))
        self.log(f"{stage}_acc", accuracy, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target))
        return loss

    def training_step(self, batch, batch_idx):
        if self.mixup is None or float(torch.rand(())) >= self.mixup.p:
            return self._step(batch, "train")
        # Mixed clips have two speakers: the adversary sits these batches out.
        waveform, target_a, target_b, lam = mixup(*batch[:2], self.mixup.alpha)
        logits = self.model(waveform)
        loss = self._train_loss(waveform, logits, lam * self.loss(logits, target_a) + (1 - lam) * self.loss(logits, target_b))
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target_a))
        return loss

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``-weight`` backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float) -> torch.Tensor:
    """The gradient-reversal layer of domain-adversarial training (Ganin & Lempitsky 2015,
    "Unsupervised domain adaptation by backpropagation").

    Parameters
    ----------
    x : torch.Tensor
        Any shape.
    weight : float >= 0
        Scale of the reversed gradient.

    Returns
    -------
    torch.Tensor
        ``x`` unchanged; in the backward pass the incoming gradient is multiplied by ``-weight``.
    """
    return _ReverseGradient.apply(x, weight)


def _embedding_size(layer: nn.Module) -> int:
    """Input features of a classifier layer (a Linear, a 1x1 Conv1d, or a Sequential starting with one)."""
    for module in layer.modules():
        if isinstance(module, nn.Linear):
            return module.in_features
        if isinstance(module, nn.Conv1d):
            return module.in_channels
    raise ValueError(f"cannot tell the embedding size of {type(layer).__name__}: it has no Linear or Conv1d layer")


class SpeakerAdversary(nn.Module):
    """A speaker classifier on a command classifier's embedding, behind a gradient reversal:
    speaker-adversarial training (Ganin & Lempitsky 2015, domain-adversarial training; Meng et al.
    2018, "Speaker-invariant training via adversarial learning").

    A forward pre-hook on ``model.encoder.classifier`` (the last layer of every command encoder)
    keeps its input, the pooled embedding, from each forward pass of ``model``; :meth:`loss`
    names the speakers from it with a two-layer head. The head learns to tell the training
    speakers apart; the reversal hands the encoder the negated gradient, so the encoder learns
    features that hide the speaker while they name the command, which is what a recognizer that
    must carry over to an unseen speaker needs.

    Parameters
    ----------
    model : nn.Module
        A :class:`~audiorec.models.classifier.CommandClassifier`; its ``encoder.classifier``
        layer's input is (batch, dim) or, for ``matchboxnet``'s 1x1 convolution, (batch, dim,
        frames), averaged over frames.
    n_speakers : int >= 2
    hidden : int
        Units of the head's hidden layer.

    Raises
    ------
    ValueError
        Fewer than 2 speakers, or the model has no ``encoder.classifier``.
    """

    def __init__(self, model: nn.Module, n_speakers: int, hidden: int = 128):
        super().__init__()
        if n_speakers < 2:
            raise ValueError(f"speaker-adversarial training needs at least 2 training speakers, got {n_speakers}")
        layer = getattr(getattr(model, "encoder", None), "classifier", None)
        if not isinstance(layer, nn.Module):
            raise ValueError(f"speaker-adversarial training takes the embedding from model.encoder.classifier, "
                             f"which {type(model).__name__} does not have")
        self.head = nn.Sequential(nn.Linear(_embedding_size(layer), hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, n_speakers))
        self._embedding: torch.Tensor | None = None
        # Not a submodule: the adversary belongs to the training task, the model stays exportable as is.
        self.__dict__["_hook"] = layer.register_forward_pre_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        self._embedding = x.mean(dim=2) if x.dim() == 3 else x

    def loss(self, speaker: torch.Tensor, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The speaker cross-entropy on the last training forward pass's embedding.

        Parameters
        ----------
        speaker : torch.Tensor [shape=(batch,)]
            Speaker indices; -1 skips a clip.
        weight : float >= 0
            Scale of the gradient reversed into the encoder.

        Returns
        -------
        loss : torch.Tensor
            Scalar cross-entropy in nats (0 when no clip has a speaker).
        accuracy : torch.Tensor
            Share of clips with a speaker whose speaker the head names.

        Raises
        ------
        RuntimeError
            No forward pass of the model has run since the last call.
        """
        if self._embedding is None:
            raise RuntimeError("SpeakerAdversary.loss needs a forward pass of the model first")
        embedding, self._embedding = self._embedding, None
        keep = speaker >= 0
        if not bool(keep.any()):
            zero = embedding.sum() * 0.0
            return zero, zero.detach()
        logits = self.head(reverse_gradient(embedding[keep], weight))
        loss = F.cross_entropy(logits, speaker[keep])
        return loss, (logits.argmax(dim=1) == speaker[keep]).float().mean()

    def remove(self) -> None:
        """Detach the hook from the model (the model then runs as if there were no adversary)."""
        self._hook.remove()


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
