"""Export a trained recognizer to ONNX, check it against PyTorch, and quantise it to int8.

A command recognizer exports as waveform in, class probabilities out; a CTC speech recognizer
(``task=asr``) as waveform in, per-frame token log-probabilities out, transcribed by
:class:`audiorec.runtime.Transcriber` (numpy and onnxruntime only).

One graph goes from raw waveform to class probabilities, the feature front end included, so a
user ships one file and :class:`audiorec.runtime.Recognizer` (onnxruntime and numpy) runs it on a
server, a phone or in the browser (onnxruntime-web). The labels, the sample rate, the clip length
and the training config travel in the model's metadata.

Every export is checked on real clips (the run's test split): the largest absolute difference of
the probabilities and the top-1 agreement between PyTorch and ONNX Runtime are reported, and with
``int8=True`` the accuracy of the quantised model beside the float one. The report is written next
to the model as ``<name>.export.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from audiorec.audio import fit_to_length
from audiorec.run import RunDir, RunError, atomic_write_bytes, atomic_write_text
from audiorec.runtime import ASR_OUTPUT_NAME, INPUT_NAME, OUTPUT_NAME, Recognizer, Transcriber

OPSET = 18  # ONNX Runtime 1.16+ and onnxruntime-web run it
CONSTANT_FOLD_LIMIT = 64  # elements; larger computed constants are folded by ONNX Runtime at load, not stored


class ProbabilityModel(nn.Module):
    """A classifier followed by a softmax: the graph that is exported.

    Shape
    -----
    input : (batch, n_samples) float32 waveform
    output : (batch, n_classes) probabilities, rows summing to 1
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(waveform), dim=-1)


@dataclass
class ExportReport:
    """What an export produced and how well the ONNX model agrees with PyTorch.

    Attributes
    ----------
    model : str
        The model file to ship (int8 when ``precision == "int8"``).
    precision : {"fp32", "int8"}
    fp32_model : str
        The float model (the same file as ``model`` for an fp32 export).
    size_bytes, fp32_size_bytes : int
    n_clips : int
        Real clips (utterances, for ``asr``) the checks ran on.
    parity_max_abs_diff : float
        Largest |p_onnx - p_torch| over all clips and classes, fp32 model (for ``asr``, over all
        frames and tokens of the per-frame token probabilities).
    parity_top1_agreement : float in [0, 1]
        Share of clips where the fp32 ONNX model and PyTorch give the same label (for ``asr``,
        the same greedy transcript).
    accuracy_torch, accuracy_onnx, accuracy_int8 : float or None
        On the clips, when they are labelled (the test split); int8 only when quantised.
    int8_top1_agreement : float or None
        Share of clips where the int8 model agrees with PyTorch.
    wer_torch, wer_onnx, cer_torch, cer_onnx : float or None
        Word and character error rates of the utterances (``asr`` only), greedy decoding.
    export_time_s : float
    """

    model: str
    precision: str
    fp32_model: str
    size_bytes: int
    fp32_size_bytes: int
    n_clips: int
    parity_max_abs_diff: float
    parity_top1_agreement: float
    accuracy_torch: float | None = None
    accuracy_onnx: float | None = None
    accuracy_int8: float | None = None
    int8_top1_agreement: float | None = None
    wer_torch: float | None = None
    wer_onnx: float | None = None
    cer_torch: float | None = None
    cer_onnx: float | None = None
    export_time_s: float = 0.0


def export_onnx(model: nn.Module, out: str | Path, labels: Sequence[str], sample_rate: int, clip_samples: int,
                metadata: dict[str, str] | None = None) -> Path:
    """Write a waveform classifier as one ONNX graph with probabilities out.

    Parameters
    ----------
    model : nn.Module
        (batch, n_samples) float32 waveform to (batch, n_classes) logits, front end inside
        (:class:`~audiorec.models.classifier.CommandClassifier`); exported in eval mode.
    out : str or Path
        ``.onnx`` file, written atomically, weights inside (no external data file).
    labels : sequence of str
        Class names in output order.
    sample_rate : int
        Hz of the input.
    clip_samples : int
        Training clip length; also the length of the example input the graph is traced with.
    metadata : dict of str to str, optional
        More ``metadata_props`` (for example ``audiorec.config``).

    Returns
    -------
    Path

    References
    ----------
    ONNX operator set 18 (onnx.ai); PyTorch's ``torch.onnx.export(dynamo=True)``, which traces with
    ``torch.export`` and translates with onnxscript.

    Notes
    -----
    Exported with PyTorch's ``torch.export``-based exporter at opset :data:`OPSET`, with dynamic
    batch and sample axes. Constants the graph computes (the DFT kernel and mel filters of
    :class:`~audiorec.features.LogMel`) are left for ONNX Runtime to fold when it loads the model,
    and the exporter's per-node debugging records and shape annotations are dropped, which keeps
    the file to the size of the weights.
    """
    props = {
        "audiorec.labels": json.dumps(list(labels)),
        "audiorec.sample_rate": str(int(sample_rate)),
        "audiorec.clip_samples": str(int(clip_samples)),
        "audiorec.precision": "fp32",
        **(metadata or {}),
    }
    return _write_onnx(ProbabilityModel(model), out, OUTPUT_NAME, clip_samples, batch=2, props=props)


class LogProbsModel(nn.Module):
    """A CTC model without its lengths output: the graph of a speech recognizer that is exported.

    Shape
    -----
    input : (batch, n_samples) float32 waveform, every utterance using all its samples
    output : (batch, n_frames, n_tokens) log-probabilities
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.model(waveform)[0]


def export_ctc_onnx(model: nn.Module, out: str | Path, vocab: Sequence[str], sample_rate: int, frame_s: float,
                    metadata: dict[str, str] | None = None) -> Path:
    """Write a CTC speech recognizer as one ONNX graph from waveform to token log-probabilities.

    Parameters
    ----------
    model : CTCModel
        (batch, n_samples) waveform to ((batch, n_frames, n_tokens) log-probabilities, lengths),
        front end inside; exported in eval mode.
    out : str or Path
        ``.onnx`` file, written atomically.
    vocab : sequence of str
        Token strings by id, the CTC blank at 0 (stored as ``audiorec.vocab``).
    sample_rate : int
        Hz of the input.
    frame_s : float
        Seconds per output frame (stored as ``audiorec.frame_s``, for word timings).
    metadata : dict of str to str, optional

    Returns
    -------
    Path

    Notes
    -----
    Traced by PyTorch's TorchScript exporter (``torch.onnx.export(dynamo=False)``) at opset
    :data:`OPSET` with dynamic batch and sample axes; the recurrent layers become ONNX ``GRU`` or
    ``LSTM`` operators. The ``torch.export``-based exporter of :func:`export_onnx` fails to
    decompose a bidirectional GRU fed by the convolutions in PyTorch 2.13 ("size of tensor a
    (256) must match the size of tensor b (768)"). The traced graph stores the front end's DFT
    kernel (about 0.9 MB) instead of computing it. Utterances of one call must have the same
    length (the runtime transcribes one at a time).
    """
    props = {
        "audiorec.task": "asr",
        "audiorec.vocab": json.dumps(list(vocab), ensure_ascii=False),
        "audiorec.sample_rate": str(int(sample_rate)),
        "audiorec.frame_s": repr(float(frame_s)),
        "audiorec.precision": "fp32",
        **(metadata or {}),
    }
    return _write_onnx(LogProbsModel(model), out, ASR_OUTPUT_NAME, 2 * int(sample_rate), batch=1, props=props,
                       dynamo=False)


def _write_onnx(wrapped: nn.Module, out: str | Path, output_name: str, n_samples: int, batch: int, props: dict[str, str],
                dynamo: bool = True) -> Path:
    """Trace ``wrapped`` (waveform in, one tensor out) with dynamic batch and sample axes and write it,
    with ``torch.export`` (``dynamo``) or the TorchScript tracer."""
    import onnx
    import onnxscript.optimizer

    wrapped = wrapped.eval()
    example = torch.zeros(batch, n_samples)
    example[:, ::97] = 0.1  # not silent, so no branch is traced on a degenerate input
    with _quiet():
        if dynamo:
            program = torch.onnx.export(
                wrapped, (example,), None, input_names=[INPUT_NAME], output_names=[output_name],
                dynamic_shapes=({0: torch.export.Dim("batch"), 1: torch.export.Dim("samples", min=1024)},),
                opset_version=OPSET, dynamo=True, optimize=False, verbose=False,
            )
            onnxscript.optimizer.optimize(program.model, output_size_limit=CONSTANT_FOLD_LIMIT)
            proto = program.model_proto
        else:
            buffer = io.BytesIO()
            torch.onnx.export(
                wrapped, (example,), buffer, input_names=[INPUT_NAME], output_names=[output_name],
                dynamic_axes={INPUT_NAME: {0: "batch", 1: "samples"}, output_name: {0: "batch", 1: "frames"}},
                opset_version=OPSET, dynamo=False,
            )
            proto = onnx.load_from_string(buffer.getvalue())
    _strip(proto)
    _set_metadata(proto, props)
    proto.producer_name = "audiorec"
    return atomic_write_bytes(out, proto.SerializeToString())


def quantize_int8(fp32_model: str | Path, out: str | Path, calibration_clips: np.ndarray, batch_size: int = 16) -> Path:
    """Static int8 quantisation of an exported model with ONNX Runtime, the front end kept in float.

    The layers with stored weights (the network's convolutions and linear layers) get int8
    weights, one scale per output channel, and int8 inputs whose ranges are calibrated on
    ``calibration_clips``. The front end stays float32, both what the graph computes from
    constants (the DFT and mel filters) and a DFT kernel trained with ``features.learnable_dft``:
    the power spectrum spans more orders of magnitude than 8 bits hold (quantising a trained
    kernel's convolution cut a small model's accuracy from 0.68 to 0.44 in one check).

    Parameters
    ----------
    fp32_model : str or Path
        Written by :func:`export_onnx`.
    out : str or Path
        Quantised ``.onnx``, written atomically; keeps the metadata, with ``audiorec.precision`` = int8.
    calibration_clips : np.ndarray [shape=(n, clip_samples), dtype=float32]
        Typical inputs (training clips); a few hundred are enough.
    batch_size : int

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        No calibration clips, or no layer with stored weights to quantise (the ``gmm`` baseline
        computes its matrices from its buffers).

    References
    ----------
    Jacob et al. 2018, "Quantization and training of neural networks for efficient integer-
    arithmetic-only inference"; ONNX Runtime's ``quantize_static`` (QDQ format).
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    if len(calibration_clips) == 0:
        raise ValueError("int8 quantisation needs calibration clips; the training split is empty")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{INPUT_NAME: np.ascontiguousarray(calibration_clips[i : i + batch_size], np.float32)}
                                 for i in range(0, len(calibration_clips), batch_size)])

        def get_next(self):
            return next(self.batches, None)

    proto = onnx.load(str(fp32_model))
    # The front ends' weights (a DFT kernel trained with features.learnable_dft, a pretrained
    # embedding) stay float too; an ensemble of front ends has them under groups.<i>.features.
    stored = {i.name for i in proto.graph.initializer if not re.search(r"(^|\.)features\.", i.name)}
    weighted = [n.name for n in proto.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in stored]
    if not weighted:  # onnxruntime reads an empty nodes_to_quantize as "every node", front end included
        raise ValueError(f"{fp32_model}: no convolution or matrix product with stored weights; nothing to quantise to int8")
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        tmp_out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(fp32_model), str(tmp_out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            nodes_to_quantize=weighted, calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        quantized = onnx.load(str(tmp_out))
    _strip(quantized)
    _set_metadata(quantized, {**{p.key: p.value for p in proto.metadata_props}, "audiorec.precision": "int8"})
    return atomic_write_bytes(out, quantized.SerializeToString())


def export_run(run_dir: str | Path, out: str | Path | None = None, int8: bool = False, max_clips: int | None = None,
               calibration_clips: int = 256, progress: bool = True, ensemble: Sequence[str | Path] = ()) -> ExportReport:
    """Export a training run, check parity on its test clips, optionally quantise, write a report.

    Parameters
    ----------
    run_dir : str or Path
        Written by ``audiorec train`` (best checkpoint, config, labels, ``splits/``).
    out : str or Path, optional
        The model to ship; default ``RUN_DIR/model.onnx``. With ``int8`` this file is the int8
        model and the float one is kept beside it as ``<stem>.fp32.onnx``.
    int8 : bool
        Also quantise (:func:`quantize_int8`) and measure the accuracy change.
    max_clips : int, optional
        Check on at most this many test clips (default all).
    calibration_clips : int
        Training clips used to calibrate the int8 activation ranges.
    progress : bool
    ensemble : sequence of str or Path
        More runs of the same classes, clip length and test split (the same recipe at other
        seeds, or other models and front ends): the exported model averages the posteriors of
        ``run_dir`` and these (:func:`audiorec.recognize.load_ensemble`), one encoder per run and
        one copy of each distinct front end. The parity and accuracy checks are of the
        ensemble, on ``run_dir``'s test clips.

    Returns
    -------
    ExportReport
        Also written as ``<stem>.export.json`` beside ``out``.

    Raises
    ------
    RunError
        Not a run directory, or no clips in it to check the export on.
        An ``ensemble`` run that does not match ``run_dir`` (classes, front end, test split).
    ValueError
        ``int8`` or ``ensemble`` for a speech recognizer (not supported yet).
    """
    from audiorec.data.dataset import load_waveforms
    from audiorec.recognize import load_ensemble

    started = time.time()
    run = RunDir(Path(run_dir))
    if run.tokenizer.is_file():
        if ensemble:
            raise ValueError(f"{run.root}: ensembles of speech recognizers (task=asr) are not supported")
        if int8:
            raise ValueError(f"{run.root}: int8 export of speech recognizers (task=asr) is not supported yet; export fp32")
        return _export_asr_run(run, Path(out) if out else run.root / "model.onnx", max_clips if max_clips is not None else 50,
                               started, progress)
    for other in ensemble:  # members must not have trained on the clips the export is checked and scored on
        if not _same_file(RunDir(Path(other)).root / "splits" / "test.jsonl", run.root / "splits" / "test.jsonl"):
            raise RunError(f"{other}: its test split differs from {run.root}'s; an ensemble is checked on one test split")
    predict = load_ensemble([run.root, *ensemble])  # PyTorch, the model the export must match (load_run's for one run)
    reference = Recognizer(predict, predict.labels, predict.sample_rate, predict.clip_samples, config=predict.config)
    out = Path(out) if out else run.root / "model.onnx"
    fp32_path = out.with_name(out.stem + ".fp32.onnx") if int8 else out
    check = _clips_for(run, ("test", "val", "train"), max_clips)
    if check is None:
        raise RunError(f"{run.root}: no clips in splits/ to check the export on")
    utterances, split = check
    waves = load_waveforms(utterances, reference.sample_rate, progress=progress, desc=f"load {split} clips")
    clips = np.stack([fit_to_length(w, reference.clip_samples) for w in waves])

    export_onnx(reference.predict.model, fp32_path, reference.labels, reference.sample_rate, reference.clip_samples,
                metadata={"audiorec.config": run.config.read_text(encoding="utf-8"), "audiorec.task": "commands",
                          **({"audiorec.ensemble": json.dumps([str(run.root), *map(str, ensemble)])} if ensemble else {})})
    p_torch = reference.predict_proba(clips)
    p_onnx = Recognizer.load(fp32_path).predict_proba(clips)
    labels = [u.label for u in utterances]
    accuracy = (lambda p: float(np.mean([reference.labels[i] == l for i, l in zip(p.argmax(1), labels)]))) if all(labels) else (lambda p: None)
    report = ExportReport(
        model=str(out), precision="int8" if int8 else "fp32", fp32_model=str(fp32_path),
        size_bytes=fp32_path.stat().st_size, fp32_size_bytes=fp32_path.stat().st_size, n_clips=len(clips),
        parity_max_abs_diff=float(np.abs(p_onnx - p_torch).max()),
        parity_top1_agreement=float(np.mean(p_onnx.argmax(1) == p_torch.argmax(1))),
        accuracy_torch=accuracy(p_torch), accuracy_onnx=accuracy(p_onnx),
    )
    if int8:
        calibration = _clips_for(run, ("train", "val", "test"), calibration_clips, seed=0)
        calib_waves = load_waveforms(calibration[0], reference.sample_rate, progress=progress, desc="load calibration clips")
        quantize_int8(fp32_path, out, np.stack([fit_to_length(w, reference.clip_samples) for w in calib_waves]))
        p_int8 = Recognizer.load(out).predict_proba(clips)
        report.size_bytes = out.stat().st_size
        report.accuracy_int8 = accuracy(p_int8)
        report.int8_top1_agreement = float(np.mean(p_int8.argmax(1) == p_torch.argmax(1)))
    report.export_time_s = round(time.time() - started, 1)
    atomic_write_text(out.with_name(out.stem + ".export.json"), json.dumps(asdict(report), indent=2) + "\n")
    return report


def _export_asr_run(run: RunDir, out: Path, max_clips: int, started: float, progress: bool) -> ExportReport:
    """Export a ``task=asr`` run and compare ONNX Runtime with PyTorch on up to ``max_clips`` test utterances."""
    from audiorec.data.dataset import load_waveforms
    from audiorec.metrics import error_rates

    reference = Transcriber.from_run(run.root)
    check = _clips_for(run, ("test", "val", "train"), max_clips)
    if check is None:
        raise RunError(f"{run.root}: no utterances in splits/ to check the export on")
    utterances, split = check
    waves = load_waveforms(utterances, reference.sample_rate, progress=progress, desc=f"load {split} utterances")
    export_ctc_onnx(reference.predict.model, out, reference.vocab, reference.sample_rate, reference.frame_s,
                    metadata={"audiorec.config": run.config.read_text(encoding="utf-8")})
    exported = Transcriber.load(out, threads=1)
    diff, texts_torch, texts_onnx = 0.0, [], []
    for wave in waves:
        lp_torch, lp_onnx = reference.log_probs(wave), exported.log_probs(wave)
        diff = max(diff, float(np.abs(np.exp(lp_torch) - np.exp(lp_onnx)).max()))
        duration_s = len(wave) / reference.sample_rate
        texts_torch.append(reference.decode(lp_torch, duration_s).text)
        texts_onnx.append(exported.decode(lp_onnx, duration_s).text)
    rates = {}
    if all(u.text for u in utterances):
        refs = [u.text for u in utterances]
        rates = {"torch": error_rates(refs, texts_torch), "onnx": error_rates(refs, texts_onnx)}
    size = out.stat().st_size
    report = ExportReport(
        model=str(out), precision="fp32", fp32_model=str(out), size_bytes=size, fp32_size_bytes=size,
        n_clips=len(waves), parity_max_abs_diff=diff,
        parity_top1_agreement=float(np.mean([a == b for a, b in zip(texts_torch, texts_onnx)])),
        wer_torch=rates["torch"]["wer"] if rates else None, wer_onnx=rates["onnx"]["wer"] if rates else None,
        cer_torch=rates["torch"]["cer"] if rates else None, cer_onnx=rates["onnx"]["cer"] if rates else None,
        export_time_s=round(time.time() - started, 1),
    )
    atomic_write_text(out.with_name(out.stem + ".export.json"), json.dumps(asdict(report), indent=2) + "\n")
    return report


def _same_file(a: Path, b: Path) -> bool:
    """Whether two files exist and hold the same bytes."""
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


def _clips_for(run: RunDir, splits: Sequence[str], limit: int | None, seed: int | None = None):
    """The utterances of the first non-empty split (and its name), at most ``limit`` of them."""
    from audiorec.data.manifest import read_manifest

    for split in splits:
        path = run.splits / f"{split}.jsonl"
        utterances = read_manifest(path) if path.is_file() else []
        if utterances:
            if limit is not None and len(utterances) > limit:
                order = np.random.default_rng(seed).permutation(len(utterances))[:limit] if seed is not None else range(limit)
                utterances = [utterances[i] for i in sorted(order)]
            return utterances, split
    return None


def _strip(proto) -> None:
    """Drop what only debugging needs: the exporter's per-node stack traces and scopes, and the
    intermediate shape annotations (ONNX Runtime infers them again); they were two thirds of the file."""
    for node in proto.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.graph.value_info[:]


def _set_metadata(proto, props: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's and the quantiser's progress prints and warnings (they are for their developers)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "root", "onnxscript")]
    levels = [l.level for l in loggers]
    for l in loggers:
        l.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for l, level in zip(loggers, levels):
            l.setLevel(level)
