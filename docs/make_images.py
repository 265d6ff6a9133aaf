"""Regenerate the example pictures in docs/images/ that the README shows.

    .venv/bin/python docs/make_images.py [--data ../shared/data] [--run runs/bench/fsdd_loso/fold_george]

Sound pictures come from FSDD and AN4 in ``--data``, drawn with the run's front end (its
config.yaml) when ``--run`` exists; the training curves and most confused pairs come from that
finished run directory (``benchmarks/train_commands.py --only fsdd_loso`` writes
``runs/bench/fsdd_loso/fold_george``) and are skipped when it is absent. No training happens here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from audiorec.audio import SAMPLE_RATE, load_audio
from audiorec.features import FeatureConfig
from audiorec.plots import plot_confused_pairs, plot_training_curves, save_figures, sound_figure
from audiorec.plots.files import corpus_entries, load_examples, order_examples
from audiorec.plots.sound import label_grid_figure

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=ROOT.parent / "shared" / "data", type=Path)
    parser.add_argument("--run", default=ROOT / "runs" / "bench" / "fsdd_loso" / "fold_george", type=Path)
    parser.add_argument("--out", default=HERE / "images", type=Path)
    args = parser.parse_args()
    out = args.out
    # Only the front end matters here; a run's config of an older version may not load as a whole.
    run_config = args.run / "config.yaml"
    features = FeatureConfig(**yaml.safe_load(run_config.read_text())["features"]) if run_config.is_file() else FeatureConfig()

    clip = args.data / "fsdd" / "7_jackson_12.wav"
    fig = sound_figure(load_audio(clip), SAMPLE_RATE, "waveform,spectrum,spectrogram,mel,mfcc", title=f"FSDD {clip.name}",
                       features=features, dpi=90)
    print(save_figures(fig, out / "fsdd_7_jackson_12"))

    _, entries = corpus_entries(args.data / "fsdd")
    ordered, _ = order_examples(entries)
    examples, _ = load_examples(ordered, per_label=4)
    fig = label_grid_figure(examples, SAMPLE_RATE, "mel", features, dpi=64,
                            title="FSDD: log-mel spectrograms as the model sees them, 4 clips per digit")
    print(save_figures(fig, out / "fsdd_mel_by_label"))

    utterance = args.data / "an4" / "wav" / "an4_clstk" / "fash" / "cen7-fash-b.sph"
    lines = (args.data / "an4" / "etc" / "an4_train.transcription").read_text().splitlines()
    text = next(line for line in lines if f"({utterance.stem})" in line).split("</s>")[0].removeprefix("<s>").strip()
    fig = sound_figure(load_audio(utterance), SAMPLE_RATE, "waveform,spectrogram,mel",
                       title=f'AN4 {utterance.name} (NIST SPHERE): "{text.lower()}"', features=features, dpi=90)
    print(save_figures(fig, out / "an4_cen7-fash-b"))

    if not (args.run / "predictions.jsonl").is_file():
        print(f"{args.run}: no finished run; training pictures skipped")
        return
    print(plot_training_curves(args.run / "logs", out / "fsdd_george_training_curves.png", title="fsdd_george"))
    predictions = [json.loads(line) for line in (args.run / "predictions.jsonl").read_text().splitlines()]
    print(plot_confused_pairs([p["label"] for p in predictions], [p["predicted"] for p in predictions],
                              [load_audio(p["path"]) for p in predictions], SAMPLE_RATE,
                              out / "fsdd_george_confused_pairs.png", [Path(p["path"]).name for p in predictions],
                              n_pairs=3, features=features))


if __name__ == "__main__":
    main()
