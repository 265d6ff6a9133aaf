"""Audio loading: every supported format decodes to 16 kHz mono float32 with the right length
and pitch; bad inputs raise AudioError naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from audiorec.audio import SAMPLE_RATE, AudioError, decode_audio, load_audio, resample, to_mono
from conftest import dominant_frequency, sine, write_sine, write_with_pyav

# (file name, soundfile format, subtype, stored sample rate, tolerance in seconds on the duration)
SOUNDFILE_FORMATS = [
    ("pcm_u8.wav", "WAV", "PCM_U8", 8_000, 0.0),
    ("pcm_16.wav", "WAV", "PCM_16", 44_100, 0.0),
    ("pcm_24.wav", "WAV", "PCM_24", 48_000, 0.0),
    ("pcm_32.wav", "WAV", "PCM_32", 22_050, 0.0),
    ("float.wav", "WAV", "FLOAT", 16_000, 0.0),
    ("lossless.flac", "FLAC", "PCM_16", 44_100, 0.0),
    ("vorbis.ogg", "OGG", "VORBIS", 44_100, 0.01),
    ("opus.opus", "OGG", "OPUS", 48_000, 0.03),
    ("layer3.mp3", "MP3", "MPEG_LAYER_III", 44_100, 0.06),
    ("sphere.sph", "NIST", "PCM_16", 8_000, 0.0),
]


def check_loaded(y: np.ndarray, duration_s: float, tolerance_s: float, freq_hz: float) -> None:
    assert isinstance(y, np.ndarray)
    assert y.dtype == np.float32
    assert y.ndim == 1
    # A clean duration: exact for PCM (up to resampling rounding), within codec padding otherwise.
    assert abs(len(y) / SAMPLE_RATE - duration_s) <= tolerance_s + 1 / SAMPLE_RATE
    # The pitch survives decoding and resampling to 16 kHz (FFT bin width 1 Hz for 1 s).
    assert dominant_frequency(y, SAMPLE_RATE) == pytest.approx(freq_hz, abs=3.0)
    assert 0.3 < np.max(np.abs(y)) < 1.01


@pytest.mark.parametrize("name, fmt, subtype, rate, tolerance", SOUNDFILE_FORMATS, ids=[f[0] for f in SOUNDFILE_FORMATS])
def test_soundfile_formats_load_as_16k_mono_float32(tmp_path, name, fmt, subtype, rate, tolerance):
    freq = 1000.0 if rate > 8_000 else 700.0
    path = write_sine(tmp_path / name, freq, rate, 1.0, format=fmt, subtype=subtype)
    assert soundfile.info(str(path)).samplerate == rate  # the file really is at the source rate
    y = load_audio(path)
    check_loaded(y, 1.0, tolerance, freq)


@pytest.mark.parametrize(
    "name, container, codec, rate, tolerance",
    [("aac.m4a", "mp4", "aac", 44_100, 0.06), ("opus.webm", "webm", "libopus", 48_000, 0.03)],
    ids=["m4a-aac", "webm-opus"],
)
def test_ffmpeg_formats_load_as_16k_mono_float32(tmp_path, name, container, codec, rate, tolerance):
    path = write_with_pyav(tmp_path / name, container, codec, rate, (1000.0,))
    decoded = decode_audio(path)
    assert decoded.sample_rate == rate
    assert decoded.samples.shape[0] == 1
    check_loaded(load_audio(path), 1.0, tolerance, 1000.0)


def test_decode_keeps_native_rate_and_channels(tmp_path):
    stereo = np.stack([sine(440, 22_050, 0.5), sine(1000, 22_050, 0.5)], axis=1)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 22_050, subtype="PCM_16")
    decoded = decode_audio(path)
    assert decoded.sample_rate == 22_050
    assert decoded.samples.shape == (2, 11_025)
    assert decoded.duration == pytest.approx(0.5)
    assert dominant_frequency(decoded.samples[0], 22_050) == pytest.approx(440, abs=3)
    assert dominant_frequency(decoded.samples[1], 22_050) == pytest.approx(1000, abs=3)


def test_stereo_wav_is_downmixed_by_averaging(tmp_path):
    left, right = sine(440, 16_000, 1.0, 0.6), sine(440, 16_000, 1.0, 0.2)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 16_000, subtype="FLOAT")
    y = load_audio(path)
    assert y.shape == (16_000,)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-6)


def test_stereo_in_opposite_phase_cancels(tmp_path):
    tone = sine(1000, 48_000, 0.5, 0.5)
    path = tmp_path / "cancel.flac"
    soundfile.write(path, np.stack([tone, -tone], axis=1), 48_000, subtype="PCM_24")
    y = load_audio(path)
    assert len(y) == 8_000
    assert np.max(np.abs(y)) < 1e-4


def test_stereo_m4a_keeps_both_channels_in_the_mix(tmp_path):
    path = write_with_pyav(tmp_path / "stereo.m4a", "mp4", "aac", 44_100, (440.0, 1000.0))
    decoded = decode_audio(path)
    assert decoded.samples.shape[0] == 2
    assert dominant_frequency(decoded.samples[0], 44_100) == pytest.approx(440, abs=3)
    assert dominant_frequency(decoded.samples[1], 44_100) == pytest.approx(1000, abs=3)
    y = load_audio(path)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / SAMPLE_RATE)
    level = {f: spectrum[np.argmin(np.abs(freqs - f))] for f in (440, 1000, 3000)}
    # Both tones are in the mono mix at similar level; an unrelated frequency is not.
    assert level[440] > 0.5 * spectrum.max() and level[1000] > 0.5 * spectrum.max()
    assert level[3000] < 0.01 * spectrum.max()


@pytest.mark.parametrize("rate", [8_000, 11_025, 44_100, 48_000])
def test_resampling_preserves_duration_and_pitch(tmp_path, rate):
    path = write_sine(tmp_path / f"tone_{rate}.wav", 1500.0 if rate > 8_000 else 1200.0, rate, 2.0, subtype="PCM_16")
    y = load_audio(path)
    assert len(y) == 32_000
    assert dominant_frequency(y, SAMPLE_RATE) == pytest.approx(1500.0 if rate > 8_000 else 1200.0, abs=1.0)


def test_load_audio_to_another_rate(tmp_path):
    path = write_sine(tmp_path / "tone.wav", 1000.0, 16_000, 1.0, subtype="PCM_16")
    y = load_audio(path, sample_rate=8_000)
    assert y.dtype == np.float32 and len(y) == 8_000
    assert dominant_frequency(y, 8_000) == pytest.approx(1000.0, abs=2.0)


def test_8bit_amplitude_is_scaled_to_unit_range(tmp_path):
    # PCM_U8 is unsigned with an offset of 128: silence must decode to ~0, not to ~0.5.
    path = write_sine(tmp_path / "u8.wav", 500.0, 16_000, 0.5, amplitude=0.8, format="WAV", subtype="PCM_U8")
    y = load_audio(path)
    assert abs(float(np.mean(y))) < 0.02
    assert 0.75 < np.max(np.abs(y)) <= 1.0


def test_to_mono_and_resample_helpers():
    two = np.array([[1.0, 0.0, -1.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(to_mono(two), [0.5, 0.0, 0.0])
    assert to_mono(two[:1]).shape == (3,)
    y = sine(300, 8_000, 1.0).astype(np.float32)
    out = resample(y, 8_000, 16_000)
    assert out.dtype == np.float32 and len(out) == 16_000
    np.testing.assert_array_equal(resample(y, 8_000, 8_000), y)  # same rate: untouched


# ---------------------------------------------------------------------------------- errors


def assert_audio_error_names(path, match=None):
    with pytest.raises(AudioError) as info:
        load_audio(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    if match:
        assert match in info.value.reason
    return info.value


def test_missing_file_raises_naming_it(tmp_path):
    assert_audio_error_names(tmp_path / "nope.wav", "no such file")


def test_empty_file_raises_naming_it(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert_audio_error_names(path, "empty")


def test_garbage_bytes_with_wav_suffix_raise_naming_it(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    error = assert_audio_error_names(path)
    assert "decode" in error.reason
    assert error.__cause__ is not None  # the decoder's own error is chained


def test_text_file_renamed_to_mp3_raises(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("these are not the samples you are looking for\n" * 20)
    assert_audio_error_names(path)


def test_directory_raises_naming_it(tmp_path):
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    assert_audio_error_names(folder, "not a regular file")


def test_truncated_header_only_wav_has_no_samples(tmp_path):
    path = tmp_path / "header_only.wav"
    soundfile.write(path, np.zeros(0), 16_000, subtype="PCM_16")
    decoded = decode_audio(path)
    assert decoded.samples.shape[1] == 0
    assert load_audio(path).shape == (0,)


def test_write_wav_round_trips_clips_and_leaves_no_temporary_file(tmp_path):
    from audiorec.audio import write_wav

    samples = np.array([0.0, 0.5, -0.25, 1.7, -3.0], np.float32)
    path = write_wav(tmp_path / "sub" / "x.wav", samples, 8_000)
    back, rate = soundfile.read(path, dtype="float32")
    assert rate == 8_000 and soundfile.info(path).subtype == "PCM_16"
    np.testing.assert_allclose(back, np.clip(samples, -1, 1), atol=1 / 32767)
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]
