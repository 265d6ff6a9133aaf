"""The ``audiorec`` command line: data import, training, recognition and the quickstart."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = """\
examples:
  audiorec quickstart                                   # synthesise a corpus, train, recognise
  audiorec data import ../shared/data/fsdd --out fsdd.jsonl
  audiorec train --data ../shared/data/fsdd --out runs/fsdd --test-speakers george
  audiorec train --data ../shared/data/speech_commands_v2_test --out runs/sc12
  audiorec recognize runs/fsdd clip1.wav clip2.webm --json
  audiorec evaluate runs/sc12 --noise ../shared/data/noise --snr-db 20,10,5,0
  audiorec cv --data ../shared/data/fsdd --folds loso --out runs/fsdd_loso
  audiorec augment my_recordings my_recordings_aug --copies 4
  audiorec plot clip.wav --kind waveform,spectrum,spectrogram --out plots
  audiorec plot ../shared/data/fsdd --kind spectrogram,mel --out plots/fsdd
  audiorec data report ../shared/data/fsdd --out fsdd_report.html
"""


def _add_data_commands(sub) -> None:
    data = sub.add_parser("data", help="import, validate, report on and synthesise corpora")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="{import,report,synth}")
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
    imp.add_argument("--layout", default="auto", choices=["auto", "fsdd", "folders", "speaker_folders"],
                     help="fsdd: <digit>_<speaker>_<n>.wav; folders: DIR/<label>/<file>; "
                     "speaker_folders: DIR/<speaker>/<label>/<file>")
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
    report.add_argument("source", help="corpus folder or .jsonl manifest")
    report.add_argument("--out", required=True, help="HTML file to write")
    report.add_argument("--layout", default="auto", choices=["auto", "fsdd", "folders", "speaker_folders"],
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
        help="train and test a command recognizer",
        description="Train a command recognizer on a corpus folder or manifest, with a speaker-disjoint "
        "train/validation/test split, and write the run directory: config.yaml, labels.json, "
        "checkpoints/, metrics.json, confusion_matrix.{txt,png}, logs/. Running the same command "
        "again resumes an interrupted run.",
        epilog="overrides: any config key as key=value, e.g. train.lr=0.001 features.n_mels=64 "
        "data.clip_ms=1500 ('audiorec config' prints every key).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    tr.add_argument("--data", required=True, help="corpus folder (imported on the fly) or .jsonl manifest")
    tr.add_argument("--out", required=True, help="run directory to write")
    tr.add_argument("--test-speakers", help="comma-separated speakers to hold out for test, e.g. george")
    _add_training_options(tr)


def _add_training_options(parser) -> None:
    """The options ``train`` and ``cv`` share: config file, epochs, seed, quiet, overrides."""
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--max-epochs", type=int, help="override train.max_epochs")
    parser.add_argument("--seed", type=int, help="override train.seed")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def _add_recognize_command(sub) -> None:
    rec = sub.add_parser(
        "recognize",
        help="recognise audio files with a trained run",
        description="Print the recognised command for each file. A file that cannot be read gets an "
        "error line naming it; the others are still recognised, and the exit code is 1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    rec.add_argument("run", help="run directory written by 'audiorec train'")
    rec.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, MP3, M4A, WebM, SPHERE ...)")
    rec.add_argument("--json", action="store_true", help="one JSON object per line")
    rec.add_argument("--top-k", type=int, default=3, help="how many classes to list")


def _add_evaluate_command(sub) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="test a trained run on labelled clips, clean and mixed with noise at several SNRs",
        description="Recognise labelled clips with a trained run and report accuracy. With --noise, "
        "every clip is also mixed with a noise recording at each --snr-db, and metrics.json and "
        "accuracy_vs_snr.png report accuracy per SNR next to clean accuracy.",
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
    _add_training_options(cv)


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
        dest="command", required=True, metavar="{quickstart,data,plot,train,recognize,evaluate,cv,augment,config}"
    )
    _add_quickstart_command(sub)
    _add_data_commands(sub)
    _add_plot_command(sub)
    _add_train_command(sub)
    _add_recognize_command(sub)
    _add_evaluate_command(sub)
    _add_cv_command(sub)
    _add_augment_command(sub)
    _add_config_command(sub)
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
    print(f"labels: {', '.join(f'{k} ({v})' for k, v in summary['labels'].items())}")
    print(f"speakers: {summary['n_speakers']}; sample rates (Hz: files): {summary['sample_rates']}"
          f"; total {summary['total_duration_s'] / 60:.1f} min")
    print(f"wrote {out} and {report}")
    return 0


def _cmd_data_report(args) -> int:
    from audiorec.data.report import write_report

    out, report = write_report(args.source, args.out, args.layout, _validation_config(args),
                               args.clips_per_label, args.max_labels, progress=not args.quiet)
    labels = {c.label for c in report.clips}
    print(f"{len(report.clips)} clips, {len(labels)} labels, {len({c.speaker for c in report.clips} - {None})} "
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


def _cmd_recognize(args) -> int:
    from audiorec.audio import AudioError
    from audiorec.recognize import Recognizer

    recognizer = Recognizer.from_run(args.run, top_k=args.top_k)
    failed = 0
    for path in args.files:
        try:
            result = recognizer.recognize_file(path)
        except AudioError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": path, "error": e.reason}), flush=True)
            continue
        if args.json:
            print(json.dumps(result.to_dict()), flush=True)
        else:
            others = ", ".join(f"{l} {s:.3f}" for l, s in result.top_k[1:])
            print(f"{path}\t{result.label}\t{result.score:.3f}" + (f"\t({others})" if others else ""), flush=True)
    return 1 if failed else 0


def _cmd_evaluate(args) -> int:
    from audiorec.augment import load_noise
    from audiorec.config import load_config
    from audiorec.data.dataset import load_waveforms
    from audiorec.evaluate import evaluate, evaluate_noise
    from audiorec.recognize import Recognizer
    from audiorec.run import RunDir, write_json
    from audiorec.train import prepare_data

    run = RunDir(Path(args.run))
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


def _cmd_cv(args) -> int:
    from audiorec.cv import cross_validate

    summary = cross_validate(args.data, args.out, _training_config(args), args.folds, progress=not args.quiet)
    print(f"\nleave-one-speaker-out over {len(summary['folds'])} speakers:")
    for fold in summary["folds"]:
        print(f"  {fold['speaker']:>12}  {fold['test_accuracy']:.4f}  ({fold['n_test']} clips)")
    print(f"mean accuracy {summary['mean_accuracy']:.4f} (std {summary['std_accuracy']:.4f}), "
          f"worst {summary['worst_accuracy']:.4f} ({summary['worst_speaker']})")
    print(f"wrote {Path(args.out) / 'metrics.json'} and {Path(args.out) / 'folds.png'}")
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
    from audiorec.recognize import Recognizer
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
  .venv/bin/audiorec train --data ../shared/data/fsdd --out runs/fsdd --test-speakers george
  .venv/bin/audiorec train --data ../shared/data/speech_commands_v2_test --out runs/sc12
  .venv/bin/audiorec train --data path/to/your/recordings --out runs/mine   # DIR/<label>/<speaker>_<n>.wav
""")
    return 0


COMMANDS = {
    ("data", "import"): _cmd_data_import,
    ("data", "synth"): _cmd_data_synth,
    ("data", "report"): _cmd_data_report,
    ("plot", None): _cmd_plot,
    ("train", None): _cmd_train,
    ("recognize", None): _cmd_recognize,
    ("quickstart", None): _cmd_quickstart,
    ("config", None): _cmd_config,
    ("evaluate", None): _cmd_evaluate,
    ("cv", None): _cmd_cv,
    ("augment", None): _cmd_augment,
}


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
    handler = COMMANDS[(args.command, getattr(args, "data_command", None))]
    try:
        return handler(args)
    except (AudioError, SynthError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
