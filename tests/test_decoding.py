"""CTC decoding on hand-made posteriors: best path, alignment, word timings, prefix beam search."""

from __future__ import annotations

import numpy as np
import pytest

from audiorec.decoding import (
    TokenSpan,
    WordTiming,
    ctc_greedy_alignment,
    ctc_greedy_decode,
    ctc_prefix_beam_search,
    word_timings,
)
from audiorec.tokenizer import tokens_to_text

CHARS = ["<blank>", "|", "a", "b", "c"]  # _ | a b c
_, SEP, A, B, C = range(5)


def posteriors(path, n_tokens=5, p_best=0.9):
    """Log-probabilities whose best path is ``path``: ``p_best`` on it, the rest spread evenly."""
    probs = np.full((len(path), n_tokens), (1 - p_best) / (n_tokens - 1))
    probs[np.arange(len(path)), path] = p_best
    return np.log(probs)


def test_repeats_collapse_and_a_blank_separates_doubles():
    assert ctc_greedy_decode(posteriors([A, A, 0, A])) == [[A, A]]
    assert ctc_greedy_decode(posteriors([A, A, A, B, B])) == [[A, B]]
    assert ctc_greedy_decode(posteriors([0, A, 0, 0, B, 0])) == [[A, B]]


def test_all_blank_is_empty():
    assert ctc_greedy_decode(posteriors([0, 0, 0])) == [[]]
    assert ctc_greedy_alignment(posteriors([0, 0, 0])) == []


def test_batch_lengths_ignore_padding_frames():
    batch = np.stack([posteriors([A, 0, B, C, C]), posteriors([C, C, 0, C, A]), posteriors([B, B, B, B, B])])
    assert ctc_greedy_decode(batch) == [[A, B, C], [C, C, A], [B]]
    assert ctc_greedy_decode(batch, lengths=[3, 4, 0]) == [[A, B], [C, C], []]
    assert ctc_greedy_decode(batch, lengths=np.array([5, 1, 2])) == [[A, B, C], [C], [B]]


def test_greedy_decode_errors_name_the_value():
    frames = posteriors([A, B])
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        ctc_greedy_decode(frames[0])
    with pytest.raises(ValueError, match="length 3 "):
        ctc_greedy_decode(frames, lengths=[3])
    with pytest.raises(ValueError, match="length -1 "):
        ctc_greedy_decode(frames, lengths=[-1])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        ctc_greedy_decode(frames, lengths=[1, 2])
    with pytest.raises(ValueError, match="blank=5"):
        ctc_greedy_decode(frames, blank=5)


def test_blank_need_not_be_zero():
    assert ctc_greedy_decode(posteriors([4, 2, 2, 4, 2, 0]), blank=4) == [[2, 2, 0]]


def test_alignment_spans_by_hand():
    #         0  1  2  3  4    5  6  7  8  9  10
    path = [0, A, A, 0, SEP, B, B, 0, 0, A, A]
    probs = np.exp(posteriors(path))
    probs[2] = [0.2, 0.0, 0.5, 0.2, 0.1]  # a weaker second frame of the first a
    spans = ctc_greedy_alignment(np.log(probs + 1e-30))
    assert [(s.token, s.start_frame, s.end_frame) for s in spans] == [
        (A, 1, 3), (SEP, 4, 5), (B, 5, 7), (A, 9, 11)]
    assert spans[0].score == pytest.approx((0.9 + 0.5) / 2)
    assert spans[2].score == pytest.approx(0.9)
    assert [s.token for s in spans] == ctc_greedy_decode(np.log(probs + 1e-30))[0]


def test_word_timings_char_vocabulary():
    # "ab c" at 40 ms frames: a [1, 3) b [3, 4) | [5, 6) c [7, 10)
    spans = [TokenSpan(A, 1, 3, 0.8), TokenSpan(B, 3, 4, 0.6), TokenSpan(SEP, 5, 6, 0.9), TokenSpan(C, 7, 10, 0.5)]
    assert word_timings(spans, CHARS, frame_s=0.04) == [
        WordTiming("ab", 0.04, 0.16, pytest.approx(0.7)),
        WordTiming("c", 0.28, 0.4, 0.5),
    ]


def test_word_timings_from_decoded_frames():
    path = [0, A, A, 0, SEP, B, B, 0, 0, C, C, 0, SEP, 0]
    log_probs = posteriors(path)
    spans = ctc_greedy_alignment(log_probs)
    words = word_timings(spans, CHARS, frame_s=0.02)
    assert [(w.word, w.start_s, w.end_s) for w in words] == [("a", 0.02, 0.06), ("bc", 0.1, 0.22)]
    assert [w.confidence for w in words] == pytest.approx([0.9, 0.9])
    assert " ".join(w.word for w in words) == tokens_to_text(CHARS, ctc_greedy_decode(log_probs)[0])


def test_word_timings_sentencepiece_vocabulary():
    vocab = ["<blank>", "<unk>", "\u2581", "\u2581the", "ca", "t", "\u2581s", "at"]
    # "▁the" "▁" "ca" "t" "▁s" "at" -> "the cat sat"; the bare ▁ starts "cat" but holds no letters
    spans = [TokenSpan(3, 0, 2, 0.9), TokenSpan(2, 3, 4, 0.5), TokenSpan(4, 4, 6, 0.8), TokenSpan(5, 6, 7, 0.6),
             TokenSpan(1, 7, 8, 0.1), TokenSpan(6, 9, 10, 1.0), TokenSpan(7, 10, 12, 0.5)]
    words = word_timings(spans, vocab, frame_s=0.1)
    assert [(w.word, w.start_s, w.end_s) for w in words] == [("the", 0.0, 0.2), ("cat", 0.4, 0.7), ("sat", 0.9, 1.2)]
    assert [w.confidence for w in words] == pytest.approx([0.9, 0.7, 0.75])


def test_word_timings_rejects_bad_frame_duration():
    with pytest.raises(ValueError, match="frame_s=0"):
        word_timings([], CHARS, frame_s=0)


def test_beam_search_equals_greedy_when_one_path_dominates():
    rng = np.random.default_rng(0)
    for _ in range(20):
        path = rng.integers(0, 5, size=30)
        log_probs = posteriors(path, p_best=0.97)
        assert ctc_prefix_beam_search(log_probs, beam_size=4) == ctc_greedy_decode(log_probs)[0]


def test_beam_search_sums_paths_and_beats_greedy():
    # Two frames, P(_) = 0.6, P(a) = 0.4 in each: the best path "_ _" reads "" with 0.36, but
    # "a" has three paths, a a + a _ + _ a = 0.16 + 0.24 + 0.24 = 0.64.
    log_probs = np.log([[0.6, 0.4], [0.6, 0.4]])
    assert ctc_greedy_decode(log_probs) == [[]]
    assert ctc_prefix_beam_search(log_probs, beam_size=2) == [1]


def test_beam_search_keeps_doubles_apart_only_through_a_blank():
    # a _ a reads "a a"; a a reads "a".
    assert ctc_prefix_beam_search(posteriors([A, 0, A])) == [A, A]
    assert ctc_prefix_beam_search(posteriors([A, A])) == [A]


def test_beam_search_errors():
    with pytest.raises(ValueError, match="beam_size=0"):
        ctc_prefix_beam_search(posteriors([A]), beam_size=0)
    with pytest.raises(ValueError, match="n_frames, n_tokens"):
        ctc_prefix_beam_search(posteriors([A])[None])


def test_wide_beam_finds_the_most_probable_labelling():
    # With a beam wider than the number of prefixes nothing is pruned, so the search must agree
    # with summing all 3^5 frame paths by brute force.
    rng = np.random.default_rng(1)
    for _ in range(10):
        probs = rng.dirichlet(np.ones(3), size=5)
        totals: dict = {}
        for path in np.ndindex(*[3] * 5):
            label = tuple(int(k) for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1]))
            totals[label] = totals.get(label, 0.0) + float(np.prod(probs[np.arange(5), path]))
        assert tuple(ctc_prefix_beam_search(np.log(probs), beam_size=500)) == max(totals, key=totals.get)
