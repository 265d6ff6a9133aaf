"""One model-zoo table from several ``audiorec bench models`` runs, with the latencies timed again.

The zoo's trainings take hours on two cores, so its columns come from different benchmark runs
(one corpus at a time, a model added later). This script merges their ``models.json`` into one
``models.{md,csv,json}`` and ``accuracy_vs_parameters.png`` (:func:`audiorec.bench.write_tables`),
and with ``--retime`` times every exported model again in one quiet process, so that the latency
column is of one machine state rather than of whatever was training beside each benchmark.

Usage::

    .venv/bin/python benchmarks/zoo_table.py runs/zoo3/models.json \\
        benchmarks/results/models_sc12_cnn_trad_fpool3.json benchmarks/results/models_fsdd_loso.json \\
        --out benchmarks/results/zoo --retime

A source is a ``models.json``, optionally followed by ``:MODEL,MODEL`` to take only those rows.
A model's parameters, MACs, ONNX size and latency come from the first source that lists it (the
first corpus's model: Speech Commands' has 12 outputs, FSDD's 10); its accuracies from every
source, and a corpus given twice for one model is refused rather than silently replaced.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from audiorec.bench import exported_model_dir, onnx_latency_ms, write_tables


def parse_source(text: str) -> tuple[Path, set[str] | None]:
    """``FILE`` or ``FILE:MODEL,MODEL`` to the file and the models to keep (None: all).

    Raises
    ------
    SystemExit
        The file does not exist, or is not a ``bench models`` table (no ``models`` list).
    """
    path, _, names = text.partition(":")
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (give the models.json an 'audiorec bench models' run wrote)")
    return path, {n.strip() for n in names.split(",") if n.strip()} or None


def merge(sources: list[tuple[Path, set[str] | None]]) -> tuple[list[dict], list[str]]:
    """Rows merged by model name, in order of first appearance, and the corpora in that order.

    Returns
    -------
    (list of dict, list of str)
        Each row as ``bench_models`` writes it, with ``source`` (the file its measurements came
        from) added; the corpus names.

    Raises
    ------
    SystemExit
        A source lacks a requested model, or two sources give one model's accuracy on one corpus.
    """
    rows: dict[str, dict] = {}
    corpora: list[str] = []
    for path, keep in sources:
        table = json.loads(path.read_text(encoding="utf-8"))
        if "models" not in table:
            raise SystemExit(f"{path}: not an 'audiorec bench models' table (no 'models' list)")
        listed = {r["model"] for r in table["models"]}
        if keep and keep - listed:
            raise SystemExit(f"{path}: no row for {', '.join(sorted(keep - listed))} (it has {', '.join(sorted(listed))})")
        corpora += [c for c in table["corpora"] if c not in corpora]
        for row in table["models"]:
            if keep and row["model"] not in keep:
                continue
            if row["model"] not in rows:
                rows[row["model"]] = dict(copy.deepcopy(row), source=str(path))
                continue
            merged = rows[row["model"]]["results"]
            for corpus, result in row["results"].items():
                if corpus in merged:
                    raise SystemExit(f"{row['model']} on {corpus}: in {rows[row['model']]['source']} and in {path}; "
                                     "keep one with FILE:MODEL,...")
                merged[corpus] = result
    return list(rows.values()), corpora


def retime(rows: list[dict], runs: int = 100) -> None:
    """Time each row's exported model again as ``bench models`` did
    (:func:`audiorec.bench.onnx_latency_ms`, median of ``runs`` calls) and set ``latency_ms``.

    The model is ``models/<model>/model.onnx`` beside the row's source, where ``bench models``
    exported it; a row whose file is gone keeps its latency and gets ``latency_from_source``.
    """
    for row in rows:
        onnx = exported_model_dir(Path(row["source"]).parent, row["model"]) / "model.onnx"
        if not onnx.is_file():
            row["latency_from_source"] = True
            print(f"{row['model']}: {onnx} is gone; keeping the latency of {row['source']} ({row['latency_ms']:.2f} ms)")
            continue
        before = row["latency_ms"]
        row["latency_ms"] = onnx_latency_ms(onnx, n=runs)
        print(f"{row['model']}: {row['latency_ms']:.2f} ms (was {before:.2f} ms in {row['source']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("sources", nargs="+", metavar="FILE[:MODEL,...]", help="models.json of 'audiorec bench models' runs")
    parser.add_argument("--out", required=True, help="folder for models.{md,csv,json} and accuracy_vs_parameters.png")
    parser.add_argument("--retime", action="store_true", help="time every exported model again, here and now")
    parser.add_argument("--runs", type=int, default=100, help="timed calls per model with --retime")
    args = parser.parse_args()
    rows, corpora = merge([parse_source(s) for s in args.sources])
    if args.retime:
        retime(rows, args.runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, corpora, out)
    print((out / "models.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
