"""Augmentation and the clip dataset: SpecAugment, time shift, fitting clips to one length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiorec.augment import SpecAugment, add_noise, speed_perturb, time_shift
from audiorec.config import AugmentConfig
from audiorec.data.dataset import ClipDataset, fit_to_length
from conftest import dominant_frequency, sine


def test_spec_augment_is_identity_in_eval_mode():
    aug = SpecAugment(freq_masks=3, freq_mask_width=10, time_masks=3, time_mask_width=20).eval()
    x = torch.randn(4, 40, 101)
    assert torch.equal(aug(x), x)


def test_spec_augment_masks_whole_rows_and_columns_in_train_mode():
    torch.manual_seed(0)
    aug = SpecAugment(freq_masks=2, freq_mask_width=6, time_masks=2, time_mask_width=12).train()
    x = torch.randn(16, 40, 101)
    y = aug(x)
    assert y.shape == x.shape
    changed = y != x
    assert changed.any(), "training mode must mask something"
    fill = x.mean(dim=(1, 2), keepdim=True).expand_as(x)
    assert torch.allclose(y[changed], fill[changed])
    for b in range(16):
        rows = changed[b].all(dim=1)  # masked frequency bins
        cols = changed[b].all(dim=0)  # masked frames
        assert torch.equal(changed[b], rows[:, None] | cols[None, :])
        assert rows.sum() <= 2 * 6 and cols.sum() <= 2 * 12
    assert any(changed[b].all(dim=1).any() for b in range(16))
    assert any(changed[b].all(dim=0).any() for b in range(16))


def test_spec_augment_without_masks_changes_nothing():
    aug = SpecAugment(freq_masks=0, time_masks=0).train()
    x = torch.randn(2, 40, 50)
    assert torch.equal(aug(x), x)


def test_time_shift_keeps_length_and_content():
    x = np.arange(1, 1001, dtype=np.float32)
    rng = np.random.default_rng(0)
    shifts = set()
    for _ in range(50):
        y = time_shift(x, 100, rng)
        assert y.shape == x.shape and y.dtype == x.dtype
        nonzero = np.flatnonzero(y)
        first, last = nonzero[0], nonzero[-1]
        shift = first if first > 0 else -(int(y[0]) - 1)
        assert abs(shift) <= 100
        np.testing.assert_array_equal(y[first : last + 1], x[max(0, -shift) : max(0, -shift) + last - first + 1])
        assert len(nonzero) == len(x) - abs(shift)
        shifts.add(int(np.sign(shift)))
    assert shifts >= {-1, 1}  # both directions occur


def test_time_shift_zero_is_identity():
    x = np.random.default_rng(1).normal(size=500).astype(np.float32)
    np.testing.assert_array_equal(time_shift(x, 0, np.random.default_rng(0)), x)


def test_fit_to_length_pads_in_the_centre():
    out = fit_to_length(np.ones(6, np.float32), 10)
    np.testing.assert_array_equal(out, [0, 0, 1, 1, 1, 1, 1, 1, 0, 0])
    assert out.dtype == np.float32


def test_fit_to_length_keeps_the_loudest_window():
    x = np.zeros(16_000, np.float32)
    x[9_000:9_500] = 1.0
    out = fit_to_length(x, 4_000)
    assert len(out) == 4_000 and out.sum() == 500


def test_speed_perturb_changes_length_and_pitch_together():
    x = sine(1000.0, 16_000, 1.0).astype(np.float32)
    fast = speed_perturb(x, 1.1, 16_000)
    assert fast.dtype == np.float32
    assert abs(len(fast) - round(16_000 / 1.1)) <= 1
    assert dominant_frequency(fast, 16_000) == pytest.approx(1100.0, abs=3.0)
    slow = speed_perturb(x, 0.9, 16_000)
    assert abs(len(slow) - round(16_000 / 0.9)) <= 1
    assert dominant_frequency(slow, 16_000) == pytest.approx(900.0, abs=3.0)
    np.testing.assert_array_equal(speed_perturb(x, 1.0, 16_000), x)
    with pytest.raises(ValueError):
        speed_perturb(x, 0.0, 16_000)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 30.0])
def test_add_noise_reaches_the_requested_snr(snr_db):
    x = sine(440.0, 16_000, 4.0).astype(np.float32)
    y = add_noise(x, snr_db, np.random.default_rng(0))
    assert y.shape == x.shape and y.dtype == np.float32
    noise = y.astype(np.float64) - x
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.3)
    silent = np.zeros(100, np.float32)
    np.testing.assert_array_equal(add_noise(silent, 10.0, np.random.default_rng(0)), silent)


def test_clip_dataset_without_augmentation_fits_every_clip():
    waves = [np.linspace(-1, 1, n, dtype=np.float32) for n in (800, 1200, 1000)]
    ds = ClipDataset(waves, [0, 1, 2], clip_samples=1000)
    assert len(ds) == 3
    for i, wave in enumerate(waves):
        clip, target = ds[i]
        assert isinstance(clip, torch.Tensor) and clip.shape == (1000,) and target == i
        np.testing.assert_array_equal(clip.numpy(), fit_to_length(wave, 1000))
    with pytest.raises(ValueError):
        ClipDataset(waves, [0, 1], clip_samples=1000)


def test_clip_dataset_augmentation_is_seeded_by_epoch_and_index():
    rng = np.random.default_rng(0)
    waves = [rng.normal(0, 0.1, n).astype(np.float32) for n in (8_000, 12_000, 16_000)]
    augment = AugmentConfig()
    ds = ClipDataset(waves, [0, 1, 2], clip_samples=16_000, augment=augment, seed=3)
    ds.set_epoch(2)
    first = [ds[i][0].clone() for i in range(3)]
    assert all(c.shape == (16_000,) for c in first)
    again = ClipDataset(waves, [0, 1, 2], clip_samples=16_000, augment=augment, seed=3)
    again.set_epoch(2)
    assert all(torch.equal(again[i][0], first[i]) for i in range(3))  # same epoch: same clips
    assert all(torch.equal(ds[i][0], first[i]) for i in range(3))  # repeatable within the epoch
    ds.set_epoch(3)
    assert not torch.equal(ds[2][0], first[2])  # another epoch: another draw
