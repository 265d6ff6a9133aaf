"""Pictures of sound, corpora and training: panels, axes that match the signal, saved sizes, the CLI."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import soundfile
import torch

from audiorec.audio import load_audio
from audiorec.cli import main
from audiorec.features import FeatureConfig, LogMel
from audiorec.plots import (
    KINDS,
    confused_pairs_figure,
    label_grid_figure,
    magnitude_spectrum,
    most_confused_pairs,
    plot_confused_pairs,
    read_training_log,
    save_figures,
    sound_figure,
    training_curves_figure,
)
from audiorec.plots.files import Entry, order_examples, plot_corpus
from conftest import shared_dataset, sine, write_sine

SR = 16_000


def tone(freq_hz: float = 1000.0, duration_s: float = 0.5, amplitude: float = 0.5, sample_rate: int = SR) -> np.ndarray:
    return sine(freq_hz, sample_rate, duration_s, amplitude).astype(np.float32)


def panels(fig) -> list:
    """The panel axes of a figure (colour bars excluded)."""
    return [ax for ax in fig.axes if ax.get_label() in KINDS]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tone_corpus(root: Path, labels=("high", "low"), speakers=("anna", "ben", "cleo")) -> Path:
    """A folder-per-label corpus of tones: ``root/<label>/<speaker>_<n>.wav``."""
    freqs = {"high": 2000.0, "low": 300.0, "mid": 800.0}
    for label in labels:
        for k, speaker in enumerate(speakers):
            write_sine(root / label / f"{speaker}_0.wav", freqs[label], 8_000 if k == 0 else SR, 0.3 + 0.1 * k)
    return root


# ---- one clip --------------------------------------------------------------------------------

def test_panels_are_the_requested_kinds_in_order():
    fig = sound_figure(tone(), SR, "waveform,mfcc,spectrum")
    assert [ax.get_label() for ax in fig.axes] == ["waveform", "mfcc", "spectrum"]
    fig = sound_figure(tone(), SR, list(KINDS))
    assert [ax.get_label() for ax in panels(fig)] == list(KINDS)
    assert len(fig.axes) == len(KINDS)  # colour bars are insets of their panel, not extra axes
    with pytest.raises(ValueError, match="'sonogram' is not one of"):
        sound_figure(tone(), SR, "waveform,sonogram")


@pytest.mark.parametrize("sample_rate", [8_000, 16_000])
def test_axes_span_the_clip_and_the_band(sample_rate):
    fig = sound_figure(tone(500, 0.5, sample_rate=sample_rate), sample_rate, KINDS)
    axes = {ax.get_label(): ax for ax in fig.axes}
    for kind in ("waveform", "spectrogram", "mel", "mfcc"):
        assert axes[kind].get_xlim() == pytest.approx((0.0, 0.5)), kind
        assert axes[kind].get_xlabel() == "time (s)"
    assert axes["spectrum"].get_xlim() == pytest.approx((0.0, sample_rate / 2))
    assert axes["spectrum"].get_xlabel() == "frequency (Hz)"
    assert axes["spectrogram"].get_ylim() == pytest.approx((0.0, sample_rate / 2))
    low, high = axes["mel"].get_ylim()  # Hz on a mel scale, inside [f_min, Nyquist]
    assert 20 <= low < 100 and sample_rate / 2 * 0.9 < high <= sample_rate / 2
    assert axes["mel"].get_yscale() == "function"


def test_spectrum_peaks_at_the_tone_frequency_and_level():
    fig = sound_figure(tone(1000, 1.0, amplitude=0.5), SR, "spectrum")
    freqs, level = fig.axes[0].get_lines()[0].get_data()
    assert freqs[np.argmax(level)] == pytest.approx(1000, abs=2)
    assert level.max() == pytest.approx(20 * np.log10(0.5), abs=0.2)  # dBFS: amplitude 0.5 is -6 dB
    # A long clip is drawn with fewer points, but the peak stays where it is.
    fig = sound_figure(tone(1000, 6.0, amplitude=0.5) + tone(3000, 6.0, amplitude=0.05), SR, "spectrum")
    freqs, level = fig.axes[0].get_lines()[0].get_data()
    assert len(freqs) <= 4096
    assert freqs[np.argmax(level)] == pytest.approx(1000, abs=2)
    near_3k = (freqs > 2900) & (freqs < 3100)
    assert freqs[near_3k][np.argmax(level[near_3k])] == pytest.approx(3000, abs=3)


def test_magnitude_spectrum_is_calibrated_in_dbfs():
    freqs, level = magnitude_spectrum(tone(2000, 1.0, amplitude=1.0), SR)
    assert freqs[-1] == SR / 2 and freqs[np.argmax(level)] == 2000
    assert level.max() == pytest.approx(0.0, abs=0.1)


def test_spectrogram_and_mel_are_brightest_at_the_tone():
    fig = sound_figure(tone(1000, 0.5), SR, "spectrogram,mel")
    spectrogram, mel = fig.axes
    image = spectrogram.get_images()[0]
    left, right, bottom, top = image.get_extent()
    rows = np.asarray(image.get_array())
    row_hz = bottom + (np.arange(rows.shape[0]) + 0.5) * (top - bottom) / rows.shape[0]
    assert row_hz[np.argmax(rows.mean(axis=1))] == pytest.approx(1000, abs=(top - bottom) / rows.shape[0])
    mesh = mel.collections[0]
    values = np.asarray(mesh.get_array()).reshape(40, -1)
    edges_hz = mesh.get_coordinates()[:, 0, 1]
    band = int(np.argmax(values.mean(axis=1)))
    assert edges_hz[band] <= 1000 * 1.08 and edges_hz[band + 1] >= 1000 / 1.08


def test_mel_panel_is_what_the_model_front_end_computes():
    y = tone(700, 0.4) + 0.01 * np.random.default_rng(0).standard_normal(int(0.4 * SR)).astype(np.float32)
    config = FeatureConfig(n_mels=32, top_db=40.0)
    fig = sound_figure(y, SR, "mel", features=config)
    shown = np.asarray(fig.axes[0].collections[0].get_array()).reshape(32, -1)
    front_end = LogMel(SR, config.win_ms, config.hop_ms, 32, config.f_min_hz, config.f_max_hz, top_db=40.0)
    with torch.no_grad():
        expected = front_end(torch.from_numpy(y)[None])[0].numpy() * 10 / np.log(10)
    np.testing.assert_allclose(shown, expected, rtol=1e-5, atol=1e-4)


def test_saved_images_have_the_figure_size(tmp_path):
    one = save_figures(sound_figure(tone(), SR, "waveform", dpi=100), tmp_path / "one", ["png", "svg"])
    three = save_figures(sound_figure(tone(), SR, "waveform,spectrogram,mel", width_in=6.0, dpi=50), tmp_path / "three", ["png"])
    assert [p.name for p in one] == ["one.png", "one.svg"] and three == [tmp_path / "three.png"]
    height_1, width_1 = matplotlib.image.imread(one[0]).shape[:2]
    height_3, width_3 = matplotlib.image.imread(three[0]).shape[:2]
    assert width_1 == 800 and width_3 == 300
    assert height_3 / 50 > height_1 / 100  # more panels, taller figure (in inches)
    assert one[1].read_text()[:200].lstrip().startswith("<?xml") and "<svg" in one[1].read_text()
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    with pytest.raises(ValueError, match="'jpeg' is not one of png, svg"):
        save_figures(sound_figure(tone(), SR, "waveform"), tmp_path / "x", ["jpeg"])


@pytest.mark.parametrize("waveform, sample_rate, message", [
    (np.zeros(0, np.float32), SR, "empty waveform"),
    (np.zeros((2, 100), np.float32), SR, "shape"),
    (np.array([0.0, np.nan, 0.1], np.float32), SR, "NaN"),
    (np.zeros(100, np.float32), 0, "sample_rate must be positive"),
    (np.zeros(200, np.float32), SR, "too short for a spectrogram"),
])
def test_bad_waveforms_are_refused_with_the_reason(waveform, sample_rate, message):
    with pytest.raises(ValueError, match=message):
        sound_figure(waveform, sample_rate, "waveform,spectrogram")


@pytest.mark.parametrize("duration_s", [0.2, 0.443, 3.0])  # drawn as a line; as a min/max envelope
def test_waveform_is_drawn_to_the_end_of_the_clip(duration_s):
    y = tone(200, duration_s)
    ax = sound_figure(y, SR, "waveform").axes[0]
    if ax.get_lines()[1:]:
        x = ax.get_lines()[0].get_xdata()  # lines[-1] is the zero line
    else:
        x = ax.collections[0].get_paths()[0].vertices[:, 0]
    assert x.min() == pytest.approx(0.0, abs=1.5 / SR) and x.max() == pytest.approx(duration_s, abs=1.5 / SR)
    assert ax.get_ylim()[1] == pytest.approx(0.5 * 1.08, rel=0.01)


def test_a_short_clip_still_draws_a_waveform():
    fig = sound_figure(np.full(200, 0.1, np.float32), SR, "waveform")
    assert fig.axes[0].get_xlim() == pytest.approx((0, 200 / SR))


# ---- grids and corpora -----------------------------------------------------------------------

def test_label_grid_has_one_cell_per_clip_on_one_colour_scale():
    examples = {"low": [("a", tone(300)), ("b", tone(300, 0.3)), ("c", tone(300, amplitude=0.05))],
                "high": [("d", tone(3000, 0.7))]}
    fig = label_grid_figure(examples, SR, "spectrogram", title="t", note="n")
    cells = panels(fig)
    assert len(cells) == 4 and all(ax.get_label() == "spectrogram" for ax in cells)
    assert {ax.get_images()[0].get_clim() for ax in cells} == {cells[0].get_images()[0].get_clim()}
    assert [ax.get_xlim()[1] for ax in cells] == pytest.approx([0.5, 0.3, 0.5, 0.7])
    assert [ax.get_title(loc="left") for ax in cells] == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="label 'high', clip 'd'"):
        label_grid_figure({"high": [("d", np.zeros(10, np.float32))]}, SR, "mel")


def test_examples_alternate_speakers_and_big_corpora_show_the_commonest_labels():
    entries = [Entry(f"/c/{label}/{spk}_{i}.wav", label, spk)
               for label, n in (("a", 3), ("b", 1), ("c", 2)) for spk in ("x", "y") for i in range(n)]
    ordered, note = order_examples(entries, max_labels=3)
    assert note == "" and list(ordered) == ["a", "b", "c"]
    assert [Path(e.path).stem for e in ordered["a"][:4]] == ["x_0", "y_0", "x_1", "y_1"]
    assert [Path(e.path).stem for e in ordered["c"]] == ["x_0", "y_0", "x_1", "y_1"]  # third label: rotated twice
    assert [Path(e.path).stem for e in ordered["b"]] == ["y_0", "x_0"]  # second label: the other speaker first
    ordered, note = order_examples(entries, max_labels=2)
    assert list(ordered) == ["a", "c"] and note == "showing the 2 most frequent of 3 labels"


def test_plot_corpus_writes_grids_and_per_file_images(tmp_path):
    corpus = tone_corpus(tmp_path / "corpus")
    result = plot_corpus(corpus, tmp_path / "out", "waveform,spectrogram", ["png", "svg"], per_label=2,
                         per_file=True, progress=False)
    names = sorted(str(p.relative_to(tmp_path / "out")) for p in result.paths)
    assert names == sorted(
        ["spectrogram_by_label.png", "spectrogram_by_label.svg", "waveform_by_label.png", "waveform_by_label.svg"]
        + [f"files/{label}/{spk}_0.{fmt}" for label in ("high", "low") for spk in ("anna", "ben", "cleo") for fmt in ("png", "svg")]
    )
    assert result.errors == [] and result.note == ""
    grid = matplotlib.image.imread(tmp_path / "out" / "spectrogram_by_label.png")
    assert grid.shape[1] > grid.shape[0] * 0.8  # two columns of cells, two rows


def test_cli_plot_one_file(tmp_path, capsys):
    clip = write_sine(tmp_path / "beep.flac", 1000.0, 44_100, 0.5, format="FLAC")
    code, out, _ = run_cli(capsys, "plot", clip, "--kind", "waveform,spectrum", "--out", tmp_path / "pics",
                           "--format", "png,svg", "features.n_mels=64")
    assert code == 0 and "beep.png" in out
    image = matplotlib.image.imread(tmp_path / "pics" / "beep.png")
    assert image.shape[1] == 800  # 8 in at 100 dpi
    assert (tmp_path / "pics" / "beep.svg").is_file()


def test_cli_plot_corpus_reports_unreadable_files_and_continues(tmp_path, capsys):
    corpus = tone_corpus(tmp_path / "corpus", labels=("low",), speakers=("anna",))
    (corpus / "low" / "bob_0.wav").write_bytes(b"not audio at all")
    code, out, err = run_cli(capsys, "plot", corpus, "--kind", "mel", "--out", tmp_path / "pics", "--quiet")
    assert code == 1
    assert "bob_0.wav" in err and "error:" in err
    assert (tmp_path / "pics" / "mel_by_label.png").is_file() and "mel_by_label.png" in out


@pytest.mark.parametrize("argv, message", [
    (["--kind", "wave"], "'wave' is not one of"),
    (["--format", "gif"], "'gif' is not one of png, svg"),
])
def test_cli_plot_bad_options_exit_2(tmp_path, capsys, argv, message):
    clip = write_sine(tmp_path / "a.wav")
    code, _, err = run_cli(capsys, "plot", clip, "--out", tmp_path / "pics", *argv)
    assert code == 2 and message in err and err.startswith("error:")


def test_cli_plot_missing_or_undecodable_input_exits_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "plot", tmp_path / "nowhere", "--out", tmp_path / "pics")
    assert code == 2 and "nowhere" in err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF garbage")
    code, _, err = run_cli(capsys, "plot", bad, "--out", tmp_path / "pics")
    assert code == 2 and "bad.wav" in err


# ---- training and evaluation pictures --------------------------------------------------------

def write_log(path: Path, rows: list[dict]) -> None:
    columns = ["epoch", "lr-AdamW", "step", "train_acc", "train_loss", "val_acc", "val_loss"]
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(columns)] + [",".join(str(row.get(c, "")) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def epoch_rows(epoch: int, step: int, val_acc: float) -> list[dict]:
    """What Lightning's CSVLogger writes per epoch: lr, validation and training on separate rows."""
    return [{"lr-AdamW": 0.001 * (epoch + 1), "step": step},
            {"epoch": epoch, "step": step, "val_acc": val_acc, "val_loss": 1 - val_acc},
            {"epoch": epoch, "step": step, "train_acc": val_acc / 2, "train_loss": 2 - val_acc}]


def test_training_log_concatenates_resumed_versions(tmp_path):
    logs = tmp_path / "run" / "logs"
    write_log(logs / "version_0" / "metrics.csv", epoch_rows(0, 1, 0.5) + epoch_rows(1, 3, 0.6))
    # Resumed after an interruption during epoch 2 of a first resume: version 2 repeats epoch 2.
    write_log(logs / "version_1" / "metrics.csv", epoch_rows(2, 5, 0.1))
    write_log(logs / "version_2" / "metrics.csv", epoch_rows(2, 5, 0.7) + epoch_rows(3, 7, 0.65))
    write_log(logs / "version_10" / "metrics.csv", epoch_rows(4, 9, 0.8))  # 10 sorts after 2
    log = read_training_log(tmp_path / "run")
    epochs, values = log.by_epoch["val_acc"]
    assert list(epochs) == [0, 1, 2, 3, 4] and list(values) == pytest.approx([0.5, 0.6, 0.7, 0.65, 0.8])
    assert list(log.by_step["lr-AdamW"][0]) == [1, 3, 5, 7, 9]
    assert log.resumed_at == [2, 2, 4]
    fig = training_curves_figure(log)
    assert [ax.get_label() for ax in fig.axes] == ["loss", "acc", "lr"]
    acc = fig.axes[1]
    lines = {line.get_label(): line for line in acc.get_lines()}
    assert list(lines["val"].get_xdata()) == [1, 2, 3, 4, 5]  # 1-based epochs
    best = next(label for label in lines if label.startswith("best val"))
    assert best == "best val 0.800 (epoch 5)"
    assert acc.get_ylim()[1] <= 1.02


def test_training_log_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="no version_N/metrics.csv"):
        read_training_log(tmp_path)
    bad = tmp_path / "logs" / "version_0" / "metrics.csv"
    write_log(bad, [{"epoch": 0, "step": 1, "val_acc": "high"}])
    with pytest.raises(ValueError, match=r"metrics.csv:2"):
        read_training_log(tmp_path / "logs")


def test_training_writes_curves_and_confused_pairs(trained_run):
    run_dir, metrics, _ = trained_run
    curves = matplotlib.image.imread(run_dir / "training_curves.png")
    assert curves.shape[0] > 100 and curves.shape[1] > 300
    log = read_training_log(run_dir / "logs")
    assert len(log.by_epoch["val_acc"][0]) == metrics["epochs"]
    errors = metrics["test_accuracy"] < 1.0
    assert (run_dir / "confused_pairs.png").is_file() == errors


def test_most_confused_pairs_and_their_picture(tmp_path):
    true = ["no", "no", "no", "go", "go", "up", "up"]
    predicted = ["go", "go", "no", "go", "no", "no", "up"]
    assert most_confused_pairs(true, predicted) == [("no", "go", 2), ("go", "no", 1), ("up", "no", 1)]
    waves = [tone(300 + 100 * i, 0.3) for i in range(len(true))]
    fig = confused_pairs_figure(true, predicted, waves, SR, [f"{i}.wav" for i in range(7)], n_pairs=2)
    cells = panels(fig)
    # Row 1: no->go (a wrong clip, a correct "no", a correct "go"); row 2: go->no likewise.
    assert [ax.get_title(loc="left") for ax in cells] == [
        "heard as 'go': 0.wav", "a correct 'no': 2.wav", "a correct 'go': 3.wav",
        "heard as 'no': 4.wav", "a correct 'go': 3.wav", "a correct 'no': 2.wav",
    ]
    path = tmp_path / "confused_pairs.png"
    assert plot_confused_pairs(true, predicted, waves, SR, path) == path and path.is_file()
    assert plot_confused_pairs(true, true, waves, SR, path) is None and not path.exists()
    waves[0] = np.zeros(0, np.float32)  # an empty or very short clip must not stop an evaluation
    assert confused_pairs_figure(true, predicted, waves, SR) is not None


# ---- real recordings -------------------------------------------------------------------------

def test_an4_sphere_utterance_spans_its_duration(tmp_path, capsys):
    an4 = shared_dataset("an4")
    clip = sorted((an4 / "wav" / "an4_clstk").rglob("*.sph"))[0]
    info = soundfile.info(str(clip))
    code, _, _ = run_cli(capsys, "plot", clip, "--kind", "waveform,spectrogram", "--out", tmp_path)
    assert code == 0
    fig = sound_figure(load_audio(clip), SR, "waveform,spectrogram")  # AN4 is 16 kHz: no resampling
    assert [ax.get_xlim() for ax in fig.axes] == [pytest.approx((0, info.duration))] * 2
    assert matplotlib.image.imread(tmp_path / f"{clip.stem}.png").shape[1] == 800


def test_fsdd_grid_caps_labels(tmp_path):
    fsdd = shared_dataset("fsdd")
    result = plot_corpus(fsdd, tmp_path, "spectrogram", per_label=2, max_labels=3, progress=False)
    assert result.note == "showing the 3 most frequent of 10 labels"
    assert [p.name for p in result.paths] == ["spectrogram_by_label.png"]
