"""The web app's HTTP and WebSocket API, through FastAPI's test client (no browser: see test_web.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from audiorec.audio import AudioTooLongError, load_audio, write_wav
from audiorec.cli import TRAIN_EXTRA_MODULES, main
from audiorec.data.corpora import scan_corpus
from audiorec.data.manifest import read_manifest
from audiorec.export import export_run
from audiorec.runtime import Recognizer
from audiorec.serve import ServeConfig, create_app
from audiorec.serve.display import spectrogram, waveform_peaks
from audiorec.serve.studio import check_label, check_speaker, check_take
from audiorec.streaming import StreamingDetector
from conftest import sine, write_with_pyav


@pytest.fixture(scope="module")
def onnx_model(trained_run, tmp_path_factory):
    """The quick training run exported to fp32 ONNX: ``(model_path, test_clip_paths)``."""
    run_dir, _, _ = trained_run
    out = tmp_path_factory.mktemp("serve") / "model.onnx"
    export_run(run_dir, out, max_clips=4, progress=False)
    clips = [u.path for u in read_manifest(run_dir / "splits" / "test.jsonl")]
    return out, clips


@pytest.fixture(scope="module")
def recognizer(onnx_model):
    return Recognizer.load(onnx_model[0], top_k=3, threads=1)


def client_for(recognizer, tmp_path=None, **settings) -> TestClient:
    if tmp_path is not None:
        settings.setdefault("dataset_dir", tmp_path / "dataset")
    return TestClient(create_app(recognizer, ServeConfig(workers=2, **settings), source="model.onnx"))


@pytest.fixture
def client(recognizer, tmp_path):
    with client_for(recognizer, tmp_path) as c:
        yield c


def test_recognize_raw_body_and_multipart_give_the_runtimes_answer(client, recognizer, onnx_model):
    for clip in onnx_model[1][:3]:
        expected = recognizer.recognize_file(clip)
        data = open(clip, "rb").read()
        raw = client.post("/api/v1/recognize", content=data, headers={"Content-Type": "audio/wav"})
        form = client.post("/api/v1/recognize", files={"file": ("take.wav", data, "audio/wav")})
        for response in (raw, form):
            assert response.status_code == 200, response.text
            answer = response.json()
            assert set(answer) == {"label", "score", "top_k", "duration_s"}
            assert answer["label"] == expected.label
            assert answer["score"] == pytest.approx(expected.score, abs=1e-5)
            assert [s["label"] for s in answer["top_k"]] == [label for label, _ in expected.top_k]
            assert answer["duration_s"] == pytest.approx(expected.duration_s, abs=1e-3)


def test_compressed_uploads_are_decoded(client, recognizer, tmp_path):
    webm = write_with_pyav(tmp_path / "clip.webm", "webm", "libopus", 48_000)
    flac = tmp_path / "clip.flac"
    soundfile.write(flac, sine(440, 22_050), 22_050, format="FLAC")
    for path in (webm, flac):
        answer = client.post("/api/v1/recognize", content=path.read_bytes()).json()
        assert answer["label"] == recognizer.recognize_file(path).label
        assert answer["duration_s"] == pytest.approx(1.0, abs=0.03)


def test_display_has_the_waveform_outline_and_spectrogram(client, onnx_model):
    clip = onnx_model[1][0]
    answer = client.post("/api/v1/recognize?display=true", content=open(clip, "rb").read()).json()
    waveform = load_audio(clip)
    assert answer["display"]["waveform"] == waveform_peaks(waveform)
    spec = answer["display"]["spectrogram"]
    assert spec["n_frames"] == 1 + (len(waveform) - 400) // 160
    assert len(np.frombuffer(__import__("base64").b64decode(spec["data"]), np.uint8)) == spec["n_frames"] * spec["n_bins"]


def test_spectrogram_and_peaks_show_the_signal():
    tone = sine(1000, 16_000, 0.5).astype(np.float32)
    spec = spectrogram(tone, 16_000)
    image = np.frombuffer(__import__("base64").b64decode(spec.data), np.uint8).reshape(spec.n_frames, spec.n_bins)
    loudest_hz = np.argmax(image.mean(axis=0)) * spec.max_hz / (spec.n_bins - 1)
    assert abs(loudest_hz - 1000) <= spec.max_hz / (spec.n_bins - 1)
    assert image.max() == 255 and image.min() == 0  # 80 dB below the tone is black
    assert spectrogram(np.zeros(100, np.float32), 16_000).n_frames == 0
    long = spectrogram(np.zeros(16_000 * 30, np.float32), 16_000)
    assert long.n_frames <= 1000 and long.hop_s > 0.01
    peaks = waveform_peaks(np.array([0, 1, -1, 0.5], np.float32), columns=2)
    assert peaks == [0.0, 1.0, -1.0, 0.5]
    assert waveform_peaks(np.zeros(0, np.float32)) == []


def test_model_info_and_health(client, recognizer):
    model = client.get("/api/v1/model").json()
    assert model["labels"] == recognizer.labels
    assert model["sample_rate"] == 16_000 and model["clip_s"] == 1.0
    assert model["format"] == "onnx" and model["source"] == "model.onnx"
    assert model["metadata"]["precision"] == "fp32"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_uploads_over_the_size_limit_get_413(recognizer, onnx_model):
    data = open(onnx_model[1][0], "rb").read()
    limit_mb = (len(data) // 2) / 2**20
    with client_for(recognizer, max_upload_mb=limit_mb) as client:
        declared = client.post("/api/v1/recognize", content=data)
        chunked = client.post("/api/v1/recognize", content=iter([data[:1000], data[1000:]]))  # no Content-Length
        form = client.post("/api/v1/recognize", files={"file": ("big.wav", data)})
        for response in (declared, chunked, form):
            assert response.status_code == 413, response.text
            assert "--max-upload-mb" in response.json()["detail"]
        assert "content-length" not in chunked.request.headers
        assert client.post("/api/v1/recognize", content=data[: len(data) // 4]).status_code != 413


def test_audio_longer_than_the_limit_gets_413_naming_the_file(recognizer, tmp_path):
    wav = tmp_path / "long.wav"
    write_wav(wav, sine(300, 16_000, 3.0))
    webm = write_with_pyav(tmp_path / "long.webm", "webm", "libopus", 48_000, duration_s=3.0)
    with client_for(recognizer, max_duration_s=2.0) as client:
        for path in (wav, webm):
            response = client.post("/api/v1/recognize", files={"file": (path.name, path.read_bytes())})
            assert response.status_code == 413
            assert response.json()["detail"] == f"{path.name}: longer than the 2 s allowed"
    with pytest.raises(AudioTooLongError):
        load_audio(webm, max_duration_s=2.0)
    assert len(load_audio(webm, max_duration_s=3.5)) == pytest.approx(48_000, abs=500)


def test_undecodable_and_empty_uploads(client):
    response = client.post("/api/v1/recognize", files={"file": ("../../notes.txt", b"not audio at all" * 20)})
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert detail.startswith("notes.txt: cannot decode audio") and "/tmp" not in detail
    raw = client.post("/api/v1/recognize", content=b"\x00\x01" * 500)
    assert raw.status_code == 415 and raw.json()["detail"].startswith("the request body: ")
    empty = client.post("/api/v1/recognize", content=b"")
    assert empty.status_code == 422 and "empty upload" in empty.json()["detail"]
    no_file = client.post("/api/v1/recognize", data={"other": "x"}, files={"wrong": ("a.wav", b"123")})
    assert no_file.status_code == 422 and "'file'" in no_file.json()["detail"]
    assert client.post("/api/v1/recognize?display=maybe", content=b"x").status_code == 422


def test_token_guards_the_api_but_not_health(recognizer, onnx_model):
    data = open(onnx_model[1][0], "rb").read()
    with client_for(recognizer, token="s3cret") as client:
        missing = client.post("/api/v1/recognize", content=data)
        wrong = client.get("/api/v1/model", headers={"Authorization": "Bearer nope"})
        assert missing.status_code == wrong.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        right = client.post("/api/v1/recognize", content=data, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200  # the page asks for the token itself
        with pytest.raises(WebSocketDisconnect) as closed:
            with client.websocket_connect("/api/v1/stream?token=nope") as ws:
                ws.receive_json()
        assert closed.value.code == 1008
        with client.websocket_connect("/api/v1/stream?token=s3cret") as ws:
            assert ws.receive_json()["type"] == "ready"
        schema = client.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


class BlockingModel:
    """A model whose predictions wait until the test releases them."""

    def __init__(self, recognizer):
        self.inner = recognizer.predict
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, clips):
        self.started.set()
        self.release.wait(timeout=30)
        return self.inner(clips)


def test_inference_runs_off_the_event_loop_and_times_out(recognizer, onnx_model):
    data = open(onnx_model[1][0], "rb").read()
    model = BlockingModel(recognizer)
    slow = Recognizer(model, recognizer.labels, recognizer.sample_rate, recognizer.clip_samples)
    with client_for(slow, timeout_s=20) as client:
        results = {}
        worker = threading.Thread(target=lambda: results.setdefault("r", client.post("/api/v1/recognize", content=data)))
        worker.start()
        assert model.started.wait(timeout=20)
        assert client.get("/healthz").status_code == 200  # answered while the recognition is still running
        assert worker.is_alive()
        model.release.set()
        worker.join(timeout=20)
        assert results["r"].status_code == 200
    model = BlockingModel(recognizer)
    slow = Recognizer(model, recognizer.labels, recognizer.sample_rate, recognizer.clip_samples)
    with client_for(slow, timeout_s=0.2) as client:
        response = client.post("/api/v1/recognize", content=data)
        model.release.set()
        assert response.status_code == 503
        assert "timeout" in response.json()["detail"] and response.headers["retry-after"] == "1"


def test_studio_saves_redoes_lists_and_deletes_takes(client, tmp_path, onnx_model):
    clip, other = onnx_model[1][:2]
    response = client.put("/api/v1/dataset/power on/alice/0", content=open(clip, "rb").read())
    assert response.status_code == 200, response.text
    take = response.json()
    saved = tmp_path / "dataset" / "power on" / "alice_nohash_0.wav"
    assert take == {"label": "power on", "speaker": "alice", "take": 0, "path": "power on/alice_nohash_0.wav",
                    "duration_s": pytest.approx(soundfile.info(clip).duration, abs=1e-3)}
    info = soundfile.info(saved)
    assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    np.testing.assert_allclose(soundfile.read(saved)[0], load_audio(clip), atol=1 / 32768)

    webm = write_with_pyav(tmp_path / "redo.webm", "webm", "libopus", 48_000, duration_s=0.8)
    redo = client.put("/api/v1/dataset/power on/alice/0", files={"file": ("redo.webm", webm.read_bytes())})
    assert redo.status_code == 200 and redo.json()["duration_s"] == pytest.approx(0.8, abs=0.03)
    client.put("/api/v1/dataset/power on/bob/3", content=open(other, "rb").read())
    listing = client.get("/api/v1/dataset").json()
    assert listing["dataset_dir"] == str((tmp_path / "dataset").resolve())
    assert [(t["speaker"], t["take"]) for t in listing["takes"]] == [("alice", 0), ("bob", 3)]
    assert [t["speaker"] for t in client.get("/api/v1/dataset?speaker=bob").json()["takes"]] == ["bob"]
    assert sorted(p.name for p in (tmp_path / "dataset").rglob("*")) == ["alice_nohash_0.wav", "bob_nohash_3.wav", "power on"]

    layout, files = scan_corpus(tmp_path / "dataset")  # what audiorec train --data reads
    assert sorted((label, speaker) for _, label, speaker in files) == [("power on", "alice"), ("power on", "bob")]

    assert client.delete("/api/v1/dataset/power on/bob/3").status_code == 204
    assert client.delete("/api/v1/dataset/power on/bob/3").status_code == 404
    assert [t["speaker"] for t in client.get("/api/v1/dataset").json()["takes"]] == ["alice"]


def test_studio_refuses_unsafe_names_before_reading_the_upload(client, tmp_path, onnx_model):
    data = open(onnx_model[1][0], "rb").read()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "sneaky").symlink_to(outside)
    for url in ("/api/v1/dataset/v1.0/alice/0", "/api/v1/dataset/yes/al_ice/0", "/api/v1/dataset/yes/a b/0",
                "/api/v1/dataset/yes/alice/-1", "/api/v1/dataset/yes/alice/x", "/api/v1/dataset/sneaky/alice/0",
                "/api/v1/dataset/%2E%2E/alice/0"):
        response = client.put(url, content=data)
        assert response.status_code in (404, 422), url
    assert not list(outside.iterdir())
    assert sorted(p.name for p in (tmp_path / "dataset").iterdir()) == ["sneaky"]


@pytest.mark.parametrize("label", ["yes", "power on", "don't", "ноль", "零", "_unknown_", "a" * 64])
def test_labels_allowed(label):
    assert check_label(label) == label


@pytest.mark.parametrize("label", ["", "..", "../etc", "a/b", "a\\b", ".hidden", " yes", "yes ", "a\x00b", "a" * 65, "v1.0"])
def test_labels_refused(label):
    with pytest.raises(ValueError, match="label"):
        check_label(label)


def test_speakers_and_takes_checked():
    assert check_speaker("anne-marie") == "anne-marie" and check_speaker("Jürgen2") == "Jürgen2"
    for bad in ("", "al_ice", "a b", "../x", "-x", "x" * 65):
        with pytest.raises(ValueError, match="speaker"):
            check_speaker(bad)
    assert check_take(0) == 0
    for bad in (-1, 10_000, True, 1.5):
        with pytest.raises(ValueError, match="take"):
            check_take(bad)


def test_studio_is_off_without_a_dataset_dir(recognizer):
    with client_for(recognizer) as client:
        response = client.put("/api/v1/dataset/yes/alice/0", content=b"x")
        assert response.status_code == 404 and "--dataset-dir" in response.json()["detail"]
        assert client.get("/api/v1/dataset").status_code == 404


def pcm16(waveform: np.ndarray) -> bytes:
    return (np.clip(waveform, -1, 32767 / 32768) * 32768).round().astype("<i2").tobytes()


def test_stream_gives_the_detectors_detections(client, recognizer, onnx_model):
    rng = np.random.default_rng(0)
    pieces = []
    for clip in onnx_model[1]:
        pieces += [np.zeros(rng.integers(4000, 12000), np.float32), load_audio(clip)]
    data = pcm16(np.concatenate(pieces + [np.zeros(16_000, np.float32)]))
    audio = np.frombuffer(data, "<i2").astype(np.float32) / 32768
    detector = StreamingDetector(recognizer)
    _, probs = detector.posteriors(audio)
    threshold = round(float(np.quantile(probs.max(axis=1), 0.75)), 3)  # low enough that some commands fire
    expected = [d.to_dict() for d in StreamingDetector(recognizer, threshold=threshold).detect(audio)]
    assert expected

    with client.websocket_connect(f"/api/v1/stream?threshold={threshold}") as ws:
        ready = ws.receive_json()
        assert ready == {"type": "ready", "sample_rate": 16_000, "format": "pcm_s16le", "labels": recognizer.labels,
                         "hop_ms": 100.0, "threshold": threshold}
        at = 0
        while at < len(data):
            size = 2 * int(rng.integers(1, 4000))
            ws.send_bytes(data[at : at + size])
            at += size
        ws.send_text(json.dumps({"type": "end"}))
        messages = []
        while (message := ws.receive_json())["type"] != "end":
            messages.append(message)
    assert [m["type"] for m in messages] == ["detection"] * len(messages)
    got = [{k: m[k] for k in ("time_s", "label", "score")} for m in messages]
    assert [(d["time_s"], d["label"]) for d in got] == [(d["time_s"], d["label"]) for d in expected]
    assert [d["score"] for d in got] == pytest.approx([d["score"] for d in expected], abs=1e-3)
    assert message["stream_time_s"] == pytest.approx(len(audio) / 16_000, abs=1e-3)


def test_stream_refuses_bad_messages(client):
    for send, why in ((lambda ws: ws.send_bytes(b"\x00\x01\x02"), "16-bit"),
                      (lambda ws: ws.send_text("hello"), "binary"),):
        with client.websocket_connect("/api/v1/stream") as ws:
            ws.receive_json()
            send(ws)
            error = ws.receive_json()
            assert error["type"] == "error" and why in error["detail"]
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1003
    with client.websocket_connect("/api/v1/stream?threshold=1.5") as ws:
        assert "threshold" in ws.receive_json()["detail"]


def test_openapi_schema_is_valid_and_describes_the_api(client):
    from openapi_spec_validator import validate

    schema = client.get("/openapi.json").json()
    validate(schema)
    recognize = schema["paths"]["/api/v1/recognize"]["post"]
    assert set(recognize["requestBody"]["content"]) == {"multipart/form-data", "application/octet-stream", "audio/*"}
    assert recognize["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RecognitionOut")
    assert {"413", "415", "422", "503"} <= set(recognize["responses"])
    assert {"/api/v1/model", "/healthz", "/api/v1/dataset", "/api/v1/dataset/{label}/{speaker}/{take}"} <= set(schema["paths"])
    assert "securitySchemes" not in schema.get("components", {})  # no token, no security requirement
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', html) + re.findall(r'<link[^>]+href="([^"]+)"', html)
        assert scripts and all(src.startswith("/") for src in scripts), scripts  # served by the app, no CDN
        assert all(client.get(src).status_code == 200 for src in scripts)


def test_pages_and_assets_are_served_without_a_cdn(client):
    for page in ("/", "/record"):
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "http://" not in html.text and "https://" not in html.text
    for asset in ("common.js", "index.js", "record.js", "pcm-worklet.js", "style.css"):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and "https://" not in response.text
    assert client.get("/static/../app.py").status_code == 404


def test_serve_command_line_errors():
    assert main(["serve", "/nonexistent/model.onnx"]) == 2
    with pytest.raises(SystemExit):
        main(["serve", "--help"])


def test_server_runs_without_torch(onnx_model):
    """A subprocess where importing torch (or anything of the [train] extra) fails."""
    model, clips = onnx_model
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in {tuple(sorted(TRAIN_EXTRA_MODULES))!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (hidden in this test)", name=name)
        sys.meta_path.insert(0, Block())
        from fastapi.testclient import TestClient
        from audiorec.runtime import Recognizer
        from audiorec.serve import create_app
        client = TestClient(create_app(Recognizer.load({str(model)!r}, threads=1)))
        print(client.post("/api/v1/recognize?display=true", content=open({clips[0]!r}, "rb").read()).json()["label"])
        assert not any(m.split(".")[0] in {tuple(sorted(TRAIN_EXTRA_MODULES))!r} for m in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == Recognizer.load(model).recognize_file(clips[0]).label


def test_a_run_directory_serves_through_pytorch(trained_run, recognizer, onnx_model, tmp_path):
    run_dir = trained_run[0]
    clip = onnx_model[1][0]
    with TestClient(create_app(Recognizer.from_run(run_dir), ServeConfig(workers=1), source=run_dir)) as client:
        assert client.get("/api/v1/model").json()["format"] == "pytorch"
        answer = client.post("/api/v1/recognize", content=open(clip, "rb").read()).json()
    expected = recognizer.recognize_file(clip)
    assert answer["label"] == expected.label and answer["score"] == pytest.approx(expected.score, abs=1e-4)


def test_serve_command_starts_a_server(onnx_model):
    """``audiorec serve`` as a user runs it: a real uvicorn process on a free port."""
    import socket
    import time

    import httpx2

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "audiorec.cli", "serve", str(onnx_model[0]), "--port", str(port), "--token", "t0k"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/api/v1/recognize"
        data = open(onnx_model[1][0], "rb").read()
        assert httpx2.post(url, content=data).status_code == 401
        answer = httpx2.post(url, content=data, headers={"Authorization": "Bearer t0k"}).json()
        assert answer["label"] == Recognizer.load(onnx_model[0]).recognize_file(onnx_model[1][0]).label
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert f"at http://127.0.0.1:{port}/" in output
