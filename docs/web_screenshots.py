"""Screenshots of the web app's two pages for the README: docs/images/web_recognize.png, web_studio.png.

    .venv/bin/python docs/web_screenshots.py [--model runs/bench/export/sc12.onnx] [--word yes]

Serves ``--model`` (the SC12 export of ``benchmarks/export_runtime.py``) with ``audiorec serve``'s
app on a free local port, and drives the system Chromium with Playwright. Its fake microphone
plays an SC12 test-split recording of ``--word`` by a speaker the model never heard (of the first
20 such recordings, the one the model scores highest: the picture shows the page, not the
accuracy, which the README's results table reports): the first page records it and shows the
answer; the studio page records two takes of it into a temporary dataset folder.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from playwright.sync_api import sync_playwright

from audiorec.audio import load_audio, write_wav
from audiorec.data.manifest import read_manifest
from audiorec.runtime import Recognizer
from audiorec.serve import ServeConfig, create_app

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def serve_in_thread(app) -> tuple[uvicorn.Server, str]:
    """Run an ASGI app under uvicorn in a daemon thread on a free local port; the server and its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=ROOT / "runs" / "bench" / "export" / "sc12.onnx", type=Path)
    parser.add_argument("--test-split", default=ROOT / "runs" / "bench" / "sc12_speaker_split" / "splits" / "test.jsonl",
                        type=Path, help="manifest to take the spoken word from")
    parser.add_argument("--word", default="yes")
    parser.add_argument("--out", default=HERE / "images", type=Path)
    args = parser.parse_args()

    recognizer = Recognizer.load(args.model, top_k=5, threads=1)
    candidates = [u.path for u in read_manifest(args.test_split) if u.label == args.word][:20]
    clip = max(candidates, key=lambda path: recognizer.recognize_file(path).score)
    work = Path(tempfile.mkdtemp(prefix="audiorec-screenshots-"))
    word = load_audio(clip)
    loop = np.zeros(24_000, np.float32)
    loop[4000 : 4000 + len(word)] = word
    fake_mic = write_wav(work / "mic.wav", loop)
    server, base = serve_in_thread(create_app(recognizer, ServeConfig(dataset_dir=work / "dataset"), args.model))
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_mic}"])
        page = browser.new_page(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
        page.context.grant_permissions(["microphone"])
        page.goto(base + "/")
        page.click("#record")
        page.wait_for_timeout(1600)
        page.click("#record")
        page.wait_for_selector("body[data-recognized]")
        page.screenshot(path=str(args.out / "web_recognize.png"), full_page=True)
        print(f"recognised {page.text_content('#label')} ({page.text_content('#score')}) from {clip}")

        page.goto(base + "/record")
        page.click("#model-labels")
        page.fill("#speaker", "alice")
        page.fill("#takes-per-label", "2")
        page.click("#start")
        for n in (1, 2):
            page.click("#rec")
            page.wait_for_timeout(1500)
            page.click("#rec")
            page.wait_for_function(f"document.querySelectorAll('td.saved').length === {n}")
        page.screenshot(path=str(args.out / "web_studio.png"), full_page=False)
        browser.close()
    server.should_exit = True
    print(f"wrote {args.out / 'web_recognize.png'} and {args.out / 'web_studio.png'}")


if __name__ == "__main__":
    main()
