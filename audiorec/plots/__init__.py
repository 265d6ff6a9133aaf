"""Pictures: of sound, of corpora and of results, in one style.

- :mod:`~audiorec.plots.sound`: a waveform array -> a Figure (waveform, FFT spectrum, STFT
  spectrogram, log-mel, MFCC panels; per-label grids). No files: a web app draws with these.
- :mod:`~audiorec.plots.files`: audio files and corpus folders -> image files (``audiorec plot``).
- :mod:`~audiorec.plots.results`: training curves, confusion matrix, most confused pairs,
  cross-validation folds, accuracy against SNR and against model size, the DET curve of a keyword detector.
- :mod:`~audiorec.plots.style`: the shared look, and saving (atomic, PNG or SVG, or bytes).

The names of :mod:`~audiorec.plots.sound` are imported on first use: they need PyTorch (the
model's front ends), the rest does not, so the torch-free runtime install can draw results.
"""

from audiorec.plots.results import (
    TrainingLog,
    confused_pairs_figure,
    most_confused_pairs,
    plot_accuracy_vs_parameters,
    plot_accuracy_vs_snr,
    plot_confused_pairs,
    plot_confusion_matrix,
    plot_det_curve,
    plot_folds,
    plot_training_curves,
    read_training_log,
    training_curves_figure,
)
from audiorec.plots.style import FORMATS, STYLE, figure_bytes, save_figure, save_figures

__all__ = [
    "DEFAULT_KINDS", "FORMATS", "KINDS", "STYLE", "TrainingLog", "confused_pairs_figure", "figure_bytes",
    "label_grid_figure", "magnitude_spectrum", "most_confused_pairs", "parse_kinds", "plot_accuracy_vs_parameters", "plot_accuracy_vs_snr",
    "plot_confused_pairs", "plot_confusion_matrix", "plot_det_curve", "plot_folds", "plot_training_curves", "read_training_log",
    "save_figure", "save_figures", "sound_figure", "spectrogram_db", "training_curves_figure",
]

_SOUND_NAMES = ("DEFAULT_KINDS", "KINDS", "label_grid_figure", "magnitude_spectrum", "parse_kinds", "sound_figure",
                "spectrogram_db")


def __getattr__(name: str):
    if name in _SOUND_NAMES:
        from audiorec.plots import sound

        return getattr(sound, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
