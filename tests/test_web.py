"""The web pages in a real browser: Debian's Chromium, headless, driven by Playwright.

Chromium's fake microphone plays a real FSDD recording (``1_lucas_7.wav``, a speaker the model
never heard in training) in a loop, so pressing *record* on the page records a spoken "one".
The model is a small CNN trained here on three FSDD digits of the other five speakers (about
half a minute) and exported to ONNX; the server is ``audiorec serve``'s app under uvicorn.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
import soundfile

from audiorec.audio import load_audio, write_wav
from audiorec.runtime import Recognizer
from audiorec.serve import ServeConfig, create_app
from conftest import chromium_path, shared_dataset

DIGITS = ("0", "1", "2")
HELD_OUT = "lucas"
SPOKEN = f"1_{HELD_OUT}_7.wav"  # what the fake microphone says
UPLOADED = f"2_{HELD_OUT}_7.wav"
LOOP_S = 1.5  # the word, then silence, repeated by Chromium's fake capture


@pytest.fixture(scope="module")
def fsdd_model(tmp_path_factory):
    """A CNN trained on digits 0-2 of FSDD (25 takes per speaker and digit), exported to ONNX."""
    from audiorec.config import load_config
    from audiorec.data.corpora import scan_corpus
    from audiorec.data.manifest import Utterance, write_manifest
    from audiorec.export import export_run
    from audiorec.train import train

    fsdd = shared_dataset("fsdd")
    root = tmp_path_factory.mktemp("web")
    _, files = scan_corpus(fsdd)
    chosen = [(p, label, speaker) for p, label, speaker in files
              if label in DIGITS and int(p.stem.rsplit("_", 1)[1]) < 25]
    manifest = write_manifest(root / "fsdd012.jsonl", [
        Utterance(path=str(p), label=label, speaker=speaker, duration=soundfile.info(p).duration, sample_rate=8000)
        for p, label, speaker in chosen])
    config = load_config(None, ["train.max_epochs=10", "data.batch_size=16", "train.accelerator=cpu",
                                f"data.test_speakers=[{HELD_OUT}]"])
    train(manifest, root / "run", config, progress=False)
    report = export_run(root / "run", root / "fsdd012.onnx", max_clips=8, progress=False)
    return report.model, fsdd


@pytest.fixture(scope="module")
def server(fsdd_model, tmp_path_factory):
    """The app under uvicorn on a free local port: ``(base_url, dataset_dir)``."""
    import uvicorn

    dataset = tmp_path_factory.mktemp("studio") / "dataset"
    app = create_app(Recognizer.load(fsdd_model[0], top_k=3, threads=1), ServeConfig(dataset_dir=dataset), "fsdd012.onnx")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", dataset
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(fsdd_model, tmp_path_factory):
    """Headless Chromium whose microphone plays :data:`SPOKEN` in a loop."""
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is absent: pip install -e '.[dev]'")
    word = load_audio(fsdd_model[1] / SPOKEN)
    loop = np.zeros(round(LOOP_S * 16_000), np.float32)
    loop[4000 : 4000 + len(word)] = word
    fake_mic = write_wav(tmp_path_factory.mktemp("mic") / "one.wav", loop)
    with sync_api.sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=executable, headless=True, args=[
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_mic}"])
        except Exception as e:  # a browser that cannot start here (sandbox, missing libraries)
            pytest.skip(f"Chromium ({executable}) cannot start: {str(e).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.grant_permissions(["microphone"])
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.problems = problems
    yield page
    context.close()
    assert problems == []


def record(page, button: str, seconds: float = 2.2) -> None:
    page.click(button)
    page.wait_for_timeout(seconds * 1000)
    page.click(button)


def painted_pixels(page, canvas: str) -> int:
    """Pixels of a canvas that differ from its top-left corner (the background)."""
    return page.evaluate("""(id) => {
        const c = document.getElementById(id), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) n++;
        return n; }""", canvas)


def test_record_button_recognises_the_spoken_digit(page, server):
    page.goto(server[0] + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('3 labels')")
    record(page, "#record")
    page.wait_for_selector("body[data-recognized]", timeout=20_000)
    assert page.text_content("#label") == "1"
    assert "your recording" in page.text_content("#status")
    assert painted_pixels(page, "waveform") > 1000 and painted_pixels(page, "spectrogram") > 1000


def test_upload_shows_the_label_bars_and_pictures(page, server, fsdd_model):
    page.goto(server[0] + "/")
    page.set_input_files("#upload", str(fsdd_model[1] / UPLOADED))
    page.wait_for_selector("body[data-recognized]", timeout=20_000)
    assert page.text_content("#label") == "2"
    bars = page.eval_on_selector_all("#topk .pct", "els => els.map(e => parseFloat(e.textContent))")
    assert len(bars) == 3 and bars == sorted(bars, reverse=True) and sum(bars) == pytest.approx(100, abs=0.5)
    assert page.text_content("#score") == f"{bars[0]:.1f}%"
    assert painted_pixels(page, "spectrogram") > 1000


def test_listening_streams_the_microphone_and_shows_detections(page, server):
    page.goto(server[0] + "/")
    page.click("#listen")
    page.wait_for_selector("#detections li", timeout=20_000)
    page.click("#listen")
    first = page.text_content("#detections li:last-child")
    assert first.split()[2] == "1", first  # "1.00 s  1  90%"


def test_studio_records_two_takes_to_disk_and_redoes_one(page, server, fsdd_model):
    base, dataset = server
    page.goto(base + "/record")
    page.click("#model-labels")
    page.wait_for_function("document.getElementById('labels').value === '0, 1, 2'")
    page.fill("#labels", "1")
    page.fill("#speaker", "tester")
    page.fill("#takes-per-label", "2")
    page.click("#start")
    page.wait_for_selector("#session:not([hidden])")
    assert page.text_content("#prompt-label") == "1"
    for n in (1, 2):
        record(page, "#rec", 1.6)
        page.wait_for_function(f"document.querySelectorAll('td.saved').length === {n}", timeout=20_000)
    assert "All 2 takes saved" in page.text_content("#studio-status")
    takes = sorted((dataset / "1").iterdir())
    assert [t.name for t in takes] == ["tester_nohash_0.wav", "tester_nohash_1.wav"]
    recognizer = Recognizer.load(fsdd_model[0])
    for take in takes:
        info = soundfile.info(take)
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert 1.0 < info.duration < 3.0
        assert recognizer.recognize_file(take).label == "1"  # the saved audio holds the spoken word

    before = takes[1].read_bytes()
    page.click('tr[data-take="1"] button')
    assert "replaces it" in page.text_content("#prompt-take")
    record(page, "#rec", 1.2)
    page.wait_for_function("document.getElementById('studio-status').textContent.includes('All 2 takes')", timeout=20_000)
    assert sorted(p.name for p in (dataset / "1").iterdir()) == ["tester_nohash_0.wav", "tester_nohash_1.wav"]
    assert takes[1].read_bytes() != before
    assert soundfile.info(takes[1]).duration < soundfile.info(takes[0]).duration


def test_api_docs_render_without_a_cdn(page, server):
    page.goto(server[0] + "/")
    # Let the page's own request for the model's labels finish: leaving during it aborts it,
    # which the fixture rightly reports as a failed request.
    page.wait_for_load_state("networkidle")
    page.click("text=API")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "audiorec" in page.text_content(".swagger-ui .info .title")
    assert page.locator(".opblock-summary-path", has_text="/api/v1/recognize").count() == 1
