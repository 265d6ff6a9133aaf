"""The web app: pages to recognise and to record a dataset, an HTTP API and a WebSocket stream.

Every route recognises through one :class:`~audiorec.runtime.Recognizer` (an exported ``.onnx``
model, or a run directory), and the stream through a :class:`~audiorec.streaming.StreamingDetector`
per connection. Decoding and inference run in a thread pool of ``workers`` threads, never on the
event loop, each call bounded by ``timeout_s``. The pages and their scripts are files of this
package (``static/``), and the API docs' Swagger UI and ReDoc come from the fastapi-offline
package: no CDN, nothing fetched from elsewhere.

Routes (the OpenAPI schema is at ``/openapi.json``, the interactive docs at ``/docs``):

- ``GET /``: record or upload a clip, see the label, the top-k probabilities, the waveform and
  the spectrogram; listen continuously over the WebSocket.
- ``GET /record``: the recording studio (prompts each label N times, saves to ``dataset_dir``).
- ``POST /api/v1/recognize``: audio in, ``{label, score, top_k, duration_s}`` out.
- ``GET /api/v1/model``: labels and metadata. ``GET /healthz``: liveness.
- ``GET /api/v1/dataset``, ``PUT|DELETE /api/v1/dataset/{label}/{speaker}/{take}``: the studio's takes.
- ``WS /api/v1/stream``: 16 kHz 16-bit PCM in, detections out.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect

from audiorec.audio import AudioError, AudioTooLongError
from audiorec.runtime import Recognizer
from audiorec.serve.display import spectrogram, waveform_peaks
from audiorec.serve.studio import Studio
from audiorec.serve.uploads import AUDIO_REQUEST_BODY, BodySizeLimit, decode_upload, read_upload
from audiorec.streaming import DEFAULT_THRESHOLD, StreamingDetector

STATIC_DIR = Path(__file__).with_name("static")
API_PREFIX = "/api/v1"
STREAM_FORMAT = "pcm_s16le"  # what the WebSocket takes: mono 16-bit little-endian PCM at the model's rate


@dataclass
class ServeConfig:
    """How the server treats its clients.

    Attributes
    ----------
    max_upload_mb : float > 0
        Larger request bodies get 413 (also the largest WebSocket message).
    max_duration_s : float > 0
        Longer audio gets 413, found before it is decoded whole.
    token : str, optional
        When set, every ``/api/v1`` route needs ``Authorization: Bearer <token>`` (the WebSocket:
        ``?token=<token>``); the pages ask for it.
    workers : int > 0
        Threads that decode and recognise.
    timeout_s : float > 0
        A request whose decoding and recognition take longer gets 503.
    top_k : int > 0
        Classes listed per answer.
    dataset_dir : Path, optional
        Where the recording studio saves takes; without it the studio's routes answer 404.
    threshold : float in (0, 1]
        Default detection threshold of the stream (a client may pass ``?threshold=``).
    """

    max_upload_mb: float = 20.0
    max_duration_s: float = 30.0
    token: str | None = None
    workers: int = max(1, os.cpu_count() or 1)
    timeout_s: float = 30.0
    top_k: int = 5
    dataset_dir: Path | None = None
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self):
        for name in ("max_upload_mb", "max_duration_s", "timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be > 0")
        for name in ("workers", "top_k"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be at least 1")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold={self.threshold!r}: must be in (0, 1]")
        if self.token is not None and not self.token:
            raise ValueError("token: empty; give a secret or none")


class Score(BaseModel):
    """One class and its posterior probability in [0, 1]."""

    label: str
    score: float = Field(ge=0, le=1, description="posterior probability")


class SpectrogramOut(BaseModel):
    """A log-power STFT spectrogram as bytes (see :class:`audiorec.serve.display.Spectrogram`)."""

    n_frames: int
    n_bins: int
    hop_s: float = Field(description="seconds between frames")
    max_hz: float = Field(description="frequency of the last bin")
    db_range: float = Field(description="dB from byte 0 to byte 255 (the clip's loudest bin)")
    data: str = Field(description="base64 of n_frames * n_bins bytes, frame after frame, bin 0 = 0 Hz first")


class DisplayOut(BaseModel):
    """Pictures of a clip for the page: waveform outline and spectrogram."""

    waveform: list[float] = Field(description="[min, max, min, max, ...] of equal slices of the clip")
    spectrogram: SpectrogramOut


class RecognitionOut(BaseModel):
    """The answer of ``POST /api/v1/recognize`` (a :class:`~audiorec.runtime.Recognition` without the path)."""

    label: str = Field(description="the most probable class")
    score: float = Field(ge=0, le=1, description="its posterior probability")
    top_k: list[Score] = Field(description="the best classes, best first")
    duration_s: float = Field(description="seconds of audio received")
    display: DisplayOut | None = Field(None, description="pictures of the clip, with ?display=true")


class ModelOut(BaseModel):
    """``GET /api/v1/model``: what the served model recognises and at which sample rate (Hz)."""

    labels: list[str]
    sample_rate: int = Field(description="Hz the model takes; uploads are resampled to it")
    clip_s: float = Field(description="seconds of audio the model sees at once")
    source: str = Field(description="model file or run directory name")
    format: Literal["onnx", "pytorch"]
    metadata: dict[str, str] = Field(description="what the export stored (precision, task, ...)")


class HealthOut(BaseModel):
    """``GET /healthz``: the server is up."""

    status: Literal["ok"]


class TakeOut(BaseModel):
    """One saved studio take (:class:`audiorec.serve.studio.Take`); ``duration_s`` in seconds."""

    label: str
    speaker: str
    take: int
    path: str = Field(description="relative to the dataset folder")
    duration_s: float


class DatasetOut(BaseModel):
    """``GET /api/v1/dataset``: the studio's folder and its takes."""

    dataset_dir: str = Field(description="the server's dataset folder: train on it with audiorec train --data DIR")
    takes: list[TakeOut]


class ErrorOut(BaseModel):
    """Every error answer: FastAPI's ``{"detail": ...}``, a message naming the upload or value."""

    detail: str | list[dict[str, Any]] = Field(description="what went wrong, naming the upload or value")


def _errors(*codes: int) -> dict:
    reasons = {
        401: "missing or wrong bearer token",
        404: "no such take, or the server has no --dataset-dir",
        413: "upload larger than --max-upload-mb, or audio longer than --max-duration-s",
        415: "the audio cannot be decoded",
        422: "empty upload, missing form field, or a bad parameter",
        503: "recognition took longer than the server's timeout",
    }
    return {code: {"model": ErrorOut, "description": reasons[code]} for code in codes}


def _model_info(recognizer: Recognizer, source: Path) -> ModelOut:
    predict = recognizer.predict
    metadata = {k.removeprefix("audiorec."): v for k, v in getattr(predict, "metadata", {}).items()
                if k not in ("audiorec.config", "audiorec.labels", "audiorec.sample_rate", "audiorec.clip_samples")}
    return ModelOut(labels=recognizer.labels, sample_rate=recognizer.sample_rate,
                    clip_s=recognizer.clip_samples / recognizer.sample_rate, source=source.name,
                    format="pytorch" if source.is_dir() else "onnx", metadata=metadata)


def create_app(recognizer: Recognizer, config: ServeConfig | None = None, source: str | Path = "model") -> FastAPI:
    """Build the FastAPI application around a loaded recognizer.

    Parameters
    ----------
    recognizer : Recognizer
        Shared by every request; its ``predict`` must be safe to call from several threads
        (ONNX Runtime sessions and PyTorch modules in inference mode are).
    config : ServeConfig, optional
        Limits, token, workers; defaults as in :class:`ServeConfig`.
    source : str or Path
        The model file or run directory, reported by ``GET /api/v1/model``.

    Returns
    -------
    FastAPI
        Serve it with uvicorn (``audiorec serve`` does) or test it with FastAPI's ``TestClient``.

    References
    ----------
    FastAPI (fastapi.tiangolo.com) on Starlette's ASGI toolkit; OpenAPI 3.1; RFC 6750 (bearer
    tokens); RFC 6455 (WebSocket).
    """
    config = config or ServeConfig()
    studio = Studio(config.dataset_dir, recognizer.sample_rate) if config.dataset_dir else None
    pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="audiorec-worker")
    info = _model_info(recognizer, Path(source))

    @asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    # FastAPIOffline: FastAPI whose /docs and /redoc pages load Swagger UI and ReDoc from files of
    # the fastapi-offline package instead of a CDN.
    app = FastAPIOffline(
        title="audiorec",
        version=_version(),
        description="Recognise spoken commands in uploaded or streamed audio, and record datasets.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=int(config.max_upload_mb * 2**20))

    @app.exception_handler(AudioError)
    async def _audio_error(request: Request, exc: AudioError) -> JSONResponse:
        status = 413 if isinstance(exc, AudioTooLongError) else 415
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def in_pool(fn, *args):
        """Run ``fn(*args)`` on a worker thread; 503 when it takes longer than the timeout."""
        future = asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args))
        try:
            return await asyncio.wait_for(future, config.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(503, f"no answer within the server's {config.timeout_s:g} s timeout; try again later",
                                headers={"Retry-After": "1"}) from None

    bearer = HTTPBearer(auto_error=False, description="the server's --token")

    def check_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not _token_ok(config.token, credentials.credentials if credentials else None):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(check_token)] if config.token else [])

    def decode(data: bytes, name: str) -> np.ndarray:
        return decode_upload(data, name, recognizer.sample_rate, config.max_duration_s)

    @api.post("/recognize", response_model=RecognitionOut, response_model_exclude_none=True,
              responses=_errors(401, 413, 415, 422, 503), openapi_extra=AUDIO_REQUEST_BODY,
              summary="Recognise the command in an audio clip")
    async def recognize(request: Request,
                        display: bool = Query(False, description="also return the waveform outline and spectrogram")):
        data, name = await read_upload(request)

        def work() -> dict:
            waveform = decode(data, name)
            answer = recognizer.recognize(waveform).to_dict()
            del answer["path"]
            if display:
                answer["display"] = {"waveform": waveform_peaks(waveform),
                                     "spectrogram": spectrogram(waveform, recognizer.sample_rate).to_dict()}
            return answer

        return await in_pool(work)

    @api.get("/model", response_model=ModelOut, responses=_errors(401), summary="Labels and metadata of the model")
    async def model() -> ModelOut:
        return info

    def need_studio() -> Studio:
        if studio is None:
            raise HTTPException(404, "the recording studio is off: start the server with --dataset-dir DIR")
        return studio

    def studio_call(fn, *args):
        try:
            return fn(*args)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None

    @api.get("/dataset", response_model=DatasetOut, responses=_errors(401, 404, 422), summary="The studio's saved takes")
    async def dataset(speaker: str | None = Query(None, description="only this speaker's takes")):
        takes = await in_pool(studio_call, need_studio().takes, speaker)
        return {"dataset_dir": str(studio.root), "takes": [t.to_dict() for t in takes]}

    @api.put("/dataset/{label}/{speaker}/{take}", response_model=TakeOut, openapi_extra=AUDIO_REQUEST_BODY,
             responses=_errors(401, 404, 413, 415, 422, 503),
             summary="Save a take (replacing one with the same number) as LABEL/SPEAKER_nohash_TAKE.wav")
    async def save_take(label: str, speaker: str, take: int, request: Request):
        chosen = need_studio()
        studio_call(chosen.path, label, speaker, take)  # bad names are refused before the upload is read
        data, name = await read_upload(request)
        return (await in_pool(lambda: studio_call(chosen.save, label, speaker, take, decode(data, name)))).to_dict()

    @api.delete("/dataset/{label}/{speaker}/{take}", status_code=204, responses=_errors(401, 404, 422),
                summary="Delete a take")
    async def delete_take(label: str, speaker: str, take: int) -> Response:
        if not await in_pool(studio_call, need_studio().delete, label, speaker, take):
            raise HTTPException(404, f"no take {take} of {label!r} by {speaker!r}")
        return Response(status_code=204)

    app.include_router(api)

    @app.get("/healthz", response_model=HealthOut, summary="Liveness (no token needed)")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.websocket(f"{API_PREFIX}/stream")
    async def stream(websocket: WebSocket, token: str | None = None, threshold: float | None = None):
        await _stream(websocket, recognizer, config, in_pool, token, threshold)

    @app.get("/", include_in_schema=False)
    async def index_page():
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/record", include_in_schema=False)
    async def record_page():
        return FileResponse(STATIC_DIR / "record.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _token_ok(expected: str | None, given: str | None) -> bool:
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def _stream(websocket: WebSocket, recognizer: Recognizer, config: ServeConfig, in_pool,
                  token: str | None, threshold: float | None) -> None:
    """The ``/api/v1/stream`` protocol.

    After the handshake the server sends ``{"type": "ready", "sample_rate", "format", "labels",
    "hop_ms", "threshold"}``. The client sends binary messages of mono 16-bit little-endian PCM at
    ``sample_rate``, of any length; for each detection the server sends ``{"type": "detection",
    "time_s", "label", "score"}`` (seconds from the start of the stream). A text message
    ``{"type": "end"}`` is answered by ``{"type": "end", "stream_time_s"}`` once every earlier
    chunk is processed, then the server closes. Errors: ``{"type": "error", "detail"}``, then a
    close with code 1008 (policy: wrong token) or 1003 (bad data).
    """
    if not _token_ok(config.token, token):
        await websocket.close(code=1008, reason="missing or wrong token (?token=...)")
        return
    await websocket.accept()
    try:
        detector = StreamingDetector(recognizer, threshold=config.threshold if threshold is None else threshold)
    except ValueError as e:
        await _stream_error(websocket, str(e))
        return
    await websocket.send_json({"type": "ready", "sample_rate": detector.sample_rate, "format": STREAM_FORMAT,
                               "labels": detector.labels, "hop_ms": detector.hop_ms, "threshold": detector.threshold})
    max_bytes = int(config.max_upload_mb * 2**20)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                data = message["bytes"]
                if len(data) % 2 or len(data) > max_bytes:
                    await _stream_error(websocket, f"binary messages must be whole 16-bit samples and at most "
                                                   f"{max_bytes} bytes; got {len(data)} bytes")
                    return
                chunk = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
                for detection in await in_pool(detector.feed, chunk):
                    await websocket.send_json({"type": "detection", **detection.to_dict()})
            else:
                try:
                    kind = json.loads(message.get("text") or "").get("type")
                except (json.JSONDecodeError, AttributeError):
                    kind = None
                if kind != "end":
                    await _stream_error(websocket, 'text messages must be {"type": "end"}; audio goes in binary messages')
                    return
                await websocket.send_json({"type": "end", "stream_time_s": round(detector.stream_time_s, 3)})
                await websocket.close()
                return
    except WebSocketDisconnect:
        return
    except HTTPException as e:  # the worker timed out
        await _stream_error(websocket, str(e.detail), code=1011)


async def _stream_error(websocket: WebSocket, detail: str, code: int = 1003) -> None:
    await websocket.send_json({"type": "error", "detail": detail})
    await websocket.close(code=code, reason=detail[:120])


def _version() -> str:
    from audiorec import __version__

    return __version__
