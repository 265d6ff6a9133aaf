"""The ``audiorec`` command line: data import, training, recognition and the quickstart."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXAMPLES = """\
examples:
  audiorec quickstart                                   # synthesise a corpus, train, recognise
  audiorec data import ../shared/data/fsdd --out fsdd.jsonl
  audiorec train --data ../shared/data/fsdd --out runs/fsdd --test-speakers george
  audiorec train --data ../shared/data/speech_commands_v2_test --out runs/sc12
  audiorec recognize runs/fsdd clip1.wav clip2.webm --json
  audiorec train --task asr --data ../shared/data/an4 --out runs/an4          # sentences: CTC, DeepSpeech2
  audiorec transcribe runs/an4 utterance.wav --json                           # text with word timings
  audiorec evaluate runs/sc12 --noise ../shared/data/noise --snr-db 20,10,5,0
  audiorec export runs/sc12 --out sc12.onnx --int8               # one file, no PyTorch needed to run it
  audiorec recognize sc12.onnx clip.wav
  audiorec data stream --data runs/sc12/splits/test.jsonl --noise ../shared/data/noise/running_tap.wav --out stream
  audiorec listen sc12.onnx --file stream/stream.wav --timeline stream/timeline.csv   # detections, DET curve
  audiorec serve sc12.onnx --dataset-dir my_recordings     # web page: record/upload; studio at /record
  audiorec cv --data ../shared/data/fsdd --folds loso --out runs/fsdd_loso
  audiorec adapt runs/fsdd --data my_voice/ --out runs/fsdd_me     # to a new speaker, from unlabelled clips
  audiorec bench models --data ../shared/data/fsdd --data ../shared/data/speech_commands_v2_test --out runs/zoo
  audiorec augment my_recordings my_recordings_aug --copies 4
  audiorec plot clip.wav --kind waveform,spectrum,spectrogram --out plots
  audiorec plot ../shared/data/fsdd --kind spectrogram,mel --out plots/fsdd
  audiorec data report ../shared/data/fsdd --out fsdd_report.html
"""

# audiorec.data.corpora.LAYOUTS, spelled out so that --help does not import the audio stack
CORPUS_LAYOUTS = ("auto", "fsdd", "folders", "speaker_folders", "an4", "librispeech", "yesno", "transcripts")


def _add_data_commands(sub) -> None:
    data = sub.add_parser("data", help="import, validate, report on and synthesise corpora")
    data_sub = data.add_subparsers(dest="subcommand", required=True, metavar="{import,report,synth,stream,commands}")
    imp = data_sub.add_parser(
        "import",
        help="turn a corpus folder into a JSON Lines manifest, excluding bad files",
        description="Scan a corpus folder, decode and validate every file, and write a JSON Lines "
        "manifest (path, label, speaker, duration, sample_rate) plus a report of excluded files. "
        "The audio files are only read, never modified.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    imp.add_argument("root", help="corpus folder")
    imp.add_argument("--out", required=True, help="manifest to write (.jsonl)")
    imp.add_argument("--layout", default="auto", choices=CORPUS_LAYOUTS,
                     help="fsdd: <digit>_<speaker>_<n>.wav; folders: DIR/<label>/<file>; "
                     "speaker_folders: DIR/<speaker>/<label>/<file>; transcribed corpora (text, speaker and "
                     "subset instead of a label): an4: CMU AN4 (DIR/etc/an4_{train,test}.transcription); "
                     "librispeech: DIR/[<subset>/]<speaker>/<chapter>/*.trans.txt; yesno: Kaldi yesno "
                     "DIR/0_1_1_0_1_0_0_1.wav; transcripts: ROOT is a .csv/.tsv file with path and text "
                     "columns (optional speaker, subset)")
    _add_validation_options(imp)
    report = data_sub.add_parser(
        "report",
        help="write a one-page HTML overview of a corpus: counts, durations, loudness, findings, spectrograms",
        description="Import a corpus folder (validating every file, as 'data import' does) or read a "
        "manifest, and write one self-contained HTML page: clips per label and per speaker, duration "
        "histogram, sample rates and channels, loudness (peak, speech level, noise floor, estimated SNR "
        "per speaker), the excluded files with reasons, and example spectrograms per label.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    report.add_argument("source", help="corpus folder, .csv/.tsv transcript table, or .jsonl manifest")
    report.add_argument("--out", required=True, help="HTML file to write")
    report.add_argument("--layout", default="auto", choices=CORPUS_LAYOUTS,
                        help="corpus layout of a folder (see 'data import')")
    report.add_argument("--clips-per-label", type=int, default=4, help="example spectrograms per label")
    report.add_argument("--max-labels", type=int, default=30, help="labels in the example grid at most (the most frequent)")
    report.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_validation_options(report)
    synth = data_sub.add_parser(
        "synth",
        help="synthesise a spoken-command corpus with espeak-ng",
        description="Write a folder-per-label corpus of the ten Speech Commands words (plus _unknown_ "
        "and _silence_) spoken by espeak-ng voices. Used by the quickstart; needs no download.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    synth.add_argument("out", help="folder to write")
    synth.add_argument("--speakers", type=int, default=40, help="number of voices")
    synth.add_argument("--takes", type=int, default=2, help="recordings per voice and word")
    synth.add_argument("--seed", type=int, default=0)
    _add_data_stream_command(data_sub)
    cm = data_sub.add_parser(
        "commands",
        help="label a transcribed corpus for command recognition: other speech as _unknown_, one-word commands",
        description="Import a transcribed corpus (or read its manifest) and write a command manifest: an "
        "utterance whose whole transcript is one of --labels takes that label, one with none of them is "
        "_unknown_ (other speakers' other words: the negatives a command recognizer learns to reject), one "
        "with a command among other words is left out. A labelled corpus (another command corpus, FSDD's "
        "digits) works the same way, each clip's label taken as its one-word transcript; _silence_ and the "
        "like are left out. Give the result to training as extra clips: "
        "audiorec train --data DATA data.extra_train=OUT.jsonl. The audio files are only read.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    cm.add_argument("source", help="transcribed or labelled corpus folder, .csv/.tsv transcript table, or .jsonl manifest")
    cm.add_argument("--labels", required=True,
                    help="the commands, comma-separated (e.g. yes,no,up,down,left,right,on,off,stop,go)")
    cm.add_argument("--out", required=True, help="manifest to write (.jsonl)")
    cm.add_argument("--subset", help="keep only this subset of the corpus (e.g. train: AN4's test speakers stay unheard)")
    cm.add_argument("--layout", default="auto", choices=CORPUS_LAYOUTS, help="corpus layout of a folder (see 'data import')")
    _add_validation_options(cm)


def _add_data_stream_command(data_sub) -> None:
    st = data_sub.add_parser(
        "stream",
        help="build a keyword-detection test stream: held-out words at random gaps over background noise",
        description="Write OUT/stream.wav (16 kHz, 16-bit) with the words of a manifest or corpus placed at "
        "random gaps over a continuous background noise, every word trimmed to its speech and at --snr-db "
        "(its speech power over the background's power), and OUT/timeline.csv with each word's onset, "
        "offset, label and source file (the ground truth for 'audiorec listen --timeline'). _unknown_ words "
        "are placed as negatives, _silence_ clips are left out; words are reused in new shuffled rounds "
        "when the data is short. The same --seed gives the same stream.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    st.add_argument("--data", required=True, help=".jsonl manifest (e.g. RUN/splits/test.jsonl) or corpus folder")
    st.add_argument("--noise", required=True, action="append", help="background noise file or folder (repeatable)")
    st.add_argument("--out", required=True, help="folder to write")
    st.add_argument("--snr-db", type=float, default=10.0, help="SNR of every word against the background, dB")
    st.add_argument("--minutes", type=float, default=60.0, help="length of the stream")
    st.add_argument("--min-gap-s", type=float, default=2.0, help="shortest background-only gap between words")
    st.add_argument("--max-gap-s", type=float, default=5.0, help="longest background-only gap between words")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_validation_options(parser) -> None:
    """The thresholds of :class:`~audiorec.data.corpora.ValidationConfig`, for ``data import`` and ``data report``."""
    parser.add_argument("--min-duration-s", type=float, default=0.1, help="exclude shorter files")
    parser.add_argument("--max-duration-s", type=float, default=30.0, help="exclude longer files")
    parser.add_argument("--silence-dbfs", type=float, default=-80.0, help="exclude files whose peak is below this level")
    parser.add_argument("--max-clipped-fraction", type=float, default=0.25,
                        help="exclude files with more samples at full scale than this fraction")


def _validation_config(args):
    from audiorec.data.corpora import ValidationConfig

    return ValidationConfig(
        min_duration_s=args.min_duration_s, max_duration_s=args.max_duration_s,
        silence_dbfs=args.silence_dbfs, max_clipped_fraction=args.max_clipped_fraction,
    )


def _add_plot_command(sub) -> None:
    pl = sub.add_parser(
        "plot",
        help="draw waveform, spectrum, spectrogram, log-mel and MFCC pictures of a file or a corpus",
        description="For one audio file: one figure with the chosen panels (time in s, frequency in Hz, "
        "dB colour bars), written as OUT/<name>.png. For a corpus folder or manifest: one grid per kind "
        "with a few clips per label (OUT/<kind>_by_label.png), and with --per-file one figure per file "
        "under OUT/files/. Clips are loaded at the front end's rate (16 kHz), and the log-mel and MFCC "
        "panels are computed by the model's own front end: pass a run's config.yaml as --config to see "
        "exactly what that model sees.",
        epilog="overrides: feature keys as key=value, e.g. features.n_mels=64 features.top_db=80",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    pl.add_argument("path", help="audio file, corpus folder, or .jsonl manifest")
    pl.add_argument("--kind", default="waveform,spectrum,spectrogram,mel",
                    help="comma-separated panels: waveform, spectrum, spectrogram, mel, mfcc")
    pl.add_argument("--out", default="plots", help="output folder")
    pl.add_argument("--format", default="png", help="comma-separated image formats: png, svg")
    pl.add_argument("--per-file", action="store_true", help="corpus: also one figure per file")
    pl.add_argument("--clips-per-label", type=int, default=4, help="corpus: clips per label in a grid")
    pl.add_argument("--max-labels", type=int, default=30, help="corpus: grid rows at most (the most frequent labels)")
    pl.add_argument("--layout", default="auto", choices=["auto", "fsdd", "folders", "speaker_folders"],
                    help="corpus layout of a folder")
    pl.add_argument("--config", help="YAML config (e.g. RUN/config.yaml): its features section is used")
    pl.add_argument("--quiet", action="store_true", help="no progress bars")
    pl.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. features.n_mels=64")


def _add_train_command(sub) -> None:
    tr = sub.add_parser(
        "train",
        help="train and test a command recognizer, or a speech recognizer with --task asr",
        description="Train a command recognizer on a corpus folder or manifest, with a speaker-disjoint "
        "train/validation/test split, and write the run directory: config.yaml, labels.json, "
        "checkpoints/, metrics.json, confusion_matrix.{txt,png}, logs/. With --task asr, train a "
        "DeepSpeech2-style CTC recognizer on transcribed utterances (AN4, LibriSpeech, yesno, a path,text "
        "CSV) and report WER and CER on the corpus's test set (tokenizer.json, transcripts.jsonl). "
        "Running the same command again resumes an interrupted run.",
        epilog="overrides: any config key as key=value, e.g. train.lr=0.001 features.n_mels=64 "
        "data.clip_ms=1500 ('audiorec config' prints every key).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    tr.add_argument("--data", required=True, help="corpus folder (imported on the fly) or .jsonl manifest")
    tr.add_argument("--out", required=True, help="run directory to write")
    tr.add_argument("--test-speakers", help="comma-separated speakers to hold out for test, e.g. george")
    tr.add_argument("--task", choices=["commands", "asr"], help="override task: commands (one label per clip) or "
                    "asr (a transcript per utterance, CTC; its own defaults, see 'audiorec config task=asr')")
    _add_training_options(tr)


def _add_training_options(parser, model: bool = True) -> None:
    """The options ``train``, ``cv`` and ``bench models`` share: config file, model, epochs, seed,
    quiet, overrides."""
    parser.add_argument("--config", help="YAML config file")
    if model:
        parser.add_argument("--model", help="override model.name: cnn, cnn_trad_fpool3, ds_cnn, bc_resnet, matchboxnet, "
                            "crnn_fourier, gmm (the classical baseline), speech_embedding (a head over Google's pretrained, "
                            "frozen speech embedding; features.finetune_layers=N trains its last N convolutions) (sizes: model.size=...)")
        parser.add_argument("--teacher", metavar="RUN", help="override train.teacher: a trained run (or an 'audiorec cv' "
                            "folder, fold by fold) whose outputs this model learns to match besides the labels "
                            "(knowledge distillation; train.distill_weight, train.distill_temperature)")
        parser.add_argument("--extra-train", metavar="DATA", help="override data.extra_train: a corpus folder or "
                            ".jsonl manifest of other speakers' clips (labels among the data's) added to the training "
                            "split only, never validated or tested on")
    parser.add_argument("--max-epochs", type=int, help="override train.max_epochs")
    parser.add_argument("--seed", type=int, help="override train.seed")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def _add_recognize_command(sub) -> None:
    rec = sub.add_parser(
        "recognize",
        help="recognise audio files with a trained run or an exported model",
        description="Print the recognised command for each file. A file that cannot be read gets an "
        "error line naming it; the others are still recognised, and the exit code is 1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rec.add_argument("run", metavar="MODEL", help="run directory written by 'audiorec train', or a .onnx file from 'audiorec export'")
    rec.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, MP3, M4A, WebM, SPHERE ...)")
    rec.add_argument("--json", action="store_true", help="one JSON object per line")
    rec.add_argument("--top-k", type=int, default=3, help="how many classes to list")


def _add_transcribe_command(sub) -> None:
    tc = sub.add_parser(
        "transcribe",
        help="transcribe audio files with a speech recognizer (a --task asr run or its exported .onnx)",
        description="Print the text of each file, greedy CTC decoding. A file that cannot be read gets an "
        "error line naming it; the others are still transcribed, and the exit code is 1. With --json, one "
        "object per file with the text and each word's start and end in seconds and its confidence.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    tc.add_argument("run", metavar="MODEL", help="run directory written by 'audiorec train --task asr', or a .onnx file from 'audiorec export'")
    tc.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, MP3, M4A, WebM, SPHERE ...)")
    tc.add_argument("--json", action="store_true", help="one JSON object per line, with word timings")
    tc.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")


def _add_export_command(sub) -> None:
    ex = sub.add_parser(
        "export",
        help="export a run to one ONNX file (waveform in, probabilities out), checked against PyTorch",
        description="Write the run's best model as one ONNX graph from raw 16 kHz float32 waveform "
        "[batch, samples] to class probabilities, feature extraction included, with the labels, sample "
        "rate, clip length and config in its metadata. The export is checked on the run's test clips "
        "(max |difference| of the probabilities and top-1 agreement with PyTorch); --int8 also quantises "
        "it with ONNX Runtime and reports the accuracy change. The report is written as "
        "<out stem>.export.json. Run the model without PyTorch: audiorec recognize model.onnx clip.wav",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ex.add_argument("run", help="run directory written by 'audiorec train'")
    ex.add_argument("--out", help="model file to write (default RUN/model.onnx)")
    ex.add_argument("--ensemble", action="append", default=[], metavar="RUN2",
                    help="another run of the same classes and test split (another --seed, or another model or front "
                    "end, e.g. a cnn with a speech_embedding run); repeat for more. The model then averages the runs' "
                    "posteriors; runs with the same front end share one copy of it")
    ex.add_argument("--int8", action="store_true",
                    help="quantise to int8 (OUT is then the int8 model; the float one is kept as <stem>.fp32.onnx)")
    ex.add_argument("--max-clips", type=int, help="check on at most this many test clips (default all)")
    ex.add_argument("--calibration-clips", type=int, default=256, help="training clips that calibrate int8 ranges")
    ex.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_evaluate_command(sub) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="test a trained run on labelled clips, clean and mixed with noise at several SNRs, or a "
        "speech recognizer on transcribed utterances (WER, CER)",
        description="Recognise labelled clips with a trained run and report accuracy. With --noise, "
        "every clip is also mixed with a noise recording at each --snr-db, and metrics.json and "
        "accuracy_vs_snr.png report accuracy per SNR next to clean accuracy. A speech-recognition run "
        "(--task asr) is scored by word and character error rates, with transcripts.jsonl per utterance.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ev.add_argument("run", help="run directory written by 'audiorec train'")
    ev.add_argument("--data", help="corpus folder or .jsonl manifest (default: the run's own test split)")
    ev.add_argument("--noise", action="append", help="noise file or folder (repeatable)")
    ev.add_argument("--snr-db", default="20,10,5,0", help="comma-separated SNRs in dB, used with --noise")
    ev.add_argument("--out", help="output folder (default: RUN/evaluate)")
    ev.add_argument("--seed", type=int, default=0, help="chooses each clip's noise excerpt")


def _add_cv_command(sub) -> None:
    cv = sub.add_parser(
        "cv",
        help="leave-one-speaker-out cross-validation: one model per held-out speaker",
        description="Train one model per speaker with that speaker held out for test, and write "
        "OUT/metrics.json (mean_accuracy, worst fold, folds) and OUT/folds.png. Running the same "
        "command again skips finished folds and resumes an interrupted one.",
        epilog="overrides: any config key as key=value, as for 'audiorec train'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    cv.add_argument("--data", required=True, help="corpus folder or .jsonl manifest with speakers")
    cv.add_argument("--out", required=True, help="output folder (one run directory per fold)")
    cv.add_argument("--folds", default="loso", choices=["loso"], help="loso: leave one speaker out")
    cv.add_argument("--val-fraction", type=float, default=0.0,
                    help="share of the other speakers held out of each fold's training to validate; "
                    "0 trains on all of them for every epoch and keeps the last weights")
    cv.add_argument("--adapt-clips", type=int, default=0, metavar="N",
                    help="also adapt each fold's model to N unlabelled clips of its held-out speaker (batch-norm "
                    "statistics, AdaBN) and report the accuracy on the speaker's other clips with and without it; "
                    "0: no adaptation")
    _add_training_options(cv)


def _add_adapt_command(sub) -> None:
    ad = sub.add_parser(
        "adapt",
        help="adapt a trained model to a new speaker from a few unlabelled recordings of them",
        description="Re-estimate the batch-norm statistics of a run's network on recordings of one speaker "
        "(or room, or microphone), without labels (AdaBN, Li et al. 2018), and write the adapted model as a "
        "new run directory that recognize, evaluate, export, listen and serve read like any other. The source "
        "run is not modified. Twenty clips of the speaker saying their commands, in any order but each about as "
        "often (clips of only one or two commands can make it worse; see --weight), are enough: on FSDD "
        "leave-one-speaker-out they raised the mean accuracy on the speakers' other clips from 0.965 to 0.972 "
        "(README, Speaker adaptation).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ad.add_argument("run", help="run directory written by 'audiorec train' (command recognition)")
    ad.add_argument("--data", nargs="+", required=True,
                    help="the speaker's recordings: audio files, folders of them (searched recursively) or .jsonl manifests")
    ad.add_argument("--out", required=True, help="the adapted run directory to write")
    ad.add_argument("--max-clips", type=int, help="use at most this many recordings, drawn at random; all when not given")
    ad.add_argument("--seed", type=int, default=0, help="chooses the recordings when there are more than --max-clips")
    ad.add_argument("--weight", type=float, default=1.0,
                    help="share of the recordings' statistics in the adapted ones: 1 replaces the trained statistics; "
                    "0.5 is safer when the recordings cover only a few of the commands")


def _add_bench_command(sub) -> None:
    from audiorec.bench import DEFAULT_MODELS, LOSO_MAX_SPEAKERS

    bench = sub.add_parser("bench", help="compare models: accuracy, size, compute, latency, training time")
    bench_sub = bench.add_subparsers(dest="subcommand", required=True, metavar="{models}")
    models = bench_sub.add_parser(
        "models",
        help="train, test, export and time each model on each corpus; write a Markdown and CSV table",
        description="Train every model with the same recipe on every corpus (leave-one-speaker-out for "
        f"corpora with at most {LOSO_MAX_SPEAKERS} speakers, else the speaker split), export each to ONNX, "
        "count its parameters and multiply-accumulates, time it in ONNX Runtime (1 thread, batch 1), and "
        "write OUT/models.{md,csv,json} and OUT/accuracy_vs_parameters.png. Finished trainings are "
        "reused, so running the same command again resumes.",
        epilog="overrides: any config key as key=value, applied to every model (e.g. train.max_epochs=20).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    models.add_argument("--data", action="append", required=True,
                        help="corpus folder or .jsonl manifest; repeat for several corpora")
    models.add_argument("--out", required=True, help="output folder (runs, exported models, tables)")
    models.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="comma-separated NAME or NAME:SIZE (e.g. bc_resnet:3,ds_cnn:M)")
    models.add_argument("--protocol", default="auto", choices=["auto", "loso", "split"],
                        help=f"auto: loso for corpora with at most {LOSO_MAX_SPEAKERS} speakers, else split")
    models.add_argument("--latency-runs", type=int, default=100, help="timed calls per model")
    models.add_argument("--finished-only", action="store_true",
                        help="train nothing: tabulate what has finished (for a benchmark still running)")
    _add_training_options(models, model=False)


def _add_augment_command(sub) -> None:
    aug = sub.add_parser(
        "augment",
        help="write augmented copies of a corpus (offline augmentation)",
        description="Write COPIES augmented versions of every audio file under IN_DIR to the same "
        "relative place in OUT_DIR as <name>-aug<k>.wav (16 kHz, 16-bit), plus the originals, and "
        "record in OUT_DIR/augment_log.jsonl which effects, with which parameters, made each copy. "
        "The effects, probabilities and ranges are the training config's 'augment' section.",
        epilog="examples: audiorec augment data data_aug --copies 4 augment.pitch_shift.p=0.8 "
        "augment.background_noise.paths=[../shared/data/noise]",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    aug.add_argument("in_dir", help="corpus folder to read (never modified)")
    aug.add_argument("out_dir", help="folder to write")
    aug.add_argument("--copies", type=int, default=2, help="augmented versions per file")
    aug.add_argument("--seed", type=int, default=0)
    aug.add_argument("--no-originals", action="store_true", help="write only the augmented copies")
    aug.add_argument("--config", help="YAML config file (its augment section is used)")
    aug.add_argument("--quiet", action="store_true", help="no progress bar")
    aug.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. augment.reverb.p=0.5")


def _add_config_command(sub) -> None:
    cfg = sub.add_parser(
        "config",
        help="print the resolved training configuration as YAML",
        description="Print every configuration key with its value: the defaults, then --config, then "
        "overrides. Save the output as a starting point for --config.",
    )
    cfg.add_argument("--config", help="YAML config file")
    cfg.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def _add_quickstart_command(sub) -> None:
    qs = sub.add_parser(
        "quickstart",
        help="synthesise a corpus with espeak-ng, train, evaluate on held-out voices, recognise",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    qs.add_argument("--workdir", default="quickstart", help="where the corpus and the run go")
    qs.add_argument("--max-epochs", type=int, default=25)
    qs.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_listen_command(sub) -> None:
    from audiorec.streaming import DEFAULT_HOP_MS, DEFAULT_REFRACTORY_MS, DEFAULT_SMOOTH_MS, DEFAULT_THRESHOLD

    li = sub.add_parser(
        "listen",
        help="detect commands in a long recording or from the microphone, with timestamps",
        description="Slide the model's window over the audio every --hop-ms, average each command's "
        "posterior over --smooth-ms, and print a line 'TIME s  LABEL  SCORE' when it rises across "
        "--threshold; after a detection none fires for --refractory-ms. _silence_ and _unknown_ never fire. "
        "TIME is seconds from the start, near the end of the word. With --timeline (from 'audiorec data "
        "stream') the detections are scored, and each false accept is printed with its cause and the word "
        "nearest to it: OUT/metrics.json (detection rate, false accepts per hour and their list, "
        "real-time factor), OUT/det_curve.csv and OUT/det_curve.png (miss rate against false accepts per "
        "hour over thresholds). A .onnx MODEL runs without PyTorch.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    li.add_argument("model", metavar="MODEL", help=".onnx file from 'audiorec export', or a run directory (needs PyTorch)")
    source = li.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="audio file to search (any supported format, resampled to the model's rate)")
    source.add_argument("--mic", action="store_true", help="listen to the default microphone (needs 'pip install audiorec[mic]')")
    li.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="smoothed posterior a command must reach")
    li.add_argument("--smooth-ms", type=float, default=DEFAULT_SMOOTH_MS, help="moving-average span of the posteriors")
    li.add_argument("--refractory-ms", type=float, default=DEFAULT_REFRACTORY_MS, help="no second detection within this time")
    li.add_argument("--hop-ms", type=float, default=DEFAULT_HOP_MS, help="time between windows")
    li.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    li.add_argument("--json", action="store_true", help="one JSON object per detection")
    li.add_argument("--timeline", help="ground-truth timeline.csv of --file: score the detections")
    li.add_argument("--tolerance-s", type=float, default=0.5, help="scoring: how far outside a word a detection still counts")
    li.add_argument("--out", help="folder for the scores (default: the timeline's folder)")
    li.add_argument("--seconds", type=float, help="--mic: stop after this much audio (default: at Ctrl-C)")


def _add_serve_command(sub) -> None:
    from audiorec.streaming import DEFAULT_THRESHOLD

    sv = sub.add_parser(
        "serve",
        help="web page and HTTP/WebSocket API: record or upload a clip, see the answer; record a dataset",
        description="Serve MODEL over HTTP. Pages: / (record or upload a clip; the label, top-k "
        "probabilities, waveform and spectrogram; continuous listening) and /record (the recording "
        "studio: prompts each label N times and saves the takes under --dataset-dir, ready for "
        "'audiorec train'). API: POST /api/v1/recognize (audio in any format, as a multipart 'file' "
        "or the raw body), GET /api/v1/model, GET /healthz, WS /api/v1/stream (16-bit PCM in, "
        "detections out); the OpenAPI schema at /openapi.json, docs at /docs. A .onnx MODEL runs "
        "without PyTorch; needs 'pip install audiorec[serve]'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sv.add_argument("model", metavar="MODEL", help=".onnx file from 'audiorec export', or a run directory (needs PyTorch)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--max-upload-mb", type=float, default=20.0, help="larger uploads get 413")
    sv.add_argument("--max-duration-s", type=float, default=30.0, help="longer audio gets 413")
    sv.add_argument("--dataset-dir", help="folder where the recording studio saves takes (off without it)")
    sv.add_argument("--token", default=os.environ.get("AUDIOREC_TOKEN"),
                    help="require 'Authorization: Bearer TOKEN' on the API (default: $AUDIOREC_TOKEN; none: open)")
    sv.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="threads that decode and recognise")
    sv.add_argument("--timeout-s", type=float, default=30.0, help="a request taking longer gets 503")
    sv.add_argument("--top-k", type=int, default=5, help="classes listed per answer")
    sv.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="detection threshold of the stream")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``audiorec`` command."""
    parser = argparse.ArgumentParser(
        prog="audiorec",
        description="Build your own speech recognizer: import recordings, train, evaluate, recognise.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from audiorec import __version__

    parser.add_argument("--version", action="version", version=f"audiorec {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{quickstart,data,plot,train,recognize,transcribe,evaluate,export,listen,serve,cv,adapt,bench,augment,config}"
    )
    _add_quickstart_command(sub)
    _add_data_commands(sub)
    _add_plot_command(sub)
    _add_train_command(sub)
    _add_recognize_command(sub)
    _add_transcribe_command(sub)
    _add_evaluate_command(sub)
    _add_export_command(sub)
    _add_cv_command(sub)
    _add_adapt_command(sub)
    _add_bench_command(sub)
    _add_augment_command(sub)
    _add_config_command(sub)
    _add_listen_command(sub)
    _add_serve_command(sub)
    return parser


def _cmd_data_import(args) -> int:
    from audiorec.data.corpora import import_corpus
    from audiorec.data.manifest import write_manifest
    from audiorec.run import write_json

    result = import_corpus(args.root, args.layout, _validation_config(args))
    out = Path(args.out)
    write_manifest(out, result.utterances)
    report = out.with_name(out.stem + ".report.json")
    summary = result.summary()
    write_json(report, summary)
    print(f"layout {result.layout}: kept {summary['n_kept']} files, excluded {summary['n_rejected']}")
    for path, reason in result.rejected:
        print(f"  excluded {path}: {reason}")
    if "n_words" in summary:
        subsets = "; ".join(f"{name}: {v['n_utterances']} utterances, {v['n_words']} words, {v['n_speakers']} speakers"
                            for name, v in summary["subsets"].items())
        print(f"transcripts: {summary['n_words']} words" + (f" ({subsets})" if subsets else ""))
        print(f"text normalisation: {summary['text_normalisation']}")
    else:
        print(f"labels: {', '.join(f'{k} ({v})' for k, v in summary['labels'].items())}")
    print(f"speakers: {summary['n_speakers']}; sample rates (Hz: files): {summary['sample_rates']}"
          f"; total {summary['total_duration_s'] / 60:.1f} min")
    print(f"wrote {out} and {report}")
    return 0


def _cmd_data_report(args) -> int:
    from audiorec.data.report import write_report

    out, report = write_report(args.source, args.out, args.layout, _validation_config(args),
                               args.clips_per_label, args.max_labels, progress=not args.quiet)
    if report.texts:
        words = [w for c in report.clips for w in report.texts.get(c.path, "").split()]
        content = f"{len(words)} words, a vocabulary of {len(set(words))}"
    else:
        content = f"{len({c.label for c in report.clips})} labels"
    print(f"{len(report.clips)} clips, {content}, {len({c.speaker for c in report.clips} - {None})} "
          f"speakers; {len(report.rejected)} files excluded")
    print(f"wrote {out}")
    return 0


def _cmd_plot(args) -> int:
    from audiorec.config import load_config
    from audiorec.plots.files import plot_corpus, plot_file

    features = load_config(args.config, args.overrides).features
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    path = Path(args.path)
    if path.is_file() and path.suffix.lower() != ".jsonl":
        for written in plot_file(path, args.out, args.kind, formats, features):
            print(f"wrote {written}")
        return 0
    result = plot_corpus(path, args.out, args.kind, formats, args.clips_per_label, args.max_labels,
                         args.per_file, args.layout, features, progress=not args.quiet)
    for bad, reason in result.errors:
        print(f"error: {bad}: {reason} (skipped)", file=sys.stderr)
    if result.note:
        print(f"note: {result.note} (--max-labels to change)")
    grids = [p for p in result.paths if p.parent == Path(args.out)]
    print(f"wrote {', '.join(map(str, grids))}" + (f" and {len(result.paths) - len(grids)} per-file images under "
                                                   f"{Path(args.out) / 'files'}" if args.per_file else ""))
    return 1 if result.errors else 0


def _cmd_data_synth(args) -> int:
    from audiorec.data.synth import synthesize_commands

    out = synthesize_commands(args.out, n_speakers=args.speakers, takes=args.takes, seed=args.seed)
    print(f"wrote {sum(1 for _ in out.rglob('*.wav'))} clips under {out}")
    return 0


def _print_results(metrics: dict, run: Path) -> None:
    from audiorec.metrics import format_confusion_matrix

    if "best_val_wer" in metrics:
        if "wer" not in metrics:
            print(f"no test split; best validation WER {metrics['best_val_wer']:.4f}")
            return
        print(f"\ntest WER {100 * metrics['wer']:.2f}% ({metrics['substitutions']} substitutions, {metrics['deletions']} "
              f"deletions, {metrics['insertions']} insertions in {metrics['n_words']} words), CER {100 * metrics['cer']:.2f}%, "
              f"greedy decoding, on {metrics['n_test']} utterances; trained in {metrics['train_time_s']:.0f} s, "
              f"real-time factor {metrics['rtf']:.3f} (1 thread)")
        print(f"run directory: {run} (metrics.json, transcripts.jsonl, tokenizer.json, checkpoints/)")
        return
    if "test_accuracy" not in metrics:
        print(f"no test split; best validation accuracy {metrics['best_val_accuracy']:.4f}")
        return
    speakers = metrics["test_speakers"] or f"{metrics['n_speakers']['test']} speakers"
    print(f"\ntest accuracy {metrics['test_accuracy']:.4f} on {metrics['n_test']} clips "
          f"of held-out speakers {speakers} (macro F1 {metrics['macro_f1']:.4f}; "
          f"trained in {metrics['train_time_s']:.0f} s)")
    print(format_confusion_matrix(metrics["confusion_matrix"], metrics["confusion_labels"]))
    print(f"run directory: {run} (metrics.json, confusion_matrix.png, checkpoints/)")


def _training_config(args):
    """The config of ``train`` and ``cv``: file, overrides, then the dedicated flags."""
    from audiorec.config import load_config

    overrides = list(args.overrides)
    if getattr(args, "test_speakers", None):
        speakers = [s.strip() for s in args.test_speakers.split(",") if s.strip()]
        overrides.append(f"data.test_speakers=[{','.join(speakers)}]")
    if getattr(args, "task", None) is not None:
        overrides.append(f"task={args.task}")
    if getattr(args, "model", None) is not None:
        overrides.append(f"model.name={args.model}")
    if getattr(args, "teacher", None) is not None:
        overrides.append(f"train.teacher={args.teacher}")
    if getattr(args, "extra_train", None) is not None:
        overrides.append(f"data.extra_train={args.extra_train}")
    if args.max_epochs is not None:
        overrides.append(f"train.max_epochs={args.max_epochs}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    return load_config(args.config, overrides)


def _cmd_train(args) -> int:
    from audiorec.train import train

    metrics = train(args.data, args.out, _training_config(args), progress=not args.quiet)
    _print_results(metrics, Path(args.out))
    return 0


def _each_file(paths: list[str], as_json: bool, answer, line) -> int:
    """Run ``answer(path)`` on every file and print ``line(path, result)`` or the result's JSON; a
    file that cannot be decoded gets an error line naming it and the others go on (exit code 1)."""
    from audiorec.audio import AudioError

    failed = 0
    for path in paths:
        try:
            result = answer(path)
        except AudioError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
            if as_json:
                print(json.dumps({"path": path, "error": e.reason}), flush=True)
            continue
        print(json.dumps(result.to_dict(), ensure_ascii=False) if as_json else line(path, result), flush=True)
    return 1 if failed else 0


def _cmd_recognize(args) -> int:
    from audiorec.runtime import Recognizer

    def line(path, result):
        others = ", ".join(f"{l} {s:.3f}" for l, s in result.top_k[1:])
        return f"{path}\t{result.label}\t{result.score:.3f}" + (f"\t({others})" if others else "")

    recognizer = Recognizer.load(args.run, top_k=args.top_k)
    return _each_file(args.files, args.json, recognizer.recognize_file, line)


def _cmd_transcribe(args) -> int:
    from audiorec.runtime import Transcriber

    transcriber = Transcriber.load(args.run, threads=args.threads)
    return _each_file(args.files, args.json, transcriber.transcribe_file, lambda path, result: f"{path}\t{result.text}")


def _cmd_evaluate(args) -> int:
    from audiorec.augment import load_noise
    from audiorec.config import load_config
    from audiorec.data.dataset import load_waveforms
    from audiorec.evaluate import evaluate, evaluate_noise
    from audiorec.runtime import Recognizer
    from audiorec.run import RunDir, write_json
    from audiorec.train import prepare_data

    run = RunDir(Path(args.run))
    if run.tokenizer.is_file():
        return _evaluate_asr(run, args)
    recognizer = Recognizer.from_run(run.root)
    noises = load_noise(args.noise, recognizer.sample_rate) if args.noise else None  # fail before decoding clips
    data = args.data or run.splits / "test.jsonl"
    utterances = prepare_data(data, load_config(run.config if run.config.is_file() else None))
    out = Path(args.out) if args.out else run.root / "evaluate"
    waveforms = load_waveforms(utterances, recognizer.sample_rate)
    if not args.noise:
        metrics = evaluate(recognizer, utterances, waveforms, out)
        write_json(out / "metrics.json", metrics)
        print(f"accuracy {metrics['accuracy']:.4f} on {metrics['n']} clips of {data}; wrote {out}")
        return 0
    try:
        snrs = [float(s) for s in args.snr_db.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--snr-db {args.snr_db!r}: expected comma-separated numbers, e.g. 20,10,5,0") from None
    metrics = evaluate_noise(recognizer, utterances, waveforms, noises, snrs, out, seed=args.seed)
    print(f"{metrics['n']} clips of {data}, noise: {', '.join(metrics['noises'])}")
    print(f"  clean     accuracy {metrics['clean_accuracy']:.4f}")
    for snr, acc, drop in zip(metrics["snr_db"], metrics["accuracy"], metrics["drop"]):
        print(f"  {snr:5g} dB  accuracy {acc:.4f}  (drop {100 * drop:+.1f} points)")
    print(f"wrote {out / 'metrics.json'} and {out / 'accuracy_vs_snr.png'}")
    return 0


def _evaluate_asr(run, args) -> int:
    """``evaluate`` of a speech-recognition run: WER and CER of greedy decoding, transcripts.jsonl."""
    from audiorec.config import load_config
    from audiorec.data.dataset import load_waveforms
    from audiorec.evaluate import evaluate_transcripts
    from audiorec.runtime import Transcriber
    from audiorec.run import write_json
    from audiorec.train import prepare_data

    if args.noise:
        raise ValueError("--noise is for command recognizers; a speech-recognition run is evaluated on clean audio only")
    transcriber = Transcriber.from_run(run.root)
    data = args.data or run.splits / "test.jsonl"
    utterances = prepare_data(data, load_config(run.config))
    out = Path(args.out) if args.out else run.root / "evaluate"
    metrics = evaluate_transcripts(transcriber, utterances, load_waveforms(utterances, transcriber.sample_rate), out,
                                   progress=True)
    write_json(out / "metrics.json", metrics)
    print(f"WER {100 * metrics['wer']:.2f}% ({metrics['substitutions']} S, {metrics['deletions']} D, "
          f"{metrics['insertions']} I in {metrics['n_words']} words), CER {100 * metrics['cer']:.2f}% on "
          f"{metrics['n_utterances']} utterances of {data}; wrote {out}")
    return 0


def _cmd_export(args) -> int:
    from audiorec.export import export_run

    r = export_run(args.run, args.out, int8=args.int8, max_clips=args.max_clips,
                   calibration_clips=args.calibration_clips, progress=not args.quiet, ensemble=args.ensemble)
    print(f"wrote {r.fp32_model} ({r.fp32_size_bytes / 1024:.0f} KiB, fp32)")
    if r.wer_torch is not None:
        print(f"parity with PyTorch on {r.n_clips} utterances: max |diff| of token probabilities "
              f"{r.parity_max_abs_diff:.2e}, identical transcripts {100 * r.parity_top1_agreement:.1f}%")
        print(f"WER: PyTorch {100 * r.wer_torch:.2f}%, ONNX {100 * r.wer_onnx:.2f}%; "
              f"CER: PyTorch {100 * r.cer_torch:.2f}%, ONNX {100 * r.cer_onnx:.2f}%")
    else:
        print(f"parity with PyTorch on {r.n_clips} clips: max |diff| {r.parity_max_abs_diff:.2e}, "
              f"top-1 agreement {100 * r.parity_top1_agreement:.1f}%")
    if r.accuracy_onnx is not None:
        print(f"accuracy: PyTorch {r.accuracy_torch:.4f}, ONNX fp32 {r.accuracy_onnx:.4f}")
    if args.int8:
        print(f"wrote {r.model} ({r.size_bytes / 1024:.0f} KiB, int8, {r.fp32_size_bytes / r.size_bytes:.1f}x smaller); "
              f"top-1 agreement with PyTorch {100 * r.int8_top1_agreement:.1f}%"
              + (f", accuracy {r.accuracy_int8:.4f} ({100 * (r.accuracy_int8 - r.accuracy_onnx):+.1f} points)"
                 if r.accuracy_int8 is not None else ""))
    print(f"report: {Path(r.model).with_name(Path(r.model).stem + '.export.json')}")
    return 0


def _cmd_cv(args) -> int:
    from audiorec.config import ConfigError
    from audiorec.cv import cross_validate

    if any(o.strip().startswith("data.val_fraction=") for o in args.overrides):
        raise ConfigError("cv sets each fold's validation share itself: use --val-fraction instead of data.val_fraction")
    summary = cross_validate(args.data, args.out, _training_config(args), args.folds, progress=not args.quiet,
                             val_fraction=args.val_fraction, adapt_clips=args.adapt_clips)
    print(f"\nleave-one-speaker-out over {len(summary['folds'])} speakers:")
    for fold in summary["folds"]:
        adapted = fold.get("adapted")
        print(f"  {fold['speaker']:>12}  {fold['test_accuracy']:.4f}  ({fold['n_test']} clips)"
              + (f"  adapted {adapted['accuracy']:.4f} (unadapted {adapted['unadapted_accuracy']:.4f} on the same "
                 f"{adapted['n_test']} clips)" if adapted else ""))
    print(f"mean accuracy {summary['mean_accuracy']:.4f} (std {summary['std_accuracy']:.4f}), "
          f"worst {summary['worst_accuracy']:.4f} ({summary['worst_speaker']})")
    if "adapted" in summary:
        a = summary["adapted"]
        print(f"adapted to {a['n_adapt']} unlabelled clips of each speaker: mean accuracy {a['mean_accuracy']:.4f} "
              f"(unadapted {a['unadapted_mean_accuracy']:.4f} on the same clips), worst {a['worst_accuracy']:.4f} "
              f"({a['worst_speaker']})")
    print(f"wrote {Path(args.out) / 'metrics.json'} and {Path(args.out) / 'folds.png'}")
    return 0


def _cmd_adapt(args) -> int:
    from audiorec.adapt import adapt_run

    record = adapt_run(args.run, args.data, args.out, max_clips=args.max_clips, seed=args.seed, weight=args.weight)
    print(f"adapted {record['batch_norm_layers']} batch-norm layers of {args.run} to {record['n_clips']} clips; "
          f"wrote {args.out}")
    print(f"next: audiorec recognize {args.out} clip.wav   or   audiorec export {args.out}")
    return 0


def _cmd_bench_models(args) -> int:
    from audiorec.bench import bench_models

    out = Path(args.out)
    rows = bench_models(args.data, out, [m for m in args.models.split(",") if m.strip()], _training_config(args),
                        args.protocol, args.latency_runs, args.finished_only, progress=not args.quiet)
    print()
    print((out / "models.md").read_text(encoding="utf-8"))
    print(f"{len(rows)} models; wrote {out / 'models.md'}, models.csv, models.json and accuracy_vs_parameters.png")
    return 0


def _cmd_augment(args) -> int:
    from audiorec.config import load_config
    from audiorec.data.offline_augment import augment_corpus

    config = load_config(args.config, args.overrides)
    result = augment_corpus(args.in_dir, args.out_dir, args.copies, config.augment, seed=args.seed,
                            include_originals=not args.no_originals, sample_rate=config.features.sample_rate,
                            progress=not args.quiet)
    for error in result["errors"]:
        print(f"error: {error['path']}: {error['error']} (skipped)", file=sys.stderr)
    print(f"{result['n_files']} files, {result['n_written']} written to {args.out_dir}; record of effects: {result['log']}")
    return 1 if result["errors"] else 0


def _cmd_config(args) -> int:
    from audiorec.config import load_config, to_yaml

    print(to_yaml(load_config(args.config, args.overrides)), end="")
    return 0


def _cmd_quickstart(args) -> int:
    from audiorec.config import load_config
    from audiorec.data.synth import synthesize_commands
    from audiorec.runtime import Recognizer
    from audiorec.train import train

    workdir = Path(args.workdir)
    data, run = workdir / "data", workdir / "run"
    print(f"1/3 synthesising a spoken-command corpus with espeak-ng into {data} ...")
    synthesize_commands(data, progress=not args.quiet)
    print(f"2/3 training a CNN command recognizer into {run} (held-out voices for test) ...")
    config = load_config(None, [f"train.max_epochs={args.max_epochs}"])
    metrics = train(data, run, config, progress=not args.quiet)
    _print_results(metrics, run)
    test = [json.loads(line) for line in (run / "splits" / "test.jsonl").read_text().splitlines()]
    test_clip = next((u for u in test if not u["label"].startswith("_")), test[0])["path"]
    result = Recognizer.from_run(run).recognize_file(test_clip)
    print(f"\n3/3 recognising a held-out clip: {test_clip}\n    -> {result.label} ({result.score:.3f})")
    print(f"""
next steps, on real recordings:
  .venv/bin/audiorec recognize {run} your_clip.wav
  .venv/bin/audiorec export {run} --int8      # {run}/model.onnx, runs without PyTorch
  .venv/bin/audiorec serve {run}/model.onnx --dataset-dir my_recordings   # web page: record, see the answer
  .venv/bin/audiorec train --data ../shared/data/fsdd --out runs/fsdd --test-speakers george
  .venv/bin/audiorec train --data ../shared/data/speech_commands_v2_test --out runs/sc12
  .venv/bin/audiorec train --data path/to/your/recordings --out runs/mine   # DIR/<label>/<speaker>_<n>.wav
""")
    return 0


def _cmd_data_commands(args) -> int:
    from collections import Counter
    from dataclasses import replace

    from audiorec.config import Config
    from audiorec.data.manifest import write_manifest
    from audiorec.data.transcribed import command_clips
    from audiorec.train import prepare_data

    source = Path(args.source)
    config = Config()
    config = replace(config, data=replace(config.data, layout=args.layout, validation=_validation_config(args)))
    utterances = prepare_data(source, config, either=True)
    if args.subset is not None:
        subsets = sorted({u.subset for u in utterances if u.subset is not None})
        utterances = [u for u in utterances if u.subset == args.subset]
        if not utterances:
            raise ValueError(f"{source}: no utterances in subset {args.subset!r} (its subsets: {', '.join(subsets) or 'none'})")
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    clips = command_clips(utterances, labels)
    if not clips:
        raise ValueError(f"{source}: none of its {len(utterances)} utterances is one command or free of all of {', '.join(labels)}")
    write_manifest(args.out, clips)
    counts = Counter(c.label for c in clips)
    print(f"{len(clips)} of {len(utterances)} utterances kept ({len(utterances) - len(clips)} hold a command among "
          f"other words): {', '.join(f'{k} ({v})' for k, v in sorted(counts.items()))}; "
          f"{len({c.speaker for c in clips} - {None})} speakers")
    print(f"wrote {args.out}")
    return 0


def _cmd_data_stream(args) -> int:
    from audiorec.data.stream import build_stream

    stream = build_stream(args.data, args.noise, args.out, duration_s=60 * args.minutes, snr_db=args.snr_db,
                          min_gap_s=args.min_gap_s, max_gap_s=args.max_gap_s, seed=args.seed, progress=not args.quiet)
    negatives = sum(e.label == "_unknown_" for e in stream.events)
    print(f"{len(stream.events) - negatives} commands and {negatives} _unknown_ words in {stream.duration_s / 60:.1f} min "
          f"at {args.snr_db:g} dB SNR")
    print(f"wrote {stream.audio}, {stream.timeline} and {stream.info}")
    return 0


def _print_detection(detection, as_json: bool) -> None:
    if as_json:
        print(json.dumps(detection.to_dict()), flush=True)
    else:
        print(f"{detection.time_s:.2f} s  {detection.label}  {detection.score:.2f}", flush=True)


def _cmd_listen(args) -> int:
    import time

    from audiorec.audio import load_audio
    from audiorec.runtime import Recognizer
    from audiorec.streaming import StreamingDetector

    if args.timeline and args.mic:
        raise ValueError("--timeline scores a --file; it cannot be used with --mic")
    if args.threads < 1:
        raise ValueError(f"--threads {args.threads}: must be at least 1")
    recognizer = Recognizer.load(args.model, threads=args.threads)
    detector = StreamingDetector(recognizer, hop_ms=args.hop_ms, smooth_ms=args.smooth_ms,
                                 threshold=args.threshold, refractory_ms=args.refractory_ms)
    if args.mic:
        return _listen_mic(detector, args)
    waveform = load_audio(args.file, recognizer.sample_rate)
    duration_s = len(waveform) / recognizer.sample_rate
    started = time.perf_counter()
    times_s, probs = detector.posteriors(waveform)
    detections = detector.detections_from_posteriors(times_s, probs)
    rtf = (time.perf_counter() - started) / duration_s if duration_s else 0.0
    for detection in detections:
        _print_detection(detection, args.json)
    if not len(times_s):
        print(f"note: {args.file} is shorter than one window ({recognizer.clip_samples / recognizer.sample_rate:g} s): "
              "nothing to detect", file=sys.stderr)
    print(f"{len(detections)} detections in {duration_s:.1f} s of audio; real-time factor {rtf:.4f} "
          f"({args.threads} thread{'s' if args.threads > 1 else ''})", file=sys.stderr)
    if args.timeline:
        _score_listen(args, detector, times_s, probs, detections, duration_s, rtf)
    return 0


MAX_FALSE_ACCEPTS_SHOWN = 20  # listen --timeline prints at most this many; metrics.json has them all


def _score_listen(args, detector, times_s, probs, detections, duration_s: float, rtf: float) -> None:
    """``listen --timeline``: detection metrics, the DET curve as CSV and PNG, metrics.json."""
    from audiorec.data.stream import read_timeline
    from audiorec.metrics import DET_THRESHOLDS, best_detection_rate, det_curve, detection_metrics, write_det_curve_csv
    from audiorec.run import write_json

    timeline = read_timeline(args.timeline)
    out = Path(args.out) if args.out else Path(args.timeline).parent
    metrics = detection_metrics(detections, timeline, duration_s, args.tolerance_s, negative_labels=detector.ignore)
    thresholds = sorted(set(DET_THRESHOLDS) | {detector.threshold})
    curve = det_curve(times_s, probs, detector, timeline, duration_s, thresholds, args.tolerance_s)
    written = [write_det_curve_csv(curve, out / "det_curve.csv")]
    try:
        from audiorec.plots.results import plot_det_curve
    except ImportError as e:
        print(f"note: det_curve.png needs matplotlib ({e}); pip install 'audiorec[train]'", file=sys.stderr)
    else:
        written.append(plot_det_curve(curve, out / "det_curve.png", operating_threshold=detector.threshold,
                                      title=f"{Path(args.file).name}: {metrics['n_keywords']} commands, {duration_s / 3600:.2f} h"))
    best = best_detection_rate(curve, 1.0)
    summary = {
        "model": str(args.model), "file": str(args.file), "timeline": str(args.timeline),
        "threshold": detector.threshold, "hop_ms": detector.hop_ms, "smooth_ms": detector.smooth_ms,
        "refractory_ms": detector.refractory_ms, "threads": args.threads, "real_time_factor": round(rtf, 5),
        **metrics,
        "detection_rate_at_1_false_accept_per_hour": best["detection_rate"] if best else 0.0,
        "threshold_at_1_false_accept_per_hour": best["threshold"] if best else None,
    }
    written.append(write_json(out / "metrics.json", summary))
    print(f"detection rate {100 * metrics['detection_rate']:.1f}% ({metrics['hits']} of {metrics['n_keywords']} commands), "
          f"{metrics['false_accepts']} false accepts = {metrics['false_accepts_per_hour']:.1f} per hour "
          f"(threshold {detector.threshold:g})")
    for fa in metrics["false_accept_list"][:MAX_FALSE_ACCEPTS_SHOWN]:
        near = fa["nearest"]
        print(f"  false accept {fa['time_s']:9.2f} s  {fa['label']:<10} {fa['score']:.3f}  {fa['cause']}"
              + (f"; nearest word {near['label']} {near['start_s']:.2f}-{near['end_s']:.2f} s" if near else "")
              + (f" ({Path(near['path']).name})" if near and near.get("path") else ""))
    if len(metrics["false_accept_list"]) > MAX_FALSE_ACCEPTS_SHOWN:
        print(f"  ... {len(metrics['false_accept_list']) - MAX_FALSE_ACCEPTS_SHOWN} more in metrics.json (false_accept_list)")
    if best:
        print(f"at <= 1 false accept per hour: detection rate {100 * best['detection_rate']:.1f}% (threshold {best['threshold']:g})")
    print(f"wrote {', '.join(map(str, written))}")


def _listen_mic(detector, args) -> int:
    """``listen --mic``: feed the default input device to the detector until Ctrl-C or ``--seconds``."""
    import queue

    try:
        import sounddevice
    except (ImportError, OSError) as e:  # OSError: the package is there but the PortAudio library is not
        raise ValueError(f"--mic needs the sounddevice package and the PortAudio library ({e}); "
                         "pip install 'audiorec[mic]' (and e.g. apt install libportaudio2)") from e
    try:
        device = sounddevice.query_devices(kind="input")
    except Exception as e:  # sounddevice raises PortAudioError or ValueError when there is no input device
        raise ValueError(f"--mic: no microphone found ({e})") from e
    chunks: queue.Queue = queue.Queue()

    def on_audio(indata, frames, time_info, status) -> None:  # PortAudio's thread: hand over, no work here
        chunks.put(indata[:, 0].copy())

    print(f"listening on {device['name']} at {detector.sample_rate} Hz; Ctrl-C to stop", file=sys.stderr)
    try:
        with sounddevice.InputStream(samplerate=detector.sample_rate, channels=1, dtype="float32",
                                     blocksize=detector.hop_samples, callback=on_audio):
            while args.seconds is None or detector.stream_time_s < args.seconds:
                for detection in detector.feed(chunks.get()):
                    _print_detection(detection, args.json)
    except KeyboardInterrupt:
        pass
    except sounddevice.PortAudioError as e:
        raise ValueError(f"--mic: cannot record from {device['name']} at {detector.sample_rate} Hz ({e})") from e
    print(f"stopped after {detector.stream_time_s:.1f} s", file=sys.stderr)
    return 0


def _cmd_serve(args) -> int:
    import uvicorn

    from audiorec.runtime import Recognizer
    from audiorec.serve import ServeConfig, create_app

    config = ServeConfig(max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration_s, token=args.token,
                         workers=args.workers, timeout_s=args.timeout_s, top_k=args.top_k,
                         dataset_dir=Path(args.dataset_dir) if args.dataset_dir else None, threshold=args.threshold)
    recognizer = Recognizer.load(args.model, top_k=args.top_k, threads=1)
    app = create_app(recognizer, config, source=args.model)
    print(f"serving {args.model} ({len(recognizer.labels)} labels) at http://{args.host}:{args.port}/ "
          f"(studio: /record{'' if config.dataset_dir else ', off without --dataset-dir'}; API docs: /docs)",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


COMMANDS = {
    ("data", "import"): _cmd_data_import,
    ("data", "synth"): _cmd_data_synth,
    ("data", "report"): _cmd_data_report,
    ("data", "stream"): _cmd_data_stream,
    ("data", "commands"): _cmd_data_commands,
    ("listen", None): _cmd_listen,
    ("plot", None): _cmd_plot,
    ("train", None): _cmd_train,
    ("recognize", None): _cmd_recognize,
    ("transcribe", None): _cmd_transcribe,
    ("quickstart", None): _cmd_quickstart,
    ("config", None): _cmd_config,
    ("evaluate", None): _cmd_evaluate,
    ("export", None): _cmd_export,
    ("cv", None): _cmd_cv,
    ("adapt", None): _cmd_adapt,
    ("bench", "models"): _cmd_bench_models,
    ("augment", None): _cmd_augment,
    ("serve", None): _cmd_serve,
}


# Top-level modules of the [train] extra (pyproject.toml); the base install lacks them.
TRAIN_EXTRA_MODULES = {"torch", "lightning", "pytorch_lightning", "librosa", "scipy", "omegaconf", "sklearn",
                       "matplotlib", "audiomentations", "pedalboard", "loudness", "onnx", "onnxscript", "jiwer",
                       "sentencepiece"}


# Top-level modules of the [serve] extra.
SERVE_EXTRA_MODULES = {"fastapi", "fastapi_offline", "uvicorn", "starlette", "multipart", "python_multipart", "websockets"}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``audiorec`` command; returns the exit code.

    Known errors (bad audio, config, data, run directory) print one ``error:`` line naming the
    file or value and exit with 2; recognition failures exit with 1.
    """
    from audiorec.audio import AudioError
    from audiorec.data.synth import SynthError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse fills a positional list once, so key=value overrides written after an option
    # (``augment IN OUT --copies 4 augment.reverb.p=0.5``) come back unparsed: add them here.
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = COMMANDS[(args.command, getattr(args, "subcommand", None))]
    try:
        return handler(args)
    except (AudioError, SynthError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in SERVE_EXTRA_MODULES:
            print(f"error: 'audiorec serve' needs {e.name}: pip install 'audiorec[serve]'", file=sys.stderr)
            return 2
        if (e.name or "").split(".")[0] not in TRAIN_EXTRA_MODULES:
            raise
        print(f"error: 'audiorec {args.command}' needs {e.name}, which comes with the training extra: "
              f"pip install 'audiorec[train]' (the base install only recognises with exported .onnx models)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
