"""The GMM baseline: HTK deltas, BIC model selection, agreement with scikit-learn, and a whole run
through train, recognize, evaluate and export like any network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from audiorec.cli import main
from audiorec.config import load_config
from audiorec.export import export_run
from audiorec.models import build_model
from audiorec.models.gmm import GMMClassifier, deltas, fit_mixture_by_bic
from audiorec.runtime import Recognizer

SAMPLE_RATE = 16_000


def test_deltas_follow_the_htk_formula_on_a_ramp():
    ramp = torch.arange(10, dtype=torch.float32).reshape(1, 1, 10)
    # d[t] = (1 (c[t+1] - c[t-1]) + 2 (c[t+2] - c[t-2])) / 10, c[-1] = c[-2] = c[0] and so at the end:
    # at t = 0: (1 * 1 + 2 * 2) / 10; at t = 1: (1 * 2 + 2 * 3) / 10; a slope of 1 inside.
    expected = [0.5, 0.8, 1, 1, 1, 1, 1, 1, 0.8, 0.5]
    np.testing.assert_allclose(deltas(ramp)[0, 0].numpy(), expected, rtol=1e-6)
    # The regression of t^2 is its derivative 2t away from the edges.
    t = torch.arange(12, dtype=torch.float64)
    np.testing.assert_allclose(deltas((t * t).reshape(1, 1, -1))[0, 0, 2:-2].numpy(), 2 * t[2:-2].numpy())


def test_bic_picks_fewer_components_on_tiny_data_than_on_large():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1.5, (8, 6))  # 8 overlapping unit-variance clusters in 6 dimensions

    def sample(n):
        return centres[rng.integers(0, 8, n)] + rng.normal(0, 1, (n, 6))

    tiny, tiny_bic = fit_mixture_by_bic(sample(100), max_components=16)
    large, large_bic = fit_mixture_by_bic(sample(5000), max_components=16)
    assert max(tiny_bic) == 8, "100 frames may try up to 8 components (10 frames each)"
    assert tiny.n_components < 8 == large.n_components
    assert min(large_bic, key=large_bic.get) == 8 and max(large_bic) == 16


@pytest.mark.parametrize("n_features, dct, dim", [(40, True, 39), (20, False, 60)])
def test_forward_shapes(n_features, dct, dim):
    encoder = GMMClassifier(n_features, n_classes=5, size="8", dct=dct).eval()
    assert encoder.dim == dim and encoder.means.shape == (5, 8, dim)
    with torch.no_grad():
        for batch in (1, 3):
            for n_frames in (101, 61):
                features = torch.randn(batch, n_features, n_frames)
                assert encoder.frames(features).shape == (batch, n_frames, dim)
                assert encoder(features).shape == (batch, 5)


def test_size_is_checked_and_mfcc_features_skip_the_dct():
    with pytest.raises(ValueError, match="gmm size 'XL' is not one of 32, 8, 16, 64"):
        build_model(load_config(None, ["model.name=gmm", "model.size=XL"]), 4)
    assert build_model(load_config(None, ["model.name=gmm"]), 4).encoder.max_components == 32
    mfcc = build_model(load_config(None, ["model.name=gmm", "features.kind=mfcc", "features.n_mfcc=13"]), 4).encoder
    assert mfcc.dct is None and mfcc.dim == 39


def test_logits_are_the_mean_sklearn_log_likelihood_of_the_frames_above_the_floor():
    torch.manual_seed(0)
    encoder = GMMClassifier(n_features=40, n_classes=3, size="8").eval()
    shifts = torch.randn(3, 40, 1)  # each class its own spectral shape
    train = [torch.randn(30, 40, 50) + shifts[c] for c in range(3)]
    with torch.no_grad():
        mixtures = encoder.fit([encoder.frames(x).reshape(-1, encoder.dim).numpy() for x in train], seed=0)
    assert encoder.n_components.tolist() == [m.n_components for m in mixtures]
    assert encoder.n_parameters == sum(k * (2 * 39 + 1) - 1 for k in encoder.n_components.tolist())

    features = torch.randn(4, 40, 60) + shifts[torch.tensor([0, 1, 2, 0])]
    # Ten frames of padding: every bin at its lowest, as the top_db clamp makes them.
    features[:, :, :10] = features.amin(dim=2, keepdim=True) - 1.0
    with torch.no_grad():
        frames = encoder.frames(features)
        keep = encoder.frame_mask(frames)
        logits = encoder(features).double().numpy()
    assert keep[:, :10].logical_not().all() and keep[:, 10:].all()
    expected = np.array([[m.score_samples(f[k].double().numpy()).mean() for m in mixtures]
                         for f, k in zip(frames, keep)])
    np.testing.assert_allclose(logits, expected, rtol=1e-4)
    assert (logits.argmax(1) == [0, 1, 2, 0]).all()


def _tone_corpus(root):
    """Four classes of 0.5-s tone pairs, FSDD file names, six speakers who shift the pitch."""
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    tones = [(300, 900), (500, 1500), (700, 2500), (1100, 3300)]  # Hz, per class
    for speaker, pitch in zip("abcdef", np.linspace(0.94, 1.06, 6)):
        for label, (f1, f2) in enumerate(tones):
            for take in range(4):
                f = pitch * rng.uniform(0.98, 1.02)
                y = 0.4 * np.sin(2 * np.pi * f * f1 * t) + 0.2 * np.sin(2 * np.pi * f * f2 * t)
                y = y * np.hanning(len(t)) + rng.normal(0, 1e-3, len(t))
                soundfile.write(root / f"{label}_{speaker}x_{take}.wav", y.astype(np.float32), SAMPLE_RATE)
    return root


def test_train_recognize_evaluate_and_export_a_gmm_run(tmp_path, trained_run):
    corpus = _tone_corpus(tmp_path)
    run = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--out", str(run), "--model", "gmm", "--test-speakers", "fx",
                 "--quiet", "model.size=8", "data.val_fraction=0.2"]) == 0

    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == set(trained_run[1]), "the same metrics as a network's run"
    assert metrics["n_test"] == 16 and metrics["test_accuracy"] >= 0.9  # chance is 0.25
    assert metrics["best_val_accuracy"] >= 0.9 and metrics["epochs"] is None
    assert 0 < metrics["n_parameters"] <= 4 * (8 * (2 * 39 + 1) - 1)
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert not list(run.rglob("*.tmp"))

    recognizer = Recognizer.from_run(run)
    assert recognizer.recognize_file(corpus / "2_fx_0.wav").label == "2"
    assert main(["evaluate", str(run), "--out", str(tmp_path / "evaluation")]) == 0
    evaluation = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert evaluation["accuracy"] == pytest.approx(metrics["test_accuracy"])

    report = export_run(run, progress=False)
    assert report.parity_max_abs_diff < 1e-4 and report.parity_top1_agreement == 1.0
    clips = np.stack([soundfile.read(p, dtype="float32")[0] for p in sorted(corpus.glob("*_fx_*.wav"))])
    np.testing.assert_allclose(Recognizer.load(report.model).predict_proba(clips), recognizer.predict_proba(clips), atol=1e-4)
    # No layer has stored weights, and quantising everything else would wreck it (0.24 on FSDD).
    with pytest.raises(ValueError, match="nothing to quantise to int8"):
        export_run(run, tmp_path / "int8.onnx", int8=True, progress=False)
