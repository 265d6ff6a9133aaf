"""Benchmark: train the default command recognizer on the real corpora and record the figures.

Runs ``audiorec train`` under GNU ``/usr/bin/time -v`` for each protocol, then writes
``benchmarks/results/commands.{json,md}`` with test accuracy, clips, training wall time and peak
resident memory. The README's results table is copied from the Markdown file.

Usage::

    .venv/bin/python benchmarks/train_commands.py               # both protocols
    .venv/bin/python benchmarks/train_commands.py --only fsdd_george
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PROTOCOLS = {
    "fsdd_george": ["--data", str(DATA / "fsdd"), "--test-speakers", "george"],
    "sc12_speaker_split": ["--data", str(DATA / "speech_commands_v2_test")],
}


def run_protocol(name: str, extra: list[str], out_root: Path, seed: int) -> dict:
    out = out_root / name
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["/usr/bin/time", "-v", str(ROOT / ".venv" / "bin" / "audiorec"), "train", *extra,
           "--out", str(out), "--seed", str(seed), "--quiet"]
    print("$", " ".join(cmd[2:]), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{name}: audiorec train failed with exit code {proc.returncode}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    hours, minutes, seconds = int(wall.group(1) or 0), int(wall.group(2)), float(wall.group(3))
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "protocol": name,
        "command": "audiorec train " + " ".join(a.replace(str(DATA), "../shared/data") for a in extra),
        "test_accuracy": round(metrics["test_accuracy"], 4),
        "n_test": metrics["n_test"],
        "macro_f1": round(metrics["macro_f1"], 4),
        "epochs": metrics["epochs"],
        "n_parameters": metrics["n_parameters"],
        "wall_time_s": round(hours * 3600 + minutes * 60 + seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "seed": seed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(PROTOCOLS), action="append", help="run just these protocols")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench"), help="where the run directories go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: the benchmarks need the shared corpora")
    results_dir = ROOT / "benchmarks" / "results"
    results_path = results_dir / "commands.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.only or sorted(PROTOCOLS):
        results[name] = run_protocol(name, PROTOCOLS[name], Path(args.out), args.seed)
        print(json.dumps(results[name], indent=2), flush=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    rows = ["| protocol | test accuracy | test clips | epochs | parameters | training wall time | peak memory | command |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        rows.append(f"| {r['protocol']} | {r['test_accuracy']:.3f} | {r['n_test']} | {r['epochs']} | {r['n_parameters']:,} | "
                    f"{r['wall_time_s'] / 60:.1f} min | {r['peak_rss_mb']:.0f} MB | `{r['command']}` |")
    (results_dir / "commands.md").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
