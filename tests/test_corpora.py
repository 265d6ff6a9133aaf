"""Corpus import: layouts, speaker parsing, validation with reasons, read-only originals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiorec.data.corpora import ValidationConfig, check_audio, detect_layout, import_corpus, scan_corpus
from conftest import hash_tree, write_sine


def tone(path: Path, duration_s: float = 0.5, sample_rate: int = 8_000, freq: float = 440.0, amplitude: float = 0.5) -> Path:
    return write_sine(path, freq, sample_rate, duration_s, amplitude, subtype="PCM_16")


def by_name(result) -> dict[str, object]:
    return {Path(u.path).name: u for u in result.utterances}


# ----------------------------------------------------------------------------------- layouts


def make_fsdd(root: Path) -> None:
    for digit in ("0", "7"):
        for speaker in ("george", "theo"):
            for index in (0, 1, 12):
                tone(root / f"{digit}_{speaker}_{index}.wav")
    (root / "README.md").write_text("# digits\n")
    (root / "LICENSE").write_text("CC BY-SA\n")


def test_fsdd_layout_parses_label_and_speaker(tmp_path):
    make_fsdd(tmp_path)
    result = import_corpus(tmp_path, progress=False)
    assert result.layout == "fsdd"
    assert result.rejected == []
    assert len(result.utterances) == 12
    utt = by_name(result)["7_theo_12.wav"]
    assert (utt.label, utt.speaker, utt.sample_rate) == ("7", "theo", 8_000)
    assert utt.duration == pytest.approx(0.5)
    assert Path(utt.path).is_absolute()
    assert {u.label for u in result.utterances} == {"0", "7"}
    assert {u.speaker for u in result.utterances} == {"george", "theo"}
    assert [u.path for u in result.utterances] == sorted(u.path for u in result.utterances)


def test_fsdd_layout_names_the_files_it_leaves_out(tmp_path):
    make_fsdd(tmp_path)
    tone(tmp_path / "3_en029_0.wav")  # a speaker with digits is not an FSDD name
    with pytest.warns(UserWarning, match=r"1 audio file\(s\) left out .* 3_en029_0\.wav"):
        result = import_corpus(tmp_path, layout="fsdd", progress=False)
    assert len(result.utterances) == 12 and "3_en029_0.wav" not in by_name(result)


def make_speech_commands(root: Path) -> None:
    for label in ("yes", "no"):
        for speaker in ("0a1b2c3d", "ffee0011"):
            for n in range(2):
                tone(root / label / f"{speaker}_nohash_{n}.wav", sample_rate=16_000)
    tone(root / "_unknown_" / "bed_0a1b2c3d_nohash_0.wav", sample_rate=16_000)
    tone(root / "_unknown_" / "sheila_12345678_nohash_3.wav", sample_rate=16_000)
    for i in range(3):
        tone(root / "_silence_" / f"{1000 + i}.wav", 1.0, 16_000, amplitude=0.01)
    (root / "README.md").write_text("speech commands\n")
    (root / "LICENSE").write_text("CC BY 4.0\n")
    (root / "yes" / "notes.txt").write_text("not audio\n")


def test_folder_layout_with_speech_commands_names(tmp_path):
    make_speech_commands(tmp_path)
    result = import_corpus(tmp_path, progress=False)
    assert result.layout == "folders"
    assert result.rejected == []
    assert len(result.utterances) == 8 + 2 + 3
    names = by_name(result)
    assert names["0a1b2c3d_nohash_1.wav"].speaker == "0a1b2c3d"
    assert names["0a1b2c3d_nohash_1.wav"].label in {"yes", "no"}
    # Under _unknown_ the word before the hash is not the speaker.
    assert names["bed_0a1b2c3d_nohash_0.wav"].speaker == "0a1b2c3d"
    assert names["bed_0a1b2c3d_nohash_0.wav"].label == "_unknown_"
    assert names["sheila_12345678_nohash_3.wav"].speaker == "12345678"
    silence = [u for u in result.utterances if u.label == "_silence_"]
    assert len(silence) == 3 and all(u.speaker is None for u in silence)
    assert result.summary()["n_speakers"] == 3
    assert result.summary()["labels"] == {"_silence_": 3, "_unknown_": 2, "no": 4, "yes": 4}


def test_folder_layout_speaker_is_prefix_before_underscore(tmp_path):
    tone(tmp_path / "lights_on" / "maria_03.wav")
    tone(tmp_path / "lights_on" / "take7.wav")
    tone(tmp_path / "lights_off" / "maria_04.flac")
    _, entries = scan_corpus(tmp_path, "folders")
    found = {p.name: (label, speaker) for p, label, speaker in entries}
    assert found == {
        "maria_03.wav": ("lights_on", "maria"),
        "take7.wav": ("lights_on", None),
        "maria_04.flac": ("lights_off", "maria"),
    }


def make_speaker_folders(root: Path) -> None:
    for speaker in ("anna", "bob"):
        for label in ("go", "stop"):
            for n in range(2):
                tone(root / speaker / label / f"{n}.wav")
    (root / "anna" / "README.md").write_text("anna's takes\n")


def test_speaker_folders_layout(tmp_path):
    make_speaker_folders(tmp_path)
    result = import_corpus(tmp_path, progress=False)
    assert result.layout == "speaker_folders"
    assert len(result.utterances) == 8
    pairs = {(Path(u.path).parent.parent.name, Path(u.path).parent.name, u.speaker, u.label) for u in result.utterances}
    assert pairs == {(s, l, s, l) for s in ("anna", "bob") for l in ("go", "stop")}


@pytest.mark.parametrize(
    "make, expected",
    [(make_fsdd, "fsdd"), (make_speech_commands, "folders"), (make_speaker_folders, "speaker_folders")],
)
def test_detect_layout(tmp_path, make, expected):
    make(tmp_path)
    assert detect_layout(tmp_path) == expected
    layout, entries = scan_corpus(tmp_path)
    assert layout == expected
    assert entries == sorted(entries, key=lambda e: e[0])
    assert all(p.suffix == ".wav" for p, _, _ in entries)


def test_explicit_layout_overrides_detection(tmp_path):
    make_speaker_folders(tmp_path)
    layout, entries = scan_corpus(tmp_path, "speaker_folders")
    assert layout == "speaker_folders" and len(entries) == 8
    # Read as folder-per-label there are no audio files directly in the top-level folders.
    with pytest.raises(ValueError, match="folders"):
        scan_corpus(tmp_path, "folders")


def test_scan_errors(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        scan_corpus(tmp_path / "missing")
    make_fsdd(tmp_path / "c")
    with pytest.raises(ValueError, match="layout"):
        scan_corpus(tmp_path / "c", "kaldi")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("nothing here\n")
    with pytest.raises(ValueError, match="no audio files"):
        scan_corpus(tmp_path / "docs")


def test_non_audio_files_are_ignored_not_rejected(tmp_path):
    make_speech_commands(tmp_path)
    (tmp_path / "no" / ".hidden.wav").write_bytes(b"RIFF")
    result = import_corpus(tmp_path, progress=False)
    seen = {Path(u.path).name for u in result.utterances} | {Path(p).name for p, _ in result.rejected}
    assert not seen & {"README.md", "LICENSE", "notes.txt", ".hidden.wav"}
    assert result.rejected == []


# -------------------------------------------------------------------------------- validation


def make_bad_corpus(root: Path) -> dict[str, str]:
    """Good files plus one of each defect; returns file name -> expected reason prefix."""
    for speaker in ("a1", "b2"):
        tone(root / "yes" / f"{speaker}_good.wav", 0.6, 16_000)
    (root / "yes" / "u1_garbage.wav").write_bytes(b"\x00\x01not a wave file" * 64)
    (root / "yes" / "u2_zero_bytes.wav").write_bytes(b"")
    soundfile.write(root / "yes" / "u3_no_samples.wav", np.zeros(0), 16_000)
    soundfile.write(root / "yes" / "u4_silent.wav", np.zeros(8_000), 16_000, subtype="PCM_16")
    square = np.sign(np.sin(2 * np.pi * 200 * np.arange(8_000) / 16_000))
    soundfile.write(root / "yes" / "u5_clipped.wav", square, 16_000, subtype="PCM_16")
    tone(root / "yes" / "u6_short.wav", 0.05, 16_000)
    tone(root / "yes" / "u7_long.wav", 31.0, 8_000)
    return {
        "u1_garbage.wav": "unreadable",
        "u2_zero_bytes.wav": "unreadable",
        "u3_no_samples.wav": "empty",
        "u4_silent.wav": "silent",
        "u5_clipped.wav": "clipped",
        "u6_short.wav": "too short",
        "u7_long.wav": "too long",
    }


def test_bad_files_are_excluded_with_reasons(tmp_path):
    expected = make_bad_corpus(tmp_path)
    result = import_corpus(tmp_path, progress=False)
    assert sorted(Path(u.path).name for u in result.utterances) == ["a1_good.wav", "b2_good.wav"]
    reasons = {Path(p).name: r for p, r in result.rejected}
    assert set(reasons) == set(expected)
    for name, prefix in expected.items():
        assert reasons[name].startswith(prefix), (name, reasons[name])
    assert "empty" in reasons["u2_zero_bytes.wav"]
    assert all(Path(p).is_absolute() for p, _ in result.rejected)
    summary = result.summary()
    assert summary["n_kept"] == 2 and summary["n_rejected"] == 7
    assert {r["path"] for r in summary["rejected"]} == {p for p, _ in result.rejected}


def test_import_never_modifies_the_originals(tmp_path):
    make_bad_corpus(tmp_path / "bad")
    make_speech_commands(tmp_path / "sc")
    make_fsdd(tmp_path / "fsdd")
    for corpus in ("bad", "sc", "fsdd"):
        before = hash_tree(tmp_path / corpus)
        import_corpus(tmp_path / corpus, progress=False)
        assert hash_tree(tmp_path / corpus) == before  # same files, same bytes, same mtimes


def test_validation_thresholds_are_configurable(tmp_path):
    tone(tmp_path / "w" / "s1_quiet.wav", 0.5, 16_000, amplitude=10 ** (-40 / 20))  # -40 dBFS peak
    tone(tmp_path / "w" / "s2_third.wav", 0.3, 16_000)
    tone(tmp_path / "w" / "s3_loud.wav", 2.0, 16_000, amplitude=0.9)
    tone(tmp_path / "w" / "s4_fine.wav", 0.8, 16_000)
    assert import_corpus(tmp_path, progress=False).rejected == []

    strict = ValidationConfig(min_duration_s=0.4, max_duration_s=1.5, silence_dbfs=-30.0)
    result = import_corpus(tmp_path, validation=strict, progress=False)
    assert [Path(u.path).name for u in result.utterances] == ["s4_fine.wav"]
    reasons = {Path(p).name: r for p, r in result.rejected}
    assert reasons["s1_quiet.wav"].startswith("silent")
    assert reasons["s2_third.wav"].startswith("too short")
    assert reasons["s3_loud.wav"].startswith("too long")


def test_all_files_excluded_is_an_error_naming_one(tmp_path):
    path = tmp_path / "w" / "s1_quiet.wav"
    path.parent.mkdir()
    soundfile.write(path, np.zeros(8_000), 16_000, subtype="PCM_16")  # digital silence
    with pytest.raises(ValueError, match="s1_quiet.wav.*silent"):
        import_corpus(tmp_path, progress=False)


def test_clip_level_threshold(tmp_path):
    # 0.95 amplitude: not clipped at the default level, clipped when full scale starts at 0.9.
    samples = np.clip(1.2 * np.sin(2 * np.pi * 100 * np.arange(16_000) / 16_000), -0.95, 0.95)[None, :]
    assert check_audio(samples, 16_000, ValidationConfig()) is None
    reason = check_audio(samples, 16_000, ValidationConfig(clip_level=0.9))
    assert reason is not None and reason.startswith("clipped")
    assert check_audio(samples, 16_000, ValidationConfig(clip_level=0.9, max_clipped_fraction=0.9)) is None
    assert check_audio(np.zeros((1, 0)), 16_000, ValidationConfig()).startswith("empty")
