"""Compare models: train each on each corpus with its standard protocol, measure it, tabulate.

``bench_models(data, out, models, config)`` is what ``audiorec bench models`` runs. Every model is
trained with the same recipe (``config``, only ``model.name`` and ``model.size`` change), tested
with the corpus's protocol, exported through :func:`audiorec.export.export_run` and timed in the
ONNX runtime. Layout of ``OUT``::

    <corpus>/manifest.jsonl      the corpus, imported once for every model
    <corpus>/<model>/            an ``audiorec cv`` folder (LOSO) or a run directory (split)
    models/<model>/model.onnx    the exported model the size and latency are measured on
    models/<model>/stats.json    parameters, MACs, size, latency
    models.json, models.csv, models.md, accuracy_vs_parameters.png

Finished trainings, folds and measurements are read back instead of repeated, and an
interrupted training resumes from its last checkpoint, so the same command run again carries on
where it stopped; the tables are rewritten after every model, so they show what is done so far.

Protocols (``shared/data/README.md``): ``loso`` trains one model per speaker with that speaker
held out, on all the others (:func:`audiorec.cv.cross_validate`'s default), and reports the mean
and the worst fold (FSDD's six speakers); ``split`` holds out
speaker-disjoint validation and test shares (``data.val_fraction``, ``data.test_fraction``: the
Speech Commands 80/10/10 speaker split). ``auto`` picks ``loso`` for corpora with at most
:data:`LOSO_MAX_SPEAKERS` speakers.
"""

from __future__ import annotations

import csv
import io
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from audiorec.run import RunDir, atomic_write_text, write_json

if TYPE_CHECKING:  # the command line reads this module's constants without PyTorch
    from audiorec.config import Config

LOSO_MAX_SPEAKERS = 10
PROTOCOLS = ("auto", "loso", "split")
# Small and fast models first, so the first hours of a long benchmark fill the most rows.
DEFAULT_MODELS = ("gmm", "bc_resnet:1", "ds_cnn:S", "crnn_fourier:S", "matchboxnet:3x1x64", "cnn", "bc_resnet:3",
                  "cnn_trad_fpool3", "speech_embedding")


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the benchmark: an architecture and one of its sizes.

    Attributes
    ----------
    name : str
        A key of :data:`audiorec.models.ENCODERS`.
    size : str
        ``model.size``; empty for the architecture's first size.
    """

    name: str
    size: str = ""

    @classmethod
    def parse(cls, text: str) -> "ModelChoice":
        """``NAME`` or ``NAME:SIZE`` (``bc_resnet:3``, ``ds_cnn:S``)."""
        name, _, size = text.strip().partition(":")
        return cls(name.strip(), size.strip())

    @property
    def key(self) -> str:
        """Folder and table name: ``bc_resnet-3``, or the bare name without a size."""
        return f"{self.name}-{self.size}" if self.size else self.name

    def config(self, base: Config) -> Config:
        """``base`` with this model; raises :class:`ConfigError` for an unknown name or size."""
        from audiorec.config import ConfigError, with_model
        from audiorec.models import build_model

        config = with_model(base, self.name, self.size)
        try:
            build_model(config, 2)
        except ValueError as e:
            raise ConfigError(f"--models {self.key}: {e}") from e
        return config


def median_latency_ms(predict, clip: np.ndarray, n: int = 100, warmup: int = 10) -> float:
    """Median wall time of ``predict(clip)`` in milliseconds over ``n`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        predict(clip)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        predict(clip)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def count_macs(model, n_samples: int) -> tuple[int, int]:
    """Multiply-accumulates of one forward pass over a batch of one clip.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products,
    LSTMs included, which are nearly all the work; a multiply-accumulate is two of its
    floating-point operations).

    Parameters
    ----------
    model : CommandClassifier
        With a ``features`` front end.
    n_samples : int
        Clip length in samples.

    Returns
    -------
    (int, int)
        MACs of the whole model and of its front end alone.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    clip = 0.1 * torch.randn(1, n_samples, generator=torch.Generator().manual_seed(0))
    counts = []
    for module in (model, model.features):
        # Without oneDNN an LSTM runs as the matrix products the counter sees; fused, it is one
        # opaque operator and would count as nothing.
        with torch.inference_mode(), warnings.catch_warnings(), torch.backends.mkldnn.flags(enabled=False), \
                FlopCounterMode(display=False) as counter:
            warnings.filterwarnings("ignore", message="TF32 acceleration")  # said on every oneDNN switch
            module.eval()(clip)
        counts.append(counter.get_total_flops() // 2)
    return counts[0], counts[1]


def exported_model_dir(out: str | Path, key: str) -> Path:
    """Where :func:`bench_models` exports and measures a model: ``OUT/models/<key>/`` (holds
    ``model.onnx`` and ``stats.json``; see the module docstring's layout)."""
    return Path(out) / "models" / key


def onnx_latency_ms(model_path: str | Path, n: int = 100) -> float:
    """Median latency in milliseconds of an exported model in ONNX Runtime on 1 thread, batch 1,
    for one clip of its training length (``audiorec.clip_samples`` in its metadata) of Gaussian
    noise at 0.1 (seed 0), over ``n`` calls after 10 warm-up calls (:func:`median_latency_ms`).

    Raises
    ------
    audiorec.runtime.ModelError
        The file is not a readable audiorec ONNX model.
    """
    from audiorec.runtime import OnnxModel

    model = OnnxModel(model_path, threads=1)
    clip = (0.1 * np.random.default_rng(0).standard_normal((1, model.clip_samples))).astype(np.float32)
    return round(median_latency_ms(model, clip, n=n), 3)


def measure_model(run_dir: Path, out_dir: Path, latency_runs: int = 100) -> dict:
    """Export a trained run and measure what a deployment pays for it.

    Parameters
    ----------
    run_dir : Path
        A run directory (one LOSO fold stands for its model).
    out_dir : Path
        Gets ``model.onnx``, its export report and ``stats.json``; a ``stats.json`` there from
        the same run is read back instead.
    latency_runs : int

    Returns
    -------
    dict
        ``n_parameters`` (as the run's ``metrics.json`` counts them), ``macs_per_s`` and
        ``front_end_macs_per_s`` (per second of audio), ``onnx_bytes`` (fp32 file),
        ``latency_ms`` (median, ONNX Runtime, 1 thread, batch 1, one clip of the training
        length), ``parity_max_abs_diff`` (ONNX against PyTorch on the run's test clips).
    """
    from audiorec.export import export_run
    from audiorec.runtime import Recognizer

    stats_path = out_dir / "stats.json"
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        if stats.get("run") == str(run_dir.resolve()):
            return stats
    reference = Recognizer.from_run(run_dir)
    seconds = reference.clip_samples / reference.sample_rate
    macs, front_end_macs = count_macs(reference.predict.model, reference.clip_samples)
    report = export_run(run_dir, out_dir / "model.onnx", max_clips=200, progress=False)
    stats = {
        "n_parameters": json.loads(RunDir(run_dir).metrics.read_text(encoding="utf-8"))["n_parameters"],
        "macs_per_s": round(macs / seconds),
        "front_end_macs_per_s": round(front_end_macs / seconds),
        "onnx_bytes": report.size_bytes,
        "latency_ms": onnx_latency_ms(report.model, n=latency_runs),
        "parity_max_abs_diff": report.parity_max_abs_diff,
        "clip_s": seconds,
        "run": str(run_dir.resolve()),
    }
    write_json(stats_path, stats)
    return stats


def _corpus_names(data: Sequence[str | Path]) -> list[str]:
    names: list[str] = []
    for d in data:
        stem = Path(d).stem if Path(d).suffix == ".jsonl" else Path(d).name
        name, i = stem, 2
        while name in names:
            name, i = f"{stem}_{i}", i + 1
        names.append(name)
    return names


def bench_models(data: Sequence[str | Path], out: str | Path, models: Sequence[str] = DEFAULT_MODELS,
                 config: Config | None = None, protocol: str = "auto", latency_runs: int = 100,
                 finished_only: bool = False, progress: bool = True) -> list[dict]:
    """Train, test, export and time every model on every corpus; write the comparison tables.

    Parameters
    ----------
    data : sequence of str or Path
        Corpus folders or ``.jsonl`` manifests; one accuracy column each.
    out : str or Path
        Output folder (see the module docstring).
    models : sequence of str
        ``NAME`` or ``NAME:SIZE`` (:class:`ModelChoice`).
    config : Config, optional
        The shared recipe; default the built-in defaults.
    protocol : {"auto", "loso", "split"}
        See the module docstring.
    latency_runs : int
        Timed calls per model.
    finished_only : bool
        Train nothing: tabulate the trainings that have finished (a LOSO column needs every
        fold), leave the other cells empty, and leave out models with nothing finished. For
        looking at a long benchmark while it runs, or at one run in several processes.
    progress : bool
        Progress bars of the trainings.

    Returns
    -------
    list of dict
        One row per model, as written to ``models.json``: ``model``, ``name``, ``size``, the
        measurements of :func:`measure_model`, and per corpus ``{corpus: {protocol, accuracy,
        worst_accuracy, worst_speaker, n_test, n_runs, train_time_s}}`` under ``results``.

    Raises
    ------
    ConfigError
        Unknown model name or size, or protocol (before anything is trained).
    ValueError
        A corpus is missing, unlabelled, or has too few speakers for its protocol.

    References
    ----------
    The comparison follows the keyword-spotting literature's tables (accuracy beside parameters
    and multiply-accumulates: Zhang et al. 2017 "Hello Edge"; Kim et al. 2021 BC-ResNet), with
    the protocols of ``shared/data/README.md``.
    """
    from audiorec.config import Config, ConfigError
    from audiorec.cv import cross_validate
    from audiorec.data.manifest import read_manifest, write_manifest
    from audiorec.train import prepare_data, train

    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if config is not None and config.task != "commands":
        raise ConfigError(f"task={config.task}: 'bench models' compares command recognizers")
    if not data:
        raise ValueError("no corpus given: pass at least one --data")
    base = config or Config()
    choices = [ModelChoice.parse(m) for m in models]
    if not choices:
        raise ConfigError("no model given: pass --models NAME[:SIZE],...")
    configs = {c.key: c.config(base) for c in choices}  # every name and size checked up front
    out = Path(out)
    names = _corpus_names(data)
    corpora = []
    for source, name in zip(data, names):
        manifest = out / name / "manifest.jsonl"
        if not manifest.is_file():
            write_manifest(manifest, prepare_data(source, base, None, progress))
        utterances = read_manifest(manifest)
        speakers = {u.speaker for u in utterances if u.speaker is not None}
        chosen = protocol if protocol != "auto" else ("loso" if len(speakers) <= LOSO_MAX_SPEAKERS else "split")
        corpora.append((name, manifest, chosen))
        print(f"{name}: {len(utterances)} clips, {len(speakers)} speakers, protocol {chosen}", flush=True)

    rows = []
    for i, choice in enumerate(choices, 1):
        row = {"model": choice.key, "name": choice.name, "size": choice.size, "results": {}}
        reference_run = None
        for name, manifest, chosen in corpora:
            print(f"[{i}/{len(choices)}] {choice.key} on {name} ({chosen})", flush=True)
            run_dir = out / name / choice.key
            if finished_only and not (run_dir / "metrics.json").is_file():
                print("  not finished", flush=True)
                continue
            if chosen == "loso":
                summary = cross_validate(manifest, run_dir, configs[choice.key], "loso", progress)
                result = {
                    "accuracy": summary["mean_accuracy"], "worst_accuracy": summary["worst_accuracy"],
                    "worst_speaker": summary["worst_speaker"], "n_runs": len(summary["folds"]),
                }
                first_run = run_dir / summary["folds"][0]["run"]
            else:
                run = RunDir(run_dir)
                if run.metrics.is_file():
                    summary = json.loads(run.metrics.read_text(encoding="utf-8"))
                else:
                    summary = train(manifest, run_dir, configs[choice.key], progress)
                if "test_accuracy" not in summary:
                    raise ValueError(f"{name}: the split left no test speakers; raise data.test_fraction")
                result = {"accuracy": round(summary["test_accuracy"], 4), "n_runs": 1}
                first_run = run_dir
            result.update(protocol=chosen, n_test=summary["n_test"], train_time_s=summary["train_time_s"])
            row["results"][name] = result
            reference_run = reference_run or first_run
            print(f"  accuracy {result['accuracy']:.4f}" + (f", worst fold {result['worst_accuracy']:.4f}"
                  if "worst_accuracy" in result else "") + f", trained in {result['train_time_s'] / 60:.1f} min", flush=True)
        if reference_run is None:
            continue
        row.update(measure_model(reference_run, exported_model_dir(out, choice.key), latency_runs))
        row["measured_on"] = str(reference_run.relative_to(out))
        rows.append(row)
        write_tables(rows, [c[0] for c in corpora], out)
    return rows


def _rows_for_csv(rows: Sequence[dict], corpora: Sequence[str]) -> tuple[list[str], list[list]]:
    header = ["model", "name", "size", "n_parameters", "macs_per_s", "front_end_macs_per_s", "onnx_bytes", "latency_ms"]
    for corpus in corpora:
        header += [f"{corpus}_{k}" for k in ("protocol", "accuracy", "worst_accuracy", "n_test", "train_time_s")]
    table = []
    for row in rows:
        line = [row.get(k, "") for k in header[:8]]
        for corpus in corpora:
            r = row["results"].get(corpus, {})
            line += [r.get(k, "") for k in ("protocol", "accuracy", "worst_accuracy", "n_test", "train_time_s")]
        table.append(line)
    return header, table


def markdown_table(rows: Sequence[dict], corpora: Sequence[str]) -> str:
    """The benchmark as a Markdown table, one row per model.

    Accuracy columns show the LOSO mean with the worst fold in brackets, or the split's test
    accuracy; MACs are millions per second of audio without the shared front end; latency is
    the median per clip in ONNX Runtime (1 thread, batch 1), marked ``*`` with a note under the
    table where a row has ``latency_from_source`` (timed in an earlier run, not with the others);
    training time adds every run.
    """
    protocols = {c: next((r["results"][c]["protocol"] for r in rows if c in r["results"]), "") for c in corpora}
    head = ["model", "parameters", "MMACs/s", "ONNX size", "latency"]
    head += [f"{c} ({protocols[c]})" for c in corpora] + ["training time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"`{row['model']}`", f"{row['n_parameters'] / 1000:.1f} k",
                 f"{(row['macs_per_s'] - row['front_end_macs_per_s']) / 1e6:.1f}",
                 f"{row['onnx_bytes'] / 1024:.0f} KB", f"{row['latency_ms']:.2f} ms" + (" *" if row.get("latency_from_source") else "")]
        total_s = 0.0
        for c in corpora:
            r = row["results"].get(c)
            if r is None:
                cells.append("not finished")
                continue
            total_s += r["train_time_s"]
            worst = f" ({r['worst_accuracy']:.3f})" if r.get("worst_accuracy") is not None else ""
            cells.append(f"{r['accuracy']:.3f}{worst}")
        cells.append(f"{total_s / 60:.0f} min" if total_s >= 60 else f"{total_s:.0f} s")
        lines.append("| " + " | ".join(cells) + " |")
    if any(row.get("latency_from_source") for row in rows):
        lines += ["", "\\* timed by the benchmark run the row comes from (its model file is gone), not with the others."]
    return "\n".join(lines) + "\n"


def write_tables(rows: Sequence[dict], corpora: Sequence[str], out: str | Path) -> None:
    """Write ``models.json``, ``models.csv``, ``models.md`` and ``accuracy_vs_parameters.png`` into ``out``."""
    from audiorec.plots import plot_accuracy_vs_parameters

    out = Path(out)
    write_json(out / "models.json", {"corpora": list(corpora), "models": list(rows)})
    header, table = _rows_for_csv(rows, corpora)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(table)
    atomic_write_text(out / "models.csv", buffer.getvalue())
    atomic_write_text(out / "models.md", markdown_table(rows, corpora))
    points = {c: [(r["model"], r["n_parameters"], r["results"][c]["accuracy"]) for r in rows if c in r["results"]]
              for c in corpora}
    plot_accuracy_vs_parameters(points, out / "accuracy_vs_parameters.png")
