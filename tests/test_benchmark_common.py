"""benchmarks/_common.py: saving a benchmark's results."""

from __future__ import annotations

import json

from conftest import load_benchmark


def test_a_row_saved_by_another_run_meanwhile_is_kept(tmp_path, monkeypatch):
    common = load_benchmark("_common")
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    (tmp_path / "bench.json").write_text(json.dumps({"old": {"x": 0}}))

    def run(name: str) -> dict:
        # another process running the same benchmark finishes while this one trains
        rows = json.loads((tmp_path / "bench.json").read_text())
        (tmp_path / "bench.json").write_text(json.dumps({**rows, "other": {"x": 2}}))
        return {"x": 1}

    common.run_and_save(["mine"], "bench", run, lambda results: " ".join(results) + "\n")
    assert json.loads((tmp_path / "bench.json").read_text()) == {"old": {"x": 0}, "other": {"x": 2}, "mine": {"x": 1}}
    assert (tmp_path / "bench.md").read_text() == "old other mine\n"
    assert not list(tmp_path.glob("*.partial"))
