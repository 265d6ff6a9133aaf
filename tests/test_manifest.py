"""The JSON Lines manifest: round trip, and errors that name the file and line."""

from __future__ import annotations

import json

import pytest

from audiorec.data.manifest import ManifestError, Utterance, read_manifest, write_manifest

UTTERANCES = [
    Utterance("/data/fsdd/0_george_0.wav", 0.43, 8_000, speaker="george", label="0"),
    Utterance("/data/sc/_silence_/1024.flac", 1.0, 16_000, speaker=None, label="_silence_"),
    Utterance("/data/an4/cen5-fvap-b.sph", 3.1, 16_000, speaker="fvap", text="ENTER NINE ONE SIX"),
    Utterance("/data/ünïcode/ça_va_1.wav", 1.25, 44_100, speaker="ça", label="ça va"),
]


def test_round_trip(tmp_path):
    path = write_manifest(tmp_path / "sub" / "m.jsonl", UTTERANCES)
    assert path == tmp_path / "sub" / "m.jsonl"
    assert read_manifest(path) == UTTERANCES


def test_one_json_object_per_line_without_nulls(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", UTTERANCES)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(UTTERANCES)
    records = [json.loads(line) for line in lines]
    assert records[0] == {"path": "/data/fsdd/0_george_0.wav", "duration": 0.43, "sample_rate": 8000,
                          "speaker": "george", "label": "0"}
    assert "speaker" not in records[1] and "text" not in records[1]
    assert not [f for f in tmp_path.iterdir() if f.name != "m.jsonl"]  # no temporary file left


def test_hand_written_manifest_with_blank_lines(tmp_path):
    path = tmp_path / "hand.jsonl"
    path.write_text('{"path": "/a.wav", "duration": 1, "sample_rate": 16000}\n\n'
                    '{"path": "/b.wav", "duration": 2.5, "sample_rate": 8000, "label": "go"}\n', encoding="utf-8")
    assert read_manifest(path) == [Utterance("/a.wav", 1, 16_000), Utterance("/b.wav", 2.5, 8_000, label="go")]


def test_group_is_speaker_or_file():
    assert UTTERANCES[0].group == "george"
    assert UTTERANCES[1].group == "file:/data/sc/_silence_/1024.flac"


GOOD = '{"path": "/a.wav", "duration": 1.0, "sample_rate": 16000}'


@pytest.mark.parametrize(
    "bad_line, words",
    [
        ('{"path": "/b.wav", "duration": 1.0, ', "JSON"),
        ('{"path": "/b.wav", "sample_rate": 16000}', "duration"),
        ('{"duration": 1.0, "sample_rate": 16000}', "path"),
        ('{"path": "/b.wav", "duration": 1.0, "sample_rate": 16000, "lable": "go"}', "lable"),
        ('["/b.wav", 1.0, 16000]', "object"),
    ],
    ids=["bad-json", "missing-duration", "missing-path", "unknown-key", "not-an-object"],
)
def test_malformed_line_names_file_and_line(tmp_path, bad_line, words):
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join([GOOD, GOOD, bad_line, GOOD]) + "\n", encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    message = str(info.value)
    assert f"{path}:3:" in message
    assert words in message


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="nope.jsonl"):
        read_manifest(tmp_path / "nope.jsonl")
    assert issubclass(ManifestError, ValueError)
