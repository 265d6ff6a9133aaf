"""Audio sent by a client: a size limit on the request body, and decoding through the one loader.

Nothing a client sends becomes a path: the bytes go to a fresh temporary file named by the
server, are decoded by :func:`audiorec.audio.load_audio` with a duration limit (checked before
the whole file is decoded), and the file is removed. Error messages name the upload by the file
name the client gave (for the user's benefit only), never by the temporary path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse

from audiorec.audio import AudioError, AudioTooLongError, load_audio

UPLOAD_FIELD = "file"  # multipart field that carries the audio

# The OpenAPI description of an audio request body: a multipart form with a file, or the raw bytes.
AUDIO_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "Audio in any format the loader reads (WAV, FLAC, OGG/Opus, MP3, M4A/AAC, WebM, "
        "NIST SPHERE): a multipart form with the file in the field 'file', or the file's bytes as "
        "the body with any audio Content-Type.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "audio/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


class BodySizeLimit:
    """ASGI middleware that answers 413 to request bodies over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before any of the body is read; a
    body without one (chunked transfer) is counted as it arrives and refused when it passes the
    limit, so a client can never make the server hold more than ``max_bytes`` of it.

    Parameters
    ----------
    app : ASGI application
    max_bytes : int > 0

    References
    ----------
    RFC 9110 section 15.5.14 (413 Content Too Large); the ASGI HTTP connection scope
    specification (asgi.readthedocs.io).
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = int(max_bytes)
        self.message = f"the upload is larger than the server's limit of {self.max_bytes / 2**20:g} MB (--max-upload-mb)"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await JSONResponse({"detail": self.message}, status_code=413)(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the endpoint's body read; FastAPI's exception middleware answers it.
                    raise HTTPException(413, self.message)
            return message

        await self.app(scope, limited_receive, send)


async def read_upload(request: Request) -> tuple[bytes, str]:
    """The audio bytes of a request and a name to call them by in messages.

    Parameters
    ----------
    request : Request
        ``multipart/form-data`` with the audio in the field ``file``, or any other Content-Type
        with the audio as the whole body.

    Returns
    -------
    data : bytes
    name : str
        The client's file name (its last path component, at most 100 characters), or
        ``"the request body"``. For messages only; never used as a path.

    Raises
    ------
    HTTPException
        422 for an empty body or a form without the ``file`` field; 413 from
        :class:`BodySizeLimit` while reading.
    """
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get(UPLOAD_FIELD)
            if not isinstance(upload, UploadFile):
                raise HTTPException(422, f"the multipart form has no file in the field {UPLOAD_FIELD!r}")
            data = await upload.read()
            name = Path((upload.filename or "upload").replace("\\", "/")).name[:100] or "upload"
    else:
        data = await request.body()
        name = "the request body"
    if not data:
        raise HTTPException(422, f"{name}: empty upload (0 bytes)")
    return data, name


def decode_upload(data: bytes, name: str, sample_rate: int, max_duration_s: float | None) -> np.ndarray:
    """Decode uploaded bytes to mono float32 at ``sample_rate`` Hz.

    Parameters
    ----------
    data : bytes
        A whole audio file.
    name : str
        What to call it in error messages.
    sample_rate : int > 0
        Hz of the result.
    max_duration_s : float > 0, optional
        Longer audio is refused before it is decoded whole.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]

    Raises
    ------
    AudioTooLongError
        Longer than ``max_duration_s``; the message names ``name``.
    AudioError
        Not decodable, or no samples; the message names ``name`` and gives the decoders' reasons.
    """
    with tempfile.NamedTemporaryFile(prefix="audiorec-upload-") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            waveform = load_audio(tmp.name, sample_rate, max_duration_s)
        except AudioTooLongError as e:
            raise AudioTooLongError(name, e.max_duration_s) from e
        except AudioError as e:
            raise AudioError(name, e.reason.replace(tmp.name, name)) from e
    if not len(waveform):
        raise AudioError(name, "the audio has no samples")
    return waveform
