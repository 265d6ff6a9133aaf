"""Word and character error rates on cases counted by hand."""

from __future__ import annotations

import pytest

from audiorec.metrics import error_rates


def test_one_substitution():
    # 6 words, "mat" -> "hat"; 22 characters with the 5 spaces, "m" -> "h".
    m = error_rates(["the cat sat on the mat"], ["the cat sat on the hat"])
    assert (m["substitutions"], m["deletions"], m["insertions"], m["n_words"]) == (1, 0, 0, 6)
    assert m["wer"] == pytest.approx(1 / 6)
    assert (m["char_substitutions"], m["char_deletions"], m["char_insertions"], m["n_chars"]) == (1, 0, 0, 22)
    assert m["cer"] == pytest.approx(1 / 22)


def test_one_deletion():
    # "big" missing of 3 words; "big " is 4 of the 15 characters.
    m = error_rates(["hello big world"], ["hello world"])
    assert (m["substitutions"], m["deletions"], m["insertions"], m["n_words"]) == (0, 1, 0, 3)
    assert m["wer"] == pytest.approx(1 / 3)
    assert (m["char_substitutions"], m["char_deletions"], m["char_insertions"], m["n_chars"]) == (0, 4, 0, 15)
    assert m["cer"] == pytest.approx(4 / 15)


def test_one_insertion():
    # An extra "good" on 2 words; "good " is 5 characters more than the 12 of the reference.
    m = error_rates(["good morning"], ["good good morning"])
    assert (m["substitutions"], m["deletions"], m["insertions"], m["n_words"]) == (0, 0, 1, 2)
    assert m["wer"] == pytest.approx(0.5)
    assert (m["char_substitutions"], m["char_deletions"], m["char_insertions"], m["n_chars"]) == (0, 0, 5, 12)
    assert m["cer"] == pytest.approx(5 / 12)


def test_identical_is_zero():
    texts = ["it's fine", "one two three"]
    m = error_rates(texts, texts)
    assert m["wer"] == m["cer"] == 0.0
    assert m["substitutions"] + m["deletions"] + m["insertions"] == 0
    assert (m["n_words"], m["n_chars"], m["n_utterances"]) == (5, 22, 2)
    assert [u["wer"] for u in m["per_utterance"]] == [0.0, 0.0]


def test_corpus_rate_sums_errors_before_dividing():
    # 1 error in 10 words and 1 in 1 word: (1 + 1) / 11, not the mean of 0.1 and 1.0.
    refs = ["a b c d e f g h i j", "yes"]
    hyps = ["a b c d e f g h i x", "no"]
    m = error_rates(refs, hyps)
    assert m["wer"] == pytest.approx(2 / 11)
    assert m["substitutions"] == 2 and m["n_words"] == 11
    per = m["per_utterance"]
    assert [u["wer"] for u in per] == pytest.approx([0.1, 1.0])
    assert sum(u["wer"] for u in per) / 2 == pytest.approx(0.55)
    # Characters: 1 of 19, and "yes" -> "no" is 2 substitutions and 1 deletion of 3.
    assert m["cer"] == pytest.approx((1 + 3) / (19 + 3))
    assert per[1] == {"reference": "yes", "hypothesis": "no", "wer": 1.0, "cer": 1.0,
                      "substitutions": 1, "deletions": 0, "insertions": 0, "n_words": 1}


def test_empty_reference_counts_insertions():
    m = error_rates(["", "okay", "  "], ["uh huh", "okay", ""])
    assert (m["substitutions"], m["deletions"], m["insertions"], m["n_words"]) == (0, 0, 2, 1)
    assert m["wer"] == pytest.approx(2 / 1)
    assert (m["char_insertions"], m["n_chars"]) == (6, 4)
    assert m["cer"] == pytest.approx(6 / 4)
    empty, _, silent = m["per_utterance"]
    assert (empty["wer"], empty["cer"], empty["insertions"], empty["n_words"]) == (2.0, 6.0, 2, 0)
    assert (silent["wer"], silent["cer"], silent["n_words"]) == (0.0, 0.0, 0)


def test_empty_hypothesis_deletes_everything():
    m = error_rates(["hello world"], [""])
    assert (m["deletions"], m["n_words"], m["wer"]) == (2, 2, 1.0)
    assert (m["char_deletions"], m["n_chars"], m["cer"]) == (11, 11, 1.0)


def test_mismatched_or_empty_inputs():
    with pytest.raises(ValueError, match="2 and 1"):
        error_rates(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="0 and 0"):
        error_rates([], [])
