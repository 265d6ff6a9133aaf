"""``audiorec data report``: the one-page HTML overview of a corpus, checked as text and in Chromium."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiorec.cli import main
from audiorec.data.report import clip_levels, write_report
from conftest import chromium_path, shared_dataset, sine, write_sine

SR = 16_000


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def corpus_with_problems(root: Path) -> Path:
    """Folder-per-label tones: 'high' 3 clips, 'low' 2 (speakers anna/ben/cleo), plus 2 bad files."""
    for label, freq, speakers in (("high", 2000.0, ("anna", "ben", "cleo")), ("low", 300.0, ("anna", "ben"))):
        for k, speaker in enumerate(speakers):
            write_sine(root / label / f"{speaker}_0.wav", freq, 8_000 if speaker == "cleo" else SR, 0.4 + 0.1 * k)
    (root / "low" / "dan_0.wav").write_bytes(b"")  # empty: unreadable
    soundfile.write(root / "low" / "eve_0.wav", np.zeros(SR // 2), SR)  # digital silence
    return root


class Page(HTMLParser):
    """Collects what the tests read from the report: table rows by key, images, links."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict[str, list[str]]] = {"label": {}, "subset": {}, "speaker": {}}
        self.images: list[str] = []
        self.external: list[str] = []
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            for key in self.rows:
                if f"data-{key}" in attrs:
                    self._row = self.rows[key].setdefault(attrs[f"data-{key}"], [])
        elif tag == "td" and self._row is not None:
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs["src"])
        for name in ("src", "href"):
            if name in attrs and not attrs[name].startswith("data:"):
                self.external.append(attrs[name])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr":
            self._row = None


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_clip_levels_in_dbfs():
    half = sine(1000, SR, 0.5, 0.5)
    levels = clip_levels(np.concatenate([np.zeros(SR // 2), half]), SR)
    assert levels["peak_dbfs"] == pytest.approx(20 * np.log10(0.5), abs=0.05)
    assert levels["rms_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)) - 3.01, abs=0.1)  # half the time silent
    assert levels["speech_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.1)
    assert levels["noise_floor_dbfs"] == -120.0
    assert clip_levels(np.full(10, 0.25), SR)["peak_dbfs"] == pytest.approx(-12.04, abs=0.01)  # shorter than a frame
    with pytest.raises(ValueError, match="empty"):
        clip_levels(np.zeros(0), SR)


def test_report_counts_findings_and_embedded_images(tmp_path):
    corpus = corpus_with_problems(tmp_path / "corpus")
    out, report = write_report(corpus, tmp_path / "report.html", progress=False)
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    # Counts per label and per speaker match the files that passed validation.
    assert page.rows["label"]["high"][:3] == ["high", "3", "3"]
    assert page.rows["label"]["low"][:3] == ["low", "2", "2"]
    assert {s: row[1] for s, row in page.rows["speaker"].items()} == {"anna": "2", "ben": "2", "cleo": "1"}
    assert re.search(r'id="n-clips">5<', html) and re.search(r'id="n-excluded">2<', html)
    # Validation findings: both bad files, with their reasons.
    assert "dan_0.wav" in html and "unreadable" in html
    assert "eve_0.wav" in html and "silent" in html
    # Sample rates: 8 kHz and 16 kHz are reported as mixed.
    assert "Mixed sample rates" in html and ">8000<" in html and ">16000<" in html
    # Self-contained: every image is an embedded PNG, nothing is fetched from elsewhere.
    assert len(page.images) == 5 and page.external == []  # labels, speakers, durations, loudness, examples
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # The example grid holds at most the requested clips per label.
    assert {label: len(clips) for label, clips in report.examples.items()} == {"high": 3, "low": 2}
    assert not list(tmp_path.glob(".*"))  # written atomically


def test_report_of_a_manifest_uses_the_import_report(tmp_path, capsys):
    corpus = corpus_with_problems(tmp_path / "corpus")
    manifest = tmp_path / "tones.jsonl"
    assert run_cli(capsys, "data", "import", corpus, "--out", manifest)[0] == 0
    code, out, _ = run_cli(capsys, "data", "report", manifest, "--out", tmp_path / "r.html", "--quiet")
    assert code == 0 and "5 clips, 2 labels, 3 speakers; 2 files excluded" in out
    html = (tmp_path / "r.html").read_text()
    assert "tones.report.json" in html and "dan_0.wav" in html and "eve_0.wav" in html
    assert parse(html).rows["label"]["high"][1] == "3"


def test_report_errors_exit_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "data", "report", tmp_path / "nowhere", "--out", tmp_path / "r.html")
    assert code == 2 and "nowhere" in err and err.startswith("error:")
    assert not (tmp_path / "r.html").exists()


def test_report_opens_in_headless_chromium(tmp_path):
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is absent: pip install -e '.[dev]'")
    corpus = corpus_with_problems(tmp_path / "corpus")
    out, _ = write_report(corpus, tmp_path / "report.html", progress=False)
    problems = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto(out.resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
            title = page.title()
            clips = page.inner_text("#n-clips")
            high = page.inner_text('tr[data-label="high"] td:nth-child(2)')
        finally:
            browser.close()
    assert problems == []
    assert title == "corpus: data report" and clips == "5" and high == "3"
    assert len(images) == 5
    assert all(complete and width > 100 and height > 50 for _, complete, width, height in images), images


def test_fsdd_manifest_report_matches_the_corpus(tmp_path):
    """A slice of FSDD as a manifest: the page counts what the manifest lists."""
    from audiorec.data.corpora import scan_corpus
    from audiorec.data.manifest import Utterance, write_manifest

    _, entries = scan_corpus(shared_dataset("fsdd"))
    utterances = [Utterance(str(p), soundfile.info(str(p)).duration, 8000, speaker, label)
                  for p, label, speaker in entries if label in ("0", "1") and speaker in ("george", "lucas")]
    manifest = write_manifest(tmp_path / "slice.jsonl", utterances)
    out, report = write_report(manifest, tmp_path / "fsdd.html", per_label=2, progress=False)
    page = parse(out.read_text())
    assert {label: row[1] for label, row in page.rows["label"].items()} == {"0": "100", "1": "100"}
    assert {s: row[1] for s, row in page.rows["speaker"].items()} == {"george": "100", "lucas": "100"}
    assert {c.sample_rate for c in report.clips} == {8000}


def test_report_of_a_transcribed_corpus_shows_its_transcripts(tmp_path, capsys):
    """A transcript table: words, vocabulary and speaking rate per subset instead of one unlabelled class."""
    audio = tmp_path / "audio"
    for name, seconds in (("a", 1.0), ("b", 2.0), ("c", 1.0)):
        write_sine(audio / f"{name}.wav", 440.0, duration_s=seconds)
    table = tmp_path / "transcripts.csv"
    table.write_text("path,text,speaker,subset\n"
                     "audio/a.wav,Go left,anna,train\n"
                     "audio/b.wav,\"go right, then stop\",ben,train\n"
                     "audio/c.wav,STOP,cleo,test\n")
    code, out, _ = run_cli(capsys, "data", "report", table, "--out", tmp_path / "r.html", "--quiet")
    assert code == 0 and "3 clips, 7 words, a vocabulary of 5, 3 speakers; 0 files excluded" in out
    html = (tmp_path / "r.html").read_text()
    page = parse(html)
    assert "<h2>Transcripts</h2>" in html and "<h2>Labels</h2>" not in html
    assert re.search(r'id="n-words">7<', html) and re.search(r"id='n-vocabulary'>5<", html)
    # subset, utterances, speakers, words, vocabulary, minutes, median words, median words per second
    assert page.rows["subset"]["train"][:5] == ["train", "2", "2", "6", "5"]
    assert page.rows["subset"]["test"][:5] == ["test", "1", "1", "1", "1"]
    assert page.rows["subset"]["train"][6:] == ["3.0", "2.0"]  # 2 and 4 words, each 2 words per second
    assert page.rows["speaker"]["ben"][:3] == ["ben", "1", "0.03"]  # minutes, not labels
