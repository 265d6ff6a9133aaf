"""Classification metrics on a case counted by hand."""

from __future__ import annotations

import pytest

from audiorec.metrics import classification_metrics, format_confusion_matrix

LABELS = ["go", "stop", "yes"]
#           go go go  stop stop  yes  yes
Y_TRUE = [0, 0, 0, 1, 1, 2, 2]
Y_PRED = [0, 0, 1, 1, 2, 2, 2]


def test_hand_counted_case():
    m = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert m["n"] == 7
    assert m["accuracy"] == pytest.approx(5 / 7)
    # Rows are true classes, columns predicted ones.
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 2]]
    pc = m["per_class"]
    # go: predicted twice, both right; 3 true -> precision 1, recall 2/3
    assert pc["go"]["precision"] == pytest.approx(1.0)
    assert pc["go"]["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert pc["go"]["f1"] == pytest.approx(0.8, abs=1e-4)
    # stop: predicted twice (one right), 2 true -> 1/2, 1/2
    assert pc["stop"]["precision"] == pytest.approx(0.5)
    assert pc["stop"]["recall"] == pytest.approx(0.5)
    assert pc["stop"]["f1"] == pytest.approx(0.5)
    # yes: predicted 3 times (2 right), 2 true -> 2/3, 1
    assert pc["yes"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert pc["yes"]["recall"] == pytest.approx(1.0)
    assert pc["yes"]["f1"] == pytest.approx(0.8, abs=1e-4)
    assert [pc[l]["support"] for l in LABELS] == [3, 2, 2]
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 0.8) / 3, abs=1e-4)


def test_class_never_present_is_left_out_of_macro_f1():
    m = classification_metrics([0, 0, 1], [0, 2, 1], ["a", "b", "c"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    f1_a = 2 * 1.0 * 0.5 / 1.5
    assert m["macro_f1"] == pytest.approx((f1_a + 1.0) / 2, abs=1e-4)
    assert m["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize("y_true, y_pred", [([], []), ([0, 1], [0])])
def test_bad_inputs(y_true, y_pred):
    with pytest.raises(ValueError):
        classification_metrics(y_true, y_pred, ["a", "b"])


def test_format_confusion_matrix():
    text = format_confusion_matrix([[2, 1, 0], [0, 1, 1], [0, 0, 2]], LABELS)
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].split()[-3:] == LABELS
    assert lines[1].split() == ["go", "2", "1", "0"]
    assert lines[3].split() == ["yes", "0", "0", "2"]
