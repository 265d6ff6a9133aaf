"""benchmarks/clip_bound.py and benchmarks/export_runtime.py: the isolated-clip and in-stream bounds.

The bounds say how many commands a detector could find with no wrong command let through, before
any smoothing or threshold: the share named rightly above every wrong command answer's score. The
in-stream one classifies each placed word of a stream in the window centred on it; here the stream
is the planted tones of tests/test_streaming.py and its tone classifier, so every score is known.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from audiorec.data.stream import write_timeline

from conftest import load_benchmark
from test_streaming import LABELS, SR, TIMELINE, plant, tone_onnx, WORDS


@pytest.fixture(scope="module")
def scripts():
    return load_benchmark("clip_bound"), load_benchmark("export_runtime")


def test_bound_counts_right_answers_above_each_wrong_command_score(scripts):
    clip_bound, _ = scripts
    #                   _silence_ _unknown_ yes   no
    probs = np.array([[0.0, 0.1, 0.9, 0.0],    # yes, right at 0.9
                      [0.0, 0.3, 0.7, 0.0],    # yes, right at 0.7
                      [0.0, 0.2, 0.0, 0.8],    # no, right at 0.8
                      [0.0, 0.25, 0.75, 0.0],  # a no taken for yes at 0.75: the highest wrong command answer
                      [0.0, 0.4, 0.0, 0.6],    # an _unknown_ word taken for no at 0.6
                      [0.0, 0.9, 0.1, 0.0]])   # a no answered _unknown_: wrong, but it never fires
    truth = ["yes", "yes", "no", "no", "_unknown_", "no"]
    b = clip_bound.bound(probs, LABELS, truth)
    assert b["accuracy"] == pytest.approx(3 / 6)
    assert (b["n_commands"], b["n_wrong_command_answers"], b["wrong_command_scores"]) == (5, 2, [0.75, 0.6])
    # Above 0.75: the 0.9 yes and the 0.8 no; above 0.6: the 0.7 yes too; with both let through, the same.
    assert b["detection_rate_above_wrong"] == pytest.approx([2 / 5, 3 / 5, 3 / 5])


def test_stream_bound_classifies_each_placed_word_in_its_centred_window(scripts, tmp_path):
    _, export_runtime = scripts
    stream = tmp_path / "stream"
    stream.mkdir()
    soundfile.write(stream / "stream.wav", plant(20.0, WORDS), SR, subtype="FLOAT")
    write_timeline(stream / "timeline.csv", TIMELINE)
    model = tone_onnx(tmp_path / "tones.onnx")

    bounds = export_runtime.stream_bound(model, stream, offsets_s=(0.0, 0.5))
    assert list(bounds) == ["+0.00", "+0.50"]
    centred, late = bounds["+0.00"], bounds["+0.50"]
    # Each 0.5 s tone wholly in its window: all four commands right and no wrong answer.
    assert (centred["accuracy"], centred["n_commands"], centred["n_wrong_command_answers"]) == (1.0, 4, 0)
    assert centred["detection_rate_above_wrong"] == [1.0, 1.0, 1.0]
    assert late["accuracy"] == 1.0  # half of each tone left in the window, still the loudest

    # The second "no" played twice as loud (its answer 1 / 1.05 of the mass, above the others' 0.5 / 0.55)
    # and labelled "yes" in the timeline: a wrong command answer surer than every right one.
    loud = [w if i != 4 else (w[0], w[1], w[2], 2.0) for i, w in enumerate(WORDS)]
    soundfile.write(stream / "stream.wav", plant(20.0, loud), SR, subtype="FLOAT")
    write_timeline(stream / "timeline.csv", [e if i != 4 else type(e)(e.start_s, e.end_s, "yes") for i, e in enumerate(TIMELINE)])
    wrong = export_runtime.stream_bound(model, stream, offsets_s=(0.0,))["+0.00"]
    assert (wrong["accuracy"], wrong["n_wrong_command_answers"]) == (0.8, 1)
    assert wrong["wrong_command_scores"] == [pytest.approx(1 / 1.05, abs=1e-3)]
    assert wrong["detection_rate_above_wrong"] == [0.0, pytest.approx(3 / 4), pytest.approx(3 / 4)]
