"""Several trained classifiers as one network: their class posteriors averaged.

Networks trained from different seeds make different confident mistakes on a new speaker's
words, while the words they all get right they mostly get right with high probability. The
average of their posteriors keeps the second and dilutes the first, which is what a detector
with a high threshold needs (Lakshminarayanan et al. 2017). Members that share a front end (same
type, configuration and weights) share one copy of it, which runs once for them: such an
ensemble costs one encoder per member, not one whole model. Members with different front ends
(log-mel bands and a pretrained speech embedding, say) each keep their own; their mistakes are
the least alike, which is where averaging gains most (Hansen & Salamon 1990).

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


class FrontEndAverage(nn.Module):
    """Classifiers with different front ends, combined as the log of their members' mean posterior.

    Each group is a classifier over one front end whose output is the log mean posterior of its
    ``size`` members (a :class:`PosteriorAverage` behind a shared front end); the groups are
    weighted by their sizes, so every member counts once whichever group it is in.

    Parameters
    ----------
    groups : sequence of nn.Module
        Each (batch, n_samples) waveform to (batch, n_classes) log posteriors (or logits), the
        same classes in the same order.
    sizes : sequence of int
        How many members each group averages (>= 1).

    Shape
    -----
    input : (batch, n_samples) float waveform
    output : (batch, n_classes) ``log(sum_g size_g * softmax(group_g(input)) / sum_g size_g)``

    Raises
    ------
    ValueError
        No groups, or ``sizes`` not one positive count per group.

    References
    ----------
    Hansen & Salamon 1990, "Neural network ensembles" (averaging members whose errors differ);
    the mean of posteriors as in Lakshminarayanan et al. 2017.
    """

    def __init__(self, groups: Sequence[nn.Module], sizes: Sequence[int]):
        super().__init__()
        if not groups or len(sizes) != len(groups) or min(sizes) < 1:
            raise ValueError(f"a front-end average needs one positive member count per group, got {list(sizes)} "
                             f"for {len(groups)} groups")
        self.groups = nn.ModuleList(groups)
        self.register_buffer("log_weights", torch.log(torch.tensor(sizes, dtype=torch.float32) / sum(sizes)),
                             persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        log_p = torch.stack([torch.log_softmax(g(waveform), dim=-1) for g in self.groups])
        return torch.logsumexp(log_p + self.log_weights[:, None, None], dim=0)


def _settings(module: nn.Module) -> dict:
    """The plain settings (numbers, strings, flags) of a module and its submodules, by path."""
    plain = (bool, int, float, str, type(None))
    return {(path, key): value for path, sub in module.named_modules() for key, value in vars(sub).items()
            if not key.startswith("_") and key != "training" and isinstance(value, plain)}


def _same_front_end(a: nn.Module, b: nn.Module) -> bool:
    """Whether two front ends compute the same thing: same type, settings, parameters and buffers.

    Buffers left out of the state dict count too: :class:`~audiorec.features.LogMel` keeps its
    band edges (from ``f_min_hz`` and ``f_max_hz``) in one, so two filter banks can differ with
    equal state dicts.
    """
    if type(a) is not type(b) or _settings(a) != _settings(b):
        return False
    state_a, state_b = ({**dict(m.named_parameters()), **dict(m.named_buffers())} for m in (a, b))
    return state_a.keys() == state_b.keys() and all(
        state_a[k].shape == state_b[k].shape and torch.equal(state_a[k], state_b[k]) for k in state_a)


def ensemble(models: Sequence[CommandClassifier], names: Sequence[str] | None = None) -> nn.Module:
    """One classifier whose posteriors are the mean of ``models``' posteriors.

    Parameters
    ----------
    models : sequence of CommandClassifier
        Trained classifiers over the same classes in the same order. Members with equal front
        ends (same type, parameters and buffers, e.g. the same ``features`` configuration) share
        one copy of it; others keep their own.
    names : sequence of str, optional
        What to call each model in errors (their run directories); default ``model 0``, ...

    Returns
    -------
    nn.Module
        In eval mode, without SpecAugment. Input (batch, n_samples), output (batch, n_classes):
        log mean posteriors, which a softmax turns into the mean posteriors. When every front end
        is the same, a :class:`~audiorec.models.classifier.CommandClassifier` with the first
        model's front end and a :class:`PosteriorAverage` of every encoder; otherwise a
        :class:`FrontEndAverage` of one such classifier per distinct front end.

    Raises
    ------
    ValueError
        No models, or a model that is not a :class:`CommandClassifier` (named).
    """
    names = list(names) if names is not None else [f"model {i}" for i in range(len(models))]
    if not models:
        raise ValueError("an ensemble needs at least one model")
    for model, name in zip(models, names):
        if not isinstance(model, CommandClassifier):
            raise ValueError(f"{name}: a {type(model).__name__} cannot join an ensemble; only command classifiers can")
    groups: list[list[CommandClassifier]] = []
    for model in models:
        group = next((g for g in groups if _same_front_end(g[0].features, model.features)), None)
        if group is None:
            groups.append([model])
        else:
            group.append(model)
    classifiers = [CommandClassifier(g[0].features, PosteriorAverage([m.encoder for m in g])) for g in groups]
    if len(classifiers) == 1:
        return classifiers[0].eval()
    return FrontEndAverage(classifiers, [len(g) for g in groups]).eval()
