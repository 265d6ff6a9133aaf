"""ONNX export, int8 quantisation and the torch-free runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from audiorec.cli import main
from audiorec.data.manifest import read_manifest
from audiorec.export import export_run
from audiorec.runtime import ModelError, OnnxModel, Recognizer

from conftest import run_without_train_extra


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """The quick training run exported with int8: ``(run_dir, report, out_dir)``."""
    run_dir, _, _ = trained_run
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    report = export_run(run_dir, out, int8=True, progress=False)
    return run_dir, report, out.parent


def test_export_matches_pytorch_on_the_test_clips(exported):
    run_dir, report, out_dir = exported
    n_test = len(read_manifest(run_dir / "splits" / "test.jsonl"))
    assert report.n_clips == n_test > 0
    assert report.parity_max_abs_diff < 1e-4
    assert report.parity_top1_agreement == 1.0
    assert report.accuracy_onnx == report.accuracy_torch
    saved = json.loads((out_dir / "model.export.json").read_text())
    assert saved["parity_max_abs_diff"] == report.parity_max_abs_diff
    assert not list(out_dir.glob("*.data")), "weights must be inside the .onnx file"


def test_metadata_round_trip(exported):
    run_dir, report, _ = exported
    model = OnnxModel(report.fp32_model)
    assert model.labels == json.loads((run_dir / "labels.json").read_text())
    assert model.sample_rate == 16_000
    assert model.clip_samples == 16_000
    assert model.metadata["audiorec.config"] == (run_dir / "config.yaml").read_text()
    assert model.metadata["audiorec.precision"] == "fp32"
    assert OnnxModel(report.model).metadata["audiorec.precision"] == "int8"


def test_graph_has_dynamic_batch_and_length_and_no_stored_front_end(exported):
    _, report, _ = exported
    model = OnnxModel(report.fp32_model)
    rng = np.random.default_rng(0)
    for shape in [(1, 16_000), (3, 16_000), (2, 24_000), (1, 8_000)]:
        probs = model(rng.normal(0, 0.1, shape).astype(np.float32))
        assert probs.shape == (shape[0], len(model.labels))
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    graph = onnx.load(report.fp32_model).graph
    largest = max(int(np.prod(i.dims)) for i in graph.initializer)
    weights = max(p.numel() for p in Recognizer.from_run(exported[0]).predict.model.parameters())
    assert largest <= weights, "the DFT kernel or mel filters were stored instead of computed in the graph"


def test_int8_model_is_smaller_loads_and_agrees(exported):
    run_dir, report, _ = exported
    assert report.precision == "int8"
    assert Path(report.model).stat().st_size == report.size_bytes < report.fp32_size_bytes
    fp32, int8 = onnx.load(report.fp32_model).graph, onnx.load(report.model).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in int8.node}
    # Every stored weight of the network is int8 with its shape kept; the front end is not quantised.
    quantized = {i.name: i for i in int8.initializer if i.name.endswith("weight_quantized")}
    weights = [i for i in fp32.initializer if i.name.endswith(".weight") and len(i.dims) > 1]
    assert weights and len(quantized) == len(weights)
    for w in weights:
        q = quantized[w.name + "_quantized"]
        assert q.data_type == onnx.TensorProto.INT8 and list(q.dims) == list(w.dims)
    assert not any("features" in name for name in quantized)
    assert report.int8_top1_agreement >= 0.8
    clip = read_manifest(run_dir / "splits" / "test.jsonl")[0].path
    result = Recognizer.load(report.model).recognize_file(clip)
    assert result.label in OnnxModel(report.model).labels and 0 < result.score <= 1


def test_runtime_works_without_torch(exported):
    """A subprocess where importing torch (or anything else of the [train] extra) fails."""
    run_dir, report, _ = exported
    clip = read_manifest(run_dir / "splits" / "test.jsonl")[0].path
    expected = Recognizer.from_run(run_dir).recognize_file(clip)
    done = run_without_train_extra(f"""
        import json
        from audiorec.runtime import Recognizer
        result = Recognizer.load({report.fp32_model!r}, threads=1).recognize_file({clip!r})
        from audiorec.cli import main
        code = main(["recognize", {report.model!r}, {clip!r}, "--json"])
        print(json.dumps({{"label": result.label, "score": result.score, "code": code}}))
        assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
        assert main(["train", "--data", "x", "--out", "y"]) == 2  # says which extra to install
    """)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    cli_result, runtime_result = json.loads(lines[0]), json.loads(lines[-1])
    assert runtime_result["code"] == 0
    assert runtime_result["label"] == expected.label
    assert runtime_result["score"] == pytest.approx(expected.score, abs=1e-4)
    assert cli_result["path"] == clip and cli_result["label"] in OnnxModel(report.model).labels
    assert "pip install 'audiorec[train]'" in done.stderr


def test_bad_model_files_give_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="no such model file"):
        Recognizer.load(tmp_path / "missing.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match=r"garbage\.onnx: not a loadable ONNX model"):
        Recognizer.load(garbage)
    # A valid ONNX model that audiorec did not export: no labels in its metadata.
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["waveform"], ["probabilities"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 4])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9), foreign)
    with pytest.raises(ModelError, match=r"foreign\.onnx: not exported by 'audiorec export'.*audiorec\.labels"):
        Recognizer.load(foreign)


def test_wrong_sample_rate_and_shape_are_refused(exported):
    _, report, _ = exported
    recognizer = Recognizer.load(report.fp32_model)
    wave = np.zeros(8_000, np.float32)
    with pytest.raises(ValueError, match="8000 Hz given to a model trained at 16000 Hz"):
        recognizer.recognize(wave, sample_rate=8_000)
    with pytest.raises(ValueError, match="1-D"):
        recognizer.recognize(np.zeros((2, 8_000), np.float32))
    assert recognizer.recognize(wave, sample_rate=16_000).duration_s == pytest.approx(0.5)


def test_export_command_line(trained_run, tmp_path, capsys):
    run_dir, _, _ = trained_run
    out = tmp_path / "cli.onnx"
    assert main(["export", str(run_dir), "--out", str(out), "--quiet", "--max-clips", "4"]) == 0
    printed = capsys.readouterr().out
    assert "top-1 agreement 100.0%" in printed and out.is_file()
    assert json.loads(out.with_name("cli.export.json").read_text())["n_clips"] == 4
    assert main(["export", str(tmp_path / "not_a_run")]) == 2
    assert "labels.json" in capsys.readouterr().err


def test_tied_probabilities_go_to_the_first_label_as_argmax():
    """int8 models quantise the logits, so two classes can tie exactly (an SC12 test clip's output)."""
    probs = np.array([0.00865, 0.04667, 0.00372, 0.01492, 0.02219, 0.00372, 0.05690, 0.00501, 0.00321,
                      0.41338, 0.41338, 0.00823], np.float32)
    labels = [f"c{i}" for i in range(len(probs))]
    recognizer = Recognizer(lambda clips: np.tile(probs, (len(clips), 1)), labels, 16_000, 16_000, top_k=3)
    result = recognizer.recognize(np.zeros(16_000, np.float32))
    assert result.label == labels[int(np.argmax(probs))] == "c9"
    assert [label for label, _ in result.top_k] == ["c9", "c10", "c6"]


def _second_member(run_dir: Path, out: Path, seed: int = 1) -> Path:
    """A copy of ``run_dir`` whose encoder weights are moved by noise: another member to ensemble."""
    import shutil

    import torch

    from audiorec.run import RunDir

    shutil.copytree(run_dir, out)
    path = RunDir(out).require_checkpoint()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(seed)
    for key, value in checkpoint["state_dict"].items():
        if ".encoder." in key and value.is_floating_point() and "running" not in key:
            value.add_(0.3 * value.std().nan_to_num() * torch.randn(value.shape, generator=generator))
    torch.save(checkpoint, path)
    return out


def test_ensemble_averages_the_posteriors_and_exports_as_one_graph(trained_run, tmp_path):
    from audiorec.recognize import load_ensemble, load_run

    run_a, _, _ = trained_run
    run_b = _second_member(run_a, tmp_path / "b")
    clips = np.random.default_rng(0).normal(0, 0.1, (5, 16000)).astype(np.float32)
    p_a, p_b = load_run(run_a)(clips), load_run(run_b)(clips)
    assert np.abs(p_a - p_b).max() > 1e-3, "the perturbed member must answer differently"
    from audiorec.models.ensemble import PosteriorAverage

    alone = load_ensemble([run_a])
    assert not isinstance(alone.model.encoder, PosteriorAverage), "one run is exported as itself"
    np.testing.assert_allclose(alone(clips), p_a, atol=1e-6)
    members = load_ensemble([run_a, run_b])
    assert isinstance(members.model.encoder, PosteriorAverage)
    np.testing.assert_allclose(members(clips), (p_a + p_b) / 2, atol=1e-6)
    assert sum(p.numel() for p in members.model.features.parameters()) == sum(
        p.numel() for p in load_run(run_a).model.features.parameters()), "one front end, not two"

    out = tmp_path / "ensemble.onnx"
    report = export_run(run_a, out, progress=False, ensemble=[run_b])
    assert report.parity_max_abs_diff < 1e-4 and report.parity_top1_agreement == 1.0
    model = Recognizer.load(out)
    np.testing.assert_allclose(model.predict_proba(clips), (p_a + p_b) / 2, atol=1e-4)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["audiorec.ensemble"]) == [str(run_a), str(run_b)]
    assert main(["export", str(run_a), "--ensemble", str(run_b), "--out", str(tmp_path / "cli.onnx"), "--quiet",
                 "--int8", "--max-clips", "8", "--calibration-clips", "8"]) == 0
    assert Recognizer.load(tmp_path / "cli.onnx").predict_proba(clips).shape == p_a.shape


def test_ensemble_of_different_front_ends_keeps_one_copy_of_each_and_weights_every_member_once(trained_run, tmp_path):
    """Two members over the run's log-mel bands and one over other bands: the mean of all three."""
    import torch

    from audiorec.models.ensemble import FrontEndAverage
    from audiorec.recognize import load_ensemble, load_run

    run_a, _, _ = trained_run
    run_b = _second_member(run_a, tmp_path / "b")
    run_c = _second_member(run_a, tmp_path / "c", seed=2)
    config = (run_c / "config.yaml").read_text()
    assert "f_min_hz: 20.0" in config
    (run_c / "config.yaml").write_text(config.replace("f_min_hz: 20.0", "f_min_hz: 300.0"))
    clips = np.random.default_rng(0).normal(0, 0.1, (5, 16000)).astype(np.float32)
    p_a, p_b, p_c = (load_run(r)(clips) for r in (run_a, run_b, run_c))
    members = load_ensemble([run_a, run_c, run_b])
    model = members.model
    assert isinstance(model, FrontEndAverage) and len(model.groups) == 2
    assert [len(g.encoder.encoders) for g in model.groups] == [2, 1], "a and b share a front end, c has its own"
    assert not torch.equal(model.groups[0].features.mel_basis(), model.groups[1].features.mel_basis())
    expected = (p_a + p_b + p_c) / 3
    assert np.abs(expected - (p_a + p_b) / 4 - p_c / 2).max() > 1e-4, "equal group weights must be distinguishable"
    np.testing.assert_allclose(members(clips), expected, atol=1e-6)

    out = tmp_path / "mixed.onnx"
    report = export_run(run_a, out, int8=True, progress=False, ensemble=[run_c, run_b], calibration_clips=16)
    assert report.parity_max_abs_diff < 1e-4 and report.parity_top1_agreement == 1.0
    np.testing.assert_allclose(Recognizer.load(report.fp32_model).predict_proba(clips), expected, atol=1e-4)
    int8 = onnx.load(str(out)).graph
    assert any(n.op_type == "DequantizeLinear" for n in int8.node), "the encoders are quantised"
    assert Recognizer.load(out).predict_proba(clips).shape == expected.shape


def test_ensemble_refuses_runs_that_do_not_match(trained_run, tmp_path):
    from audiorec.recognize import load_ensemble
    from audiorec.run import RunError

    run_a, _, _ = trained_run
    relabelled = _second_member(run_a, tmp_path / "relabelled")
    labels = json.loads((relabelled / "labels.json").read_text())
    (relabelled / "labels.json").write_text(json.dumps(labels[::-1]))
    with pytest.raises(RunError, match="relabelled: labels"):
        load_ensemble([run_a, relabelled])

    other_window = _second_member(run_a, tmp_path / "other_window")
    config = (other_window / "config.yaml").read_text()
    assert "clip_ms: 1000.0" in config
    (other_window / "config.yaml").write_text(config.replace("clip_ms: 1000.0", "clip_ms: 800.0"))
    with pytest.raises(RunError, match="other_window: hears 12800-sample clips at 16000 Hz"):
        load_ensemble([run_a, other_window])

    other_split = _second_member(run_a, tmp_path / "other_split")
    test_split = other_split / "splits" / "test.jsonl"
    test_split.write_text("".join(test_split.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(RunError, match="other_split: its test split differs"):
        export_run(run_a, tmp_path / "x.onnx", progress=False, ensemble=[other_split])
    with pytest.raises(RunError, match="at least one"):
        load_ensemble([])
