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
"""


def _add_data_commands(sub) -> None:
    data = sub.add_parser("data", help="import, validate and synthesise corpora")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="{import,synth}")
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
    imp.add_argument("--min-duration-s", type=float, default=0.1, help="exclude shorter files")
    imp.add_argument("--max-duration-s", type=float, default=30.0, help="exclude longer files")
    imp.add_argument("--silence-dbfs", type=float, default=-80.0, help="exclude files whose peak is below this level")
    imp.add_argument("--max-clipped-fraction", type=float, default=0.25,
                     help="exclude files with more samples at full scale than this fraction")
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
    tr.add_argument("--config", help="YAML config file")
    tr.add_argument("--test-speakers", help="comma-separated speakers to hold out for test, e.g. george")
    tr.add_argument("--max-epochs", type=int, help="override train.max_epochs")
    tr.add_argument("--seed", type=int, help="override train.seed")
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    tr.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


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
    sub = parser.add_subparsers(dest="command", required=True, metavar="{quickstart,data,train,recognize,config}")
    _add_quickstart_command(sub)
    _add_data_commands(sub)
    _add_train_command(sub)
    _add_recognize_command(sub)
    _add_config_command(sub)
    return parser


def _cmd_data_import(args) -> int:
    from audiorec.data.corpora import ValidationConfig, import_corpus
    from audiorec.data.manifest import write_manifest
    from audiorec.run import write_json

    validation = ValidationConfig(
        min_duration_s=args.min_duration_s, max_duration_s=args.max_duration_s,
        silence_dbfs=args.silence_dbfs, max_clipped_fraction=args.max_clipped_fraction,
    )
    result = import_corpus(args.root, args.layout, validation)
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


def _cmd_train(args) -> int:
    from audiorec.config import load_config
    from audiorec.train import train

    overrides = list(args.overrides)
    if args.test_speakers:
        speakers = [s.strip() for s in args.test_speakers.split(",") if s.strip()]
        overrides.append(f"data.test_speakers=[{','.join(speakers)}]")
    if args.max_epochs is not None:
        overrides.append(f"train.max_epochs={args.max_epochs}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    config = load_config(args.config, overrides)
    metrics = train(args.data, args.out, config, progress=not args.quiet)
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
    ("train", None): _cmd_train,
    ("recognize", None): _cmd_recognize,
    ("quickstart", None): _cmd_quickstart,
    ("config", None): _cmd_config,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``audiorec`` command; returns the exit code.

    Known errors (bad audio, config, data, run directory) print one ``error:`` line naming the
    file or value and exit with 2; recognition failures exit with 1.
    """
    from audiorec.audio import AudioError
    from audiorec.data.synth import SynthError

    args = build_parser().parse_args(argv)
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
