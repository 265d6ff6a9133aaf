"""CTC decoding with numpy only: best path, its frame alignment and word timings, prefix beam search.

A CTC model (Graves et al. 2006) emits, for every output frame, a distribution over the
vocabulary plus a blank (id 0 by the convention of :mod:`audiorec.tokenizer`). A label sequence
is read from a frame path by collapsing repeated tokens and then dropping blanks, so ``a a _ a``
reads ``a a``: a blank is what separates a doubled letter.

This module imports no torch and no sentencepiece, so the runtime decodes with it; torch tensors
are accepted through ``np.asarray`` (detach them and move them to the CPU first). Results are small
typed records, as in openai/whisper's ``decoding.py``; text is made from token ids by
:func:`audiorec.tokenizer.tokens_to_text`.

References
----------
Graves, Fernández, Gomez & Schmidhuber 2006, "Connectionist Temporal Classification: Labelling
Unsegmented Sequence Data with Recurrent Neural Networks", ICML 2006.
Hannun, Maas, Jurafsky & Ng 2014, "First-Pass Large Vocabulary Continuous Speech Recognition using
Bi-Directional Recurrent DNNs", arXiv:1408.2873 (prefix beam search).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from audiorec.tokenizer import SPECIAL_TOKENS, SPM_SPACE, WORD_SEPARATOR


@dataclass(frozen=True)
class TokenSpan:
    """One token of the best path and the frames it was the most probable one in.

    Attributes
    ----------
    token : int
        Token id (never the blank).
    start_frame, end_frame : int
        Output frames ``[start_frame, end_frame)`` of the run of that token.
    score : float in (0, 1]
        Mean probability of the token over those frames.
    """

    token: int
    start_frame: int
    end_frame: int
    score: float


@dataclass(frozen=True)
class WordTiming:
    """A recognised word and when it was spoken.

    Attributes
    ----------
    word : str
    start_s, end_s : float
        Seconds from the start of the input: the start of the word's first token's frames and
        the end of its last token's frames.
    confidence : float in (0, 1]
        Mean of the word's token scores (:attr:`TokenSpan.score`).
    """

    word: str
    start_s: float
    end_s: float
    confidence: float


def _check_blank(blank: int, n_tokens: int) -> None:
    if not 0 <= blank < n_tokens:
        raise ValueError(f"blank={blank} is not a token id of a {n_tokens}-token output")


def _as_frames(log_probs) -> np.ndarray:
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2:
        raise ValueError(f"need log_probs of shape (n_frames, n_tokens), got shape {log_probs.shape}")
    return log_probs


def ctc_greedy_decode(log_probs, lengths=None, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: the most probable token of each frame, repeats collapsed, blanks dropped.

    The best path is not always the most probable label sequence (which sums over all the
    paths that read as it; :func:`ctc_prefix_beam_search`), but it is close for a well-trained
    model and costs one ``argmax``.

    Parameters
    ----------
    log_probs : np.ndarray [shape=(batch, n_frames, n_tokens) or (n_frames, n_tokens)]
        Per-frame log-probabilities (log-softmax output; logits or probabilities give the same
        result, as only the argmax is used).
    lengths : np.ndarray [shape=(batch,)], int, optional
        Valid frames of each item, in ``[0, n_frames]``; frames beyond are padding and ignored.
        None: all frames.
    blank : int
        Id of the CTC blank.

    Returns
    -------
    list of list of int
        Token ids of each batch item (one item for a 2-D input).

    Raises
    ------
    ValueError
        ``log_probs`` is not 2-D or 3-D, ``blank`` is not a token id, or ``lengths`` has the
        wrong shape or a value outside ``[0, n_frames]``; the message names the value.

    Examples
    --------
    Frames ``a a _ a b b`` with blank = 0, a = 1, b = 2:

    >>> p = np.full((6, 3), np.log(0.05))
    >>> p[np.arange(6), [1, 1, 0, 1, 2, 2]] = np.log(0.9)
    >>> ctc_greedy_decode(p)
    [[1, 1, 2]]
    """
    log_probs = np.asarray(log_probs)
    if log_probs.ndim == 2:
        log_probs = log_probs[None]
    if log_probs.ndim != 3:
        raise ValueError(f"need log_probs of shape (batch, n_frames, n_tokens) or (n_frames, n_tokens), got shape {log_probs.shape}")
    batch, n_frames, n_tokens = log_probs.shape
    _check_blank(blank, n_tokens)
    if lengths is None:
        lengths = np.full(batch, n_frames)
    lengths = np.asarray(lengths)
    if lengths.shape != (batch,):
        raise ValueError(f"need lengths of shape ({batch},), got shape {lengths.shape}")
    for n in lengths:
        if not 0 <= n <= n_frames or n != int(n):
            raise ValueError(f"length {n} is not a frame count in [0, {n_frames}]")
    best = log_probs.argmax(axis=-1)
    starts_run = np.ones_like(best, dtype=bool)
    starts_run[:, 1:] = best[:, 1:] != best[:, :-1]
    valid = np.arange(n_frames)[None, :] < lengths[:, None]
    emit = starts_run & (best != blank) & valid
    return [best[b, emit[b]].tolist() for b in range(batch)]


def ctc_greedy_alignment(log_probs, blank: int = 0) -> list[TokenSpan]:
    """The best path of one utterance as token spans: which frames each emitted token occupies.

    Each run of frames whose most probable token is the same non-blank token is one span, so the
    spans' tokens are exactly :func:`ctc_greedy_decode`'s output. A span covers only the frames
    where its token wins; the blanks between tokens belong to none.

    Parameters
    ----------
    log_probs : np.ndarray [shape=(n_frames, n_tokens)]
        Per-frame log-probabilities (log-softmax output) of one utterance, padding removed.
    blank : int
        Id of the CTC blank.

    Returns
    -------
    list of TokenSpan
        In time order; the score is the token's mean probability over its span.

    Raises
    ------
    ValueError
        ``log_probs`` is not 2-D or ``blank`` is not a token id.

    Examples
    --------
    >>> p = np.full((5, 3), np.log(0.05))
    >>> p[np.arange(5), [0, 1, 1, 0, 2]] = np.log(0.9)
    >>> [(s.token, s.start_frame, s.end_frame) for s in ctc_greedy_alignment(p)]
    [(1, 1, 3), (2, 4, 5)]
    """
    log_probs = _as_frames(log_probs)
    _check_blank(blank, log_probs.shape[1])
    if len(log_probs) == 0:
        return []
    best = log_probs.argmax(axis=-1)
    best_prob = np.exp(log_probs[np.arange(len(best)), best])
    boundaries = np.flatnonzero(np.diff(best)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(best)]])
    return [
        TokenSpan(int(best[s]), int(s), int(e), float(best_prob[s:e].mean()))
        for s, e in zip(starts, ends)
        if best[s] != blank
    ]


def word_timings(spans: Sequence[TokenSpan], vocab: Sequence[str], frame_s: float) -> list[WordTiming]:
    """Group token spans into words, with start and end times and a confidence.

    A word starts at a character vocabulary's separator ``|`` (which belongs to no word) or at a
    sentencepiece piece beginning with ``▁`` (which belongs to the word it starts); other tokens
    continue the current word. ``<blank>`` and ``<unk>`` spans are skipped.

    Parameters
    ----------
    spans : sequence of TokenSpan
        From :func:`ctc_greedy_alignment`.
    vocab : sequence of str
        Token strings, index = id (:attr:`audiorec.tokenizer.Tokenizer.vocab`).
    frame_s : float > 0
        Duration of one output frame in seconds (the feature hop times the model's time
        subsampling).

    Returns
    -------
    list of WordTiming
        In time order. The words joined by spaces equal
        :func:`~audiorec.tokenizer.tokens_to_text` of the spans' tokens.

    Raises
    ------
    ValueError
        ``frame_s`` not > 0, or a token outside the vocabulary.

    Examples
    --------
    >>> vocab = ["<blank>", "|", "a", "b"]
    >>> spans = [TokenSpan(2, 0, 2, 0.9), TokenSpan(1, 3, 4, 0.8), TokenSpan(3, 5, 6, 0.7)]
    >>> word_timings(spans, vocab, frame_s=0.04)
    [WordTiming(word='a', start_s=0.0, end_s=0.08, confidence=0.9), WordTiming(word='b', start_s=0.2, end_s=0.24, confidence=0.7)]
    """
    if not frame_s > 0:
        raise ValueError(f"frame_s={frame_s!r}: must be > 0")
    words: list[list] = []  # [text, start_frame, end_frame, scores] per word
    open_word = False
    for span in spans:
        if not 0 <= span.token < len(vocab):
            raise ValueError(f"token id {span.token} is outside the vocabulary of {len(vocab)} tokens")
        piece = vocab[span.token]
        if piece in SPECIAL_TOKENS:
            continue
        if piece.startswith((WORD_SEPARATOR, SPM_SPACE)):
            open_word = False
            piece = piece.lstrip(WORD_SEPARATOR + SPM_SPACE)
        if not piece:
            continue
        if open_word:
            words[-1][0] += piece
            words[-1][2] = span.end_frame
            words[-1][3].append(span.score)
        else:
            words.append([piece, span.start_frame, span.end_frame, [span.score]])
            open_word = True
    # Rounded to the microsecond so that 6 * 0.04 reads 0.24, not 0.24000000000000002.
    return [
        WordTiming(text, round(start * frame_s, 6), round(end * frame_s, 6), float(np.mean(scores)))
        for text, start, end, scores in words
    ]


def ctc_prefix_beam_search(log_probs, beam_size: int = 8, blank: int = 0) -> list[int]:
    """The most probable label sequence found by CTC prefix beam search, without a language model.

    Unlike the best path, a prefix's probability sums over every frame path that reads as it,
    each prefix carrying two terms: paths ending in a blank and paths ending in its last token
    (Hannun et al. 2014, Algorithm 1, with no language model or length bonus). At each frame,
    only the ``beam_size`` most probable tokens, the blank and each prefix's last token extend
    the beam; then the ``beam_size`` most probable prefixes are kept.

    Parameters
    ----------
    log_probs : np.ndarray [shape=(n_frames, n_tokens)]
        Per-frame log-probabilities (log-softmax output, not logits: the terms are summed) of
        one utterance, padding removed.
    beam_size : int >= 1
        Prefixes kept after each frame.
    blank : int
        Id of the CTC blank.

    Returns
    -------
    list of int
        Token ids of the most probable prefix.

    Raises
    ------
    ValueError
        ``log_probs`` is not 2-D, ``beam_size`` < 1 or ``blank`` is not a token id.

    Examples
    --------
    Two frames with P(blank) = 0.6, P(a) = 0.4: the best path is "" (0.36), but "a" sums
    ``a a``, ``a _`` and ``_ a`` to 0.64.

    >>> p = np.log([[0.6, 0.4], [0.6, 0.4]])
    >>> ctc_greedy_decode(p), ctc_prefix_beam_search(p)
    ([[]], [1])
    """
    log_probs = _as_frames(log_probs)
    _check_blank(blank, log_probs.shape[1])
    if beam_size < 1:
        raise ValueError(f"beam_size={beam_size}: must be >= 1")
    # prefix -> (log P(paths ending in blank), log P(paths ending in the prefix's last token))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -np.inf)}
    n_candidates = min(beam_size, log_probs.shape[1])
    for frame in log_probs:
        candidates = set(np.argpartition(frame, -n_candidates)[-n_candidates:].tolist()) | {blank}
        next_beams: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-np.inf, -np.inf])
        for prefix, (p_blank, p_token) in beams.items():
            p_prefix = np.logaddexp(p_blank, p_token)
            last = prefix[-1] if prefix else None
            for k in candidates | ({last} if last is not None else set()):
                p = float(frame[k])
                if k == blank:
                    next_beams[prefix][0] = np.logaddexp(next_beams[prefix][0], p_prefix + p)
                elif k == last:
                    # Without a blank in between the repeat collapses into the same prefix;
                    # after one it is a new token.
                    next_beams[prefix][1] = np.logaddexp(next_beams[prefix][1], p_token + p)
                    extended = next_beams[prefix + (k,)]
                    extended[1] = np.logaddexp(extended[1], p_blank + p)
                else:
                    extended = next_beams[prefix + (k,)]
                    extended[1] = np.logaddexp(extended[1], p_prefix + p)
        ranked = sorted(next_beams.items(), key=lambda item: np.logaddexp(*item[1]), reverse=True)
        beams = {prefix: (p_b, p_t) for prefix, (p_b, p_t) in ranked[:beam_size]}
    return list(max(beams.items(), key=lambda item: np.logaddexp(*item[1]))[0])
