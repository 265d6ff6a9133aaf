"""Transcribed corpora: AN4, LibriSpeech, Kaldi yesno and CSV/TSV tables; text normalisation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiorec.data.corpora import detect_layout, import_corpus, scan_corpus
from audiorec.data.transcribed import TEXT_NORMALISATION, command_clips, normalize_text, scan_transcribed
from conftest import hash_tree, shared_dataset, write_sine


def tone(path: Path, sample_rate: int = 16_000, duration_s: float = 0.5, **kwargs) -> Path:
    return write_sine(path, 440.0, sample_rate, duration_s, **kwargs)


def by_name(result) -> dict[str, object]:
    return {Path(u.path).name: u for u in result.utterances}


def reasons(result) -> dict[str, str]:
    """``where`` -> reason, with ``where`` shortened to the file name (plus ``:line``)."""
    return {Path(where).name: reason for where, reason in result.rejected}


# ------------------------------------------------------------------------------ normalisation


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("<s> ENTER NINE ONE SIX NINE </s>", "enter nine one six nine"),
        ("<s>YES</s>", "yes"),
        ("HELLO <noise> World <sil>", "hello world"),
        ("Don't STOP, it's fine.", "don't stop it's fine"),
        ("don\u2019t", "don't"),  # a typographic apostrophe is the same word
        ("'quoted' and the boys' room", "quoted and the boys room"),
        ("Twenty-one: 21, room 3.5!", "twenty one 21 room 3 5"),
        ("  many\t spaces \n here  ", "many spaces here"),
        ("\ufb01ve \uff26\uff55\uff4c\uff4c", "five full"),  # NFKC: ligature and full-width letters
        ("Caf\u00e9 NA\u00cfVE", "caf\u00e9 na\u00efve"),
        ("<s> </s>", ""),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_normalisation_description_names_each_step():
    for step in ("NFKC", "<s>", "lower case", "apostrophes", "whitespace"):
        assert step in TEXT_NORMALISATION


# ------------------------------------------------------------------------------------------- AN4


def write_sph(path: Path) -> Path:
    return tone(path, format="NIST", subtype="PCM_16")


AN4_TRAIN = {
    "an251-fash-b": "<s> YES </s>",
    "an253-fash-b": "<s> GO </s>",
    "an36-fjmd-b": "<s> ENTER NINE ONE SIX NINE </s>",
}
AN4_TEST = {"an416-fjlp-b": "<s> NO </s>", "an417-fjlp-b": "<s> RUBOUT T W O </s>"}


def make_an4(root: Path) -> None:
    """Two subsets as in CMU AN4; one test file lies outside the folder its fileids line names."""
    for subset, folder, lines in (("train", "an4_clstk", AN4_TRAIN), ("test", "an4test_clstk", AN4_TEST)):
        (root / "etc").mkdir(parents=True, exist_ok=True)
        (root / "etc" / f"an4_{subset}.transcription").write_text(
            "".join(f"{text} ({utt})\n" for utt, text in lines.items())
        )
        (root / "etc" / f"an4_{subset}.fileids").write_text(
            "".join(f"{folder}/{utt.split('-')[1]}/{utt}\n" for utt in lines)
        )
        for utt in lines:
            if utt != "an417-fjlp-b":
                write_sph(root / "wav" / folder / utt.split("-")[1] / f"{utt}.sph")
    write_sph(root / "wav" / "fjlp" / "an417-fjlp-b.sph")
    (root / "etc" / "an4.dic").write_text("YES Y EH S\n")


def test_an4_import(tmp_path):
    make_an4(tmp_path)
    assert detect_layout(tmp_path) == "an4"
    result = import_corpus(tmp_path, progress=False)
    assert result.layout == "an4"
    assert result.rejected == []
    utts = {Path(u.path).stem: u for u in result.utterances}
    assert set(utts) == set(AN4_TRAIN) | set(AN4_TEST)
    assert utts["an36-fjmd-b"].text == "enter nine one six nine"
    assert utts["an417-fjlp-b"].text == "rubout t w o"
    assert Path(utts["an417-fjlp-b"].path) == tmp_path / "wav" / "fjlp" / "an417-fjlp-b.sph"
    assert {u.speaker for u in result.utterances} == {"fash", "fjmd", "fjlp"}
    assert [utts[k].subset for k in AN4_TRAIN] == ["train"] * 3
    assert [utts[k].subset for k in AN4_TEST] == ["test"] * 2
    assert all(u.label is None and u.sample_rate == 16_000 for u in result.utterances)
    assert result.text_normalisation == TEXT_NORMALISATION
    with pytest.raises(ValueError, match="transcribed corpus.*import_corpus"):
        scan_corpus(tmp_path)


def test_an4_fileids_path_takes_precedence_over_other_copies(tmp_path):
    make_an4(tmp_path)
    write_sph(tmp_path / "wav" / "extra" / "an251-fash-b.sph")
    result = import_corpus(tmp_path, progress=False)
    listed = tmp_path / "wav" / "an4_clstk" / "fash" / "an251-fash-b.sph"
    assert by_name(result)["an251-fash-b.sph"].path == str(listed)
    assert result.rejected == [
        (str(tmp_path / "wav" / "extra" / "an251-fash-b.sph"), f"another file for id an251-fash-b is used: {listed}")
    ]


def test_an4_bad_lines_and_untranscribed_audio(tmp_path):
    make_an4(tmp_path)
    train = tmp_path / "etc" / "an4_train.transcription"
    train.write_text(
        train.read_text()
        + "<s> HELP </s> (an999-fash-b)\n"  # line 4: no audio
        + "<s> NO ID HERE </s>\n"  # line 5: malformed
        + "\n"
        + "<s> YES AGAIN </s> (an251-fash-b)\n"  # line 7: the id again
    )
    write_sph(tmp_path / "wav" / "an4_clstk" / "fash" / "an300-fash-b.sph")
    result = import_corpus(tmp_path, progress=False)
    assert len(result.utterances) == 5
    assert by_name(result)["an251-fash-b.sph"].text == "yes"
    found = reasons(result)
    assert found["an4_train.transcription:4"] == "no audio file for id an999-fash-b"
    assert found["an4_train.transcription:5"].startswith("malformed line")
    assert found["an4_train.transcription:7"].startswith("duplicate id an251-fash-b")
    assert found["an300-fash-b.sph"] == "no transcript"
    assert len(result.rejected) == 4
    summary = result.summary()
    assert summary["n_rejected"] == 4
    assert {r["path"] for r in summary["rejected"]} >= {f"{train}:4", f"{train}:5", f"{train}:7"}


def test_an4_explicit_layout_on_another_folder_is_an_error(tmp_path):
    tone(tmp_path / "yes" / "a_1.wav")
    with pytest.raises(ValueError, match="an4_train.transcription"):
        import_corpus(tmp_path, "an4", progress=False)


def test_transcribed_import_never_modifies_the_originals(tmp_path):
    make_an4(tmp_path)
    before = hash_tree(tmp_path)
    import_corpus(tmp_path, progress=False)
    assert hash_tree(tmp_path) == before


def test_real_an4_counts():
    root = shared_dataset("an4")
    result = import_corpus(root, progress=False)
    assert result.layout == "an4"
    assert result.rejected == []
    summary = result.summary()
    assert summary["n_kept"] == 1078
    assert {k: v["n_utterances"] for k, v in summary["subsets"].items()} == {"train": 948, "test": 130}
    assert {k: v["n_speakers"] for k, v in summary["subsets"].items()} == {"train": 74, "test": 10}
    utt = by_name(result)["an417-fjlp-b.sph"]
    assert (utt.text, utt.speaker, utt.subset) == ("enter nine one six nine", "fjlp", "test")
    # Only letters, digits, spaces and apostrophes survive normalisation.
    assert all(u.text and u.text == normalize_text(u.text) and "<" not in u.text for u in result.utterances)
    assert summary["n_words"] == sum(len(u.text.split()) for u in result.utterances)


# ----------------------------------------------------------------------------------- LibriSpeech


LIBRI = {
    "train-clean-100": {("19", "198"): {"19-198-0000": "NORTHANGER ABBEY", "19-198-0001": "THIS LITTLE WORK'S DONE"}},
    "test-clean": {
        ("1089", "134686"): {"1089-134686-0000": "HE HOPED THERE WOULD BE STEW FOR DINNER"},
        ("121", "121726"): {"121-121726-0000": "ALSO A POPULAR CONTRIVANCE"},
    },
}


def make_librispeech(root: Path) -> None:
    for subset, chapters in LIBRI.items():
        for (speaker, chapter), lines in chapters.items():
            folder = root / subset / speaker / chapter
            for utt in lines:
                tone(folder / f"{utt}.flac")
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(f"{u} {t}\n" for u, t in lines.items()))
    (root / "SPEAKERS.TXT").write_text(";ID |SEX| SUBSET\n19 | F | train-clean-100\n")


def test_librispeech_import_from_the_librispeech_folder(tmp_path):
    make_librispeech(tmp_path / "LibriSpeech")
    assert detect_layout(tmp_path / "LibriSpeech") == "librispeech"
    # One level further up (the folder the archive was unpacked into) is found too.
    assert detect_layout(tmp_path) == "librispeech"
    result = import_corpus(tmp_path / "LibriSpeech", progress=False)
    assert result.layout == "librispeech" and result.rejected == []
    utts = {Path(u.path).stem: u for u in result.utterances}
    assert utts["19-198-0001"].text == "this little work's done"
    assert (utts["19-198-0001"].speaker, utts["19-198-0001"].subset) == ("19", "train-clean-100")
    assert (utts["121-121726-0000"].speaker, utts["121-121726-0000"].subset) == ("121", "test-clean")
    summary = result.summary()
    assert summary["labels"] == {}
    assert summary["n_words"] == 2 + 4 + 8 + 4
    assert summary["subsets"] == {
        "test-clean": {"n_utterances": 2, "n_speakers": 2, "n_words": 12, "duration_s": 1.0},
        "train-clean-100": {"n_utterances": 2, "n_speakers": 1, "n_words": 6, "duration_s": 1.0},
    }
    assert summary["text_normalisation"] == TEXT_NORMALISATION
    json.dumps(summary)  # the report is written as JSON


def test_librispeech_import_of_one_subset_folder(tmp_path):
    make_librispeech(tmp_path)
    result = import_corpus(tmp_path / "test-clean", progress=False)
    assert result.layout == "librispeech"
    assert {u.subset for u in result.utterances} == {"test-clean"}
    assert {u.speaker for u in result.utterances} == {"1089", "121"}


def test_librispeech_bad_lines_and_untranscribed_audio(tmp_path):
    make_librispeech(tmp_path)
    chapter = tmp_path / "test-clean" / "1089" / "134686"
    transcript = chapter / "1089-134686.trans.txt"
    transcript.write_text(
        transcript.read_text()
        + "1089-134686-0001\n"  # line 2: no text
        + "1089-134686-0002 STUFF IT INTO YOU\n"  # line 3: no audio
    )
    tone(chapter / "1089-134686-0003.flac")
    soundfile.write(chapter / "1089-134686-0004.flac", np.zeros(8_000), 16_000)  # digital silence
    with transcript.open("a") as f:
        f.write("1089-134686-0004 SILENCE\n")  # line 4: audio that fails validation
    result = import_corpus(tmp_path, "librispeech", progress=False)
    assert len(result.utterances) == 4
    found = reasons(result)
    assert found["1089-134686.trans.txt:2"].startswith("malformed line")
    assert found["1089-134686.trans.txt:3"] == "no audio file for id 1089-134686-0002"
    assert found["1089-134686-0003.flac"] == "no transcript"
    assert found["1089-134686-0004.flac"].startswith("silent")
    assert len(result.rejected) == 4


# -------------------------------------------------------------------------------------- yesno


def test_yesno_import(tmp_path):
    for name in ("0_0_1_1", "1_0_1_0_0_0_1_1"):
        tone(tmp_path / f"{name}.wav", 8_000)
    (tmp_path / "README").write_text("yesno\n")
    assert detect_layout(tmp_path) == "yesno"
    result = import_corpus(tmp_path, progress=False)
    assert result.layout == "yesno" and result.rejected == []
    texts = {Path(u.path).stem: u.text for u in result.utterances}
    assert texts == {"0_0_1_1": "no no yes yes", "1_0_1_0_0_0_1_1": "yes no yes no no no yes yes"}
    assert {(u.speaker, u.subset, u.label) for u in result.utterances} == {("yesno", None, None)}
    assert result.summary()["subsets"] == {}


def test_yesno_file_with_another_name_has_no_transcript(tmp_path):
    tone(tmp_path / "0_1_1_0.wav", 8_000)
    tone(tmp_path / "take2.wav", 8_000)
    with pytest.raises(ValueError, match="no audio files"):
        detect_layout(tmp_path)  # not all names are yes/no sequences
    result = import_corpus(tmp_path, "yesno", progress=False)
    assert [Path(u.path).name for u in result.utterances] == ["0_1_1_0.wav"]
    assert reasons(result)["take2.wav"].startswith("no transcript")


def test_fsdd_names_are_not_yesno(tmp_path):
    for name in ("0_george_0", "1_theo_12", "7_jackson_1"):
        tone(tmp_path / f"{name}.wav", 8_000)
    assert detect_layout(tmp_path) == "fsdd"
    result = import_corpus(tmp_path, progress=False)
    assert result.layout == "fsdd" and result.text_normalisation is None
    assert {u.label for u in result.utterances} == {"0", "1", "7"}
    assert all(u.text is None and u.subset is None for u in result.utterances)
    # A command corpus's report keeps exactly its keys.
    assert set(result.summary()) == {
        "layout", "n_kept", "n_rejected", "rejected", "labels", "n_speakers", "sample_rates", "total_duration_s",
    }


def test_real_yesno_counts():
    result = import_corpus(shared_dataset("yesno"), progress=False)
    assert result.layout == "yesno"
    assert len(result.utterances) == 60 and result.rejected == []
    assert all(len(u.text.split()) == 8 and set(u.text.split()) <= {"yes", "no"} for u in result.utterances)
    assert result.summary()["n_words"] == 480


# ------------------------------------------------------------------------------- CSV and TSV


def test_csv_transcripts(tmp_path):
    tone(tmp_path / "audio" / "a.wav")
    tone(tmp_path / "audio" / "b.flac")
    elsewhere = tone(tmp_path / "elsewhere" / "c.wav")
    table = tmp_path / "data" / "transcripts.csv"
    table.parent.mkdir()
    table.write_text(
        "path,text,speaker,subset\n"
        '../audio/a.wav,"Hello, World!",anna,train\n'
        "../audio/b.flac,<s> GOOD MORNING </s>,,test\n"
        f"{elsewhere},don't go,bob,\n"
    )
    assert detect_layout(table) == "transcripts"
    result = import_corpus(table, progress=False)
    assert result.layout == "transcripts" and result.rejected == []
    found = {Path(u.path).name: (u.text, u.speaker, u.subset) for u in result.utterances}
    assert found == {
        "a.wav": ("hello world", "anna", "train"),
        "b.flac": ("good morning", None, "test"),
        "c.wav": ("don't go", "bob", None),
    }
    assert all(Path(u.path).is_absolute() for u in result.utterances)


def test_tsv_with_only_path_and_text_and_bad_rows(tmp_path):
    tone(tmp_path / "a.wav")
    tone(tmp_path / "b.wav")
    table = tmp_path / "list.tsv"
    table.write_text(
        "Path\tText\n"  # header names are matched regardless of case
        "a.wav\tFirst one\n"
        "b.wav\t\n"  # line 3: no text
        "\tno path\n"  # line 4: no path
        "missing.wav\tghost\n"  # line 5: no such file
        "a.wav\tagain\n"  # line 6: the same file again
    )
    result = import_corpus(table, progress=False)
    assert [(Path(u.path).name, u.text, u.speaker) for u in result.utterances] == [("a.wav", "first one", None)]
    found = reasons(result)
    assert found["list.tsv:3"] == "malformed row: no text"
    assert found["list.tsv:4"] == "malformed row: no path"
    assert found["list.tsv:5"] == "no audio file missing.wav"
    assert found["list.tsv:6"] == "duplicate of line 2"


def test_csv_without_text_column_is_an_error_naming_the_file(tmp_path):
    tone(tmp_path / "a.wav")
    table = tmp_path / "bad.csv"
    table.write_text("path,transcript\na.wav,hello\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*'text' column"):
        import_corpus(table, progress=False)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv.*'path' or 'text'"):
        scan_transcribed(empty, "transcripts")


def test_every_line_rejected_is_an_error_naming_one(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("path,text\nnowhere.wav,hi\n")
    with pytest.raises(ValueError, match=r"t\.csv:2: no audio file nowhere\.wav"):
        import_corpus(table, progress=False)


# ---------------------------------------------------------------- command clips from transcripts


def test_command_clips_label_one_word_commands_and_other_speech(tmp_path):
    make_an4(tmp_path)
    utterances = import_corpus(tmp_path, progress=False).utterances
    clips = {Path(c.path).stem: c for c in command_clips(utterances, ["YES", "no", "stop"])}
    assert {k: c.label for k, c in clips.items()} == {
        "an251-fash-b": "yes",  # labels are normalised as the transcripts are
        "an253-fash-b": "_unknown_",  # "go" is not among these commands
        "an36-fjmd-b": "_unknown_",
        "an416-fjlp-b": "no",
        "an417-fjlp-b": "_unknown_",
    }
    assert all(c.text is None for c in clips.values())
    original = by_name(import_corpus(tmp_path, progress=False))["an416-fjlp-b.sph"]
    assert (clips["an416-fjlp-b"].speaker, clips["an416-fjlp-b"].subset) == (original.speaker, "test")


def test_command_clips_leave_out_a_command_among_other_words(tmp_path):
    make_an4(tmp_path)
    utterances = import_corpus(tmp_path, progress=False).utterances
    kept = {Path(c.path).stem for c in command_clips(utterances, ["nine", "yes"])}
    assert "an36-fjmd-b" not in kept  # "enter nine one six nine" holds "nine" among other words
    assert {"an251-fash-b", "an253-fash-b", "an416-fjlp-b", "an417-fjlp-b"} <= kept


def test_command_clips_errors(tmp_path):
    make_an4(tmp_path)
    utterances = import_corpus(tmp_path, progress=False).utterances
    with pytest.raises(ValueError, match="no command labels"):
        command_clips(utterances, [" ", ""])
    with pytest.raises(ValueError, match="_unknown_"):
        command_clips(utterances, ["yes", "_unknown_"])
    with pytest.raises(ValueError, match="'turn on'"):
        command_clips(utterances, ["yes", "turn_on"])
    unlabelled = replace(utterances[0], text=None, label=None)
    with pytest.raises(ValueError, match=unlabelled.path):
        command_clips([unlabelled], ["yes"])


def test_command_clips_from_a_labelled_corpus(tmp_path):
    # Another command corpus's clips: its label is the one-word transcript; its commands keep
    # their label, its other words and _unknown_ become _unknown_, _silence_ is left out.
    make_an4(tmp_path)
    base = import_corpus(tmp_path, progress=False).utterances[0]
    clips = [replace(base, path=f"{label}.wav", text=None, label=label)
             for label in ["Yes", "7", "dog", "_unknown_", "_silence_"]]
    assert [(c.path, c.label) for c in command_clips(clips, ["yes", "no"])] == [
        ("Yes.wav", "yes"), ("7.wav", "_unknown_"), ("dog.wav", "_unknown_"), ("_unknown_.wav", "_unknown_")]


def test_data_commands_cli_writes_a_manifest_training_reads(tmp_path, capsys):
    from audiorec.cli import main
    from audiorec.data.manifest import read_manifest

    make_an4(tmp_path / "an4")
    out = tmp_path / "an4_commands.jsonl"
    assert main(["data", "commands", str(tmp_path / "an4"), "--labels", "yes,no,go", "--subset", "train", "--out", str(out)]) == 0
    clips = read_manifest(out)
    assert sorted((Path(c.path).stem, c.label) for c in clips) == [
        ("an251-fash-b", "yes"), ("an253-fash-b", "go"), ("an36-fjmd-b", "_unknown_")]
    assert "3 of 3 utterances kept" in capsys.readouterr().out
    imported = tmp_path / "an4.jsonl"
    assert main(["data", "import", str(tmp_path / "an4"), "--out", str(imported)]) == 0
    again = tmp_path / "again.jsonl"
    assert main(["data", "commands", str(imported), "--labels", "yes,no,go", "--subset", "train", "--out", str(again)]) == 0
    assert read_manifest(again) == clips
    capsys.readouterr()
    # A manifest of labelled clips is read by its labels (here the commands just written, "go" now
    # among the other words); a subset the corpus lacks is named with those it has; a missing source is named.
    relabelled = tmp_path / "relabelled.jsonl"
    assert main(["data", "commands", str(out), "--labels", "yes", "--out", str(relabelled)]) == 0
    assert [c.label for c in read_manifest(relabelled)] == ["yes", "_unknown_", "_unknown_"]
    capsys.readouterr()
    assert main(["data", "commands", str(imported), "--labels", "yes", "--subset", "dev", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "no utterances in subset 'dev' (its subsets: test, train)" in capsys.readouterr().err
    assert main(["data", "commands", str(tmp_path / "nowhere"), "--labels", "yes", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "nowhere: no such manifest or corpus folder" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_real_an4_command_clips():
    from collections import Counter

    root = shared_dataset("an4")
    utterances = [u for u in import_corpus(root, progress=False).utterances if u.subset == "train"]
    clips = command_clips(utterances, "yes no up down left right on off stop go".split())
    # Every AN4 training utterance with one of the ten commands is that word alone.
    assert len(clips) == len(utterances) == 948
    assert Counter(c.label for c in clips) == {"_unknown_": 885, "yes": 21, "no": 16, "stop": 16, "go": 10}
