"""``audiorec bench models``: the model comparison, on a tiny synthetic corpus."""

from __future__ import annotations

import csv
import json

import pytest

from audiorec import bench
from audiorec.bench import ModelChoice, count_macs
from audiorec.cli import main
from audiorec.config import load_config
from audiorec.data.corpora import import_corpus
from audiorec.data.manifest import write_manifest
from audiorec.models import build_model
from conftest import QUICK_OVERRIDES

OVERRIDES = (*QUICK_OVERRIDES, "train.max_epochs=1")


@pytest.fixture(scope="module")
def three_speakers(synth_corpus, tmp_path_factory):
    """A manifest of the synthetic corpus restricted to its first three speakers."""
    utterances = import_corpus(synth_corpus, progress=False).utterances
    keep = sorted({u.speaker for u in utterances})[:3]
    path = tmp_path_factory.mktemp("bench") / "three.jsonl"
    write_manifest(path, [u for u in utterances if u.speaker in keep])
    return path


def test_bench_trains_measures_tabulates_and_resumes(three_speakers, synth_corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "LOSO_MAX_SPEAKERS", 5)  # 3 speakers: LOSO; the 8-speaker corpus: split
    out = tmp_path / "zoo"
    args = ["bench", "models", "--data", str(three_speakers), "--data", str(synth_corpus), "--out", str(out),
            "--models", "cnn,bc_resnet:1", "--latency-runs", "3", "--quiet", *OVERRIDES]
    code = main(args)
    stdout, err = capsys.readouterr()
    assert code == 0, err
    table = json.loads((out / "models.json").read_text())
    assert table["corpora"] == ["three", "corpus"]
    rows = {r["model"]: r for r in table["models"]}
    assert list(rows) == ["cnn", "bc_resnet-1"]
    for key, row in rows.items():
        loso, split = row["results"]["three"], row["results"]["corpus"]
        assert (loso["protocol"], loso["n_runs"], split["protocol"], split["n_runs"]) == ("loso", 3, "split", 1)
        cv = json.loads((out / "three" / key / "metrics.json").read_text())
        assert loso["accuracy"] == cv["mean_accuracy"] and loso["worst_accuracy"] == cv["worst_accuracy"]
        run = json.loads((out / "corpus" / key / "metrics.json").read_text())
        assert split["accuracy"] == round(run["test_accuracy"], 4) and split["n_test"] == run["n_test"]
        # Measured on the first corpus's first fold, through the exported ONNX file.
        fold = json.loads((out / row["measured_on"] / "metrics.json").read_text())
        assert row["measured_on"].startswith(f"three/{key}/fold_")
        assert row["n_parameters"] == fold["n_parameters"] > 0
        assert row["macs_per_s"] > row["front_end_macs_per_s"] > 0
        assert row["onnx_bytes"] == (out / "models" / key / "model.onnx").stat().st_size
        assert row["latency_ms"] > 0 and row["parity_max_abs_diff"] < 1e-4

    markdown = (out / "models.md").read_text()
    assert "| model | parameters | MMACs/s | ONNX size | latency | three (loso) | corpus (split) | training time |" in markdown
    assert markdown.count("\n| `") == 2 and markdown in stdout
    with open(out / "models.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert [r["model"] for r in records] == ["cnn", "bc_resnet-1"]
    assert float(records[0]["three_accuracy"]) == rows["cnn"]["results"]["three"]["accuracy"]
    assert (out / "accuracy_vs_parameters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The same command again trains nothing: every fold and run is read back.
    def finished_runs():
        return {p: p.stat().st_mtime_ns for p in out.rglob("metrics.json") if (p.parent / "checkpoints").is_dir()}

    before = finished_runs()
    assert len(before) == 2 * (3 + 1)
    assert main(args) == 0
    stdout, _ = capsys.readouterr()
    assert stdout.count("done before") == 2 * 3
    assert finished_runs() == before

    # --finished-only tabulates what is done and trains nothing: ds_cnn-S is left out.
    with_more = [a if a != "cnn,bc_resnet:1" else "cnn,ds_cnn:S,bc_resnet:1" for a in args]
    assert main([*with_more, "--finished-only"]) == 0
    stdout, _ = capsys.readouterr()
    assert stdout.count("not finished") == 2 and not (out / "three" / "ds_cnn-S").exists()
    assert [r["model"] for r in json.loads((out / "models.json").read_text())["models"]] == ["cnn", "bc_resnet-1"]
    assert finished_runs() == before
    assert json.loads((out / "models.json").read_text()) == table


@pytest.mark.parametrize("models, message", [
    ("cnn,nope", "model.name=nope is not one of"),
    ("ds_cnn:XL", "--models ds_cnn-XL: ds_cnn size 'XL' is not one of S, M, L"),
])
def test_bad_model_is_refused_before_training(three_speakers, tmp_path, capsys, models, message):
    out = tmp_path / "zoo"
    code = main(["bench", "models", "--data", str(three_speakers), "--out", str(out), "--models", models, "--quiet", *OVERRIDES])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_model_choice_parses_name_and_size():
    assert ModelChoice.parse(" bc_resnet:3 ") == ModelChoice("bc_resnet", "3")
    assert ModelChoice.parse("cnn").key == "cnn" and ModelChoice.parse("ds_cnn:S").key == "ds_cnn-S"


def test_macs_of_the_front_end_are_the_dft_and_mel_products():
    """The folded DFT does a quarter of the convolution's multiply-adds; the network's are the same."""
    config = load_config(None, [])
    model = build_model(config, 12)
    features = model.features
    frames, n_mels = features.n_frames(16_000), config.features.n_mels
    total, front_end = count_macs(model, 16_000)
    quarter = features.n_fft // 4 + 1
    assert features.folded
    assert front_end == features.win_length * quarter * frames + n_mels * 2 * quarter * frames
    features.folded = False
    total_conv, front_end_conv = count_macs(model, 16_000)
    n_bins = features.n_fft // 2 + 1
    assert front_end_conv == 2 * n_bins * features.win_length * frames + n_mels * n_bins * frames
    assert total - front_end == total_conv - front_end_conv > 0


def test_macs_count_an_lstm():
    """An LSTM's products are counted: 4 gates x hidden x (input + hidden) per frame."""
    import torch

    from audiorec.models.classifier import CommandClassifier

    class LastState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(40, 16, batch_first=True)

        def forward(self, x):
            return self.lstm(x.transpose(1, 2))[0][:, -1]

    model = CommandClassifier(build_model(load_config(None, []), 2).features, LastState())
    total, front_end = count_macs(model, 16_000)
    assert total - front_end == model.features.n_frames(16_000) * 4 * 16 * (40 + 16)
