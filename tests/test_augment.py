"""Augmentation: the waveform effects one by one, SNR mixing, seeding, noise loading, SpecAugment,
mixup, the clip data set, and fitting clips to one length."""

from __future__ import annotations

import random

import numpy as np
import pytest
import soundfile
import torch

from audiorec.audio import fit_to_length, random_window_start
from audiorec.augment import (
    AugmentConfig,
    BackgroundNoise,
    Babble,
    NoiseError,
    SpecAugment,
    WaveformAugment,
    check_augment_config,
    load_noise,
    mix_at_snr,
    mixup,
    rms,
    seeded,
    word_bounds,
)
from audiorec.config import ConfigError, load_config
from audiorec.data.dataset import ClipDataset
from conftest import dominant_frequency, shared_dataset, sine, write_sine

SR = 16_000
EFFECTS = ("speed", "trim_edges", "time_shift", "pitch_shift", "tempo", "band_pass", "eq", "high_shelf", "echo", "reverb", "gain",
           "loudness", "background_noise", "babble", "color_noise")
SEEDS = (0, 1, 2)


def only(effect: str, **ranges) -> AugmentConfig:
    """A config in which ``effect`` always applies (p=1) and every other effect is off."""
    config = AugmentConfig()
    for name in EFFECTS:
        getattr(config, name).p = 0.0
    section = getattr(config, effect)
    section.p = 1.0
    for key, value in ranges.items():
        setattr(section, key, value)
    return config


def tone(freq_hz: float = 440.0, duration_s: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    return sine(freq_hz, SR, duration_s, amplitude).astype(np.float32)


def speech_like(duration_s: float = 1.0) -> np.ndarray:
    """A sum of harmonics of 150 Hz under a syllable-rate envelope: broadband, not a pure tone."""
    t = np.arange(round(SR * duration_s)) / SR
    voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    return (0.2 * voice * envelope).astype(np.float32)


def talkers() -> list[np.ndarray]:
    """Stand-ins for other training clips: tones at 300, 700 and 1100 Hz, shorter and longer than a clip."""
    return [tone(300.0, 0.4), tone(700.0, 1.5, amplitude=0.1), tone(1100.0, 0.7, amplitude=0.9)]


def burst(duration_s: float = 0.1, total_s: float = 1.0) -> np.ndarray:
    """A 440 Hz tone of ``duration_s`` at the start, then digital silence up to ``total_s``."""
    y = np.zeros(round(SR * total_s), np.float32)
    y[: round(SR * duration_s)] = tone(440.0, duration_s)
    return y


def within(value: float, low: float, high: float, tol: float = 1e-4) -> bool:
    """``low <= value <= high`` allowing for the 4-decimal rounding of the record."""
    return low - tol <= value <= high + tol


@pytest.fixture(scope="module")
def noises():
    """The shared noise recordings, decoded once for the module."""
    return load_noise([shared_dataset("noise")], SR)


# --- SpecAugment ---------------------------------------------------------------------------------


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


# --- fit_to_length -------------------------------------------------------------------------------


def test_fit_to_length_pads_in_the_centre():
    out = fit_to_length(np.ones(6, np.float32), 10)
    np.testing.assert_array_equal(out, [0, 0, 1, 1, 1, 1, 1, 1, 0, 0])
    assert out.dtype == np.float32


def test_fit_to_length_keeps_the_loudest_window():
    x = np.zeros(16_000, np.float32)
    x[9_000:9_500] = 1.0
    out = fit_to_length(x, 4_000)
    assert len(out) == 4_000 and out.sum() == 500
    assert fit_to_length(np.arange(5, dtype=np.float64), 5).dtype == np.float32


def test_fit_to_length_cuts_at_a_given_start():
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_to_length(x, 4, start=3), [3, 4, 5, 6])
    np.testing.assert_array_equal(fit_to_length(x[:3], 4, start=99), [0, 1, 2, 0])  # short: padded, start ignored
    with pytest.raises(ValueError, match="start=7"):
        fit_to_length(x, 4, start=7)


def sentence(words_at_s=(0.5, 1.5, 2.5, 3.5), duration_s: float = 4.5) -> np.ndarray:
    """Silence with 0.3-s bursts of noise (words) at the given times: a long _unknown_ recording."""
    x = np.zeros(round(SR * duration_s), np.float32)
    rng = np.random.default_rng(0)
    for t in words_at_s:
        x[round(t * SR) : round((t + 0.3) * SR)] = 0.3 * rng.standard_normal(round(0.3 * SR))
    return x


def test_random_window_start_draws_windows_of_speech_all_over_the_clip():
    x = sentence()
    energy = np.array([np.sum(x[i : i + SR].astype(np.float64) ** 2) for i in range(0, len(x) - SR + 1, 100)])
    rng = np.random.default_rng(1)
    starts = [random_window_start(x, SR, rng, energy_ratio=0.5) for _ in range(300)]
    windows = np.array([np.sum(x[s : s + SR].astype(np.float64) ** 2) for s in starts])
    assert np.all(windows >= 0.5 * energy.max() * (1 - 1e-9))  # never mostly silence
    assert max(starts) - min(starts) > 2 * SR  # not stuck at the loudest window: words 1 to 4 all drawn
    first_word = sum(s <= 0.5 * SR for s in starts)
    assert 0 < first_word < len(starts)
    # a stricter ratio keeps fewer starts; a short or silent clip has none to choose
    assert len(set(random_window_start(x, SR, rng, 1.0) for _ in range(50))) < len(set(starts))
    assert random_window_start(x[:SR], SR, rng) is None
    assert random_window_start(np.zeros(2 * SR, np.float32), SR, rng) is None
    with pytest.raises(ValueError, match="energy_ratio=0"):
        random_window_start(x, SR, rng, energy_ratio=0)


def test_random_window_applies_only_to_the_clips_asked_and_follows_the_seed():
    config = AugmentConfig()
    for name in EFFECTS:
        getattr(config, name).p = 0.0
    augment = WaveformAugment(config, SR, clip_samples=SR)
    x = sentence()
    loudest = fit_to_length(x, SR)
    kept, applied = augment(x, (0, 0, 3))
    assert applied == [] and np.array_equal(kept, loudest)  # a command: always its loudest window
    cuts = [augment(x, (0, epoch, 3), random_window=True) for epoch in range(8)]
    starts = {rec[0]["start_s"] for _, rec in cuts}
    assert len(starts) > 3 and all(rec[0]["effect"] == "random_window" for _, rec in cuts)
    for clip, rec in cuts:  # the record says where the clip was cut
        start = round(rec[0]["start_s"] * SR)
        np.testing.assert_array_equal(clip, x[start : start + SR])
    again, _ = augment(x, (0, 5, 3), random_window=True)
    np.testing.assert_array_equal(again, cuts[5][0])
    config.random_window.p = 0.0
    off, applied = WaveformAugment(config, SR, clip_samples=SR)(x, (0, 1, 3), random_window=True)
    assert applied == [] and np.array_equal(off, loudest)


def test_random_window_leaves_the_other_effects_draws_alone():
    augment = WaveformAugment(AugmentConfig(), SR, clip_samples=SR)
    x = sentence()
    for epoch in range(3):
        _, plain = augment(x, (4, epoch, 0))
        _, windowed = augment(x, (4, epoch, 0), random_window=True)
        assert windowed[0]["effect"] == "speed" and windowed[1]["effect"] == "random_window"
        def drawn(records):  # what was drawn, not levels measured on the (other) window
            return [{k: v for k, v in r.items() if "rms" not in k} for r in records if r["effect"] != "random_window"]
        assert drawn(windowed) == drawn(plain)


def test_clip_dataset_cuts_long_negatives_anew_each_epoch():
    config = AugmentConfig()
    for name in EFFECTS:
        getattr(config, name).p = 0.0
    x = sentence()
    ds = ClipDataset([x, x], [0, 1], SR, WaveformAugment(config, SR, clip_samples=SR), seed=2, random_window={1})
    by_epoch = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        by_epoch.append((ds[0][0].numpy(), ds[1][0].numpy()))
    assert all(np.array_equal(command, by_epoch[0][0]) for command, _ in by_epoch)  # target 0: the loudest window
    assert len({negative.tobytes() for _, negative in by_epoch}) > 1  # target 1: another window each epoch


def test_random_window_config_is_checked():
    with pytest.raises(ConfigError, match="random_window.energy_ratio"):
        load_config(None, ["augment.random_window.energy_ratio=1.5"])
    assert load_config(None, []).augment.random_window.labels == ["_unknown_"]


# --- each waveform effect alone --------------------------------------------------------------------


def _check_ranges(effect: str, record: dict, config: AugmentConfig, clean: np.ndarray) -> None:
    """The drawn parameters of ``effect`` lie in the configured range."""
    c = getattr(config, effect)
    if effect in ("speed", "tempo"):
        assert within(record["rate"], c.min_rate, c.max_rate)
    elif effect == "trim_edges":
        assert within(record["start_ms"], 0, c.max_ms) and within(record["end_ms"], 0, c.max_ms)
    elif effect == "time_shift":
        assert abs(record["shift_amount"]) <= c.max_ms / 1000 + 1e-4
    elif effect == "pitch_shift":
        assert within(record["num_semitones"], c.min_semitones, c.max_semitones)
    elif effect == "high_shelf":
        assert within(record["center_hz"], c.min_center_hz, c.max_center_hz)
        assert within(record["gain_db"], c.min_gain_db, c.max_gain_db)
    elif effect == "band_pass":
        assert within(record["low_hz"], c.min_low_hz, c.max_low_hz)
        assert within(record["high_hz"], c.min_high_hz, c.max_high_hz)
    elif effect == "eq":
        assert len(record["gain_db"]) == len(record["center_hz"]) == 7
        assert all(within(g, c.min_gain_db, c.max_gain_db) for g in record["gain_db"])
        assert record["center_hz"] == sorted(record["center_hz"])  # low shelf, five peaks, high shelf
    elif effect == "echo":
        assert within(record["delay_ms"], c.min_delay_ms, c.max_delay_ms)
        assert within(record["feedback"], c.min_feedback, c.max_feedback)
    elif effect == "reverb":
        assert within(record["room_size"], c.min_room_size, c.max_room_size)
        assert within(record["wet_level"], c.min_wet_level, c.max_wet_level)
    elif effect == "gain":
        assert within(record["amplitude_ratio"], 10 ** (c.min_db / 20), 10 ** (c.max_db / 20))
        assert within(record["gain_db"], c.min_db, c.max_db, tol=1e-3)
    elif effect == "loudness":
        assert within(record["lufs"], c.min_lufs, c.max_lufs)
    elif effect == "background_noise":
        assert within(record["snr_db"], c.min_snr_db, c.max_snr_db)
        assert record["offset"] >= 0 and isinstance(record["noise"], str)
    elif effect == "babble":
        assert within(record["snr_db"], c.min_snr_db, c.max_snr_db)
        assert c.min_talkers <= record["talkers"] <= c.max_talkers
    elif effect == "color_noise":
        snr = 20 * np.log10(rms(clean) / record["desired_noise_rms"])
        assert within(snr, c.min_snr_db, c.max_snr_db, tol=0.05)
        assert record["snr_db"] == pytest.approx(snr, abs=1e-3)
        assert within(record["f_decay"], c.min_f_decay, c.max_f_decay)
    else:  # pragma: no cover - a new effect needs its range check here
        raise AssertionError(f"no range check for {effect}")


@pytest.mark.parametrize("effect", EFFECTS)
def test_each_effect_alone_keeps_the_contract_and_its_range(effect, tmp_path):
    config = only(effect)
    if effect == "background_noise":
        config.background_noise.paths = [str(write_sine(tmp_path / "hum.wav", 60.0, duration_s=3.0))]
    aug = WaveformAugment(config, SR, clip_samples=SR, babble=talkers())
    clean = speech_like()
    outputs = []
    for seed in SEEDS:
        out, applied = aug(clean, seed)
        assert out.shape == (SR,) and out.dtype == np.float32 and out.flags.c_contiguous
        assert np.all(np.isfinite(out))
        assert [r["effect"] for r in applied] == [effect], applied
        _check_ranges(effect, applied[0], config, clean)
        assert not np.array_equal(out, clean), f"{effect} left the clip unchanged"
        outputs.append(out)
    assert not all(np.array_equal(outputs[0], o) for o in outputs[1:]), "different seeds, same draw"


def test_every_effect_is_recorded_in_chain_order(tmp_path):
    config = AugmentConfig()
    for name in EFFECTS:
        getattr(config, name).p = 1.0
    config.background_noise.paths = [str(write_sine(tmp_path / "hum.wav", 60.0))]
    out, applied = WaveformAugment(config, SR, clip_samples=SR, babble=talkers())(speech_like(), 7)
    assert [r["effect"] for r in applied] == list(EFFECTS)
    assert out.shape == (SR,) and out.dtype == np.float32


def test_no_effect_applies_with_all_probabilities_zero_or_when_disabled():
    config = only("gain")
    config.gain.p = 0.0
    clean = speech_like(0.8)
    out, applied = WaveformAugment(config, SR, clip_samples=SR)(clean, 0)
    assert applied == [] and np.array_equal(out, fit_to_length(clean, SR))
    disabled = AugmentConfig(enabled=False)
    out, applied = WaveformAugment(disabled, SR, clip_samples=SR)(clean, 0)
    assert applied == [] and np.array_equal(out, fit_to_length(clean, SR))
    out, applied = WaveformAugment(disabled, SR)(clean, 0)
    assert applied == [] and np.array_equal(out, clean)


def test_digital_silence_gets_no_effect_after_speed():
    config = AugmentConfig()
    for name in EFFECTS:
        getattr(config, name).p = 1.0
    out, applied = WaveformAugment(config, SR, clip_samples=SR)(np.zeros(SR, np.float32), 0)
    assert [r["effect"] for r in applied] == ["speed"]
    assert out.shape == (SR,) and not out.any()


@pytest.mark.parametrize("seed", SEEDS)
def test_speed_scales_frequency_and_length_by_the_rate(seed):
    x = tone(440.0)
    out, applied = WaveformAugment(only("speed"), SR, clip_samples=None)(x, seed)
    rate = applied[0]["rate"]
    assert abs(rate - 1) > 1e-3
    assert abs(len(out) - len(x) / rate) <= 1.5
    assert dominant_frequency(out, SR) == pytest.approx(440.0 * rate, abs=1.5)
    fixed, _ = WaveformAugment(only("speed"), SR, clip_samples=SR)(x, seed)
    assert fixed.shape == (SR,)


@pytest.mark.parametrize("semitones", [-3.0, 3.0, None])
def test_pitch_shift_moves_the_frequency_by_the_semitones(semitones):
    config = only("pitch_shift") if semitones is None else only("pitch_shift", min_semitones=semitones, max_semitones=semitones)
    for seed in SEEDS:
        out, applied = WaveformAugment(config, SR, clip_samples=SR)(tone(440.0), seed)
        k = applied[0]["num_semitones"]
        if semitones is not None:
            assert k == pytest.approx(semitones)
        assert len(out) == SR
        assert dominant_frequency(out, SR) == pytest.approx(440.0 * 2 ** (k / 12), rel=0.01)


def _active_samples(y: np.ndarray) -> int:
    """Samples between the first and last point where the 10 ms envelope exceeds half its peak."""
    envelope = np.convolve(np.abs(y), np.ones(160) / 160, mode="same")
    loud = np.flatnonzero(envelope > 0.5 * envelope.max())
    return int(loud[-1] - loud[0])


@pytest.mark.parametrize("seed", SEEDS)
def test_tempo_changes_duration_but_not_pitch_or_length(seed):
    x = np.zeros(SR, np.float32)
    x[SR // 4 : 3 * SR // 4] = tone(440.0, 0.5)
    config = only("tempo", min_rate=0.8, max_rate=1.25)
    out, applied = WaveformAugment(config, SR, clip_samples=SR)(x, seed)
    rate = applied[0]["rate"]
    assert len(out) == SR
    assert dominant_frequency(out, SR) == pytest.approx(440.0, abs=2.0)
    assert _active_samples(out) == pytest.approx(_active_samples(x) / rate, rel=0.02)


def word_in_silence(start_s: float = 0.2, end_s: float = 0.5, total_s: float = 1.0) -> np.ndarray:
    """A 440 Hz tone from ``start_s`` to ``end_s`` with digital silence around it."""
    y = np.zeros(round(SR * total_s), np.float32)
    y[round(SR * start_s) : round(SR * end_s)] = tone(440.0, end_s - start_s)
    return y


def test_word_bounds_find_the_loud_part_to_the_frame():
    assert word_bounds(word_in_silence(0.2, 0.5), SR, 30.0) == (3200, 8000)
    quiet_tail = word_in_silence(0.2, 0.5)
    quiet_tail[8000:9600] = 0.5 * 10 ** (-20 / 20) * tone(440.0, 0.1)  # 20 dB down: still the word at 30 dB
    assert word_bounds(quiet_tail, SR, 30.0) == (3200, 9600)
    assert word_bounds(quiet_tail, SR, 10.0) == (3200, 8000)
    assert word_bounds(np.zeros(SR, np.float32), SR, 30.0) == (0, SR)


@pytest.mark.parametrize("seed", SEEDS)
def test_trim_edges_cuts_the_drawn_milliseconds_off_the_word_and_drops_the_silence(seed):
    config = only("trim_edges", max_ms=40.0)
    out, applied = WaveformAugment(config, SR)(word_in_silence(0.2, 0.5), seed)
    (record,) = applied
    cut = round(record["start_ms"] * SR / 1000) + round(record["end_ms"] * SR / 1000)
    assert abs(len(out) - (4800 - cut)) <= 2  # the record is rounded to 6 digits
    assert out[0] == 0 and out[-1] == 0  # faded in and out, no click
    assert word_bounds(out, SR, 30.0)[0] <= SR // 100  # the silence before the word is gone
    padded, _ = WaveformAugment(config, SR, clip_samples=SR)(word_in_silence(0.2, 0.5), seed)
    assert padded.shape == (SR,)


def test_trim_edges_cuts_at_most_half_of_a_short_word():
    config = only("trim_edges", max_ms=500.0)
    for seed in SEEDS:
        out, applied = WaveformAugment(config, SR)(word_in_silence(0.2, 0.3), seed)
        assert applied[0]["start_ms"] + applied[0]["end_ms"] > 100  # asked for more than the word
        assert len(out) >= 800  # 50 of its 100 ms kept


def test_time_shift_moves_a_click_by_the_drawn_shift():
    directions = set()
    for seed in range(12):
        x = np.zeros(SR, np.float32)
        x[8000] = 1.0
        out, applied = WaveformAugment(only("time_shift"), SR, clip_samples=SR)(x, seed)
        shift = applied[0]["shift_amount"] * SR
        assert abs(shift) <= 0.1 * SR + 2
        (where,) = np.flatnonzero(out)
        assert abs(where - (8000 + shift)) <= 1.5
        assert out[where] == pytest.approx(1.0)
        directions.add(int(np.sign(where - 8000)))
    assert directions >= {-1, 1}, "both directions must occur"


def test_time_shift_fills_with_silence_not_rollover():
    x = np.ones(SR, np.float32)
    for seed in SEEDS:
        out, applied = WaveformAugment(only("time_shift"), SR, clip_samples=SR)(x, seed)
        shift = round(applied[0]["shift_amount"] * SR)
        assert abs(int((out == 0).sum()) - abs(shift)) <= 1
        assert (out[:SR // 2] == 0).any() == (shift > 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_band_pass_attenuates_outside_and_passes_inside(seed):
    config = only("band_pass", min_low_hz=300.0, max_low_hz=500.0, min_high_hz=3000.0, max_high_hz=3400.0)
    aug = WaveformAugment(config, SR, clip_samples=SR)
    ratios = {}
    for freq in (50.0, 1000.0, 7500.0):
        x = tone(freq)
        out, applied = aug(x, seed)
        ratios[freq] = rms(out[2000:]) / rms(x[2000:])  # skip the filter's start-up transient
    assert ratios[1000.0] > 0.9
    assert ratios[50.0] < 0.1 and ratios[7500.0] < 0.1, ratios


@pytest.mark.parametrize("seed", SEEDS)
def test_band_pass_cutoffs_are_the_drawn_ones(seed):
    # With the other edge far away, a tone at a Butterworth cut-off comes out 3 dB down.
    high_only = only("band_pass", min_low_hz=20.0, max_low_hz=20.0)
    _, applied = WaveformAugment(high_only, SR, clip_samples=SR)(tone(1000.0), seed)
    x = tone(applied[0]["high_hz"])
    out, _ = WaveformAugment(high_only, SR, clip_samples=SR)(x, seed)
    assert rms(out[4000:]) / rms(x[4000:]) == pytest.approx(2 ** -0.5, abs=0.02)

    low_only = only("band_pass", min_high_hz=7000.0, max_high_hz=7000.0)
    _, applied = WaveformAugment(low_only, SR, clip_samples=SR)(tone(1000.0), seed)
    x = tone(applied[0]["low_hz"])
    out, _ = WaveformAugment(low_only, SR, clip_samples=SR)(x, seed)
    assert rms(out[4000:]) / rms(x[4000:]) == pytest.approx(2 ** -0.5, abs=0.02)


@pytest.mark.parametrize("seed", SEEDS)
def test_eq_changes_each_band_by_its_drawn_gain(seed):
    """White noise through the equaliser: the level change around each peak's centre follows its gain."""
    config = only("eq", min_gain_db=-12.0, max_gain_db=12.0)
    x = np.random.default_rng(seed).standard_normal(4 * SR).astype(np.float32) * 0.05
    aug = WaveformAugment(config, SR)
    out, applied = aug(x, seed)
    record = applied[0]
    bins = np.fft.rfftfreq(len(x), 1 / SR)
    ratio_db = 10 * np.log10(np.abs(np.fft.rfft(out)) ** 2 / np.abs(np.fft.rfft(x)) ** 2)
    measured = [np.median(ratio_db[np.abs(bins - f) < f * 0.05]) for f in record["center_hz"][1:-1]]
    # Neighbouring bands overlap, so only the strongest peak is checked by itself.
    gains = record["gain_db"][1:-1]
    strongest = int(np.argmax(np.abs(gains)))
    assert np.sign(measured[strongest]) == np.sign(gains[strongest]) and abs(measured[strongest]) > 3
    assert np.corrcoef(measured, record["gain_db"][1:-1])[0, 1] > 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_echo_repeats_a_click_after_the_drawn_delay(seed):
    config = only("echo")
    x = np.zeros(SR, np.float32)
    x[100] = 1.0
    out, applied = WaveformAugment(config, SR, clip_samples=SR)(x, seed)
    delay = applied[0]["delay_ms"] * SR / 1000
    feedback, mix = applied[0]["feedback"], config.echo.mix
    assert out[100] == pytest.approx(1 - mix, abs=1e-3)  # dry part
    first = 100 + delay
    window = np.abs(out[101 : round(first) + 50])
    assert np.argmax(window) + 101 == pytest.approx(first, abs=1.5)  # the echo lands at the delay
    assert window.max() == pytest.approx(mix, abs=0.02)
    assert np.abs(out[101 : int(first) - 2]).max() < 1e-3  # nothing between the click and its echo
    second = np.abs(out[round(first) + 50 : round(first + delay) + 50])
    assert second.max() == pytest.approx(mix * feedback, abs=0.02)


def test_echo_and_reverb_add_energy_after_the_signal_ends():
    x = burst(0.1)
    assert not x[1600:].any()
    for effect in ("echo", "reverb"):
        for seed in SEEDS:
            out, _ = WaveformAugment(only(effect), SR, clip_samples=SR)(x, seed)
            assert len(out) == SR
            assert rms(out[1600:]) > 0.01 * rms(x[:1600]), effect


def test_reverb_tail_scales_with_wet_level_and_lengthens_with_room_size():
    x = burst(0.1)

    def tail(room, wet):
        config = only("reverb", min_room_size=room, max_room_size=room, min_wet_level=wet, max_wet_level=wet)
        out, applied = WaveformAugment(config, SR, clip_samples=SR)(x, 0)
        assert applied[0]["room_size"] == pytest.approx(room) and applied[0]["wet_level"] == pytest.approx(wet)
        return rms(out[1600:4800]), rms(out[8000:])

    early_1, _ = tail(0.5, 0.1)
    early_4, _ = tail(0.5, 0.4)
    assert early_4 / early_1 == pytest.approx(4.0, rel=0.05)
    _, late_small = tail(0.1, 0.3)
    _, late_large = tail(0.9, 0.3)
    assert late_large > 10 * late_small


@pytest.mark.parametrize("seed", SEEDS)
def test_gain_scales_rms_by_the_drawn_decibels(seed):
    x = speech_like()
    out, applied = WaveformAugment(only("gain"), SR, clip_samples=SR)(x, seed)
    ratio = applied[0]["amplitude_ratio"]
    gain_db = 20 * np.log10(ratio)
    assert -12.0 - 1e-3 <= gain_db <= 12.0 + 1e-3
    assert rms(out) / rms(x) == pytest.approx(10 ** (gain_db / 20), rel=1e-3)
    np.testing.assert_allclose(out, x * ratio, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_loudness_normalisation_hits_the_target(seed):
    pyloudnorm = pytest.importorskip("pyloudnorm")
    x = speech_like()
    out, applied = WaveformAugment(only("loudness"), SR, clip_samples=SR)(x, seed)
    target = applied[0]["lufs"]
    meter = pyloudnorm.Meter(SR)
    assert meter.integrated_loudness(out.astype(np.float64)) == pytest.approx(target, abs=0.5)
    assert meter.integrated_loudness(x.astype(np.float64)) != pytest.approx(target, abs=0.5)


@pytest.mark.parametrize("seed", SEEDS)
def test_color_noise_hits_its_drawn_snr(seed):
    x = speech_like()
    out, applied = WaveformAugment(only("color_noise"), SR, clip_samples=SR)(x, seed)
    noise_rms = applied[0]["desired_noise_rms"]
    added = out.astype(np.float64) - x
    assert rms(added) == pytest.approx(noise_rms, rel=0.01)
    snr = 20 * np.log10(rms(x) / noise_rms)
    assert 5.0 - 0.05 <= snr <= 30.0 + 0.05
    assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(added**2)) == pytest.approx(snr, abs=0.1)


def _band_tilt_db(noise: np.ndarray) -> float:
    """Mean power density in 1-2 kHz over that in 4-8 kHz, in dB (two octaves apart)."""
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise), 1 / SR)
    low = power[(freqs >= 1000) & (freqs < 2000)].mean()
    high = power[(freqs >= 4000) & (freqs < 8000)].mean()
    return float(10 * np.log10(low / high))


def test_color_noise_decay_sets_the_spectral_tilt():
    x = tone(440.0)
    tilts = {}
    for decay in (0.0, -3.01, -6.02):
        config = only("color_noise", min_f_decay=decay, max_f_decay=decay, min_snr_db=0.0, max_snr_db=0.0)
        tilts[decay] = np.mean([
            _band_tilt_db(out.astype(np.float64) - x)
            for out, _ in (WaveformAugment(config, SR, clip_samples=SR)(x, seed) for seed in SEEDS)
        ])
    assert abs(tilts[0.0]) < 1.0  # white: flat
    assert 3.0 < tilts[-3.01] < 9.0  # pink: about 6 dB over two octaves
    assert tilts[-6.02] > tilts[-3.01] + 3.0


@pytest.mark.parametrize("seed", SEEDS)
def test_background_noise_reaches_the_drawn_snr(noises, seed):
    folder = shared_dataset("noise")
    config = only("background_noise", paths=[str(folder)])
    aug = WaveformAugment(config, SR, clip_samples=SR, noises=noises)
    x = speech_like()
    out, applied = aug(x, seed)
    record = applied[0]
    assert record["noise"] in {name for name, _ in noises}
    added = out.astype(np.float64) - x
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(added**2))
    assert measured == pytest.approx(record["snr_db"], abs=0.5)
    assert 0.0 <= record["snr_db"] <= 20.0
    # The added noise is the named recording from the recorded offset (in samples).
    recording = dict(noises)[record["noise"]].astype(np.float64)
    start = record["offset"]
    assert np.corrcoef(added, recording[start : start + SR])[0, 1] > 0.999


def test_background_noise_loads_its_paths_itself():
    folder = shared_dataset("noise")
    config = only("background_noise", paths=[str(folder / "white_noise.wav")], min_snr_db=10.0, max_snr_db=10.0)
    x = speech_like()
    out, applied = WaveformAugment(config, SR, clip_samples=SR)(x, 0)
    assert applied[0]["noise"] == "white_noise" and applied[0]["snr_db"] == pytest.approx(10.0)
    added = out.astype(np.float64) - x
    assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(added**2)) == pytest.approx(10.0, abs=0.5)


def test_background_noise_without_paths_is_off():
    config = only("background_noise")
    assert config.background_noise.paths == []
    out, applied = WaveformAugment(config, SR, clip_samples=SR)(speech_like(), 0)
    assert applied == []
    with pytest.raises(NoiseError):
        BackgroundNoise([], 0.0, 10.0, p=1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_babble_mixes_pool_clips_at_the_drawn_snr(seed):
    config = only("babble", min_talkers=1, max_talkers=1)
    x = speech_like()
    out, applied = WaveformAugment(config, SR, clip_samples=SR, babble=talkers())(x, seed)
    record = applied[0]
    assert record["talkers"] == 1 and 5.0 <= record["snr_db"] <= 25.0
    added = out.astype(np.float64) - x
    assert _snr_db(x, out) == pytest.approx(record["snr_db"], abs=0.1)
    # The added sound is one of the talkers, whatever its length relative to the clip.
    assert round(dominant_frequency(added, SR)) in (300, 700, 1100)


def test_babble_cuts_a_talker_longer_than_the_clip_from_any_offset():
    """A talker one sample longer than the clip has two excerpts, from offset 0 and 1: both fit."""
    config = only("babble", min_talkers=1, max_talkers=1, min_snr_db=10.0, max_snr_db=10.0)
    aug = WaveformAugment(config, SR, clip_samples=SR, babble=[tone(700.0, (SR + 1) / SR)])
    x = speech_like()
    for seed in range(8):
        out, applied = aug(x, seed)
        assert out.shape == (SR,) and _snr_db(x, out) == pytest.approx(10.0, abs=0.1)


def test_babble_talkers_speak_at_equal_level_without_pause():
    """Short clips of very different levels are laid end to end: with no pauses, one talker fills
    the whole clip at a steady level, with no jump from 0.01 to 0.9 in amplitude."""
    config = only("babble", min_talkers=1, max_talkers=1, min_snr_db=10.0, max_snr_db=10.0, max_pause_ms=0.0)
    pool = [tone(300.0, 0.2, amplitude=0.01), tone(700.0, 0.15, amplitude=0.9)]
    x = speech_like()
    for seed in range(6):
        out, applied = WaveformAugment(config, SR, clip_samples=SR, babble=pool)(x, seed)
        added = (out.astype(np.float64) - x).reshape(-1, SR // 50)  # 20 ms frames
        frame_rms = np.sqrt((added**2).mean(axis=1))
        assert frame_rms.min() > 0.8 * frame_rms.max()
        assert _snr_db(x, out) == pytest.approx(10.0, abs=0.1)


def test_babble_pauses_between_a_talkers_clips_last_up_to_max_pause_ms():
    """Pauses of silence are drawn before each clip of a stream, up to max_pause_ms and no longer."""
    config = only("babble", min_talkers=1, max_talkers=1, max_pause_ms=100.0)
    pool = [tone(700.0, 0.1)]
    longest_gaps = []
    for seed in range(10):
        out, applied = WaveformAugment(config, SR, clip_samples=SR, babble=pool)(speech_like(), seed)
        quiet = np.abs(out.astype(np.float64) - speech_like()) < 1e-6
        edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(int), [0]])))
        runs = (edges[1::2] - edges[::2]) / SR
        longest_gaps.append(runs.max(initial=0.0))
    assert 0.03 < max(longest_gaps) <= 0.1 + 2 / 700  # a zero crossing either side of a pause


def test_babble_mixes_several_talkers_at_the_drawn_snr():
    config = only("babble", min_talkers=3, max_talkers=3, min_snr_db=10.0, max_snr_db=10.0)
    x = speech_like()
    for seed in range(4):
        out, applied = WaveformAugment(config, SR, clip_samples=SR, babble=talkers())(x, seed)
        assert applied[0]["talkers"] == 3 and _snr_db(x, out) == pytest.approx(10.0, abs=0.1)


def test_babble_without_talkers_is_off_and_a_silent_pool_is_refused():
    config = only("babble")
    out, applied = WaveformAugment(config, SR, clip_samples=SR)(speech_like(), 0)
    assert applied == []
    with pytest.raises(ValueError, match="not silent"):
        Babble([np.zeros(SR, np.float32), np.zeros(0, np.float32)], 5.0, 25.0, 1, 3, p=1.0)


@pytest.mark.parametrize("gain_db", [-10.0, 10.0])
def test_high_shelf_tilts_highs_against_lows_by_the_drawn_gain(gain_db):
    """A 6 kHz tone moves by the drawn gain relative to a 100 Hz one, in its direction; the
    slope's steepness (q) is drawn too, so the gentlest shelf reaches a bit over half of it."""
    config = only("high_shelf", min_gain_db=gain_db, max_gain_db=gain_db)
    x = tone(100.0) + tone(6000.0)
    for seed in SEEDS:
        out, applied = WaveformAugment(config, SR, clip_samples=SR)(x, seed)
        assert applied[0]["gain_db"] == pytest.approx(gain_db)
        spectrum_in, spectrum_out = (np.abs(np.fft.rfft(y[SR // 8:])) for y in (x, out))
        bins = np.fft.rfftfreq(SR - SR // 8, 1 / SR)
        change = [20 * np.log10(spectrum_out[np.argmin(np.abs(bins - f))] / spectrum_in[np.argmin(np.abs(bins - f))])
                  for f in (100.0, 6000.0)]
        tilt = change[1] - change[0]
        assert np.sign(tilt) == np.sign(gain_db) and 0.5 * abs(gain_db) < abs(tilt) < 1.1 * abs(gain_db)


def test_babble_config_needs_at_least_one_talker():
    config = AugmentConfig()
    config.babble.min_talkers = 0
    assert ("babble.min_talkers", 0) in check_augment_config(config)
    config.babble.min_talkers, config.babble.max_talkers = 3, 2
    assert ("babble.min_talkers", 3) in check_augment_config(config)
    config.babble.max_pause_ms = -1.0
    assert ("babble.max_pause_ms", -1.0) in check_augment_config(config)


# --- mixing at an SNR ------------------------------------------------------------------------------


def _snr_db(clean: np.ndarray, mixed: np.ndarray) -> float:
    clean = clean.astype(np.float64)
    return float(10 * np.log10(np.mean(clean**2) / np.mean((mixed.astype(np.float64) - clean) ** 2)))


@pytest.mark.parametrize("snr_db", [20.0, 10.0, 5.0, 0.0, -5.0])
def test_mix_at_snr_hits_the_requested_snr(snr_db):
    clean = speech_like()
    noise = np.random.default_rng(0).normal(0, 0.3, 3 * SR).astype(np.float32)
    mixed = mix_at_snr(clean, noise, snr_db)
    assert mixed.shape == clean.shape and mixed.dtype == np.float32
    assert _snr_db(clean, mixed) == pytest.approx(snr_db, abs=0.5)
    # The added part is the first len(clean) samples of the noise, scaled.
    added = mixed.astype(np.float64) - clean
    assert np.corrcoef(added, noise[: len(clean)])[0, 1] > 0.9999


def test_mix_at_snr_tiles_short_noise():
    clean = speech_like()
    noise = np.random.default_rng(1).normal(0, 1.0, 1000).astype(np.float32)
    mixed = mix_at_snr(clean, noise, 5.0)
    assert mixed.shape == clean.shape
    assert _snr_db(clean, mixed) == pytest.approx(5.0, abs=0.5)
    added = mixed.astype(np.float64) - clean
    np.testing.assert_allclose(added[1000:2000], added[:1000], atol=1e-5)  # the noise repeats
    gain = added[:1000] / noise
    assert np.allclose(gain, gain[0], rtol=1e-3)


def test_mix_at_snr_leaves_silent_clean_alone_and_rejects_silent_noise():
    silent = np.zeros(SR, np.float32)
    out = mix_at_snr(silent, np.ones(100, np.float32), 10.0)
    np.testing.assert_array_equal(out, silent)
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="silent"):
        mix_at_snr(speech_like(), np.zeros(SR, np.float32), 10.0)
    with pytest.raises(ValueError):
        mix_at_snr(speech_like(), np.zeros(0, np.float32), 10.0)
    # Noise that is only silent where it is cut for this clip cannot set an SNR either.
    quiet_start = np.concatenate([np.zeros(SR, np.float32), np.ones(SR, np.float32)])
    with pytest.raises(ValueError, match="excerpt is silent"):
        mix_at_snr(speech_like(), quiet_start, 10.0)


# --- seeding ---------------------------------------------------------------------------------------


def test_seeded_restores_the_global_generators():
    random.seed(123)
    np.random.seed(123)
    expected = [(random.random(), np.random.random()) for _ in range(2)]
    random.seed(123)
    np.random.seed(123)
    with seeded((4, 5, 6)):
        inside = (random.random(), np.random.random())
    assert inside not in expected
    assert (random.random(), np.random.random()) == expected[0]  # as if the block had not run
    with seeded((4, 5, 6)):
        assert (random.random(), np.random.random()) == inside  # same seed, same draws
    with seeded((4, 5, 7)):
        assert (random.random(), np.random.random()) != inside
    with pytest.raises(RuntimeError), seeded(1):
        random.random()
        raise RuntimeError("boom")
    assert (random.random(), np.random.random()) == expected[1]  # restored after an exception too


def test_waveform_augment_is_deterministic_per_seed():
    config = AugmentConfig()
    for name in EFFECTS:
        getattr(config, name).p = 0.7
    x = speech_like()
    a = WaveformAugment(config, SR, clip_samples=SR)
    b = WaveformAugment(config, SR, clip_samples=SR)
    for seed in [(0, 0, 0), (0, 1, 0), (3, 2, 1)]:
        out_a, applied_a = a(x, seed)
        out_b, applied_b = b(x, seed)
        assert np.array_equal(out_a, out_b) and applied_a == applied_b
    assert not np.array_equal(a(x, (0, 0, 0))[0], a(x, (0, 0, 1))[0])


def _waves():
    rng = np.random.default_rng(0)
    return [(speech_like(n / SR) + rng.normal(0, 0.01, n)).astype(np.float32) for n in (8_000, 12_000, 16_000, 20_000, 14_000, 16_000)]


def test_clip_dataset_same_seed_and_epoch_gives_the_same_items():
    waves = _waves()
    targets = list(range(len(waves)))

    def dataset(seed):
        return ClipDataset(waves, targets, SR, WaveformAugment(AugmentConfig(), SR, clip_samples=SR), seed=seed)

    ds = dataset(3)
    ds.set_epoch(2)
    first = [ds[i][0].clone() for i in range(len(ds))]
    assert all(c.shape == (SR,) and c.dtype == torch.float32 for c in first)
    again = dataset(3)
    again.set_epoch(2)
    assert all(torch.equal(again[i][0], first[i]) for i in range(len(ds)))  # same seed and epoch
    assert all(torch.equal(ds[i][0], first[i]) for i in range(len(ds)))  # repeatable within the epoch
    assert [ds[i][1] for i in range(len(ds))] == targets
    ds.set_epoch(3)
    assert not any(torch.equal(ds[i][0], first[i]) for i in range(len(ds)))  # another epoch: another draw
    other = dataset(4)
    other.set_epoch(2)
    assert not any(torch.equal(other[i][0], first[i]) for i in range(len(ds)))  # another seed


def test_clip_dataset_batches_do_not_depend_on_the_worker_count():
    waves = _waves()
    ds = ClipDataset(waves, list(range(len(waves))), SR, WaveformAugment(AugmentConfig(), SR, clip_samples=SR), seed=5)
    ds.set_epoch(1)
    serial = list(torch.utils.data.DataLoader(ds, batch_size=3, shuffle=False, num_workers=0))
    parallel = list(torch.utils.data.DataLoader(ds, batch_size=3, shuffle=False, num_workers=2))
    assert len(serial) == len(parallel) == 2
    for (wave_s, target_s), (wave_p, target_p) in zip(serial, parallel):
        assert torch.equal(wave_s, wave_p) and torch.equal(target_s, target_p)


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


def test_clip_dataset_rejects_an_augment_of_another_length():
    with pytest.raises(ValueError, match="8000"):
        ClipDataset(_waves(), list(range(6)), SR, WaveformAugment(AugmentConfig(), SR, clip_samples=8000))


# --- noise loading errors ---------------------------------------------------------------------------


def test_load_noise_reads_files_and_folders(tmp_path):
    write_sine(tmp_path / "noise" / "hum.wav", 60.0, sample_rate=8000, duration_s=0.5)
    write_sine(tmp_path / "noise" / "sub" / "whine.flac", 3000.0, duration_s=0.25)
    (tmp_path / "noise" / "readme.txt").write_text("not audio")
    loaded = load_noise([tmp_path / "noise"], SR)
    assert [name for name, _ in loaded] == ["hum", "whine"]
    assert [len(s) for _, s in loaded] == [8000, 4000]  # resampled to 16 kHz
    assert all(s.dtype == np.float32 for _, s in loaded)
    single = load_noise([str(tmp_path / "noise" / "hum.wav")], SR)
    assert [name for name, _ in single] == ["hum"]


def _bad_noise_paths(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "broken.wav").write_bytes(b"RIFF\x00\x00garbage, not a wave file" * 20)
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(SR), SR)
    return {
        "empty folder": (empty, empty),
        "undecodable file": (garbage, garbage / "broken.wav"),
        "missing path": (tmp_path / "nowhere", tmp_path / "nowhere"),
        "silent file": (silent, silent),
    }


@pytest.mark.parametrize("case", ["empty folder", "undecodable file", "missing path", "silent file"])
def test_load_noise_errors_name_the_path(tmp_path, case):
    given, named = _bad_noise_paths(tmp_path)[case]
    with pytest.raises(NoiseError) as info:
        load_noise([given], SR)
    assert str(named) in str(info.value)
    assert isinstance(info.value, ValueError)
    config = only("background_noise", paths=[str(given)])
    with pytest.raises(NoiseError) as info:
        WaveformAugment(config, SR, clip_samples=SR)
    assert str(named) in str(info.value)


def test_bad_noise_path_is_ignored_when_background_noise_is_off(tmp_path):
    config = only("gain")
    config.background_noise.paths = [str(tmp_path / "nowhere")]
    WaveformAugment(config, SR, clip_samples=SR)  # p=0: the noise is never loaded


# --- configuration of the augmentation ------------------------------------------------------------


@pytest.mark.parametrize(
    "override, key",
    [
        ("augment.pitch_shift.p=1.5", "augment.pitch_shift.p"),
        ("augment.reverb.p=-0.1", "augment.reverb.p"),
        ("augment.gain.min_db=13", "augment.gain.min_db"),
        ("augment.gain.min_db=10 augment.gain.max_db=5", "augment.gain.min_db"),
        ("augment.background_noise.min_snr_db=25", "augment.background_noise.min_snr_db"),
        ("augment.band_pass.min_low_hz=600", "augment.band_pass.min_low_hz"),
        ("augment.speed.min_rate=0", "augment.speed.min_rate"),
        ("augment.tempo.min_rate=-1", "augment.tempo.min_rate"),
        ("augment.time_shift.max_ms=-5", "augment.time_shift.max_ms"),
        ("augment.trim_edges.max_ms=-5", "augment.trim_edges.max_ms"),
        ("augment.trim_edges.top_db=0", "augment.trim_edges.top_db"),
        ("augment.mixup.alpha=0", "augment.mixup.alpha"),
        ("augment.mixup.p=2", "augment.mixup.p"),
    ],
)
def test_out_of_range_augment_value_is_named(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, override.split())


def test_in_range_augment_values_load():
    config = load_config(None, ["augment.gain.min_db=10", "augment.gain.max_db=10", "augment.pitch_shift.p=1",
                                "augment.spec_augment.freq_masks=0", "augment.background_noise.paths=[a,b]"])
    assert config.augment.gain.min_db == 10 and config.augment.pitch_shift.p == 1
    assert config.augment.spec_augment.freq_masks == 0
    assert config.augment.background_noise.paths == ["a", "b"]
    assert check_augment_config(config.augment) == []
    assert check_augment_config(AugmentConfig()) == []


# --- mixup ---------------------------------------------------------------------------------------


def test_mixup_mixes_each_clip_with_a_permuted_partner():
    torch.manual_seed(0)
    waveform = torch.randn(8, 100)
    target = torch.arange(8)
    lams = set()
    for _ in range(5):
        mixed, target_a, target_b, lam = mixup(waveform, target, alpha=0.4)
        assert mixed.shape == waveform.shape and mixed.dtype == waveform.dtype
        assert 0.0 <= lam <= 1.0
        assert torch.equal(target_a, target)
        assert sorted(target_b.tolist()) == list(range(8))  # target_b is target[perm]
        perm = target_b  # target is arange, so target[perm] is perm itself
        torch.testing.assert_close(mixed, lam * waveform + (1 - lam) * waveform[perm])
        lams.add(round(lam, 6))
    assert len(lams) > 1, "lam must be drawn anew each call"
