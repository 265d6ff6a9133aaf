"""Feature front ends: shapes, units, agreement with librosa, a tone in the right band."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
import torch

from audiorec.features import MFCC, FeatureConfig, LogMel, build_features, frame_signal
from conftest import sine


@pytest.mark.parametrize(
    "sample_rate, win_ms, hop_ms, win, hop, n_fft",
    [(16_000, 25.0, 10.0, 400, 160, 512), (8_000, 25.0, 10.0, 200, 80, 256), (16_000, 32.0, 8.0, 512, 128, 512),
     (22_050, 20.0, 5.0, 441, 110, 512)],
)
def test_window_and_hop_in_samples(sample_rate, win_ms, hop_ms, win, hop, n_fft):
    f = LogMel(sample_rate=sample_rate, win_ms=win_ms, hop_ms=hop_ms)
    assert (f.win_length, f.hop_length, f.n_fft) == (win, hop, n_fft)


@pytest.mark.parametrize("n_samples", [16_000, 12_345, 4_000])
@pytest.mark.parametrize("n_mels, hop_ms", [(40, 10.0), (64, 12.5)])
def test_log_mel_shape(n_samples, n_mels, hop_ms):
    f = LogMel(n_mels=n_mels, hop_ms=hop_ms)
    out = f(torch.randn(3, n_samples))
    assert out.shape == (3, n_mels, 1 + n_samples // f.hop_length)
    assert f.n_frames(n_samples) == out.shape[-1]
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_mfcc_shape_and_definition():
    x = torch.randn(2, 16_000)
    mfcc = MFCC(n_mfcc=13, n_mels=40)
    out = mfcc(x)
    assert out.shape == (2, 13, 101)
    assert mfcc.n_frames(16_000) == 101
    # DCT-II (orthonormal) over mel bands of the log-mel spectrogram.
    log_mel = LogMel(n_mels=40)(x).numpy()
    expected = scipy.fft.dct(log_mel, type=2, norm="ortho", axis=1)[:, :13]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-3)


def test_log_mel_matches_librosa():
    y = np.random.default_rng(0).normal(0, 0.1, 16_000).astype(np.float32)
    ours = LogMel(n_mels=40, f_min_hz=20.0)(torch.from_numpy(y)[None])[0].numpy()
    mel = librosa.feature.melspectrogram(
        y=y, sr=16_000, n_fft=512, hop_length=160, win_length=400, window="hann", center=True,
        pad_mode="reflect", power=2.0, n_mels=40, fmin=20.0, fmax=8_000.0,
    )
    np.testing.assert_allclose(ours, np.log(mel + 1e-6), atol=1e-3)


@pytest.mark.parametrize("sample_rate, n_mels, f_min, f_max", [(16_000, 40, 20.0, 0.0), (8_000, 23, 0.0, 3_800.0),
                                                            (22_050, 64, 60.0, 0.0)])
def test_mel_filters_computed_in_the_graph_equal_librosa(sample_rate, n_mels, f_min, f_max):
    f = LogMel(sample_rate=sample_rate, n_mels=n_mels, f_min_hz=f_min, f_max_hz=f_max)
    expected = librosa.filters.mel(sr=sample_rate, n_fft=f.n_fft, n_mels=n_mels, fmin=f_min,
                                   fmax=f_max if f_max > 0 else sample_rate / 2)
    np.testing.assert_allclose(f.mel_basis().numpy(), expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("sample_rate, win_ms, hop_ms", [(16_000, 25.0, 10.0), (22_050, 20.0, 5.0), (8_000, 30.0, 10.0)])
@pytest.mark.parametrize("n_samples", [16_000, 12_345])
def test_convolution_stft_equals_torch_stft(sample_rate, win_ms, hop_ms, n_samples):
    """The strided-convolution STFT (which exports to a fast ONNX graph) is torch.stft, frame for frame."""
    f = LogMel(sample_rate=sample_rate, win_ms=win_ms, hop_ms=hop_ms, top_db=0)
    x = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, (2, n_samples)).astype(np.float32))
    spec = torch.stft(x, f.n_fft, f.hop_length, f.win_length, torch.hann_window(f.win_length), center=True,
                      return_complex=True)
    expected = torch.log(torch.matmul(f.mel_basis(), spec.abs().pow(2)) + f.floor)
    out = f(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=2e-5)


@pytest.mark.parametrize("sample_rate, win_ms, hop_ms, folded", [
    (16_000, 25.0, 10.0, True),        # the default: 400 / 160 samples, frames from 5 slices of 80
    (8_000, 30.0, 10.0, True),         # 240 / 80: 3 slices
    (16_000, 20.625, 10.3125, True),   # 330 / 165: an odd half window (165 taps each side)
    (16_000, 32.0, 8.0, True),         # the window fills the FFT frame (512)
    (16_000, 25.0, 7.0, True),         # 400 / 112: 25 slices of 16, within the limit of 32
    (22_050, 20.0, 5.0, False),        # 441 samples: no whole centre sample, the convolution
])
def test_folded_dft_equals_the_convolution(sample_rate, win_ms, hop_ms, folded):
    """The twice-folded DFT and the windowed-DFT convolution give the same mel power."""
    f = LogMel(sample_rate=sample_rate, win_ms=win_ms, hop_ms=hop_ms)
    assert f.folded == folded
    x = torch.from_numpy(np.random.default_rng(2).normal(0, 0.1, (2, 12_345)).astype(np.float32))
    fast = f.mel_power(x)
    f.folded = False
    slow = f.mel_power(x)
    assert fast.shape == slow.shape == (2, f.n_mels, f.n_frames(12_345))
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-6 * float(slow.abs().max()))


@pytest.mark.parametrize("win_length, hop_length", [(400, 160), (240, 80), (330, 165), (512, 128)])
def test_frames_are_the_overlapping_windows(win_length, hop_length):
    x = torch.arange(2 * 5_003, dtype=torch.float32).reshape(2, 5_003)
    torch.testing.assert_close(frame_signal(x, win_length, hop_length), x.unfold(1, win_length, hop_length), rtol=0, atol=0)


def test_a_learned_dft_or_many_framing_slices_use_the_convolution():
    assert not LogMel(learnable_dft=True).folded
    assert not LogMel(win_ms=25.0, hop_ms=161 / 16).folded  # gcd(400, 161) = 1: 400 slices


@pytest.mark.parametrize("freq", [1000.0, 300.0, 3000.0])
def test_tone_peaks_in_the_band_containing_it(freq):
    n_mels, f_min, f_max = 40, 20.0, 8000.0
    f = LogMel(n_mels=n_mels, f_min_hz=f_min)
    x = torch.from_numpy(sine(freq, 16_000, 1.0).astype(np.float32))[None]
    band = int(f(x)[0].mean(dim=1).argmax())
    edges = librosa.mel_frequencies(n_mels + 2, fmin=f_min, fmax=f_max)
    # Band i is the triangle from edges[i] to edges[i + 2].
    assert edges[band] <= freq <= edges[band + 2], (band, edges[band], edges[band + 2])
    assert abs(edges[band + 1] - freq) < (edges[band + 2] - edges[band])


def test_silence_maps_to_floor_not_minus_infinity():
    out = LogMel(floor=1e-6)(torch.zeros(1, 8_000))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.full_like(out, float(np.log(1e-6))))


@pytest.mark.parametrize(
    "kwargs",
    [dict(win_ms=0), dict(hop_ms=-5), dict(win_ms=10, hop_ms=20), dict(n_mels=0), dict(f_min_hz=-1),
     dict(f_min_hz=4000, f_max_hz=3000), dict(f_max_hz=9000), dict(sample_rate=8000, f_max_hz=5000)],
)
def test_bad_log_mel_parameters(kwargs):
    with pytest.raises(ValueError):
        LogMel(**kwargs)


def test_bad_mfcc_parameters():
    with pytest.raises(ValueError, match="n_mfcc"):
        MFCC(n_mfcc=41, n_mels=40)
    with pytest.raises(ValueError, match="n_mfcc"):
        MFCC(n_mfcc=0)


def test_build_features():
    x = torch.randn(2, 8_000)
    log_mel = build_features(FeatureConfig(kind="log_mel", n_mels=32))
    assert isinstance(log_mel, LogMel) and log_mel.n_features == 32
    assert log_mel(x).shape == (2, 32, 51)
    mfcc = build_features(FeatureConfig(kind="mfcc", n_mels=40, n_mfcc=12, hop_ms=20.0, win_ms=30.0))
    assert isinstance(mfcc, MFCC) and mfcc.n_features == 12
    assert mfcc(x).shape == (2, 12, 1 + 8_000 // 320)
    with pytest.raises(ValueError, match="kind"):
        build_features(FeatureConfig(kind="spectrogram"))
    with pytest.raises(ValueError):
        build_features(FeatureConfig(kind="mfcc", n_mels=10, n_mfcc=20))


@pytest.mark.parametrize("n_samples, trainable", [(16_000, False), (12_345, True)])
def test_pcen_equals_librosa_started_at_the_first_frame(n_samples, trainable):
    import scipy.signal

    from audiorec.features import PCEN

    rng = np.random.default_rng(2)
    y = rng.normal(0, 0.05, (2, n_samples)).astype(np.float32)
    y[:, n_samples // 4: n_samples // 2] *= 8  # a louder stretch, so the smoother has work to do
    pcen = PCEN(n_mels=40, trainable=trainable)
    with torch.no_grad():
        ours = pcen(torch.from_numpy(y)).numpy()
        energy = (pcen.log_mel.mel_power(torch.from_numpy(y)) * 2.0**62).double().numpy()
    assert ours.shape == (2, 40, pcen.n_frames(n_samples)) and abs(pcen.smoothing - 0.0247) < 1e-4
    zi = scipy.signal.lfilter_zi([pcen.smoothing], [1, pcen.smoothing - 1]) * energy[..., :1]
    expected = librosa.pcen(energy, b=pcen.smoothing, gain=0.98, bias=2.0, power=0.5, eps=1e-6, zi=zi, axis=-1)
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-3)


def test_pcen_adapts_to_a_level_change_and_ignores_overall_gain():
    """The gain control: a jump in level stands out, then fades as the smoother catches up, while the
    log-mel stays up; and the same clip 20 dB louder gives nearly the same PCEN."""
    from audiorec.features import PCEN

    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, 48_000).astype(np.float32) * np.where(np.arange(48_000) < 16_000, 0.005, 0.05)
    x = torch.from_numpy(y.astype(np.float32))[None]
    pcen, log_mel = PCEN(), LogMel(top_db=0)
    with torch.no_grad():
        p, m = pcen(x)[0].mean(0), log_mel(x)[0].mean(0)
        louder = pcen(10 * x)[0]
        # frames 105-110 just after the jump at frame 100, 280-290 two seconds later
        assert p[105:110].mean() > 2 * p[280:290].mean()
        assert abs(m[105:110].mean() - m[280:290].mean()) < 0.5  # the log-mel did not adapt
        assert abs(m[50:60].mean() - m[280:290].mean()) > 4  # though it saw the 20 dB step
        np.testing.assert_allclose(louder.numpy(), pcen(x)[0].numpy(), rtol=0.15, atol=0.05)


@pytest.mark.parametrize("kwargs", [dict(time_constant_s=0), dict(gain=1.5), dict(bias=0), dict(power=0), dict(eps=-1)])
def test_bad_pcen_parameters(kwargs):
    from audiorec.features import PCEN

    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PCEN(**kwargs)


def test_build_pcen_features():
    from audiorec.features import PCEN

    pcen = build_features(FeatureConfig(kind="pcen", n_mels=32, pcen_time_constant_s=0.2))
    assert isinstance(pcen, PCEN) and pcen.n_features == 32 and not pcen.log_params.requires_grad
    assert pcen(torch.randn(2, 8_000)).shape == (2, 32, 51)
    faster = (np.sqrt(1 + 4 * 20**2) - 1) / (2 * 20**2)  # 0.2 s at 10 ms
    assert pcen.smoothing == pytest.approx(faster)
    trained = build_features(FeatureConfig(kind="pcen", pcen_trainable=True))
    assert isinstance(trained.log_params, torch.nn.Parameter) and trained.log_params.shape == (40, 3)
