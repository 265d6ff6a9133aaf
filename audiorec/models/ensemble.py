"""Several trained classifiers as one network: one front end, their posteriors averaged.

Networks trained from different seeds make different confident mistakes on a new speaker's
words, while the words they all get right they mostly get right with high probability. The
average of their posteriors keeps the second and dilutes the first, which is what a detector
with a high threshold needs (Lakshminarayanan et al. 2017). The members must share the front
end (same features configuration and weights), which then runs once: the ensemble costs one
encoder per member, not one whole model.

References
----------
Hansen & Salamon 1990, "Neural network ensembles", IEEE TPAMI 12(10). Lakshminarayanan,
Pritzel & Blundell 2017, "Simple and scalable predictive uncertainty estimation using deep
ensembles", NeurIPS.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from audiorec.models.classifier import CommandClassifier


class PosteriorAverage(nn.Module):
    """Encoders over the same features, combined as the log of their mean class posterior.

    ``softmax`` of the output is the mean of the members' ``softmax`` outputs, so the ensemble
    stands wherever a single encoder's logits do (training excepted).

    Parameters
    ----------
    encoders : sequence of nn.Module
        Each (batch, n_features, n_frames) to (batch, n_classes) logits, the same classes in
        the same order.

    Shape
    -----
    input : (batch, n_features, n_frames)
    output : (batch, n_classes) ``log(mean_k softmax(encoder_k(input)))``

    Raises
    ------
    ValueError
        No encoders.
    """

    def __init__(self, encoders: Sequence[nn.Module]):
        super().__init__()
        if not encoders:
            raise ValueError("an ensemble needs at least one encoder")
        self.encoders = nn.ModuleList(encoders)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        log_p = torch.stack([torch.log_softmax(e(features), dim=-1) for e in self.encoders])
        return torch.logsumexp(log_p, dim=0) - math.log(len(self.encoders))


def ensemble(models: Sequence[CommandClassifier], names: Sequence[str] | None = None) -> CommandClassifier:
    """One classifier whose posteriors are the mean of ``models``' posteriors.

    Parameters
    ----------
    models : sequence of CommandClassifier
        Trained classifiers over the same classes in the same order, with equal front ends
        (same type, parameters and buffers, for example the same ``features`` configuration).
    names : sequence of str, optional
        What to call each model in errors (their run directories); default ``model 0``, ...

    Returns
    -------
    CommandClassifier
        The first model's front end and a :class:`PosteriorAverage` of every model's encoder, in
        eval mode, without SpecAugment. Input (batch, n_samples), output (batch, n_classes):
        log mean posteriors, which a softmax turns into the mean posteriors.

    Raises
    ------
    ValueError
        No models, a model that is not a :class:`CommandClassifier`, or a front end that
        differs from the first model's (named, with the first tensor that differs).
    """
    names = list(names) if names is not None else [f"model {i}" for i in range(len(models))]
    if not models:
        raise ValueError("an ensemble needs at least one model")
    for model, name in zip(models, names):
        if not isinstance(model, CommandClassifier):
            raise ValueError(f"{name}: a {type(model).__name__} cannot join an ensemble; only command classifiers can")
    first = models[0].features
    reference = first.state_dict()
    for model, name in zip(models[1:], names[1:]):
        if type(model.features) is not type(first):
            raise ValueError(f"{name}: front end {type(model.features).__name__} differs from {names[0]}'s {type(first).__name__}")
        state = model.features.state_dict()
        for key, value in reference.items():
            if key not in state or state[key].shape != value.shape or not torch.equal(state[key], value):
                raise ValueError(f"{name}: front end differs from {names[0]}'s in {key!r}; "
                                 f"an ensemble's members must share the features configuration")
    return CommandClassifier(first, PosteriorAverage([m.encoder for m in models])).eval()
