"""What the training benchmarks share: where things are, timing a command, saving the results.

Imported by the scripts in this folder (run as ``python benchmarks/<script>.py``, so the folder
is on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
AUDIOREC = str(ROOT / ".venv" / "bin" / "audiorec")
RESULTS = ROOT / "benchmarks" / "results"
# "Recorded noise" of the benchmark protocols: four of the six Speech Commands background
# recordings; running_tap and doing_the_dishes are kept for the noisy test.
TRAIN_NOISES = ["dude_miaowing", "exercise_bike", "pink_noise", "white_noise"]
NOISE_OVERRIDE = "augment.background_noise.paths=[" + ",".join(str(DATA / "noise" / f"{n}.wav") for n in TRAIN_NOISES) + "]"


def relative(path: str | Path) -> str:
    """``path`` relative to the project when inside it (absolute otherwise), so committed results name no machine's folders."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def timed(args: list[str]) -> tuple[float, float]:
    """Run ``audiorec ARGS`` under GNU ``/usr/bin/time -v``.

    Returns
    -------
    (float, float)
        Wall-clock seconds and peak resident memory in MB.

    Raises
    ------
    SystemExit
        The command failed (its stderr is printed).
    """
    print("$ audiorec", " ".join(a.replace(str(DATA), "../shared/data").replace(str(ROOT) + "/", "") for a in args), flush=True)
    proc = subprocess.run(["/usr/bin/time", "-v", AUDIOREC, *args], capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"audiorec {args[0]} failed with exit code {proc.returncode}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    return int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3)), peak_kb / 1024


def machine() -> str:
    """This machine in words for a results file: CPU model, cores, and the vector instructions
    PyTorch's CPU kernels use (``AVX2``, ``AVX512``): latencies, and the last digits of a
    training's arithmetic, depend on them. The CPU model is ``/proc/cpuinfo``'s first
    ``model name``, else :func:`platform.processor`; raises nothing."""
    import torch

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.M)
        model = names[0].strip() if names else model
    return f"{model}, {os.cpu_count()} cores, PyTorch CPU kernels {torch.backends.cpu.get_cpu_capability()}"


def save_results(stem: str | Path, results, table: str) -> None:
    """Write ``<stem>.json`` (``results``) and ``<stem>.md`` (``table``), each atomically (through
    ``*.partial``), and print the table; a bare name goes to ``benchmarks/results/``, a path
    (``--results benchmarks/results/export``) where it says. Raises ``OSError`` where the folder
    cannot be written."""
    target = Path(stem) if len(Path(stem).parts) > 1 else RESULTS / stem
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(results, indent=2) + "\n"), (".md", table)):
        path = target.with_name(target.name + suffix)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text)
        os.replace(partial, path)  # atomic: a reader never sees half a file
    print(table)


def run_and_save(names: list[str], stem: str, run: Callable[[str], dict], markdown: Callable[[dict], str]) -> None:
    """Run each protocol and save after each one: ``results/<stem>.json`` (merged with the
    protocols already there) and ``results/<stem>.md`` (the README's table), then print the table.

    The file is read again just before each save, so two runs of the same benchmark at once (two
    variants side by side) both keep their rows rather than the later one writing over the other's.
    """
    results_path = RESULTS / f"{stem}.json"
    for name in names:
        result = run(name)
        print(json.dumps(result, indent=2), flush=True)
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[name] = result
        save_results(stem, results, markdown(results))


def posteriors_under(run: Path, transforms: dict[str, Callable[[np.ndarray, int], np.ndarray]]) -> tuple[list, dict, list]:
    """Class posteriors of a run's model for its test clips passed through each transform.

    Parameters
    ----------
    run : Path
        A run directory of ``audiorec train`` with ``splits/test.jsonl``.
    transforms : dict of str -> callable
        Name -> ``f(waveform [n_samples] float32, sample_rate) -> waveform``; the identity
        ``lambda w, sr: w`` gives the clips as recorded. Each result is fitted to the model's
        clip length as :meth:`audiorec.runtime.Recognizer.recognize_batch` does.

    Returns
    -------
    (list, dict of str -> np.ndarray [shape=(n_test, n_classes)], list of str)
        The test split's rows (manifest entries, with ``label``), the posteriors per transform
        name (rows in the split's order), and the model's labels (the posteriors' columns).

    Raises
    ------
    FileNotFoundError
        ``run`` has no test split or model.
    """
    from audiorec.audio import fit_to_length
    from audiorec.data.dataset import load_waveforms
    from audiorec.data.manifest import read_manifest
    from audiorec.runtime import Recognizer

    test = read_manifest(run / "splits" / "test.jsonl")
    recognizer = Recognizer.from_run(run)
    waves = [np.asarray(w, np.float32) for w in load_waveforms(test, recognizer.sample_rate, progress=False)]
    posteriors = {}
    for name, transform in transforms.items():
        clips = [fit_to_length(transform(w, recognizer.sample_rate).astype(np.float32), recognizer.clip_samples)
                 for w in waves]
        posteriors[name] = recognizer.predict_proba(np.stack(clips))
    return test, posteriors, list(recognizer.labels)


def accuracy_under(run: Path, transforms: dict[str, Callable[[np.ndarray, int], np.ndarray]]) -> dict:
    """Test accuracy of a run's model with its test clips passed through each transform.

    Parameters
    ----------
    run : Path
        A run directory of ``audiorec train`` with ``splits/test.jsonl``.
    transforms : dict of str -> callable
        As for :func:`posteriors_under`.

    Returns
    -------
    dict
        ``run`` (relative to the project when inside it), ``n_test`` and ``accuracy`` (fraction
        correct per transform name, 4 decimals).

    Raises
    ------
    FileNotFoundError
        ``run`` has no test split or model.
    """
    test, posteriors, labels = posteriors_under(run, transforms)
    truth = np.array([labels.index(u.label) for u in test])
    accuracy = {}
    for name, probs in posteriors.items():
        accuracy[name] = round(float(np.mean(probs.argmax(axis=1) == truth)), 4)
        print(f"{run.name}: {name} -> {accuracy[name]:.3f}", flush=True)
    return {"run": relative(run), "n_test": len(test),
            "accuracy": accuracy}
