"""Streaming keyword detection: the detector on planted tones, evaluation streams, detection
metrics, the DET curve and ``audiorec listen``.

The recognizer here is a deterministic tone classifier: each command is a frequency, and its
posterior is the amplitude of that frequency in the window against a constant silence score. A
0.5 s tone of amplitude 1 wholly inside a 1 s window scores 0.5 / (0.5 + 0.05) = 0.91, and
``l`` seconds of it score ``l / (l + 0.05)``, so when a detection fires can be worked out by hand.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiorec.cli import main
from audiorec.data.manifest import Utterance, write_manifest
from audiorec.data.stream import TimelineEvent, build_stream, read_timeline, speech_bounds, write_timeline
from audiorec.metrics import DET_COLUMNS, DET_THRESHOLDS, det_curve, detection_metrics, write_det_curve_csv
from audiorec.runtime import Recognizer
from audiorec.streaming import Detection, StreamingDetector

from conftest import dominant_frequency

SR = 16_000
LABELS = ["_silence_", "_unknown_", "yes", "no"]
TONE_HZ = {"_unknown_": 3000.0, "yes": 1000.0, "no": 2000.0}
SILENCE_SCORE = 0.05  # the _silence_ column: all of the mass when no tone is there
_n = np.arange(SR)[:, None]
_freqs = np.array([[0.0] + [TONE_HZ[l] for l in LABELS[1:]]])
COS = np.where(_freqs > 0, np.cos(2 * np.pi * _freqs * _n / SR), 0).astype(np.float32)  # [clip, n_classes]
SIN = np.where(_freqs > 0, np.sin(2 * np.pi * _freqs * _n / SR), 0).astype(np.float32)
BIAS = np.array([SILENCE_SCORE, 0, 0, 0], np.float32)


def tone_predict(clips: np.ndarray) -> np.ndarray:
    """Posteriors of 1 s clips: amplitude of each label's tone (DFT bin), normalised with the silence score."""
    score = 2 / SR * np.sqrt((clips @ COS) ** 2 + (clips @ SIN) ** 2) + BIAS
    return (score / score.sum(axis=1, keepdims=True)).astype(np.float32)


def tone_recognizer() -> Recognizer:
    return Recognizer(tone_predict, LABELS, sample_rate=SR, clip_samples=SR)


def plant(duration_s: float, words, seed: int = 0) -> np.ndarray:
    """Faint white noise with tones ``(label, start_s, length_s, amplitude)`` added."""
    y = np.random.default_rng(seed).normal(0, 1e-3, round(duration_s * SR)).astype(np.float32)
    for label, start_s, length_s, amplitude in words:
        n0, n = round(start_s * SR), round(length_s * SR)
        y[n0 : n0 + n] += amplitude * np.sin(2 * np.pi * TONE_HZ[label] * np.arange(n0, n0 + n) / SR).astype(np.float32)
    return y


# Two commands, a negative word between them, then the two again; 0.5 s each.
WORDS = [("yes", 2.05, 0.5, 1.0), ("no", 6.05, 0.5, 1.0), ("_unknown_", 9.05, 0.5, 1.0),
         ("yes", 12.05, 0.5, 1.0), ("no", 16.05, 0.5, 1.0)]
TIMELINE = [TimelineEvent(start, start + length, label) for label, start, length, _ in WORDS]


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return plant(20.0, WORDS)


# --- the detector -------------------------------------------------------------------------------


def test_planted_words_are_found_at_the_times_worked_out_by_hand(stream):
    # No smoothing, threshold 0.8: a tone fires in the first window holding >= 0.2 s of it
    # (0.2 / 0.25 = 0.8; 0.15 s gives 0.75), i.e. the window ending at onset + 0.25 s here.
    detector = StreamingDetector(tone_recognizer(), hop_ms=100, smooth_ms=0, threshold=0.8)
    found = detector.detect(stream)
    assert [(d.label, round(d.time_s, 6)) for d in found] == [("yes", 2.3), ("no", 6.3), ("yes", 12.3), ("no", 16.3)]
    assert all(abs(d.score - 0.25 / 0.30) < 1e-3 for d in found)


def test_default_detector_finds_every_word_inside_it_and_nothing_in_the_gaps(stream):
    found = StreamingDetector(tone_recognizer()).detect(stream)
    assert [d.label for d in found] == ["yes", "no", "yes", "no"]
    for d, (label, start, length, _) in zip(found, [w for w in WORDS if w[0] != "_unknown_"]):
        assert start <= d.time_s <= start + length + 0.2, (d, start)
    assert detection_metrics(found, TIMELINE, 20.0, tolerance_s=0.2)["false_accepts"] == 0


def test_ignored_labels_never_fire():
    # _silence_ has all the mass in silence, _unknown_ 0.91 on its tone: neither may fire.
    y = plant(6.0, [("_unknown_", 1.05, 2.0, 1.0)])
    probs = StreamingDetector(tone_recognizer()).posteriors(y)[1]
    assert probs[:, 0].max() > 0.99 and probs[:, 1].max() > 0.9
    assert StreamingDetector(tone_recognizer(), threshold=0.5).detect(y) == []
    # ... unless the detector is told to ignore nothing else.
    assert [d.label for d in StreamingDetector(tone_recognizer(), ignore=("_silence_",)).detect(y)] == ["_unknown_"]


def test_a_long_word_fires_once_even_without_refractory_period():
    y = plant(6.0, [("yes", 1.05, 2.5, 1.0)])
    assert len(StreamingDetector(tone_recognizer(), smooth_ms=0, refractory_ms=0).detect(y)) == 1


def test_refractory_period_suppresses_a_second_detection():
    # "no" 0.3 s after "yes" crosses 1.2 s after it (once "yes" has nearly left the window).
    y = plant(10.0, [("yes", 2.05, 0.5, 1.0), ("no", 2.85, 0.5, 1.0)])

    def labels(refractory_ms):
        return [(d.label, round(d.time_s, 6)) for d in
                StreamingDetector(tone_recognizer(), smooth_ms=0, refractory_ms=refractory_ms).detect(y)]

    assert labels(1000) == [("yes", 2.3), ("no", 3.5)]
    assert labels(1500) == [("yes", 2.3)]
    # The same label fires again once its posterior has fallen and the period is over.
    y2 = plant(8.0, [("yes", 1.05, 0.5, 1.0), ("yes", 3.05, 0.5, 1.0)])
    assert len(StreamingDetector(tone_recognizer(), smooth_ms=0, refractory_ms=1000).detect(y2)) == 2
    assert len(StreamingDetector(tone_recognizer(), smooth_ms=0, refractory_ms=2500).detect(y2)) == 1


def test_feed_in_odd_sized_chunks_equals_detect(stream):
    detector = StreamingDetector(tone_recognizer(), smooth_ms=500)
    expected = detector.detect(stream)
    assert len(expected) == 4
    rng = np.random.default_rng(1)
    sizes = [0, 1, 7, 15_999, 16_001, 333] + list(rng.integers(1, 9_000, 200))
    got, position = [], 0
    for size in sizes:
        got += detector.feed(stream[position : position + size])
        position += size
        if position >= len(stream):
            break
    got += detector.feed(stream[position:])

    def same(a, b):  # a model's output may differ in the last bit with the batch it is computed in
        return [(d.label, d.time_s) for d in a] == [(d.label, d.time_s) for d in b] and \
            np.allclose([d.score for d in a], [d.score for d in b], rtol=0, atol=1e-6)

    assert same(got, expected)
    assert detector.stream_time_s == pytest.approx(20.0)
    detector.reset()  # a new stream: times from 0 again
    tail = stream[10 * SR :]
    assert detector.feed(tail[: SR // 2]) == [] and detector.stream_time_s == 0.5
    got = detector.feed(tail[SR // 2 :])
    assert [(d.label, round(d.time_s + 10, 6)) for d in got] == [(d.label, round(d.time_s, 6)) for d in expected if d.time_s > 10]


def test_posteriors_shapes_times_and_short_input():
    detector = StreamingDetector(tone_recognizer(), hop_ms=250)
    times, probs = detector.posteriors(np.zeros(SR * 2, np.float32))
    assert probs.shape == (5, 4) and np.allclose(probs.sum(axis=1), 1)
    assert times.tolist() == [0.5, 0.75, 1.0, 1.25, 1.5]  # window centres
    times, probs = detector.posteriors(np.zeros(SR - 1, np.float32))
    assert times.shape == (0,) and probs.shape == (0, 4)
    assert detector.detect(np.zeros(100, np.float32)) == []
    assert Detection(1.23456, "yes", 0.912345).to_dict() == {"time_s": 1.235, "label": "yes", "score": 0.9123}


@pytest.mark.parametrize("kwargs, message", [
    ({"hop_ms": 0}, "hop_ms=0"),
    ({"hop_ms": 1500}, "hop_ms=1500"),
    ({"hop_ms": 0.01}, "shorter than one sample"),
    ({"smooth_ms": -1.0}, "smooth_ms=-1.0"),
    ({"threshold": 0}, "threshold=0"),
    ({"threshold": 1.5}, "threshold=1.5"),
    ({"refractory_ms": float("nan")}, "refractory_ms=nan"),
    ({"ignore": LABELS}, "every label of the model is ignored"),
])
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StreamingDetector(tone_recognizer(), **kwargs)


def test_bad_input_is_refused_with_a_reason(stream):
    detector = StreamingDetector(tone_recognizer())
    with pytest.raises(ValueError, match="1-D array, got shape"):
        detector.detect(np.zeros((2, SR), np.float32))
    with pytest.raises(ValueError, match="1-D array"):
        detector.feed(np.zeros((SR, 1), np.float32))
    with pytest.raises(ValueError, match="audio at 8000 Hz given to a model trained at 16000 Hz"):
        detector.detect(stream, sample_rate=8000)
    with pytest.raises(ValueError, match=r"probs \[n, 4\]"):
        detector.detections_from_posteriors(np.zeros(3), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="threshold=2"):
        detector.detections_from_posteriors(*detector.posteriors(stream), threshold=2)


# --- detection metrics and the DET curve ---------------------------------------------------------


def test_detection_metrics_on_a_hand_made_case():
    timeline = [TimelineEvent(1.0, 1.5, "yes"), TimelineEvent(4.0, 4.5, "no", "spk1/no_0.flac"),
                TimelineEvent(7.0, 7.5, "_unknown_"), TimelineEvent(10.0, 10.5, "yes")]
    detections = [
        Detection(1.6, "yes", 0.9),   # hit: 0.1 s after the offset, inside the tolerance
        Detection(1.8, "yes", 0.9),   # a second detection of the same word: false accept
        Detection(4.2, "yes", 0.9),   # wrong label on "no": false accept, and "no" is missed
        Detection(7.2, "no", 0.9),    # on a negative word
        Detection(8.8, "yes", 0.9),   # in the background (more than 0.5 s from any word)
        Detection(9.6, "yes", 0.9),   # hit: 0.4 s before the second "yes"
    ]
    m = detection_metrics(detections, timeline, duration_s=7200.0)
    assert (m["n_keywords"], m["hits"], m["misses"], m["false_accepts"]) == (3, 2, 1, 4)
    assert m["detection_rate"] == pytest.approx(2 / 3)
    assert m["false_accepts_per_hour"] == pytest.approx(2.0)
    assert m["false_accepts_by_cause"] == {"keyword": 2, "negative_word": 1, "background": 1}
    assert m["per_label"]["no"] == {"n": 1, "hits": 0, "false_accepts": 1}
    listed = [(f["time_s"], f["label"], f["cause"], f["nearest"]["label"], f["nearest"]["start_s"]) for f in m["false_accept_list"]]
    assert listed == [(1.8, "yes", "keyword", "yes", 1.0), (4.2, "yes", "keyword", "no", 4.0),
                      (7.2, "no", "negative_word", "_unknown_", 7.0), (8.8, "yes", "background", "yes", 10.0)]
    assert all(f["score"] == 0.9 for f in m["false_accept_list"])
    # the word's recording is named when the timeline has it (which speaker's "no" was heard as "yes")
    assert [f["nearest"].get("path") for f in m["false_accept_list"]] == [None, "spk1/no_0.flac", None, None]
    tight = detection_metrics(detections, timeline, duration_s=7200.0, tolerance_s=0.0)
    assert (tight["hits"], tight["false_accepts"]) == (0, 6)
    assert detection_metrics([], [], 60.0)["detection_rate"] == 0.0
    with pytest.raises(ValueError, match="duration_s=0"):
        detection_metrics(detections, timeline, 0)
    with pytest.raises(ValueError, match="tolerance_s=-1"):
        detection_metrics(detections, timeline, 60.0, tolerance_s=-1)


def test_det_curve_is_monotone_and_spans_all_to_nothing(tmp_path):
    # Commands at four loudnesses (peak posteriors 0.91, 0.86, 0.75, 0.6), a confusable negative
    # word (a quiet "no" tone labelled _unknown_, 0.8) and a short "yes" blip in the noise (0.67).
    words = [("yes", 2.05, 0.5, 1.0), ("no", 6.05, 0.5, 0.6), ("yes", 10.05, 0.5, 0.3), ("no", 14.05, 0.5, 0.15),
             ("no", 18.05, 0.5, 0.4), ("yes", 22.05, 0.1, 1.0)]
    y = plant(26.0, words)
    timeline = [TimelineEvent(s, s + l, label) for label, s, l, _ in words[:4]] + [TimelineEvent(18.05, 18.55, "_unknown_")]
    detector = StreamingDetector(tone_recognizer(), smooth_ms=0)
    times, probs = detector.posteriors(y)
    rows = det_curve(times, probs, detector, timeline, 26.0, DET_THRESHOLDS)
    miss = [r["miss_rate"] for r in rows]
    fa = [r["false_accepts_per_hour"] for r in rows]
    assert all(a <= b for a, b in zip(miss, miss[1:])), miss
    assert all(a >= b for a, b in zip(fa, fa[1:])), fa
    assert (miss[0], fa[0]) == (0.0, pytest.approx(2 * 3600 / 26))  # 0.3: every command, both false accepts
    assert (miss[-1], fa[-1]) == (1.0, 0.0)
    assert all(r["detection_rate"] == pytest.approx(1 - r["miss_rate"]) for r in rows)
    path = write_det_curve_csv(rows, tmp_path / "det.csv")
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert tuple(table[0]) == DET_COLUMNS and len(table) == len(rows) + 1
    assert float(table[1][0]) == rows[0]["threshold"]


# --- evaluation streams --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> tuple[Path, Path]:
    """A manifest of 1 s clips with a 0.3 s tone in the middle (one at 8 kHz), and a noise file."""
    root = tmp_path_factory.mktemp("tiny")
    utterances = []
    for label, freq, rate in [("yes", 1000.0, SR), ("no", 2000.0, 8000), ("_unknown_", 3000.0, SR), ("_silence_", 0.0, SR)]:
        y = np.random.default_rng(len(label)).normal(0, 1e-4, rate)
        if freq:
            y[int(0.4 * rate) : int(0.7 * rate)] += 0.5 * np.sin(2 * np.pi * freq * np.arange(int(0.3 * rate)) / rate)
        else:
            y += np.random.default_rng(5).normal(0, 0.05, rate)
        path = root / f"{label}.wav"
        soundfile.write(path, y, rate)
        utterances.append(Utterance(str(path), 1.0, rate, speaker="s1", label=label))
    manifest = write_manifest(root / "tiny.jsonl", utterances)
    noise = root / "noise.wav"
    soundfile.write(noise, np.random.default_rng(9).normal(0, 0.1, 2 * SR), SR)
    return manifest, noise


def test_build_stream_places_trimmed_words_at_the_snr_and_is_reproducible(tiny_corpus, tmp_path):
    manifest, noise = tiny_corpus
    built = build_stream(manifest, noise, tmp_path / "a", duration_s=30.0, snr_db=10.0, min_gap_s=1.0,
                         max_gap_s=2.0, seed=3, progress=False)
    y, sr = soundfile.read(built.audio, dtype="float32")
    assert sr == SR and len(y) == 30 * SR and soundfile.info(built.audio).subtype == "PCM_16"
    events = read_timeline(built.timeline)
    assert events == [TimelineEvent(round(e.start_s, 4), round(e.end_s, 4), e.label, e.path) for e in built.events]
    labels = [e.label for e in events]
    assert "_silence_" not in labels and {"yes", "no", "_unknown_"} <= set(labels)
    assert len(events) > 3 * 2  # short data: reused in several rounds
    gaps = [b.start_s - a.end_s for a, b in zip(events, events[1:])]
    assert all(1.0 - 1e-3 <= g <= 2.0 + 1e-3 for g in gaps) and events[0].start_s >= 1.0 - 1e-3
    background = np.concatenate([y[round(a.end_s * SR) + 800 : round(b.start_s * SR) - 800] for a, b in zip(events, events[1:])])
    noise_power = np.mean(background.astype(np.float64) ** 2)
    for e in events:
        word = y[round(e.start_s * SR) : round(e.end_s * SR)].astype(np.float64)
        assert e.end_s - e.start_s == pytest.approx(0.3, abs=0.02)  # trimmed to the tone
        assert dominant_frequency(word, SR) == pytest.approx({"yes": 1000, "no": 2000, "_unknown_": 3000}[e.label], abs=5)
        snr = 10 * np.log10((np.mean(word**2) - noise_power) / noise_power)
        assert snr == pytest.approx(10.0, abs=0.7), e
    info = json.loads(built.info.read_text())
    assert info["n_events"] == len(events) and info["snr_db"] == 10.0 and info["noise"] == ["noise"]

    again = build_stream(manifest, noise, tmp_path / "b", duration_s=30.0, snr_db=10.0, min_gap_s=1.0,
                         max_gap_s=2.0, seed=3, progress=False)
    assert again.audio.read_bytes() == built.audio.read_bytes()
    assert again.timeline.read_text() == built.timeline.read_text()
    other = build_stream(manifest, noise, tmp_path / "c", duration_s=30.0, min_gap_s=1.0, max_gap_s=2.0, seed=4, progress=False)
    assert other.timeline.read_text() != built.timeline.read_text()
    assert not list((tmp_path / "a").glob(".*"))  # no temporary file left


def test_build_stream_errors(tiny_corpus, tmp_path):
    manifest, noise = tiny_corpus
    with pytest.raises(ValueError, match="min_gap_s=3.0, max_gap_s=2.0"):
        build_stream(manifest, noise, tmp_path, min_gap_s=3.0, max_gap_s=2.0, progress=False)
    with pytest.raises(ValueError, match="duration_s=0"):
        build_stream(manifest, noise, tmp_path, duration_s=0, progress=False)
    with pytest.raises(ValueError, match="no word fits"):
        build_stream(manifest, noise, tmp_path, duration_s=1.0, min_gap_s=1.0, max_gap_s=1.0, progress=False)
    silence_only = write_manifest(tmp_path / "silence.jsonl", [Utterance(str(noise), 2.0, SR, label="_silence_")])
    with pytest.raises(ValueError, match="no labelled word"):
        build_stream(silence_only, noise, tmp_path, progress=False)
    with pytest.raises(ValueError, match="noise path .* does not exist"):
        build_stream(manifest, tmp_path / "nope.wav", tmp_path, progress=False)
    with pytest.raises(ValueError, match="no such manifest or corpus folder"):
        build_stream(tmp_path / "missing", noise, tmp_path, progress=False)


def test_speech_bounds_and_timeline_files(tmp_path):
    y = np.zeros(SR, np.float32)
    y[4000:9000] = 0.3
    assert speech_bounds(y, SR) == (4000, 9120)  # whole 10 ms frames
    assert speech_bounds(np.zeros(100), SR) == (0, 0)
    path = write_timeline(tmp_path / "t.csv", TIMELINE)
    assert read_timeline(path) == TIMELINE
    (tmp_path / "bad.csv").write_text("start_s,end_s,label\n1.0,2.0,yes\n1.0,x,no\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: start_s and end_s must be numbers"):
        read_timeline(tmp_path / "bad.csv")
    (tmp_path / "cols.csv").write_text("start,end,label\n")
    with pytest.raises(ValueError, match=r"missing columns \['end_s', 'start_s'\]"):
        read_timeline(tmp_path / "cols.csv")
    with pytest.raises(ValueError, match="no such timeline file"):
        read_timeline(tmp_path / "none.csv")


# --- the command line ----------------------------------------------------------------------------


def tone_onnx(path: Path) -> Path:
    """The tone classifier as an exported model: waveform [batch, 16000] in, probabilities out."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("MatMul", ["waveform", "cos"], ["re"]), helper.make_node("MatMul", ["waveform", "sin"], ["im"]),
        helper.make_node("Mul", ["re", "re"], ["re2"]), helper.make_node("Mul", ["im", "im"], ["im2"]),
        helper.make_node("Add", ["re2", "im2"], ["power"]), helper.make_node("Sqrt", ["power"], ["magnitude"]),
        helper.make_node("Mul", ["magnitude", "scale"], ["amplitude"]), helper.make_node("Add", ["amplitude", "bias"], ["score"]),
        helper.make_node("ReduceSum", ["score", "axes"], ["total"], keepdims=1),
        helper.make_node("Div", ["score", "total"], ["probabilities"]),
    ]
    constants = {"cos": COS, "sin": SIN, "scale": np.array([2 / SR], np.float32), "bias": BIAS, "axes": np.array([1], np.int64)}
    graph = helper.make_graph(
        nodes, "tones", [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", SR])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(LABELS)])],
        initializer=[numpy_helper.from_array(v, k) for k, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    helper.set_model_props(model, {"audiorec.labels": json.dumps(LABELS), "audiorec.sample_rate": str(SR),
                                   "audiorec.clip_samples": str(SR)})
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def listen_inputs(tmp_path_factory, stream):
    root = tmp_path_factory.mktemp("listen")
    model = tone_onnx(root / "tones.onnx")
    wav = root / "long.wav"
    soundfile.write(wav, stream, SR, subtype="FLOAT")
    timeline = write_timeline(root / "timeline.csv", TIMELINE)
    return model, wav, timeline


def test_cli_listen_prints_detections_and_scores_them(listen_inputs, tmp_path, capsys):
    model, wav, timeline = listen_inputs
    out = tmp_path / "scores"
    assert main(["listen", str(model), "--file", str(wav), "--smooth-ms", "0", "--timeline", str(timeline), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.out.splitlines()[:4] == ["2.30 s  yes  0.83", "6.30 s  no  0.83", "12.30 s  yes  0.83", "16.30 s  no  0.83"]
    assert "real-time factor" in printed.err and "detection rate 100.0% (4 of 4 commands)" in printed.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["detection_rate"], metrics["false_accepts"], metrics["threads"]) == (1.0, 0, 1)
    assert 0 < metrics["real_time_factor"] < 1
    assert (out / "det_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "det_curve.csv").read_text().splitlines()[0] == ",".join(DET_COLUMNS)
    assert main(["listen", str(model), "--file", str(wav), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(l)["label"] for l in lines] == ["yes", "no", "yes", "no"]

    # A timeline without its first "no": that detection is a false accept, listed with its cause.
    partial = write_timeline(tmp_path / "partial.csv", [e for e in TIMELINE if e.start_s != TIMELINE[1].start_s])
    assert main(["listen", str(model), "--file", str(wav), "--smooth-ms", "0", "--timeline", str(partial),
                 "--out", str(tmp_path / "partial")]) == 0
    shown = [l for l in capsys.readouterr().out.splitlines() if l.startswith("  false accept ")]
    assert len(shown) == 1 and "6.30 s  no" in shown[0] and "background; nearest word _unknown_ 9.05-9.55 s" in shown[0], shown
    listed = json.loads((tmp_path / "partial" / "metrics.json").read_text())["false_accept_list"]
    assert [(f["time_s"], f["label"], f["cause"]) for f in listed] == [(6.3, "no", "background")]


def test_cli_listen_with_an_onnx_model_imports_no_torch(listen_inputs, tmp_path):
    model, wav, timeline = listen_inputs
    code = (
        "import sys; from audiorec.cli import main; "
        f"rc = main(['listen', {str(model)!r}, '--file', {str(wav)!r}, '--timeline', {str(timeline)!r}, '--out', {str(tmp_path)!r}]); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'librosa', 'sklearn', 'scipy'}); "
        "print('HEAVY', heavy, rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert "HEAVY [] 0" in result.stdout, result.stdout + result.stderr
    assert (tmp_path / "det_curve.png").is_file()


def test_cli_listen_errors(listen_inputs, tmp_path, monkeypatch, capsys):
    model, wav, timeline = listen_inputs
    assert main(["listen", str(tmp_path / "none.onnx"), "--file", str(wav)]) == 2
    assert "none.onnx: no such model file" in capsys.readouterr().err
    assert main(["listen", str(model), "--file", str(wav), "--threshold", "1.5"]) == 2
    assert "threshold=1.5" in capsys.readouterr().err
    assert main(["listen", str(model), "--file", str(tmp_path / "none.wav")]) == 2
    assert "none.wav: no such file" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed
    assert main(["listen", str(model), "--mic"]) == 2
    assert "--mic needs the sounddevice package" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["listen", str(model)])  # --file or --mic is required


def test_cli_listen_mic_feeds_the_detector(listen_inputs, stream, monkeypatch, capsys):
    """A stand-in for sounddevice: the microphone delivers the test stream in 1600-sample blocks."""
    model, wav, _ = listen_inputs

    class InputStream:
        def __init__(self, samplerate, channels, dtype, blocksize, callback):
            assert (samplerate, channels, dtype, blocksize) == (SR, 1, "float32", 1600)
            self.callback = callback

        def __enter__(self):
            for i in range(0, len(stream), 1600):
                self.callback(stream[i : i + 1600, None], 1600, None, None)
            return self

        def __exit__(self, *exc):
            return False

    fake = types.SimpleNamespace(query_devices=lambda kind: {"name": "test mic"}, InputStream=InputStream,
                                 PortAudioError=OSError)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    assert main(["listen", str(model), "--mic", "--seconds", "20", "--smooth-ms", "0"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines() == ["2.30 s  yes  0.83", "6.30 s  no  0.83", "12.30 s  yes  0.83", "16.30 s  no  0.83"]
    assert "listening on test mic" in out.err

    def no_device(kind):
        raise ValueError("No input device matching ''")

    monkeypatch.setitem(sys.modules, "sounddevice", types.SimpleNamespace(query_devices=no_device, PortAudioError=OSError))
    assert main(["listen", str(model), "--mic"]) == 2
    assert "--mic: no microphone found" in capsys.readouterr().err


def test_cli_data_stream(tiny_corpus, tmp_path, capsys):
    manifest, noise = tiny_corpus
    assert main(["data", "stream", "--data", str(manifest), "--noise", str(noise), "--out", str(tmp_path),
                 "--minutes", "0.25", "--min-gap-s", "1", "--max-gap-s", "2", "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert soundfile.info(tmp_path / "stream.wav").duration == pytest.approx(15.0)
    assert read_timeline(tmp_path / "timeline.csv")
    assert main(["data", "stream", "--data", str(manifest), "--noise", str(noise), "--out", str(tmp_path),
                 "--min-gap-s", "3", "--max-gap-s", "1"]) == 2


def test_best_detection_rate_respects_the_false_accept_budget():
    from audiorec.metrics import best_detection_rate

    rows = [{"threshold": t, "miss_rate": 1 - d, "false_accepts_per_hour": fa, "detection_rate": d}
            for t, d, fa in [(0.5, 0.95, 12.0), (0.7, 0.90, 3.0), (0.8, 0.85, 1.0), (0.9, 0.85, 0.0), (0.95, 0.6, 0.0)]]
    assert best_detection_rate(rows, 1.0)["threshold"] == 0.8  # ties go to the lower threshold
    assert best_detection_rate(rows, 5.0)["threshold"] == 0.7
    assert best_detection_rate(rows[:2], 1.0) is None
