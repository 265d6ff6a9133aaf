"""Tokenizers: the vocabulary layout, round trips, errors, and detokenising from the vocabulary alone."""

from __future__ import annotations

import json
import sys

import pytest

from audiorec.tokenizer import (
    BLANK,
    CharTokenizer,
    SentencePieceTokenizer,
    build_tokenizer,
    load_tokenizer,
    tokens_to_text,
)

SENTENCES = ["the cat sat on the mat", "it's a dog", "hello world"]

# ~50 varied sentences, enough text for a small unigram model.
SUBJECTS = ["the cat", "a dog", "my friend", "the old man", "her brother", "our teacher", "the little bird"]
VERBS = ["sees", "likes", "doesn't want", "found", "will bring", "can't find", "is painting"]
OBJECTS = ["the red ball", "a green apple", "some water", "the morning paper", "its own shadow",
           "a quiet house", "the blue sky"]
CORPUS = [f"{s} {v} {o}" for i, s in enumerate(SUBJECTS) for j, v in enumerate(VERBS)
          for o in OBJECTS[(i + j) % 7:(i + j) % 7 + 1]]


def test_char_vocabulary_layout():
    tok = build_tokenizer("char", ["ba c", "it's"])
    assert tok.blank == 0
    assert tok.vocab == [BLANK, "|", "'", "a", "b", "c", "i", "s", "t"]


def test_char_encode_decode_by_hand():
    tok = CharTokenizer.train(["a cab"])  # <blank> | a b c
    assert tok.encode("cab a") == [4, 2, 3, 1, 2]
    assert tok.encode("  cab   a ") == [4, 2, 3, 1, 2]
    # Blanks are skipped and separators become single spaces, stripped at the ends.
    assert tok.decode([0, 1, 4, 0, 2, 3, 1, 1, 0, 2, 1]) == "cab a"


@pytest.mark.parametrize("text", SENTENCES)
def test_char_round_trip(text):
    tok = CharTokenizer.train(SENTENCES)
    ids = tok.encode(text)
    assert 0 not in ids
    assert len(ids) == len(text)
    assert tok.decode(ids) == text


def test_char_unknown_character_names_it_and_the_text():
    tok = CharTokenizer.train(SENTENCES)
    with pytest.raises(ValueError, match=r"'z'.*'the zoo'"):
        tok.encode("the zoo")


def test_reserved_characters_rejected_in_training_texts():
    with pytest.raises(ValueError, match=r"'\|'"):
        CharTokenizer.train(["a|b"])


def test_tokens_to_text_handles_both_markers():
    assert tokens_to_text([BLANK, "|", "a", "b"], [2, 1, 3, 3]) == "a bb"
    assert tokens_to_text([BLANK, "<unk>", "\u2581ab", "c", "\u2581"], [0, 2, 3, 4, 3, 1]) == "abc c"
    with pytest.raises(ValueError, match="token id 5"):
        tokens_to_text([BLANK, "|", "a"], [5])


def test_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match="'bpe'.*char, sentencepiece"):
        build_tokenizer("bpe", SENTENCES)


def test_char_save_load_round_trip(tmp_path):
    tok = CharTokenizer.train(SENTENCES)
    path = tok.save(tmp_path / "tokenizer.json")
    assert json.loads(path.read_text()) == {"kind": "char", "vocab": tok.vocab}
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]
    loaded = load_tokenizer(path)
    assert isinstance(loaded, CharTokenizer)
    assert loaded.vocab == tok.vocab
    assert loaded.encode("hello world") == tok.encode("hello world")
    assert load_tokenizer(tok.to_dict()).vocab == tok.vocab


def test_load_missing_or_bad_file_names_it(tmp_path):
    with pytest.raises(ValueError, match="absent.json"):
        load_tokenizer(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "char"}')
    with pytest.raises(ValueError, match="bad.json"):
        load_tokenizer(bad)
    with pytest.raises(ValueError, match="starts with '<blank>'"):
        load_tokenizer({"kind": "char", "vocab": ["|", "a"]})


@pytest.fixture(scope="module")
def spm_tokenizer():
    return build_tokenizer("sentencepiece", CORPUS, vocab_size=40)


def test_sentencepiece_vocabulary_layout(spm_tokenizer):
    assert len(CORPUS) == 49
    assert len(spm_tokenizer.vocab) == 40
    assert spm_tokenizer.vocab[:2] == [BLANK, "<unk>"]
    assert spm_tokenizer.blank == 0
    assert "<s>" not in spm_tokenizer.vocab and "</s>" not in spm_tokenizer.vocab
    # Subwords, not just characters: some piece is longer than one character plus its marker.
    assert any(len(p.lstrip("\u2581")) > 1 for p in spm_tokenizer.vocab[2:])


@pytest.mark.parametrize("text", [CORPUS[0], CORPUS[17], CORPUS[-1], "the dog can't find a bird"])
def test_sentencepiece_round_trip_and_vocab_only_decoding(spm_tokenizer, text):
    ids = spm_tokenizer.encode(text)
    assert ids and 0 not in ids and 1 not in ids  # no blank, no <unk>
    assert len(ids) < len(text)  # pieces are longer than characters on average
    assert spm_tokenizer.decode(ids) == text
    assert tokens_to_text(spm_tokenizer.vocab, ids) == text


def test_sentencepiece_unknown_character(spm_tokenizer):
    with pytest.raises(ValueError, match=r"'z'.*'the zebra'"):
        spm_tokenizer.encode("the zebra")


def test_sentencepiece_save_load_round_trip(spm_tokenizer, tmp_path):
    path = spm_tokenizer.save(tmp_path / "tokenizer.json")
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]
    assert set(json.loads(path.read_text())) == {"kind", "vocab", "model_proto"}
    loaded = load_tokenizer(path)
    assert isinstance(loaded, SentencePieceTokenizer)
    assert loaded.vocab == spm_tokenizer.vocab
    assert loaded.model_proto == spm_tokenizer.model_proto
    assert loaded.encode(CORPUS[5]) == spm_tokenizer.encode(CORPUS[5])


def test_sentencepiece_decoding_after_load_needs_no_sentencepiece(spm_tokenizer, monkeypatch):
    ids = spm_tokenizer.encode(CORPUS[3])
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # any import of it now fails
    loaded = load_tokenizer(spm_tokenizer.to_dict())
    assert loaded.decode(ids) == CORPUS[3]


def test_sentencepiece_vocab_size_out_of_reach_names_the_bound():
    # "hello world abc": 11 distinct characters, "▁" and <unk> make sentencepiece's minimum of 12;
    # with the blank, 13 tokens, which is also all that one short text supports.
    with pytest.raises(ValueError, match="5 tokens.*need at least 13"):
        build_tokenizer("sentencepiece", ["hello world abc"], vocab_size=5)
    with pytest.raises(ValueError, match="200 tokens.*largest these texts allow is 13"):
        build_tokenizer("sentencepiece", ["hello world abc"], vocab_size=200)
    assert len(build_tokenizer("sentencepiece", ["hello world abc"], vocab_size=13).vocab) == 13
