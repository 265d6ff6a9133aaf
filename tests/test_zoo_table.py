"""benchmarks/zoo_table.py: several ``bench models`` tables merged into one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def zoo_table():
    return load_benchmark("zoo_table")


def _row(model: str, n_parameters: int, latency_ms: float, **results) -> dict:
    return {"model": model, "name": model, "size": "", "n_parameters": n_parameters, "macs_per_s": 2_000_000,
            "front_end_macs_per_s": 1_000_000, "onnx_bytes": 4096, "latency_ms": latency_ms, "clip_s": 1.0,
            "results": {c: {"accuracy": a, "protocol": "split", "n_test": 10, "train_time_s": 60.0, "n_runs": 1}
                        for c, a in results.items()}}


def _table(path: Path, corpora: list[str], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"corpora": corpora, "models": rows}))
    return path


def test_rows_merge_by_model_and_the_first_source_measures(zoo_table, tmp_path):
    sc = _table(tmp_path / "a" / "models.json", ["sc12"], [_row("cnn", 300, 0.5, sc12=0.95), _row("gmm", 30, 0.8, sc12=0.85)])
    fsdd = _table(tmp_path / "b" / "models.json", ["fsdd"], [_row("cnn", 299, 9.0, fsdd=0.96), _row("ds_cnn-S", 23, 1.0, fsdd=0.93)])
    rows, corpora = zoo_table.merge([zoo_table.parse_source(str(sc)), zoo_table.parse_source(str(fsdd))])
    assert corpora == ["sc12", "fsdd"]
    by_model = {r["model"]: r for r in rows}
    assert [r["model"] for r in rows] == ["cnn", "gmm", "ds_cnn-S"]
    assert by_model["cnn"]["results"]["sc12"]["accuracy"] == 0.95 and by_model["cnn"]["results"]["fsdd"]["accuracy"] == 0.96
    assert by_model["cnn"]["n_parameters"] == 300 and by_model["cnn"]["latency_ms"] == 0.5  # the first source's model
    assert "fsdd" not in by_model["gmm"]["results"]


def test_a_source_can_be_cut_to_some_models_and_a_corpus_given_twice_is_refused(zoo_table, tmp_path):
    old = _table(tmp_path / "old" / "models.json", ["sc12"], [_row("cnn", 70, 0.5, sc12=0.94), _row("gmm", 30, 0.8, sc12=0.85)])
    new = _table(tmp_path / "new" / "models.json", ["sc12"], [_row("cnn", 300, 0.6, sc12=0.95)])
    rows, _ = zoo_table.merge([zoo_table.parse_source(str(new)), zoo_table.parse_source(f"{old}:gmm")])
    assert {r["model"]: r["results"]["sc12"]["accuracy"] for r in rows} == {"cnn": 0.95, "gmm": 0.85}
    with pytest.raises(SystemExit, match="cnn on sc12"):
        zoo_table.merge([zoo_table.parse_source(str(new)), zoo_table.parse_source(str(old))])
    with pytest.raises(SystemExit, match="no row for bc_resnet-3"):
        zoo_table.merge([zoo_table.parse_source(f"{old}:bc_resnet-3")])
    with pytest.raises(SystemExit, match="no such file"):
        zoo_table.parse_source(str(tmp_path / "missing.json"))


def test_retime_keeps_the_latency_of_a_model_whose_file_is_gone(zoo_table, tmp_path, capsys):
    rows, _ = zoo_table.merge([zoo_table.parse_source(str(_table(tmp_path / "z" / "models.json", ["sc12"], [_row("cnn", 300, 0.7, sc12=0.9)])))])
    zoo_table.retime(rows)
    assert rows[0]["latency_ms"] == 0.7 and rows[0]["latency_from_source"] is True
    assert "is gone" in capsys.readouterr().out


def test_retime_times_the_exported_model_again_and_the_table_marks_the_rest(zoo_table, tmp_path):
    from audiorec.bench import markdown_table
    from audiorec.config import load_config
    from audiorec.export import export_onnx
    from audiorec.models import build_model

    source = _table(tmp_path / "z" / "models.json", ["sc12"], [_row("cnn", 300, 99.0, sc12=0.9), _row("gmm", 30, 0.8, sc12=0.8)])
    onnx = tmp_path / "z" / "models" / "cnn" / "model.onnx"
    onnx.parent.mkdir(parents=True)
    export_onnx(build_model(load_config(None, ["model.channels=[4,8]"]), 4).eval(), onnx, list("abcd"), 16_000, 4_800)
    rows, corpora = zoo_table.merge([zoo_table.parse_source(str(source))])
    zoo_table.retime(rows, runs=5)
    by_model = {r["model"]: r for r in rows}
    assert 0 < by_model["cnn"]["latency_ms"] < 99.0 and "latency_from_source" not in by_model["cnn"]
    assert by_model["gmm"]["latency_from_source"] is True
    table = markdown_table(rows, corpora)
    assert "0.80 ms *" in table and "99.00 ms" not in table and table.count(" *") == 1
    assert "model file is gone" in table
