"""Speaker-adversarial training (train.speaker_adversarial_weight): the gradient reversal, the
adversary's hook on the embedding, its schedule, and a real training run with it."""

from __future__ import annotations

import csv
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from audiorec.config import ConfigError, TrainConfig, load_config
from audiorec.data.manifest import Utterance
from audiorec.recognize import load_run
from audiorec.tasks.commands import CommandTask, SpeakerAdversary, reverse_gradient
from audiorec.train import speaker_indices, train
from conftest import QUICK_OVERRIDES


class _Encoder(nn.Module):
    def __init__(self, n_in: int = 6, dim: int = 5, n_classes: int = 3, frames: bool = False):
        super().__init__()
        self.body = nn.Linear(n_in, dim)
        self.frames = frames
        self.classifier = nn.Conv1d(dim, n_classes, 1) if frames else nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.body(x))
        if self.frames:  # (batch, dim, 4 frames), averaged after the 1x1 convolution as matchboxnet does
            return self.classifier(h.unsqueeze(2).expand(-1, -1, 4)).mean(dim=2)
        return self.classifier(h)


class _Model(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.encoder = _Encoder(**kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


def test_reverse_gradient_is_the_identity_forward_and_negates_the_gradient_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.allclose(x.grad, -0.3 * torch.arange(3.0).expand(4, 3))


@pytest.mark.parametrize("frames", [False, True])
def test_the_encoder_gets_the_speaker_gradient_reversed_and_the_head_gets_it_as_is(frames):
    torch.manual_seed(0)
    model = _Model(frames=frames)
    adversary = SpeakerAdversary(model, n_speakers=4, hidden=7)
    x, speaker = torch.randn(8, 6), torch.tensor([0, 1, 2, 3, 0, 1, -1, 3])

    def grads(weight: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        model.zero_grad(), adversary.zero_grad()
        model(x)
        loss, _ = adversary.loss(speaker, weight)
        loss.backward()
        return [p.grad.clone() for p in model.encoder.body.parameters()], [p.grad.clone() for p in adversary.head.parameters()]

    encoder_1, head_1 = grads(1.0)
    encoder_w, head_w = grads(0.25)
    # The same loss by hand, without the reversal: the encoder's gradient is its negative, scaled.
    model.zero_grad()
    h = torch.tanh(model.encoder.body(x))
    keep = speaker >= 0
    nn.functional.cross_entropy(adversary.head(h[keep]), speaker[keep]).backward()
    by_hand = [p.grad.clone() for p in model.encoder.body.parameters()]
    for g1, gw, g in zip(encoder_1, encoder_w, by_hand):
        assert torch.allclose(g1, -g, atol=1e-6) and torch.allclose(gw, -0.25 * g, atol=1e-6)
        assert g.abs().sum() > 0
    for a, b in zip(head_1, head_w):  # the head learns to name speakers whatever the weight
        assert torch.allclose(a, b, atol=1e-6)
    # The classifier layer itself is not on the speaker path.
    assert model.encoder.classifier.weight.grad is None or model.encoder.classifier.weight.grad.abs().sum() == 0


def test_the_adversary_needs_a_forward_pass_speakers_and_an_embedding():
    model = _Model()
    adversary = SpeakerAdversary(model, n_speakers=2)
    with pytest.raises(RuntimeError, match="forward pass"):
        adversary.loss(torch.tensor([0, 1]), 1.0)
    model(torch.randn(2, 6))
    loss, _ = adversary.loss(torch.tensor([-1, -1]), 1.0)
    assert loss.item() == 0.0
    adversary.remove()
    model(torch.randn(2, 6))
    with pytest.raises(RuntimeError, match="forward pass"):
        adversary.loss(torch.tensor([0, 1]), 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        SpeakerAdversary(_Model(), n_speakers=1)
    with pytest.raises(ValueError, match="encoder.classifier"):
        SpeakerAdversary(nn.Linear(6, 3), n_speakers=3)


def test_the_weight_rises_from_zero_on_ganins_schedule():
    task = CommandTask(_Model(), TrainConfig(speaker_adversarial_weight=0.5, ema_decay=0.0), n_speakers=3)
    weights = []
    for step in (0, 10, 50, 100):
        task.__dict__["_trainer"] = SimpleNamespace(estimated_stepping_batches=100)
        type(task).global_step = property(lambda self, s=step: s)
        try:
            weights.append(task.adversarial_weight())
        finally:
            del type(task).global_step
    assert weights[0] == 0.0
    assert weights[1] == pytest.approx(0.5 * (2 / (1 + math.exp(-1.0)) - 1))
    assert weights == sorted(weights) and weights[-1] == pytest.approx(0.5 * (2 / (1 + math.exp(-10.0)) - 1))
    # The head is trained with the network, and only the task holds it.
    assert {id(p) for p in task.adversary.parameters()} <= {id(p) for p in task.trained_parameters()}
    assert not any("adversary" in k for k in task.model.state_dict())


def test_speaker_indices_are_sorted_speakers_and_minus_one_for_none():
    utterances = [Utterance(path=f"{i}.wav", duration=1.0, sample_rate=16000, label="yes", speaker=s) for i, s in enumerate(["b", None, "a", "b"])]
    assert speaker_indices(utterances) == [1, -1, 0, 1]


def test_training_with_the_adversary_learns_and_saves_a_plain_model(synth_corpus, tmp_path):
    overrides = list(QUICK_OVERRIDES) + ["train.speaker_adversarial_weight=0.5"]
    run_dir = tmp_path / "adversarial"
    metrics = train(synth_corpus, run_dir, load_config(None, overrides), progress=False)
    rows = list(csv.DictReader((run_dir / "logs" / "version_0" / "metrics.csv").open()))
    speaker_acc = [float(r["train_speaker_acc"]) for r in rows if r.get("train_speaker_acc")]
    weights = [float(r["speaker_adversarial_weight"]) for r in rows if r.get("speaker_adversarial_weight")]
    assert len(speaker_acc) == 3, "one speaker accuracy per epoch"
    assert all(0.0 <= a <= 1.0 for a in speaker_acc)
    assert weights and weights == sorted(weights) and 0 < weights[-1] <= 0.5
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    head = [k for k in checkpoint["state_dict"] if k.startswith("adversary.head.")]
    n_train_speakers = metrics["n_speakers"]["train"]
    assert head and checkpoint["state_dict"]["adversary.head.2.weight"].shape[0] == n_train_speakers
    model = load_run(run_dir).model
    assert not any("adversary" in k for k in model.state_dict())
    assert not model.encoder.classifier._forward_pre_hooks, "the loaded model must carry no training hook"
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


def test_the_adversary_is_refused_for_the_gmm_and_speech_recognition():
    with pytest.raises(ConfigError, match="speaker_adversarial_weight"):
        load_config(None, ["model.name=gmm", "train.speaker_adversarial_weight=0.5"])
    with pytest.raises(ConfigError, match="speaker_adversarial_weight"):
        load_config(None, ["task=asr", "train.speaker_adversarial_weight=0.5"])
    with pytest.raises(ConfigError, match="speaker_adversarial_weight"):
        load_config(None, ["train.speaker_adversarial_weight=-1"])
