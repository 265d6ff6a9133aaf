"""Tokenizers for CTC speech recognition: text to token ids and back.

Text is normalised before it gets here: lower case, words separated by single spaces,
apostrophes allowed. Every vocabulary puts the CTC blank at index 0, so a model's output
layer, the CTC loss and the decoders agree on it without configuration.

Two kinds:

- :class:`CharTokenizer`: one token per character, the space written ``|`` as in wav2vec 2.0
  and fairseq, so the vocabulary reads as a plain list.
- :class:`SentencePieceTokenizer`: subword pieces from a unigram language model
  (Kudo & Richardson 2018), the space written ``▁`` at the start of a word's first piece.

Turning ids back into text needs only the vocabulary list (:func:`tokens_to_text`), so the
torch-free runtime can detokenise without sentencepiece; sentencepiece is imported only to
train a subword model and to encode with it.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from audiorec.run import atomic_write_text

BLANK = "<blank>"  # the CTC blank, always id 0
UNK = "<unk>"  # sentencepiece's unknown piece; training targets never contain it (encode raises)
WORD_SEPARATOR = "|"  # the space in a character vocabulary (wav2vec 2.0 / fairseq)
SPM_SPACE = "\u2581"  # "▁", sentencepiece's marker of a word start
SPECIAL_TOKENS = (BLANK, UNK)  # tokens that stand for no text
RESERVED_CHARACTERS = (WORD_SEPARATOR, SPM_SPACE)  # would read back as spaces, so texts may not contain them
TOKENIZER_KINDS = ("char", "sentencepiece")


def tokens_to_text(vocab: Sequence[str], ids: Iterable[int]) -> str:
    """Detokenise: join the pieces of ``ids`` and turn word markers into single spaces.

    The one detokeniser of the package: both tokenizers' :meth:`~Tokenizer.decode` and the
    runtime use it, so it needs nothing but the vocabulary. ``|`` (character vocabularies)
    and ``▁`` (sentencepiece pieces) both become spaces; blanks and ``<unk>`` are dropped.
    Ids are taken as given: collapsing CTC repeats is the decoder's job
    (:func:`audiorec.decoding.ctc_greedy_decode`).

    Parameters
    ----------
    vocab : sequence of str
        Token strings, index = id; ``vocab[0]`` is the blank.
    ids : iterable of int
        Token ids in ``[0, len(vocab))``.

    Returns
    -------
    str
        Words separated by single spaces, no leading or trailing space.

    Raises
    ------
    ValueError
        An id outside the vocabulary.

    Examples
    --------
    >>> tokens_to_text(["<blank>", "|", "a", "b"], [2, 0, 1, 3, 3])
    'a bb'
    >>> tokens_to_text(["<blank>", "<unk>", "\u2581a", "b", "\u2581"], [2, 3, 4, 3])
    'ab b'
    """
    pieces = []
    for i in ids:
        i = int(i)
        if not 0 <= i < len(vocab):
            raise ValueError(f"token id {i} is outside the vocabulary of {len(vocab)} tokens")
        if vocab[i] not in SPECIAL_TOKENS:
            pieces.append(vocab[i])
    text = "".join(pieces).replace(WORD_SEPARATOR, " ").replace(SPM_SPACE, " ")
    return " ".join(text.split())


def _check_reserved(texts: Sequence[str]) -> None:
    for text in texts:
        for c in RESERVED_CHARACTERS:
            if c in text:
                raise ValueError(f"text {text!r} contains {c!r}, which tokenizers reserve for the space")


class Tokenizer:
    """What every tokenizer offers: a vocabulary with the blank at 0, encode, decode, save.

    Attributes
    ----------
    kind : str
        One of :data:`TOKENIZER_KINDS`, written by :meth:`to_dict` and read by :func:`load_tokenizer`.
    vocab : list of str
        Token strings, index = id; ``vocab[0] == "<blank>"``.
    blank : int
        Id of the CTC blank, 0.
    """

    kind = ""
    blank = 0

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if not vocab or vocab[0] != BLANK:
            raise ValueError(f"a vocabulary starts with {BLANK!r}, got {vocab[:3]!r}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has repeated tokens")
        self.vocab = vocab

    def encode(self, text: str) -> list[int]:
        """Token ids of a normalised text; the blank (0) never appears.

        Raises
        ------
        ValueError
            A character of ``text`` is not in the vocabulary.
        """
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        """Text of token ids, by :func:`tokens_to_text` with this vocabulary."""
        return tokens_to_text(self.vocab, ids)

    def to_dict(self) -> dict:
        """JSON-serialisable description: ``kind`` and ``vocab`` (and what the kind needs to encode)."""
        return {"kind": self.kind, "vocab": list(self.vocab)}

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``, atomically; :func:`load_tokenizer` reads it back.

        Returns
        -------
        Path
        """
        return atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")


class CharTokenizer(Tokenizer):
    """One token per character: ``<blank>``, ``|`` (the space), then the characters in sorted order.

    Parameters
    ----------
    vocab : sequence of str
        The full vocabulary, as :meth:`train` builds it.

    Examples
    --------
    >>> tok = CharTokenizer.train(["a cab"])
    >>> tok.vocab
    ['<blank>', '|', 'a', 'b', 'c']
    >>> tok.encode("cab a")
    [4, 2, 3, 1, 2]
    """

    kind = "char"

    def __init__(self, vocab: Sequence[str]):
        super().__init__(vocab)
        if len(self.vocab) < 2 or self.vocab[1] != WORD_SEPARATOR:
            raise ValueError(f"a character vocabulary has {WORD_SEPARATOR!r} at index 1, got {self.vocab[:3]!r}")
        self._ids = {token: i for i, token in enumerate(self.vocab)}

    @classmethod
    def train(cls, texts: Sequence[str]) -> "CharTokenizer":
        """The vocabulary of the characters seen in ``texts``.

        Parameters
        ----------
        texts : sequence of str
            Normalised training transcripts.

        Returns
        -------
        CharTokenizer

        Raises
        ------
        ValueError
            A text contains ``|`` or ``▁`` (reserved for the space).
        """
        _check_reserved(texts)
        characters = sorted(set("".join(texts)) - {" "})
        return cls([BLANK, WORD_SEPARATOR, *characters])

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, spaces (runs of whitespace) as ``|``.

        Parameters
        ----------
        text : str
            Normalised text; leading, trailing and repeated whitespace is ignored.

        Returns
        -------
        list of int
            One id per character.

        Raises
        ------
        ValueError
            A character not in the vocabulary; the message names it and the text.
        """
        ids = []
        for c in " ".join(text.split()).replace(" ", WORD_SEPARATOR):
            if c not in self._ids:
                raise ValueError(f"character {c!r} of text {text!r} is not in the vocabulary")
            ids.append(self._ids[c])
        return ids


class SentencePieceTokenizer(Tokenizer):
    """Subword pieces of a sentencepiece unigram model, shifted by one so the blank is id 0.

    The vocabulary is ``<blank>`` followed by the sentencepiece model's pieces in its own order,
    starting with ``<unk>``; there are no sentence-boundary pieces, since CTC does not use them.
    Decoding reads the vocabulary only; encoding loads the model proto into sentencepiece on
    first use.

    Parameters
    ----------
    vocab : sequence of str
        ``<blank>`` then the model's pieces.
    model_proto : bytes
        The serialised sentencepiece model (``ModelProto``), as :meth:`train` returns it.

    References
    ----------
    Kudo 2018, "Subword Regularization: Improving Neural Network Translation Models with Multiple
    Subword Candidates", ACL 2018 (the unigram model).
    Kudo & Richardson 2018, "SentencePiece: A simple and language independent subword tokenizer
    and detokenizer for Neural Text Processing", EMNLP 2018 demo.
    """

    kind = "sentencepiece"

    def __init__(self, vocab: Sequence[str], model_proto: bytes):
        super().__init__(vocab)
        self.model_proto = bytes(model_proto)
        self._processor = None
        # Characters the model can encode, for naming the culprit when a text has others.
        self._alphabet = set("".join(p for p in self.vocab if p not in SPECIAL_TOKENS)) | {" "}

    @classmethod
    def train(cls, texts: Sequence[str], vocab_size: int) -> "SentencePieceTokenizer":
        """Train a unigram model on ``texts``, in memory.

        Every character of the texts is kept (``character_coverage=1``) and the text is not
        normalised further (``normalization_rule_name="identity"``), so what is encoded reads
        back exactly.

        Parameters
        ----------
        texts : sequence of str
            Normalised training transcripts.
        vocab_size : int
            Tokens in the final vocabulary, the blank included: the model's output size.

        Returns
        -------
        SentencePieceTokenizer

        Raises
        ------
        ValueError
            No texts, a text contains ``|`` or ``▁``, or sentencepiece cannot make exactly
            ``vocab_size - 1`` pieces from the texts (too few characters or too many pieces
            asked for; the message names the smallest or largest feasible ``vocab_size`` when
            sentencepiece reports it).
        """
        import sentencepiece  # training extra; decoding needs only the vocabulary

        texts = [t for t in texts if t.strip()]
        if not texts:
            raise ValueError("no non-empty texts to train a sentencepiece model on")
        _check_reserved(texts)
        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=model,
                model_type="unigram",
                vocab_size=vocab_size - 1,  # the blank is added in front
                character_coverage=1.0,
                normalization_rule_name="identity",
                unk_id=0,
                bos_id=-1,
                eos_id=-1,
                minloglevel=2,  # no per-iteration log on stderr
                num_threads=1,  # transcripts are small; threads would only compete with training
            )
        except RuntimeError as e:
            # sentencepiece states the feasible bound in its own vocabulary size, one less than ours.
            largest = re.search(r"Vocabulary size too high \(\d+\)\. Please set it to a value <= (\d+)", str(e))
            smallest = re.search(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)", str(e))
            hint = (f"; the largest these texts allow is {int(largest.group(1)) + 1}" if largest
                    else f"; their characters need at least {int(smallest.group(1)) + 1}" if smallest else "")
            raise ValueError(
                f"sentencepiece cannot build a vocabulary of {vocab_size} tokens from {len(texts)} texts{hint}: {e}"
            ) from e
        processor = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        return cls([BLANK, *pieces], model.getvalue())

    def _sentencepiece(self):
        if self._processor is None:
            import sentencepiece  # training extra; decoding needs only the vocabulary

            processor = sentencepiece.SentencePieceProcessor(model_proto=self.model_proto)
            pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
            if pieces != self.vocab[1:]:
                raise ValueError("the sentencepiece model's pieces differ from the vocabulary")
            self._processor = processor
        return self._processor

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``: sentencepiece's ids plus one.

        Parameters
        ----------
        text : str
            Normalised text; leading, trailing and repeated whitespace is ignored.

        Returns
        -------
        list of int

        Raises
        ------
        ValueError
            A character the model has never seen (sentencepiece would map it to ``<unk>``, a
            target that reads back as nothing); the message names it and the text. Or the model
            proto's pieces differ from the vocabulary (a hand-edited file).
        """
        words = " ".join(text.split())
        unknown = [c for c in words if c not in self._alphabet]
        if unknown:
            raise ValueError(f"character {unknown[0]!r} of text {text!r} is not in the vocabulary")
        return [i + 1 for i in self._sentencepiece().encode(words)]

    def to_dict(self) -> dict:
        """``kind``, ``vocab`` and ``model_proto`` (the sentencepiece model, base64)."""
        return {**super().to_dict(), "model_proto": base64.b64encode(self.model_proto).decode("ascii")}


def build_tokenizer(kind: str, texts: Sequence[str], vocab_size: int = 0) -> Tokenizer:
    """Build a tokenizer of ``kind`` from training transcripts.

    Parameters
    ----------
    kind : {"char", "sentencepiece"}
    texts : sequence of str
        Normalised training transcripts.
    vocab_size : int
        Sentencepiece only: tokens in the vocabulary, the blank included. Ignored for ``"char"``,
        whose size is set by the characters seen.

    Returns
    -------
    Tokenizer

    Raises
    ------
    ValueError
        An unknown ``kind`` (the message names the choices), ``vocab_size`` < 2 for
        sentencepiece, or as :meth:`CharTokenizer.train` and :meth:`SentencePieceTokenizer.train`.
    """
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "sentencepiece":
        if vocab_size < 2:
            raise ValueError(f"vocab_size={vocab_size}: a sentencepiece vocabulary needs at least 2 tokens")
        return SentencePieceTokenizer.train(texts, vocab_size)
    raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(TOKENIZER_KINDS)}")


def load_tokenizer(path_or_dict: str | Path | Mapping) -> Tokenizer:
    """A tokenizer from :meth:`Tokenizer.save`'s JSON file or :meth:`Tokenizer.to_dict`'s dict.

    Loading needs no sentencepiece: a sentencepiece tokenizer decodes from its vocabulary and
    loads the model only to encode.

    Parameters
    ----------
    path_or_dict : str, Path or mapping

    Returns
    -------
    Tokenizer
        A :class:`CharTokenizer` or :class:`SentencePieceTokenizer`.

    Raises
    ------
    ValueError
        The file is missing or not a tokenizer's JSON, or the dict lacks ``kind``/``vocab``,
        names an unknown kind, or has a bad vocabulary; a file's name is in the message and
        the cause is chained.
    """
    if isinstance(path_or_dict, Mapping):
        return _tokenizer_from_dict(path_or_dict)
    path = Path(path_or_dict)
    try:
        return _tokenizer_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"cannot load a tokenizer from {path}: {e}") from e


def _tokenizer_from_dict(d: Mapping) -> Tokenizer:
    if not isinstance(d, Mapping) or "kind" not in d or "vocab" not in d:
        raise ValueError("a tokenizer description needs 'kind' and 'vocab'")
    if d["kind"] == "char":
        return CharTokenizer(d["vocab"])
    if d["kind"] == "sentencepiece":
        if "model_proto" not in d:
            raise ValueError("a sentencepiece tokenizer description needs 'model_proto'")
        return SentencePieceTokenizer(d["vocab"], base64.b64decode(d["model_proto"], validate=True))
    raise ValueError(f"unknown tokenizer kind {d['kind']!r}; choose one of {', '.join(TOKENIZER_KINDS)}")
